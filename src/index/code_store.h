// imsat::index — binary codes in memory and on disk, and exact Hamming search over them.
//
//   CodeArray   one contiguous, 64-byte-aligned array of codes padded to 64-bit words, with a
//               small integer tag per item (e.g. a label) and tombstones.
//   scan_*      exact kNN and radius search by linear scan (counting selection, SIMD kernel).
//   MultiIndex  multi-index hashing (Norouzi, Punjani, Fleet, CVPR 2012): exact radius and kNN
//               search that probes substring buckets and verifies candidates.
//   CodeStore   the durable store on RocksDB: items with external keys, codes, tags and metadata,
//               atomic batches, and the in-memory array and buckets rebuilt on open.
//
// Codes are D bits, D a multiple of 8 from 8 to 1024; bytes little-endian (bit d of a code is
// bit d % 8 of byte d / 8). No RocksDB type appears here.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "index/hamming.h"

namespace imsat::index {

constexpr int kMinCodeBits = 8;
constexpr int kMaxCodeBits = 1024;
constexpr size_t kMaxK = 10000;
constexpr int32_t kNoTag = -1;

// InvalidArgument unless bits is a multiple of 8 in [8, 1024].
Status check_code_bits(int bits);

// ---------------------------------------------------------------------------------------------
// In-memory codes

// A growable array of codes in slot order. Not thread-safe; CodeStore guards it.
class CodeArray {
 public:
  explicit CodeArray(int bits);
  ~CodeArray();
  CodeArray(CodeArray&&) noexcept;
  CodeArray& operator=(CodeArray&&) noexcept;

  int bits() const { return bits_; }
  size_t code_bytes() const { return static_cast<size_t>(bits_) / 8; }
  size_t words() const { return words_; }
  size_t size() const { return size_; }  // slots, deleted ones included
  size_t live() const { return live_; }  // slots not deleted

  // Appends a code of code_bytes() bytes; returns its slot.
  uint32_t append(const uint8_t* code, int32_t tag = kNoTag);
  void erase(uint32_t slot);  // tombstone; the slot keeps its bytes and is skipped by searches
  bool is_deleted(uint32_t slot) const { return deleted_[slot] != 0; }
  int32_t tag(uint32_t slot) const { return tags_[slot]; }
  const uint64_t* code(uint32_t slot) const { return data_ + static_cast<size_t>(slot) * words_; }
  const uint64_t* data() const { return data_; }  // 64-byte aligned, size() * words() words
  void reserve(size_t slots);
  size_t memory_bytes() const;

  // Packs code_bytes() bytes into words() zero-padded words.
  void pack(const uint8_t* code, uint64_t* out) const;
  void unpack(uint32_t slot, uint8_t* out) const;

 private:
  int bits_;
  size_t words_;
  uint64_t* data_ = nullptr;
  size_t size_ = 0;
  size_t capacity_ = 0;
  size_t live_ = 0;
  std::vector<int32_t> tags_;
  std::vector<uint8_t> deleted_;
};

// ---------------------------------------------------------------------------------------------
// Search

struct Neighbor {
  uint32_t slot;
  uint32_t distance;
  bool operator==(const Neighbor& o) const { return slot == o.slot && distance == o.distance; }
};

// Which items a search may return; checked before an item's distance is verified, so a filtered
// kNN returns the k nearest items that pass (not the passing part of the k nearest).
struct Filter {
  const std::vector<uint8_t>* allowed_slots = nullptr;  // non-zero = allowed; by slot
  std::function<bool(int32_t tag)> tag_predicate;       // on the item's tag
  bool empty() const { return allowed_slots == nullptr && !tag_predicate; }
  bool pass(const CodeArray& codes, uint32_t slot) const {
    if (allowed_slots != nullptr && (slot >= allowed_slots->size() || !(*allowed_slots)[slot])) {
      return false;
    }
    return !tag_predicate || tag_predicate(codes.tag(slot));
  }
};

// What a search cost.
struct SearchStats {
  uint64_t buckets_probed = 0;
  uint64_t candidates_verified = 0;  // full distances computed
  SearchStats& operator+=(const SearchStats& o) {
    buckets_probed += o.buckets_probed;
    candidates_verified += o.candidates_verified;
    return *this;
  }
};

// Exact kNN by linear scan: the k live, passing items nearest to `query` (words() words), sorted
// by (distance, slot): ties go to the lower slot. threads > 1 scans shards in parallel.
// Precondition (checked by callers at their public boundary): 1 <= k <= kMaxK.
std::vector<Neighbor> scan_knn(const CodeArray& codes, const uint64_t* query, size_t k,
                               const Filter& filter = {}, SearchStats* stats = nullptr,
                               int threads = 1);
// All live, passing items within `radius` bits, sorted by (distance, slot).
std::vector<Neighbor> scan_radius(const CodeArray& codes, const uint64_t* query, uint32_t radius,
                                  const Filter& filter = {}, SearchStats* stats = nullptr);
// kNN for many queries (nq * words() words): each block of codes is loaded once and serves the
// whole batch. Same results as scan_knn per query.
std::vector<std::vector<Neighbor>> scan_knn_batch(const CodeArray& codes, const uint64_t* queries,
                                                  size_t nq, size_t k, const Filter& filter = {},
                                                  SearchStats* stats = nullptr);

// Multi-index hashing over a CodeArray: m tables of disjoint substrings (lengths differing by at
// most one). Items within radius r of a query share at least one substring within floor(r / m)
// of the query's. Results equal the linear scan's, ties included. Not thread-safe for writes;
// searches may run concurrently with each other.
class MultiIndex {
 public:
  // tables = 0 chooses default_tables(bits, expected_items).
  MultiIndex(int bits, int tables, size_t expected_items = 0);
  ~MultiIndex();
  MultiIndex(MultiIndex&&) noexcept;
  MultiIndex& operator=(MultiIndex&&) noexcept;

