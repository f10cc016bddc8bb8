// recall@10 of search against exact Euclidean neighbours (the ann-benchmarks measure), with and
// without re-ranking, next to queries per second. Gallery: a dataset folder's train items, stored
// with their raw vectors; queries: its first test items. Prints a table.
//
//   build/bench/rerank_recall MODEL [DATA_FOLDER] [QUERIES] [CANDIDATES,...]
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "bench_util.h"
#include "query/query.h"

namespace {

namespace I = imsat::index;
namespace L = imsat::learn;
namespace Q = imsat::query;

using imsat::bench::check;
using imsat::bench::take;

}  // namespace

int main(int argc, char** argv) {
  imsat::bench::program = "rerank_recall";
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s MODEL [DATA_FOLDER] [QUERIES] [CANDIDATES,...]\n", argv[0]);
    return 2;
  }
  const std::string model_path = argv[1];
  const std::string data_path = argc > 2 ? argv[2] : "/usr/share/datasets/fashion-mnist";
  const size_t nq = argc > 3 ? std::stoul(argv[3]) : 1000;
  std::vector<size_t> candidate_counts = {10, 100, 1000, 5000};
  if (argc > 4) {
    candidate_counts.clear();
    std::stringstream in(argv[4]);
    std::string c;
    while (std::getline(in, c, ',')) candidate_counts.push_back(std::stoul(c));
  }
  const size_t k = 10;

  L::set_num_threads(0);
  L::Dataset data = take(L::load_dataset(data_path));
  if (data.train_rows == 0 || data.train_rows + nq > data.rows) {
    std::fprintf(stderr, "rerank_recall: %s needs train and test files with %zu test items\n",
                 data_path.c_str(), nq);
    return 1;
  }
  L::Model model = take(L::Model::load(model_path));
  const size_t ng = data.train_rows;
  std::vector<uint8_t> codes = take(model.encode(data.values.data(), ng, data.cols));

  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() / ("imsat-rerank-" + std::to_string(getpid()));
  std::filesystem::remove_all(dir);
  I::StoreOptions o;
  o.bits = model.bits();
  o.model_fingerprint = model.fingerprint();
  o.expected_items = ng;
  std::unique_ptr<I::CodeStore> store = take(I::CodeStore::open(dir.string(), o));
  const size_t bytes = static_cast<size_t>(model.code_bytes());
  check(store->bulk_load("gallery", [&](size_t i, I::Item* it) {
    if (i >= ng) return false;
    it->key = std::to_string(i);
    it->code.assign(codes.begin() + static_cast<long>(i * bytes),
                    codes.begin() + static_cast<long>((i + 1) * bytes));
    it->vector.assign(data.row(i), data.row(i) + data.cols);
    return true;
  }));
  auto engine =
      take(Q::QueryEngine::create(std::move(store), std::make_unique<L::Model>(std::move(model))));

  const float* queries = data.row(data.train_rows);
  auto t0 = std::chrono::steady_clock::now();
  const auto truth = Q::exact_neighbours(queries, nq, data.values.data(), ng, data.cols, k, 2);
  const double exact_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  std::printf("gallery %zu (train), queries %zu (test), %d bits, k = %zu\n", ng, nq, engine->bits(),
              k);
  std::printf("%-20s %11s %10s %10s\n", "re-rank", "candidates", "recall@10", "queries/s");
  auto run = [&](Q::Rerank rerank, size_t candidates, const char* where = "", bool mih = true) {
    Q::SearchRequest r;
    r.use_multi_index = mih;
    r.k = k;
    r.rerank = rerank;
    r.candidates = candidates;
    r.with_metadata = false;
    std::vector<std::vector<uint64_t>> found(nq);
    const auto start = std::chrono::steady_clock::now();
    for (size_t q = 0; q < nq; ++q) {
      Q::SearchResponse res = take(engine->search_vector(queries + q * data.cols, data.cols, r));
      for (const Q::SearchHit& h : res.hits) found[q].push_back(std::stoull(h.key));
    }
    const double s =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::printf("%-20s %11s %10.3f %10.0f\n", (std::string(Q::rerank_name(rerank)) + where).c_str(),
                rerank == Q::Rerank::kNone ? "-" : std::to_string(candidates).c_str(),
                Q::recall_at_k(found, truth, k), double(nq) / s);
  };
  run(Q::Rerank::kNone, 0, " (multi-index)");
  run(Q::Rerank::kNone, 0, " (scan)", false);
  for (size_t c : candidate_counts) run(Q::Rerank::kAsymmetric, c);
  for (size_t c : candidate_counts) run(Q::Rerank::kExact, c, " (RocksDB)");
  auto c0 = std::chrono::steady_clock::now();
  check(engine->cache_vectors());
  std::printf("(%zu vectors cached in memory in %.1f s)\n", engine->cached_vectors(),
              std::chrono::duration<double>(std::chrono::steady_clock::now() - c0).count());
  for (size_t c : candidate_counts) run(Q::Rerank::kExact, c, " (memory)");
  // The floor re-ranking is measured against: reading the candidates' vectors once (as many
  // random gallery rows as candidates, each summed; one thread), per query.
  {
    std::mt19937_64 rng(1);
    for (size_t c : candidate_counts) {
      float sink = 0;
      const auto s0 = std::chrono::steady_clock::now();
      for (size_t q = 0; q < nq; ++q) {
        for (size_t j = 0; j < c; ++j) {
          const float* row = data.row(rng() % ng);
          float acc[16] = {};
          for (size_t i = 0; i + 16 <= data.cols; i += 16) {
            for (size_t l = 0; l < 16; ++l) acc[l] += row[i + l];
          }
          for (float a : acc) sink += a;
        }
      }
      const double ms =
          std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - s0).count() /
          double(nq);
      std::printf("streaming %zu candidates' vectors once: %.3f ms/query (%.1f MB)%s\n", c, ms,
                  double(c) * data.cols * sizeof(float) / 1e6, sink == 0.5f ? " " : "");
    }
  }
  std::printf("exact brute force (2 threads, plain C++): %.0f queries/s\n", double(nq) / exact_s);
  engine.reset();
  std::filesystem::remove_all(dir);
  return 0;
}
