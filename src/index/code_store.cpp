// The durable code store on RocksDB. RocksDB statuses are translated here and nowhere else.
//
// Column families (keys big-endian so that iteration follows ids):
//   schema   "schema" -> text lines (format_version, bits, tables, model_fingerprint);
//            "next_id" -> u64; "bulk:<job>" -> u64 source items committed by a bulk load
//   codes    id (u64) -> code bytes | i32 tag (little-endian) | external key
//   meta     id -> metadata bytes (absent when empty)
//   keys     external key -> id
//   buckets  u8 table | u32 substring | u64 id -> ""   (the multi-index entries)
#include "index/code_store.h"

#include <pthread.h>
#include <rocksdb/db.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/sst_file_writer.h>
#include <rocksdb/table.h>
#include <rocksdb/write_batch.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <shared_mutex>
#include <sstream>
#include <unordered_set>

namespace imsat::index {
namespace {

const char* const kCfNames[] = {"default", "schema", "codes", "meta", "keys", "buckets"};
enum Cf { kDefault = 0, kSchema, kCodes, kMeta, kKeys, kBuckets, kCfCount };

Status translate(const rocksdb::Status& s, const std::string& what) {
  if (s.ok()) return Status::ok();
  const std::string msg = what + ": " + s.ToString();
  if (s.IsNotFound()) return Status::not_found(msg);
  if (s.IsCorruption()) return Status::corruption(msg);
  if (s.IsInvalidArgument()) return Status::invalid_argument(msg);
  return Status::io_error(msg);
}

std::string be64(uint64_t v) {
  std::string s(8, '\0');
  for (int i = 7; i >= 0; --i, v >>= 8) s[static_cast<size_t>(i)] = static_cast<char>(v & 0xff);
  return s;
}
// Meta column family key of an item's raw vector: its id followed by 'v' (sorts right after the
// item's metadata record, be64(id)).
std::string vector_key(uint64_t id) { return be64(id) + "v"; }
uint64_t from_be64(const rocksdb::Slice& s) {
  uint64_t v = 0;
  for (size_t i = 0; i < 8; ++i) v = (v << 8) | static_cast<uint8_t>(s[i]);
  return v;
}
std::string bucket_key(int table, uint32_t sub, uint64_t id) {
  std::string k(1, static_cast<char>(table));
  for (int i = 3; i >= 0; --i) k.push_back(static_cast<char>((sub >> (8 * i)) & 0xff));
  return k + be64(id);
}

struct Schema {
  uint32_t format_version = kStoreFormatVersion;
  int bits = 0;
  int tables = 0;
  std::string fingerprint;

  std::string encode() const {
    std::ostringstream o;
    o << "format_version=" << format_version << "\nbits=" << bits << "\ntables=" << tables
      << "\nmodel_fingerprint=" << fingerprint << "\n";
    return o.str();
  }
  static Result<Schema> decode(const std::string& text) {
    Schema s;
    s.format_version = 0;
    std::istringstream in(text);
    std::string line;
    while (std::getline(in, line)) {
      const size_t eq = line.find('=');
      if (eq == std::string::npos) continue;
      const std::string k = line.substr(0, eq), v = line.substr(eq + 1);
      try {
        if (k == "format_version") s.format_version = static_cast<uint32_t>(std::stoul(v));
        if (k == "bits") s.bits = std::stoi(v);
        if (k == "tables") s.tables = std::stoi(v);
      } catch (const std::exception&) {
        return Status::corruption("schema field " + k + " is not a number: '" + v + "'");
      }
      if (k == "model_fingerprint") s.fingerprint = v;
    }
    if (s.format_version == 0 || s.bits == 0 || s.tables == 0) {
      return Status::corruption("schema record is incomplete");
    }
    return s;
  }
};

// A reader-writer lock that does not starve the writer: glibc's rwlock prefers readers, so a
// steady stream of searches would hold off every write. Readers and the writer both pass a gate
// mutex; a waiting writer holds the gate, so new readers queue behind it. Both locks are
// initialised with pthread_*_init (not static initialisers) so ThreadSanitizer tracks them even
// when the memory held another lock before.
class WriterFairMutex {
 public:
  WriterFairMutex() {
    pthread_mutex_init(&gate_, nullptr);
    pthread_rwlock_init(&rw_, nullptr);
  }
  ~WriterFairMutex() {
    pthread_rwlock_destroy(&rw_);
    pthread_mutex_destroy(&gate_);
  }
  WriterFairMutex(const WriterFairMutex&) = delete;
  WriterFairMutex& operator=(const WriterFairMutex&) = delete;