  // About D / log2(N) tables, so each substring has about log2(N) bits and a bucket holds about
  // one item of uniformly random codes.
  static int default_tables(int bits, size_t items);

  int tables() const;
  int substring_bits(int table) const;
  // The substring of table t of a packed code (words() words).
  uint32_t substring(int table, const uint64_t* code) const;

  // Adds `slot` of `codes`. Slots must be inserted in increasing order; every slot below it
  // that is not deleted must have been inserted (or covered by rebuild) already.
  void insert(const CodeArray& codes, uint32_t slot);
  // Rebuilds every bucket from `codes` (deleted slots are left out).
  void rebuild(const CodeArray& codes);

  std::vector<Neighbor> radius(const CodeArray& codes, const uint64_t* query, uint32_t radius,
                               const Filter& filter = {}, SearchStats* stats = nullptr) const;
  std::vector<Neighbor> knn(const CodeArray& codes, const uint64_t* query, size_t k,
                            const Filter& filter = {}, SearchStats* stats = nullptr) const;

  // Occupancy histogram of table t: result[i] = number of non-empty buckets holding exactly i
  // items, the last entry counting every bucket with at least that many.
  std::vector<uint64_t> occupancy_histogram(int table, size_t max_count = 64) const;
  size_t memory_bytes() const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

// ---------------------------------------------------------------------------------------------
// Diagnostics

// Fraction of ones of each bit over live items.
std::vector<double> bit_balance(const CodeArray& codes);
// Histogram (index = distance, 0..bits) of distances from up to `sample_queries` live items
// (chosen with `seed`) to every live item.
std::vector<uint64_t> distance_histogram(const CodeArray& codes, size_t sample_queries,
                                         uint64_t seed);

// ---------------------------------------------------------------------------------------------
// Durable store

struct StoreOptions {
  int bits = 0;    // required when creating; checked against the store when opening
  int tables = 0;  // multi-index tables; 0 = chosen from bits and expected_items
  size_t expected_items = 1000000;  // sizes the default number of tables when creating
  std::string model_fingerprint;    // recorded on create; checked on open when both are non-empty
  bool create_if_missing = true;
  bool sync_writes = true;  // fsync the write-ahead log before a batch is acknowledged
};

// One item of an add/upsert batch.
struct Item {
  std::string key;            // external key, unique in the store; non-empty
  std::vector<uint8_t> code;  // code_bytes() bytes
  int32_t tag = kNoTag;       // small integer for filters, e.g. a label
  std::string metadata;       // opaque bytes (often JSON)
  std::vector<float> vector;  // optional raw features, kept for exact re-ranking; finite values
};

// A search result in store terms.
struct Hit {
  std::string key;
  uint32_t distance;
  int32_t tag;
  uint64_t id;  // internal id: increases with insertion; ties are broken by it
  std::vector<uint8_t> code;  // the item's code, filled when SearchOptions::with_codes
};

struct StoreInfo {
  int bits = 0;
  int tables = 0;
  uint32_t format_version = 0;
  std::string model_fingerprint;
  size_t items = 0;
  size_t memory_bytes = 0;
};

constexpr uint32_t kStoreFormatVersion = 1;

// The durable code store. RocksDB is the source of truth; on open the code array and the
// multi-index buckets are rebuilt from it. Every write batch is one RocksDB WriteBatch, so it is
// applied entirely or not at all, and is durable once the call returns OK (sync_writes).
// Thread-safety: any number of concurrent searches and reads; writes are serialised, and a
// search sees a batch entirely or not at all.
class CodeStore {
 public:
  // Errors: InvalidArgument (bad bits, or a D / format version / fingerprint that differs from
  // the store's), NotFound (missing and !create_if_missing), Corruption (damaged database),
  // IOError.
  static Result<std::unique_ptr<CodeStore>> open(const std::string& path,
                                                 const StoreOptions& options);
  ~CodeStore();

