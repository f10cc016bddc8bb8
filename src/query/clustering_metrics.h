// Clustering metrics: accuracy under the best one-to-one map of clusters to labels (Hungarian
// algorithm) and normalised mutual information.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "common/status.h"

namespace imsat::query {

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

}  // namespace imsat::query
