// imsat::query::QueryEngine — a store and (optionally) the model that made its codes: search by
// raw vector, image, code or stored key with optional re-ranking; item operations; evaluation and
// code health of the whole store. The one entry point both front-ends (src/http, tools/) call.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/status.h"
#include "index/code_store.h"
#include "learn/learn.h"
#include "query/code_health.h"
#include "query/encode_batcher.h"
#include "query/filter.h"
#include "query/metric.h"
#include "query/retrieval_metrics.h"

namespace imsat::query {

enum class Rerank {
  kNone,        // Hamming order (ties by insertion)
  kExact,       // the distance between raw vectors (the store's metric: Euclidean, or 1 - cosine
                // for a cosine store); the store must hold them
  kAsymmetric,  // the stored code's negative log-likelihood under the query's bit probabilities
};
Result<Rerank> parse_rerank(const std::string& name);  // none, exact, asymmetric
const char* rerank_name(Rerank r);

// How cached vectors are held in memory for exact re-ranking: as stored (float32), or as IEEE
// half precision (float16: half the memory and the bandwidth; each value rounded to 11
// significant bits, so integers up to 2,048 such as 8-bit pixels stay exact).
enum class VectorPrecision { kFloat32, kFloat16 };
Result<VectorPrecision> parse_vector_precision(const std::string& name);  // float32, float16
const char* vector_precision_name(VectorPrecision p);

// The names the front-ends use for the index's plain values: a store's schema and size, what a
// search cost, "no label", and the largest k. Front-ends name these, never index:: ones, so that
// the query layer is the one place that adapts when the index changes.
using StoreInfo = index::StoreInfo;
using SearchStats = index::SearchStats;
inline constexpr int32_t kNoLabel = index::kNoTag;
inline constexpr size_t kMaxK = index::kMaxK;

struct SearchRequest {
  size_t k = 10;
  int radius = -1;  // >= 0: every item within this Hamming radius (then no re-ranking)
  Rerank rerank = Rerank::kNone;
  size_t candidates = 0;  // Hamming candidates re-ranked; 0 = max(10 k, 100)
  // Exact re-ranking of a vector query with a model: first order the candidates by the
  // asymmetric score (the query's bit probabilities against their codes, no vector read) and
  // compute exact distances for only the best `shortlist` of them. 0: every candidate.
  size_t shortlist = 0;
  bool use_multi_index = true;
  bool with_metadata = true;
  size_t max_hits =
      0;  // radius searches: > 0 keeps the nearest this many (SearchResponse::truncated)
  // Which items may be returned (metadata conditions and the label, as one filter): only passing
  // items are verified, so a kNN returns k passing items whenever k exist.
  Filter filter;  // empty: every item
};

// What the front-ends show of a collection's model, and what a query by vector or image needs.
struct ModelInfo {
  std::string method;  // "imsat-vat", "itq", ...
  std::string metric;  // "l2" or "cosine" for a nearest-neighbour model; "" for the paper's job
  int bits = 0;
  std::string fingerprint;
  size_t input_dim = 0;             // values of a vector query
  std::vector<size_t> input_shape;  // e.g. {28, 28}
  bool takes_images = false;        // searches and adds by image file work
  int image_channels = 0;           // 1 or 3 when takes_images
  std::string image_pipeline;       // JSON, when the model records one (image folders)
};

struct SearchHit {
  std::string key;
  uint32_t distance = 0;  // Hamming
  double score = 0;       // the re-rank distance; the Hamming distance without re-ranking
  int32_t label = index::kNoTag;
  std::string metadata;
};

struct SearchResponse {
  std::vector<SearchHit> hits;
  std::string query_code;  // hex
  index::SearchStats stats;
  size_t candidates_reranked = 0;
  // With a shortlist: how many Hamming candidates it was chosen from (candidates_reranked is
  // the shortlist); 0 without one.
  size_t shortlisted_from = 0;
  bool truncated = false;  // a radius search found more than max_hits items
  // Exact re-ranking: candidates without a stored vector (added by code, or deleted meanwhile) are
  // ranked by Hamming distance after every candidate that has one.
  size_t candidates_without_vector = 0;
  // With a metadata filter: how it was evaluated (items matching, fields answered from memory or
  // the fields index, fields read from candidates' metadata and how many candidates that was).
  std::shared_ptr<const index::Selection> selection;
};

// An item to add: exactly one of `code` (code_bytes() bytes), `vector` (the model's input) and
// `image` (an encoded image file, turned into the model's input by the pipeline the model
// records; the item keeps that input and a thumbnail).
struct NewItem {
  std::string key;
  std::vector<uint8_t> code;
  std::vector<float> vector;
  std::string image;
  std::optional<int32_t> label;
  std::string metadata;  // opaque (JSON by convention)
};

// A stored item as the front-ends show it.
struct StoredItem {
  std::string key;
  std::string code_hex;
  std::optional<int32_t> label;
  std::string metadata;
  std::vector<float> vector;  // empty when stored without one
};

constexpr size_t kMaxScroll = 10000;
// Longest side of the thumbnails kept for items added as images.
constexpr int kThumbnailSide = 96;
struct ScrollPage {
  std::vector<StoredItem> items;  // without vectors
  std::string next_cursor;        // empty at the end
};

struct EvaluateRequest {
  size_t queries_per_class = 100;
  uint64_t seed = 0;
  RetrievalOptions options;  // precision@N and radius r
};
struct StoreEvaluation {
  RetrievalMetrics metrics;
  size_t queries = 0, gallery = 0, labelled_items = 0;
  double seconds = 0;
};

struct StoreHealth {
  size_t items = 0;
  int bits = 0;
  CodeHealth health;                                    // rows == 0 for an empty store
  std::vector<uint64_t> distance_histogram;             // index = distance
  std::vector<std::vector<uint64_t>> bucket_occupancy;  // per multi-index table
};

// The model `store` records it was indexed with (CodeStore::model_path), loaded and checked to
// be that model still (fingerprint and code length); InvalidArgument saying why not otherwise
// (query::recorded_model in store_admin.h says the same to the front-ends).
Result<learn::Model> load_recorded_model(const index::CodeStore& store, const std::string& db);

// Holds a store and (optionally) the model that made its codes. Searches by raw vector (encoded
// by the model), by code, or by a stored item's key. Thread-safe for concurrent searches.
class QueryEngine {
 public:
  // Opens an existing store. With a model, its code length must equal the store's and its
  // fingerprint the one recorded in the store (when the store recorded one): else
  // InvalidArgument naming both. Without one, the model the store was indexed with (its recorded
  // path) when that file is still there and is still the same model.
  // `read_only` opens the store so that nothing in its folder can be written or deleted (search,
  // inspection, evaluation); item writes then fail with InvalidArgument.
  // `cache_mb` > 0 sets the store's RocksDB block cache (index::StoreOptions::cache_mb).
  static Result<std::unique_ptr<QueryEngine>> open(const std::string& db,
                                                   const std::string& model_path = "",
                                                   bool read_only = false, size_t cache_mb = 0);
  // Over an already open store and loaded model (e.g. for tests).
  static Result<std::unique_ptr<QueryEngine>> create(std::unique_ptr<index::CodeStore> store,
                                                     std::unique_ptr<learn::Model> model);
  ~QueryEngine();

