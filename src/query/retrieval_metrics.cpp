// The paper's evaluation protocol: splits, mAP with ties
// grouped, precision@N, precision within radius r, mAP@k and precision-recall curves.
#include "query/retrieval_metrics.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <map>
#include <numeric>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "common/code_bits.h"
#include "index/hamming.h"
#include "query/asymmetric.h"

namespace imsat::query {

Result<Split> split_per_class(const std::vector<int32_t>& labels, size_t per_class, uint64_t seed) {
  if (labels.empty()) return Status::invalid_argument("the protocol needs labels; none were given");
  std::map<int32_t, std::vector<size_t>> by_label;
  for (size_t i = 0; i < labels.size(); ++i) by_label[labels[i]].push_back(i);
  std::mt19937_64 rng(seed);
  Split s;
  std::vector<bool> is_query(labels.size(), false);
  for (auto& [label, items] : by_label) {
    const size_t take = std::min(per_class, items.size() / 2);
    s.queries_per_label[label] = take;
    if (take == 0) {
      s.too_small.push_back(label);
      continue;
    }
    std::shuffle(items.begin(), items.end(), rng);
    for (size_t i = 0; i < take; ++i) is_query[items[i]] = true;
  }
  for (size_t i = 0; i < labels.size(); ++i) (is_query[i] ? s.queries : s.gallery).push_back(i);
  if (s.queries.empty()) {
    return Status::invalid_argument("no label has the 2 items that one query needs");
  }
  return s;
}

Result<Split> split_random(const std::vector<int32_t>& labels, size_t count, uint64_t seed) {
  if (labels.empty()) return Status::invalid_argument("the protocol needs labels; none were given");
  if (count == 0 || count >= labels.size()) {
    return Status::invalid_argument(std::to_string(count) + " queries from " +
                                    std::to_string(labels.size()) +
                                    " items: at least 1 and fewer than the items are needed");
  }
  std::vector<size_t> order(labels.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::mt19937_64 rng(seed);
  std::shuffle(order.begin(), order.end(), rng);
  std::vector<bool> is_query(labels.size(), false);
  for (size_t i = 0; i < count; ++i) is_query[order[i]] = true;
  Split s;
  for (size_t i = 0; i < labels.size(); ++i) {
    if (is_query[i]) {
      s.queries.push_back(i);
      s.queries_per_label[labels[i]]++;
    } else {
      s.gallery.push_back(i);
    }
  }
  return s;
}

Result<Split> given_split(std::vector<size_t> queries, std::vector<size_t> gallery,
                          size_t item_count) {
  std::vector<uint8_t> seen(item_count, 0);
  for (size_t q : queries) {
    if (q >= item_count) {
      return Status::invalid_argument("query index " + std::to_string(q) + " is out of range");
    }
    seen[q] = 1;
  }
  for (size_t g : gallery) {
    if (g >= item_count) {
      return Status::invalid_argument("gallery index " + std::to_string(g) + " is out of range");
    }
    if (seen[g]) {
      return Status::invalid_argument("item " + std::to_string(g) +
                                      " is both a query and in the gallery; the split overlaps");
    }
  }
  if (queries.empty() || gallery.empty()) {
    return Status::invalid_argument("a split needs at least one query and one gallery item");
  }
  return Split{std::move(queries), std::move(gallery)};
}

double grouped_average_precision(const std::vector<uint64_t>& relevant_at,
                                 const std::vector<uint64_t>& all_at) {
  const double total_relevant =
      static_cast<double>(std::accumulate(relevant_at.begin(), relevant_at.end(), uint64_t{0}));
  if (total_relevant == 0) return 0.0;
  double ap = 0;
  uint64_t tp = 0, n = 0;
  for (size_t t = 0; t < all_at.size(); ++t) {
    if (all_at[t] == 0) continue;
    tp += relevant_at[t];
    n += all_at[t];
    ap += static_cast<double>(relevant_at[t]) / total_relevant * static_cast<double>(tp) /
          static_cast<double>(n);
  }
  return ap;
}

namespace {

// Hamming ranking of a gallery for one query at a time: the gallery packed contiguously, one
// kernel scan per query, and per-distance histograms of all and of relevant items.
class Ranking {
 public:
  static Result<Ranking> make(const std::vector<uint8_t>& codes, int bits,
                              const std::vector<int32_t>& labels, const Split& split) {
    IMSAT_RETURN_IF_ERROR(check_code_bits(bits));
    const size_t code_bytes = static_cast<size_t>(bits) / 8;
    const size_t items = labels.size();
    if (codes.size() != items * code_bytes) {
      return Status::invalid_argument("codes hold " + std::to_string(codes.size()) +
                                      " bytes; expected " + std::to_string(items) + " items x " +
                                      std::to_string(code_bytes) + " bytes");
    }
    for (size_t i : split.queries) {
      if (i >= items) return Status::invalid_argument("query index out of range");
    }
    for (size_t i : split.gallery) {
      if (i >= items) return Status::invalid_argument("gallery index out of range");
    }
    if (split.queries.empty() || split.gallery.empty()) {
      return Status::invalid_argument("evaluation needs queries and a gallery");
    }
    return Ranking(codes, bits, labels, split);
  }

  // Calls fn(query item) after filling dist, rel_at and all_at for it.
  template <typename Fn>
  void for_each_query(Fn fn) {
    for (size_t qi : split_.queries) {
      pack(qi, query_.data());
      kernel_.scan(query_.data(), gallery_.data(), ng_, words_, dist.data());
      std::fill(rel_at.begin(), rel_at.end(), 0);
      std::fill(all_at.begin(), all_at.end(), 0);
      const int32_t label = labels_[qi];
      for (size_t g = 0; g < ng_; ++g) {
        ++all_at[dist[g]];
        rel_at[dist[g]] += gallery_labels[g] == label;
      }
      fn(qi);
    }
  }

  // Relevant items among the first n of the ranking (whole distance groups below the cut, then
  // the cut group in gallery order).
  size_t relevant_in_top(size_t n, int32_t label) const {
    size_t taken = 0, relevant = 0, cut = 0;
    while (cut < all_at.size() && taken + all_at[cut] <= n) {
      taken += all_at[cut];
      relevant += rel_at[cut];
      ++cut;
    }
    for (size_t g = 0; g < ng_ && taken < n; ++g) {
      if (dist[g] == cut) {
        ++taken;
        relevant += gallery_labels[g] == label;
      }
    }
    return relevant;
  }

  // Relevance (0/1) of the first n items of the ranking, in rank order.
  std::vector<uint8_t> top_relevance(size_t n, int32_t label) const {
    std::vector<uint8_t> out;
    out.reserve(n);
    for (size_t t = 0; t < all_at.size() && out.size() < n; ++t) {
      if (all_at[t] == 0) continue;
      for (size_t g = 0; g < ng_ && out.size() < n; ++g) {
        if (dist[g] == t) out.push_back(gallery_labels[g] == label);
      }
    }
    return out;
  }

  size_t gallery_size() const { return ng_; }
  int32_t label(size_t item) const { return labels_[item]; }

  std::vector<uint16_t> dist;
  std::vector<uint64_t> rel_at, all_at;
  std::vector<int32_t> gallery_labels;

 private:
  Ranking(const std::vector<uint8_t>& codes, int bits, const std::vector<int32_t>& labels,
          const Split& split)
      : rel_at(static_cast<size_t>(bits) + 1),
        all_at(static_cast<size_t>(bits) + 1),
        codes_(codes),
        labels_(labels),
        split_(split),
        code_bytes_(static_cast<size_t>(bits) / 8),
        words_((code_bytes_ + 7) / 8),
        ng_(split.gallery.size()),
        kernel_(index::active_kernel()) {
    gallery_.resize(ng_ * words_);
    gallery_labels.resize(ng_);
    for (size_t g = 0; g < ng_; ++g) {
      pack(split.gallery[g], gallery_.data() + g * words_);
      gallery_labels[g] = labels[split.gallery[g]];
    }
    query_.resize(words_);
    dist.resize(ng_);
  }
  void pack(size_t item, uint64_t* out) const {
    std::fill(out, out + words_, 0);
    std::memcpy(out, codes_.data() + item * code_bytes_, code_bytes_);
  }

  const std::vector<uint8_t>& codes_;
  const std::vector<int32_t>& labels_;
  const Split& split_;
  size_t code_bytes_, words_, ng_;
  const index::HammingKernel& kernel_;
  std::vector<uint64_t> gallery_, query_;
};

}  // namespace

Result<RetrievalMetrics> evaluate_retrieval(const std::vector<uint8_t>& codes, int bits,
                                            const std::vector<int32_t>& labels, const Split& split,
                                            const RetrievalOptions& options) {
  IMSAT_ASSIGN_OR_RETURN(Ranking made, Ranking::make(codes, bits, labels, split));
  Ranking& r = made;
  double sum_ap = 0, sum_pn = 0, sum_pr = 0;
  size_t empty = 0;
  const size_t top_n = std::min(options.precision_at, r.gallery_size());
  r.for_each_query([&](size_t qi) {
    sum_ap += grouped_average_precision(r.rel_at, r.all_at);
    if (top_n > 0) {
      sum_pn +=
          static_cast<double>(r.relevant_in_top(top_n, r.label(qi))) / static_cast<double>(top_n);
    }
    uint64_t in_ball = 0, rel_ball = 0;
    for (int t = 0; t <= options.radius && t <= bits; ++t) {
      in_ball += r.all_at[static_cast<size_t>(t)];
      rel_ball += r.rel_at[static_cast<size_t>(t)];
    }
    if (in_ball == 0) {
      ++empty;
    } else {
      sum_pr += static_cast<double>(rel_ball) / static_cast<double>(in_ball);
    }
  });
  const double nq = static_cast<double>(split.queries.size());
  RetrievalMetrics m;
  m.queries = split.queries.size();
  m.map = sum_ap / nq;
  m.precision_at_n = sum_pn / nq;
  m.precision_at_r = sum_pr / nq;
  m.empty_r_share = static_cast<double>(empty) / nq;
  return m;
}

Result<RetrievalMetrics> evaluate_asymmetric(const std::vector<float>& probabilities,
                                             const std::vector<uint8_t>& codes, int bits,
                                             const std::vector<int32_t>& labels, const Split& split,
                                             const RetrievalOptions& options) {
  IMSAT_RETURN_IF_ERROR(check_code_bits(bits));
  const size_t n = labels.size(), bytes = static_cast<size_t>(bits) / 8;
  if (codes.size() != n * bytes || probabilities.size() != n * static_cast<size_t>(bits)) {
    return Status::invalid_argument("asymmetric evaluation: " + std::to_string(n) +
                                    " labels, but codes or probabilities of another count");
  }
  for (size_t i : split.queries) {
    if (i >= n) return Status::invalid_argument("query index out of range");
  }
  for (size_t i : split.gallery) {
    if (i >= n) return Status::invalid_argument("gallery index out of range");
  }
  const size_t g = split.gallery.size();
  const size_t top_n = std::min(options.precision_at, g);
  std::vector<std::pair<double, size_t>> scored(g);  // (score, gallery position)
  std::vector<uint64_t> rel_at, all_at;
  double sum_ap = 0, sum_pn = 0;
  for (size_t q : split.queries) {
    const AsymmetricScorer scorer(probabilities.data() + q * static_cast<size_t>(bits), bits);
    for (size_t j = 0; j < g; ++j) {
      scored[j] = {scorer.score(codes.data() + split.gallery[j] * bytes), j};
    }
    std::sort(scored.begin(), scored.end());  // by score, ties by gallery order
    rel_at.clear();
    all_at.clear();
    size_t relevant_top = 0;
    for (size_t j = 0; j < g; ++j) {
      if (j == 0 || scored[j].first != scored[j - 1].first) {
        rel_at.push_back(0);
        all_at.push_back(0);
      }
      const bool relevant = labels[split.gallery[scored[j].second]] == labels[q];
      rel_at.back() += relevant;
      all_at.back() += 1;
      if (j < top_n) relevant_top += relevant;
    }
    sum_ap += grouped_average_precision(rel_at, all_at);
    if (top_n > 0) sum_pn += static_cast<double>(relevant_top) / static_cast<double>(top_n);
  }
  RetrievalMetrics m;
  m.queries = split.queries.size();
  const double nq = std::max<double>(1, static_cast<double>(m.queries));
  m.map = sum_ap / nq;
  m.precision_at_n = sum_pn / nq;
  return m;
}

Result<double> map_at_k(const std::vector<uint8_t>& codes, int bits,
                        const std::vector<int32_t>& labels, const Split& split, size_t k) {
  if (k == 0) return Status::invalid_argument("mAP@k needs k >= 1");
  IMSAT_ASSIGN_OR_RETURN(Ranking made, Ranking::make(codes, bits, labels, split));
  Ranking& r = made;
  double sum = 0;
  r.for_each_query([&](size_t qi) {
    uint64_t total_relevant = 0;
    for (uint64_t c : r.rel_at) total_relevant += c;
    const std::vector<uint8_t> rel = r.top_relevance(k, r.label(qi));
    double ap = 0;
    size_t hits = 0;
    for (size_t i = 0; i < rel.size(); ++i) {
      if (rel[i]) {
        ++hits;
        ap += static_cast<double>(hits) / static_cast<double>(i + 1);
      }
    }
    const uint64_t denom = std::min<uint64_t>(total_relevant, k);
    if (denom > 0) sum += ap / static_cast<double>(denom);
  });
  return sum / static_cast<double>(split.queries.size());
}

Result<Curves> retrieval_curves(const std::vector<uint8_t>& codes, int bits,
                                const std::vector<int32_t>& labels, const Split& split,
                                const std::vector<size_t>& n_values) {
  IMSAT_ASSIGN_OR_RETURN(Ranking made, Ranking::make(codes, bits, labels, split));
  Ranking& r = made;
  const size_t points = static_cast<size_t>(bits) + 1;
  Curves c;
  c.precision.assign(points, 0);
  c.recall.assign(points, 0);
  c.n = n_values;
  c.precision_at_n.assign(n_values.size(), 0);
  r.for_each_query([&](size_t qi) {
    uint64_t total_relevant = 0;
    for (uint64_t v : r.rel_at) total_relevant += v;
    uint64_t in = 0, rel = 0;
    for (size_t t = 0; t < points; ++t) {
      in += r.all_at[t];
      rel += r.rel_at[t];
      if (in > 0) c.precision[t] += static_cast<double>(rel) / static_cast<double>(in);
      if (total_relevant > 0) {
        c.recall[t] += static_cast<double>(rel) / static_cast<double>(total_relevant);
      }
    }
    for (size_t i = 0; i < n_values.size(); ++i) {
      const size_t n = std::min(n_values[i], r.gallery_size());
      if (n > 0) {
        c.precision_at_n[i] +=
            static_cast<double>(r.relevant_in_top(n, r.label(qi))) / static_cast<double>(n);
      }
    }
  });
  const double nq = static_cast<double>(split.queries.size());
  for (double& v : c.precision) v /= nq;
  for (double& v : c.recall) v /= nq;
  for (double& v : c.precision_at_n) v /= nq;
  return c;
}

}  // namespace imsat::query
