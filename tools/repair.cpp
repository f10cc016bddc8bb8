// `imsat repair`: recovers what can be recovered of a damaged store, only when asked; keeps a copy
// of the damaged files and says exactly how many items were lost.
#include <cstdio>

#include "cli.h"
#include "query/json_format.h"
#include "query/store_admin.h"

namespace imsat::cli {

void add_repair(CLI::App& app) {
  struct RepairArgs {
    std::string db;
    bool json = false;
  };
  auto a = std::make_shared<RepairArgs>();
  CLI::App* cmd = app.add_subcommand(
      "repair", "Recover what can be recovered of a damaged store (a copy is kept)");
  cmd->add_option("--db", a->db, "Code store folder")->required();
  cmd->add_flag("--json", a->json, "JSON on stdout");
  cmd->callback([a] {
    const query::RepairReport r = take(query::repair_store(a->db));
    nlohmann::json j = {{"db", a->db}, {"backup", r.backup}, {"items_after", r.items_after}};
    if (r.items_before) {
      j["items_before"] = *r.items_before;
      j["items_lost"] = *r.items_before > r.items_after ? *r.items_before - r.items_after : 0;
    } else {
      j["items_before"] = nullptr;
      j["items_lost"] = nullptr;
    }
    if (a->json) {
      print_json_line(j.dump());
      return;
    }
    std::printf("repaired %s: %llu items recovered\n", a->db.c_str(),
                static_cast<unsigned long long>(r.items_after));
    if (r.items_before) {
      std::printf("items lost: %llu (the store had acknowledged %llu)\n",
                  static_cast<unsigned long long>(j["items_lost"].get<uint64_t>()),
                  static_cast<unsigned long long>(*r.items_before));
    } else {
      std::printf("items lost: unknown (no readable record of the count before the damage)\n");
    }
    std::printf("the damaged files are kept in %s\n", r.backup.c_str());
  });
}

}  // namespace imsat::cli
