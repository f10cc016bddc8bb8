// imsat::query — the query engine (a model and a code store: encode, search, re-rank), codes
// files, retrieval and clustering metrics, code health, and the evaluation protocol (DESIGN.md,
// "Evaluation protocol"). Codes are packed bytes in the index's layout (bit d of an item in byte
// d / 8, bit d % 8); labels are non-negative integers. No LibTorch type appears here.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/status.h"
#include "index/code_store.h"
#include "learn/learn.h"

namespace imsat::query {

// A query/gallery split of item indices. The two never overlap.
struct Split {
  std::vector<size_t> queries;
  std::vector<size_t> gallery;
};

// The paper's protocol: `per_class` random items of each label (fixed `seed`) are queries, the
// rest is the gallery. Errors: InvalidArgument when a label has fewer than per_class + 1 items
// or labels are missing.
Result<Split> split_per_class(const std::vector<int32_t>& labels, size_t per_class, uint64_t seed);
// A given split (e.g. a dataset's own train/test): errors when the two overlap or an index is out
// of range.
Result<Split> given_split(std::vector<size_t> queries, std::vector<size_t> gallery,
                          size_t item_count);

struct RetrievalOptions {
  size_t precision_at = 500;  // precision@N
  int radius = 2;             // precision within Hamming radius r
};

struct RetrievalMetrics {
  double map = 0;             // mean average precision over Hamming ranking, ties grouped
  double precision_at_n = 0;  // relevant share of the first N by distance, ties by gallery order
  double precision_at_r = 0;  // relevant share within radius r; an empty ball counts 0
  double empty_r_share = 0;   // share of queries whose radius-r ball is empty
  size_t queries = 0;
};

// Evaluates every query against the whole gallery by Hamming ranking. `codes` holds all items
// (item_count * bits / 8 bytes), `labels` one per item. Errors: InvalidArgument for bits out of
// range, sizes that do not match, or indices out of range.
Result<RetrievalMetrics> evaluate_retrieval(const std::vector<uint8_t>& codes, int bits,
                                            const std::vector<int32_t>& labels, const Split& split,
                                            const RetrievalOptions& options = {});

// Average precision of one query from per-distance histograms (index t = Hamming distance):
// AP = sum_t (TP(<=t) - TP(<=t-1)) / R * TP(<=t) / N(<=t), R the total relevant count. This
// equals scikit-learn's average_precision_score with score 1 / (1 + distance). 0 when R = 0.
double grouped_average_precision(const std::vector<uint64_t>& relevant_at,
                                 const std::vector<uint64_t>& all_at);

// Clustering accuracy: the best one-to-one map of clusters to labels (Hungarian algorithm), as a
// fraction of items. Errors: InvalidArgument when sizes differ or values are negative.
Result<double> clustering_accuracy(const std::vector<int32_t>& clusters,
                                   const std::vector<int32_t>& labels);

// Minimum-cost perfect assignment on a square cost matrix (row-major, n x n): returns the column
// assigned to each row. O(n^3).
std::vector<size_t> hungarian_min_cost(const std::vector<double>& cost, size_t n);

// Normalised mutual information (arithmetic mean normalisation, as scikit-learn's default).
Result<double> normalized_mutual_information(const std::vector<int32_t>& a,
                                             const std::vector<int32_t>& b);

// Mean average precision over the top k of the Hamming ranking (mAP@k): per query, the sum of
// precision@i at each relevant rank i <= k (ties by gallery order) divided by min(R, k).
Result<double> map_at_k(const std::vector<uint8_t>& codes, int bits,
                        const std::vector<int32_t>& labels, const Split& split, size_t k);

// Precision-recall curve of Hamming ranking with ties grouped: point t (t = 0..bits) is the mean
// over queries of precision and recall among the gallery items within distance t (a query with
// none counts precision 0 at that t). Also precision@N for the given N (ties by gallery order).
struct Curves {
  std::vector<double> precision;  // by radius t
  std::vector<double> recall;     // by radius t
  std::vector<size_t> n;          // the N of precision_at_n
  std::vector<double> precision_at_n;
};
Result<Curves> retrieval_curves(const std::vector<uint8_t>& codes, int bits,
                                const std::vector<int32_t>& labels, const Split& split,
                                const std::vector<size_t>& n_values);

// recall@k, the ann-benchmarks measure: per query, |returned ∩ true k nearest| / k, averaged.
// `found` and `truth` hold k ids per query (found may hold fewer: the rest counts as misses).
double recall_at_k(const std::vector<std::vector<uint64_t>>& found,
                   const std::vector<std::vector<uint64_t>>& truth, size_t k);

// Exact Euclidean k nearest gallery rows of each query row (ids = gallery indices, ties by
// index). queries: nq x dim, gallery: ng x dim, row-major. `threads` workers.
std::vector<std::vector<uint64_t>> exact_neighbours(const float* queries, size_t nq,
                                                    const float* gallery, size_t ng, size_t dim,
                                                    size_t k, int threads = 1);

// Code health of a set of codes (rows x bits / 8 bytes): per-bit balance (share of ones) and
// entropy (bits), and the pairwise mutual information of bits (bits x bits, symmetric, zero
// diagonal, in bits) with its mean and maximum over pairs. Collapsed bits have entropy near 0;
// redundant bit pairs have mutual information near 1.
struct CodeHealth {
  int bits = 0;
  size_t rows = 0;
  std::vector<double> balance;
  std::vector<double> entropy;
  std::vector<double> pair_mi;  // bits * bits
  double mean_entropy = 0, min_entropy = 0, mean_pair_mi = 0, max_pair_mi = 0;
  int max_pair_a = 0, max_pair_b = 0;
};
Result<CodeHealth> code_health(const std::vector<uint8_t>& codes, int bits);

// ---------------------------------------------------------------------------------------------
// Codes files and hex codes

// Codes made by `imsat encode`: a header (magic "IMSATCDS", format version, JSON with bits,
// rows, model fingerprint, source) followed by the packed codes, optional labels, and a checksum.
struct CodesFile {
  int bits = 0;
  size_t rows = 0;
  std::string fingerprint;  // of the model that made them; may be empty
  std::string source;       // where the items came from
  std::vector<uint8_t> codes;
  std::vector<int32_t> labels;  // empty or one per row
};
constexpr uint32_t kCodesFormatVersion = 1;
// Writes atomically. Errors: InvalidArgument (sizes), IOError.
Status write_codes_file(const std::string& path, const CodesFile& file);
// Errors: NotFound, IOError, Corruption (bad magic, truncated, checksum), InvalidArgument (a
// different format version).
Result<CodesFile> read_codes_file(const std::string& path);
// True when the file starts with the codes-file magic.
bool is_codes_file(const std::string& path);

// Lower-case hex of a packed code, byte 0 first.
std::string to_hex(const uint8_t* code, size_t bytes);
// Parses a hex code of exactly bits / 4 digits. Errors: InvalidArgument naming what was wrong.
Result<std::vector<uint8_t>> parse_hex_code(const std::string& hex, int bits);

// ---------------------------------------------------------------------------------------------
// Images

// Decodes a PNG or JPEG (or BMP, GIF, PNM) image to the input a pixel model expects: grayscale,
// resized to the model's item shape (H x W) when it differs, values 0..255 in row-major order.
// `invert` turns dark-on-light pictures into the light-on-dark style of MNIST-like data.
// Errors: InvalidArgument for undecodable or empty data, or a model that does not take images.
Result<std::vector<float>> image_to_input(const std::string& encoded, const learn::Model& model,
                                          bool invert = false);

// ---------------------------------------------------------------------------------------------
// Query engine

enum class Rerank {
  kNone,        // Hamming order (ties by insertion)
  kExact,       // Euclidean distance between raw vectors (the store must hold them)
  kAsymmetric,  // expected Hamming distance under the query's bit probabilities
};
Result<Rerank> parse_rerank(const std::string& name);  // none, exact, asymmetric
const char* rerank_name(Rerank r);

struct SearchRequest {
  size_t k = 10;
  int radius = -1;  // >= 0: every item within this Hamming radius (then no re-ranking)
  Rerank rerank = Rerank::kNone;
  size_t candidates = 0;  // Hamming candidates re-ranked; 0 = max(10 k, 100)
  bool has_label = false;  // filter: only items with this tag (label)
  int32_t label = 0;
  bool use_multi_index = true;
  bool with_metadata = true;
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
};

// Holds a store and (optionally) the model that made its codes. Searches by raw vector (encoded
// by the model), by code, or by a stored item's key. Thread-safe for concurrent searches.
class QueryEngine {
 public:
  // Opens an existing store. With a model, its code length must equal the store's and its
  // fingerprint the one recorded in the store (when the store recorded one): else
  // InvalidArgument naming both.
  static Result<std::unique_ptr<QueryEngine>> open(const std::string& db,
                                                   const std::string& model_path = "");
  // Over an already open store and loaded model (e.g. for tests).
  static Result<std::unique_ptr<QueryEngine>> create(std::unique_ptr<index::CodeStore> store,
                                                     std::unique_ptr<learn::Model> model);
  ~QueryEngine();

