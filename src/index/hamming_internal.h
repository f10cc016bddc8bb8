// Kernel tables defined in the per-ISA translation units. Included only by hamming_*.cpp.
#pragma once

#include "index/hamming.h"

namespace imsat::index::internal {

// scan_le built from a kernel's scan: distances into a small stack buffer, then a compare.
template <void (*Scan)(const uint64_t*, const uint64_t*, size_t, size_t, uint16_t*)>
size_t scan_le_via_scan(const uint64_t* query, const uint64_t* codes, size_t n, size_t words,
                        uint32_t max_distance, uint32_t* out_index, uint16_t* out_distance) {
  constexpr size_t kChunk = 512;
  uint16_t dist[kChunk];
  size_t found = 0;
  for (size_t start = 0; start < n; start += kChunk) {
    const size_t len = n - start < kChunk ? n - start : kChunk;
    Scan(query, codes + start * words, len, words, dist);
    for (size_t i = 0; i < len; ++i) {
      if (dist[i] <= max_distance) {
        out_index[found] = static_cast<uint32_t>(start + i);
        out_distance[found] = dist[i];
        ++found;
      }
    }
  }
  return found;
}

extern const HammingKernel kScalarKernel;
extern const HammingKernel kAvx2Kernel;
extern const HammingKernel kAvx512Kernel;

}  // namespace imsat::index::internal
