// `imsat ingest`: adds the codes files of the shards of a dataset (`imsat encode --shard I/N`) to a
// store in one atomic step (query::ingest_codes_files): a wrong shard is refused before anything
// is written, a shard already ingested is skipped, and an interrupted run leaves the store as it
// was, to be run again.
#include <cstdio>

#include "cli.h"
#include "query/indexing.h"

namespace imsat::cli {

void add_ingest(CLI::App& app) {
  struct IngestArgs {
    std::string db, key_prefix;
    std::vector<std::string> files;
    size_t batch = 200000;
    bool overwrite = false;
  };
  auto a = std::make_shared<IngestArgs>();
  CLI::App* cmd = app.add_subcommand(
      "ingest", "Add the codes files of encoded shards to a store in one atomic step");
  cmd->add_option("--db", a->db, "Code store folder (created when missing)")->required();
  cmd->add_option("files", a->files, "Codes files (imsat encode --shard I/N ...)")->required();
  cmd->add_option("--key-prefix", a->key_prefix, "Keys are this prefix followed by the row number");
  cmd->add_flag("--overwrite", a->overwrite,
                "Replace items whose keys the store already holds (refused otherwise)");
  cmd->add_option("--batch", a->batch, "Items per staged batch (memory while staging)")
      ->check(CLI::Range(size_t{1}, size_t{10000000}))
      ->capture_default_str();
  cmd->callback([a] {
    query::IngestRequest r;
    r.db = a->db;
    r.files = a->files;
    r.key_prefix = a->key_prefix;
    r.batch = a->batch;
    r.overwrite = a->overwrite;
    const query::IngestReport report = take(query::ingest_codes_files(r));
    size_t skipped = 0, pending = 0;
    for (const query::IngestReport::Shard& s : report.shards) {
      if (s.already_done) {
        ++skipped;
        std::fprintf(stderr, "imsat: %s (shard %s) was already ingested; skipped\n", s.path.c_str(),
                     s.shard.c_str());
      } else {
        ++pending;
        std::fprintf(stderr, "imsat: ingested %s (shard %s): %zu items%s\n", s.path.c_str(),
                     s.shard.c_str(), s.rows - s.done_before,
                     s.done_before > 0 ? " (resumed)" : "");
      }
    }
    std::fprintf(stderr,
                 "imsat: %zu items added from %zu shard file(s) in one atomic step, %zu skipped; "
                 "the store holds %zu items\n",
                 report.added, pending, skipped, report.store_items);
  });
}

}  // namespace imsat::cli
