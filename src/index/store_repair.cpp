// Offline repair of a damaged code store (`imsat repair`): keep a copy of the damaged files,
// salvage what RocksDB can read, and rebuild the keys and multi-index records from the surviving
// codes so that the store is consistent again.
#include <rocksdb/write_batch.h>

#include <ctime>
#include <filesystem>
#include <unordered_map>
#include <unordered_set>

#include "index/store_internal.h"

namespace imsat::index {
namespace {

// Writes a WriteBatch whenever it grows past a few MB, so a repair of a large store stays bounded.
class ChunkedWriter {
 public:
  ChunkedWriter(rocksdb::DB* db, std::string what) : db_(db), what_(std::move(what)) {
    options_.sync = false;
  }
  Status put(rocksdb::ColumnFamilyHandle* cf, const std::string& k, const std::string& v) {
    batch_.Put(cf, k, v);
    return maybe_flush();
  }
  Status erase(rocksdb::ColumnFamilyHandle* cf, const rocksdb::Slice& k) {
    batch_.Delete(cf, k);
    return maybe_flush();
  }
  Status finish() {
    options_.sync = true;
    return write();
  }

 private:
  Status maybe_flush() { return batch_.GetDataSize() > (8u << 20) ? write() : Status::ok(); }
  Status write() {
    Status s = translate(db_->Write(options_, &batch_), what_);
    batch_.Clear();
    return s;
  }
  rocksdb::DB* db_;
  std::string what_;
  rocksdb::WriteOptions options_;
  rocksdb::WriteBatch batch_;
};

}  // namespace

Result<CodeStore::RepairReport> CodeStore::repair(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::exists(fs::path(path) / "CURRENT", ec) && !fs::exists(fs::path(path) / "IDENTITY", ec)) {
    return Status::not_found(path + ": no code store here");
  }
  RepairReport report;
  const std::optional<Watermark> mark = read_watermark(path);
  if (mark) report.items_before = mark->items;
  report.backup = path + ".damaged-" + std::to_string(std::time(nullptr));
  for (int n = 1; fs::exists(report.backup, ec); ++n) {  // two repairs within one second
    report.backup =
        path + ".damaged-" + std::to_string(std::time(nullptr)) + "-" + std::to_string(n);
  }
  fs::copy(path, report.backup, fs::copy_options::recursive, ec);
  if (ec) {
    return Status::io_error(path + ": cannot copy the damaged files to " + report.backup + ": " +
                            ec.message() + "; nothing was changed");
  }

  rocksdb::Options options;
  options.create_if_missing = false;
  options.create_missing_column_families = true;
  options.wal_recovery_mode = rocksdb::WALRecoveryMode::kSkipAnyCorruptedRecords;
  std::vector<rocksdb::ColumnFamilyDescriptor> descriptors;
  for (int i = 0; i < kCfCount; ++i) descriptors.emplace_back(kCfNames[i], options);
  // With an intact MANIFEST, opening with a log mode that skips damaged records salvages every
  // readable write-ahead record (RocksDB's RepairDB would drop the non-default column families'
  // log records). A MANIFEST that lost tables needs RepairDB, which rebuilds it from the tables.
  bool need_repair_db = false;
  {
    std::vector<rocksdb::ColumnFamilyHandle*> handles;
    rocksdb::DB* probe = nullptr;
    const rocksdb::Status opened =
        rocksdb::DB::OpenForReadOnly(options, path, descriptors, &handles, &probe);
    if (opened.ok()) {
      need_repair_db = !check_tables_referenced(probe, handles, path).is_ok();
      for (auto* h : handles) probe->DestroyColumnFamilyHandle(h);
      delete probe;
    } else {
      need_repair_db =
          !opened.IsCorruption() || opened.ToString().find("MANIFEST") != std::string::npos;
    }
  }
  if (need_repair_db) {
    IMSAT_RETURN_IF_ERROR(
        translate(rocksdb::RepairDB(path, options, descriptors), path + ": repairing"));
  }
  std::vector<rocksdb::ColumnFamilyHandle*> cf;
  rocksdb::DB* raw = nullptr;
  rocksdb::Status opened = rocksdb::DB::Open(options, path, descriptors, &cf, &raw);
  if (!opened.ok() && !need_repair_db) {
    // What the salvaging open could not read, RepairDB rebuilds from the tables.
    IMSAT_RETURN_IF_ERROR(
        translate(rocksdb::RepairDB(path, options, descriptors), path + ": repairing"));
    opened = rocksdb::DB::Open(options, path, descriptors, &cf, &raw);
  }
  IMSAT_RETURN_IF_ERROR(translate(opened, path + ": opening the repaired store"));
  if (!need_repair_db && !raw->VerifyChecksum().ok()) {
    // A table with a damaged block: RepairDB scans every table and sets aside the unreadable.
    for (auto* h : cf) raw->DestroyColumnFamilyHandle(h);
    cf.clear();
    raw->Close().PermitUncheckedError();
    delete raw;
    raw = nullptr;
    IMSAT_RETURN_IF_ERROR(
        translate(rocksdb::RepairDB(path, options, descriptors), path + ": repairing"));
    IMSAT_RETURN_IF_ERROR(translate(rocksdb::DB::Open(options, path, descriptors, &cf, &raw),
                                    path + ": opening the repaired store"));
  }
  std::unique_ptr<rocksdb::DB> db(raw);
  auto close = [&] {
    for (auto* h : cf) db->DestroyColumnFamilyHandle(h);
    cf.clear();
    db->Close().PermitUncheckedError();
  };

