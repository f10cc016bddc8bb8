// The code store's internals, shared by its source files (store_*.cpp) and nothing else.
//
// Column families (keys big-endian so that iteration follows ids):
//   schema   "schema" -> text lines (format_version, bits, tables, model_fingerprint, and metric
//            when the store was created with one);
//            "next_id" -> u64; "bulk:<job>" -> u64 source items committed by a bulk load
//   codes    id (u64) -> code bytes | i32 tag (little-endian) | external key
//   meta     id -> metadata bytes (absent when empty); id 'v' -> raw vector (float32);
//            id 't' -> thumbnail (encoded image)
//   keys     external key -> id
//   buckets  u8 table | u32 substring | u64 id -> ""   (the multi-index entries; only in stores
//            whose schema has no "buckets=0" line: the layout that persisted them)
//   fields   field term (metadata_filter.h) | u64 id -> ""   (indexed metadata fields; the
//            schema's "fields" record lists them as a JSON array of names; meta id 'f' lists an
//            item's terms so that replacing or deleting it removes them. Stores made before the
//            family existed gain it when first opened for writing.)
#pragma once

#include <pthread.h>
#include <rocksdb/db.h>
#include <rocksdb/listener.h>

#include <algorithm>
#include <condition_variable>
#include <map>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <thread>
#include <vector>

#include "index/code_store.h"
#include "index/metadata_filter.h"
#include "index/slot_ids.h"

namespace imsat::index {

extern const char* const kCfNames[];
enum Cf { kDefault = 0, kSchema, kCodes, kMeta, kKeys, kBuckets, kFields, kCfCount };

// Translates a RocksDB status into the project's, prefixed with `what` (the file or operation).
Status translate(const rocksdb::Status& s, const std::string& what);

// Key encoding.
std::string be64(uint64_t v);
uint64_t from_be64(const rocksdb::Slice& s);
// Meta column family key of an item's raw vector: its id followed by 'v' (sorts right after the
// item's metadata record, be64(id)).
std::string vector_key(uint64_t id);
// Meta column family key of an item's thumbnail: its id followed by 't'.
std::string thumbnail_key(uint64_t id);
std::string bucket_key(int table, uint32_t sub, uint64_t id);
// Meta column family key of the list of an item's field terms: its id followed by 'f'.
std::string terms_key(uint64_t id);
// The terms list's value: each term preceded by its length (u32 little-endian).
std::string encode_terms(const std::vector<std::string>& terms);
std::vector<std::string> decode_terms(const std::string& value);
// The schema's "fields" record: the indexed field names as a JSON array of strings, so that any
// name survives. decode also reads the older form, one name per line. Corruption when damaged.
std::string encode_field_list(const std::vector<std::string>& fields);
Result<std::vector<std::string>> decode_field_list(const std::string& value);

// The acknowledged-write watermark, a 32-byte file beside RocksDB's (kWatermarkFile): the
// generation (a counter every write batch increments, also stored in the schema column family)
// and the live item count of the last batch acknowledged to a caller, with a checksum. It is
// rewritten in place after each batch is durable, without fsync: a process crash keeps it (the
// page cache survives), and after a power cut it can only lag behind the log, never lead it. At
// open, a store whose recovered generation is below the watermark has lost acknowledged writes
// (a truncated, damaged or deleted write-ahead log) and is refused.
constexpr const char* kWatermarkFile = "IMSAT-WATERMARK";
// The in-memory arrays saved at close (store_arrays.cpp).
constexpr const char* kArraysFile = "IMSAT-ARRAYS";
struct Watermark {
  uint64_t generation = 0;
  uint64_t items = 0;
};
// Nullopt when the file is absent or damaged (then nothing is checked).
std::optional<Watermark> read_watermark(const std::string& store_path);
Status write_watermark(const std::string& store_path, const Watermark& w);
// The generation a store's schema column family records (0 when it has none).
Result<uint64_t> recorded_generation(rocksdb::DB* db, rocksdb::ColumnFamilyHandle* schema);
// Corruption naming the write-ahead log files when `recovered` is below the watermark.
Status check_watermark(const std::string& store_path, uint64_t recovered);

// Corruption when the folder holds SST files that the open `db`'s MANIFEST does not reference and
// the store it describes holds fewer or more items than recorded (a damaged MANIFEST: a read-write
// open would delete the tables as obsolete). Unreferenced tables alone are a crash's leftovers.
Status check_tables_referenced(rocksdb::DB* db, const std::vector<rocksdb::ColumnFamilyHandle*>& cf,
                               const std::string& path);

// The schema record: format version, code length, multi-index tables, model fingerprint.
struct Schema {
  uint32_t format_version = kStoreFormatVersion;
  int bits = 0;
  int tables = 0;
  std::string fingerprint;
  std::string metric;  // "" (l2), "l2" or "cosine"
  // Whether the buckets column family holds the multi-index entries. The in-memory multi-index
  // is always rebuilt from the codes at open, so stores created now leave the family empty (a
  // bulk load writes 2 records per item instead of 2 + tables); stores whose schema has no
  // "buckets" line (the layout that persisted the entries) keep writing and verifying them.
  bool persist_buckets = true;

