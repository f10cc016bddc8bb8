// Multi-index hashing (Norouzi, Punjani, Fleet, CVPR 2012).
//
// Codes are split into m disjoint substrings. If two codes differ in d bits, some substring
// differs in at most floor(d / m) bits (pigeonhole), so a radius-r search probes, in every
// table, the buckets of all substrings within floor(r / m) of the query's and verifies each
// candidate with the full distance. kNN grows the substring radius s until k verified items lie
// within m * (s + 1) - 1, the radius that level s is complete for.
//
// Buckets are singly linked lists over slots: heads[key] and next[slot] (slot + 1, 0 = end), so
// an insert is O(1) and the memory is one word per bucket and per item and table. Substrings
// longer than the head table are hashed into it; hash collisions only add candidates, which the
// full-distance check removes.
#include <algorithm>
#include <cmath>

#include "index/code_store.h"
#include "index/scan_internal.h"

namespace imsat::index {

struct MultiIndex::Impl {
  int bits = 0;
  int m = 1;
  std::vector<int> start, len;  // per table: first bit and length of its substring
  int head_bits = 10;
  std::vector<std::vector<uint32_t>> heads;  // per table, 2^head_bits entries
  std::vector<std::vector<uint32_t>> next;   // per table, one entry per slot
  size_t inserted = 0;

  uint32_t substring(int t, const uint64_t* code) const {
    const int s = start[t], l = len[t];
    const int w = s / 64, off = s % 64;
    uint64_t v = code[w] >> off;
    if (off + l > 64) v |= code[w + 1] << (64 - off);
    return static_cast<uint32_t>(v & ((uint64_t{1} << l) - 1));
  }
  uint32_t head_of(int t, uint32_t sub) const {
    if (len[t] <= head_bits) return sub;
    // Fibonacci hashing of the longer substring into the head table.
    return static_cast<uint32_t>((uint64_t{sub} * 0x9E3779B97F4A7C15ULL) >> (64 - head_bits));
  }
  void resize_heads(size_t items) {
    int hb = 10;
    while (hb < 24 && (size_t{1} << hb) < items) ++hb;
    head_bits = hb;
    heads.assign(static_cast<size_t>(m), {});
    for (int t = 0; t < m; ++t) {
      const int used = std::min(len[t], head_bits);
      heads[t].assign(size_t{1} << used, 0);
    }
    next.assign(static_cast<size_t>(m), {});
    inserted = 0;
  }
  void link(const CodeArray& codes, uint32_t slot) {
    const uint64_t* code = codes.code(slot);
    for (int t = 0; t < m; ++t) {
      auto& nx = next[t];
      if (nx.size() <= slot) nx.resize(std::max<size_t>(slot + 1, nx.size() * 2), 0);
      uint32_t& head = heads[t][head_of(t, substring(t, code))];
      nx[slot] = head;
      head = slot + 1;
    }
    ++inserted;
  }

  // Calls visit(slot) for every item in the buckets of every substring of table t at exactly
  // `flips` bits from `sub`. Returns the number of buckets probed.
  template <typename Visit>
  uint64_t probe(int t, uint32_t sub, int flips, Visit&& visit) const {
    uint64_t probed = 0;
    const int l = len[t];
    auto walk = [&](uint32_t key) {
      ++probed;
      for (uint32_t e = heads[t][head_of(t, key)]; e != 0; e = next[t][e - 1]) visit(e - 1);
    };
    if (flips == 0) {
      walk(sub);
      return probed;
    }
    if (flips > l) return 0;
    int pos[32];
    for (int i = 0; i < flips; ++i) pos[i] = i;
    while (true) {
      uint32_t key = sub;
      for (int i = 0; i < flips; ++i) key ^= uint32_t{1} << pos[i];
      walk(key);
      int i = flips - 1;
      while (i >= 0 && pos[i] == l - flips + i) --i;
      if (i < 0) break;
      ++pos[i];
      for (int j = i + 1; j < flips; ++j) pos[j] = pos[j - 1] + 1;
    }
    return probed;
  }

  // Expected work of a level-s probe over all tables, in units of one code read by a linear
  // scan: each bucket probe and each candidate it yields costs a cache miss, about as much as
  // streaming kScanPerMiss codes (measured with bench/index_bench: ~100 ns against ~0.2 ns).
  double level_cost(int s, size_t items) const {
    constexpr double kScanPerMiss = 256;
    double total = 0;
    for (int t = 0; t < m; ++t) {
      if (s > len[t]) continue;
      double buckets = 1;
      for (int i = 0; i < s; ++i) buckets = buckets * (len[t] - i) / (i + 1);
      const double per_bucket = static_cast<double>(items) / std::ldexp(1.0, len[t]);
      total += buckets * (1 + per_bucket) * kScanPerMiss;
    }
    return total;
  }
};

namespace {

// Per-thread visited marks by slot, reset by bumping an epoch instead of clearing.
class Visited {
 public:
  void begin(size_t slots) {
    if (marks_.size() < slots) marks_.resize(slots, 0);
    if (++epoch_ == 0) {
      std::fill(marks_.begin(), marks_.end(), 0);
      epoch_ = 1;
    }
  }
  bool first_visit(uint32_t slot) {
    if (marks_[slot] == epoch_) return false;
    marks_[slot] = epoch_;
    return true;
  }