  std::string text;
  if (!db->Get(rocksdb::ReadOptions(), cf[kSchema], "schema", &text).ok()) {
    close();
    return Status::corruption(path +
                              ": the schema record is lost; the store cannot be rebuilt "
                              "(the damaged files are in " +
                              report.backup + ")");
  }
  IMSAT_ASSIGN_OR_RETURN(const Schema schema, Schema::decode(text));
  const MultiIndex mih(schema.bits, schema.tables);
  CodeArray packer(schema.bits);
  const size_t code_bytes = packer.code_bytes();
  ChunkedWriter out(db.get(), path + ": rewriting records");

  // The codes are the source of truth: the newest record of each key survives.
  std::unordered_map<std::string, uint64_t> key_ids;
  std::unordered_set<uint64_t> live;
  uint64_t max_id = 0;
  {
    std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(rocksdb::ReadOptions(), cf[kCodes]));
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      const rocksdb::Slice v = it->value();
      if (it->key().size() != 8 || v.size() < code_bytes + 4) {
        IMSAT_RETURN_IF_ERROR(out.erase(cf[kCodes], it->key()));
        continue;
      }
      const uint64_t id = from_be64(it->key());
      const std::string key(v.data() + code_bytes + 4, v.size() - code_bytes - 4);
      auto [at, fresh] = key_ids.emplace(key, id);
      if (!fresh) {  // ids increase with writes: the later one replaced the earlier
        IMSAT_RETURN_IF_ERROR(out.erase(cf[kCodes], be64(at->second)));
        live.erase(at->second);
        at->second = id;
      }
      live.insert(id);
      max_id = std::max(max_id, id);
    }
    IMSAT_RETURN_IF_ERROR(translate(it->status(), path + ": reading codes"));
  }
  // Keys, buckets and metadata are rebuilt from (or checked against) the surviving codes.
  for (int c : {kKeys, kBuckets}) {
    std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(rocksdb::ReadOptions(), cf[c]));
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      IMSAT_RETURN_IF_ERROR(out.erase(cf[c], it->key()));
    }
  }
  {
    std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(rocksdb::ReadOptions(), cf[kMeta]));
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      if (it->key().size() < 8 || live.count(from_be64(it->key())) == 0) {
        IMSAT_RETURN_IF_ERROR(out.erase(cf[kMeta], it->key()));
      }
    }
  }
  std::vector<uint64_t> packed(packer.words());
  {
    std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(rocksdb::ReadOptions(), cf[kCodes]));
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      if (it->key().size() != 8) continue;
      const uint64_t id = from_be64(it->key());
      if (live.count(id) == 0) continue;
      const rocksdb::Slice v = it->value();
      const std::string key(v.data() + code_bytes + 4, v.size() - code_bytes - 4);
      IMSAT_RETURN_IF_ERROR(out.put(cf[kKeys], key, be64(id)));
      packer.pack(reinterpret_cast<const uint8_t*>(v.data()), packed.data());
      for (int t = 0; schema.persist_buckets && t < mih.tables(); ++t) {
        IMSAT_RETURN_IF_ERROR(
            out.put(cf[kBuckets], bucket_key(t, mih.substring(t, packed.data()), id), ""));
      }
    }
  }
  uint64_t next_id = max_id + 1;
  std::string v;
  if (db->Get(rocksdb::ReadOptions(), cf[kSchema], "next_id", &v).ok() && v.size() == 8) {
    next_id = std::max(next_id, from_be64(v));
  }
  IMSAT_ASSIGN_OR_RETURN(uint64_t generation, recorded_generation(db.get(), cf[kSchema]));
  if (mark) generation = std::max(generation, mark->generation);
  ++generation;
  report.items_after = live.size();
  IMSAT_RETURN_IF_ERROR(out.put(cf[kSchema], "next_id", be64(next_id)));
  IMSAT_RETURN_IF_ERROR(out.put(cf[kSchema], "items", be64(report.items_after)));
  IMSAT_RETURN_IF_ERROR(out.put(cf[kSchema], "generation", be64(generation)));
  IMSAT_RETURN_IF_ERROR(out.finish());
  IMSAT_RETURN_IF_ERROR(translate(db->Flush(rocksdb::FlushOptions(), cf), path + ": flushing"));
  close();
  IMSAT_RETURN_IF_ERROR(write_watermark(path, {generation, report.items_after}));

  // The result must open and verify like any healthy store.
  StoreOptions check;
  check.create_if_missing = false;
  IMSAT_ASSIGN_OR_RETURN(std::unique_ptr<CodeStore> repaired, CodeStore::open(path, check));
  IMSAT_RETURN_IF_ERROR(repaired->verify());
  return report;
}

}  // namespace imsat::index