  const learn::Model* model() const { return model_.get(); }
  // The model as the front-ends show it; std::nullopt without a model.
  std::optional<ModelInfo> model_info() const;
  // Values of a vector query (0 without a model).
  size_t input_dim() const;
  // The store's schema and size (bits, tables, items, memory, fingerprint).
  index::StoreInfo info() const;
  int bits() const { return store_->bits(); }
  // The distance exact re-ranking uses: the store's recorded metric, else the model's, else l2.
  learn::Metric metric() const { return metric_; }
  // The store opened read-only because its disk was full, and there is room again: open the
  // collection anew to take writes (Catalog does).
  bool reopen_for_writes() const { return store_->reopen_for_writes(); }

  // Loads every stored raw vector into memory so exact re-ranking reads memory instead of
  // RocksDB (rows x dim values of `precision`, on huge pages where the kernel gives them), with
  // the items' keys and metadata, so the hits returned are named and described without a read
  // either. Items added later are read from the store as before; ids are never reused, so the
  // cache cannot go stale. Not thread-safe against searches: call before serving. Errors:
  // InvalidArgument when stored vectors differ in length, or for float16 when a value lies beyond
  // its range (65,504 in magnitude).
  Status cache_vectors(VectorPrecision precision = VectorPrecision::kFloat32);
  size_t cached_vectors() const { return cache_rows_; }
  // Bytes the cache holds: vectors, keys, metadata and the row map.
  size_t vector_cache_bytes() const {
    return cache_.size() * sizeof(float) + cache16_.size() * sizeof(uint16_t) +
           cache_keys_.bytes() + cache_meta_.bytes() + cache_row_of_.size() * sizeof(uint32_t);
  }
  VectorPrecision cache_precision() const { return cache_precision_; }

