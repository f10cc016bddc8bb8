// Code health: bit balance and entropy, pairwise bit mutual information.
#include "query/code_health.h"

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

namespace imsat::query {

Result<CodeHealth> code_health(const std::vector<uint8_t>& codes, int bits) {
  IMSAT_RETURN_IF_ERROR(check_code_bits(bits));
  const size_t bytes = static_cast<size_t>(bits) / 8;
  if (codes.size() % bytes != 0) {
    return Status::invalid_argument("codes are not a whole number of " + std::to_string(bits) +
                                    "-bit codes");
  }
  CodeHealth h;
  h.bits = bits;
  h.rows = codes.size() / bytes;
  const size_t d = static_cast<size_t>(bits);
  std::vector<uint64_t> ones(d, 0), both(d * d, 0);
  std::vector<uint16_t> set_bits;
  set_bits.reserve(d);
  for (size_t r = 0; r < h.rows; ++r) {
    set_bits.clear();
    for (size_t b = 0; b < d; ++b) {
      if ((codes[r * bytes + b / 8] >> (b % 8)) & 1) set_bits.push_back(static_cast<uint16_t>(b));
    }
    for (size_t i = 0; i < set_bits.size(); ++i) {
      ++ones[set_bits[i]];
      for (size_t j = i + 1; j < set_bits.size(); ++j) ++both[set_bits[i] * d + set_bits[j]];
    }
  }
  auto plogp = [](double p) { return p > 0 ? -p * std::log2(p) : 0.0; };
  const double n = static_cast<double>(std::max<size_t>(h.rows, 1));
  h.balance.resize(d);
  h.entropy.resize(d);
  h.pair_mi.assign(d * d, 0);
  h.min_entropy = d > 0 ? 1.0 : 0.0;
  for (size_t b = 0; b < d; ++b) {
    h.balance[b] = static_cast<double>(ones[b]) / n;
    h.entropy[b] = plogp(h.balance[b]) + plogp(1 - h.balance[b]);
    h.mean_entropy += h.entropy[b] / static_cast<double>(d);
    h.min_entropy = std::min(h.min_entropy, h.entropy[b]);
  }
  double sum_mi = 0;
  for (size_t a = 0; a < d; ++a) {
    for (size_t b = a + 1; b < d; ++b) {
      const double p11 = static_cast<double>(both[a * d + b]) / n;
      const double p10 = h.balance[a] - p11, p01 = h.balance[b] - p11;
      const double p00 = 1 - p11 - p10 - p01;
      const double joint = plogp(p11) + plogp(p10) + plogp(p01) + plogp(std::max(0.0, p00));
      const double mi = std::max(0.0, h.entropy[a] + h.entropy[b] - joint);
      h.pair_mi[a * d + b] = h.pair_mi[b * d + a] = mi;
      sum_mi += mi;
      if (mi > h.max_pair_mi) {
        h.max_pair_mi = mi;
        h.max_pair_a = static_cast<int>(a);
        h.max_pair_b = static_cast<int>(b);
      }
    }
  }
  if (d > 1) h.mean_pair_mi = sum_mi / (static_cast<double>(d) * static_cast<double>(d - 1) / 2);
  return h;
}

}  // namespace imsat::query
