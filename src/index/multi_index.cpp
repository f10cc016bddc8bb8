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

  // Rebuilds the CSR from the live codes of slots [0, end); sizes the head tables for them.
  void rebuild(const CodeArray& codes, size_t end) {
    int hb = 10;
    while (hb < 24 && (size_t{1} << hb) < end) ++hb;
    head_bits = hb;
    offsets.assign(static_cast<size_t>(m), {});
    slots.assign(static_cast<size_t>(m), {});
    std::vector<uint32_t> heads(end);
    size_t live = 0;
    for (int t = 0; t < m; ++t) {
      std::vector<uint32_t>& off = offsets[t];
      off.assign(head_count(t) + 1, 0);
      live = 0;
      for (uint32_t s = 0; s < end; ++s) {
        if (codes.is_deleted(s)) continue;
        heads[s] = head_of(t, substring(t, codes.code(s)));
        ++off[heads[s] + 1];
        ++live;
      }
      for (size_t h = 1; h < off.size(); ++h) off[h] += off[h - 1];
      std::vector<uint32_t>& out = slots[t];
      out.resize(off.back());
      std::vector<uint32_t> fill(off.begin(), off.end() - 1);
      for (uint32_t s = 0; s < end; ++s) {
        if (!codes.is_deleted(s)) out[fill[heads[s]]++] = s;
      }
    }
    csr_items = live;
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

  // Calls visit(slot) for the items of the bucket of `key` in table t: CSR, then delta.
  template <typename Visit>
  void walk(int t, uint32_t key, const CodeArray& codes, Visit&& visit) const {
    const uint32_t h = head_of(t, key);
    const uint32_t* begin = slots[t].data() + offsets[t][h];
    const uint32_t* end = slots[t].data() + offsets[t][h + 1];
    for (const uint32_t* p = begin; p != end; ++p) {
      if (p + 8 < end) __builtin_prefetch(codes.code(p[8]));
      visit(*p);
    }
    if (delta_heads[t].empty()) return;
    for (uint32_t e = delta_heads[t][delta_head_of(t, key)]; e != 0;
         e = delta_next[t][e - 1 - delta_base]) {
      visit(e - 1);
    }
  }

  // Items in the CSR part of the bucket of `key` in table t (the delta lists, bounded by the
  // rebuild rule, are left out): what probing that bucket will verify, known before probing.
  size_t bucket_size(int t, uint32_t key) const {
    const uint32_t h = head_of(t, key);
    return offsets[t][h + 1] - offsets[t][h];
  }

  // True when the exact-distance candidates of the query's own buckets (level 0, a lower bound
  // of any search's work) would already cost more than scanning every code. Learned codes are
  // clustered: on Fashion-MNIST 64-bit IMSAT codes put a third of all items in a query's
  // level-0 buckets, and verifying them took 25x longer than a scan of the (cached) array.
  bool level0_too_crowded(const uint32_t* subs, size_t items) const {
    constexpr size_t kScanPerCandidate = 32;  // one verification ~ reading 32+ codes in order
    size_t candidates = 0;
    for (int t = 0; t < m; ++t) candidates += bucket_size(t, subs[t]);
    return candidates * kScanPerCandidate > items;
  }

  // Visits every bucket of table t whose key is at exactly `flips` bits from `sub`. Returns the
  // number of buckets probed.
  template <typename Visit>
  uint64_t probe(int t, uint32_t sub, int flips, const CodeArray& codes, Visit&& visit) const {
    const int l = len[t];
    if (flips > l) return 0;
    if (flips == 0) {
      walk(t, sub, codes, visit);
      return 1;
    }
    uint64_t probed = 0;
    int pos[32];
    for (int i = 0; i < flips; ++i) pos[i] = i;
    while (true) {
      uint32_t key = sub;
      for (int i = 0; i < flips; ++i) key ^= uint32_t{1} << pos[i];
      walk(t, key, codes, visit);
      ++probed;
      int i = flips - 1;
      while (i >= 0 && pos[i] == l - flips + i) --i;
      if (i < 0) break;
      ++pos[i];
      for (int j = i + 1; j < flips; ++j) pos[j] = pos[j - 1] + 1;
    }
    return probed;
  }

  // Expected work of a level-s probe over all tables, in units of one code read by a linear
  // scan: each bucket probe and each candidate costs several cache misses, about as much as
  // streaming kScanPerMiss codes (bench/index_bench, 64-bit codes at N = 1e7: probing cost about
  // 1 us per candidate against 0.3 ns per scanned code; a smaller constant let uniform-code kNN
  // probe three levels before falling back to the scan, 3x slower than scanning at once).
  // `seen_per_bucket` is the occupancy observed by the levels already probed: learned codes
  // cluster, so their buckets near a query hold far more than the uniform N / 2^len.
  double level_cost(int s, size_t items, double seen_per_bucket = 0) const {
    constexpr double kScanPerMiss = 4096;
    double total = 0;
    for (int t = 0; t < m; ++t) {
      if (s > len[t]) continue;
      double buckets = 1;
      for (int i = 0; i < s; ++i) buckets = buckets * (len[t] - i) / (i + 1);
      const double per_bucket =
          std::max(seen_per_bucket, static_cast<double>(items) / std::ldexp(1.0, len[t]));
      total += buckets * (1 + per_bucket) * kScanPerMiss;
    }
    return total;
  }

  // Probes level s of every table; calls found(slot, distance) once per live, passing item.
  template <typename Found>
  void probe_level(const CodeArray& codes, const uint64_t* query, const uint32_t* query_subs, int s,
                   const Filter& filter, SearchStats& stats, Found&& found) const {
    const size_t words = codes.words();
    for (int t = 0; t < m; ++t) {
      stats.buckets_probed += probe(t, query_subs[t], s, codes, [&](uint32_t slot) {
        if (codes.is_deleted(slot)) return;
        const uint64_t* code = codes.code(slot);
        if (!first_reach(code, query_subs, s, t)) return;
        if (!filter.empty() && !filter.pass(codes, slot)) return;
        ++stats.candidates_verified;
        found(slot, hamming_distance(query, code, words));
      });
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
  const int s_max = static_cast<int>(r) / x.m;
  double cost = 0;
  for (int s = 0; s <= s_max; ++s) cost += x.level_cost(s, codes.live());
  // Probing would cost more than a scan reading every code: the scan is exact too, and faster.
  if (cost > static_cast<double>(codes.size())) {
    return scan_radius(codes, query, r, filter, stats);
  }
  std::vector<uint32_t> subs(static_cast<size_t>(x.m));
  for (int t = 0; t < x.m; ++t) subs[t] = x.substring(t, query);
  if (x.level0_too_crowded(subs.data(), codes.size())) {
    return scan_radius(codes, query, r, filter, stats);
  }
  SearchStats local;
  std::vector<Neighbor> out;
  for (int s = 0; s <= s_max; ++s) {
    x.probe_level(codes, query, subs.data(), s, filter, local, [&](uint32_t slot, uint32_t d) {
      if (d <= r) out.push_back({slot, d});
    });
  }
  std::sort(out.begin(), out.end(), by_distance_then_slot);
  if (stats != nullptr) *stats += local;
  return out;
}

std::vector<Neighbor> MultiIndex::knn(const CodeArray& codes, const uint64_t* query, size_t k,
                                      const Filter& filter, SearchStats* stats) const {
  const Impl& x = *impl_;
  if (k >= codes.live()) return scan_knn(codes, query, k, filter, stats);
  std::vector<uint32_t> subs(static_cast<size_t>(x.m));
  for (int t = 0; t < x.m; ++t) subs[t] = x.substring(t, query);
  if (x.level0_too_crowded(subs.data(), codes.size())) {
    return scan_knn(codes, query, k, filter, stats);
  }
  SearchStats local;
  std::vector<Neighbor> found;
  std::vector<uint64_t> at(static_cast<size_t>(x.bits) + 1, 0);
  const int max_len = *std::max_element(x.len.begin(), x.len.end());
  double cost = 0;
  for (int s = 0; s <= max_len; ++s) {
    const double seen = local.buckets_probed > 0 ? static_cast<double>(local.candidates_verified) /
                                                       static_cast<double>(local.buckets_probed)
                                                 : 0.0;
    cost += x.level_cost(s, codes.live(), seen);
    if (cost > static_cast<double>(codes.size())) {
      // Growing further would cost more than a scan reading every code.
      std::vector<Neighbor> out = scan_knn(codes, query, k, filter, &local);
      if (stats != nullptr) *stats += local;
      return out;
    }
    x.probe_level(codes, query, subs.data(), s, filter, local, [&](uint32_t slot, uint32_t d) {
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
      if (stats != nullptr) *stats += local;
      return out;
    }
  }
  std::vector<Neighbor> out = scan_knn(codes, query, k, filter, &local);
  if (stats != nullptr) *stats += local;
  return out;
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