  // How searches by vector (and image) share model calls (EncodeBatcher): call before serving,
  // not while searches run. Without a call, the defaults of EncodeBatchOptions.
  void set_encode_batching(EncodeBatchOptions options);
  // Vectors encoded for searches and the model calls they took (EncodeBatcher::Stats); zeros
  // without a model.
  EncodeBatcher::Stats encode_batch_stats() const;

  // Codes of raw items through the model (serialised: a Model encodes on one thread at a time).
  // InvalidArgument without a model or for a wrong dimension or NaN.
  Result<std::vector<uint8_t>> encode(const float* raw, size_t rows, size_t dim) const;

  // Errors: InvalidArgument (no model, wrong dimension, NaN, bad k/radius, re-ranking that the
  // query or store cannot support).
  Result<SearchResponse> search_vector(const float* vector, size_t dim,
                                       const SearchRequest& request) const;
  Result<SearchResponse> search_code(const std::vector<uint8_t>& code,
                                     const SearchRequest& request) const;
  // Decodes an uploaded image (image_to_input) and searches by the resulting vector.
  // `max_pixels` > 0: images declaring more pixels are refused before decoding.
  Result<SearchResponse> search_image(const std::string& encoded, const SearchRequest& request,
                                      bool invert = false, size_t max_pixels = 0) const;
  // Uses the stored item's code (and its stored vector for exact re-ranking). NotFound for an
  // unknown key.
  Result<SearchResponse> search_key(const std::string& key, const SearchRequest& request) const;
  // Many searches by code with one request's options: the same responses as search_code on
  // each. A plain kNN request (no re-ranking, no metadata filter) runs as one
  // CodeStore::search_batch (queries that would scan share one pass over the codes) with every
  // hit's metadata read in one MultiGet.
  Result<std::vector<SearchResponse>> search_codes(const std::vector<std::vector<uint8_t>>& codes,
                                                   const SearchRequest& request) const;

  // ---- Items (every write is one atomic, synced batch: durable when it returns OK)

  // Adds or replaces items given by code or by raw vector (encoded here through the model, in one
  // batch). Everything is validated before anything is written: a bad item rejects the whole
  // call, naming the item by position. Returns the number of live items afterwards. Errors:
  // InvalidArgument (empty or duplicate key, both or neither of code and vector, wrong code
  // length or dimension, NaN, a vector without a model), IOError.
  // `max_image_pixels` > 0 refuses images that declare more pixels.
  Result<size_t> add_items(std::vector<NewItem> items, size_t max_image_pixels = 0);
  // The stored item, or NotFound.
  Result<StoredItem> get_item(const std::string& key) const;
  // Deletes items by key; an unknown key is NotFound and nothing is deleted.
  Status erase_items(const std::vector<std::string>& keys);
  // Up to `limit` items (1..kMaxScroll) in insertion order after `cursor` (empty: from the
  // first); the page's next_cursor continues. Vectors are not returned. A cursor is an insertion
  // position, so it survives concurrent writes: every item present for the whole scroll is
  // visited exactly once (an item replaced meanwhile moves to the end). With a filter, only
  // passing items.
  Result<ScrollPage> scroll(const std::string& cursor, size_t limit,
                            const Filter* filter = nullptr) const;
  // How many items pass `filter` (every item without one); exact.
  Result<size_t> count(const Filter* filter = nullptr) const;
  // Deletes, in one atomic batch, the items passing `filter`; returns how many.
  Result<size_t> erase_where(const Filter& filter);
  // Deletes, in one atomic batch, those of `keys` that exist; returns how many (unknown keys
  // are skipped, their keys in *missing when given).
  Result<size_t> erase_present(const std::vector<std::string>& keys,
                               std::vector<std::string>* missing = nullptr);
  // Declares a metadata field indexed (CodeStore::index_field) and lists the indexed fields.
  Status index_field(const std::string& field);
  std::vector<std::string> indexed_fields() const;
  // A consistent copy of the store in `dir` (CodeStore::checkpoint).
  Status checkpoint(const std::string& dir) const;
  // A picture of the item: its stored thumbnail (JPEG), or else its stored raw vector drawn as a
  // PNG of the model's input shape. NotFound when the item is unknown or has neither.
  struct Picture {
    std::string content_type;
    std::string bytes;
  };
  Result<Picture> item_image(const std::string& key) const;

