// Index benchmarks. Cases are named
//   Knn/<impl>/<bits>/<N>/<k>/<data>      Radius/<impl>/<bits>/<N>/<r>/<data>
// with impl imsat (linear scan), imsat_batch (100 queries per pass over the codes), imsat_mih
// (multi-index), and, when built with libfaiss, faiss_flat (IndexBinaryFlat), faiss_mih
// (IndexBinaryMultiHash) and faiss_hash (IndexBinaryHash); data uniform, clustered, or learned (a
// codes file from `imsat encode` named by IMSAT_BENCH_CODES; see dataset()). Every case
// reports queries/s as items_per_second, single thread. Also MemoryBandwidth (one core reading a
// large buffer) and BulkLoad (codes/s into the durable store, write-ahead log on).
#include <benchmark/benchmark.h>
#include <immintrin.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "index/code_store.h"
#include "query/codes_file.h"

#ifdef IMSAT_BENCH_FAISS
#include <faiss/IndexBinaryFlat.h>
#include <faiss/IndexBinaryHash.h>
#include <faiss/impl/AuxIndexStructures.h>
#include <omp.h>
#endif

namespace {

using imsat::index::CodeArray;
using imsat::index::MultiIndex;
using imsat::index::Neighbor;

constexpr size_t kQueries = 1000;

// Codes as raw bytes (for faiss and the store) and as a CodeArray (for imsat), plus queries drawn
// from the same distribution but not stored.
struct Dataset {
  int bits = 0;
  size_t n = 0;
  std::string kind;
  std::vector<uint8_t> bytes;
  std::vector<uint8_t> query_bytes;
  std::unique_ptr<CodeArray> codes;
  std::vector<uint64_t> queries;  // packed words
  std::unique_ptr<MultiIndex> mih;
#ifdef IMSAT_BENCH_FAISS
  std::unique_ptr<faiss::IndexBinaryFlat> flat;
  std::map<std::pair<int, int>, std::unique_ptr<faiss::IndexBinaryMultiHash>> multihash;
  std::map<int, std::unique_ptr<faiss::IndexBinaryHash>> hash;
#endif
};

// Clustered: 10,000 centres; each code flips each bit of its centre with probability 1/32, so a
// radius-2 ball around a query holds hundreds to thousands of items at N = 1e7.
void fill(std::vector<uint8_t>& out, size_t n, int bits, const std::string& kind,
          std::mt19937_64& rng, const std::vector<uint8_t>& centres) {
  const size_t cb = static_cast<size_t>(bits) / 8;
  out.resize(n * cb);
  if (kind == "uniform") {
    for (auto& b : out) b = static_cast<uint8_t>(rng());
    return;
  }
  const size_t nc = centres.size() / cb;
  for (size_t i = 0; i < n; ++i) {
    const uint8_t* c = centres.data() + (rng() % nc) * cb;
    for (size_t j = 0; j < cb; ++j) {
      uint8_t flip = 0;
      for (int bit = 0; bit < 8; ++bit) flip |= static_cast<uint8_t>((rng() % 32 == 0) << bit);
      out[i * cb + j] = c[j] ^ flip;
    }
  }
}

// Learned codes: a codes file made by `imsat encode` (IMSAT_BENCH_CODES); its last kQueries rows
// are the queries, the others are stored (Fashion-MNIST in its file order: the 60,000 training
// images and 9,000 test images stored, the last 1,000 test images as queries).
const char* learned_codes_path() { return std::getenv("IMSAT_BENCH_CODES"); }

imsat::query::CodesFile learned_codes() {
  auto file = imsat::query::read_codes_file(learned_codes_path());
  if (!file.is_ok()) {
    std::fprintf(stderr, "index_bench: %s\n", file.status().to_string().c_str());
    std::exit(1);
  }
  if (file->rows <= kQueries) {
    std::fprintf(stderr, "index_bench: the codes file needs more than %zu rows\n", kQueries);
    std::exit(1);
  }
  return std::move(file).value();
}

Dataset& dataset(int bits, size_t n, const std::string& kind) {
  static std::unique_ptr<Dataset> current;
  if (current && current->bits == bits && current->n == n && current->kind == kind) return *current;
  current.reset();  // one dataset in memory at a time
  auto d = std::make_unique<Dataset>();
  d->bits = bits;
  d->n = n;
  d->kind = kind;
  if (kind == "learned") {
    const imsat::query::CodesFile file = learned_codes();
    const size_t cb = static_cast<size_t>(file.bits) / 8;
    d->bytes.assign(file.codes.begin(), file.codes.begin() + n * cb);
    d->query_bytes.assign(file.codes.begin() + n * cb, file.codes.begin() + (n + kQueries) * cb);
  } else {
    std::mt19937_64 rng(static_cast<uint64_t>(bits) * 1000003 + n);
    std::vector<uint8_t> centres(10000 * static_cast<size_t>(bits) / 8);
    for (auto& b : centres) b = static_cast<uint8_t>(rng());
    fill(d->bytes, n, bits, kind, rng, centres);
    fill(d->query_bytes, kQueries, bits, kind, rng, centres);
  }
  d->codes = std::make_unique<CodeArray>(bits);
  d->codes->reserve(n);
  const size_t cb = static_cast<size_t>(bits) / 8;
  for (size_t i = 0; i < n; ++i) d->codes->append(d->bytes.data() + i * cb);
  d->queries.resize(kQueries * d->codes->words());
  for (size_t q = 0; q < kQueries; ++q) {
    d->codes->pack(d->query_bytes.data() + q * cb, d->queries.data() + q * d->codes->words());
  }
  current = std::move(d);
  return *current;
}

const uint64_t* query(const Dataset& d, size_t q) {
  return d.queries.data() + (q % kQueries) * d.codes->words();
}

MultiIndex& mih(Dataset& d) {
  if (!d.mih) {
    d.mih = std::make_unique<MultiIndex>(d.bits, 0, d.n);
    d.mih->rebuild(*d.codes);
  }
  return *d.mih;
}

void BM_KnnScan(benchmark::State& state, int bits, size_t n, size_t k, std::string kind) {
  Dataset& d = dataset(bits, n, kind);
  size_t q = 0;
  for (auto _ : state) {
    auto r = imsat::index::scan_knn(*d.codes, query(d, q++), k);
    benchmark::DoNotOptimize(r.data());
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
  state.counters["codes_per_s"] =
      benchmark::Counter(static_cast<double>(state.iterations() * n), benchmark::Counter::kIsRate);
  state.counters["bytes_per_s"] =
      benchmark::Counter(static_cast<double>(state.iterations() * n * d.codes->words() * 8),
                         benchmark::Counter::kIsRate);
  state.SetLabel(std::string(imsat::index::active_kernel_name()));
}

void BM_KnnBatch(benchmark::State& state, int bits, size_t n, size_t k, std::string kind) {
  Dataset& d = dataset(bits, n, kind);
  constexpr size_t kBatch = 100;
  size_t q = 0;
  for (auto _ : state) {
    auto r = imsat::index::scan_knn_batch(*d.codes, query(d, q), kBatch, k);
    q = (q + kBatch) % kQueries;
    benchmark::DoNotOptimize(r.data());
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * kBatch));
  state.counters["bytes_per_s"] =
      benchmark::Counter(static_cast<double>(state.iterations() * n * d.codes->words() * 8),
                         benchmark::Counter::kIsRate);
  state.SetLabel(std::string(imsat::index::active_kernel_name()));
}

void BM_KnnMih(benchmark::State& state, int bits, size_t n, size_t k, std::string kind) {
  Dataset& d = dataset(bits, n, kind);
  MultiIndex& index = mih(d);
  size_t q = 0;
  imsat::index::SearchStats stats;
  for (auto _ : state) {
    auto r = index.knn(*d.codes, query(d, q++), k, {}, &stats);
    benchmark::DoNotOptimize(r.data());
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
  state.counters["verified_per_query"] =
      static_cast<double>(stats.candidates_verified) / static_cast<double>(state.iterations());
  state.counters["tables"] = index.tables();
}

void BM_RadiusImsat(benchmark::State& state, int bits, size_t n, uint32_t r, std::string kind,
                    bool use_mih) {
  Dataset& d = dataset(bits, n, kind);
  MultiIndex* index = use_mih ? &mih(d) : nullptr;
  size_t q = 0, results = 0;
  for (auto _ : state) {
    auto hits = index ? index->radius(*d.codes, query(d, q++), r)
                      : imsat::index::scan_radius(*d.codes, query(d, q++), r);
    results += hits.size();
    benchmark::DoNotOptimize(hits.data());
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
  state.counters["results_per_query"] =
      static_cast<double>(results) / static_cast<double>(state.iterations());
  if (index) state.counters["tables"] = index->tables();
}

#ifdef IMSAT_BENCH_FAISS

faiss::IndexBinaryFlat& flat(Dataset& d) {
  if (!d.flat) {
    d.flat = std::make_unique<faiss::IndexBinaryFlat>(d.bits);
    d.flat->add(static_cast<faiss::IndexBinary::idx_t>(d.n), d.bytes.data());
  }
  return *d.flat;
}

faiss::IndexBinaryMultiHash& multihash(Dataset& d, int nhash, int b) {
  auto& slot = d.multihash[{nhash, b}];
  if (!slot) {
    slot = std::make_unique<faiss::IndexBinaryMultiHash>(d.bits, nhash, b);
    slot->add(static_cast<faiss::IndexBinary::idx_t>(d.n), d.bytes.data());
  }
  return *slot;
}

// nflip bit flips of the b-bit prefix at search time: nflip = r makes the range search exact.
faiss::IndexBinaryHash& hash(Dataset& d, int b, int nflip) {
  auto& slot = d.hash[b];
  if (!slot) {
    slot = std::make_unique<faiss::IndexBinaryHash>(d.bits, b);
    slot->nflip = nflip;
    slot->add(static_cast<faiss::IndexBinary::idx_t>(d.n), d.bytes.data());
  }
  return *slot;
}

void BM_KnnFaissFlat(benchmark::State& state, int bits, size_t n, size_t k, std::string kind) {
  omp_set_num_threads(1);
  Dataset& d = dataset(bits, n, kind);
  faiss::IndexBinaryFlat& index = flat(d);
  std::vector<int32_t> dist(k);
  std::vector<faiss::IndexBinary::idx_t> labels(k);
  const size_t cb = static_cast<size_t>(bits) / 8;
  size_t q = 0;
  for (auto _ : state) {
    index.search(1, d.query_bytes.data() + (q++ % kQueries) * cb,
                 static_cast<faiss::IndexBinary::idx_t>(k), dist.data(), labels.data());
    benchmark::DoNotOptimize(labels.data());
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
}

// The set of ids faiss's range search returns for query q. Its radius is exclusive, so r + 1.
template <typename Index>
std::set<int64_t> faiss_range(const Index& index, const Dataset& d, size_t q, uint32_t r) {
  faiss::RangeSearchResult res(1);
  index.range_search(1, d.query_bytes.data() + q * (static_cast<size_t>(d.bits) / 8),
                     static_cast<int>(r + 1), &res);
  return std::set<int64_t>(res.labels, res.labels + res.lims[1]);
}

template <typename Index>
void BM_RadiusFaiss(benchmark::State& state, Index& (*get)(Dataset&, int, int), int bits, size_t n,
                    uint32_t r, std::string kind, int nhash, int b) {
  omp_set_num_threads(1);
  Dataset& d = dataset(bits, n, kind);
  Index& index = get(d, nhash, b);
  // Equal work: both must return the same result sets.
  for (size_t q = 0; q < 20; ++q) {
    std::set<int64_t> want;
    for (const Neighbor& nb : imsat::index::scan_radius(*d.codes, query(d, q), r))
      want.insert(nb.slot);
    if (faiss_range(index, d, q, r) != want) {
      state.SkipWithError("faiss and imsat radius results differ");
      return;
    }
  }
  size_t q = 0, results = 0;
  for (auto _ : state) {
    faiss::RangeSearchResult res(1);
    index.range_search(1, d.query_bytes.data() + (q++ % kQueries) * (static_cast<size_t>(bits) / 8),
                       static_cast<int>(r + 1), &res);
    results += res.lims[1];
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
  state.counters["results_per_query"] =
      static_cast<double>(results) / static_cast<double>(state.iterations());
}

faiss::IndexBinaryMultiHash& get_multihash(Dataset& d, int nhash, int b) {
  return multihash(d, nhash, b);
}
// For the single-table hash the first parameter is nflip.
faiss::IndexBinaryHash& get_hash(Dataset& d, int nflip, int b) { return hash(d, b, nflip); }

#endif  // IMSAT_BENCH_FAISS

// One core streaming a 512 MiB buffer: the bound a single-query scan out of cache can reach.
void BM_MemoryBandwidth(benchmark::State& state) {
  const size_t words = (512u << 20) / 8;
  std::vector<uint64_t> buf(words, 1);
  for (auto _ : state) {
    uint64_t a = 0, b = 0, c = 0, e = 0;
    for (size_t i = 0; i < words; i += 4) {
      a += buf[i];
      b += buf[i + 1];
      c += buf[i + 2];
      e += buf[i + 3];
    }
    benchmark::DoNotOptimize(a + b + c + e);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * words * 8));
}

// The same buffer read with 512-bit loads (four independent accumulators): the streaming-read
// ceiling of one core, against which a vectorised scan out of cache is compared.
__attribute__((target("avx512f"))) uint64_t read_avx512(const uint64_t* data, size_t words) {
  __m512i a = _mm512_setzero_si512(), b = a, c = a, e = a;
  for (size_t i = 0; i + 32 <= words; i += 32) {
    a = _mm512_add_epi64(a, _mm512_load_si512(data + i));
    b = _mm512_add_epi64(b, _mm512_load_si512(data + i + 8));
    c = _mm512_add_epi64(c, _mm512_load_si512(data + i + 16));
    e = _mm512_add_epi64(e, _mm512_load_si512(data + i + 24));
  }
  alignas(64) uint64_t lanes[8];
  _mm512_store_si512(lanes, _mm512_add_epi64(_mm512_add_epi64(a, b), _mm512_add_epi64(c, e)));
  uint64_t sum = 0;
  for (uint64_t v : lanes) sum += v;
  return sum;
}

void BM_MemoryBandwidthAvx512(benchmark::State& state) {
  if (!__builtin_cpu_supports("avx512f")) {
    state.SkipWithError("no AVX-512 on this CPU");
    return;
  }
  const size_t words = (512u << 20) / 8;
  uint64_t* buf = static_cast<uint64_t*>(std::aligned_alloc(64, words * 8));
  std::fill(buf, buf + words, 1);
  for (auto _ : state) benchmark::DoNotOptimize(read_avx512(buf, words));
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * words * 8));
  std::free(buf);
}

// The reference for the single-query scan: the simplest AVX-512 VPOPCNTDQ loop over
// 64-bit codes that computes every distance and keeps a running k-th-distance threshold (a
// max-heap of the k best, ties by position), with nothing else around it.
// Adds (dist, i) to the max-heap of the k best; returns the new threshold: k-th distance + 1 once
// k are held (strictly better than the k-th is needed; ties keep the earlier item), else 65.
uint32_t offer(std::vector<std::pair<uint32_t, uint32_t>>* heap, size_t k, uint32_t dist,
               uint32_t i) {
  heap->emplace_back(dist, i);
  std::push_heap(heap->begin(), heap->end());
  if (heap->size() > k) {
    std::pop_heap(heap->begin(), heap->end());
    heap->pop_back();
  }
  return heap->size() == k ? heap->front().first + 1 : 65;
}

__attribute__((target("avx512f,avx512vpopcntdq"))) void bare_knn_avx512(
    const uint64_t* codes, size_t n, uint64_t query, size_t k,
    std::vector<std::pair<uint32_t, uint32_t>>* heap) {
  heap->clear();
  uint32_t threshold = 65;  // above any 64-bit distance until k items are held
  const __m512i q = _mm512_set1_epi64(static_cast<long long>(query));
  __m512i t = _mm512_set1_epi64(threshold);
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m512i d = _mm512_popcnt_epi64(_mm512_xor_si512(_mm512_load_si512(codes + i), q));
    __mmask8 m = _mm512_cmplt_epu64_mask(d, t);
    while (m != 0) {
      const int lane = __builtin_ctz(m);
      m &= static_cast<__mmask8>(m - 1);
      const auto dist = static_cast<uint32_t>(__builtin_popcountll(codes[i + lane] ^ query));
      if (dist < threshold) {
        threshold = offer(heap, k, dist, static_cast<uint32_t>(i + lane));
        t = _mm512_set1_epi64(threshold);
      }
    }
  }
  for (; i < n; ++i) {
    const auto dist = static_cast<uint32_t>(__builtin_popcountll(codes[i] ^ query));
    if (dist < threshold) threshold = offer(heap, k, dist, static_cast<uint32_t>(i));
  }
}

void BM_KnnBareAvx512(benchmark::State& state, size_t n, size_t k, std::string kind) {
  if (!__builtin_cpu_supports("avx512vpopcntdq")) {
    state.SkipWithError("no AVX-512 VPOPCNTDQ on this CPU");
    return;
  }
  Dataset& d = dataset(64, n, kind);
  std::vector<std::pair<uint32_t, uint32_t>> heap;
  for (size_t check = 0; check < 5; ++check) {  // the reference must answer as the scan does
    bare_knn_avx512(d.codes->data(), n, *query(d, check), k, &heap);
    std::sort(heap.begin(), heap.end());
    const auto want = imsat::index::scan_knn(*d.codes, query(d, check), k);
    for (size_t i = 0; i < want.size(); ++i) {
      if (heap.size() != want.size() || heap[i].first != want[i].distance ||
          heap[i].second != want[i].slot) {
        state.SkipWithError("the bare AVX-512 reference disagrees with scan_knn");
        return;
      }
    }
  }
  size_t q = 0;
  for (auto _ : state) {
    bare_knn_avx512(d.codes->data(), n, *query(d, q++), k, &heap);
    benchmark::DoNotOptimize(heap.data());
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
  state.counters["bytes_per_s"] = benchmark::Counter(
      static_cast<double>(state.iterations() * n * 8), benchmark::Counter::kIsRate);
}

void BM_BulkLoad(benchmark::State& state, int bits, size_t n) {
  Dataset& d = dataset(bits, n, "uniform");
  const size_t cb = static_cast<size_t>(bits) / 8;
  for (auto _ : state) {
    state.PauseTiming();
    std::string tmpl = (std::filesystem::temp_directory_path() / "imsat-bulk-XXXXXX").string();
    if (mkdtemp(tmpl.data()) == nullptr) {
      state.SkipWithError("mkdtemp failed");
      return;
    }
    imsat::index::StoreOptions o;
    o.bits = bits;
    o.expected_items = n;
    o.sync_writes = true;
    auto store = imsat::index::CodeStore::open(tmpl + "/db", o);
    state.ResumeTiming();
    auto next = [&](size_t i, imsat::index::Item* it) {
      if (i >= n) return false;
      it->key = std::to_string(i);
      it->code.assign(d.bytes.data() + i * cb, d.bytes.data() + (i + 1) * cb);
      return true;
    };
    imsat::Status s = (*store)->bulk_load("bench", next, 100000, nullptr, /*new_keys=*/true);
    state.PauseTiming();
    if (!s.is_ok()) state.SkipWithError(s.to_string().c_str());
    store.value().reset();
    std::filesystem::remove_all(tmpl);
    state.ResumeTiming();
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * n));
}

std::string name(const std::string& op, const std::string& impl, int bits, size_t n, size_t p,
                 const std::string& kind) {
  return op + "/" + impl + "/" + std::to_string(bits) + "/" + std::to_string(n) + "/" +
         std::to_string(p) + "/" + kind;
}

int register_all() {
  benchmark::RegisterBenchmark("MemoryBandwidth/read", BM_MemoryBandwidth)
      ->Unit(benchmark::kMillisecond);
  benchmark::RegisterBenchmark("MemoryBandwidth/read_avx512", BM_MemoryBandwidthAvx512)
      ->Unit(benchmark::kMillisecond);
  for (size_t n : {size_t{1000000}, size_t{10000000}}) {
    for (const std::string kind : {"uniform", "clustered"}) {
      benchmark::RegisterBenchmark(name("Knn", "bare_avx512", 64, n, 10, kind).c_str(),
                                   BM_KnnBareAvx512, n, size_t{10}, kind)
          ->UseRealTime();
    }
  }
  for (size_t n : {size_t{1000000}, size_t{10000000}}) {
    for (const std::string kind : {"uniform", "clustered"}) {
      for (int bits : {16, 32, 64, 128}) {
        for (size_t k : {size_t{10}, size_t{100}}) {
          benchmark::RegisterBenchmark(name("Knn", "imsat", bits, n, k, kind).c_str(), BM_KnnScan,
                                       bits, n, k, kind)
              ->UseRealTime();
          benchmark::RegisterBenchmark(name("Knn", "imsat_batch", bits, n, k, kind).c_str(),
                                       BM_KnnBatch, bits, n, k, kind)
              ->UseRealTime();
          benchmark::RegisterBenchmark(name("Knn", "imsat_mih", bits, n, k, kind).c_str(),
                                       BM_KnnMih, bits, n, k, kind)
              ->UseRealTime();
#ifdef IMSAT_BENCH_FAISS
          benchmark::RegisterBenchmark(name("Knn", "faiss_flat", bits, n, k, kind).c_str(),
                                       BM_KnnFaissFlat, bits, n, k, kind)
              ->UseRealTime();
#endif
        }
        const uint32_t r = 2;
        benchmark::RegisterBenchmark(name("Radius", "imsat", bits, n, r, kind).c_str(),
                                     BM_RadiusImsat, bits, n, r, kind, false)
            ->UseRealTime();
        benchmark::RegisterBenchmark(name("Radius", "imsat_mih", bits, n, r, kind).c_str(),
                                     BM_RadiusImsat, bits, n, r, kind, true)
            ->UseRealTime();
#ifdef IMSAT_BENCH_FAISS
        if (bits == 64) {
          // The settings the issue names as faiss's best: MultiHash nhash 3, b 21 on uniform
          // codes; the single-table IndexBinaryHash on clustered codes.
          benchmark::RegisterBenchmark(name("Radius", "faiss_mih", bits, n, r, kind).c_str(),
                                       BM_RadiusFaiss<faiss::IndexBinaryMultiHash>, get_multihash,
                                       bits, n, r, kind, 3, 21)
              ->UseRealTime();
          benchmark::RegisterBenchmark(name("Radius", "faiss_hash", bits, n, r, kind).c_str(),
                                       BM_RadiusFaiss<faiss::IndexBinaryHash>, get_hash, bits, n, r,
                                       kind, static_cast<int>(r), 24)
              ->UseRealTime();
        }
#endif
      }
    }
  }
  if (learned_codes_path() != nullptr) {
    auto header = imsat::query::read_codes_header(learned_codes_path());
    if (!header.is_ok()) {
      std::fprintf(stderr, "index_bench: %s\n", header.status().to_string().c_str());
      std::exit(1);
    }
    const int bits = header->bits;
    const size_t n = header->rows - kQueries;
    for (size_t k : {size_t{10}, size_t{100}}) {
      benchmark::RegisterBenchmark(name("Knn", "imsat", bits, n, k, "learned").c_str(), BM_KnnScan,
                                   bits, n, k, "learned")
          ->UseRealTime();
      benchmark::RegisterBenchmark(name("Knn", "imsat_mih", bits, n, k, "learned").c_str(),
                                   BM_KnnMih, bits, n, k, "learned")
          ->UseRealTime();
    }
    for (uint32_t r : {2u, 4u}) {
      benchmark::RegisterBenchmark(name("Radius", "imsat", bits, n, r, "learned").c_str(),
                                   BM_RadiusImsat, bits, n, r, "learned", false)
          ->UseRealTime();
      benchmark::RegisterBenchmark(name("Radius", "imsat_mih", bits, n, r, "learned").c_str(),
                                   BM_RadiusImsat, bits, n, r, "learned", true)
          ->UseRealTime();
    }
  }
  for (size_t n : {size_t{1000000}}) {
    benchmark::RegisterBenchmark(("BulkLoad/imsat/64/" + std::to_string(n)).c_str(), BM_BulkLoad,
                                 64, n)
        ->Unit(benchmark::kMillisecond)
        ->Iterations(1)
        ->UseRealTime();
  }
  return 0;
}
const int registered = register_all();

}  // namespace

BENCHMARK_MAIN();
