// Retrieval and clustering metrics, exactly as DESIGN.md defines them.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <map>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "index/hamming.h"
#include "query/query.h"

namespace imsat::query {

Result<Split> split_per_class(const std::vector<int32_t>& labels, size_t per_class, uint64_t seed) {
  if (labels.empty()) return Status::invalid_argument("the protocol needs labels; none were given");
  std::map<int32_t, std::vector<size_t>> by_label;
  for (size_t i = 0; i < labels.size(); ++i) by_label[labels[i]].push_back(i);
  std::mt19937_64 rng(seed);
  Split s;
  std::vector<bool> is_query(labels.size(), false);
  for (auto& [label, items] : by_label) {
    if (items.size() <= per_class) {
      return Status::invalid_argument("label " + std::to_string(label) + " has " +
                                      std::to_string(items.size()) + " items; " +
                                      std::to_string(per_class) + " queries per class need more");
    }
    std::shuffle(items.begin(), items.end(), rng);
    for (size_t i = 0; i < per_class; ++i) is_query[items[i]] = true;
  }
  for (size_t i = 0; i < labels.size(); ++i) (is_query[i] ? s.queries : s.gallery).push_back(i);
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

Result<RetrievalMetrics> evaluate_retrieval(const std::vector<uint8_t>& codes, int bits,
                                            const std::vector<int32_t>& labels, const Split& split,
                                            const RetrievalOptions& options) {
  if (bits < 8 || bits > 1024 || bits % 8 != 0) {
    return Status::invalid_argument("bits must be a multiple of 8 from 8 to 1024");
  }
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
  // Codes padded to whole 64-bit words, the gallery contiguous, so one kernel scan per query.
  const size_t words = (code_bytes + 7) / 8;
  auto pack = [&](size_t item, uint64_t* out) {
    std::fill(out, out + words, 0);
    std::memcpy(out, codes.data() + item * code_bytes, code_bytes);
  };
  const size_t ng = split.gallery.size();
  std::vector<uint64_t> gallery(ng * words);
  std::vector<int32_t> gallery_labels(ng);
  for (size_t g = 0; g < ng; ++g) {
    pack(split.gallery[g], gallery.data() + g * words);
    gallery_labels[g] = labels[split.gallery[g]];
  }
  const index::HammingKernel& kernel = index::active_kernel();
  std::vector<uint16_t> dist(ng);
  std::vector<uint64_t> query(words);
  std::vector<uint64_t> rel_at(static_cast<size_t>(bits) + 1),
      all_at(static_cast<size_t>(bits) + 1);
  RetrievalMetrics m;
  double sum_ap = 0, sum_pn = 0, sum_pr = 0;
  size_t empty = 0;
  const size_t top_n = std::min(options.precision_at, ng);
  for (size_t qi : split.queries) {
    pack(qi, query.data());
    kernel.scan(query.data(), gallery.data(), ng, words, dist.data());
    std::fill(rel_at.begin(), rel_at.end(), 0);
    std::fill(all_at.begin(), all_at.end(), 0);
    const int32_t label = labels[qi];
    for (size_t g = 0; g < ng; ++g) {
      ++all_at[dist[g]];
      rel_at[dist[g]] += gallery_labels[g] == label;
    }
    sum_ap += grouped_average_precision(rel_at, all_at);

    // precision@N: whole distance groups below the cut, then the cut group in gallery order.
    size_t taken = 0, relevant = 0, cut = 0;
    while (cut < all_at.size() && taken + all_at[cut] <= top_n) {
      taken += all_at[cut];
      relevant += rel_at[cut];
      ++cut;
    }
    for (size_t g = 0; g < ng && taken < top_n; ++g) {
      if (dist[g] == cut) {
        ++taken;
        relevant += gallery_labels[g] == label;
      }
    }
    if (top_n > 0) sum_pn += static_cast<double>(relevant) / static_cast<double>(top_n);

    uint64_t in_ball = 0, rel_ball = 0;
    for (int t = 0; t <= options.radius && t <= bits; ++t) {
      in_ball += all_at[static_cast<size_t>(t)];
      rel_ball += rel_at[static_cast<size_t>(t)];
    }
    if (in_ball == 0) {
      ++empty;
    } else {
      sum_pr += static_cast<double>(rel_ball) / static_cast<double>(in_ball);
    }
  }
  const double nq = static_cast<double>(split.queries.size());
  m.queries = split.queries.size();
  m.map = sum_ap / nq;
  m.precision_at_n = sum_pn / nq;
  m.precision_at_r = sum_pr / nq;
  m.empty_r_share = static_cast<double>(empty) / nq;
  return m;
}

std::vector<size_t> hungarian_min_cost(const std::vector<double>& cost, size_t n) {
  // Shortest augmenting paths with row and column potentials (Kuhn-Munkres, O(n^3)), 1-based
  // internally; column 0 is a sentinel.
  const double inf = std::numeric_limits<double>::infinity();
  std::vector<double> u(n + 1, 0), v(n + 1, 0);
  std::vector<size_t> match_col(n + 1, 0), way(n + 1, 0);
  for (size_t row = 1; row <= n; ++row) {
    match_col[0] = row;
    size_t col0 = 0;
    std::vector<double> min_to(n + 1, inf);
    std::vector<bool> used(n + 1, false);
    do {
      used[col0] = true;
      const size_t r = match_col[col0];
      double delta = inf;
      size_t col1 = 0;
      for (size_t c = 1; c <= n; ++c) {
        if (used[c]) continue;
        const double reduced = cost[(r - 1) * n + (c - 1)] - u[r] - v[c];
        if (reduced < min_to[c]) {
          min_to[c] = reduced;
          way[c] = col0;
        }
        if (min_to[c] < delta) {
          delta = min_to[c];
          col1 = c;
        }
      }
      for (size_t c = 0; c <= n; ++c) {
        if (used[c]) {
          u[match_col[c]] += delta;
          v[c] -= delta;
        } else {
          min_to[c] -= delta;
        }
      }
      col0 = col1;
    } while (match_col[col0] != 0);
    do {
      const size_t prev = way[col0];
      match_col[col0] = match_col[prev];
      col0 = prev;
    } while (col0 != 0);
  }
  std::vector<size_t> assignment(n, 0);
  for (size_t c = 1; c <= n; ++c) {
    if (match_col[c] != 0) assignment[match_col[c] - 1] = c - 1;
  }
  return assignment;
}

namespace {

// Dense ids 0..k-1 for arbitrary non-negative values.
Result<std::vector<size_t>> densify(const std::vector<int32_t>& values, size_t* count) {
  std::map<int32_t, size_t> ids;
  std::vector<size_t> out(values.size());
  for (size_t i = 0; i < values.size(); ++i) {
    if (values[i] < 0) return Status::invalid_argument("negative cluster or label value");
    auto it = ids.emplace(values[i], ids.size()).first;
    out[i] = it->second;
  }
  *count = ids.size();
  return out;
}

}  // namespace

Result<double> clustering_accuracy(const std::vector<int32_t>& clusters,
                                   const std::vector<int32_t>& labels) {
  if (clusters.size() != labels.size() || clusters.empty()) {
    return Status::invalid_argument("clusters and labels must be non-empty and of equal length");
  }
  size_t kc = 0, kl = 0;
  Result<std::vector<size_t>> c = densify(clusters, &kc);
  if (!c.is_ok()) return c.status();
  Result<std::vector<size_t>> l = densify(labels, &kl);
  if (!l.is_ok()) return l.status();
  const size_t n = std::max(kc, kl);
  std::vector<double> counts(n * n, 0);
  for (size_t i = 0; i < clusters.size(); ++i) counts[(*c)[i] * n + (*l)[i]] += 1;
  std::vector<double> cost(n * n);
  for (size_t i = 0; i < n * n; ++i) cost[i] = -counts[i];
  std::vector<size_t> match = hungarian_min_cost(cost, n);
  double correct = 0;
  for (size_t r = 0; r < n; ++r) correct += counts[r * n + match[r]];
  return correct / static_cast<double>(clusters.size());
}

Result<double> normalized_mutual_information(const std::vector<int32_t>& a,
                                             const std::vector<int32_t>& b) {
  if (a.size() != b.size() || a.empty()) {
    return Status::invalid_argument("inputs must be non-empty and of equal length");
  }
  size_t ka = 0, kb = 0;
  Result<std::vector<size_t>> da = densify(a, &ka);
  if (!da.is_ok()) return da.status();
  Result<std::vector<size_t>> db = densify(b, &kb);
  if (!db.is_ok()) return db.status();
  const double n = static_cast<double>(a.size());
  std::vector<double> joint(ka * kb, 0), pa(ka, 0), pb(kb, 0);
  for (size_t i = 0; i < a.size(); ++i) {
    joint[(*da)[i] * kb + (*db)[i]] += 1 / n;
    pa[(*da)[i]] += 1 / n;
    pb[(*db)[i]] += 1 / n;
  }
  double mi = 0, ha = 0, hb = 0;
  for (size_t i = 0; i < ka; ++i) {
    for (size_t j = 0; j < kb; ++j) {
      const double p = joint[i * kb + j];
      if (p > 0) mi += p * std::log(p / (pa[i] * pb[j]));
    }
  }
  for (double p : pa) ha -= p > 0 ? p * std::log(p) : 0;
  for (double p : pb) hb -= p > 0 ? p * std::log(p) : 0;
  if (ha + hb <= 0) return 1.0;  // both constant: identical partitions
  return std::max(0.0, 2 * mi / (ha + hb));
}

}  // namespace imsat::query
