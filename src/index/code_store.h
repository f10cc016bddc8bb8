// imsat::index::CodeStore — the durable store on RocksDB: items with external keys, codes, tags,
// metadata and optional raw vectors; atomic batches; resumable bulk loads; and the in-memory code
// array and multi-index rebuilt on open. No RocksDB type appears here.
//
// The in-memory parts have their own headers: code_array.h (CodeArray), scan.h (linear scans,
// filters), multi_index.h (MultiIndex); hamming.h holds the kernels.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "index/code_array.h"
#include "index/hamming.h"
#include "index/metadata_filter.h"
#include "index/multi_index.h"
#include "index/scan.h"

namespace imsat::index {

struct StoreOptions {
  int bits = 0;    // required when creating; checked against the store when opening
  int tables = 0;  // multi-index tables; 0 = chosen from bits and expected_items
  size_t expected_items = 1000000;  // sizes the default number of tables when creating
  std::string model_fingerprint;    // recorded on create; checked on open when both are non-empty
  // The distance exact re-ranking uses ("l2" or "cosine"; stored vectors of a cosine store have
  // unit length), recorded on create; checked on open when both are non-empty. Empty: l2.
  std::string metric;
  bool create_if_missing = true;
  bool sync_writes = true;  // fsync the write-ahead log before a batch is acknowledged
  // Opens RocksDB read-only: nothing in the folder is written, deleted or rewritten, and every
  // write call fails with InvalidArgument. For search, inspection and evaluation.
  bool read_only = false;
  // RocksDB's memory: the block cache shared by every column family (data, index and filter
  // blocks), and the budget of all memtables together. The in-memory arrays come on top.
  size_t cache_mb = 64;
  size_t write_buffer_mb = 64;
  // Non-empty: open as a RocksDB secondary instance of the store at `path` (a primary may be
  // writing it), keeping the secondary's own files here. Implies read_only; call catch_up() (or
  // follow()) to see the primary's later writes.
  std::string secondary_path;
};

// One item of an add/upsert batch.
constexpr size_t kMaxThumbnailBytes = 1u << 20;

struct Item {
  std::string key;            // external key, unique in the store; non-empty
  std::vector<uint8_t> code;  // code_bytes() bytes
  int32_t tag = kNoTag;       // small integer for filters, e.g. a label
  std::string metadata;       // opaque bytes (often JSON)
  std::vector<float> vector;  // optional raw features, kept for exact re-ranking; finite values
  // Optional small picture (an encoded PNG or JPEG of a few KiB) for showing the item; written
  // with the item, read only by CodeStore::thumbnail (get() leaves it empty).
  std::string thumbnail;
};

// A search result in store terms.
struct Hit {
  std::string key;
  uint32_t distance;
  int32_t tag;
  uint64_t id;                // internal id: increases with insertion; ties are broken by it
  std::vector<uint8_t> code;  // the item's code, filled when SearchOptions::with_codes
};

struct StoreInfo {
  int bits = 0;
  int tables = 0;
  uint32_t format_version = 0;
  std::string model_fingerprint;
  std::string metric;  // as recorded ("" for stores created without one: l2)
  size_t items = 0;
  size_t memory_bytes = 0;
  // How the in-memory arrays were obtained when the store opened: "arrays file", or "rebuilt
  // from RocksDB: <why the file was not used>".
  std::string open_source;
  // Whether writes can go on now (disk_report()); reads go on regardless.
  bool writable = true;
  std::string not_writable;  // why not ("" when writable)
};

constexpr uint32_t kStoreFormatVersion = 1;

// The live items that pass a metadata filter, evaluated once and consulted by searches, scrolls,
// counts and deletes: a byte per slot (the layout scan.h's Filter takes).
constexpr size_t kSparseSelection = 32;
// A selection of at most three quarters of the slots, and at most this many bytes of codes, also
// keeps its codes packed together: a filtered search scans just those.
constexpr size_t kCompactSelectionBytes = 64u << 20;
struct Selection {
  std::vector<uint8_t> allowed;  // by slot; slots past the end are not selected
  size_t count = 0;              // selected live items
  // The selected slots in order, kept when count <= 3/4 of the slots.
  std::vector<uint32_t> slots;
  // Kept when count <= 3/4 of the slots and the codes fit kCompactSelectionBytes: the selected
  // items' codes in slot order (compact[i] is the item in slots[i]), so the SIMD scan reads only
  // them. Without it, a selection of at most 1/kSparseSelection of the slots is searched by
  // computing its distances one by one.
  std::shared_ptr<const CodeArray> compact;
  // How it was evaluated, for `explain`: which fields came from the fields column family or
  // memory, which had to be read from each candidate's metadata, and how many candidates that was.
  std::vector<std::string> indexed, unindexed;
  size_t metadata_read = 0;
  uint64_t version = 0;  // the store state it describes
};

// The durable code store. RocksDB is the source of truth; on open the code array and the
// multi-index buckets are rebuilt from it. Every write batch is one RocksDB WriteBatch, so it is
// applied entirely or not at all, and is durable once the call returns OK (sync_writes).
// Thread-safety: any number of concurrent searches and reads; writes are serialised, and a
// search sees a batch entirely or not at all.
class CodeStore {
 public:
  // A store is created only in an absent or empty folder. Opening an existing one checks, before
  // anything can be written, that every SST file in the folder is one the MANIFEST references (a
  // damaged MANIFEST would otherwise make RocksDB delete the others as obsolete), that the
  // write-ahead log has no corruption before its tail, and that the codes hold as many items as
  // the store's own item-count record says.
  // Errors: InvalidArgument (bad bits, or a D / format version / fingerprint that differs from
  // the store's), NotFound (missing and !create_if_missing), Corruption (damaged database, naming
  // the file or the discrepancy), IOError.
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
  // Deletes, in one batch, those of `keys` the store holds; returns how many. The others are
  // listed in *missing when given.
  Result<size_t> erase_present(const std::vector<std::string>& keys,
                               std::vector<std::string>* missing = nullptr);
  // The stored item (its vector too, when one was stored), or NotFound.
  Result<Item> get(const std::string& key) const;
  // The item's stored thumbnail: NotFound when the item is unknown or was stored without one.
  Result<std::string> thumbnail(const std::string& key) const;
  // The stored raw vectors of items by internal id (Hit::id), concatenated (ids.size() * dim).
  // Errors: NotFound when an item is gone or was stored without a vector, InvalidArgument when a
  // stored vector is not `dim` long.
  Result<std::vector<float>> vectors(const std::vector<uint64_t>& ids, size_t dim) const;
  // Like vectors(), but an item without a stored vector (or gone) is not an error: result[i] is the
  // row of ids[i] in *values, or nullopt. InvalidArgument when a stored vector is not `dim` long.
  Result<std::vector<std::optional<size_t>>> vectors_if_present(const std::vector<uint64_t>& ids,
                                                                size_t dim,
                                                                std::vector<float>* values) const;
  // The metadata of items by internal id (Hit::id), one MultiGet; "" for items without any.
  Result<std::vector<std::string>> metadata(const std::vector<uint64_t>& ids) const;
  // Up to `limit` live items with internal id > after_id, in id order (codes, tags and metadata;
  // no vectors), and in *last_id the id of the last one returned (after_id when none). With a
  // selection, only the items it selects.
  // `more` (when given) says whether the walk stopped at `limit` items, so that a later call
  // may find more; items deleted between the walk and the key reads drop out of the page.
  Result<std::vector<Item>> scroll(uint64_t after_id, size_t limit, uint64_t* last_id,
                                   const Selection* selection = nullptr,
                                   bool* more = nullptr) const;

