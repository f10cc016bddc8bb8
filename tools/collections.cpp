// `imsat collections list|create|drop` and `imsat snapshot create|list|restore`: managing the
// collections of a data directory and their snapshots offline (no server running on it).
#include "query/collections.h"

#include <cstdio>
#include <ctime>

#include "cli.h"
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

void add_collections_commands(CLI::App& app) {
  struct Args {
    std::string data_dir, name, model;
    int bits = 0, tables = 0;
    size_t expected = 1000000;
    bool json = false;
  };
  auto a = std::make_shared<Args>();
  CLI::App* cmd = app.add_subcommand(
      "collections", "List, create or drop the collections of a data directory (offline)");
  cmd->require_subcommand(1);
  CLI::App* list = cmd->add_subcommand("list", "Every collection: name, bits, items, model");
  CLI::App* create = cmd->add_subcommand("create", "Create an empty collection");
  CLI::App* drop = cmd->add_subcommand("drop", "Remove a collection and its snapshots");
  for (CLI::App* sub : {list, create, drop}) {
    sub->add_option("--data-dir", a->data_dir, "Data directory")->required();
  }
  for (CLI::App* sub : {create, drop}) {
    sub->add_option("--name", a->name, "Collection name (letters, digits, - and _)")->required();
  }
  create->add_option("--model", a->model, "Hash model copied into the collection");
  create->add_option("--bits", a->bits, "Code length (without --model)")
      ->check(code_bits_validator());
  create->add_option("--tables", a->tables, "Multi-index tables (0 = chosen)");
  create->add_option("--expected-items", a->expected, "Sizes the default number of tables");
  list->add_flag("--json", a->json, "JSON on stdout");
  list->callback([a] {
    auto catalog = take(query::Catalog::open(a->data_dir));
    nlohmann::json out = nlohmann::json::array();
    for (const auto& c : catalog->list()) {
      const index::StoreInfo info = c->engine().info();
      const learn::Model* m = c->engine().model();
      out.push_back({{"name", c->name()},
                     {"bits", info.bits},
                     {"items", info.items},
                     {"model_fingerprint",
                      m != nullptr ? nlohmann::json(m->fingerprint()) : nlohmann::json()},
                     {"indexed_fields", c->engine().indexed_fields()}});
      if (!a->json) {
        std::printf("%-24s %5d bits %12zu items  %s\n", c->name().c_str(), info.bits, info.items,
                    m != nullptr ? ("model " + m->fingerprint()).c_str() : "code-only");
      }
    }
    if (a->json) print_json_line(query::dump_json(out));
    if (!a->json && out.empty()) std::printf("(no collections in %s)\n", a->data_dir.c_str());
  });
  create->callback([a] {
    if (a->model.empty() && a->bits == 0) throw UsageError("give --bits or --model");
    auto catalog = take(query::Catalog::open(a->data_dir));
    query::CollectionSpec spec;
    spec.bits = a->bits;
    spec.model_path = a->model;
    spec.tables = a->tables;
    spec.expected_items = a->expected;
    const auto c = take(catalog->create(a->name, spec));
    std::fprintf(stderr, "imsat: created collection '%s' (%d bits%s) in %s\n", c->name().c_str(),
                 c->engine().bits(), c->model_path().empty() ? ", code-only" : "",
                 a->data_dir.c_str());
  });
  drop->callback([a] {
    auto catalog = take(query::Catalog::open(a->data_dir));
    check(catalog->drop(a->name));
    catalog.reset();  // the folder goes with the last reference
    std::fprintf(stderr, "imsat: dropped collection '%s'\n", a->name.c_str());
  });
}

void add_snapshot_commands(CLI::App& app) {
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
    take(query::recover_data_dir(a->data_dir));  // an interrupted restore holds snapshots
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

}  // namespace

void add_collections(CLI::App& app) {
  add_collections_commands(app);
  add_snapshot_commands(app);
}

}  // namespace imsat::cli
