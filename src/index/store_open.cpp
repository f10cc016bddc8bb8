// Opening and creating a code store: atomic creation, schema checks, and rebuilding the in-memory
// code array and multi-index from the codes column family.
#include <rocksdb/cache.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/table.h>
#include <rocksdb/write_batch.h>
#include <rocksdb/write_buffer_manager.h>
#include <sys/stat.h>

#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
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

// The process holding `path`/LOCK (RocksDB's POSIX lock), from /proc/locks; 0 when unknown.
long lock_holder(const std::string& path) {
  struct stat st {};
  if (::stat((path + "/LOCK").c_str(), &st) != 0) return 0;
  std::ifstream locks("/proc/locks");
  std::string line;
  // "1: POSIX  ADVISORY  WRITE 4242 fd:01:123456 0 EOF": the pid, then major:minor:inode.
  static const std::regex entry(R"(^\d+:\s+\S+\s+\S+\s+\S+\s+(\d+)\s+[0-9a-f]+:[0-9a-f]+:(\d+)\s)");
  std::smatch m;
  while (std::getline(locks, line)) {
    if (std::regex_search(line, m, entry) &&
        std::stoull(m[2].str()) == static_cast<unsigned long long>(st.st_ino)) {
      return std::stol(m[1].str());
    }
  }
  return 0;
}

