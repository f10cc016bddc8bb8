// imsat::index scans — exact kNN and radius search over a CodeArray by linear scan (counting
// selection, SIMD Hamming kernel), the filters every search takes, and the distance histogram
// used by code diagnostics.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <vector>

#include "index/code_array.h"
#include "index/hamming.h"

namespace imsat::index {

struct Neighbor {
  uint32_t slot;
  uint32_t distance;
  bool operator==(const Neighbor& o) const { return slot == o.slot && distance == o.distance; }
};

// Which items a search may return; checked before an item's distance is verified, so a filtered
// kNN returns the k nearest items that pass (not the passing part of the k nearest).
struct Filter {
  const std::vector<uint8_t>* allowed_slots = nullptr;  // non-zero = allowed; by slot
  bool empty() const { return allowed_slots == nullptr; }
  bool pass(uint32_t slot) const {
    return allowed_slots == nullptr || (slot < allowed_slots->size() && (*allowed_slots)[slot]);
  }
};

// What a search cost.
struct SearchStats {
  uint64_t buckets_probed = 0;
  uint64_t candidates_verified = 0;  // full distances computed
  SearchStats& operator+=(const SearchStats& o) {
    buckets_probed += o.buckets_probed;
    candidates_verified += o.candidates_verified;
    return *this;
  }
};

// Exact kNN by linear scan: the k live, passing items nearest to `query` (words() words), sorted
// by (distance, slot): ties go to the lower slot. threads > 1 scans shards in parallel.
// Precondition (checked by callers at their public boundary): 1 <= k <= kMaxK.
std::vector<Neighbor> scan_knn(const CodeArray& codes, const uint64_t* query, size_t k,
                               const Filter& filter = {}, SearchStats* stats = nullptr,
                               int threads = 1);
// All live, passing items within `radius` bits, sorted by (distance, slot).
std::vector<Neighbor> scan_radius(const CodeArray& codes, const uint64_t* query, uint32_t radius,
                                  const Filter& filter = {}, SearchStats* stats = nullptr);
// kNN for many queries (nq * words() words): each block of codes is loaded once and serves the
// whole batch. Same results as scan_knn per query.
std::vector<std::vector<Neighbor>> scan_knn_batch(const CodeArray& codes, const uint64_t* queries,
                                                  size_t nq, size_t k, const Filter& filter = {},
                                                  SearchStats* stats = nullptr);

// Histogram (index = distance, 0..bits) of distances from up to `sample_queries` live items
// (chosen with `seed`) to every live item.
std::vector<uint64_t> distance_histogram(const CodeArray& codes, size_t sample_queries,
                                         uint64_t seed);

}  // namespace imsat::index