  void lock() {
    pthread_mutex_lock(&gate_);
    pthread_rwlock_wrlock(&rw_);
    pthread_mutex_unlock(&gate_);
  }
  void unlock() { pthread_rwlock_unlock(&rw_); }
  void lock_shared() {
    pthread_mutex_lock(&gate_);
    pthread_rwlock_rdlock(&rw_);
    pthread_mutex_unlock(&gate_);
  }
  void unlock_shared() { pthread_rwlock_unlock(&rw_); }

 private:
  pthread_mutex_t gate_;
  pthread_rwlock_t rw_;
};

}  // namespace

struct CodeStore::Impl {
  std::string path;
  StoreOptions options;
  Schema schema;
  std::unique_ptr<rocksdb::DB> db;
  std::vector<rocksdb::ColumnFamilyHandle*> cf;
  rocksdb::WriteOptions write_options;
  rocksdb::Options db_options;

  // In-memory state, rebuilt on open. Guarded by state_mutex (shared for readers).
  mutable WriterFairMutex state_mutex;
  CodeArray codes{8};
  MultiIndex mih{8, 1};
  std::vector<uint64_t> slot_ids;        // increasing: slot order is id order
  std::vector<uint64_t> key_offsets{0};  // slot s: [key_offsets[s], key_offsets[s + 1]) in key_blob
  std::string key_blob;
  uint64_t next_id = 1;

  std::mutex writer_mutex;  // one writer at a time

  ~Impl() {
    for (auto* h : cf) {
      if (h != nullptr && db) db->DestroyColumnFamilyHandle(h);
    }
    if (db) db->Close().PermitUncheckedError();
  }

  std::string key_of(uint32_t slot) const {
    return key_blob.substr(key_offsets[slot], key_offsets[slot + 1] - key_offsets[slot]);
  }
  // Slot of a live id, or -1.
  int64_t slot_of(uint64_t id) const {
    auto it = std::lower_bound(slot_ids.begin(), slot_ids.end(), id);
    if (it == slot_ids.end() || *it != id) return -1;
    const auto slot = static_cast<uint32_t>(it - slot_ids.begin());
    return codes.is_deleted(slot) ? -1 : static_cast<int64_t>(slot);
  }
  Result<uint64_t> lookup_id(const std::string& key) const {
    std::string value;
    rocksdb::Status s = db->Get(rocksdb::ReadOptions(), cf[kKeys], key, &value);
    if (s.IsNotFound()) return Status::not_found("no item with key '" + key + "'");
    if (!s.ok()) return translate(s, "reading key '" + key + "'");
    if (value.size() != 8) return Status::corruption("key '" + key + "' maps to a damaged id");
    return from_be64(value);
  }
  void append_memory(uint64_t id, const std::string& key, const uint8_t* code, int32_t tag) {
    const uint32_t slot = codes.append(code, tag);
    slot_ids.push_back(id);
    key_blob += key;
    key_offsets.push_back(key_blob.size());
    mih.insert(codes, slot);
  }
  Status validate(const std::vector<Item>& items) const {
    std::unordered_set<std::string> seen;
    for (size_t i = 0; i < items.size(); ++i) {
      const Item& it = items[i];
      if (it.key.empty()) {
        return Status::invalid_argument("item " + std::to_string(i) + " has an empty key");
      }
      if (it.code.size() != codes.code_bytes()) {
        return Status::invalid_argument(
            "item '" + it.key + "' has a " + std::to_string(it.code.size() * 8) +
            "-bit code; the store holds " + std::to_string(codes.bits()) + "-bit codes");
      }
      if (!seen.insert(it.key).second) {
        return Status::invalid_argument("key '" + it.key + "' appears twice in one batch");
      }
      for (float v : it.vector) {
        if (!std::isfinite(v)) {
          return Status::invalid_argument("item '" + it.key + "' has a NaN or infinite value");
        }
      }
    }
    return Status::ok();
  }

  // The records of one batch, per column family. Within a family every key is distinct, so the
  // records can be written in any order; they are sorted before writing, which SST files need
  // and which keeps memtable inserts near the previous one (a skip-list insert starts its search
  // from the last insert).
  struct Record {
    std::string key;
    std::string value;
    bool erase = false;
    bool operator<(const Record& o) const { return key < o.key; }
  };
  struct BatchPlan {
    std::vector<Record> records[kCfCount];
    std::vector<std::pair<uint32_t, uint64_t>> replaced;  // (slot, old id) of upserted keys
    uint64_t next_id = 0;
  };

