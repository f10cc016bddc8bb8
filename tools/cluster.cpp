// `imsat cluster`: trains (or loads, with --model) a clustering model, assigns every item and,
// when the data has labels, reports clustering accuracy (Hungarian matching) and NMI.
#include <cstdio>

#include "cli.h"
#include "data_options.h"
#include "progress.h"
#include "query/clustering_metrics.h"
#include "query/json_format.h"
#include "training_options.h"

namespace imsat::cli {

void add_cluster(CLI::App& app) {
  struct ClusterArgs {
    DataOptions data;
    std::string method = "imsat-vat", model, out;
    TrainingOptions training;
    int clusters = 10;
    uint64_t seed = 0;
    bool json = false, quiet = false;
  };
  auto args = std::make_shared<ClusterArgs>();
  CLI::App* cmd =
      app.add_subcommand("cluster", "Train or apply a clustering model; print ACC and NMI");
  cmd->add_option(
      "--data", args->data.data,
      "Dataset (IDX file or folder, .npy/.npz, fvecs, CSV, or a folder of image files)");
  cmd->add_option("--labels", args->data.labels,
                  "Labels for --data: an IDX label file or a 1-D .npy");
  add_image_options(cmd, &args->data, /*pipeline_flags=*/true);
  cmd->add_option("--method", args->method,
                  "imsat-vat, imsat-rpt, deep-rim, linear-imsat, linear-rim or kmeans")
      ->check(CLI::IsMember(
          {"imsat-vat", "imsat-rpt", "deep-rim", "linear-imsat", "linear-rim", "kmeans"}))
      ->capture_default_str();
  cmd->add_option("--clusters", args->clusters, "Number of clusters")
      ->check(CLI::Range(2, 100000))
      ->capture_default_str();
  add_training_options(cmd, &args->training, "Hidden sizes (default 1200-1200 for IMSAT)");
  cmd->add_option("--seed", args->seed, "Random seed")->capture_default_str();
  cmd->add_option("--model", args->model, "Apply this clustering model instead of training");
  cmd->add_option("--out", args->out, "Write the trained model here");
  cmd->add_flag("--json", args->json, "JSON on stdout");
  cmd->add_flag("--quiet", args->quiet, "No progress output");
  cmd->callback([args, cmd] {
    learn::Model model;
    if (!args->model.empty()) {
      model = take(learn::Model::load(args->model));
      if (!model.is_clustering()) {
        throw std::runtime_error(args->model + ": not a clustering model");
      }
    }
    learn::Dataset data =
        load_data(args->data, args->model.empty() ? nullptr : &model, args->quiet);
    ProgressBar bar("train", args->quiet);
    if (args->model.empty()) {
      learn::TrainConfig c;
      c.method = take(learn::parse_method(args->method));
      c.clusters = args->clusters;
      c.seed = args->seed;
      apply_training_options(cmd, args->training, &c);
      c.on_progress = bar.training_callback(true, c.batch);
      model = take(learn::train(data, c));
      if (!args->out.empty()) check(model.save(args->out));
    }
    const double train_s = bar.seconds();
    const std::vector<int32_t> assigned = take(model.assign(data));
    std::vector<size_t> sizes(static_cast<size_t>(model.clusters()), 0);
    for (int32_t a : assigned) ++sizes[static_cast<size_t>(a)];
    nlohmann::json j = {{"method", learn::method_name(model.method())},
                        {"clusters", model.clusters()},
                        {"items", data.rows},
                        {"train_seconds", train_s},
                        {"cluster_sizes", sizes}};
    if (!data.labels.empty()) {
      j["accuracy"] = take(query::clustering_accuracy(assigned, data.labels));
      j["nmi"] = take(query::normalized_mutual_information(assigned, data.labels));
    }
    if (args->json) {
      print_json_line(j.dump());
      return;
    }
    std::printf("method: %s\nclusters: %d\nitems: %zu\ntrain seconds: %.1f\ncluster sizes:",
                learn::method_name(model.method()).c_str(), model.clusters(), data.rows, train_s);
    for (size_t n : sizes) std::printf(" %zu", n);
    std::printf("\n");
    if (j.contains("accuracy")) {
      std::printf("accuracy: %.4f\nnmi: %.4f\n", j["accuracy"].get<double>(),
                  j["nmi"].get<double>());
    }
  });
}

}  // namespace imsat::cli