  StoreInfo info() const;
  int bits() const;

  // Adds items, replacing any existing item with the same key (upsert). Duplicate keys inside
  // one batch are an error. Errors: InvalidArgument (empty key, wrong code length), IOError.
  Status put(const std::vector<Item>& items);
  // Deletes items by key. Missing keys are NotFound and nothing is deleted.
  Status erase(const std::vector<std::string>& keys);
  // The stored item (its vector too, when one was stored), or NotFound.
  Result<Item> get(const std::string& key) const;
  // The stored raw vectors of items by internal id (Hit::id), concatenated (ids.size() * dim).
  // Errors: NotFound when an item is gone or was stored without a vector, InvalidArgument when a
  // stored vector is not `dim` long.
  Result<std::vector<float>> vectors(const std::vector<uint64_t>& ids, size_t dim) const;
  // The metadata of items by internal id (Hit::id), one MultiGet; "" for items without any.
  Result<std::vector<std::string>> metadata(const std::vector<uint64_t>& ids) const;
  // Calls fn(id, values, count) for every stored vector of a live item, in id order.
  Status for_each_vector(
      const std::function<void(uint64_t id, const float* values, size_t count)>& fn) const;

  // Bulk load from a source of items: batches of `batch_items`, each one WriteBatch that also
  // records, under `job`, how many source items have been consumed. Resumable: call again with
  // the same job after a crash and it skips what was committed (next(i) is asked for item i
  // starting at the recorded count). `next` returns false at the end. `progress(done)` is called
  // after every batch.
  Status bulk_load(const std::string& job, const std::function<bool(size_t, Item*)>& next,
                   size_t batch_items = 50000,
                   const std::function<void(size_t)>& progress = nullptr);
  // How many source items job has committed (0 if never run).
  Result<size_t> bulk_progress(const std::string& job) const;

  struct SearchOptions {
    size_t k = 10;                                           // kNN when radius < 0
    int radius = -1;                                         // >= 0: radius search instead of kNN
    bool use_multi_index = true;                             // false: linear scan
    int threads = 1;                                         // linear scan shards
    std::function<bool(int32_t)> tag_predicate;              // optional filter on tags
    const std::vector<std::string>* allowed_keys = nullptr;  // optional allow-list
    bool with_codes = false;                                 // fill Hit::code
  };
  // Errors: InvalidArgument (wrong code length, k out of [1, kMaxK], radius > bits).
  Result<std::vector<Hit>> search(const std::vector<uint8_t>& code, const SearchOptions& options,
                                  SearchStats* stats = nullptr) const;

  std::vector<double> bit_balance() const;
  std::vector<std::vector<uint64_t>> occupancy_histograms(size_t max_count = 64) const;
  std::vector<uint64_t> distance_histogram(size_t sample_queries, uint64_t seed) const;
  // Codes (code_bytes() each, concatenated) of up to max_items live items, evenly spread over
  // the slots, for code-health statistics.
  // With `tags`, the items' tags too (one per returned code).
  std::vector<uint8_t> sample_codes(size_t max_items, std::vector<int32_t>* tags = nullptr) const;

  // Checks that the codes, keys and bucket column families agree with each other. Corruption
  // when they do not. Reads the whole database: for tests and `imsat` diagnostics.
  Status verify() const;

  struct Impl;

 private:
  explicit CodeStore(std::unique_ptr<Impl> impl);
  static Result<std::unique_ptr<CodeStore>> open_existing_or_new(const std::string& path,
                                                                 const StoreOptions& options);
  std::unique_ptr<Impl> impl_;
};

}  // namespace imsat::index