// RocksDB's "While lock file: .../LOCK: Resource temporarily unavailable" said as what it means.
Status explain_lock(Status s, const std::string& path) {
  const std::string& msg = s.message();
  if (s.is_ok() || (msg.find("lock file") == std::string::npos &&
                    msg.find("lock hold by current process") == std::string::npos)) {
    return s;
  }
  const long pid = lock_holder(path);
  return Status::io_error(path + ": the store is in use by another imsat process" +
                          (pid > 0 ? " (pid " + std::to_string(pid) + ")" : std::string()) +
                          "; stop it, or search and write through its HTTP API");
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

namespace {

// Whether `path` holds a store; the errors of a folder that cannot be opened as asked (a store
// without its CURRENT file, none where one must exist, no code length for a new one, a folder
// holding other files).
Result<bool> check_store_folder(const std::string& path, const StoreOptions& options) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const bool exists = fs::exists(fs::path(path) / "CURRENT", ec);
  if (!exists && (fs::exists(fs::path(path) / "IDENTITY", ec) ||
                  fs::exists(fs::path(path) / kWatermarkFile, ec))) {
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
  if (!exists && fs::exists(path, ec) && !fs::is_empty(path, ec)) {
    return Status::invalid_argument(path +
                                    ": exists and is not a code store (no RocksDB CURRENT file)");
  }
  return exists;
}

// RocksDB's options for a store: the database's, and each column family's.
struct RocksOptions {
  rocksdb::Options db;
  rocksdb::ColumnFamilyOptions keys, bulk, codes;
};

RocksOptions rocks_options(const StoreOptions& options, bool exists) {
  RocksOptions r;
  r.db.create_if_missing = options.create_if_missing;
  r.db.create_missing_column_families = !exists;
  r.db.paranoid_checks = true;
  // Refuse a write-ahead log that is corrupt before its tail instead of silently recovering only
  // up to the damage (the default point-in-time mode); a torn last record, which a crash during an
  // unacknowledged write leaves, is still tolerated. Closed logs are recorded in the MANIFEST, so
  // a missing or shortened one is an error too.
  r.db.wal_recovery_mode = rocksdb::WALRecoveryMode::kTolerateCorruptedTailRecords;
  r.db.track_and_verify_wals_in_manifest = true;
  r.db.IncreaseParallelism(2);
  // Bounded memory: one block cache for every family, holding data, index and filter blocks (so
  // table readers of a large store do not pin their index blocks outside it), and one budget for
  // all memtables, charged to that cache (a write-heavy family flushes early instead of each
  // family keeping three 64 MiB memtables).
  const size_t cache_bytes = std::max<size_t>(options.cache_mb, 1) << 20;
  std::shared_ptr<rocksdb::Cache> cache = rocksdb::NewLRUCache(cache_bytes);
  // Memtables are charged to the block cache, so the cache's size bounds both together.
  r.db.write_buffer_manager = std::make_shared<rocksdb::WriteBufferManager>(
      std::max<size_t>(options.write_buffer_mb, 4) << 20, cache);
  rocksdb::BlockBasedTableOptions table;
  table.block_cache = cache;
  table.cache_index_and_filter_blocks = true;
  table.pin_l0_filter_and_index_blocks_in_cache = true;
  rocksdb::BlockBasedTableOptions keys_table = table;
  keys_table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
  r.keys.table_factory.reset(rocksdb::NewBlockBasedTableFactory(keys_table));
  // A bulk load writes several records per code; a third memtable lets writes continue while
  // two flush (within the write buffer budget above).
  r.keys.write_buffer_size = 64 << 20;
  r.keys.max_write_buffer_number = 3;
  r.bulk.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
  r.bulk.write_buffer_size = 64 << 20;
  r.bulk.max_write_buffer_number = 3;
  // Codes are random bits: compressing their records costs time and saves nothing.
  r.codes = r.bulk;
  r.codes.compression = rocksdb::kNoCompression;
  return r;
}

}  // namespace

Result<std::unique_ptr<CodeStore>> CodeStore::open_existing_or_new(const std::string& path,
                                                                   const StoreOptions& given) {
  StoreOptions options = given;
  if (!options.secondary_path.empty()) {
    options.read_only = true;
    options.create_if_missing = false;
  }
  if (options.bits != 0) IMSAT_RETURN_IF_ERROR(check_code_bits(options.bits));
  IMSAT_ASSIGN_OR_RETURN(const bool exists, check_store_folder(path, options));
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
  IMSAT_RETURN_IF_ERROR(impl->open_db(exists));
  IMSAT_RETURN_IF_ERROR(impl->read_or_write_schema(exists));
  IMSAT_RETURN_IF_ERROR(impl->load_items());
  impl->arrays_enabled = !options.read_only;
  return std::unique_ptr<CodeStore>(new CodeStore(std::move(impl)));
}

Status CodeStore::Impl::open_db(bool exists) {
  RocksOptions r = rocks_options(options, exists);
  if (!options.read_only) {
    disk = std::make_shared<DiskState>();
    r.db.listeners.push_back(std::make_shared<DiskListener>(disk));
  }
  db_options = r.db;
  std::vector<rocksdb::ColumnFamilyDescriptor> descriptors;
  for (int i = 0; i < kCfCount; ++i) {
    descriptors.emplace_back(kCfNames[i], i == kKeys ? r.keys : i == kCodes ? r.codes : r.bulk);
    cf_options.push_back(descriptors.back().options);
  }
  bool fields_missing = false;
  if (exists) {
    std::vector<std::string> present;
    IMSAT_RETURN_IF_ERROR(translate(rocksdb::DB::ListColumnFamilies(r.db, path, &present),
                                    path + ": reading column families"));
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
    IMSAT_RETURN_IF_ERROR(check_tables_before_writing(path, r.db, descriptors));
  }
  rocksdb::DB* raw = nullptr;
  auto wal_log = std::make_shared<WalDamageLog>();
  rocksdb::Options read_only_options = r.db;
  read_only_options.info_log = wal_log;
  IMSAT_RETURN_IF_ERROR(with_wal_detail(
      explain_missing_table(
          explain_lock(
              translate(
                  !options.secondary_path.empty()
                      ? rocksdb::DB::OpenAsSecondary(read_only_options, path,
                                                     options.secondary_path, descriptors, &cf, &raw)
                  : options.read_only ? rocksdb::DB::OpenForReadOnly(read_only_options, path,
                                                                     descriptors, &cf, &raw)
                                      : rocksdb::DB::Open(r.db, path, descriptors, &cf, &raw),
                  path + ": opening the code store"),
              path),
          path),
      *wal_log));
  db.reset(raw);
  if (fields_missing) {
    rocksdb::ColumnFamilyHandle* handle = nullptr;
    if (!options.read_only) {
      IMSAT_RETURN_IF_ERROR(translate(raw->CreateColumnFamily(r.bulk, kCfNames[kFields], &handle),
                                      path + ": adding the fields column family"));
    }
    cf.push_back(handle);  // nullptr read-only: no field is indexed there
  }
  // A follower reads a store its primary is writing: files come and go, and the watermark may
  // be ahead of what the secondary has replayed, so those checks belong to the primary.
  const bool plain_read_only = options.read_only && options.secondary_path.empty();
  if (exists && plain_read_only) IMSAT_RETURN_IF_ERROR(check_tables_referenced(raw, cf, path));
  IMSAT_ASSIGN_OR_RETURN(generation, recorded_generation(raw, cf[kSchema]));
  if (exists && plain_read_only) IMSAT_RETURN_IF_ERROR(check_watermark(path, generation));
  return Status::ok();
}

Status CodeStore::Impl::read_or_write_schema(bool exists) {
  std::string schema_text;
  const rocksdb::Status gs = db->Get(rocksdb::ReadOptions(), cf[kSchema], "schema", &schema_text);
  if (gs.IsNotFound()) {
    if (exists) return Status::corruption(path + ": the schema record is missing");
    schema.bits = options.bits;
    schema.tables = options.tables > 0
                        ? options.tables
                        : MultiIndex::default_tables(options.bits, options.expected_items);
    schema.fingerprint = options.model_fingerprint;
    schema.metric = options.metric;
    schema.persist_buckets = false;
    // Normalise through MultiIndex, which caps substrings at 32 bits.
    schema.tables = MultiIndex(options.bits, schema.tables).tables();
    rocksdb::WriteBatch batch;
    batch.Put(cf[kSchema], "schema", schema.encode());
    batch.Put(cf[kSchema], "next_id", be64(1));
    batch.Put(cf[kSchema], "items", be64(0));
    batch.Put(cf[kSchema], "generation", be64(0));
    IMSAT_RETURN_IF_ERROR(
        translate(db->Write(write_options, &batch), path + ": writing the schema"));
    return write_watermark(path, {0, 0});
  }
  IMSAT_RETURN_IF_ERROR(translate(gs, path + ": reading the schema"));
  Result<Schema> decoded = Schema::decode(schema_text);
  if (!decoded.is_ok()) return Status::corruption(path + ": " + decoded.status().message());
  schema = *decoded;
  if (schema.format_version != kStoreFormatVersion) {
    return Status::invalid_argument(
        path + ": store format version " + std::to_string(schema.format_version) +
        ", this build reads version " + std::to_string(kStoreFormatVersion));
  }
  if (!check_code_bits(schema.bits).is_ok()) {
    return Status::corruption(path + ": schema holds an invalid code length");
  }
  if (options.bits != 0 && options.bits != schema.bits) {
    return Status::invalid_argument(path + ": the store holds " + std::to_string(schema.bits) +
                                    "-bit codes, but " + std::to_string(options.bits) +
                                    "-bit codes were asked for");
  }
  if (!options.model_fingerprint.empty() && !schema.fingerprint.empty() &&
      options.model_fingerprint != schema.fingerprint) {
    return Status::invalid_argument(path + ": the store was built with model " +
                                    schema.fingerprint + ", not " + options.model_fingerprint);
  }
  if (!options.metric.empty() && options.metric != schema.metric &&
      !(schema.metric.empty() && options.metric == "l2")) {
    return Status::invalid_argument(path + ": the store re-ranks by " +
                                    (schema.metric.empty() ? "l2" : schema.metric) +
                                    " distance, not " + options.metric);
  }
  return Status::ok();
}

Status CodeStore::Impl::load_items() {
  std::string field_list;
  rocksdb::Status gs = db->Get(rocksdb::ReadOptions(), cf[kSchema], "fields", &field_list);
  if (!gs.ok() && !gs.IsNotFound()) return translate(gs, path + ": reading the indexed fields");
  Result<std::vector<std::string>> fields = decode_field_list(field_list);
  if (!fields.is_ok()) return fields.status().prefixed(path + ": ");
  indexed_fields = std::move(fields).value();
  const int bits = schema.bits;
  codes = CodeArray(bits);
  mih = MultiIndex(bits, schema.tables, options.expected_items);
  if (mih.tables() != schema.tables) {
    return Status::corruption(path + ": schema holds an invalid number of tables");
  }
  std::string next;
  gs = db->Get(rocksdb::ReadOptions(), cf[kSchema], "next_id", &next);
  if (!gs.ok() || next.size() != 8)
    return Status::corruption(path + ": next_id record is missing or damaged");
  next_id = from_be64(next);
  // The live item count recorded with every batch (stores written before the record existed
  // have none).
  std::string recorded;
  std::optional<uint64_t> recorded_items;
  gs = db->Get(rocksdb::ReadOptions(), cf[kSchema], "items", &recorded);
  if (gs.ok()) {
    if (recorded.size() != 8) return Status::corruption(path + ": the items record is damaged");
    recorded_items = from_be64(recorded);
  } else if (!gs.IsNotFound()) {
    return translate(gs, path + ": reading the items record");
  }
  // The arrays saved at the last clean close, when they match this store exactly; else rebuilt
  // from the codes column family, in id order.
  std::string why_rebuilt = recorded_items ? load_arrays(*recorded_items) : "no item count";
  if (why_rebuilt.empty() && slot_ids.size() > 0 && slot_ids.back() >= next_id) {
    why_rebuilt = "the arrays file holds ids beyond the store's";
    codes = CodeArray(bits);
    slot_ids.clear();
  }
  open_source = why_rebuilt.empty() ? "arrays file" : "rebuilt from RocksDB: " + why_rebuilt;
  if (!why_rebuilt.empty()) IMSAT_RETURN_IF_ERROR(rebuild_arrays(recorded_items));
  // The item count must match what the codes hold.
  if (recorded_items && *recorded_items != codes.live()) {
    return Status::corruption(path + ": the store records " + std::to_string(*recorded_items) +
                              " items but its codes hold " + std::to_string(codes.live()) +
                              " (damaged or missing files); nothing was changed (imsat repair "
                              "--db recovers what it can)");
  }
  mih = MultiIndex(bits, schema.tables, codes.size());
  mih.rebuild(codes);
  return load_postings();
}

Status CodeStore::Impl::rebuild_arrays(std::optional<uint64_t> recorded_items) {
  const size_t code_bytes = static_cast<size_t>(schema.bits) / 8;
  if (recorded_items) codes.reserve(static_cast<size_t>(*recorded_items));
  std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(rocksdb::ReadOptions(), cf[kCodes]));
  uint64_t last_id = 0;
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    if (it->key().size() != 8 || it->value().size() < code_bytes + 4) {
      return Status::corruption(path + ": a code record is damaged");
    }
    const uint64_t id = from_be64(it->key());
    if (id >= next_id || id <= last_id) {
      return Status::corruption(path + ": code record id " + std::to_string(id) +
                                " is out of order");
    }
    last_id = id;
    const rocksdb::Slice v = it->value();
    int32_t tag;
    std::memcpy(&tag, v.data() + code_bytes, 4);
    codes.append(reinterpret_cast<const uint8_t*>(v.data()), tag);
    slot_ids.push_back(id);
  }
  return translate(it->status(), path + ": reading codes");
}

Status CodeStore::Impl::load_postings() {
  if (indexed_fields.empty() || cf[kFields] == nullptr) return Status::ok();
  // The indexed fields' postings: entries of items that are gone are skipped.
  std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(rocksdb::ReadOptions(), cf[kFields]));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    const rocksdb::Slice k = it->key();
    if (k.size() < 9) continue;
    const int64_t slot = slot_of(from_be64(rocksdb::Slice(k.data() + k.size() - 8, 8)));
    if (slot >= 0) post(std::string(k.data(), k.size() - 8), static_cast<uint32_t>(slot));
  }
  return translate(it->status(), path + ": reading the indexed fields");
}

}  // namespace imsat::index
