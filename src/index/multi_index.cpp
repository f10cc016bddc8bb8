// Multi-index hashing (Norouzi, Punjani, Fleet, CVPR 2012).
//
// Codes are split into m disjoint substrings. If two codes differ in d bits, some substring
// differs in at most floor(d / m) bits (pigeonhole), so a radius-r search probes, in every
// table, the buckets of all substrings within floor(r / m) of the query's and verifies each
// candidate with the full distance. kNN grows the substring radius s until k verified items lie
// within m * (s + 1) - 1, the radius that level s is complete for.
//
// Layout: each table keeps its buckets as one contiguous array of slots sorted by bucket (CSR:
// offsets + slots), so a probe reads a bucket sequentially and the code loads of its candidates
// are independent (they overlap in the memory system instead of chasing pointers). Items added
// since the last rebuild sit in small per-table linked lists (the delta) until the delta grows to
// a quarter of the CSR, when the CSR is rebuilt by a counting sort. Substrings longer than the
// head table are hashed into it; collisions only add candidates, which verification removes.
//
// Duplicates: an item is reported by the first (level, table) probe that reaches it. A candidate
// found at level s in table t was already seen if some table t' has substring distance < s, or
// an earlier table t' < t has distance == s; this is decided from the candidate's code, so no
// per-query visited array is needed.
#include "index/multi_index.h"

#include <algorithm>
#include <cmath>
#include <thread>

#include "index/scan_internal.h"

namespace imsat::index {

struct MultiIndex::Impl {
  int bits = 0;
  int m = 1;
  std::vector<int> start, len;  // per table: first bit and length of its substring
  int head_bits = 10;
  // CSR per table: bucket h holds slots[offsets[h] .. offsets[h + 1]).
  std::vector<std::vector<uint32_t>> offsets;
  std::vector<std::vector<uint32_t>> slots;
  // Delta per table: linked lists of slot + 1 (0 = end); delta_next is indexed by
  // slot - delta_base (every delta slot is at or after the last rebuild's end), so it holds only
  // the delta, not an entry for every slot.
  std::vector<std::vector<uint32_t>> delta_heads;
  std::vector<std::vector<uint32_t>> delta_next;
  size_t delta_base = 0;
  size_t csr_items = 0;
  size_t delta_items = 0;

  uint32_t substring(int t, const uint64_t* code) const {
    const int s = start[t], l = len[t];
    const int w = s / 64, off = s % 64;
    uint64_t v = code[w] >> off;
    if (off + l > 64) v |= code[w + 1] << (64 - off);
    return static_cast<uint32_t>(v & ((uint64_t{1} << l) - 1));
  }
  size_t head_count(int t) const { return size_t{1} << std::min(len[t], head_bits); }
  uint32_t head_of(int t, uint32_t sub) const {
    if (len[t] <= head_bits) return sub;
    // Fibonacci hashing of the longer substring into the head table.
    return static_cast<uint32_t>((uint64_t{sub} * 0x9E3779B97F4A7C15ULL) >> (64 - head_bits));
  }

  // The delta's head tables are 8x smaller than the CSR's (the delta holds at most a quarter of
  // the items): longer substrings are hashed into them; a collision only adds a candidate.
  int delta_bits() const { return std::max(10, head_bits - 3); }
  size_t delta_head_count(int t) const { return size_t{1} << std::min(len[t], delta_bits()); }
  uint32_t delta_head_of(int t, uint32_t sub) const {
    if (len[t] <= delta_bits()) return sub;
    return static_cast<uint32_t>((uint64_t{sub} * 0x9E3779B97F4A7C15ULL) >> (64 - delta_bits()));
  }

  void clear_delta() {
    delta_heads.assign(static_cast<size_t>(m), {});
    delta_next.assign(static_cast<size_t>(m), {});
    // Head tables of the delta are allocated by the first insert (a store that only reads, or
    // loads in bulk, never needs them: 4 bytes per head bucket and table saved).
    delta_items = 0;
  }

