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

// The damaged store opened read-write after salvage; closes itself.
struct Salvaged {
  std::unique_ptr<rocksdb::DB> db;
  std::vector<rocksdb::ColumnFamilyHandle*> cf;
  Salvaged() = default;
  Salvaged(const Salvaged&) = delete;
  Salvaged& operator=(const Salvaged&) = delete;
  ~Salvaged() { close(); }
  void close() {
    if (db == nullptr) return;
    for (auto* h : cf) db->DestroyColumnFamilyHandle(h);
    cf.clear();
    db->Close().PermitUncheckedError();
    db.reset();
  }
};

// Copies the damaged files beside the store (PATH.damaged-TIME) before anything is changed.
Result<std::string> copy_aside(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  std::string backup = path + ".damaged-" + std::to_string(std::time(nullptr));
  for (int n = 1; fs::exists(backup, ec); ++n) {  // two repairs within one second
    backup = path + ".damaged-" + std::to_string(std::time(nullptr)) + "-" + std::to_string(n);
  }
  fs::copy(path, backup, fs::copy_options::recursive, ec);
  if (ec) {
    return Status::io_error(path + ": cannot copy the damaged files to " + backup + ": " +
                            ec.message() + "; nothing was changed");
  }
  return backup;
}

// Opens the store keeping whatever RocksDB can read. With an intact MANIFEST, opening with a log
// mode that skips damaged records salvages every readable write-ahead record (RocksDB's RepairDB
// would drop the non-default column families' log records). A MANIFEST that lost tables, or a
// table with a damaged block, needs RepairDB, which rebuilds from the tables and sets aside what
// it cannot read.
Status open_salvaged(const std::string& path, Salvaged* out) {
  rocksdb::Options options;
  options.create_if_missing = false;
  options.create_missing_column_families = true;
  options.wal_recovery_mode = rocksdb::WALRecoveryMode::kSkipAnyCorruptedRecords;
  std::vector<rocksdb::ColumnFamilyDescriptor> descriptors;
  for (int i = 0; i < kCfCount; ++i) descriptors.emplace_back(kCfNames[i], options);
  const auto repair_db = [&] {
    return translate(rocksdb::RepairDB(path, options, descriptors), path + ": repairing");
  };
  const auto open = [&] {
    rocksdb::DB* raw = nullptr;
    const rocksdb::Status s = rocksdb::DB::Open(options, path, descriptors, &out->cf, &raw);
    out->db.reset(raw);
    return s;
  };
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
  if (need_repair_db) IMSAT_RETURN_IF_ERROR(repair_db());
  rocksdb::Status opened = open();
  if (!opened.ok() && !need_repair_db) {
    // What the salvaging open could not read, RepairDB rebuilds from the tables.
    IMSAT_RETURN_IF_ERROR(repair_db());
    opened = open();
  }
  IMSAT_RETURN_IF_ERROR(translate(opened, path + ": opening the repaired store"));
  if (!need_repair_db && !out->db->VerifyChecksum().ok()) {
    out->close();
    IMSAT_RETURN_IF_ERROR(repair_db());
    IMSAT_RETURN_IF_ERROR(translate(open(), path + ": opening the repaired store"));
  }
  return Status::ok();
}

// The codes are the source of truth: the newest record of each key survives (ids increase with
// writes), malformed and replaced records are erased. The surviving ids and the largest id.
Status keep_newest_codes(rocksdb::DB* db, rocksdb::ColumnFamilyHandle* codes, size_t code_bytes,
                         ChunkedWriter* out, std::unordered_set<uint64_t>* live, uint64_t* max_id) {
  std::unordered_map<std::string, uint64_t> key_ids;
  std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(rocksdb::ReadOptions(), codes));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    const rocksdb::Slice v = it->value();
    if (it->key().size() != 8 || v.size() < code_bytes + 4) {
      IMSAT_RETURN_IF_ERROR(out->erase(codes, it->key()));
      continue;
    }
    const uint64_t id = from_be64(it->key());
    const std::string key(v.data() + code_bytes + 4, v.size() - code_bytes - 4);
    auto [at, fresh] = key_ids.emplace(key, id);
    if (!fresh) {
      IMSAT_RETURN_IF_ERROR(out->erase(codes, be64(at->second)));
      live->erase(at->second);
      at->second = id;
    }
    live->insert(id);
    *max_id = std::max(*max_id, id);
  }
  return translate(it->status(), "reading codes");
}

