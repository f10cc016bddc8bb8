#include "query/asymmetric.h"

#include <algorithm>
#include <cmath>

namespace imsat::query {
namespace {

// Each bit's cost is rounded to a multiple of 2^-20 (about 1e-6 nats). Every sum of them is then
// exact in a double (a score is at most 1,024 bits times 16.2, far below 2^33), so codes with equal
// costs get exactly equal scores whatever order the costs were added in, and ties group as Hamming
// ties do.
double on_grid(double cost) { return std::ldexp(std::nearbyint(std::ldexp(cost, 20)), -20); }

}  // namespace

AsymmetricScorer::AsymmetricScorer(const float* p, int bits)
    : bytes_(static_cast<size_t>(bits) / 8), table_(bytes_ * 256) {
  std::vector<double> cost_one(static_cast<size_t>(bits)), cost_zero(static_cast<size_t>(bits));
  for (size_t d = 0; d < cost_one.size(); ++d) {
    const double q =
        std::clamp(static_cast<double>(p[d]), kMinBitProbability, 1.0 - kMinBitProbability);
    cost_one[d] = on_grid(-std::log(q));
    cost_zero[d] = on_grid(-std::log1p(-q));
    base_ += cost_zero[d];
  }
  // A byte value's weight is the weight of the value without its lowest set bit plus that bit's:
  // the sums are exact on the grid, so the order of the additions does not matter.
  for (size_t b = 0; b < bytes_; ++b) {
    double* t = table_.data() + b * 256;
    t[0] = 0;
    for (unsigned v = 1; v < 256; ++v) {
      const size_t low = b * 8 + static_cast<size_t>(__builtin_ctz(v));
      t[v] = t[v & (v - 1)] + (cost_one[low] - cost_zero[low]);
    }
  }
}

}  // namespace imsat::query