  // Rebuilds the CSR from the live codes of slots [0, end); sizes the head tables for them. The
  // tables are independent and built in parallel; each is a counting sort that computes every
  // slot's bucket twice (once to count, once to place) rather than keeping 4 bytes per slot.
  void rebuild(const CodeArray& codes, size_t end) {
    int hb = 10;
    while (hb < 24 && (size_t{1} << hb) < end) ++hb;
    head_bits = hb;
    offsets.assign(static_cast<size_t>(m), {});
    slots.assign(static_cast<size_t>(m), {});
    std::vector<size_t> live(static_cast<size_t>(m), 0);
    auto build = [&](int t) {
      std::vector<uint32_t>& off = offsets[t];
      off.assign(head_count(t) + 1, 0);
      for (uint32_t s = 0; s < end; ++s) {
        if (codes.is_deleted(s)) continue;
        ++off[head_of(t, substring(t, codes.code(s))) + 1];
        ++live[t];
      }
      for (size_t h = 1; h < off.size(); ++h) off[h] += off[h - 1];
      std::vector<uint32_t>& out = slots[t];
      out.resize(off.back());
      std::vector<uint32_t> fill(off.begin(), off.end() - 1);
      for (uint32_t s = 0; s < end; ++s) {
        if (!codes.is_deleted(s)) out[fill[head_of(t, substring(t, codes.code(s)))]++] = s;
      }
    };
    // Small rebuilds (the delta folding in, a few thousand items) stay on the caller's thread.
    const int threads = end < (size_t{1} << 16)
                            ? 1
                            : std::min<int>(m, std::max(1u, std::thread::hardware_concurrency()));
    std::vector<std::thread> pool;
    for (int w = 1; w < threads; ++w) {
      pool.emplace_back([&, w] {
        for (int t = w; t < m; t += threads) build(t);
      });
    }
    for (int t = 0; t < m; t += threads) build(t);
    for (std::thread& th : pool) th.join();
    csr_items = m > 0 ? live[0] : 0;
    clear_delta();
    delta_base = end;
  }

  void insert(const CodeArray& codes, uint32_t slot) {
    if (delta_items >= std::max<size_t>(4096, csr_items / 4)) {
      rebuild(codes, size_t{slot} + 1);  // everything inserted so far, `slot` included
      return;
    }
    const uint64_t* code = codes.code(slot);
    for (int t = 0; t < m; ++t) {
      auto& nx = delta_next[t];
      const size_t at = slot - delta_base;
      if (nx.size() <= at) nx.resize(std::max<size_t>(at + 1, nx.size() * 2), 0);
      if (delta_heads[t].empty()) delta_heads[t].assign(delta_head_count(t), 0);
      uint32_t& head = delta_heads[t][delta_head_of(t, substring(t, code))];
      nx[at] = head;
      head = slot + 1;
    }
    ++delta_items;
  }

  // True when the probe (level s, table t) is the first to reach an item with this code. An
  // item that reached the bucket only through a hash collision (its substring is not at s bits)
  // is left to the probe that reaches it by its own substring.
  bool first_reach(const uint64_t* code, const uint32_t* query_subs, int s, int t) const {
    if (__builtin_popcount(substring(t, code) ^ query_subs[t]) != s) return false;
    for (int u = 0; u < m; ++u) {
      if (u == t) continue;
      const int du = __builtin_popcount(substring(u, code) ^ query_subs[u]);
      if (du < s || (du == s && u < t)) return false;
    }
    return true;
  }

  // Costs of probing in units of one code read by the linear scan (the scan's cost is the number
  // of slots). Visiting a bucket (computing its key, reading its two offsets) and verifying a
  // candidate (reading its code at a random place, the duplicate check, the distance) each cost
  // a cache or memory miss, a few hundred sequentially scanned codes, whether the codes fit in
  // the cache (N = 1e6: the scan reads 9.5 G codes/s, a miss costs 20-40 ns) or not (N = 1e7:
  // 3.4 G codes/s against about 100 ns). bench/README.md, "The kNN cost model", has the
  // measurements these constants come from.
  static constexpr double kBucketCost = 256;
  static constexpr double kCandidateCost = 256;

  // One bucket a probe visits: its table, its key and its CSR range.
  struct Bucket {
    uint32_t table, key, begin, end;
  };

  // Items per bucket if codes were uniformly random (the shortest substring's buckets).
  double uniform_occupancy(size_t items) const {
    const int shortest = *std::min_element(len.begin(), len.end());
    return static_cast<double>(items) / std::ldexp(1.0, shortest);
  }

  // The number of buckets at exactly s bits from a key, over every table.
  double level_buckets(int s) const {
    double total = 0;
    for (int t = 0; t < m; ++t) {
      if (s > len[t]) continue;
      double buckets = 1;
      for (int i = 0; i < s; ++i) buckets = buckets * (len[t] - i) / (i + 1);
      total += buckets;
    }
    return total;
  }

