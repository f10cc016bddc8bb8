// Code health: per-bit balance and entropy and pairwise bit mutual information of a set of codes
// (the one implementation of per-bit balance; stores, `imsat inspect` and the API use it).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "common/status.h"

namespace imsat::query {

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

}  // namespace imsat::query
