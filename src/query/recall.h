// recall@k against exact Euclidean neighbours (the ann-benchmarks measure), for re-ranking
// benchmarks.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace imsat::query {

// recall@k, the ann-benchmarks measure: per query, |returned ∩ true k nearest| / k, averaged.
// `found` and `truth` hold k ids per query (found may hold fewer: the rest counts as misses).
double recall_at_k(const std::vector<std::vector<uint64_t>>& found,
                   const std::vector<std::vector<uint64_t>>& truth, size_t k);

// Exact Euclidean k nearest gallery rows of each query row (ids = gallery indices, ties by
// index). queries: nq x dim, gallery: ng x dim, row-major. `threads` workers.
std::vector<std::vector<uint64_t>> exact_neighbours(const float* queries, size_t nq,
                                                    const float* gallery, size_t ng, size_t dim,
                                                    size_t k, int threads = 1);

}  // namespace imsat::query