  // ---- Metadata filters (metadata_filter.h)

  // The live items passing `filter`. Conditions on the label are answered from memory and those
  // on indexed fields from the fields column family; any other condition reads the metadata of
  // the items the answerable `must` conditions leave (every item when there are none). The last
  // few results are cached until the store changes.
  // `for_search`: also pack the selected codes together (Selection::compact) for the scan.
  Result<std::shared_ptr<const Selection>> select(const MetadataFilter& filter,
                                                  bool for_search = false) const;
  // The live items of a list of external keys (keys the store does not hold are ignored), as a
  // selection searches, scrolls and counts consult like a filter's.
  Result<std::shared_ptr<const Selection>> select_keys(const std::vector<std::string>& keys,
                                                       bool for_search = false) const;
  // Declares a metadata field indexed: its values of every stored item are written to the fields
  // column family (in batches), then the declaration; items written later are indexed with their
  // batch. Indexing a field twice is a no-op. InvalidArgument for a bad name.
  Status index_field(const std::string& field);
  std::vector<std::string> indexed_fields() const;
  // Deletes every live item passing `filter` in one atomic batch; returns how many.
  Result<size_t> erase_where(const MetadataFilter& filter);

  // Followers (StoreOptions::secondary_path): reads what the primary has written since the last
  // call and applies it to the in-memory arrays and multi-index (new items appended; deleted or
  // replaced items found by their missing records) without reopening. Returns how many items
  // were added and removed. InvalidArgument on a store that is not a follower.
  struct CatchUp {
    size_t added = 0, removed = 0;
  };
  Result<CatchUp> catch_up();
  // Calls catch_up() every `interval_ms` on a background thread until the store closes; errors
  // are kept in follow_error().
  void follow(int interval_ms);
  std::string follow_error() const;

