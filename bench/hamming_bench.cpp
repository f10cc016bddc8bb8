// Raw scan throughput of each Hamming kernel: codes/s for one query over N codes.
#include <benchmark/benchmark.h>

#include <random>
#include <string>
#include <vector>

#include "index/hamming.h"

namespace {

void BM_Scan(benchmark::State& state, const imsat::index::HammingKernel* kernel) {
  const size_t bits = static_cast<size_t>(state.range(0));
  const size_t n = static_cast<size_t>(state.range(1));
  const size_t words = (bits + 63) / 64;
  std::mt19937_64 rng(7);
  std::vector<uint64_t> codes(n * words), query(words);
  for (auto& w : codes) w = rng();
  for (auto& w : query) w = rng();
  std::vector<uint16_t> out(n);
  for (auto _ : state) {
    kernel->scan(query.data(), codes.data(), n, words, out.data());
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * n));
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * n * words * 8));
  state.SetLabel(std::string(kernel->name));
}

int register_all() {
  for (const imsat::index::HammingKernel* k : imsat::index::available_kernels()) {
    benchmark::RegisterBenchmark(("Scan/" + std::string(k->name)).c_str(), BM_Scan, k)
        ->ArgsProduct({{64, 128, 256, 512}, {1 << 16, 1 << 22}});
  }
  return 0;
}
const int registered = register_all();

}  // namespace

BENCHMARK_MAIN();
