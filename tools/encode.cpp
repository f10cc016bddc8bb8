// `imsat encode`: a dataset through a hash model to a codes file.
#include <cstdio>
#include <type_traits>

#include "cli.h"
#include "data_options.h"
#include "progress.h"
#include "query/codes_file.h"
#include "query/indexing.h"

namespace imsat::cli {
namespace {

learn::Dataset slice_rows(const learn::Dataset& d, size_t begin, size_t end) {
  learn::Dataset out;
  out.rows = end - begin;
  out.cols = d.cols;
  out.values.assign(d.values.begin() + static_cast<std::ptrdiff_t>(begin * d.cols),
                    d.values.begin() + static_cast<std::ptrdiff_t>(end * d.cols));
  auto part = [&](const auto& v) {
    using V = std::decay_t<decltype(v)>;
    return v.empty() ? V()
                     : V(v.begin() + static_cast<std::ptrdiff_t>(begin),
                         v.begin() + static_cast<std::ptrdiff_t>(end));
  };
  out.labels = part(d.labels);
  out.keys = part(d.keys);
  out.metadata = part(d.metadata);
  out.thumbnails = part(d.thumbnails);
  out.item_shape = d.item_shape;
  out.uint8_pixels = d.uint8_pixels;
  out.train_rows = d.train_rows > begin ? std::min(d.train_rows, end) - begin : 0;
  out.source = d.source;
  out.label_names = d.label_names;
  out.image_pipeline = d.image_pipeline;
  return out;
}

}  // namespace

void add_encode(CLI::App& app) {
  struct EncodeArgs {
    std::string model, out, shard;
    DataOptions data;
    bool quiet = false;
  };
  auto a = std::make_shared<EncodeArgs>();
  CLI::App* cmd = app.add_subcommand("encode", "Encode a dataset to a codes file");
  cmd->add_option("--model", a->model, "Trained hash model")->required();
  cmd->add_option(
      "--data", a->data.data,
      "Dataset: IDX file or folder, .npy/.npz, fvecs/bvecs, CSV, or a folder of image files");
  cmd->add_option("--labels", a->data.labels,
                  "IDX labels for an IDX image file (kept in the file)");
  add_image_options(cmd, &a->data, /*pipeline_flags=*/false);
  cmd->add_option("--out", a->out, "Codes file to write")->required();
  cmd->add_option("--shard", a->shard,
                  "I/N: encode only the I-th (0-based) of N equal parts of the rows, in row "
                  "(sorted file) order, for splitting the work over a job array; the file "
                  "records the part, and `imsat ingest` adds all parts to a store");
  cmd->add_flag("--quiet", a->quiet, "No progress output");
  cmd->callback([a] {
    size_t shard = 0, shards = 1;
    if (!a->shard.empty()) {
      unsigned long long i = 0, n = 0;
      char tail = 0;
      if (std::sscanf(a->shard.c_str(), "%llu/%llu%c", &i, &n, &tail) != 2 || n == 0 || i >= n) {
        throw UsageError("--shard must be I/N with 0 <= I < N, got '" + a->shard + "'");
      }
      shard = static_cast<size_t>(i);
      shards = static_cast<size_t>(n);
    }
    learn::Model model = take(learn::Model::load(a->model));
    if (model.is_clustering()) {
      throw std::runtime_error(a->model + ": a clustering model; a hash model is needed");
    }
    learn::Dataset data = load_data(a->data, &model, a->quiet);
    query::CodesFile f;
    if (shards > 1) {
      // Rows [rows * I / N, rows * (I + 1) / N): the parts are disjoint and cover every row.
      const size_t begin = data.rows * shard / shards, end = data.rows * (shard + 1) / shards;
      data = slice_rows(data, begin, end);
      f.first_row = begin;
      f.shard = a->shard;
    }
    f.bits = model.bits();
    f.rows = data.rows;
    f.fingerprint = model.fingerprint();
    f.source = data.source;
    ProgressBar bar("encode", a->quiet);
    f.codes =
        take(query::encode_dataset(model, data, [&](size_t d, size_t t) { bar.items(d, t); }));
    bar.finish_items(data.rows);
    f.labels = data.labels;
    check(query::write_codes_file(a->out, f));
    std::fprintf(stderr, "imsat: wrote %zu %d-bit codes to %s%s\n", f.rows, f.bits, a->out.c_str(),
                 f.shard.empty() ? ""
                                 : (" (shard " + f.shard + ", rows " + std::to_string(f.first_row) +
                                    " to " + std::to_string(f.first_row + f.rows - 1) + ")")
                                       .c_str());
  });
}

}  // namespace imsat::cli
