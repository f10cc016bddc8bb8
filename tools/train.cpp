// `imsat train`: trains a hash function (or, with --clusters, a clustering model) on all items of
// a dataset without labels and writes the model file.
#include <algorithm>
#include <chrono>
#include <cstdio>

#include "cli.h"
#include "data_options.h"
#include "learn/learn.h"
#include "progress.h"
#include "training_options.h"
#ifdef IMSAT_HAVE_QUERY
#include "query/code_health.h"
#endif

namespace imsat::cli {
namespace {

struct TrainArgs {
  DataOptions data;
  std::string method = "imsat-vat", metric, out;
  TrainingOptions training;
  int bits = 16, clusters = 0, batch = 250;
  double lambda = 0.0, lr = 0.002;
  uint64_t seed = 0;
  bool quiet = false;
};

// Says on stderr when bits of a hashing model's codes take one value on every item of a sample of
// the training data: those bits carry nothing, and when all do, every item gets the same code (a
// collapsed run: bench/README.md has some, from --init itq at 64 bits).
void warn_if_collapsed(const learn::Model& model, const learn::Dataset& data) {
#ifdef IMSAT_HAVE_QUERY
  if (model.is_clustering() || data.rows == 0) return;
  const size_t rows = std::min<size_t>(data.rows, 10000);
  const auto codes = model.encode(data.values.data(), rows, data.cols);
  if (!codes.is_ok()) return;
  const auto health = query::code_health(*codes, model.bits());
  if (!health.is_ok()) return;
  int constant = 0;
  for (double share : health->balance) constant += share <= 0.0 || share >= 1.0;
  if (constant == 0) return;
  if (constant == model.bits()) {
    std::fprintf(stderr,
                 "imsat: warning: the run collapsed: every bit takes one value on all of the first "
                 "%zu training items, so every item gets the same code; try another seed or "
                 "other settings (a larger --lambda)\n",
                 rows);
  } else {
    std::fprintf(stderr,
                 "imsat: note: %d of %d bits take one value on all of the first %zu training "
                 "items and carry nothing (the data may hold fewer groups than the code can "
                 "tell apart)\n",
                 constant, model.bits(), rows);
  }
#else
  (void)model;
  (void)data;
#endif
}

}  // namespace

void add_train(CLI::App& app) {
  auto args = std::make_shared<TrainArgs>();
  CLI::App* cmd = app.add_subcommand("train", "Train a hash function (or clustering model)");
  cmd->add_option(
      "--data", args->data.data,
      "Dataset: IDX file or MNIST-style folder, .npy/.npz, fvecs/bvecs, CSV, or a folder of "
      "image files");
  cmd->add_option("--labels", args->data.labels,
                  "IDX labels for an IDX image file (not used to train)");
  add_image_options(cmd, &args->data, /*pipeline_flags=*/true);
  cmd->add_option("--method", args->method, "Training method (with --metric: itq unless given)")
      ->check(CLI::IsMember(method_names(true)))
      ->capture_default_str();
  cmd->add_option("--bits", args->bits,
                  "Code length D (multiple of 8, 8..1024; with --metric: 128 unless given, or the "
                  "input's dimensions when fewer)")
      ->check(code_bits_validator())
      ->capture_default_str();
  cmd->add_option("--metric", args->metric,
                  "Train for nearest neighbours in the input's own space: l2 (Euclidean) or cosine "
                  "(vectors scaled to unit length); recorded in the model, and stores indexed with "
                  "it re-rank by that distance. Unset: codes that group items of one kind (the "
                  "paper's job)")
      ->check(CLI::IsMember({"l2", "cosine"}));
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
  add_config_options(cmd, /*environment=*/false);
  cmd->callback([args, cmd] {
    if (print_config_if_asked(cmd)) return;
    learn::TrainConfig c;
    c.method = take(learn::parse_method(args->method));
    c.bits = args->bits;
    c.clusters = args->clusters;
    if (!args->metric.empty()) {
      if (c.clusters > 0) throw UsageError("--metric is for hash functions, not --clusters");
      c.metric = take(learn::parse_metric(args->metric));
    }
    if (c.method == learn::Method::kKmeans && c.clusters == 0) {
      throw UsageError("--method kmeans needs --clusters K");
    }
    apply_training_options(cmd, args->training, &c, args->quiet);
    c.batch = args->batch;
    c.seed = args->seed;
    c.lambda = args->lambda;
    c.lr = args->lr;
    ProgressBar bar("train", args->quiet);
    c.on_progress = bar.training_callback(c.clusters > 0, c.batch);
    learn::Dataset data = load_data(args->data, nullptr, args->quiet);
    if (c.metric && cmd->count("--method") == 0)
      c.method = learn::default_method_for_metric(data.cols);
    if (c.metric && cmd->count("--bits") == 0) c.bits = learn::default_bits_for_metric(data.cols);
    std::fprintf(stderr, "imsat: training %s (%d %s%s%s) on %zu items of %zu values (%s)\n",
                 learn::method_name(c.method).c_str(), c.clusters > 0 ? c.clusters : c.bits,
                 c.clusters > 0 ? "clusters" : "bits", c.metric ? ", metric " : "",
                 c.metric ? learn::metric_name(*c.metric) : "", data.rows, data.cols,
                 data.source.c_str());
    learn::Model model = take(learn::train(data, c));
    if (!args->quiet) report_auto_choice(model);
    check(model.save(args->out));
    std::fprintf(stderr, "imsat: wrote %s (fingerprint %s) after %s\n", args->out.c_str(),
                 model.fingerprint().c_str(), format_duration(bar.seconds()).c_str());
    warn_if_collapsed(model, data);
  });
}

}  // namespace imsat::cli
