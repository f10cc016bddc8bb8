// `imsat eval`: trains each method on all items without labels (or loads --model files) and
// evaluates retrieval by label with the paper's protocol; or, with --db, evaluates the labelled
// items of an existing store (the same entry point as POST /v1/evaluate).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "cli.h"
#include "data_options.h"
#include "progress.h"
#include "query/engine.h"
#include "query/evaluation_grid.h"
#include "query/json_format.h"
#include "query/retrieval_metrics.h"
#include "training_options.h"

namespace imsat::cli {
namespace {

struct EvalArgs {
  DataOptions source;
  std::string rank = "hamming";
  std::string db, json_out, csv_out, plot, split = "per-class";
  std::vector<std::string> methods = {"imsat-vat", "itq", "lsh"};
  std::vector<int> bits = {16};
  size_t map_at = 0;
  TrainingOptions training;
  std::vector<std::string> models;
  size_t per_class = 100, precision_at = 500, queries = 0;
  int radius = 2;
  uint64_t seed = 0;
  int seeds = 1;
  double lambda = 0.0;
  bool json = false, quiet = false;
};

double mean_of(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x;
  return v.empty() ? 0 : s / static_cast<double>(v.size());
}
double std_of(const std::vector<double>& v) {
  if (v.size() < 2) return 0;
  const double m = mean_of(v);
  double s = 0;
  for (double x : v) s += (x - m) * (x - m);
  return std::sqrt(s / static_cast<double>(v.size() - 1));
}
std::string cell(const std::vector<double>& v) {
  char buf[32];
  if (v.size() > 1) {
    std::snprintf(buf, sizeof(buf), "%.1f +- %.1f", mean_of(v), std_of(v));
  } else {
    std::snprintf(buf, sizeof(buf), "%.1f", mean_of(v));
  }
  return buf;
}

void write_file(const std::string& path, const std::string& text) {
  std::ofstream f(path);
  f << text;
  if (!f) throw std::runtime_error(path + ": cannot write");
}

// precision@N over a gallery of fewer than N items counts every gallery item: it is the same for
// every method and says nothing.
void warn_small_gallery(size_t gallery, size_t precision_at) {
  if (gallery >= precision_at) return;
  std::fprintf(stderr,
               "imsat: warning: the gallery holds %zu items, fewer than %zu: precision@%zu counts "
               "all of them and is the same for every method; pass --precision-at N with N "
               "below %zu\n",
               gallery, precision_at, precision_at, gallery);
}

// --db: the store's labelled items, through the query layer.
void evaluate_store(const EvalArgs& args) {
  std::unique_ptr<query::QueryEngine> engine =
      take(query::QueryEngine::open(args.db, "", /*read_only=*/true));
  query::EvaluateRequest request;
  request.queries_per_class = args.per_class;
  request.seed = args.seed;
  request.options.precision_at = args.precision_at;
  request.options.radius = args.radius;
  const query::StoreEvaluation e = take(engine->evaluate(request));
  nlohmann::json j = query::evaluation_json(e, request);
  j["db"] = args.db;
  if (!args.json_out.empty()) write_file(args.json_out, j.dump(2) + "\n");
  if (args.json) {
    print_json_line(j.dump());
    return;
  }
  warn_small_gallery(e.gallery, args.precision_at);
  std::printf("store: %s\nlabelled items: %zu (%zu queries, %zu gallery); figures in percent\n",
              args.db.c_str(), e.labelled_items, e.queries, e.gallery);
  char p_at[32], p_r[32];
  std::snprintf(p_at, sizeof(p_at), "P@%zu", args.precision_at);
  std::snprintf(p_r, sizeof(p_r), "P@r=%d", args.radius);
  std::printf("%16s %16s %16s %16s\n", "mAP", p_at, p_r, "empty balls");
  std::printf("%16.1f %16.1f %16.1f %16.1f\n", 100 * e.metrics.map, 100 * e.metrics.precision_at_n,
              100 * e.metrics.precision_at_r, 100 * e.metrics.empty_r_share);
}

std::string label_text(int32_t label, const std::vector<std::string>& names) {
  if (label >= 0 && static_cast<size_t>(label) < names.size()) {
    return std::to_string(label) + " (" + names[static_cast<size_t>(label)] + ")";
  }
  return std::to_string(label);
}

// On uneven data: how many queries each label gave, and which labels were too small.
void print_split(const query::Split& split, const std::vector<std::string>& names) {
  bool even = split.too_small.empty();
  for (const auto& [label, n] : split.queries_per_label) {
    even = even && n == split.queries_per_label.begin()->second;
  }
  if (even && names.empty()) return;
  std::string line = "imsat: queries per label:";
  for (const auto& [label, n] : split.queries_per_label) {
    line += " " + label_text(label, names) + " " + std::to_string(n) + ",";
  }
  line.pop_back();
  std::fprintf(stderr, "%s\n", line.c_str());
  if (!split.too_small.empty()) {
    line = "imsat: labels too small to give a query (1 item):";
    for (int32_t label : split.too_small) line += " " + label_text(label, names);
    std::fprintf(stderr, "%s\n", line.c_str());
  }
}

query::Split choose_split(const EvalArgs& args, const learn::Dataset& data) {
  if (args.split == "per-class" && args.queries > 0) {
    return take(query::split_random(data.labels, args.queries, args.seed));
  }
  if (args.split == "per-class") {
    return take(query::split_per_class(data.labels, args.per_class, args.seed));
  }
  if (data.train_rows == 0 || data.train_rows >= data.rows) {
    throw std::runtime_error(args.source.data +
                             ": --split dataset needs a folder with both train and test files");
  }
  std::vector<size_t> q, g;
  for (size_t i = 0; i < data.rows; ++i) (i < data.train_rows ? g : q).push_back(i);
  return take(query::given_split(std::move(q), std::move(g), data.rows));
}

// Every training run: --bits x --methods x --seeds (SH, deterministic, once).
std::vector<learn::TrainConfig> training_runs(CLI::App* cmd, const EvalArgs& args) {
  std::vector<learn::TrainConfig> runs;
  for (int bits : args.bits) {
    for (const std::string& name : args.methods) {
      const learn::Method method = take(learn::parse_method(name));
      const int seeds = method == learn::Method::kSh ? 1 : args.seeds;
      for (int r = 0; r < seeds; ++r) {
        learn::TrainConfig c;
        c.method = method;
        c.bits = bits;
        c.seed = args.seed + static_cast<uint64_t>(r);
        apply_training_options(cmd, args.training, &c, args.quiet);
        if (method == learn::Method::kLinearImsat || method == learn::Method::kLinearRim) {
          c.has_hidden = false;  // --hidden is for the deep methods
          c.hidden.clear();
        }
        c.lambda = args.lambda;
        runs.push_back(std::move(c));
      }
    }
  }
  return runs;
}

// Progress on stderr: which model, a training bar, each row's figures.
query::GridObserver grid_observer(const EvalArgs& args) {
  query::GridObserver o;
  if (args.quiet) return o;
  o.on_loaded = [](const std::string& path, const learn::Model& model) {
    std::fprintf(stderr, "imsat: %s (%s, %d bits)\n", path.c_str(),
                 learn::method_name(model.method()).c_str(), model.bits());
  };
  auto bar = std::make_shared<std::unique_ptr<ProgressBar>>();
  o.on_training = [bar](learn::TrainConfig* c) {
    std::fprintf(stderr, "imsat: %s %d bits seed %llu ...\n", learn::method_name(c->method).c_str(),
                 c->bits, static_cast<unsigned long long>(c->seed));
    *bar = std::make_unique<ProgressBar>("train", false);
    c->on_progress = (*bar)->training_callback(false, c->batch);
  };
  o.on_row = [bar, &args](const learn::Model& model, const query::GridRow& row) {
    bar->reset();  // the training bar's line ends
    if (row.train_seconds >= 0) report_auto_choice(model);
    char trained[48] = "loaded";
    if (row.train_seconds >= 0) {
      std::snprintf(trained, sizeof(trained), "train %.1fs", row.train_seconds);
    }
    std::fprintf(stderr, "imsat:   mAP %.4f P@%zu %.4f P@r%d %.4f (empty %.3f) %s\n", row.m.map,
                 args.precision_at, row.m.precision_at_n, args.radius, row.m.precision_at_r,
                 row.m.empty_r_share, trained);
    if (row.asymmetric) {
      std::fprintf(stderr, "imsat:   asymmetric ranking: mAP %.4f P@%zu %.4f\n",
                   row.asymmetric->map, args.precision_at, row.asymmetric->precision_at_n);
    }
  };
  return o;
}

nlohmann::json grid_json(const EvalArgs& args, const query::GridRequest& request,
                         const learn::Dataset& data, const std::vector<query::GridRow>& rows) {
  const query::Split& split = request.split;
  nlohmann::json out = {{"data", args.source.data},          {"split", args.split},
                        {"split_seed", args.seed},           {"queries_per_class", args.per_class},
                        {"precision_at", args.precision_at}, {"radius", args.radius},
                        {"queries", split.queries.size()},   {"gallery", split.gallery.size()},
                        {"results", nlohmann::json::array()}};
  if (args.queries > 0) out["random_queries"] = args.queries;
  if (!split.queries_per_label.empty()) {
    nlohmann::json per = nlohmann::json::object();
    for (const auto& [label, n] : split.queries_per_label) {
      per[label_text(label, data.label_names)] = n;
    }
    out["queries_per_label"] = per;
    out["labels_too_small"] = split.too_small;
  }
  if (!data.label_names.empty()) out["label_names"] = data.label_names;
  if (!data.image_pipeline.empty()) {
    out["image_pipeline"] = nlohmann::json::parse(data.image_pipeline);
    out["images_read"] = data.rows;
  }
  for (const query::GridRow& row : rows)
    out["results"].push_back(query::grid_row_json(row, request));
  return out;
}

// One line per (method, bits): mean +- std over seeds, figures in percent.
void print_table(const EvalArgs& args, const std::vector<query::GridRow>& rows,
                 const std::vector<std::string>& methods, const std::vector<int>& lengths) {
  const std::string p_at = "P@" + std::to_string(args.precision_at);
  const std::string p_r = "P@r=" + std::to_string(args.radius);
  const std::string map_k = "mAP@" + std::to_string(args.map_at);
  const bool asym = args.rank == "asymmetric";
  if (asym) {
    std::printf(
        "(mAP and %s by asymmetric ranking: the query's bit probabilities against the "
        "stored codes; %s by Hamming distance)\n",
        p_at.c_str(), p_r.c_str());
  }
  std::printf("%-13s %5s %5s %16s %16s %16s", "method", "bits", "runs", "mAP", p_at.c_str(),
              p_r.c_str());
  if (args.map_at > 0) std::printf(" %16s", map_k.c_str());
  std::printf(" %10s\n", "train s");
  for (int bits : lengths) {
    for (const std::string& method : methods) {
      std::vector<double> a, p, r, mk, trained;
      for (const query::GridRow& row : rows) {
        if (row.bits != bits || row.method != method) continue;
        mk.push_back(row.map_at_k * 100);
        const query::RetrievalMetrics& ranked = asym ? *row.asymmetric : row.m;
        a.push_back(ranked.map * 100);
        p.push_back(ranked.precision_at_n * 100);
        r.push_back(row.m.precision_at_r * 100);
        if (row.train_seconds >= 0) trained.push_back(row.train_seconds);
      }
      if (a.empty()) continue;
      char train_cell[32] = "-";
      if (!trained.empty()) std::snprintf(train_cell, sizeof(train_cell), "%.1f", mean_of(trained));
      std::printf("%-13s %5d %5zu %16s %16s %16s", method.c_str(), bits, a.size(), cell(a).c_str(),
                  cell(p).c_str(), cell(r).c_str());
      if (args.map_at > 0) std::printf(" %16s", cell(mk).c_str());
      std::printf(" %10s\n", train_cell);
    }
  }
}

// The precision-recall curves of the first run of each method and length, as SVG.
void write_plot(const EvalArgs& args, const std::vector<query::GridRow>& rows,
                const std::vector<std::string>& methods, const std::vector<int>& lengths) {
  std::vector<PlotCurve> curves;
  for (int bits : lengths) {
    for (const std::string& method : methods) {
      for (const query::GridRow& row : rows) {
        if (row.bits != bits || row.method != method) continue;
        curves.push_back({row.method + " " + std::to_string(bits) + " bits", row.curves.recall,
                          row.curves.precision});
        break;
      }
    }
  }
  write_pr_svg(args.plot,
               "Precision-recall of Hamming ranking, " + io::source_name(args.source.data), curves);
  if (!args.quiet) std::fprintf(stderr, "imsat: wrote %s\n", args.plot.c_str());
}

// The command itself, once its flags are parsed.
void run_eval(const std::shared_ptr<EvalArgs>& args, CLI::App* cmd) {
  if (!args->db.empty()) {
    evaluate_store(*args);
    return;
  }
  if (args->source.data.empty() && args->source.manifest.empty()) {
    throw UsageError("give --data (train and evaluate) or --db (a store)");
  }
  // Loaded models read image files through their own recorded pipeline (the first model's;
  // the others must record the same).
  std::unique_ptr<learn::Model> first;
  if (!args->models.empty()) {
    first = std::make_unique<learn::Model>(take(learn::Model::load(args->models.front())));
  }
  learn::Dataset data = load_data(args->source, first.get(), args->quiet);
  if (data.labels.empty())
    throw std::runtime_error(args->source.data + ": evaluation needs labels");
  query::GridRequest request;
  request.split = choose_split(*args, data);
  if (!args->quiet) {
    std::fprintf(stderr, "imsat: %zu items, %zu queries, %zu gallery\n", data.rows,
                 request.split.queries.size(), request.split.gallery.size());
    print_split(request.split, data.label_names);
  }
  warn_small_gallery(request.split.gallery.size(), args->precision_at);
  request.options.precision_at = args->precision_at;
  request.options.radius = args->radius;
  request.asymmetric =
      args->rank == "asymmetric" || args->json || !args->json_out.empty() || !args->csv_out.empty();
  request.map_at = args->map_at;
  request.curves = !args->plot.empty();
  request.model_paths = args->models;
  // With --model, methods are trained only when --methods is also given.
  const bool train_too = args->models.empty() || cmd->count("--methods") > 0;
  if (train_too) request.runs = training_runs(cmd, *args);
  const std::vector<query::GridRow> rows =
      take(query::evaluate_grid(data, request, grid_observer(*args), first.get()));
  // The table's order: the methods of the loaded models first, in the order given, then the
  // trained ones; the trained lengths, then those of the loaded models.
  std::vector<std::string> methods = train_too ? args->methods : std::vector<std::string>{};
  std::vector<int> bits = train_too ? args->bits : std::vector<int>{};
  size_t loaded_methods = 0;
  for (const query::GridRow& row : rows) {
    if (row.train_seconds >= 0) continue;
    if (std::find(methods.begin(), methods.end(), row.method) == methods.end()) {
      methods.insert(methods.begin() + static_cast<long>(loaded_methods++), row.method);
    }
    if (std::find(bits.begin(), bits.end(), row.bits) == bits.end()) bits.push_back(row.bits);
  }
  nlohmann::json out = grid_json(*args, request, data, rows);
  if (!args->json_out.empty()) write_file(args->json_out, out.dump(2) + "\n");
  if (args->json) {
    print_json_line(out.dump());
  } else {
    print_table(*args, rows, methods, bits);
  }
  if (!args->plot.empty()) write_plot(*args, rows, methods, bits);
  if (!args->csv_out.empty()) write_file(args->csv_out, query::grid_csv(rows, request));
}

}  // namespace

void add_eval(CLI::App& app) {
  auto args = std::make_shared<EvalArgs>();
  CLI::App* cmd = app.add_subcommand(
      "eval",
      "Train each method on all items (no labels), then evaluate retrieval by label; or evaluate "
      "the labelled items of a store (--db). Tables print percent, JSON and CSV fractions");
  auto* data = cmd->add_option("--data", args->source.data,
                               "Labelled dataset (IDX folder or file, .npy/.npz, fvecs, CSV, or a "
                               "folder of images, one subfolder per "
                               "label)");
  auto* db = cmd->add_option("--db", args->db, "Evaluate the labelled items of this code store");
  data->excludes(db);
  cmd->add_option("--labels", args->source.labels,
                  "Labels for --data: an IDX label file or a 1-D .npy");
  add_image_options(cmd, &args->source, /*pipeline_flags=*/true);
  cmd->add_option("--methods", args->methods, "Comma-separated methods")
      ->delimiter(',')
      ->check(CLI::IsMember(method_names(false)))
      ->capture_default_str();
  cmd->add_option("--bits", args->bits, "Code length, or a comma-separated list")
      ->delimiter(',')
      ->check(code_bits_validator())
      ->capture_default_str();
  auto* per_class =
      cmd->add_option("--queries-per-class", args->per_class,
                      "Queries drawn per label (a cap: a label gives at most half its items)")
          ->check(CLI::PositiveNumber)
          ->capture_default_str();
  cmd->add_option("--queries", args->queries,
                  "Instead: this many queries drawn at random over all items")
      ->check(CLI::PositiveNumber)
      ->excludes(per_class);
  cmd->add_option("--precision-at", args->precision_at, "N of precision@N")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("--radius", args->radius, "r of precision within Hamming radius r")
      ->check(CLI::Range(0, kMaxCodeBits))
      ->capture_default_str();
  cmd->add_option("--seed", args->seed, "Seed of the query split and of the first training run")
      ->capture_default_str();
  cmd->add_option("--seeds", args->seeds, "Training runs per method (seeds seed..seed+n-1)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  add_training_options(cmd, &args->training, "Hidden sizes for the deep methods (default 400-400)");
  cmd->add_option("--lambda", args->lambda,
                  "Weight of the information term for IMSAT and RIM (0 = automatic, as in train)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd->add_option("--model", args->models,
                  "Evaluate these trained model files instead of training (repeatable)");
  cmd->add_flag("--json", args->json, "JSON on stdout instead of the table");
  cmd->add_option("--json-out", args->json_out, "Also write the results as JSON to this file");
  cmd->add_option("--csv", args->csv_out, "Also write the results as CSV to this file");
  cmd->add_option("--plot", args->plot,
                  "Write a precision-recall plot (SVG) of the first run of each method and length");
  cmd->add_option("--map-at", args->map_at, "Also report mAP@k for this k");
  cmd->add_option("--rank", args->rank,
                  "Ranking the table's mAP and P@N use: hamming, or asymmetric (each stored code's "
                  "negative log-likelihood under the query's bit probabilities); JSON and CSV "
                  "carry both")
      ->check(CLI::IsMember({"hamming", "asymmetric"}))
      ->capture_default_str();
  cmd->add_option("--split", args->split,
                  "per-class: --queries-per-class random queries per label, the rest the gallery; "
                  "dataset: the dataset's own test items query its train items")
      ->check(CLI::IsMember({"per-class", "dataset"}))
      ->capture_default_str();
  cmd->add_flag("--quiet", args->quiet, "No progress output");
  cmd->callback([args, cmd] { run_eval(args, cmd); });
}

}  // namespace imsat::cli