  // Calls fn(key) for every key of table t at exactly `flips` bits from `sub`.
  template <typename Fn>
  void for_each_key(int t, uint32_t sub, int flips, Fn&& fn) const {
    const int l = len[t];
    if (flips > l) return;
    if (flips == 0) {
      fn(sub);
      return;
    }
    int pos[32];
    for (int i = 0; i < flips; ++i) pos[i] = i;
    while (true) {
      uint32_t key = sub;
      for (int i = 0; i < flips; ++i) key ^= uint32_t{1} << pos[i];
      fn(key);
      int i = flips - 1;
      while (i >= 0 && pos[i] == l - flips + i) --i;
      if (i < 0) break;
      ++pos[i];
      for (int j = i + 1; j < flips; ++j) pos[j] = pos[j - 1] + 1;
    }
  }

  // Appends level s's buckets of every table (those holding items, and every one of a table
  // whose delta lists are in use) to `out`; returns the number of CSR entries they hold: the
  // candidates probing the level will verify, known before any code is read. The buckets' offsets
  // are prefetched together, so their cache misses overlap.
  size_t collect_level(const uint32_t* query_subs, int s, std::vector<Bucket>* out) const {
    const size_t first = out->size();
    for (int t = 0; t < m; ++t) {
      const uint32_t* off = offsets[t].data();
      for_each_key(t, query_subs[t], s, [&](uint32_t key) {
        const uint32_t h = head_of(t, key);
        __builtin_prefetch(off + h);
        out->push_back({static_cast<uint32_t>(t), key, h, 0});
      });
    }
    size_t entries = 0, kept = first;
    for (size_t i = first; i < out->size(); ++i) {
      Bucket b = (*out)[i];
      const uint32_t* off = offsets[b.table].data();
      const uint32_t h = b.begin;
      b.begin = off[h];
      b.end = off[h + 1];
      if (b.begin == b.end && delta_heads[b.table].empty()) continue;
      __builtin_prefetch(slots[b.table].data() + b.begin);
      entries += b.end - b.begin;
      (*out)[kept++] = b;
    }
    out->resize(kept);
    return entries;
  }

