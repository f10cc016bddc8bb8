// Opening and creating a code store: atomic creation, schema checks, and rebuilding the in-memory
// code array and multi-index from the codes column family.
#include <rocksdb/cache.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/table.h>
#include <rocksdb/write_batch.h>
#include <rocksdb/write_buffer_manager.h>

#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <regex>
#include <set>

#include "index/store_internal.h"

namespace imsat::index {

namespace {

// Keeps RocksDB's warnings about damaged write-ahead logs ("<file>.log: dropping N bytes; ...")
// so that an open refused for corruption can name the file.
class WalDamageLog : public rocksdb::Logger {
 public:
  WalDamageLog() : rocksdb::Logger(rocksdb::InfoLogLevel::WARN_LEVEL) {}
  using rocksdb::Logger::Logv;
  void Logv(const char* format, va_list ap) override {
    char buf[1024];
    std::vsnprintf(buf, sizeof(buf), format, ap);
    const std::string line(buf);
    if (line.find(".log") == std::string::npos || line.find("dropping") == std::string::npos) {
      return;
    }
    std::lock_guard lock(mutex_);
    if (first_.empty()) first_ = line;
  }
  std::string first() const {
    std::lock_guard lock(mutex_);
    return first_;
  }

 private:
  mutable std::mutex mutex_;
  std::string first_;
};

// Adds what the log recorded about a damaged write-ahead log to a failed open's status.
Status with_wal_detail(Status s, const WalDamageLog& log) {
  if (s.is_ok() || s.code() != Status::Code::kCorruption || log.first().empty()) return s;
  std::string detail = log.first();
  const size_t slash = detail.rfind('/', detail.find(".log"));
  if (slash != std::string::npos) detail = detail.substr(slash + 1);
  return Status::corruption(s.message() + " (write-ahead log " + detail +
                            "); nothing was changed (imsat repair --db recovers what it can)");
}

// RocksDB looks for a missing table file under its old ".ldb" name too and reports that one;
// name the file the store really lacks.
Status explain_missing_table(Status s, const std::string& path) {
  static const std::regex ldb("([0-9]+)\\.ldb");
  std::smatch m;
  const std::string& msg = s.message();
  if (s.is_ok() || !std::regex_search(msg, m, ldb)) return s;
  return Status::corruption(path + ": table file " + m[1].str() +
                            ".sst is missing (the MANIFEST references it): " + msg);
}

// The same check before a read-write open, through a read-only open that cannot delete anything.
Status check_tables_before_writing(
    const std::string& path, rocksdb::Options db_options,
    const std::vector<rocksdb::ColumnFamilyDescriptor>& descriptors) {
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* raw = nullptr;
  auto log = std::make_shared<WalDamageLog>();
  db_options.info_log = log;
  IMSAT_RETURN_IF_ERROR(with_wal_detail(
      explain_missing_table(
          translate(rocksdb::DB::OpenForReadOnly(db_options, path, descriptors, &handles, &raw),
                    path + ": opening the code store"),
          path),
      *log));
  Status s = check_tables_referenced(raw, handles, path);
  if (s.is_ok()) {
    Result<uint64_t> generation = recorded_generation(raw, handles[kSchema]);
    s = generation.is_ok() ? check_watermark(path, *generation) : generation.status();
  }
  for (auto* h : handles) raw->DestroyColumnFamilyHandle(h);
  delete raw;
  return s;
}

}  // namespace

// Table files the MANIFEST does not reference are normal after a crash (a flush or an ingestion
// that never committed; a read-write open deletes them) but are also what a damaged or truncated
// MANIFEST leaves behind, and then deleting them destroys data. They are refused only when the
// store, as the MANIFEST describes it, holds a different number of items than its own record says.
Status check_tables_referenced(rocksdb::DB* db, const std::vector<rocksdb::ColumnFamilyHandle*>& cf,
                               const std::string& path) {
  std::vector<rocksdb::LiveFileMetaData> live;
  db->GetLiveFilesMetaData(&live);
  std::set<std::string> referenced;
  for (const rocksdb::LiveFileMetaData& f : live) {
    referenced.insert(std::filesystem::path(f.name).filename().string());
  }
  size_t unreferenced = 0;
  std::string first;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(path, ec)) {
    const std::string name = entry.path().filename().string();
    if (entry.path().extension() != ".sst" || referenced.count(name) > 0) continue;
    if (unreferenced++ == 0) first = name;
  }
  if (unreferenced == 0) return Status::ok();
  // Consistent means: every acknowledged write is there and the codes hold the recorded count.
  std::string detail;
  const std::optional<Watermark> mark = read_watermark(path);
  Result<uint64_t> generation = recorded_generation(db, cf[kSchema]);
  if (mark && (!generation.is_ok() || *generation < mark->generation)) {
    detail = " (it describes the store as of write " +
             (generation.is_ok() ? std::to_string(*generation) : std::string("?")) +
             ", but write " + std::to_string(mark->generation) + " was acknowledged)";
  }
  std::string recorded;
  const rocksdb::Status got = db->Get(rocksdb::ReadOptions(), cf[kSchema], "items", &recorded);
  if (detail.empty() && got.ok() && recorded.size() == 8) {
    uint64_t held = 0;
    std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(rocksdb::ReadOptions(), cf[kCodes]));
    for (it->SeekToFirst(); it->Valid(); it->Next()) ++held;
    if (!it->status().ok() || held != from_be64(recorded)) {
      detail = " (it describes " + std::to_string(held) + " of " +
               std::to_string(from_be64(recorded)) + " recorded items)";
    }
  } else if (detail.empty() && !got.ok() && mark) {
    detail = " (the item record is gone)";
  }
  if (detail.empty()) return Status::ok();  // a crash's leftovers (or a store without records)
  return Status::corruption(path + ": " + std::to_string(unreferenced) + " table file(s) (" +
                            first + " ...) are not in the MANIFEST, which is damaged or truncated" +
                            detail +
                            "; nothing was changed (imsat repair --db recovers what it can)");
}