  // One MultiGet of `keys` in column family `c`; values and found get one entry per key.
  void multi_get(Cf c, const std::vector<rocksdb::Slice>& keys,
                 std::vector<rocksdb::PinnableSlice>* values,
                 std::vector<rocksdb::Status>* found) const {
    values->clear();
    values->resize(keys.size());
    found->assign(keys.size(), rocksdb::Status());
    db->MultiGet(rocksdb::ReadOptions(), cf[c], keys.size(), keys.data(), values->data(),
                 found->data());
  }

  // Plans a batch of upserts: one MultiGet finds the keys that already exist; their old records
  // are deleted and every item gets a new id. Caller holds writer_mutex.
  Result<BatchPlan> plan(const std::vector<Item>& items) const {
    IMSAT_RETURN_IF_ERROR(validate(items));
    BatchPlan p;
    std::vector<rocksdb::Slice> keys;
    keys.reserve(items.size());
    for (const Item& item : items) keys.emplace_back(item.key);
    std::vector<rocksdb::PinnableSlice> values;
    std::vector<rocksdb::Status> found;
    multi_get(kKeys, keys, &values, &found);
    std::vector<uint64_t> packed(codes.words());
    uint64_t id = next_id;
    for (size_t i = 0; i < items.size(); ++i) {
      const Item& item = items[i];
      if (found[i].ok()) {
        if (values[i].size() != 8) {
          return Status::corruption("key '" + item.key + "' maps to a damaged id");
        }
        const uint64_t old = from_be64(values[i]);
        const int64_t slot = slot_of(old);
        if (slot < 0) return Status::corruption("key '" + item.key + "' maps to a missing item");
        p.records[kCodes].push_back({be64(old), "", true});
        p.records[kMeta].push_back({be64(old), "", true});
        p.records[kMeta].push_back({vector_key(old), "", true});
        for (int t = 0; t < mih.tables(); ++t) {
          p.records[kBuckets].push_back(
              {bucket_key(t, mih.substring(t, codes.code(static_cast<uint32_t>(slot))), old), "",
               true});
        }
        p.replaced.emplace_back(static_cast<uint32_t>(slot), old);
      } else if (!found[i].IsNotFound()) {
        return translate(found[i], "reading key '" + item.key + "'");
      }
      std::string value(reinterpret_cast<const char*>(item.code.data()), item.code.size());
      char tag[4];
      std::memcpy(tag, &item.tag, 4);
      value.append(tag, 4);
      value += item.key;
      const std::string idk = be64(id);
      p.records[kCodes].push_back({idk, std::move(value)});
      if (!item.metadata.empty()) p.records[kMeta].push_back({idk, item.metadata});
      if (!item.vector.empty()) {
        p.records[kMeta].push_back(
            {vector_key(id), std::string(reinterpret_cast<const char*>(item.vector.data()),
                                         item.vector.size() * sizeof(float))});
      }
      p.records[kKeys].push_back({item.key, idk});
      codes.pack(item.code.data(), packed.data());
      for (int t = 0; t < mih.tables(); ++t) {
        p.records[kBuckets].push_back({bucket_key(t, mih.substring(t, packed.data()), id), ""});
      }
      ++id;
    }
    p.next_id = id;
    p.records[kSchema].push_back({"next_id", be64(id)});
    for (auto& r : p.records) std::sort(r.begin(), r.end());
    return p;
  }

  // Commits a plan as one WriteBatch through the write-ahead log.
  Status commit_write_batch(const BatchPlan& p) {
    rocksdb::WriteBatch batch;
    for (int c = 1; c < kCfCount; ++c) {
      for (const Record& r : p.records[c]) {
        if (r.erase) {
          batch.Delete(cf[c], r.key);
        } else {
          batch.Put(cf[c], r.key, r.value);
        }
      }
    }
    return translate(db->Write(write_options, &batch), "writing a batch");
  }

