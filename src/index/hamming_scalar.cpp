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

}  // namespace

const HammingKernel kScalarKernel{"scalar", distance_scalar, scan_scalar,
                                  scan_le_via_scan<scan_scalar>};

}  // namespace imsat::index::internal
