// The reference kernel: the simplest correct loop. Every other kernel is tested against it.
#include <bitset>

#include "index/hamming_internal.h"

namespace imsat::index::internal {
namespace {

uint32_t distance_scalar(const uint64_t* a, const uint64_t* b, size_t words) {
  uint32_t d = 0;
  for (size_t w = 0; w < words; ++w) {
    d += static_cast<uint32_t>(std::bitset<64>(a[w] ^ b[w]).count());
  }
  return d;
}

void scan_scalar(const uint64_t* query, const uint64_t* codes, size_t n, size_t words,
                 uint16_t* out) {
  for (size_t i = 0; i < n; ++i) {
    out[i] = static_cast<uint16_t>(distance_scalar(query, codes + i * words, words));
  }
}

// Eight partial sums, added in a fixed order: the reference the vector kernels are tested against.
float squared_l2_scalar(const float* a, const float* b, size_t dim) {
  float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  size_t i = 0;
  for (; i + 8 <= dim; i += 8) {
    for (size_t j = 0; j < 8; ++j) {
      const float d = a[i + j] - b[i + j];
      acc[j] += d * d;
    }
  }
  float s = 0;
  for (; i < dim; ++i) s += (a[i] - b[i]) * (a[i] - b[i]);
  for (float v : acc) s += v;
  return s;
}

}  // namespace

const HammingKernel kScalarKernel{"scalar", distance_scalar, scan_scalar,
                                  scan_le_via_scan<scan_scalar>, squared_l2_scalar};

}  // namespace imsat::index::internal
