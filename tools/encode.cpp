// `imsat encode`: a dataset through a hash model to a codes file.
#include <cstdio>

#include "cli.h"
#include "data_options.h"
#include "progress.h"
#include "query/codes_file.h"
#include "query/indexing.h"

namespace imsat::cli {

void add_encode(CLI::App& app) {
  struct EncodeArgs {
    std::string model, out;
    DataOptions data;
    bool quiet = false;
  };
  auto a = std::make_shared<EncodeArgs>();
  CLI::App* cmd = app.add_subcommand("encode", "Encode a dataset to a codes file");
  cmd->add_option("--model", a->model, "Trained hash model")->required();
  cmd->add_option("--data", a->data.data,
                  "Dataset: IDX file or folder, fvecs/bvecs, CSV, or a folder of image files");
  cmd->add_option("--labels", a->data.labels,
                  "IDX labels for an IDX image file (kept in the file)");
  add_image_options(cmd, &a->data, /*pipeline_flags=*/false);
  cmd->add_option("--out", a->out, "Codes file to write")->required();
  cmd->add_flag("--quiet", a->quiet, "No progress output");
  cmd->callback([a] {
    learn::Model model = take(learn::Model::load(a->model));
    if (model.is_clustering()) {
      throw std::runtime_error(a->model + ": a clustering model; a hash model is needed");
    }
    learn::Dataset data = load_data(a->data, &model, a->quiet);
    query::CodesFile f;
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
    std::fprintf(stderr, "imsat: wrote %zu %d-bit codes to %s\n", f.rows, f.bits, a->out.c_str());
  });
}

}  // namespace imsat::cli
