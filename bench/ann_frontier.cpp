// The project's side of the nearest-neighbour frontier (bench/ann_frontier.py runs it beside
// hnswlib and faiss): builds a store of BASE's vectors with MODEL's codes, then for each setting
// of a sweep searches QUERIES one at a time on one thread and prints one JSON line with recall@10
// against TRUTH, queries per second and the bytes per item in memory (the store's arrays, and the
// vector cache when the sweep uses it).
//
//   build/bench/ann_frontier MODEL BASE QUERIES TRUTH MEMORY_SWEEP [ROCKSDB_SWEEP [HALF_SWEEP]]
//
// BASE and QUERIES: any data file `imsat` reads (.npy, .fvecs, ...). TRUTH: an .ivecs file with
// each query's nearest base rows (0-based; at least 10 per query). A sweep is a comma-separated
// list of CANDIDATES:SHORTLIST (SHORTLIST 0: exact distances for every candidate); the memory
// sweep runs with every vector cached in memory, the RocksDB one (optional) reads them from the
// store (its block cache sized to hold them, warmed by one unrecorded pass), and runs first; the
// half sweep (optional) runs last, with the vectors cached as float16 (imsat serve
// --vector-precision float16).
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "bench_util.h"
#include "query/query.h"

namespace {

namespace I = imsat::index;
namespace L = imsat::learn;
namespace Q = imsat::query;

using imsat::bench::check;
using imsat::bench::take;

std::vector<std::pair<size_t, size_t>> parse_sweep(const std::string& text) {
  std::vector<std::pair<size_t, size_t>> out;
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, ',')) {
    const size_t colon = item.find(':');
    out.emplace_back(std::stoul(item.substr(0, colon)),
                     colon == std::string::npos ? 0 : std::stoul(item.substr(colon + 1)));
  }
  return out;
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 6) {
    std::fprintf(stderr,
                 "usage: %s MODEL BASE QUERIES TRUTH MEMORY_SWEEP [ROCKSDB_SWEEP [HALF_SWEEP]]\n"
                 "  a sweep: CANDIDATES:SHORTLIST,... (e.g. 1000:0,2000:300)\n",
                 argv[0]);
    return 2;
  }
  imsat::bench::program = "ann_frontier";
  const size_t k = 10;
  L::set_num_threads(1);
  L::Model model = take(L::Model::load(argv[1]));
  const L::Dataset base = take(L::load_dataset(argv[2]));
  const L::Dataset queries = take(L::load_dataset(argv[3]));
  const L::Dataset truth_file = take(L::read_ivecs(argv[4]));
  const auto memory_sweep = parse_sweep(argv[5]);
  const auto rocksdb_sweep = argc > 6 ? parse_sweep(argv[6]) : decltype(memory_sweep){};
  const auto half_sweep = argc > 7 ? parse_sweep(argv[7]) : decltype(memory_sweep){};
  const size_t nq = std::min(queries.rows, truth_file.rows);
  if (base.cols != queries.cols || truth_file.cols < k) {
    std::fprintf(stderr, "ann_frontier: base and queries differ in dimension, or truth is short\n");
    return 1;
  }
  std::vector<std::vector<uint64_t>> truth(nq);
  for (size_t q = 0; q < nq; ++q) {
    for (size_t j = 0; j < k; ++j) truth[q].push_back(static_cast<uint64_t>(truth_file.row(q)[j]));
  }

  auto t0 = std::chrono::steady_clock::now();
  L::set_num_threads(0);
  const std::vector<uint8_t> codes = take(model.encode(base));
  L::set_num_threads(1);
  const double encode_s = seconds_since(t0);
  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() / ("imsat-frontier-" + std::to_string(getpid()));
  std::filesystem::remove_all(dir);
  I::StoreOptions o;
  o.bits = model.bits();
  o.model_fingerprint = model.fingerprint();
  o.metric = Q::metric_of(model);
  o.expected_items = base.rows;
  o.sync_writes = false;
  // Room for every vector in the block cache (the RocksDB sweep reads them there after the
  // first pass).
  o.cache_mb = base.rows * base.cols * sizeof(float) / (1 << 20) + 256;
  std::unique_ptr<I::CodeStore> store = take(I::CodeStore::open(dir.string(), o));
  const size_t bytes = static_cast<size_t>(model.code_bytes());
  const bool unit = model.metric() == L::Metric::kCosine;
  t0 = std::chrono::steady_clock::now();
  check(store->bulk_load(
      "base",
      [&](size_t i, I::Item* it) {
        if (i >= base.rows) return false;
        it->key = std::to_string(i);
        it->code.assign(codes.begin() + static_cast<long>(i * bytes),
                        codes.begin() + static_cast<long>((i + 1) * bytes));
        it->vector.assign(base.row(i), base.row(i) + base.cols);
        if (unit) Q::scale_to_unit_length(it->vector.data(), base.cols);
        return true;
      },
      50000, nullptr, /*new_keys=*/true));
  const double load_s = seconds_since(t0);
  auto engine =
      take(Q::QueryEngine::create(std::move(store), std::make_unique<L::Model>(std::move(model))));
  const Q::StoreInfo info = engine->info();
  const double code_bytes_per_item = double(info.memory_bytes) / double(info.items);
  std::fprintf(stderr,
               "ann_frontier: %zu items of %zu values, %d-bit codes, metric %s: encoded in %.1f "
               "s, stored in %.1f s; %.1f bytes an item of codes, ids and index in memory\n",
               base.rows, base.cols, engine->bits(), L::metric_name(engine->metric()), encode_s,
               load_s, code_bytes_per_item);

  // Bytes an item of the vector cache (vectors, keys, row map), as it is when a sweep runs.
  auto cache_bytes = [&] { return double(engine->vector_cache_bytes()) / double(info.items); };
  auto run = [&](const char* where, size_t candidates, size_t shortlist, double vector_bytes,
                 bool print = true) {
    Q::SearchRequest r;
    r.k = k;
    r.rerank = Q::Rerank::kExact;
    r.candidates = candidates;
    r.shortlist = shortlist;
    r.with_metadata = false;
    r.use_multi_index = false;  // candidates in the thousands: the scan is the faster way
    std::vector<std::vector<uint64_t>> found(nq);
    const auto start = std::chrono::steady_clock::now();
    for (size_t q = 0; q < nq; ++q) {
      Q::SearchResponse res = take(engine->search_vector(queries.row(q), queries.cols, r));
      for (const Q::SearchHit& h : res.hits) found[q].push_back(std::stoull(h.key));
    }
    const double s = seconds_since(start);
    if (!print) return;
    std::printf(
        "{\"method\": \"imsat\", \"vectors\": \"%s\", \"candidates\": %zu, \"shortlist\": %zu, "
        "\"recall\": %.4f, \"qps\": %.1f, \"bytes_per_item\": %.1f, \"vector_bytes\": %.0f, "
        "\"bits\": %d, \"metric\": \"%s\", \"items\": %zu, \"queries\": %zu}\n",
        where, candidates, shortlist, Q::recall_at_k(found, truth, k), double(nq) / s,
        code_bytes_per_item, vector_bytes, engine->bits(), L::metric_name(engine->metric()),
        info.items, nq);
    std::fflush(stdout);
  };
  // One unrecorded pass first, so that the block cache holds the vectors the queries read, as a
  // serving store's does after its first minutes.
  if (!rocksdb_sweep.empty()) {
    run("rocksdb", rocksdb_sweep.back().first, rocksdb_sweep.back().second, 0, false);
  }
  for (const auto& [c, s] : rocksdb_sweep) run("rocksdb", c, s, 0);
  // Each cache is warmed by one unrecorded pass too (its pages are touched, the caches settle).
  if (!memory_sweep.empty()) {
    check(engine->cache_vectors());
    run("memory", memory_sweep.back().first, memory_sweep.back().second, 0, false);
    for (const auto& [c, s] : memory_sweep) run("memory", c, s, cache_bytes());
  }
  if (!half_sweep.empty()) {
    check(engine->cache_vectors(Q::VectorPrecision::kFloat16));
    run("memory-float16", half_sweep.back().first, half_sweep.back().second, 0, false);
    for (const auto& [c, s] : half_sweep) run("memory-float16", c, s, cache_bytes());
  }
  engine.reset();
  std::filesystem::remove_all(dir);
  return 0;
}