  // Commits a plan as SST files, one per column family, ingested in one atomic step: the bulk
  // path, which skips the write-ahead log and the memtables. Durable when it returns (the
  // ingestion is recorded in the synced MANIFEST).
  Status commit_ingest(const BatchPlan& p) {
    namespace fs = std::filesystem;
    const fs::path dir = fs::path(path) / "bulk-ingest";
    std::error_code ec;
    fs::remove_all(dir, ec);
    fs::create_directories(dir, ec);
    if (ec) return Status::io_error(dir.string() + ": " + ec.message());
    std::vector<rocksdb::IngestExternalFileArg> args;
    for (int c = 1; c < kCfCount; ++c) {
      if (p.records[c].empty()) continue;
      const std::string file = (dir / (std::string(kCfNames[c]) + ".sst")).string();
      rocksdb::SstFileWriter writer(rocksdb::EnvOptions(), db_options, cf[c]);
      IMSAT_RETURN_IF_ERROR(translate(writer.Open(file), file));
      for (const Record& r : p.records[c]) {
        IMSAT_RETURN_IF_ERROR(
            translate(r.erase ? writer.Delete(r.key) : writer.Put(r.key, r.value), file));
      }
      IMSAT_RETURN_IF_ERROR(translate(writer.Finish(), file));
      rocksdb::IngestExternalFileArg arg;
      arg.column_family = cf[c];
      arg.external_files = {file};
      arg.options.move_files = true;
      args.push_back(std::move(arg));
    }
    Status s = translate(db->IngestExternalFiles(args), "ingesting a bulk batch");
    fs::remove_all(dir, ec);
    return s;
  }

  // Applies a committed plan to the in-memory array and buckets.
  void apply(const BatchPlan& p, const std::vector<Item>& items) {
    std::unique_lock lock(state_mutex);
    for (const auto& [slot, old] : p.replaced) codes.erase(slot);
    uint64_t id = next_id;
    for (const Item& item : items) append_memory(id++, item.key, item.code.data(), item.tag);
    next_id = p.next_id;
  }
};

CodeStore::CodeStore(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
CodeStore::~CodeStore() = default;

Result<std::unique_ptr<CodeStore>> CodeStore::open(const std::string& path,
                                                   const StoreOptions& options) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::exists(fs::path(path) / "CURRENT", ec) && options.create_if_missing &&
      options.bits != 0 && (!fs::exists(path, ec) || fs::is_empty(path, ec))) {
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
      Result<std::unique_ptr<CodeStore>> made = open_existing_or_new(staging, create);
      if (!made.is_ok()) return made.status();
    }
    fs::rename(staging, target, ec);
    if (ec)
      return Status::io_error(path + ": cannot move the new store into place: " + ec.message());
  }
  return open_existing_or_new(path, options);
}

Result<std::unique_ptr<CodeStore>> CodeStore::open_existing_or_new(const std::string& path,
                                                                   const StoreOptions& options) {
  if (options.bits != 0) IMSAT_RETURN_IF_ERROR(check_code_bits(options.bits));
  std::error_code ec;
  const bool exists = std::filesystem::exists(std::filesystem::path(path) / "CURRENT", ec);
  if (!exists && !options.create_if_missing)
    return Status::not_found(path + ": no code store here");
  if (!exists && options.bits == 0) {
    return Status::invalid_argument(path + ": creating a store needs the code length (bits)");
  }
  if (!exists && std::filesystem::exists(path, ec) && !std::filesystem::is_empty(path, ec)) {
    return Status::invalid_argument(path +
                                    ": exists and is not a code store (no RocksDB CURRENT file)");
  }

  auto impl = std::make_unique<Impl>();
  impl->path = path;
  impl->options = options;
  impl->write_options.sync = options.sync_writes;

  rocksdb::Options db_options;
  db_options.create_if_missing = options.create_if_missing;
  db_options.create_missing_column_families = !exists;
  db_options.paranoid_checks = true;
  db_options.IncreaseParallelism(2);
  rocksdb::BlockBasedTableOptions table;
  table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
  rocksdb::ColumnFamilyOptions keys_options;
  keys_options.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
  // A bulk load writes several records per code; a third memtable lets writes continue while
  // two flush.
  keys_options.write_buffer_size = 64 << 20;
  keys_options.max_write_buffer_number = 3;
  rocksdb::ColumnFamilyOptions bulk_options;
  bulk_options.write_buffer_size = 64 << 20;
  bulk_options.max_write_buffer_number = 3;

  impl->db_options = db_options;
  std::vector<rocksdb::ColumnFamilyDescriptor> descriptors;
  for (int i = 0; i < kCfCount; ++i) {
    descriptors.emplace_back(kCfNames[i], i == kKeys ? keys_options : bulk_options);
  }
  if (exists) {
    std::vector<std::string> present;
    Status s = translate(rocksdb::DB::ListColumnFamilies(db_options, path, &present),
                         path + ": reading column families");
    if (!s.is_ok()) return s;
    for (int i = 1; i < kCfCount; ++i) {
      if (std::find(present.begin(), present.end(), kCfNames[i]) == present.end()) {
        return Status::corruption(path + ": not an imsat code store (column family '" +
                                  std::string(kCfNames[i]) + "' is missing)");
      }
    }
  }
  rocksdb::DB* raw = nullptr;
  Status s = translate(rocksdb::DB::Open(db_options, path, descriptors, &impl->cf, &raw),
                       path + ": opening the code store");
  if (!s.is_ok()) return s;
  impl->db.reset(raw);

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
    // Normalise through MultiIndex, which caps substrings at 32 bits.
    impl->schema.tables = MultiIndex(options.bits, impl->schema.tables).tables();
    rocksdb::WriteBatch batch;
    batch.Put(impl->cf[kSchema], "schema", impl->schema.encode());
    batch.Put(impl->cf[kSchema], "next_id", be64(1));
    s = translate(impl->db->Write(impl->write_options, &batch), path + ": writing the schema");
    if (!s.is_ok()) return s;
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

  // Rebuild the in-memory array from the codes column family, in id order.
  const size_t code_bytes = static_cast<size_t>(bits) / 8;
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
    const std::string key(v.data() + code_bytes + 4, v.size() - code_bytes - 4);
    const uint32_t slot = impl->codes.append(reinterpret_cast<const uint8_t*>(v.data()), tag);
    (void)slot;
    impl->slot_ids.push_back(id);
    impl->key_blob += key;
    impl->key_offsets.push_back(impl->key_blob.size());
  }
  s = translate(it->status(), path + ": reading codes");
  if (!s.is_ok()) return s;
  impl->mih = MultiIndex(bits, impl->schema.tables, impl->codes.size());
  impl->mih.rebuild(impl->codes);
  return std::unique_ptr<CodeStore>(new CodeStore(std::move(impl)));
}

