// imsat::index::MultiIndex — multi-index hashing (Norouzi, Punjani, Fleet, CVPR 2012): exact
// radius and kNN search that probes substring buckets and verifies candidates with the full
// distance.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "index/code_array.h"
#include "index/scan.h"

namespace imsat::index {

// Multi-index hashing over a CodeArray: m tables of disjoint substrings (lengths differing by at
// most one). Items within radius r of a query share at least one substring within floor(r / m)
// of the query's. Results equal the linear scan's, ties included. Not thread-safe for writes;
// searches may run concurrently with each other.
class MultiIndex {
 public:
  // tables = 0 chooses default_tables(bits, expected_items).
  MultiIndex(int bits, int tables, size_t expected_items = 0);
  ~MultiIndex();
  MultiIndex(MultiIndex&&) noexcept;
  MultiIndex& operator=(MultiIndex&&) noexcept;

  // About D / log2(N) tables, so each substring has about log2(N) bits and a bucket holds about
  // one item of uniformly random codes.
  static int default_tables(int bits, size_t items);

  int tables() const;
  int substring_bits(int table) const;
  // The substring of table t of a packed code (words() words).
  uint32_t substring(int table, const uint64_t* code) const;

  // Adds `slot` of `codes`. Slots must be inserted in increasing order; every slot below it
  // that is not deleted must have been inserted (or covered by rebuild) already.
  void insert(const CodeArray& codes, uint32_t slot);
  // Rebuilds every bucket from `codes` (deleted slots are left out).
  void rebuild(const CodeArray& codes);

  std::vector<Neighbor> radius(const CodeArray& codes, const uint64_t* query, uint32_t radius,
                               const Filter& filter = {}, SearchStats* stats = nullptr) const;
  // `wants_scan` (when given): where the cost model would end in a linear scan, nothing is
  // scanned; *wants_scan is set and the result is empty, for the caller to scan this query
  // together with others (scan_knn_batch). Otherwise *wants_scan is false.
  // `scan_share`: the part of a whole scan's cost this query's scan would cost (a batched scan
  // shares its pass over the codes), against which probing is weighed.
  std::vector<Neighbor> knn(const CodeArray& codes, const uint64_t* query, size_t k,
                            const Filter& filter = {}, SearchStats* stats = nullptr,
                            bool* wants_scan = nullptr, double scan_share = 1.0) const;

  // Occupancy histogram of table t as of its last rebuild (items added since, at most a quarter,
  // are left out): result[i] = number of non-empty buckets holding exactly i
  // items, the last entry counting every bucket with at least that many.
  std::vector<uint64_t> occupancy_histogram(int table, size_t max_count = 64) const;
  size_t memory_bytes() const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace imsat::index
