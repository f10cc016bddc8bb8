// Filter, scroll, count and snapshot benchmarks, over one durable store of N = 1e6
// uniform random 64-bit codes whose metadata holds {"bucket": b} (an indexed field) and
// {"shade": b} (the same value, not indexed), b from 0 to 999 scattered over the items by a hash
// of the item number. Cases:
//   FilteredKnn/none                     k = 10, no filter (the reference)
//   FilteredKnn/<field>/<pct>/<cache>    k = 10 with {"bucket" or "shade": {"lt": ...}} selecting
//                                        pct % of the items; cache "cached" repeats one filter
//                                        (its selection is reused), "fresh" changes the filter
//                                        text every query so it is evaluated every time
//   Count/<field>/<pct>                  an exact count, evaluated fresh each time
//   Scroll/<field>/<pct>                 a whole filtered scroll in pages of 1,000 (items/s)
//   Snapshot                             a checkpoint of the store (hard links; one iteration)
// Single thread; queries/s as items_per_second.
#include <benchmark/benchmark.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "index/code_store.h"
#include "index/metadata_filter.h"

namespace {

namespace fs = std::filesystem;
using imsat::index::CodeStore;

constexpr size_t kItems = 1000000;
constexpr size_t kQueries = 1000;

struct Fixture {
  std::string dir;
  std::unique_ptr<CodeStore> store;
  std::vector<std::vector<uint8_t>> queries;
  ~Fixture() {
    store.reset();
    fs::remove_all(dir);
  }
};

Fixture& fixture() {
  static Fixture* f = [] {
    auto* x = new Fixture();
    std::string tmpl = (fs::temp_directory_path() / "imsat-filter-XXXXXX").string();
    if (mkdtemp(tmpl.data()) == nullptr) std::abort();
    x->dir = tmpl;
    imsat::index::StoreOptions o;
    o.bits = 64;
    o.expected_items = kItems;
    o.sync_writes = false;
    auto opened = CodeStore::open(x->dir + "/db", o);
    if (!opened.is_ok()) {
      std::fprintf(stderr, "%s\n", opened.status().to_string().c_str());
      std::abort();
    }
    x->store = std::move(opened).value();
    if (!x->store->index_field("bucket").is_ok()) std::abort();
    std::mt19937_64 rng(1);
    auto next = [&](size_t i, imsat::index::Item* it) {
      if (i >= kItems) return false;
      it->key = std::to_string(i);
      const uint64_t code = rng();
      it->code.assign(reinterpret_cast<const uint8_t*>(&code),
                      reinterpret_cast<const uint8_t*>(&code) + 8);
      // Buckets scattered over the insertion order (as a real field's values are).
      const std::string v = std::to_string((i * 0x9E3779B97F4A7C15ull >> 32) % 1000);
      it->metadata = "{\"bucket\":" + v + ",\"shade\":" + v + "}";
      return true;
    };
    const imsat::Status s = x->store->bulk_load("bench", next, 100000, nullptr, true);
    if (!s.is_ok()) {
      std::fprintf(stderr, "%s\n", s.to_string().c_str());
      std::abort();
    }
    for (size_t q = 0; q < kQueries; ++q) {
      const uint64_t code = rng();
      x->queries.emplace_back(reinterpret_cast<const uint8_t*>(&code),
                              reinterpret_cast<const uint8_t*>(&code) + 8);
    }
    return x;
  }();
  return *f;
}

// {"must": [{"key": field, "range": {"lt": pct * 10}}]}, with a no-op lower bound that makes the
// text differ per `salt` (so a fresh evaluation cannot reuse a cached selection).
imsat::index::MetadataFilter filter(const std::string& field, double pct, size_t salt) {
  const std::string text = "{\"must\": [{\"key\": \"" + field +
                           "\", \"range\": {\"lt\": " + std::to_string(pct * 10) + ", \"gte\": -" +
                           std::to_string(salt + 1) + "}}]}";
  auto f = imsat::index::parse_metadata_filter(text);
  if (!f.is_ok()) {
    std::fprintf(stderr, "%s: %s\n", text.c_str(), f.status().to_string().c_str());
    std::abort();
  }
  return std::move(f).value();
}

void BM_Knn(benchmark::State& state, std::string field, double pct, bool fresh) {
  Fixture& f = fixture();
  size_t q = 0;
  const imsat::index::MetadataFilter same =
      field.empty() ? imsat::index::MetadataFilter{} : filter(field, pct, 0);
  size_t matches = 0;
  for (auto _ : state) {
    CodeStore::SearchOptions o;
    o.k = 10;
    if (!field.empty()) {
      auto sel = f.store->select(fresh ? filter(field, pct, q) : same, /*for_search=*/true);
      if (!sel.is_ok()) state.SkipWithError(sel.status().to_string().c_str());
      o.selection = *sel;
      matches = (*sel)->count;
    }
    auto hits = f.store->search(f.queries[q++ % kQueries], o);
    if (!hits.is_ok() || hits->size() != 10) state.SkipWithError("search failed");
    benchmark::DoNotOptimize(hits->data());
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
  state.counters["matches"] = static_cast<double>(matches);
}

void BM_Count(benchmark::State& state, std::string field, double pct) {
  Fixture& f = fixture();
  size_t q = 0;
  for (auto _ : state) {
    auto sel = f.store->select(filter(field, pct, q++));
    if (!sel.is_ok()) state.SkipWithError(sel.status().to_string().c_str());
    benchmark::DoNotOptimize((*sel)->count);
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
}

void BM_Scroll(benchmark::State& state, std::string field, double pct) {
  Fixture& f = fixture();
  size_t items = 0;
  for (auto _ : state) {
    auto sel = f.store->select(filter(field, pct, 0));
    uint64_t after = 0;
    while (true) {
      uint64_t last = 0;
      auto page = f.store->scroll(after, 1000, &last, sel->get());
      if (!page.is_ok()) state.SkipWithError(page.status().to_string().c_str());
      items += page->size();
      if (page->size() < 1000) break;
      after = last;
    }
  }
  state.SetItemsProcessed(static_cast<int64_t>(items));
}

void BM_Snapshot(benchmark::State& state) {
  Fixture& f = fixture();
  size_t n = 0;
  for (auto _ : state) {
    const std::string dir = f.dir + "/snap" + std::to_string(n++);
    const imsat::Status s = f.store->checkpoint(dir);
    if (!s.is_ok()) state.SkipWithError(s.to_string().c_str());
    state.PauseTiming();
    fs::remove_all(dir);
    state.ResumeTiming();
  }
}

int register_all() {
  benchmark::RegisterBenchmark("FilteredKnn/none", BM_Knn, std::string(), 100.0, false)
      ->UseRealTime();
  for (const std::string field : {"bucket", "shade"}) {
    for (double pct : {50.0, 10.0, 1.0, 0.1}) {
      const std::string p = pct < 1 ? "0.1" : std::to_string(static_cast<int>(pct));
      for (bool fresh : {false, true}) {
        if (field == "shade" && !fresh) continue;  // cached is the same for either field
        benchmark::RegisterBenchmark(
            ("FilteredKnn/" + field + "/" + p + "/" + (fresh ? "fresh" : "cached")).c_str(), BM_Knn,
            field, pct, fresh)
            ->UseRealTime();
      }
      benchmark::RegisterBenchmark(("Count/" + field + "/" + p).c_str(), BM_Count, field, pct)
          ->UseRealTime();
      if (field == "bucket") {
        benchmark::RegisterBenchmark(("Scroll/" + field + "/" + p).c_str(), BM_Scroll, field, pct)
            ->UseRealTime()
            ->Unit(benchmark::kMillisecond);
      }
    }
  }
  benchmark::RegisterBenchmark("Snapshot", BM_Snapshot)
      ->Iterations(3)
      ->UseRealTime()
      ->Unit(benchmark::kMillisecond);
  return 0;
}
const int registered = register_all();

}  // namespace

BENCHMARK_MAIN();