StoreInfo CodeStore::info() const {
  std::shared_lock lock(impl_->state_mutex);
  StoreInfo i;
  i.bits = impl_->schema.bits;
  i.tables = impl_->schema.tables;
  i.format_version = impl_->schema.format_version;
  i.model_fingerprint = impl_->schema.fingerprint;
  i.items = impl_->codes.live();
  i.memory_bytes = impl_->codes.memory_bytes() + impl_->mih.memory_bytes() +
                   impl_->slot_ids.capacity() * 8 + impl_->key_offsets.capacity() * 8 +
                   impl_->key_blob.capacity();
  return i;
}

int CodeStore::bits() const { return impl_->schema.bits; }

Status CodeStore::put(const std::vector<Item>& items) {
  if (items.empty()) return Status::ok();
  std::lock_guard writer(impl_->writer_mutex);
  Result<Impl::BatchPlan> plan = impl_->plan(items);
  if (!plan.is_ok()) return plan.status();
  IMSAT_RETURN_IF_ERROR(impl_->commit_write_batch(*plan));
  impl_->apply(*plan, items);
  return Status::ok();
}

Status CodeStore::erase(const std::vector<std::string>& keys) {
  std::lock_guard writer(impl_->writer_mutex);
  rocksdb::WriteBatch batch;
  std::vector<uint32_t> slots;
  std::unordered_set<std::string> seen;
  for (const std::string& key : keys) {
    if (!seen.insert(key).second) continue;
    Result<uint64_t> id = impl_->lookup_id(key);
    if (!id.is_ok()) return id.status();
    const int64_t slot = impl_->slot_of(*id);
    if (slot < 0) return Status::corruption("key '" + key + "' maps to a missing item");
    batch.Delete(impl_->cf[kCodes], be64(*id));
    batch.Delete(impl_->cf[kMeta], be64(*id));
    batch.Delete(impl_->cf[kMeta], vector_key(*id));
    batch.Delete(impl_->cf[kKeys], key);
    for (int t = 0; t < impl_->mih.tables(); ++t) {
      const uint64_t* code = impl_->codes.code(static_cast<uint32_t>(slot));
      batch.Delete(impl_->cf[kBuckets], bucket_key(t, impl_->mih.substring(t, code), *id));
    }
    slots.push_back(static_cast<uint32_t>(slot));
  }
  IMSAT_RETURN_IF_ERROR(translate(impl_->db->Write(impl_->write_options, &batch), "deleting"));
  std::unique_lock lock(impl_->state_mutex);
  for (uint32_t s : slots) impl_->codes.erase(s);
  return Status::ok();
}