  // Whether writes can go on: false for a store opened read-only, and while the disk holding it
  // is full (free space below the reserve, or RocksDB stopped writes after running out of space);
  // reads go on regardless.
  struct DiskReport {
    bool writable = true;
    std::string reason;  // "" when writable
  };
  DiskReport disk_report() const;
  // True for a store opened read-only because its disk was full, once there is room again: open
  // it anew to write (query::Catalog does, at the next request).
  bool reopen_for_writes() const;

  // A consistent point-in-time copy of the store in `dir` (which must not exist), made with
  // RocksDB's checkpoint: SST files are hard-linked, the write-ahead log copied. Reads go on
  // meanwhile, writes wait (a flush and the links: milliseconds, plus writing the arrays); the
  // copy holds every batch acknowledged before the call and opens as a store of its own, from
  // the in-memory arrays saved beside it (as fast as the store itself).
  Status checkpoint(const std::string& dir) const;
  // How many of `keys` the store holds, and (when `found` is not null) the first `max_found` of
  // them in the order given.
  Result<size_t> count_existing(const std::vector<std::string>& keys,
                                std::vector<std::string>* found = nullptr,
                                size_t max_found = 1) const;
  // Calls fn(id, values, count, metadata) for every stored vector of a live item, in id order,
  // with that item's metadata (empty when it has none): one pass over the records both share.
  Status for_each_vector(const std::function<void(uint64_t id, const float* values, size_t count,
                                                  std::string_view metadata)>& fn) const;

  // Bulk load from a source of items: batches of `batch_items`, each one WriteBatch that also
  // records, under `job`, how many source items have been consumed. Resumable: call again with
  // the same job after a crash and it skips what was committed (next(i) is asked for item i
  // starting at the recorded count). `next` returns false at the end; an item it fills with an
  // empty key is a position that adds nothing (an input the source skipped). `progress(done)` is
  // called after every batch with the positions consumed.
  // `new_keys`: the caller guarantees that the job's keys are distinct from each other; when the
  // job starts on an empty store, the per-key existence check (a MultiGet per batch) is then
  // skipped. Otherwise it is ignored.
  // Batches of new keys are pipelined: one is committed while the next is read and planned.
  // `build_index`: rebuild the multi-index at the end (searches scan until then). A caller that
  // closes the store right after passes false: every open builds it from the codes anyway.
  Status bulk_load(const std::string& job, const std::function<bool(size_t, Item*)>& next,
                   size_t batch_items = 50000,
                   const std::function<void(size_t)>& progress = nullptr, bool new_keys = false,
                   bool build_index = true);
  // Several bulk jobs (the shards of a dataset: `imsat ingest`) as one atomic step: the items of
  // every job are planned in batches of `batch_items` and staged as SST files, then ingested with
  // every job's progress record in one RocksDB ingestion, so the store gains all of them or none.
  // A crash or an error before that leaves the store as it was, and calling again does the step
  // again. A job whose progress record says it is complete adds nothing (one that a crashed
  // bulk_load left partial goes on from its record). Returns the items added; progress(staged)
  // after every batch.
  // The jobs' keys must be distinct from each other (not checked); keys the store holds already
  // are replaced. `new_keys` as for bulk_load. Memory until the ingestion: each staged item's
  // code and tag.
  struct BulkJob {
    std::string name;
    std::function<bool(size_t, Item*)> next;
  };
  // `build_index` as for bulk_load.
  Result<size_t> bulk_load_atomic(const std::vector<BulkJob>& jobs, size_t batch_items = 200000,
                                  const std::function<void(size_t)>& progress = nullptr,
                                  bool new_keys = false, bool build_index = true);
  // How many source items job has committed (0 if never run).
  Result<size_t> bulk_progress(const std::string& job) const;
  // The model file the store's codes were made with (`imsat index --model` records its absolute
  // path), so that a query by image or vector is encoded without naming the model again. Empty
  // when none is recorded.
  Result<std::string> model_path() const;
  // The keys of items by internal id (Hit::id), in one MultiGet; "" for an item deleted since.
  Result<std::vector<std::string>> keys(const std::vector<uint64_t>& ids) const;
  Status record_model_path(const std::string& path);

