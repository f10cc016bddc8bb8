// Scale benchmark: builds a durable store of N random 64-bit codes with string keys
// ("item-<i>") and labels (i % 10) by bulk load, then reports in one table: bulk-load codes/s,
// the store's size on disk, open time (warm, and cold when the page cache can be dropped),
// resident memory per item after opening, radius-2 queries/s and p99 latency through the
// multi-index, and kNN k = 10 queries/s (multi-index; scan for comparison; batches of 100).
// Single thread.
//
//   scale_bench N [--dir DIR] [--keep] [--seed S] [--cache-mb 64]
//
// Radius queries are stored codes with one or two bits flipped (so each has neighbours); kNN
// queries are fresh random codes.
#include <malloc.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "index/code_store.h"

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using imsat::index::CodeStore;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

size_t resident_bytes() {
  std::ifstream in("/proc/self/statm");
  size_t pages = 0, resident = 0;
  in >> pages >> resident;
  return resident * static_cast<size_t>(sysconf(_SC_PAGESIZE));
}

uint64_t folder_bytes(const fs::path& dir) {
  uint64_t total = 0;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    if (e.is_regular_file()) total += e.file_size();
  }
  return total;
}

bool drop_page_cache() {
  sync();
  std::ofstream f("/proc/sys/vm/drop_caches");
  if (!f) return false;
  f << "3\n";
  return static_cast<bool>(f);
}

