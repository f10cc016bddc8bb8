// Clustering accuracy (Hungarian matching) and normalised mutual information.
#include "query/clustering_metrics.h"

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

namespace imsat::query {

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
  IMSAT_ASSIGN_OR_RETURN(std::vector<size_t> c, densify(clusters, &kc));
  IMSAT_ASSIGN_OR_RETURN(std::vector<size_t> l, densify(labels, &kl));
  const size_t n = std::max(kc, kl);
  std::vector<double> counts(n * n, 0);
  for (size_t i = 0; i < clusters.size(); ++i) counts[c[i] * n + l[i]] += 1;
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
  IMSAT_ASSIGN_OR_RETURN(std::vector<size_t> da, densify(a, &ka));
  IMSAT_ASSIGN_OR_RETURN(std::vector<size_t> db, densify(b, &kb));
  const double n = static_cast<double>(a.size());
  std::vector<double> joint(ka * kb, 0), pa(ka, 0), pb(kb, 0);
  for (size_t i = 0; i < a.size(); ++i) {
    joint[da[i] * kb + db[i]] += 1 / n;
    pa[da[i]] += 1 / n;
    pb[db[i]] += 1 / n;
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
