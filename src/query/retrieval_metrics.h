// The paper's evaluation protocol: query/gallery splits and
// retrieval metrics of Hamming ranking (mAP with ties grouped, precision@N, precision within radius
// r, mAP@k, precision-recall curves). Codes are packed bytes in the index's layout (bit d of an
// item in byte d / 8, bit d % 8); labels are non-negative integers.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <vector>

#include "common/status.h"

namespace imsat::query {

// A query/gallery split of item indices. The two never overlap.
struct Split {
  std::vector<size_t> queries;
  std::vector<size_t> gallery;
  // Per-label splits only: how many queries each label gave, and the labels too small to give
  // any (a single item).
  std::map<int32_t, size_t> queries_per_label;
  std::vector<int32_t> too_small;
};

// The paper's protocol: `per_class` random items of each label (fixed `seed`) are queries, the
// rest is the gallery. On uneven data `per_class` is a cap: a label gives at most half its items
// (rounded down) as queries, so a label of 1 item gives none (listed in too_small). Balanced
// data with more than 2 x per_class items per label is split exactly as before the cap.
// Errors: InvalidArgument when labels are missing or no label can give a query.
Result<Split> split_per_class(const std::vector<int32_t>& labels, size_t per_class, uint64_t seed);
// `count` queries drawn at random over all items (fixed `seed`); the rest is the gallery.
// InvalidArgument when count is 0 or not below the number of items.
Result<Split> split_random(const std::vector<int32_t>& labels, size_t count, uint64_t seed);
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

// Asymmetric ranking: each query's bit probabilities p_d (from the model) against the
// gallery's binary codes, ranked by AsymmetricScorer (the codes' negative log-likelihood under
// the query's bits; equal scores grouped like Hamming ties). `probabilities` holds item_count *
// bits values (every item's; the queries' rows are used), `codes` every item's code. Only mAP and
// precision@N are defined (precision_at_r and empty_r_share are left 0).
Result<RetrievalMetrics> evaluate_asymmetric(const std::vector<float>& probabilities,
                                             const std::vector<uint8_t>& codes, int bits,
                                             const std::vector<int32_t>& labels, const Split& split,
                                             const RetrievalOptions& options);

// Average precision of one query from per-distance histograms (index t = Hamming distance):
// AP = sum_t (TP(<=t) - TP(<=t-1)) / R * TP(<=t) / N(<=t), R the total relevant count. This
// equals scikit-learn's average_precision_score with score 1 / (1 + distance). 0 when R = 0.
double grouped_average_precision(const std::vector<uint64_t>& relevant_at,
                                 const std::vector<uint64_t>& all_at);

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

}  // namespace imsat::query
