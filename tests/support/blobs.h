// Synthetic labelled data for tests: Gaussian blobs.
#pragma once

#include <random>
#include <vector>

#include "learn/learn.h"

namespace imsat::testing {

// `clusters` Gaussian blobs in `dim` dimensions, `per` items each, labelled by blob.
inline learn::Dataset blobs(int clusters, int per, int dim, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> noise(0, 0.3f), centre(0, 3.0f);
  learn::Dataset d;
  d.cols = static_cast<size_t>(dim);
  d.item_shape = {d.cols};
  std::vector<std::vector<float>> centres(clusters, std::vector<float>(dim));
  for (auto& c : centres) {
    for (auto& v : c) v = centre(rng);
  }
  for (int i = 0; i < clusters * per; ++i) {
    const int c = i % clusters;
    for (int j = 0; j < dim; ++j) d.values.push_back(centres[c][j] + noise(rng));
    d.labels.push_back(c);
  }
  d.rows = static_cast<size_t>(clusters * per);
  d.source = "blobs";
  return d;
}

}  // namespace imsat::testing