uint64_t code_of(uint64_t seed, size_t i) {
  // splitmix64 of (seed, i): the same codes can be regenerated for the queries.
  uint64_t z = seed * 0x9E3779B97F4A7C15ull + i + 1;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

std::unique_ptr<CodeStore> open_store(const std::string& path, size_t n, size_t cache_mb) {
  imsat::index::StoreOptions o;
  o.bits = 64;
  o.expected_items = n;
  o.cache_mb = cache_mb;
  auto s = CodeStore::open(path, o);
  if (!s.is_ok()) {
    std::fprintf(stderr, "scale_bench: %s\n", s.status().to_string().c_str());
    std::exit(1);
  }
  return std::move(s).value();
}

double percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())))];
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: scale_bench N [--dir DIR] [--keep] [--seed S] [--cache-mb MB]\n");
    return 2;
  }
  const size_t n = std::stoull(argv[1]);
  std::string dir;
  bool keep = false;
  uint64_t seed = 1;
  size_t cache_mb = 64;
  for (int i = 2; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--dir" && i + 1 < argc) {
      dir = argv[++i];
    } else if (a == "--keep") {
      keep = true;
    } else if (a == "--seed" && i + 1 < argc) {
      seed = std::stoull(argv[++i]);
    } else if (a == "--cache-mb" && i + 1 < argc) {
      cache_mb = std::stoull(argv[++i]);
    } else {
      std::fprintf(stderr, "scale_bench: unknown argument %s\n", a.c_str());
      return 2;
    }
  }
  if (dir.empty()) {
    std::string tmpl = (fs::temp_directory_path() / "imsat-scale-XXXXXX").string();
    if (mkdtemp(tmpl.data()) == nullptr) return 1;
    dir = tmpl;
  }
  const std::string path = dir + "/db";
  std::printf("scale_bench N=%zu seed=%llu cache-mb=%zu dir=%s\n", n,
              static_cast<unsigned long long>(seed), cache_mb, dir.c_str());

  // 1. Bulk load (durable when bulk_load returns: every batch is an atomic SST ingestion).
  double load_s = 0, close_s = 0;
  if (!fs::exists(path)) {
    auto store = open_store(path, n, cache_mb);
    const auto t0 = Clock::now();
    size_t last_report = 0;
    auto next = [&](size_t i, imsat::index::Item* it) {
      if (i >= n) return false;
      it->key = "item-" + std::to_string(i);
      const uint64_t c = code_of(seed, i);
      it->code.assign(reinterpret_cast<const uint8_t*>(&c),
                      reinterpret_cast<const uint8_t*>(&c) + 8);
      it->tag = static_cast<int32_t>(i % 10);
      return true;
    };
    auto progress = [&](size_t done) {
      if (done - last_report >= n / 10) {
        std::fprintf(stderr, "  loaded %zu (%.0f codes/s)\n", done, done / seconds_since(t0));
        last_report = done;
      }
    };
    const imsat::Status s = store->bulk_load("scale", next, 200000, progress, true);
    load_s = seconds_since(t0);
    if (!s.is_ok()) {
      std::fprintf(stderr, "scale_bench: %s\n", s.to_string().c_str());
      return 1;
    }
    const auto t1 = Clock::now();
    store.reset();  // flush and save the arrays
    close_s = seconds_since(t1);
  }
  malloc_trim(0);
  const uint64_t disk = folder_bytes(path);

  // 2. Open: cold (page cache dropped, when allowed) and warm.
  double cold_s = -1;
  if (drop_page_cache()) {
    const auto t0 = Clock::now();
    auto store = open_store(path, n, cache_mb);
    cold_s = seconds_since(t0);
  }
  malloc_trim(0);
  const size_t rss_before = resident_bytes();
  const auto t0 = Clock::now();
  auto store = open_store(path, n, cache_mb);
  const double warm_s = seconds_since(t0);
  const imsat::index::StoreInfo info = store->info();
  malloc_trim(0);
  const size_t rss_after = resident_bytes();

  // 3. Radius 2 through the multi-index: stored codes with 1-2 bits flipped.
  std::mt19937_64 rng(seed + 7);
  const size_t queries = 2000;
  std::vector<double> lat;
  size_t hits_total = 0;
  auto q0 = Clock::now();
  for (size_t q = 0; q < queries; ++q) {
    uint64_t c = code_of(seed, rng() % n);
    c ^= uint64_t{1} << (rng() % 64);
    if (q % 2) c ^= uint64_t{1} << (rng() % 64);
    std::vector<uint8_t> code(reinterpret_cast<const uint8_t*>(&c),
                              reinterpret_cast<const uint8_t*>(&c) + 8);
    CodeStore::SearchOptions o;
    o.radius = 2;
    const auto t = Clock::now();
    auto hits = store->search(code, o);
    lat.push_back(seconds_since(t) * 1000);
    if (!hits.is_ok()) return 1;
    hits_total += hits->size();
  }
  const double radius_qps = queries / seconds_since(q0);

  // 4. kNN k = 10: multi-index (the store's choice) and the linear scan.
  auto knn = [&](bool mih, size_t count, std::vector<double>* ms) {
    std::mt19937_64 r2(seed + 11);
    const auto start = Clock::now();
    for (size_t q = 0; q < count; ++q) {
      const uint64_t c = r2();
      std::vector<uint8_t> code(reinterpret_cast<const uint8_t*>(&c),
                                reinterpret_cast<const uint8_t*>(&c) + 8);
      CodeStore::SearchOptions o;
      o.k = 10;
      o.use_multi_index = mih;
      const auto t = Clock::now();
      auto hits = store->search(code, o);
      if (ms != nullptr) ms->push_back(seconds_since(t) * 1000);
      if (!hits.is_ok() || hits->size() != 10) std::exit(1);
    }
    return count / seconds_since(start);
  };
  // Both runs use the same queries; a first pass warms the block cache the hits' keys are read
  // through, so neither side pays for cold reads.
  const size_t knn_queries = n >= 50000000 ? 20 : 200;
  knn(false, knn_queries, nullptr);
  std::vector<double> knn_lat;
  const double knn_mih_qps = knn(true, knn_queries, &knn_lat);
  const double knn_scan_qps = knn(false, knn_queries, nullptr);
  // The same kind of queries in batches of 100 (CodeStore::search_batch: those the multi-index
  // would scan share one pass over the codes), as the HTTP API's 'queries' batches run them.
  const size_t batch = 100, batches = n >= 50000000 ? 2 : 5;
  double knn_batch_qps = 0;
  {
    std::mt19937_64 r3(seed + 13);
    const auto start = Clock::now();
    for (size_t b = 0; b < batches; ++b) {
      std::vector<std::vector<uint8_t>> codes(batch);
      for (auto& code : codes) {
        const uint64_t c = r3();
        code.assign(reinterpret_cast<const uint8_t*>(&c), reinterpret_cast<const uint8_t*>(&c) + 8);
      }
      CodeStore::SearchOptions o;
      o.k = 10;
      auto hits = store->search_batch(codes, o);
      if (!hits.is_ok() || hits->size() != batch || (*hits)[0].size() != 10) std::exit(1);
    }
    knn_batch_qps = static_cast<double>(batch * batches) / seconds_since(start);
  }

  std::printf(
      "\n| N | bulk load (codes/s) | close (s) | disk (bytes/item) | open cold (s) | open warm "
      "(s) | opened from | RSS after open (bytes/item) | radius 2 q/s | radius 2 p99 (ms) "
      "| hits/query | kNN 10 MIH q/s (p99 ms) | kNN 10 scan q/s | kNN 10 batched q/s |\n");
  std::printf(
      "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n");
  char cold[32] = "n/a";
  if (cold_s >= 0) std::snprintf(cold, sizeof(cold), "%.1f", cold_s);
  char load[32] = "(existing)";
  if (load_s > 0) std::snprintf(load, sizeof(load), "%.0f", n / load_s);
  std::printf(
      "| %zu | %s | %.1f | %.1f | %s | %.1f | %s | %.1f | %.0f | %.2f | %.1f | %.0f (%.1f) | %.1f "
      "| %.0f |\n",
      n, load, close_s, static_cast<double>(disk) / n, cold, warm_s, info.open_source.c_str(),
      static_cast<double>(rss_after - std::min(rss_after, rss_before)) / n, radius_qps,
      percentile(lat, 0.99), static_cast<double>(hits_total) / queries, knn_mih_qps,
      percentile(knn_lat, 0.99), knn_scan_qps, knn_batch_qps);
  std::printf(
      "(RSS %zu MiB before opening, %zu MiB after; store memory_bytes %zu = %.1f bytes/item)\n",
      rss_before >> 20, rss_after >> 20, info.memory_bytes,
      static_cast<double>(info.memory_bytes) / n);
  store.reset();
  if (!keep) fs::remove_all(dir);
  return 0;
}