  std::string encode() const;
  static Result<Schema> decode(const std::string& text);
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

// What a full disk did to a store (store_disk.cpp). Shared with the RocksDB listener.
struct DiskState {
  std::mutex mutex;
  bool stopped = false;  // RocksDB stopped writes after a NoSpace background error
  std::string reason;
  // The free space a write leaves untouched on a file system of this size.
  static uint64_t reserve_bytes(uint64_t filesystem_bytes);
};

// Records NoSpace background errors and turns off RocksDB's own recovery from them (see
// store_disk.cpp for why).
class DiskListener : public rocksdb::EventListener {
 public:
  explicit DiskListener(std::shared_ptr<DiskState> state) : state_(std::move(state)) {}
  void OnBackgroundError(rocksdb::BackgroundErrorReason reason, rocksdb::Status* bg_error) override;
  void OnErrorRecoveryBegin(rocksdb::BackgroundErrorReason reason, rocksdb::Status bg_error,
                            bool* auto_recovery) override;

 private:
  std::shared_ptr<DiskState> state_;
};

// Whether the file system holding `path` has less free space than the reserve writes keep.
bool disk_below_reserve(const std::string& path);

// translate(), with NoSpace for a full disk.
Status translate_write(const rocksdb::Status& s, const std::string& what);

struct CodeStore::Impl {
  std::string path;
  StoreOptions options;
  Schema schema;
  std::unique_ptr<rocksdb::DB> db;
  std::vector<rocksdb::ColumnFamilyHandle*> cf;
  rocksdb::WriteOptions write_options;
  rocksdb::Options db_options;
  std::vector<rocksdb::ColumnFamilyOptions>
      cf_options;  // per family (SST files are made with them)

  // In-memory state, rebuilt on open. Guarded by state_mutex (shared for readers).
  mutable WriterFairMutex state_mutex;
  CodeArray codes{8};
  MultiIndex mih{8, 1};
  // slot <-> id (increasing together). External keys are not kept in memory: they are read from
  // the codes column family for the items a response returns (read_keys).
  SlotIds slot_ids;
  uint64_t next_id = 1;
  uint64_t generation = 0;  // of the last committed batch (see Watermark)
  // Bumped under state_mutex whenever the live items or the indexed fields change: a cached
  // Selection is valid while it is unchanged.
  uint64_t version = 0;
  std::vector<std::string> indexed_fields;  // guarded by state_mutex
  bool arrays_enabled = false;  // set once the store opened fully (never save half-built arrays)
  bool index_stale = false;     // the multi-index lacks slots appended by a bulk load (state_mutex)
  // The fields column family in memory, rebuilt at open: term -> slots holding it, increasing
  // (slots of deleted items stay until the next open; every reader checks is_deleted). Terms sort
  // as in RocksDB, so a number range is one ordered walk.
  std::map<std::string, std::vector<uint32_t>> postings;
  size_t posting_entries = 0;
  void post(const std::string& term, uint32_t slot) {
    postings[term].push_back(slot);
    ++posting_entries;
  }

  // Recently evaluated filters (canonical text -> selection), for repeated filtered searches.
  mutable std::mutex selection_mutex;
  mutable std::vector<std::pair<std::string, std::shared_ptr<const Selection>>> selection_cache;

  std::mutex writer_mutex;  // one writer at a time

  // Follower thread (CodeStore::follow).
  std::thread follower;
  std::mutex follow_mutex;
  std::condition_variable follow_wake;
  bool follow_stop = false;
  std::string follow_error;  // guarded by follow_mutex