CodeStore::CodeStore(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
CodeStore::~CodeStore() = default;

Result<std::unique_ptr<CodeStore>> CodeStore::open(const std::string& path,
                                                   const StoreOptions& options) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::exists(fs::path(path) / "CURRENT", ec) && options.create_if_missing &&
      !options.read_only && options.bits != 0 &&
      (!fs::exists(path, ec) || fs::is_empty(path, ec))) {
    // Creation is made atomic: the store is built complete (column families, schema) in a
    // sibling folder and renamed into place, so a crash never leaves a half-made store.
    IMSAT_RETURN_IF_ERROR(check_code_bits(options.bits));
    const fs::path target = fs::absolute(path, ec);
    const std::string staging = target.string() + ".creating";
    if (target.has_parent_path()) fs::create_directories(target.parent_path(), ec);
    fs::remove_all(staging, ec);
    {
      StoreOptions create = options;
      create.sync_writes = true;
      IMSAT_ASSIGN_OR_RETURN(std::unique_ptr<CodeStore> made,
                             open_existing_or_new(staging, create));
    }
    fs::rename(staging, target, ec);
    if (ec)
      return Status::io_error(path + ": cannot move the new store into place: " + ec.message());
  }
  return open_existing_or_new(path, options);
}

Result<std::unique_ptr<CodeStore>> CodeStore::open_existing_or_new(const std::string& path,
                                                                   const StoreOptions& given) {
  StoreOptions options = given;
  if (!options.secondary_path.empty()) {
    options.read_only = true;
    options.create_if_missing = false;
  }
  if (options.bits != 0) IMSAT_RETURN_IF_ERROR(check_code_bits(options.bits));
  std::error_code ec;
  const bool exists = std::filesystem::exists(std::filesystem::path(path) / "CURRENT", ec);
  if (!exists && (std::filesystem::exists(std::filesystem::path(path) / "IDENTITY", ec) ||
                  std::filesystem::exists(std::filesystem::path(path) / kWatermarkFile, ec))) {
    // The folder held a store: never treat it as new.
    return Status::corruption(path +
                              ": the CURRENT file is missing from a code store; nothing "
                              "was changed (imsat repair --db recovers what it can)");
  }
  if (!exists && (!options.create_if_missing || options.read_only))
    return Status::not_found(path + ": no code store here");
  if (!exists && options.bits == 0) {
    return Status::invalid_argument(path + ": creating a store needs the code length (bits)");
  }
  if (!exists && std::filesystem::exists(path, ec) && !std::filesystem::is_empty(path, ec)) {
    return Status::invalid_argument(path +
                                    ": exists and is not a code store (no RocksDB CURRENT file)");
  }

  // On a disk without room for what a writable open writes (a new log, the manifest, a flush of
  // the recovered log), the store opens read-only: reads go on and writes get NoSpace, where a
  // writable open would fail (or trip RocksDB's assertion, see store_disk.cpp).
  bool full_at_open = false;
  if (exists && !options.read_only && disk_below_reserve(path)) {
    options.read_only = true;
    full_at_open = true;
  }
  auto impl = std::make_unique<Impl>();
  impl->path = path;
  impl->options = options;
  impl->full_at_open = full_at_open;
  impl->write_options.sync = options.sync_writes;

  rocksdb::Options db_options;
  if (!options.read_only) {
    impl->disk = std::make_shared<DiskState>();
    db_options.listeners.push_back(std::make_shared<DiskListener>(impl->disk));
  }
  db_options.create_if_missing = options.create_if_missing;
  db_options.create_missing_column_families = !exists;
  db_options.paranoid_checks = true;
  // Refuse a write-ahead log that is corrupt before its tail instead of silently recovering only
  // up to the damage (the default point-in-time mode); a torn last record, which a crash during an
  // unacknowledged write leaves, is still tolerated. Closed logs are recorded in the MANIFEST, so
  // a missing or shortened one is an error too.
  db_options.wal_recovery_mode = rocksdb::WALRecoveryMode::kTolerateCorruptedTailRecords;
  db_options.track_and_verify_wals_in_manifest = true;
  db_options.IncreaseParallelism(2);
  // Bounded memory: one block cache for every family, holding data, index and filter blocks (so
  // table readers of a large store do not pin their index blocks outside it), and one budget for
  // all memtables, charged to that cache (a write-heavy family flushes early instead of each
  // family keeping three 64 MiB memtables).
  const size_t cache_bytes = std::max<size_t>(options.cache_mb, 1) << 20;
  std::shared_ptr<rocksdb::Cache> cache = rocksdb::NewLRUCache(cache_bytes);
  // Memtables are charged to the block cache, so the cache's size bounds both together.
  db_options.write_buffer_manager = std::make_shared<rocksdb::WriteBufferManager>(
      std::max<size_t>(options.write_buffer_mb, 4) << 20, cache);
  rocksdb::BlockBasedTableOptions table;
  table.block_cache = cache;
  table.cache_index_and_filter_blocks = true;
  table.pin_l0_filter_and_index_blocks_in_cache = true;
  rocksdb::BlockBasedTableOptions keys_table = table;
  keys_table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
  rocksdb::ColumnFamilyOptions keys_options;
  keys_options.table_factory.reset(rocksdb::NewBlockBasedTableFactory(keys_table));
  // A bulk load writes several records per code; a third memtable lets writes continue while
  // two flush (within the write buffer budget above).
  keys_options.write_buffer_size = 64 << 20;
  keys_options.max_write_buffer_number = 3;
  rocksdb::ColumnFamilyOptions bulk_options;
  bulk_options.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
  bulk_options.write_buffer_size = 64 << 20;
  bulk_options.max_write_buffer_number = 3;

  // Codes are random bits: compressing their records costs time and saves nothing.
  rocksdb::ColumnFamilyOptions codes_options = bulk_options;
  codes_options.compression = rocksdb::kNoCompression;

  impl->db_options = db_options;
  std::vector<rocksdb::ColumnFamilyDescriptor> descriptors;
  for (int i = 0; i < kCfCount; ++i) {
    descriptors.emplace_back(kCfNames[i], i == kKeys    ? keys_options
                                          : i == kCodes ? codes_options
                                                        : bulk_options);
    impl->cf_options.push_back(descriptors.back().options);
  }
  bool fields_missing = false;
  if (exists) {
    std::vector<std::string> present;
    Status s = translate(rocksdb::DB::ListColumnFamilies(db_options, path, &present),
                         path + ": reading column families");
    if (!s.is_ok()) return s;
    fields_missing = std::find(present.begin(), present.end(), kCfNames[kFields]) == present.end();
    for (int i = 1; i < kCfCount; ++i) {
      if (i == kFields) continue;  // older stores gain it (below)
      if (std::find(present.begin(), present.end(), kCfNames[i]) == present.end()) {
        return Status::corruption(path + ": not an imsat code store (column family '" +
                                  std::string(kCfNames[i]) + "' is missing)");
      }
    }
  }
  if (fields_missing) {
    // A store made before the fields family: opened without it; a writable open adds it below.
    descriptors.pop_back();
  }
  if (exists && !options.read_only) {
    IMSAT_RETURN_IF_ERROR(check_tables_before_writing(path, db_options, descriptors));
  }
  rocksdb::DB* raw = nullptr;
  auto wal_log = std::make_shared<WalDamageLog>();
  rocksdb::Options read_only_options = db_options;
  read_only_options.info_log = wal_log;
  Status s = with_wal_detail(
      explain_missing_table(
          translate(
              !options.secondary_path.empty()
                  ? rocksdb::DB::OpenAsSecondary(read_only_options, path, options.secondary_path,
                                                 descriptors, &impl->cf, &raw)
              : options.read_only
                  ? rocksdb::DB::OpenForReadOnly(read_only_options, path, descriptors, &impl->cf,
                                                 &raw)
                  : rocksdb::DB::Open(db_options, path, descriptors, &impl->cf, &raw),
              path + ": opening the code store"),
          path),
      *wal_log);
  if (!s.is_ok()) return s;
  impl->db.reset(raw);
  if (fields_missing) {
    rocksdb::ColumnFamilyHandle* handle = nullptr;
    if (!options.read_only) {
      IMSAT_RETURN_IF_ERROR(
          translate(raw->CreateColumnFamily(bulk_options, kCfNames[kFields], &handle),
                    path + ": adding the fields column family"));
    }
    impl->cf.push_back(handle);  // nullptr read-only: no field is indexed there
  }
  // A follower reads a store its primary is writing: files come and go, and the watermark may
  // be ahead of what the secondary has replayed, so those checks belong to the primary.
  const bool plain_read_only = options.read_only && options.secondary_path.empty();
  if (exists && plain_read_only) {
    IMSAT_RETURN_IF_ERROR(check_tables_referenced(raw, impl->cf, path));
  }
  IMSAT_ASSIGN_OR_RETURN(impl->generation, recorded_generation(raw, impl->cf[kSchema]));
  if (exists && plain_read_only) IMSAT_RETURN_IF_ERROR(check_watermark(path, impl->generation));

  std::string schema_text;
  rocksdb::Status gs =
      impl->db->Get(rocksdb::ReadOptions(), impl->cf[kSchema], "schema", &schema_text);
  if (gs.IsNotFound()) {
    if (exists) return Status::corruption(path + ": the schema record is missing");
    impl->schema.bits = options.bits;
    impl->schema.tables = options.tables > 0
                              ? options.tables
                              : MultiIndex::default_tables(options.bits, options.expected_items);
    impl->schema.fingerprint = options.model_fingerprint;
    impl->schema.persist_buckets = false;
    // Normalise through MultiIndex, which caps substrings at 32 bits.
    impl->schema.tables = MultiIndex(options.bits, impl->schema.tables).tables();
    rocksdb::WriteBatch batch;
    batch.Put(impl->cf[kSchema], "schema", impl->schema.encode());
    batch.Put(impl->cf[kSchema], "next_id", be64(1));
    batch.Put(impl->cf[kSchema], "items", be64(0));
    batch.Put(impl->cf[kSchema], "generation", be64(0));
    s = translate(impl->db->Write(impl->write_options, &batch), path + ": writing the schema");
    if (!s.is_ok()) return s;
    IMSAT_RETURN_IF_ERROR(write_watermark(path, {0, 0}));
  } else {
    s = translate(gs, path + ": reading the schema");
    if (!s.is_ok()) return s;
    Result<Schema> schema = Schema::decode(schema_text);
    if (!schema.is_ok()) return Status::corruption(path + ": " + schema.status().message());
    impl->schema = *schema;
    if (impl->schema.format_version != kStoreFormatVersion) {
      return Status::invalid_argument(
          path + ": store format version " + std::to_string(impl->schema.format_version) +
          ", this build reads version " + std::to_string(kStoreFormatVersion));
    }
    if (check_code_bits(impl->schema.bits).is_ok() == false) {
      return Status::corruption(path + ": schema holds an invalid code length");
    }
    if (options.bits != 0 && options.bits != impl->schema.bits) {
      return Status::invalid_argument(path + ": the store holds " +
                                      std::to_string(impl->schema.bits) + "-bit codes, but " +
                                      std::to_string(options.bits) + "-bit codes were asked for");
    }
    if (!options.model_fingerprint.empty() && !impl->schema.fingerprint.empty() &&
        options.model_fingerprint != impl->schema.fingerprint) {
      return Status::invalid_argument(path + ": the store was built with model " +
                                      impl->schema.fingerprint + ", not " +
                                      options.model_fingerprint);
    }
  }
  std::string field_list;
  gs = impl->db->Get(rocksdb::ReadOptions(), impl->cf[kSchema], "fields", &field_list);
  if (!gs.ok() && !gs.IsNotFound()) return translate(gs, path + ": reading the indexed fields");
  Result<std::vector<std::string>> fields = decode_field_list(field_list);
  if (!fields.is_ok()) return fields.status().prefixed(path + ": ");
  impl->indexed_fields = std::move(fields).value();
  const int bits = impl->schema.bits;
  impl->codes = CodeArray(bits);
  impl->mih = MultiIndex(bits, impl->schema.tables, options.expected_items);
  if (impl->mih.tables() != impl->schema.tables) {
    return Status::corruption(path + ": schema holds an invalid number of tables");
  }

  std::string next;
  gs = impl->db->Get(rocksdb::ReadOptions(), impl->cf[kSchema], "next_id", &next);
  if (!gs.ok() || next.size() != 8)
    return Status::corruption(path + ": next_id record is missing or damaged");
  impl->next_id = from_be64(next);

  // The live item count recorded with every batch (stores written before the record existed
  // have none).
  std::string recorded;
  std::optional<uint64_t> recorded_items;
  gs = impl->db->Get(rocksdb::ReadOptions(), impl->cf[kSchema], "items", &recorded);
  if (gs.ok()) {
    if (recorded.size() != 8) return Status::corruption(path + ": the items record is damaged");
    recorded_items = from_be64(recorded);
  } else if (!gs.IsNotFound()) {
    return translate(gs, path + ": reading the items record");
  }
  // The arrays saved at the last clean close, when they match this store exactly; else rebuilt
  // from the codes column family, in id order.
  std::string why_rebuilt = recorded_items ? impl->load_arrays(*recorded_items) : "no item count";
  if (why_rebuilt.empty() && impl->slot_ids.size() > 0 && impl->slot_ids.back() >= impl->next_id) {
    why_rebuilt = "the arrays file holds ids beyond the store's";
    impl->codes = CodeArray(bits);
    impl->slot_ids.clear();
  }
  impl->open_source = why_rebuilt.empty() ? "arrays file" : "rebuilt from RocksDB: " + why_rebuilt;
  if (!why_rebuilt.empty()) {
    const size_t code_bytes = static_cast<size_t>(bits) / 8;
    if (recorded_items) impl->codes.reserve(static_cast<size_t>(*recorded_items));
    std::unique_ptr<rocksdb::Iterator> it(
        impl->db->NewIterator(rocksdb::ReadOptions(), impl->cf[kCodes]));
    uint64_t last_id = 0;
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      if (it->key().size() != 8 || it->value().size() < code_bytes + 4) {
        return Status::corruption(path + ": a code record is damaged");
      }
      const uint64_t id = from_be64(it->key());
      if (id >= impl->next_id || id <= last_id) {
        return Status::corruption(path + ": code record id " + std::to_string(id) +
                                  " is out of order");
      }
      last_id = id;
      const rocksdb::Slice v = it->value();
      int32_t tag;
      std::memcpy(&tag, v.data() + code_bytes, 4);
      impl->codes.append(reinterpret_cast<const uint8_t*>(v.data()), tag);
      impl->slot_ids.push_back(id);
    }
    s = translate(it->status(), path + ": reading codes");
    if (!s.is_ok()) return s;
  }
  // The item count must match what the codes hold.
  if (recorded_items && *recorded_items != impl->codes.live()) {
    return Status::corruption(path + ": the store records " + std::to_string(*recorded_items) +
                              " items but its codes hold " + std::to_string(impl->codes.live()) +
                              " (damaged or missing files); nothing was changed (imsat repair "
                              "--db recovers what it can)");
  }
  impl->mih = MultiIndex(bits, impl->schema.tables, impl->codes.size());
  impl->mih.rebuild(impl->codes);
  if (!impl->indexed_fields.empty() && impl->cf[kFields] != nullptr) {
    // The indexed fields' postings: entries of items that are gone are skipped.
    std::unique_ptr<rocksdb::Iterator> fit(
        impl->db->NewIterator(rocksdb::ReadOptions(), impl->cf[kFields]));
    for (fit->SeekToFirst(); fit->Valid(); fit->Next()) {
      const rocksdb::Slice k = fit->key();
      if (k.size() < 9) continue;
      const int64_t slot = impl->slot_of(from_be64(rocksdb::Slice(k.data() + k.size() - 8, 8)));
      if (slot >= 0) impl->post(std::string(k.data(), k.size() - 8), static_cast<uint32_t>(slot));
    }
    s = translate(fit->status(), path + ": reading the indexed fields");
    if (!s.is_ok()) return s;
  }
  impl->arrays_enabled = !options.read_only;
  return std::unique_ptr<CodeStore>(new CodeStore(std::move(impl)));
}

}  // namespace imsat::index
