// `imsat index`: bulk-indexes a dataset (with --model) or a codes file into a code store.
#include <cstdio>
#include <memory>

#include "cli.h"
#include "data_options.h"
#include "progress.h"
#include "query/indexing.h"

namespace imsat::cli {
namespace {

struct IndexArgs {
  query::IndexRequest request;
  DataOptions images;
  io::ImportReport import_report;
  int thumbnail_side = 96;
  bool quiet = false;
};

// The command itself, once its flags are parsed.
void run_index(const std::shared_ptr<IndexArgs>& a) {
  if (a->request.data.empty() && a->images.manifest.empty()) {
    throw UsageError("give --data or --manifest");
  }
  a->request.images = image_import(a->images, nullptr);
  a->request.images.thumbnail_side = a->thumbnail_side;
  a->request.import_report = &a->import_report;
  const ProgressBar total("imsat", true);  // only its clock
  auto encode_bar = std::make_unique<ProgressBar>("encode", a->quiet);
  auto index_bar = std::make_unique<ProgressBar>("index", a->quiet);
  size_t encoded = 0;
  a->request.progress = [&](const char* stage, size_t done, size_t total) {
    if (std::string(stage) == "encode") {
      encode_bar->items(done, total);
      encoded = done;
      return;
    }
    if (encoded > 0) {
      encode_bar->finish_items(encoded);
      encoded = 0;
      index_bar = std::make_unique<ProgressBar>("index", a->quiet);
    }
    index_bar->items(done, total);
  };
  // Image files: what was skipped, and why, whether the command succeeded or not.
  const auto report_import = [a] {
    const io::ImportReport& imported = a->import_report;
    if (imported.read + imported.skipped_total() == 0) return;
    for (const std::string& line : imported.skip_lines) {
      std::fprintf(stderr, "imsat: skipped %s\n", line.c_str());
    }
    std::fprintf(stderr, "imsat: %s\n", imported.summary().c_str());
  };
  Result<query::IndexReport> indexed = query::index_dataset(a->request);
  report_import();
  const query::IndexReport report = take(std::move(indexed));
  if (report.already_done) {
    std::fprintf(stderr, "imsat: %s is already indexed in %s (job %s)\n", a->request.data.c_str(),
                 a->request.db.c_str(), report.job.c_str());
    return;
  }
  if (report.done_before > 0) {
    std::fprintf(stderr, "imsat: resumed job %s at item %zu of %zu\n", report.job.c_str(),
                 report.done_before, report.rows);
  }
  index_bar->finish_items(report.indexed);
  if (!a->quiet) {
    const double secs = total.seconds();
    std::fprintf(stderr,
                 "imsat: indexed %zu items into %s (%zu in the store) in %.2f s, %.0f items/s "
                 "end to end (reading %.2f s)\n",
                 report.indexed, a->request.db.c_str(), report.store_items, secs,
                 double(report.indexed) / secs, report.read_seconds);
  }
}

}  // namespace

void add_index(CLI::App& app) {
  auto a = std::make_shared<IndexArgs>();
  query::IndexRequest& r = a->request;
  CLI::App* cmd = app.add_subcommand(
      "index", "Bulk-index a dataset (with --model) or a codes file into a code store");
  cmd->add_option("--model", r.model, "Hash model that encodes --data (not for a codes file)");
  cmd->add_option(
      "--data", r.data,
      "Dataset (IDX file or folder, .npy/.npz, fvecs/bvecs, CSV, a folder of image files) or "
      "codes file");
  cmd->add_option("--labels", r.labels, "Labels for --data: an IDX label file or a 1-D .npy");
  cmd->add_option("--db", r.db, "Code store folder (created when missing)")->required();
  cmd->add_option("--key-prefix", r.items.key_prefix,
                  "Keys are this prefix followed by the row number");
  cmd->add_option("--batch", r.batch,
                  "Items per atomic batch (0: 50,000, or 2,048 for image files)")
      ->check(CLI::Range(size_t{0}, size_t{10000000}))
      ->capture_default_str();
  cmd->add_option("--tables", r.tables, "Multi-index tables when creating (0 = automatic)")
      ->check(CLI::Range(0, 128));
  cmd->add_option("--job", r.job,
                  "Name of the resumable bulk job (default: from the model, the source file and "
                  "the options)");
  cmd->add_flag("--with-vectors", r.items.with_vectors,
                "Also store the raw vectors (for --rerank exact; needs --model)");
  cmd->add_flag("--overwrite", r.overwrite,
                "Replace items whose keys the store already holds from another source");
  add_image_options(cmd, &a->images, /*pipeline_flags=*/false);
  cmd->add_option("--thumbnail-size", a->thumbnail_side,
                  "Image files: keep a JPEG thumbnail this many pixels on its longest side (0: "
                  "none), shown by the web page and GET /v1/items/{key}/image")
      ->check(CLI::Range(0, 512))
      ->capture_default_str();
  cmd->add_flag("--quiet", a->quiet, "No progress output");
  add_config_options(cmd, /*environment=*/false);
  cmd->callback([a, cmd] {
    if (print_config_if_asked(cmd)) return;
    run_index(a);
  });
}

}  // namespace imsat::cli