  ~Impl() {
    if (follower.joinable()) {
      {
        std::lock_guard lock(follow_mutex);
        follow_stop = true;
      }
      follow_wake.notify_all();
      follower.join();
    }
    // A clean close leaves nothing only in the write-ahead log, and the arrays in a file the
    // next open can read instead of rebuilding them (a failure only costs that open time).
    // Not after a NoSpace stop: flushing would close the failed log writer (store_disk.cpp).
    bool stopped = false;
    if (disk != nullptr) {
      std::lock_guard lock(disk->mutex);
      stopped = disk->stopped;
    }
    if (db && !options.read_only && !stopped) {
      db->Flush(rocksdb::FlushOptions(), cf).PermitUncheckedError();
      if (arrays_enabled) save_arrays().ignore();
    }
    for (auto* h : cf) {
      if (h != nullptr && db) db->DestroyColumnFamilyHandle(h);
    }
    if (db) db->Close().PermitUncheckedError();
  }
  // After a batch is durable: the new generation in memory and in the watermark file.
  void acknowledge(uint64_t new_generation, size_t live_items) {
    generation = new_generation;
    // A failed watermark write only weakens the next open's check; the batch itself is durable.
    write_watermark(path, {new_generation, live_items}).ignore();
  }
  std::shared_ptr<DiskState> disk;  // writable stores only
  bool full_at_open = false;        // opened read-only because its disk was full
  // InvalidArgument when the store was opened read-only; NoSpace when its disk is full.
  Status check_writable() {
    if (full_at_open) {
      return Status::no_space(
          "the disk holding the store was full when it was opened, so it serves reads only; "
          "writes resume once space is freed");
    }
    if (options.read_only) {
      return Status::invalid_argument(path + ": the store is open read-only; nothing was written");
    }
    return check_disk();
  }
  // NoSpace when free space is below the reserve or RocksDB stopped writes for lack of space;
  // resumes RocksDB's background work once there is room (store_disk.cpp).
  Status check_disk();

  // Slot of a live id, or -1.
  int64_t slot_of(uint64_t id) const {
    const int64_t slot = slot_ids.find(id);
    if (slot < 0 || codes.is_deleted(static_cast<uint32_t>(slot))) return -1;
    return slot;
  }
  // The external keys of items by id, from their code records (one MultiGet); "" for an item
  // that is gone (deleted since its id was read).
  Result<std::vector<std::string>> read_keys(const std::vector<uint64_t>& ids) const;
  Result<uint64_t> lookup_id(const std::string& key) const {
    std::string value;
    rocksdb::Status s = db->Get(rocksdb::ReadOptions(), cf[kKeys], key, &value);
    if (s.IsNotFound()) return Status::not_found("no item with key '" + key + "'");
    if (!s.ok()) return translate(s, "reading key '" + key + "'");
    if (value.size() != 8) return Status::corruption("key '" + key + "' maps to a damaged id");
    return from_be64(value);
  }
  void append_memory(uint64_t id, const uint8_t* code, int32_t tag, bool defer_index = false) {
    const uint32_t slot = codes.append(code, tag);
    slot_ids.push_back(id);
    if (defer_index) {
      index_stale = true;
    } else {
      if (index_stale) rebuild_index_locked();
      mih.insert(codes, slot);
    }
  }
  void rebuild_index_locked() {  // caller holds state_mutex exclusively
    mih = MultiIndex(schema.bits, schema.tables, codes.size());
    mih.rebuild(codes);
    index_stale = false;
  }
  // `distinct_keys`: the caller guarantees no key repeats (a bulk job of new keys); the check is
  // skipped.
  Status validate(const std::vector<Item>& items, bool distinct_keys = false) const;

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
    uint64_t generation = 0;
    size_t live_after = 0;  // live items once the batch is applied (the "items" record)
    std::vector<std::vector<std::string>> terms;  // per item, when fields are indexed
  };