 private:
  std::vector<uint32_t> marks_;
  uint32_t epoch_ = 0;
};

thread_local Visited tl_visited;

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
  impl_->resize_heads(expected_items);
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

void MultiIndex::insert(const CodeArray& codes, uint32_t slot) {
  if (impl_->head_bits < 24 && impl_->inserted + 1 > (size_t{4} << impl_->head_bits)) {
    rebuild(codes);  // includes `slot` if already appended
    return;
  }
  impl_->link(codes, slot);
}

void MultiIndex::rebuild(const CodeArray& codes) {
  impl_->resize_heads(codes.live());
  for (uint32_t s = 0; s < codes.size(); ++s) {
    if (!codes.is_deleted(s)) impl_->link(codes, s);
  }
}

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
  SearchStats local;
  std::vector<Neighbor> out;
  Visited& visited = tl_visited;
  visited.begin(codes.size());
  const size_t words = codes.words();
  for (int s = 0; s <= s_max; ++s) {
    for (int t = 0; t < x.m; ++t) {
      local.buckets_probed += x.probe(t, x.substring(t, query), s, [&](uint32_t slot) {
        if (!visited.first_visit(slot) || codes.is_deleted(slot)) return;
        if (!filter.empty() && !filter.pass(codes, slot)) return;
        ++local.candidates_verified;
        const uint32_t d = hamming_distance(query, codes.code(slot), words);
        if (d <= r) out.push_back({slot, d});
      });
    }
  }
  std::sort(out.begin(), out.end(), by_distance_then_slot);
  if (stats != nullptr) *stats += local;
  return out;
}

std::vector<Neighbor> MultiIndex::knn(const CodeArray& codes, const uint64_t* query, size_t k,
                                      const Filter& filter, SearchStats* stats) const {
  const Impl& x = *impl_;
  if (k >= codes.live()) return scan_knn(codes, query, k, filter, stats);
  SearchStats local;
  std::vector<Neighbor> found;
  std::vector<uint64_t> at(static_cast<size_t>(x.bits) + 1, 0);
  Visited& visited = tl_visited;
  visited.begin(codes.size());
  const size_t words = codes.words();
  const int max_len = *std::max_element(x.len.begin(), x.len.end());
  double cost = 0;
  for (int s = 0; s <= max_len; ++s) {
    cost += x.level_cost(s, codes.live());
    if (cost > static_cast<double>(codes.size())) {
      // Growing further would cost more than a scan reading every code.
      SearchStats scan_stats;
      std::vector<Neighbor> out = scan_knn(codes, query, k, filter, &scan_stats);
      local += scan_stats;
      if (stats != nullptr) *stats += local;
      return out;
    }
    for (int t = 0; t < x.m; ++t) {
      local.buckets_probed += x.probe(t, x.substring(t, query), s, [&](uint32_t slot) {
        if (!visited.first_visit(slot) || codes.is_deleted(slot)) return;
        if (!filter.empty() && !filter.pass(codes, slot)) return;
        ++local.candidates_verified;
        const uint32_t d = hamming_distance(query, codes.code(slot), words);
        found.push_back({slot, d});
        ++at[d];
      });
    }
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
  if (stats != nullptr) *stats += local;
  return scan_knn(codes, query, k, filter, stats);
}

std::vector<uint64_t> MultiIndex::occupancy_histogram(int table, size_t max_count) const {
  std::vector<uint64_t> hist(max_count + 1, 0);
  const auto& heads = impl_->heads[static_cast<size_t>(table)];
  const auto& next = impl_->next[static_cast<size_t>(table)];
  for (uint32_t h : heads) {
    size_t n = 0;
    for (uint32_t e = h; e != 0; e = next[e - 1]) ++n;
    if (n > 0) ++hist[std::min(n, max_count)];
  }
  return hist;
}

size_t MultiIndex::memory_bytes() const {
  size_t b = 0;
  for (const auto& h : impl_->heads) b += h.capacity() * sizeof(uint32_t);
  for (const auto& n : impl_->next) b += n.capacity() * sizeof(uint32_t);
  return b;
}

}  // namespace imsat::index