Result<Item> CodeStore::get(const std::string& key) const {
  Result<uint64_t> id = impl_->lookup_id(key);
  if (!id.is_ok()) return id.status();
  Item item;
  item.key = key;
  {
    std::shared_lock lock(impl_->state_mutex);
    const int64_t slot = impl_->slot_of(*id);
    if (slot < 0) return Status::not_found("no item with key '" + key + "'");
    item.code.resize(impl_->codes.code_bytes());
    impl_->codes.unpack(static_cast<uint32_t>(slot), item.code.data());
    item.tag = impl_->codes.tag(static_cast<uint32_t>(slot));
  }
  rocksdb::Status s =
      impl_->db->Get(rocksdb::ReadOptions(), impl_->cf[kMeta], be64(*id), &item.metadata);
  if (!s.ok() && !s.IsNotFound()) return translate(s, "reading metadata of '" + key + "'");
  std::string v;
  s = impl_->db->Get(rocksdb::ReadOptions(), impl_->cf[kMeta], vector_key(*id), &v);
  if (!s.ok() && !s.IsNotFound()) return translate(s, "reading the vector of '" + key + "'");
  item.vector.resize(v.size() / sizeof(float));
  if (!v.empty()) std::memcpy(item.vector.data(), v.data(), item.vector.size() * sizeof(float));
  return item;
}

Result<std::vector<std::string>> CodeStore::metadata(const std::vector<uint64_t>& ids) const {
  std::vector<std::string> keys;
  keys.reserve(ids.size());
  for (uint64_t id : ids) keys.push_back(be64(id));
  std::vector<rocksdb::PinnableSlice> values;
  std::vector<rocksdb::Status> found;
  impl_->multi_get(kMeta, std::vector<rocksdb::Slice>(keys.begin(), keys.end()), &values, &found);
  std::vector<std::string> out(ids.size());
  for (size_t i = 0; i < ids.size(); ++i) {
    if (found[i].IsNotFound()) continue;
    if (!found[i].ok()) return translate(found[i], "reading metadata");
    out[i] = values[i].ToString();
  }
  return out;
}

Status CodeStore::for_each_vector(
    const std::function<void(uint64_t id, const float* values, size_t count)>& fn) const {
  std::unique_ptr<rocksdb::Iterator> it(
      impl_->db->NewIterator(rocksdb::ReadOptions(), impl_->cf[kMeta]));
  std::vector<float> values;
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    const rocksdb::Slice key = it->key();
    if (key.size() != 9 || key[8] != 'v') continue;  // metadata records are 8 bytes
    const rocksdb::Slice v = it->value();
    if (v.size() % sizeof(float) != 0) {
      return Status::corruption("stored vector of item " +
                                std::to_string(from_be64(rocksdb::Slice(key.data(), 8))) +
                                " is not a whole number of floats");
    }
    values.resize(v.size() / sizeof(float));
    if (!v.empty()) std::memcpy(values.data(), v.data(), v.size());
    fn(from_be64(rocksdb::Slice(key.data(), 8)), values.data(), values.size());
  }
  return translate(it->status(), "reading stored vectors");
}

Result<std::vector<float>> CodeStore::vectors(const std::vector<uint64_t>& ids,
                                              size_t dim) const {
  std::vector<std::string> keys;
  keys.reserve(ids.size());
  for (uint64_t id : ids) keys.push_back(vector_key(id));
  std::vector<rocksdb::PinnableSlice> values;
  std::vector<rocksdb::Status> found;
  impl_->multi_get(kMeta, std::vector<rocksdb::Slice>(keys.begin(), keys.end()), &values, &found);
  std::vector<float> out(ids.size() * dim);
  for (size_t i = 0; i < ids.size(); ++i) {
    if (found[i].IsNotFound()) {
      return Status::not_found("item " + std::to_string(ids[i]) +
                               " has no stored vector (index with vectors to re-rank exactly)");
    }
    if (!found[i].ok()) return translate(found[i], "reading stored vectors");
    if (values[i].size() != dim * sizeof(float)) {
      return Status::invalid_argument("stored vector of item " + std::to_string(ids[i]) + " has " +
                                      std::to_string(values[i].size() / sizeof(float)) +
                                      " values, expected " + std::to_string(dim));
    }
    std::memcpy(out.data() + i * dim, values[i].data(), dim * sizeof(float));
  }
  return out;
}

Result<size_t> CodeStore::bulk_progress(const std::string& job) const {
  std::string v;
  rocksdb::Status s = impl_->db->Get(rocksdb::ReadOptions(), impl_->cf[kSchema], "bulk:" + job, &v);
  if (s.IsNotFound()) return size_t{0};
  if (!s.ok()) return translate(s, "reading bulk progress of " + job);
  if (v.size() != 8) return Status::corruption("bulk progress record of " + job + " is damaged");
  return static_cast<size_t>(from_be64(v));
}