  // One MultiGet of `keys` in column family `c`; values and found get one entry per key.
  // `sorted`: the keys are in ascending order already (RocksDB then skips its own sort).
  void multi_get(Cf c, const std::vector<rocksdb::Slice>& keys,
                 std::vector<rocksdb::PinnableSlice>* values, std::vector<rocksdb::Status>* found,
                 bool sorted = false) const {
    values->clear();
    values->resize(keys.size());
    found->assign(keys.size(), rocksdb::Status());
    db->MultiGet(rocksdb::ReadOptions(), cf[c], keys.size(), keys.data(), values->data(),
                 found->data(), sorted);
  }

  // Where a plan starts: the next id, the live items and the generation before it. Batches staged
  // for one atomic step (bulk_load_atomic) are planned from a base that moves past the staged
  // batches, while the in-memory state stays as it was until the step is ingested.
  struct PlanBase {
    uint64_t next_id = 0;
    size_t live = 0;
    uint64_t generation = 0;
  };
  // Plans a batch of upserts: one MultiGet finds the keys that already exist; their old records
  // are deleted and every item gets a new id. With `new_keys` the caller guarantees that none of
  // the keys is stored, and the MultiGet is skipped. `base` null: the store's current state.
  // Caller holds writer_mutex.
  Result<BatchPlan> plan(const std::vector<Item>& items, bool new_keys = false,
                         const PlanBase* base = nullptr) const;

  // Deletions of the field terms of items `ids` (their terms lists and fields entries).
  Status remove_terms(const std::vector<uint64_t>& ids, std::vector<Record>* meta,
                      std::vector<Record>* fields) const;

  // Commits a plan as one WriteBatch through the write-ahead log.
  Status commit_write_batch(const BatchPlan& p);

  // Commits a plan as SST files, one per column family, ingested in one atomic step: the bulk
  // path, which skips the write-ahead log and the memtables. Durable when it returns (the
  // ingestion is recorded in the synced MANIFEST).
  Status commit_ingest(const BatchPlan& p);
  // An SST file made for ingestion, and its column family.
  struct SstFile {
    int family;
    std::string path;
  };
  // Writes the plan's records as one SST file per non-empty column family,
  // `dir`/<prefix><family>.sst, the families in parallel; the schema family's records only when
  // `with_schema`. Appends the files to *files.
  Status write_sst_files(const BatchPlan& p, const std::string& dir, const std::string& prefix,
                         bool with_schema, std::vector<SstFile>* files) const;
  // Ingests files (any number per family; they may overlap) in one atomic RocksDB ingestion,
  // moving them into the store.
  Status ingest_files(const std::vector<SstFile>& files, const std::string& what);
  // The folder where bulk SST files are staged; wiped before and after each use.
  std::string staging_dir() const;

  // Applies a committed plan to the in-memory array and buckets.
  // With `defer_index`, the multi-index is not updated: it is marked stale (searches scan
  // meanwhile, with the same results) and rebuilt once by rebuild_stale_index (bulk loads).
  void apply(const BatchPlan& p, const std::vector<Item>& items, bool defer_index = false);
  void rebuild_stale_index();

  // The persisted arrays (store_arrays.cpp). save_arrays writes them (at close); load_arrays
  // replaces codes, slot_ids and next_id with the file's when it is valid for the open store and
  // returns "", else the reason it was not used (nothing changed).
  // `dir`: the store folder to write them into ("" = this store's own; a checkpoint's folder).
  Status save_arrays(const std::string& dir = "") const;
  std::string load_arrays(uint64_t recorded_items);
  // The steps of CodeStore::open after the folder check (store_open.cpp): RocksDB with its
  // column families and checks; the schema read (or written for a new store) and checked against
  // the options; the in-memory state (indexed fields, ids, the arrays from their file or rebuilt
  // from the codes, the multi-index, the postings).
  Status open_db(bool exists);
  Status read_or_write_schema(bool exists);
  Status load_items();
  Status rebuild_arrays(std::optional<uint64_t> recorded_items);
  Status load_postings();
  std::string open_source;  // how the arrays were obtained at open (StoreInfo::open_source)

  // Deletes live items by key in one batch; caller holds writer_mutex. Returns how many.
  Result<size_t> erase_locked(const std::vector<std::string>& keys);

  // Filter evaluation (store_filter.cpp): the live slots passing `f`, as a byte map by slot.
  Result<Selection> evaluate(const MetadataFilter& f) const;
  // Whether every condition of `f` can be answered from memory (label) or the fields family.
  bool resolvable(const MetadataFilter& f) const;
};

}  // namespace imsat::index