  // ---- Whole-store operations

  // The paper's protocol over the labelled items of the store (evaluation.cpp). InvalidArgument
  // when the store holds no labelled items or a label has too few items.
  Result<StoreEvaluation> evaluate(const EvaluateRequest& request) const;
  // Code health of up to `sample_items` items: bit balance, entropy, pairwise MI, the histogram of
  // distances from `distance_queries` sampled items to every item, and the multi-index bucket
  // occupancy (code_health.h).
  Result<StoreHealth> health(size_t sample_items = 100000, size_t distance_queries = 50) const;
  // Checks that the store's records agree with each other (CodeStore::verify).
  Status verify() const;

 private:
  QueryEngine(std::unique_ptr<index::CodeStore> store, std::unique_ptr<learn::Model> model);
  Result<SearchResponse> run(const std::vector<uint8_t>& code, const float* vector, size_t dim,
                             const std::vector<float>* probabilities,
                             const SearchRequest& request) const;
  // Exact distances of `hits` to `vector` into `score` (reported_distance); candidates without a
  // stored vector get Hamming distances past every other.
  Status exact_scores(const float* vector, size_t dim, std::vector<index::Hit>& hits,
                      std::vector<double>* score, SearchResponse* response) const;
  // The keys of the re-ranked hits that are returned (`order`): cached rows' from memory, the
  // rest in one MultiGet; a hit whose item was deleted since the search drops out.
  Status name_reranked(std::vector<index::Hit>* hits, std::vector<size_t>* order) const;
  // The metadata of items `ids`: cached rows' from memory, the rest in one MultiGet.
  Result<std::vector<std::string>> metadata_of(const std::vector<uint64_t>& ids) const;
  std::unique_ptr<index::CodeStore> store_;
  std::unique_ptr<learn::Model> model_;
  mutable std::mutex model_mutex_;  // guards every call into model_
  // Searches' one-vector encodes, batched; null without a model.
  mutable std::unique_ptr<EncodeBatcher> batcher_;
  // Row of cache_ by internal id (ids are dense: they count insertions); kNotCached for ids
  // without a cached vector, and ids past the end are not cached.
  static constexpr uint32_t kNotCached = 0xffffffffu;
  std::vector<uint32_t> cache_row_of_;
  std::vector<float> cache_;       // float32 rows
  std::vector<uint16_t> cache16_;  // float16 rows (index::float_to_half)
  // One string per cached row, end to end (row r's ends at end_[r]): the rows' keys and their
  // metadata. Offsets are 32-bit: once 4 GiB are held, later rows are left out.
  class RowStrings {
   public:
    // Appends the next row's string (ignored once full).
    void append(std::string_view s);
    // Row `row`'s string into *out; false for a row left out.
    bool get(uint32_t row, std::string* out) const;
    void shrink() {
      text_.shrink_to_fit();
      end_.shrink_to_fit();
    }
    size_t bytes() const { return text_.size() + end_.size() * sizeof(uint32_t); }

   private:
    std::string text_;
    std::vector<uint32_t> end_;
    bool full_ = false;
  };
  RowStrings cache_keys_;  // an empty key: deleted while caching, read from the store when hit
  RowStrings cache_meta_;
  // The cache row of item `id`, or kNotCached.
  uint32_t cached_row(uint64_t id) const {
    return id < cache_row_of_.size() ? cache_row_of_[id] : kNotCached;
  }
  VectorPrecision cache_precision_ = VectorPrecision::kFloat32;
  size_t cache_dim_ = 0, cache_rows_ = 0;
  learn::Metric metric_ = learn::Metric::kL2;
};

}  // namespace imsat::query
