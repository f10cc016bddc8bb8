// `imsat snapshot create|list|restore|delete`: snapshots of a collection of a data directory,
// offline (no server running on it).
#include <cstdio>
#include <ctime>

#include "cli.h"
#include "query/collections.h"
#include "query/json_format.h"

namespace imsat::cli {
namespace {

std::string when(int64_t unix_seconds) {
  const std::time_t t = static_cast<std::time_t>(unix_seconds);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%d %H:%M:%S UTC", &tm);
  return buf;
}

nlohmann::json snapshot_json(const query::SnapshotInfo& s) {
  return {{"id", s.id},
          {"path", s.path},
          {"bytes", s.bytes},
          {"created_unix", s.created_unix},
          {"has_model", s.has_model}};
}

}  // namespace

void add_snapshot(CLI::App& app) {
  struct Args {
    std::string data_dir, collection, id, as;
    bool force = false, json = false;
  };
  auto a = std::make_shared<Args>();
  CLI::App* cmd = app.add_subcommand(
      "snapshot", "Create, list, restore or delete snapshots of a collection (offline)");
  cmd->require_subcommand(1);
  CLI::App* create = cmd->add_subcommand("create", "A consistent copy (RocksDB checkpoint)");
  CLI::App* list = cmd->add_subcommand("list", "The collection's snapshots");
  CLI::App* restore =
      cmd->add_subcommand("restore", "Restore a snapshot as a new collection (or --force)");
  CLI::App* remove = cmd->add_subcommand("delete", "Delete a snapshot");
  for (CLI::App* sub : {create, list, restore, remove}) {
    sub->add_option("--data-dir", a->data_dir, "Data directory")->required();
    sub->add_option("--collection", a->collection, "Collection name")->required();
  }
  remove->add_option("--snapshot", a->id, "Snapshot id (imsat snapshot list)")->required();
  remove->callback([a] {
    auto catalog = take(query::Catalog::open(a->data_dir));
    check(catalog->delete_snapshot(a->collection, a->id));
    std::fprintf(stderr, "imsat: deleted snapshot %s of '%s'\n", a->id.c_str(),
                 a->collection.c_str());
  });
  restore->add_option("--snapshot", a->id, "Snapshot id (imsat snapshot list)")->required();
  restore->add_option("--as", a->as, "Name of the restored collection (default: --collection)");
  restore->add_flag("--force", a->force, "Replace an existing collection of that name");
  list->add_flag("--json", a->json, "JSON on stdout");
  create->add_flag("--json", a->json, "JSON on stdout");
  create->callback([a] {
    auto catalog = take(query::Catalog::open(a->data_dir));
    const query::SnapshotInfo s = take(catalog->create_snapshot(a->collection));
    if (a->json) {
      print_json_line(query::dump_json(snapshot_json(s)));
    } else {
      std::printf("%s  %s  %.1f MiB\n", s.id.c_str(), s.path.c_str(), s.bytes / 1048576.0);
    }
  });
  list->callback([a] {
    const std::string folder = take(query::collection_folder(a->data_dir, a->collection));
    // An interrupted restore holds snapshots: finished first, unless a server uses the folder.
    take(query::recover_data_dir_if_unused(a->data_dir));
    const auto snapshots = take(query::list_snapshots(folder + "/snapshots"));
    nlohmann::json out = nlohmann::json::array();
    for (const auto& s : snapshots) {
      out.push_back(snapshot_json(s));
      if (!a->json) {
        std::printf("%s  %s  %10.1f MiB%s\n", s.id.c_str(), when(s.created_unix).c_str(),
                    s.bytes / 1048576.0, s.has_model ? "  with model" : "");
      }
    }
    if (a->json) print_json_line(query::dump_json(out));
    if (!a->json && snapshots.empty()) std::printf("(no snapshots)\n");
  });
  restore->callback([a] {
    const std::string to = a->as.empty() ? a->collection : a->as;
    if (to == a->collection && !a->force) {
      throw UsageError("restoring over collection '" + to +
                       "' replaces it: give --force, or --as NAME for a new collection");
    }
    check(query::restore_snapshot(a->data_dir, a->collection, a->id, to, a->force));
    std::fprintf(stderr, "imsat: restored snapshot %s of '%s' as collection '%s'\n", a->id.c_str(),
                 a->collection.c_str(), to.c_str());
  });
}

}  // namespace imsat::cli
