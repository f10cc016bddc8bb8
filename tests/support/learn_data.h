// Test helpers for training: synthetic labelled data (Gaussian blobs) and a quick configuration.
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

// A training configuration that runs in a fraction of a second on tiny data: CPU, one thread, a
// single hidden layer of 32 units, batch 50, `epochs` epochs.
inline learn::TrainConfig quick_config(learn::Method m, int bits = 16, int epochs = 3) {
  learn::TrainConfig c;
  c.method = m;
  c.bits = bits;
  c.epochs = epochs;
  c.batch = 50;
  c.device = "cpu";
  c.threads = 1;
  c.has_hidden = true;
  c.hidden = {32};
  return c;
}

}  // namespace imsat::testing
