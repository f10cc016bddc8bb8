// `imsat inspect`: a code store's schema and code health (bit balance and entropy, pairwise bit
// mutual information, bucket occupancy, distances), to spot collapsed bits and choose r.
#include <cstdio>

#include "cli.h"
#include "query/engine.h"
#include "query/json_format.h"
#include "query/store_admin.h"

namespace imsat::cli {

void add_inspect(CLI::App& app) {
  struct InspectArgs {
    std::string db;
    size_t samples = 100;
    bool json = false, verify = false;
  };
  auto a = std::make_shared<InspectArgs>();
  CLI::App* cmd = app.add_subcommand("inspect", "Print a code store's schema and code health");
  cmd->add_option("--db", a->db, "Code store folder")->required();
  cmd->add_option("--samples", a->samples, "Items sampled for the distance histogram")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_flag("--verify", a->verify, "Also check that the store's records agree (reads it all)");
  cmd->add_flag("--json", a->json, "JSON on stdout");
  cmd->callback([a] {
    std::unique_ptr<query::QueryEngine> engine =
        take(query::QueryEngine::open(a->db, "", /*read_only=*/true));
    if (a->verify) check(engine->verify());
    const auto info = engine->info();
    const query::StoreHealth health = take(engine->health(100000, a->samples));
    if (a->json) {
      nlohmann::json j = query::store_info_json(info);
      j["store"] = a->db;
      j["kernel"] = query::hamming_kernel_name();
      j["health"] = query::health_json(health);
      if (a->verify) j["verified"] = true;
      print_json_line(query::dump_json(j));
      return;
    }
    std::printf(
        "store: %s\nformat version: %u\nbits: %d\nitems: %zu\nmulti-index tables: %d\n"
        "model fingerprint: %s\nmetric: %s\nmemory: %.1f MiB\nopened from: %s\nkernel: %s\n",
        a->db.c_str(), info.format_version, info.bits, info.items, info.tables,
        info.model_fingerprint.empty() ? "(none)" : info.model_fingerprint.c_str(),
        info.metric.empty() ? "l2" : info.metric.c_str(),
        static_cast<double>(info.memory_bytes) / (1 << 20), info.open_source.c_str(),
        query::hamming_kernel_name().c_str());
    if (a->verify) std::printf("verified: codes, keys and buckets agree\n");
    const query::CodeHealth& h = health.health;
    if (h.rows == 0) {
      std::printf("\n(no items)\n");
      return;
    }
    std::printf(
        "\nbit balance (fraction of ones over %zu items; near 0 or 1 means a collapsed "
        "bit):\n",
        h.rows);
    for (size_t b = 0; b < h.balance.size(); ++b) {
      std::printf("  bit %4zu  %.3f%s\n", b, h.balance[b],
                  h.balance[b] < 0.05 || h.balance[b] > 0.95 ? "  <- collapsed" : "");
    }
    std::printf(
        "\ncode health over %zu items: bit entropy mean %.3f, min %.3f bits; pairwise bit "
        "mutual information mean %.4f, max %.4f bits (bits %d and %d)%s\n",
        h.rows, h.mean_entropy, h.min_entropy, h.mean_pair_mi, h.max_pair_mi, h.max_pair_a,
        h.max_pair_b, h.max_pair_mi > 0.5 ? "  <- redundant pair" : "");
    std::printf("\nbucket occupancy per table (items per non-empty bucket: buckets):\n");
    for (size_t t = 0; t < health.bucket_occupancy.size(); ++t) {
      const std::vector<uint64_t>& occ = health.bucket_occupancy[t];
      std::printf("  table %zu:", t);
      for (size_t c = 1; c < occ.size(); ++c) {
        if (occ[c] > 0) {
          std::printf(" %zu%s:%llu", c, c + 1 == occ.size() ? "+" : "",
                      static_cast<unsigned long long>(occ[c]));
        }
      }
      std::printf("\n");
    }
    std::printf("\nHamming distances from %zu sampled items (distance: share, cumulative):\n",
                a->samples);
    uint64_t total = 0, cum = 0;
    for (uint64_t n : health.distance_histogram) total += n;
    for (size_t d = 0; d < health.distance_histogram.size(); ++d) {
      const uint64_t n = health.distance_histogram[d];
      if (n == 0) continue;
      cum += n;
      std::printf("  %4zu  %.5f  %.5f\n", d, double(n) / double(total),
                  double(cum) / double(total));
    }
  });
}

}  // namespace imsat::cli