  struct SearchOptions {
    size_t k = 10;                               // kNN when radius < 0
    int radius = -1;                             // >= 0: radius search instead of kNN
    bool use_multi_index = true;                 // false: linear scan
    int threads = 1;                             // linear scan shards
    std::shared_ptr<const Selection> selection;  // optional filter (select): labels, metadata
    bool with_codes = false;                     // fill Hit::code
    // false: hits come without keys (Hit::key empty, nothing read from RocksDB), for a caller
    // that re-ranks many candidates by id and reads the keys of the few it returns (keys()).
    bool with_keys = true;
    size_t max_hits = 0;  // > 0: keep only the nearest this many (radius searches may find more)
  };
  // Errors: InvalidArgument (wrong code length, k out of [1, kMaxK], radius > bits).
  // With max_hits, *truncated (when given) says whether more items were within the radius.
  Result<std::vector<Hit>> search(const std::vector<uint8_t>& code, const SearchOptions& options,
                                  SearchStats* stats = nullptr, bool* truncated = nullptr) const;

  // The k nearest items as plain arrays, for a caller that scores thousands of candidates itself
  // (the query engine's shortlist): the same items in the same order as search() without keys,
  // and their codes packed together. kNN only (InvalidArgument for a radius).
  struct Candidates {
    std::vector<uint64_t> ids;
    std::vector<uint32_t> distances;
    std::vector<int32_t> tags;
    std::vector<uint8_t> codes;  // code_bytes() per candidate
  };
  Status candidates(const std::vector<uint8_t>& code, const SearchOptions& options, Candidates* out,
                    SearchStats* stats = nullptr) const;

  // Many queries with the same options: the same answers as search() on each. For kNN without
  // an allow-list or a selection, the queries the multi-index would answer with a linear scan
  // share one batched scan (scan_knn_batch: the codes are read once for all of them), and the
  // keys of every hit come from one MultiGet; anything else runs search() per query.
  // `stats` (when given) gets one entry per query (a shared scan's candidates split evenly).
  Result<std::vector<std::vector<Hit>>> search_batch(
      const std::vector<std::vector<uint8_t>>& queries, const SearchOptions& options,
      std::vector<SearchStats>* stats = nullptr) const;

  std::vector<std::vector<uint64_t>> occupancy_histograms(size_t max_count = 64) const;
  std::vector<uint64_t> distance_histogram(size_t sample_queries, uint64_t seed) const;
  // Codes (code_bytes() each, concatenated) of up to max_items live items, evenly spread over
  // the slots, for code-health statistics.
  // With `tags`, the items' tags too (one per returned code).
  std::vector<uint8_t> sample_codes(size_t max_items, std::vector<int32_t>* tags = nullptr) const;

  // Checks that the codes, keys and bucket column families agree with each other. Corruption
  // when they do not. Reads the whole database: for tests and `imsat` diagnostics.
  Status verify() const;

  // Offline repair of a damaged store, only when asked: copies the whole folder to
  // `<path>.damaged-<unix time>` first, lets RocksDB salvage every readable record (RepairDB),
  // keeps the items whose code records survived, rebuilds the keys and multi-index records from
  // them, and drops records of items that are gone. The result opens and verifies cleanly.
  // Errors: NotFound (no store), Corruption (the schema record itself is lost), IOError.
  struct RepairReport {
    std::string backup;                    // the copy of the damaged files
    std::optional<uint64_t> items_before;  // from the acknowledged-write watermark, when readable
    uint64_t items_after = 0;
  };
  static Result<RepairReport> repair(const std::string& path);

  struct Impl;

 private:
  explicit CodeStore(std::unique_ptr<Impl> impl);
  static Result<std::unique_ptr<CodeStore>> open_existing_or_new(const std::string& path,
                                                                 const StoreOptions& options);
  std::unique_ptr<Impl> impl_;
};

}  // namespace imsat::index
