// `imsat collections list|create|drop`: managing the collections of a data directory offline (no
// server running on it).
#include "query/collections.h"

#include <cstdio>

#include "cli.h"
#include "query/json_format.h"

namespace imsat::cli {

void add_collections(CLI::App& app) {
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
      const query::StoreInfo info = c->engine().info();
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

}  // namespace imsat::cli
