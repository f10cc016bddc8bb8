// `imsat ingest`: adds the codes files of the shards of a dataset (`imsat encode --shard I/N`) to a
// store. Every file is checked first (format, code length, model fingerprint against each other
// and the store, disjoint rows) so a wrong shard is refused before anything is written; then each
// shard is one resumable bulk job named after its content, so a shard already ingested is skipped
// and an interrupted one continues where it stopped.
#include <algorithm>
#include <cstdio>
#include <filesystem>

#include "cli.h"
#include "index/code_store.h"
#include "query/codes_file.h"
#include "query/indexing.h"

namespace imsat::cli {

void add_ingest(CLI::App& app) {
  struct IngestArgs {
    std::string db, key_prefix;
    std::vector<std::string> files;
    size_t batch = 200000;
  };
  auto a = std::make_shared<IngestArgs>();
  CLI::App* cmd =
      app.add_subcommand("ingest", "Add the codes files of encoded shards to a store (resumable)");
  cmd->add_option("--db", a->db, "Code store folder (created when missing)")->required();
  cmd->add_option("files", a->files, "Codes files (imsat encode --shard I/N ...)")->required();
  cmd->add_option("--key-prefix", a->key_prefix, "Keys are this prefix followed by the row number");
  cmd->add_option("--batch", a->batch, "Items per atomic batch")
      ->check(CLI::Range(size_t{1}, size_t{10000000}))
      ->capture_default_str();
  cmd->callback([a] {
    struct Part {
      std::string path;
      query::CodesFile header;
    };
    std::vector<Part> parts;
    for (const std::string& path : a->files) {
      parts.push_back({path, take(query::read_codes_header(path))});
    }
    const query::CodesFile& first = parts.front().header;
    std::string store_fingerprint;
    if (std::filesystem::exists(a->db)) {
      index::StoreOptions o;
      o.read_only = true;
      o.create_if_missing = false;
      auto store = take(index::CodeStore::open(a->db, o));
      store_fingerprint = store->info().model_fingerprint;
      if (store->bits() != first.bits) {
        throw std::runtime_error(a->db + " holds " + std::to_string(store->bits()) +
                                 "-bit codes; " + parts.front().path + " has " +
                                 std::to_string(first.bits));
      }
    }
    for (const Part& p : parts) {
      if (p.header.bits != first.bits) {
        throw std::runtime_error(p.path + " has " + std::to_string(p.header.bits) + "-bit codes, " +
                                 parts.front().path + " " + std::to_string(first.bits));
      }
      const std::string& want = store_fingerprint.empty() ? first.fingerprint : store_fingerprint;
      if (p.header.fingerprint != want) {
        throw std::runtime_error(
            p.path + " was encoded by model " + p.header.fingerprint + ", not by " + want + " (" +
            (store_fingerprint.empty() ? parts.front().path : a->db) + "); nothing was written");
      }
    }
    std::sort(parts.begin(), parts.end(),
              [](const Part& x, const Part& y) { return x.header.first_row < y.header.first_row; });
    for (size_t i = 1; i < parts.size(); ++i) {
      const query::CodesFile& prev = parts[i - 1].header;
      if (parts[i].header.first_row < prev.first_row + prev.rows) {
        throw std::runtime_error(
            parts[i].path + " overlaps " + parts[i - 1].path + " (rows " +
            std::to_string(parts[i].header.first_row) + " and " + std::to_string(prev.first_row) +
            "-" + std::to_string(prev.first_row + prev.rows - 1) + "); nothing was written");
      }
    }
    size_t added = 0, skipped = 0;
    for (const Part& p : parts) {
      query::IndexRequest r;
      r.db = a->db;
      r.data = p.path;
      r.batch = a->batch;
      r.items.key_prefix = a->key_prefix;
      r.overwrite = true;  // shards are disjoint; a resumed shard rewrites its own keys only
      const query::IndexReport report = take(query::index_dataset(r));
      if (report.already_done) {
        ++skipped;
        std::fprintf(stderr, "imsat: %s (shard %s) was already ingested; skipped\n", p.path.c_str(),
                     p.header.shard.c_str());
      } else {
        added += report.indexed;
        std::fprintf(stderr, "imsat: ingested %s (shard %s): %zu items%s\n", p.path.c_str(),
                     p.header.shard.c_str(), report.indexed,
                     report.done_before > 0 ? " (resumed)" : "");
      }
    }
    std::fprintf(stderr, "imsat: %zu items added from %zu shard file(s), %zu skipped\n", added,
                 parts.size() - skipped, skipped);
  });
}

}  // namespace imsat::cli
