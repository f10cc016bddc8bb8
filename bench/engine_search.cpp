// In-process search-by-code throughput of the query engine on an existing store: random codes,
// kNN, for a fixed time on `threads` threads. The figure the HTTP benchmark is compared with.
//
//   build/bench/engine_search DB [K] [SECONDS] [THREADS]
#include <atomic>
#include <chrono>
#include <cstdio>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "query/query.h"

int main(int argc, char** argv) {
  namespace Q = imsat::query;
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s DB [K] [SECONDS] [THREADS]\n", argv[0]);
    return 2;
  }
  const size_t k = argc > 2 ? std::stoul(argv[2]) : 10;
  const double seconds = argc > 3 ? std::stod(argv[3]) : 10;
  const int threads = argc > 4 ? std::stoi(argv[4]) : 2;
  auto engine = Q::QueryEngine::open(argv[1]);
  if (!engine.is_ok()) {
    std::fprintf(stderr, "engine_search: %s\n", engine.status().message().c_str());
    return 1;
  }
  const size_t bytes = static_cast<size_t>((*engine)->bits()) / 8;
  std::atomic<uint64_t> done{0};
  std::atomic<bool> stop{false};
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      std::mt19937_64 rng(static_cast<uint64_t>(t) + 1);
      Q::SearchRequest r;
      r.k = k;
      std::vector<uint8_t> code(bytes);
      uint64_t n = 0;
      while (!stop.load(std::memory_order_relaxed)) {
        for (auto& b : code) b = static_cast<uint8_t>(rng());
        auto res = (*engine)->search_code(code, r);
        if (!res.is_ok() || res->hits.size() != k) std::abort();
        ++n;
      }
      done += n;
    });
  }
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  stop = true;
  for (auto& t : pool) t.join();
  std::printf(
      "in-process search by code: %zu items, %d bits, k = %zu, %d threads: %.0f queries/s\n",
      (*engine)->info().items, (*engine)->bits(), k, threads, double(done.load()) / seconds);
  return 0;
}
