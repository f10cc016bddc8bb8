// Counting selection shared by the linear scans and the multi-index. Included only by
// src/index/*.cpp and its tests.
#pragma once

#include <cstdint>
#include <vector>

#include "index/scan.h"

namespace imsat::index::internal {

// Codes per kernel call in a scan: the selection tightens its threshold between calls.
constexpr size_t kScanBlock = 1024;

// The k smallest (distance, slot) pairs of a stream that arrives in increasing slot order.
// Distances are small integers (<= bits), so items go to one bucket per distance and the
// threshold is the smallest distance whose cumulative count reaches k: no heap.
class TopK {
 public:
  // `limit`: the largest distance to consider from the start (bits: every distance).
  TopK(size_t k, int bits, uint32_t limit);
  TopK(size_t k, int bits) : TopK(k, bits, static_cast<uint32_t>(bits)) {}
  // The largest distance still worth adding.
  uint32_t limit() const { return limit_; }
  // True once k items at distance 0 are held: nothing can improve the result.
  bool done() const { return done_; }
  // Adds an item if distance <= limit(); call tighten() after a run of adds.
  bool add(uint32_t slot, uint32_t distance) {
    if (distance > limit_) return false;
    buckets_[distance].push_back(slot);
    ++counts_[distance];
    return true;
  }
  void tighten();
  // The result, sorted by (distance, slot).
  std::vector<Neighbor> take() const;

 private:
  size_t k_;
  uint32_t limit_;
  bool done_ = false;
  std::vector<uint64_t> counts_;
  std::vector<std::vector<uint32_t>> buckets_;
};

std::vector<Neighbor> merge_sorted(std::vector<std::vector<Neighbor>> parts, size_t k);
// A starting limit for a kNN scan of a large k (else codes.bits()): the distance below which a
// strided sample of the live codes predicts comfortably more than k items. It can be too tight
// for an unlucky query; the caller then scans again from codes.bits().
uint32_t sampled_limit(const CodeArray& codes, const uint64_t* query, size_t k);
void scan_block(const CodeArray& codes, const uint64_t* query, size_t start, size_t len,
                const Filter& filter, TopK& top, SearchStats& stats, uint32_t* idx, uint16_t* dist);
void scan_range(const CodeArray& codes, const uint64_t* query, size_t begin, size_t end,
                const Filter& filter, TopK& top, SearchStats& stats);

}  // namespace imsat::index::internal
