// Exact linear-scan search with counting selection, and the distance histogram of diagnostics.
#include "index/scan.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <random>
#include <thread>

#include "index/scan_internal.h"

namespace imsat::index {

// ---------------------------------------------------------------------------------------------
// Counting selection

namespace internal {

TopK::TopK(size_t k, int bits, uint32_t limit)
    : k_(k),
      limit_(std::min(limit, static_cast<uint32_t>(bits))),
      counts_(static_cast<size_t>(bits) + 1, 0),
      buckets_(static_cast<size_t>(bits) + 1) {}

void TopK::tighten() {
  size_t cum = 0;
  for (uint32_t t = 0; t < counts_.size(); ++t) {
    cum += counts_[t];
    if (cum >= k_) {
      // Items at distance t arrive in increasing slot order, so later ones at t never displace
      // the ones held: only strictly smaller distances are still useful.
      for (uint32_t u = t + 1; u < counts_.size(); ++u) {
        if (counts_[u] == 0) continue;
        buckets_[u].clear();
        counts_[u] = 0;
      }
      if (t == 0) {
        limit_ = 0;
        done_ = true;
      } else {
        limit_ = t - 1;
      }
      return;
    }
  }
}

std::vector<Neighbor> TopK::take() const {
  std::vector<Neighbor> out;
  out.reserve(k_);
  for (uint32_t d = 0; d < buckets_.size() && out.size() < k_; ++d) {
    for (uint32_t slot : buckets_[d]) {
      if (out.size() == k_) break;
      out.push_back({slot, d});
    }
  }
  return out;
}

std::vector<Neighbor> merge_sorted(std::vector<std::vector<Neighbor>> parts, size_t k) {
  std::vector<Neighbor> all;
  for (auto& p : parts) all.insert(all.end(), p.begin(), p.end());
  std::sort(all.begin(), all.end(), [](const Neighbor& a, const Neighbor& b) {
    return a.distance != b.distance ? a.distance < b.distance : a.slot < b.slot;
  });
  if (all.size() > k) all.resize(k);
  return all;
}

// The counting selection starts with every distance allowed and tightens after each block, so
// with k in the thousands most of the first tens of blocks pass the threshold and are bucketed
// (about k (1 + ln(n / k)) items in all). A sample of 2,048 codes read at a stride predicts the
// distance under which the whole store holds k items; the limit adds a margin of several standard
// deviations of the sample's count and one more unit of distance.
uint32_t sampled_limit(const CodeArray& codes, const uint64_t* query, size_t k) {
  const size_t n = codes.size(), live = codes.live(), bits = static_cast<size_t>(codes.bits());
  constexpr size_t kSample = 2048;
  if (k < 64 || live < 8 * k || n < 4 * kSample) return static_cast<uint32_t>(bits);
  const HammingKernel& kernel = active_kernel();
  const size_t words = codes.words(), stride = n / kSample;
  std::vector<uint32_t> counts(bits + 1, 0);
  size_t sampled = 0;
  for (size_t slot = stride / 2; slot < n; slot += stride) {
    if (codes.is_deleted(static_cast<uint32_t>(slot))) continue;
    ++counts[kernel.distance(query, codes.data() + slot * words, words)];
    ++sampled;
  }
  // Expected sample count of the k nearest, plus four standard deviations and a little more.
  const double expected = double(k) * double(sampled) / double(live);
  const double wanted = expected + 4 * std::sqrt(expected) + 8;
  size_t cum = 0;
  for (size_t d = 0; d <= bits; ++d) {
    cum += counts[d];
    if (double(cum) >= wanted) return static_cast<uint32_t>(std::min(d + 1, bits));
  }
  return static_cast<uint32_t>(bits);
}

// Offers the codes of slots [start, start + len) to `top`: the kernel returns those within the
// current limit, deleted and filtered slots are dropped, and the threshold tightens. `idx` and
// `dist` are scratch of kScanBlock entries.
void scan_block(const CodeArray& codes, const uint64_t* query, size_t start, size_t len,
                const Filter& filter, TopK& top, SearchStats& stats, uint32_t* idx,
                uint16_t* dist) {
  const size_t words = codes.words();
  const size_t found = active_kernel().scan_le(query, codes.data() + start * words, len, words,
                                               top.limit(), idx, dist);
  stats.candidates_verified += len;
  bool added = false;
  for (size_t i = 0; i < found; ++i) {
    const uint32_t slot = static_cast<uint32_t>(start + idx[i]);
    if (codes.is_deleted(slot) || (!filter.empty() && !filter.pass(slot))) continue;
    added |= top.add(slot, dist[i]);
  }
  if (added) top.tighten();
}

// Scans slots [begin, end) into `top`, in blocks so the selection tightens as it goes.
void scan_range(const CodeArray& codes, const uint64_t* query, size_t begin, size_t end,
                const Filter& filter, TopK& top, SearchStats& stats) {
  uint32_t idx[kScanBlock];
  uint16_t dist[kScanBlock];
  for (size_t start = begin; start < end && !top.done(); start += kScanBlock) {
    scan_block(codes, query, start, std::min(kScanBlock, end - start), filter, top, stats, idx,
               dist);
  }
}

}  // namespace internal

// ---------------------------------------------------------------------------------------------
// Linear scans

namespace {

std::vector<Neighbor> scan_knn_from(const CodeArray& codes, const uint64_t* query, size_t k,
                                    uint32_t limit, const Filter& filter, SearchStats& local,
                                    int threads) {
  const size_t n = codes.size();
  const size_t shards = std::max<size_t>(
      1, std::min<size_t>(static_cast<size_t>(std::max(threads, 1)), n / internal::kScanBlock));
  std::vector<Neighbor> out;
  if (shards == 1) {
    internal::TopK top(k, codes.bits(), limit);
    internal::scan_range(codes, query, 0, n, filter, top, local);
    out = top.take();
  } else {
    std::vector<std::vector<Neighbor>> parts(shards);
    std::vector<SearchStats> part_stats(shards);
    std::vector<std::thread> workers;
    for (size_t s = 0; s < shards; ++s) {
      workers.emplace_back([&, s] {
        const size_t begin = n * s / shards, end = n * (s + 1) / shards;
        internal::TopK top(k, codes.bits(), limit);
        internal::scan_range(codes, query, begin, end, filter, top, part_stats[s]);
        parts[s] = top.take();
      });
    }
    for (auto& w : workers) w.join();
    for (const auto& ps : part_stats) local += ps;
    out = internal::merge_sorted(std::move(parts), k);
  }
  return out;
}

}  // namespace

std::vector<Neighbor> scan_knn(const CodeArray& codes, const uint64_t* query, size_t k,
                               const Filter& filter, SearchStats* stats, int threads) {
  SearchStats local;
  const uint32_t all = static_cast<uint32_t>(codes.bits());
  // A filter changes which codes count, so the sample says nothing about it.
  const uint32_t limit = filter.empty() ? internal::sampled_limit(codes, query, k) : all;
  std::vector<Neighbor> out = scan_knn_from(codes, query, k, limit, filter, local, threads);
  // Too tight a start leaves fewer than k found: scan again with every distance allowed.
  if (limit < all && out.size() < k)
    out = scan_knn_from(codes, query, k, all, filter, local, threads);
  if (stats != nullptr) *stats += local;
  return out;
}

std::vector<Neighbor> scan_radius(const CodeArray& codes, const uint64_t* query, uint32_t radius,
                                  const Filter& filter, SearchStats* stats) {
  const HammingKernel& kernel = active_kernel();
  const size_t words = codes.words(), n = codes.size();
  std::vector<Neighbor> out;
  uint32_t idx[internal::kScanBlock];
  uint16_t dist[internal::kScanBlock];
  for (size_t start = 0; start < n; start += internal::kScanBlock) {
    const size_t len = std::min(internal::kScanBlock, n - start);
    const size_t found =
        kernel.scan_le(query, codes.data() + start * words, len, words, radius, idx, dist);
    for (size_t i = 0; i < found; ++i) {
      const uint32_t slot = static_cast<uint32_t>(start + idx[i]);
      if (codes.is_deleted(slot) || (!filter.empty() && !filter.pass(slot))) continue;
      out.push_back({slot, dist[i]});
    }
  }
  if (stats != nullptr) stats->candidates_verified += n;
  std::stable_sort(out.begin(), out.end(),
                   [](const Neighbor& a, const Neighbor& b) { return a.distance < b.distance; });
  return out;
}

std::vector<std::vector<Neighbor>> scan_knn_batch(const CodeArray& codes, const uint64_t* queries,
                                                  size_t nq, size_t k, const Filter& filter,
                                                  SearchStats* stats) {
  const size_t words = codes.words(), n = codes.size();
  std::vector<internal::TopK> tops;
  tops.reserve(nq);
  for (size_t q = 0; q < nq; ++q) tops.emplace_back(k, codes.bits());
  uint32_t idx[internal::kScanBlock];
  uint16_t dist[internal::kScanBlock];
  SearchStats local;
  // The block (kScanBlock codes, at most 128 KiB at 1024 bits) stays in cache for the batch.
  for (size_t start = 0; start < n; start += internal::kScanBlock) {
    const size_t len = std::min(internal::kScanBlock, n - start);
    for (size_t q = 0; q < nq; ++q) {
      if (tops[q].done()) continue;
      internal::scan_block(codes, queries + q * words, start, len, filter, tops[q], local, idx,
                           dist);
    }
  }
  if (stats != nullptr) *stats += local;
  std::vector<std::vector<Neighbor>> out(nq);
  for (size_t q = 0; q < nq; ++q) out[q] = tops[q].take();
  return out;
}

// ---------------------------------------------------------------------------------------------
// Diagnostics

std::vector<uint64_t> distance_histogram(const CodeArray& codes, size_t sample_queries,
                                         uint64_t seed) {
  std::vector<uint64_t> hist(static_cast<size_t>(codes.bits()) + 1, 0);
  std::vector<uint32_t> live;
  for (uint32_t s = 0; s < codes.size(); ++s) {
    if (!codes.is_deleted(s)) live.push_back(s);
  }
  if (live.empty()) return hist;
  std::mt19937_64 rng(seed);
  std::shuffle(live.begin(), live.end(), rng);
  const size_t nq = std::min(sample_queries, live.size());
  std::vector<uint16_t> dist(codes.size());
  for (size_t q = 0; q < nq; ++q) {
    active_kernel().scan(codes.code(live[q]), codes.data(), codes.size(), codes.words(),
                         dist.data());
    for (uint32_t s = 0; s < codes.size(); ++s) {
      if (!codes.is_deleted(s) && s != live[q]) ++hist[dist[s]];
    }
  }
  return hist;
}

}  // namespace imsat::index