  const learn::Model* model() const { return model_.get(); }
  index::CodeStore& store() { return *store_; }
  const index::CodeStore& store() const { return *store_; }
  int bits() const { return store_->bits(); }

  // Loads every stored raw vector into memory so exact re-ranking reads memory instead of
  // RocksDB (rows x dim floats). Items added later are read from the store as before; ids are
  // never reused, so cached vectors cannot go stale. Not thread-safe against searches: call
  // before serving. Errors: InvalidArgument when stored vectors differ in length.
  Status cache_vectors();
  size_t cached_vectors() const { return cache_ids_.size(); }

  // Codes of raw items through the model (serialised: a Model encodes on one thread at a time).
  // InvalidArgument without a model or for a wrong dimension or NaN.
  Result<std::vector<uint8_t>> encode(const float* raw, size_t rows, size_t dim) const;

  // Errors: InvalidArgument (no model, wrong dimension, NaN, bad k/radius, re-ranking that the
  // query or store cannot support), NotFound (stored vectors missing for exact re-ranking).
  Result<SearchResponse> search_vector(const float* vector, size_t dim,
                                       const SearchRequest& request) const;
  Result<SearchResponse> search_code(const std::vector<uint8_t>& code,
                                     const SearchRequest& request) const;
  // Decodes an uploaded image (image_to_input) and searches by the resulting vector.
  Result<SearchResponse> search_image(const std::string& encoded, const SearchRequest& request,
                                      bool invert = false) const;
  // Uses the stored item's code (and its stored vector for exact re-ranking). NotFound for an
  // unknown key.
  Result<SearchResponse> search_key(const std::string& key, const SearchRequest& request) const;

 private:
  QueryEngine(std::unique_ptr<index::CodeStore> store, std::unique_ptr<learn::Model> model);
  Result<SearchResponse> run(const std::vector<uint8_t>& code, const float* vector, size_t dim,
                             const std::vector<float>* probabilities,
                             const SearchRequest& request) const;
  std::unique_ptr<index::CodeStore> store_;
  std::unique_ptr<learn::Model> model_;
  mutable std::mutex model_mutex_;  // guards every call into model_
  std::unordered_map<uint64_t, size_t> cache_ids_;  // id -> row of cache_
  std::vector<float> cache_;
  size_t cache_dim_ = 0;
};

}  // namespace imsat::query