// Keys and buckets are rebuilt from the surviving codes; metadata of gone items is erased.
Status rebuild_derived(const Salvaged& s, const Schema& schema,
                       const std::unordered_set<uint64_t>& live, ChunkedWriter* out) {
  for (int c : {kKeys, kBuckets}) {
    std::unique_ptr<rocksdb::Iterator> it(s.db->NewIterator(rocksdb::ReadOptions(), s.cf[c]));
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      IMSAT_RETURN_IF_ERROR(out->erase(s.cf[c], it->key()));
    }
  }
  {
    std::unique_ptr<rocksdb::Iterator> it(s.db->NewIterator(rocksdb::ReadOptions(), s.cf[kMeta]));
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      if (it->key().size() < 8 || live.count(from_be64(it->key())) == 0) {
        IMSAT_RETURN_IF_ERROR(out->erase(s.cf[kMeta], it->key()));
      }
    }
  }
  const MultiIndex mih(schema.bits, schema.tables);
  CodeArray packer(schema.bits);
  const size_t code_bytes = packer.code_bytes();
  std::vector<uint64_t> packed(packer.words());
  std::unique_ptr<rocksdb::Iterator> it(s.db->NewIterator(rocksdb::ReadOptions(), s.cf[kCodes]));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    if (it->key().size() != 8) continue;
    const uint64_t id = from_be64(it->key());
    if (live.count(id) == 0) continue;
    const rocksdb::Slice v = it->value();
    const std::string key(v.data() + code_bytes + 4, v.size() - code_bytes - 4);
    IMSAT_RETURN_IF_ERROR(out->put(s.cf[kKeys], key, be64(id)));
    packer.pack(reinterpret_cast<const uint8_t*>(v.data()), packed.data());
    for (int t = 0; schema.persist_buckets && t < mih.tables(); ++t) {
      IMSAT_RETURN_IF_ERROR(
          out->put(s.cf[kBuckets], bucket_key(t, mih.substring(t, packed.data()), id), ""));
    }
  }
  return translate(it->status(), "reading codes");
}

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
  IMSAT_ASSIGN_OR_RETURN(report.backup, copy_aside(path));
  Salvaged s;
  IMSAT_RETURN_IF_ERROR(open_salvaged(path, &s));
  std::string text;
  if (!s.db->Get(rocksdb::ReadOptions(), s.cf[kSchema], "schema", &text).ok()) {
    return Status::corruption(path +
                              ": the schema record is lost; the store cannot be rebuilt "
                              "(the damaged files are in " +
                              report.backup + ")");
  }
  IMSAT_ASSIGN_OR_RETURN(const Schema schema, Schema::decode(text));
  ChunkedWriter out(s.db.get(), path + ": rewriting records");
  std::unordered_set<uint64_t> live;
  uint64_t max_id = 0;
  IMSAT_RETURN_IF_ERROR(keep_newest_codes(
      s.db.get(), s.cf[kCodes], CodeArray(schema.bits).code_bytes(), &out, &live, &max_id));
  IMSAT_RETURN_IF_ERROR(rebuild_derived(s, schema, live, &out));
  // The counters: next id past every surviving one, the item count, a new generation.
  uint64_t next_id = max_id + 1;
  std::string v;
  if (s.db->Get(rocksdb::ReadOptions(), s.cf[kSchema], "next_id", &v).ok() && v.size() == 8) {
    next_id = std::max(next_id, from_be64(v));
  }
  IMSAT_ASSIGN_OR_RETURN(uint64_t generation, recorded_generation(s.db.get(), s.cf[kSchema]));
  if (mark) generation = std::max(generation, mark->generation);
  ++generation;
  report.items_after = live.size();
  IMSAT_RETURN_IF_ERROR(out.put(s.cf[kSchema], "next_id", be64(next_id)));
  IMSAT_RETURN_IF_ERROR(out.put(s.cf[kSchema], "items", be64(report.items_after)));
  IMSAT_RETURN_IF_ERROR(out.put(s.cf[kSchema], "generation", be64(generation)));
  IMSAT_RETURN_IF_ERROR(out.finish());
  IMSAT_RETURN_IF_ERROR(translate(s.db->Flush(rocksdb::FlushOptions(), s.cf), path + ": flushing"));
  s.close();
  IMSAT_RETURN_IF_ERROR(write_watermark(path, {generation, report.items_after}));

  // The result must open and verify like any healthy store.
  StoreOptions check;
  check.create_if_missing = false;
  IMSAT_ASSIGN_OR_RETURN(std::unique_ptr<CodeStore> repaired, CodeStore::open(path, check));
  IMSAT_RETURN_IF_ERROR(repaired->verify());
  return report;
}

}  // namespace imsat::index
