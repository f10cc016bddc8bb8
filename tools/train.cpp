// `imsat train`: trains a hash function (or, with --clusters, a clustering model) on all items of
// a dataset without labels and writes the model file.
#include <chrono>
#include <cstdio>

#include "cli.h"
#include "data_options.h"
#include "learn/learn.h"
#include "progress.h"
#include "training_options.h"

namespace imsat::cli {
namespace {

struct TrainArgs {
  DataOptions data;
  std::string method = "imsat-vat", out;
  TrainingOptions training;
  int bits = 16, clusters = 0, batch = 250;
  double lambda = 0.0, lr = 0.002;
  uint64_t seed = 0;
  bool quiet = false;
};

}  // namespace

void add_train(CLI::App& app) {
  auto args = std::make_shared<TrainArgs>();
  CLI::App* cmd = app.add_subcommand("train", "Train a hash function (or clustering model)");
  cmd->add_option("--data", args->data.data,
                  "Dataset: IDX file or MNIST-style folder, fvecs/bvecs, CSV, or a folder of "
                  "image files");
  cmd->add_option("--labels", args->data.labels,
                  "IDX labels for an IDX image file (not used to train)");
  add_image_options(cmd, &args->data, /*pipeline_flags=*/true);
  cmd->add_option("--method", args->method, "Training method")
      ->check(CLI::IsMember(method_names(true)))
      ->capture_default_str();
  cmd->add_option("--bits", args->bits, "Code length D (multiple of 8, 8..1024)")
      ->check(code_bits_validator())
      ->capture_default_str();
  cmd->add_option("--clusters", args->clusters, "Train a clustering model with K clusters")
      ->check(CLI::Range(2, 100000));
  add_training_options(cmd, &args->training,
                       "Hidden layer sizes, e.g. 400-400; 'none' for linear (default: per method)");
  cmd->add_option("--batch", args->batch, "Mini-batch size")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("--seed", args->seed, "Random seed")->capture_default_str();
  cmd->add_option("--lambda", args->lambda,
                  "Weight of the information term (IMSAT, RIM); 0 = automatic:\n"
                  "0.1 up to 16 bits and for clustering, 0.05 for longer codes")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd->add_option("--lr", args->lr, "Adam learning rate")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("--out", args->out, "Model file to write")->required();
  cmd->add_flag("--quiet", args->quiet, "No progress output");
  cmd->callback([args, cmd] {
    learn::TrainConfig c;
    c.method = take(learn::parse_method(args->method));
    c.bits = args->bits;
    c.clusters = args->clusters;
    if (c.method == learn::Method::kKmeans && c.clusters == 0) {
      throw UsageError("--method kmeans needs --clusters K");
    }
    apply_training_options(cmd, args->training, &c, args->quiet);
    c.batch = args->batch;
    c.seed = args->seed;
    c.lambda = args->lambda;
    c.lr = args->lr;
    ProgressBar bar("train", args->quiet);
    c.on_progress = bar.training_callback(c.clusters > 0);
    learn::Dataset data = load_data(args->data, nullptr, args->quiet);
    std::fprintf(stderr, "imsat: training %s on %zu items of %zu values (%s)\n",
                 args->method.c_str(), data.rows, data.cols, data.source.c_str());
    learn::Model model = take(learn::train(data, c));
    if (!args->quiet) report_auto_choice(model);
    check(model.save(args->out));
    std::fprintf(stderr, "imsat: wrote %s (fingerprint %s) after %s\n", args->out.c_str(),
                 model.fingerprint().c_str(), format_duration(bar.seconds()).c_str());
  });
}

}  // namespace imsat::cli