Status CodeStore::bulk_load(const std::string& job, const std::function<bool(size_t, Item*)>& next,
                            size_t batch_items, const std::function<void(size_t)>& progress) {
  if (job.empty()) return Status::invalid_argument("bulk load needs a job name");
  if (batch_items == 0) return Status::invalid_argument("batch size must be positive");
  std::lock_guard writer(impl_->writer_mutex);
  Result<size_t> done = bulk_progress(job);
  if (!done.is_ok()) return done.status();
  size_t position = *done;
  std::vector<Item> items;
  bool more = true;
  while (more) {
    items.clear();
    while (items.size() < batch_items) {
      Item item;
      if (!next(position + items.size(), &item)) {
        more = false;
        break;
      }
      items.push_back(std::move(item));
    }
    if (items.empty()) break;
    Result<Impl::BatchPlan> plan = impl_->plan(items);
    if (!plan.is_ok()) return plan.status();
    // The progress record travels in the same atomic ingestion as the items.
    auto& schema = plan->records[kSchema];
    schema.push_back({"bulk:" + job, be64(position + items.size())});
    std::sort(schema.begin(), schema.end());
    IMSAT_RETURN_IF_ERROR(impl_->commit_ingest(*plan));
    impl_->apply(*plan, items);
    position += items.size();
    if (progress) progress(position);
  }
  return Status::ok();
}

Result<std::vector<Hit>> CodeStore::search(const std::vector<uint8_t>& code, const SearchOptions& o,
                                           SearchStats* stats) const {
  const int bits = impl_->schema.bits;
  if (code.size() != static_cast<size_t>(bits) / 8) {
    return Status::invalid_argument("query code has " + std::to_string(code.size() * 8) +
                                    " bits; the store holds " + std::to_string(bits) +
                                    "-bit codes");
  }
  if (o.radius < 0 && (o.k < 1 || o.k > kMaxK)) {
    return Status::invalid_argument("k must be from 1 to " + std::to_string(kMaxK) + ", got " +
                                    std::to_string(o.k));
  }
  if (o.radius > bits) {
    return Status::invalid_argument("radius " + std::to_string(o.radius) + " exceeds the " +
                                    std::to_string(bits) + "-bit code length");
  }
  std::vector<uint8_t> allowed;
  if (o.allowed_keys != nullptr) {
    std::vector<uint64_t> ids;
    for (const std::string& key : *o.allowed_keys) {
      Result<uint64_t> id = impl_->lookup_id(key);
      if (id.is_ok()) ids.push_back(*id);
    }
    std::shared_lock lock(impl_->state_mutex);
    allowed.assign(impl_->codes.size(), 0);
    for (uint64_t id : ids) {
      const int64_t slot = impl_->slot_of(id);
      if (slot >= 0) allowed[static_cast<size_t>(slot)] = 1;
    }
  }
  std::shared_lock lock(impl_->state_mutex);
  const CodeArray& codes = impl_->codes;
  if (allowed.size() < codes.size() && o.allowed_keys != nullptr) allowed.resize(codes.size(), 0);
  Filter filter;
  if (o.allowed_keys != nullptr) filter.allowed_slots = &allowed;
  filter.tag_predicate = o.tag_predicate;
  std::vector<uint64_t> query(codes.words());
  codes.pack(code.data(), query.data());
  std::vector<Neighbor> found;
  if (o.radius >= 0) {
    found =
        o.use_multi_index
            ? impl_->mih.radius(codes, query.data(), static_cast<uint32_t>(o.radius), filter, stats)
            : scan_radius(codes, query.data(), static_cast<uint32_t>(o.radius), filter, stats);
  } else {
    found = o.use_multi_index ? impl_->mih.knn(codes, query.data(), o.k, filter, stats)
                              : scan_knn(codes, query.data(), o.k, filter, stats, o.threads);
  }
  std::vector<Hit> hits;
  hits.reserve(found.size());
  for (const Neighbor& n : found) {
    hits.push_back({impl_->key_of(n.slot), n.distance, codes.tag(n.slot), impl_->slot_ids[n.slot],
                    {}});
    if (o.with_codes) {
      hits.back().code.resize(codes.code_bytes());
      codes.unpack(n.slot, hits.back().code.data());
    }
  }
  return hits;
}

std::vector<double> CodeStore::bit_balance() const {
  std::shared_lock lock(impl_->state_mutex);
  return index::bit_balance(impl_->codes);
}