  // Verifies the items of `buckets` (all of level s); calls found(slot, distance) once per live,
  // passing item. The candidates of the whole level are listed first and their codes prefetched
  // a few candidates ahead across bucket boundaries (clustered codes make many small buckets).
  template <typename Found>
  void verify_level(const CodeArray& codes, const uint64_t* query, const uint32_t* query_subs,
                    int s, const std::vector<Bucket>& buckets, const Filter& filter,
                    SearchStats& stats, std::vector<uint64_t>* scratch, Found&& found) const {
    // Candidates as slot | table << 32.
    std::vector<uint64_t>& cand = *scratch;
    cand.clear();
    for (const Bucket& b : buckets) {
      const uint64_t table = uint64_t{b.table} << 32;
      const uint32_t* p = slots[b.table].data();
      for (uint32_t i = b.begin; i < b.end; ++i) cand.push_back(p[i] | table);
      if (!delta_heads[b.table].empty()) {
        for (uint32_t e = delta_heads[b.table][delta_head_of(static_cast<int>(b.table), b.key)];
             e != 0; e = delta_next[b.table][e - 1 - delta_base]) {
          cand.push_back((e - 1) | table);
        }
      }
    }
    stats.buckets_probed += buckets.size();
    constexpr size_t kAhead = 8;
    const size_t words = codes.words();
    const size_t n = cand.size();
    for (size_t i = 0; i < std::min(n, kAhead); ++i) {
      __builtin_prefetch(codes.code(static_cast<uint32_t>(cand[i])));
    }
    for (size_t i = 0; i < n; ++i) {
      if (i + kAhead < n) {
        const uint32_t ahead = static_cast<uint32_t>(cand[i + kAhead]);
        __builtin_prefetch(codes.code(ahead));
        __builtin_prefetch(codes.deleted_flags() + ahead);
      }
      const uint32_t slot = static_cast<uint32_t>(cand[i]);
      if (codes.is_deleted(slot)) continue;
      const uint64_t* code = codes.code(slot);
      if (!first_reach(code, query_subs, s, static_cast<int>(cand[i] >> 32))) continue;
      if (!filter.empty() && !filter.pass(slot)) continue;
      ++stats.candidates_verified;
      found(slot, hamming_distance(query, code, words));
    }
  }
};

namespace {

bool by_distance_then_slot(const Neighbor& a, const Neighbor& b) {
  return a.distance != b.distance ? a.distance < b.distance : a.slot < b.slot;
}

}  // namespace

MultiIndex::MultiIndex(int bits, int tables, size_t expected_items)
    : impl_(std::make_unique<Impl>()) {
  IMSAT_CHECK(check_code_bits(bits).is_ok(), "MultiIndex with invalid bits");
  if (tables <= 0) tables = default_tables(bits, expected_items);
  // Substrings of at most 32 bits (keys are 32-bit), at least 1 bit each.
  tables = std::max(tables, (bits + 31) / 32);
  tables = std::min(tables, bits);
  impl_->bits = bits;
  impl_->m = tables;
  int pos = 0;
  for (int t = 0; t < tables; ++t) {
    const int l = bits / tables + (t < bits % tables ? 1 : 0);
    impl_->start.push_back(pos);
    impl_->len.push_back(l);
    pos += l;
  }
  impl_->rebuild(CodeArray(bits), 0);
}

MultiIndex::~MultiIndex() = default;
MultiIndex::MultiIndex(MultiIndex&&) noexcept = default;
MultiIndex& MultiIndex::operator=(MultiIndex&&) noexcept = default;

int MultiIndex::default_tables(int bits, size_t items) {
  const double log_n = std::log2(static_cast<double>(std::max<size_t>(items, 2)));
  const int sub = std::clamp(static_cast<int>(std::lround(log_n)), 8, 32);
  return std::max(1, static_cast<int>(std::lround(static_cast<double>(bits) / sub)));
}

int MultiIndex::tables() const { return impl_->m; }
int MultiIndex::substring_bits(int table) const { return impl_->len[table]; }
uint32_t MultiIndex::substring(int table, const uint64_t* code) const {
  return impl_->substring(table, code);
}

void MultiIndex::insert(const CodeArray& codes, uint32_t slot) { impl_->insert(codes, slot); }
void MultiIndex::rebuild(const CodeArray& codes) { impl_->rebuild(codes, codes.size()); }

std::vector<Neighbor> MultiIndex::radius(const CodeArray& codes, const uint64_t* query, uint32_t r,
                                         const Filter& filter, SearchStats* stats) const {
  const Impl& x = *impl_;
  const int s_max = std::min<int>(static_cast<int>(r) / x.m, 32);
  const double scan_cost = static_cast<double>(codes.size());
  // Probing would cost more than a scan reading every code (the scan is exact too): decided
  // from the number of buckets first, then from the entries those buckets really hold.
  double buckets = 0;
  for (int s = 0; s <= s_max; ++s) buckets += x.level_buckets(s);
  if (buckets * Impl::kBucketCost > scan_cost) return scan_radius(codes, query, r, filter, stats);
  std::vector<uint32_t> subs(static_cast<size_t>(x.m));
  for (int t = 0; t < x.m; ++t) subs[t] = x.substring(t, query);
  std::vector<std::vector<Impl::Bucket>> levels(static_cast<size_t>(s_max) + 1);
  size_t entries = 0;
  for (int s = 0; s <= s_max; ++s) entries += x.collect_level(subs.data(), s, &levels[s]);
  if (buckets * Impl::kBucketCost + static_cast<double>(entries) * Impl::kCandidateCost >
      scan_cost) {
    return scan_radius(codes, query, r, filter, stats);
  }
  SearchStats local;
  std::vector<Neighbor> out;
  std::vector<uint64_t> scratch;
  for (int s = 0; s <= s_max; ++s) {
    x.verify_level(codes, query, subs.data(), s, levels[s], filter, local, &scratch,
                   [&](uint32_t slot, uint32_t d) {
                     if (d <= r) out.push_back({slot, d});
                   });
  }
  std::sort(out.begin(), out.end(), by_distance_then_slot);
  if (stats != nullptr) *stats += local;
  return out;
}

std::vector<Neighbor> MultiIndex::knn(const CodeArray& codes, const uint64_t* query, size_t k,
                                      const Filter& filter, SearchStats* stats, bool* wants_scan,
                                      double scan_share) const {
  const Impl& x = *impl_;
  if (wants_scan != nullptr) *wants_scan = false;
  auto scan = [&](SearchStats* into) {
    if (wants_scan == nullptr) return scan_knn(codes, query, k, filter, into);
    *wants_scan = true;
    return std::vector<Neighbor>();
  };
  if (k >= codes.live()) return scan(stats);
  std::vector<uint32_t> subs(static_cast<size_t>(x.m));
  for (int t = 0; t < x.m; ++t) subs[t] = x.substring(t, query);
  SearchStats local;
  auto finish = [&](std::vector<Neighbor> out) {
    if (stats != nullptr) *stats += local;
    return out;
  };
  const double scan_cost = static_cast<double>(codes.size()) * scan_share;
  std::vector<Neighbor> found;
  std::vector<Impl::Bucket> buckets;
  std::vector<uint64_t> scratch;
  std::vector<uint64_t> at(static_cast<size_t>(x.bits) + 1, 0);
  const int max_len = *std::max_element(x.len.begin(), x.len.end());
  for (int s = 0; s <= max_len; ++s) {
    // Each level is probed only when what it really holds costs less than a scan: its bucket
    // count first (counting entries reads every bucket's offsets), then its entries. Learned
    // codes cluster, so a query's buckets can hold a third of the store (64-bit Fashion-MNIST
    // codes) or a handful of items (clustered codes with many centres); the counts tell apart
    // what an occupancy estimate cannot.
    const double level_buckets = x.level_buckets(s);
    if (level_buckets * Impl::kBucketCost > scan_cost) break;
    buckets.clear();
    const size_t entries = x.collect_level(subs.data(), s, &buckets);
    if (level_buckets * Impl::kBucketCost + static_cast<double>(entries) * Impl::kCandidateCost >
        scan_cost) {
      break;
    }
    x.verify_level(codes, query, subs.data(), s, buckets, filter, local, &scratch,
                   [&](uint32_t slot, uint32_t d) {
                     found.push_back({slot, d});
                     ++at[d];
                   });
    // Every item within m * (s + 1) - 1 bits has now been seen.
    const size_t complete = std::min<size_t>(static_cast<size_t>(x.m) * (s + 1) - 1, x.bits);
    uint64_t within = 0;
    for (size_t d = 0; d <= complete; ++d) within += at[d];
    if (within >= k || s == max_len) {
      std::vector<Neighbor> out;
      for (const Neighbor& n : found) {
        if (n.distance <= complete) out.push_back(n);
      }
      std::sort(out.begin(), out.end(), by_distance_then_slot);
      if (out.size() > k) out.resize(k);
      return finish(std::move(out));
    }
    // Once k items have been found, the k-th of them bounds the k-th neighbour's distance D, and
    // the search ends by level ceil((D + 1) / m) - 1 at the latest. When that is three or more
    // levels away and even their bucket visits (with entries at the uniform occupancy, a lower
    // bound) cost more than a scan, scan now rather than probe levels that cannot finish the
    // search (uniform codes: the 10th neighbour is 13+ bits away). The bound comes from the items
    // found so far, which overestimate D; a nearer horizon is left to the exact checks above.
    uint64_t seen = 0;
    size_t kth = 0;
    while (kth <= static_cast<size_t>(x.bits) && (seen += at[kth]) < k) ++kth;
    if (kth <= static_cast<size_t>(x.bits)) {
      const int need = static_cast<int>((kth + 1 + x.m - 1) / x.m) - 1;
      double future = 0;
      for (int u = s + 1; u <= std::min(need, max_len); ++u) {
        future += x.level_buckets(u) *
                  (Impl::kBucketCost + x.uniform_occupancy(codes.live()) * Impl::kCandidateCost);
      }
      if (s >= 1 && need >= s + 3 && future > scan_cost) break;
    }
  }
  // Growing further would cost more than a scan reading every code.
  return finish(scan(&local));
}

std::vector<uint64_t> MultiIndex::occupancy_histogram(int table, size_t max_count) const {
  const Impl& x = *impl_;
  std::vector<uint64_t> hist(max_count + 1, 0);
  // The buckets as of the last rebuild (items added since sit in the delta, at most a quarter).
  const auto& off = x.offsets[static_cast<size_t>(table)];
  for (size_t h = 0; h + 1 < off.size(); ++h) {
    const size_t n = off[h + 1] - off[h];
    if (n > 0) ++hist[std::min(n, max_count)];
  }
  return hist;
}

size_t MultiIndex::memory_bytes() const {
  size_t b = 0;
  for (const auto& v : impl_->offsets) b += v.capacity() * sizeof(uint32_t);
  for (const auto& v : impl_->slots) b += v.capacity() * sizeof(uint32_t);
  for (const auto& v : impl_->delta_heads) b += v.capacity() * sizeof(uint32_t);
  for (const auto& v : impl_->delta_next) b += v.capacity() * sizeof(uint32_t);
  return b;
}

}  // namespace imsat::index
