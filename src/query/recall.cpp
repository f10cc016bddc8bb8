// recall@k and exact Euclidean neighbours.
#include "query/recall.h"

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

double recall_at_k(const std::vector<std::vector<uint64_t>>& found,
                   const std::vector<std::vector<uint64_t>>& truth, size_t k) {
  if (truth.empty() || k == 0) return 0;
  double sum = 0;
  for (size_t q = 0; q < truth.size() && q < found.size(); ++q) {
    std::vector<uint64_t> t(truth[q].begin(), truth[q].begin() + static_cast<std::ptrdiff_t>(
                                                                     std::min(k, truth[q].size())));
    std::sort(t.begin(), t.end());
    size_t hit = 0;
    for (size_t i = 0; i < found[q].size() && i < k; ++i) {
      hit += std::binary_search(t.begin(), t.end(), found[q][i]);
    }
    sum += static_cast<double>(hit) / static_cast<double>(k);
  }
  return sum / static_cast<double>(truth.size());
}

std::vector<std::vector<uint64_t>> exact_neighbours(const float* queries, size_t nq,
                                                    const float* gallery, size_t ng, size_t dim,
                                                    size_t k, int threads) {
  std::vector<std::vector<uint64_t>> out(nq);
  k = std::min(k, ng);
  auto work = [&](size_t begin, size_t end) {
    std::vector<std::pair<float, uint64_t>> d(ng);
    for (size_t q = begin; q < end; ++q) {
      const float* x = queries + q * dim;
      for (size_t g = 0; g < ng; ++g) {
        const float* y = gallery + g * dim;
        float s = 0;
        for (size_t i = 0; i < dim; ++i) {
          const float diff = x[i] - y[i];
          s += diff * diff;
        }
        d[g] = {s, g};
      }
      std::partial_sort(d.begin(), d.begin() + static_cast<std::ptrdiff_t>(k), d.end());
      for (size_t i = 0; i < k; ++i) out[q].push_back(d[i].second);
    }
  };
  const size_t workers = std::max<size_t>(1, std::min<size_t>(static_cast<size_t>(threads), nq));
  std::vector<std::thread> pool;
  for (size_t w = 0; w < workers; ++w) {
    pool.emplace_back(work, nq * w / workers, nq * (w + 1) / workers);
  }
  for (std::thread& t : pool) t.join();
  return out;
}

}  // namespace imsat::query