std::vector<std::vector<uint64_t>> CodeStore::occupancy_histograms(size_t max_count) const {
  std::shared_lock lock(impl_->state_mutex);
  std::vector<std::vector<uint64_t>> out;
  for (int t = 0; t < impl_->mih.tables(); ++t)
    out.push_back(impl_->mih.occupancy_histogram(t, max_count));
  return out;
}

std::vector<uint64_t> CodeStore::distance_histogram(size_t sample_queries, uint64_t seed) const {
  std::shared_lock lock(impl_->state_mutex);
  return index::distance_histogram(impl_->codes, sample_queries, seed);
}

std::vector<uint8_t> CodeStore::sample_codes(size_t max_items, std::vector<int32_t>* tags) const {
  std::shared_lock lock(impl_->state_mutex);
  const CodeArray& codes = impl_->codes;
  const size_t bytes = codes.code_bytes();
  std::vector<uint8_t> out;
  if (tags != nullptr) tags->clear();
  if (codes.live() == 0 || max_items == 0) return out;
  const size_t step = std::max<size_t>(1, codes.size() / max_items);
  out.reserve(std::min(max_items, codes.live()) * bytes);
  size_t taken = 0;
  for (size_t slot = 0; slot < codes.size() && taken < max_items; slot += step) {
    if (codes.is_deleted(static_cast<uint32_t>(slot))) continue;
    ++taken;
    out.resize(out.size() + bytes);
    codes.unpack(static_cast<uint32_t>(slot), out.data() + out.size() - bytes);
    if (tags != nullptr) tags->push_back(codes.tag(static_cast<uint32_t>(slot)));
  }
  return out;
}

Status CodeStore::verify() const {
  std::lock_guard writer(impl_->writer_mutex);
  std::shared_lock lock(impl_->state_mutex);
  const Impl& x = *impl_;
  const size_t code_bytes = x.codes.code_bytes();
  // Every live slot has its code record, key record and one bucket entry per table.
  size_t code_records = 0;
  std::unique_ptr<rocksdb::Iterator> it(x.db->NewIterator(rocksdb::ReadOptions(), x.cf[kCodes]));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    ++code_records;
    const uint64_t id = from_be64(it->key());
    const int64_t slot = x.slot_of(id);
    if (slot < 0)
      return Status::corruption("code record " + std::to_string(id) +
                                " has no live item in memory");
    if (std::memcmp(it->value().data(), x.codes.code(static_cast<uint32_t>(slot)), code_bytes) !=
        0) {
      return Status::corruption("code record " + std::to_string(id) + " differs from memory");
    }
    const std::string key = x.key_of(static_cast<uint32_t>(slot));
    Result<uint64_t> mapped = x.lookup_id(key);
    if (!mapped.is_ok() || *mapped != id)
      return Status::corruption("key '" + key + "' does not map to its item");
    for (int t = 0; t < x.mih.tables(); ++t) {
      std::string v;
      const std::string bk =
          bucket_key(t, x.mih.substring(t, x.codes.code(static_cast<uint32_t>(slot))), id);
      if (!x.db->Get(rocksdb::ReadOptions(), x.cf[kBuckets], bk, &v).ok()) {
        return Status::corruption("bucket entry of item " + std::to_string(id) + " in table " +
                                  std::to_string(t) + " is missing");
      }
    }
  }
  IMSAT_RETURN_IF_ERROR(translate(it->status(), "reading codes"));
  if (code_records != x.codes.live()) {
    return Status::corruption(std::to_string(code_records) + " code records but " +
                              std::to_string(x.codes.live()) + " live items in memory");
  }
  size_t key_records = 0, bucket_records = 0;
  std::unique_ptr<rocksdb::Iterator> kit(x.db->NewIterator(rocksdb::ReadOptions(), x.cf[kKeys]));
  for (kit->SeekToFirst(); kit->Valid(); kit->Next()) ++key_records;
  std::unique_ptr<rocksdb::Iterator> bit(x.db->NewIterator(rocksdb::ReadOptions(), x.cf[kBuckets]));
  for (bit->SeekToFirst(); bit->Valid(); bit->Next()) ++bucket_records;
  if (key_records != code_records) {
    return Status::corruption(std::to_string(key_records) + " key records for " +
                              std::to_string(code_records) + " items");
  }
  if (bucket_records != code_records * static_cast<size_t>(x.mih.tables())) {
    return Status::corruption(std::to_string(bucket_records) + " bucket entries for " +
                              std::to_string(code_records) + " items in " +
                              std::to_string(x.mih.tables()) + " tables");
  }
  return Status::ok();
}

}  // namespace imsat::index
