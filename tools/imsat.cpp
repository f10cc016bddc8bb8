// The `imsat` command line. Each subcommand parses its flags and calls one library entry point;
// main catches every error, prints one line to stderr and returns non-zero.
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "cli.h"
#include "common/status.h"

#ifdef IMSAT_HAVE_LEARN
#include "learn/learn.h"
#endif
#ifdef IMSAT_HAVE_INDEX
#include "index/code_store.h"
#include "index/hamming.h"
#endif
#ifdef IMSAT_HAVE_QUERY
#include <nlohmann/json.hpp>

#include "query/query.h"
#endif

namespace {

using imsat::cli::check;
using imsat::cli::format_duration;
using imsat::cli::split_list;
using imsat::cli::take;

void run_info() {
  std::cout << "imsat 0.1.0\n";
#ifdef IMSAT_HAVE_LEARN
  imsat::learn::BlasInfo blas = imsat::learn::linked_blas();
  std::cout << "libtorch: " << imsat::learn::torch_version() << "\n"
            << "blas: " << blas.name << " (" << blas.library_path << ")\n"
            << "cuda: " << (imsat::learn::cuda_available() ? "available" : "not available") << "\n";
#endif
#ifdef IMSAT_HAVE_INDEX
  std::cout << "hamming kernel: " << imsat::index::active_kernel_name() << "\n";
#endif
}

#ifdef IMSAT_HAVE_INDEX

// Code health of a store: per-bit balance, bucket occupancy of each multi-index table and the
// distribution of Hamming distances from sampled items, to spot collapsed bits and choose r.
void add_inspect(CLI::App& app) {
  auto db = std::make_shared<std::string>();
  auto samples = std::make_shared<size_t>(100);
  CLI::App* cmd = app.add_subcommand("inspect", "Print a code store's schema and code health");
  cmd->add_option("--db", *db, "Code store folder")->required();
  cmd->add_option("--samples", *samples, "Items sampled for the distance histogram")
      ->capture_default_str();
  cmd->callback([db, samples] {
    namespace I = imsat::index;
    I::StoreOptions o;
    o.create_if_missing = false;
    std::unique_ptr<I::CodeStore> store = take(I::CodeStore::open(*db, o));
    const I::StoreInfo info = store->info();
    std::printf(
        "store: %s\nformat version: %u\nbits: %d\nitems: %zu\nmulti-index tables: %d\n"
        "model fingerprint: %s\nmemory: %.1f MiB\nkernel: %s\n",
        db->c_str(), info.format_version, info.bits, info.items, info.tables,
        info.model_fingerprint.empty() ? "(none)" : info.model_fingerprint.c_str(),
        static_cast<double>(info.memory_bytes) / (1 << 20),
        std::string(I::active_kernel_name()).c_str());
    std::printf("\nbit balance (fraction of ones; near 0 or 1 means a collapsed bit):\n");
    const std::vector<double> balance = store->bit_balance();
    for (size_t b = 0; b < balance.size(); ++b) {
      std::printf("  bit %4zu  %.3f%s\n", b, balance[b],
                  balance[b] < 0.05 || balance[b] > 0.95 ? "  <- collapsed" : "");
    }
#ifdef IMSAT_HAVE_QUERY
    {
      const std::vector<uint8_t> sample = store->sample_codes(100000);
      if (!sample.empty()) {
        imsat::query::CodeHealth h = take(imsat::query::code_health(sample, info.bits));
        std::printf(
            "\ncode health over %zu items: bit entropy mean %.3f, min %.3f bits; pairwise bit "
            "mutual information mean %.4f, max %.4f bits (bits %d and %d)%s\n",
            h.rows, h.mean_entropy, h.min_entropy, h.mean_pair_mi, h.max_pair_mi, h.max_pair_a,
            h.max_pair_b, h.max_pair_mi > 0.5 ? "  <- redundant pair" : "");
      }
    }
#endif
    std::printf("\nbucket occupancy per table (items per non-empty bucket: buckets):\n");
    const auto occupancy = store->occupancy_histograms(16);
    for (size_t t = 0; t < occupancy.size(); ++t) {
      std::printf("  table %zu:", t);
      for (size_t c = 1; c < occupancy[t].size(); ++c) {
        if (occupancy[t][c] > 0) {
          std::printf(" %zu%s:%llu", c, c + 1 == occupancy[t].size() ? "+" : "",
                      static_cast<unsigned long long>(occupancy[t][c]));
        }
      }
      std::printf("\n");
    }
    std::printf("\nHamming distances from %zu sampled items (distance: share, cumulative):\n",
                *samples);
    const std::vector<uint64_t> hist = store->distance_histogram(*samples, 1);
    uint64_t total = 0, cum = 0;
    for (uint64_t h : hist) total += h;
    for (size_t d = 0; d < hist.size(); ++d) {
      if (hist[d] == 0) continue;
      cum += hist[d];
      std::printf("  %4zu  %.5f  %.5f\n", d, double(hist[d]) / double(total),
                  double(cum) / double(total));
    }
  });
}

#endif  // IMSAT_HAVE_INDEX

#ifdef IMSAT_HAVE_LEARN

// "400-400" -> {400, 400}; "" or "none" or "linear" -> {}.
std::vector<int> parse_hidden(const std::string& s) {
  std::vector<int> out;
  if (s.empty() || s == "none" || s == "linear") return out;
  size_t start = 0;
  while (start <= s.size()) {
    size_t end = s.find('-', start);
    if (end == std::string::npos) end = s.size();
    const std::string part = s.substr(start, end - start);
    try {
      size_t used = 0;
      int v = std::stoi(part, &used);
      if (used != part.size() || v <= 0) throw std::invalid_argument(part);
      out.push_back(v);
    } catch (const std::exception&) {
      throw std::runtime_error("--hidden: expected sizes like 400-400, got '" + s + "'");
    }
    start = end + 1;
  }
  return out;
}

// Progress bar with loss terms and ETA on stderr; one line per epoch when stderr is not a tty.
class ProgressPrinter {
 public:
  explicit ProgressPrinter(bool clustering) : clustering_(clustering), tty_(isatty(2)) {}
  void operator()(const imsat::learn::Progress& p, bool epoch_end) {
    const double now = p.seconds;
    if (!epoch_end && (!tty_ || now - last_ < 0.25)) return;
    last_ = now;
    const double frac = p.total_steps > 0 ? double(p.step) / double(p.total_steps) : 1.0;
    const double eta = frac > 0 ? p.seconds * (1 - frac) / frac : 0;
    char terms[160];
    if (clustering_) {
      std::snprintf(terms, sizeof(terms), "loss %.4f sat %.4f H(Y|X) %.3f H(Y) %.3f", p.loss, p.sat,
                    p.cond_entropy, p.marg_entropy);
    } else {
      std::snprintf(terms, sizeof(terms), "loss %.4f sat %.4f H(Y|X) %.3f H(Y) %.3f MI %.3f",
                    p.loss, p.sat, p.cond_entropy, p.marg_entropy, p.pair_mi);
    }
    if (epoch_end) {
      std::fprintf(stderr, "%s epoch %d/%d  %s  %s elapsed\n", tty_ ? "\r\033[K" : "", p.epoch,
                   p.epochs, terms, format_duration(p.seconds).c_str());
    } else {
      const int width = 24;
      const int filled = static_cast<int>(frac * width);
      std::string bar(static_cast<size_t>(filled), '#');
      bar.resize(width, ' ');
      std::fprintf(stderr, "\r\033[K[%s] %3.0f%% epoch %d/%d  %s  ETA %s", bar.c_str(), frac * 100,
                   p.epoch, p.epochs, terms, format_duration(eta).c_str());
    }
    std::fflush(stderr);
  }

 private:
  bool clustering_;
  bool tty_;
  double last_ = -1;
};

struct TrainArgs {
  std::string data, labels, method = "imsat-vat", hidden, out, device = "auto";
  bool hidden_set = false;
  int bits = 16, clusters = 0, epochs = 0, batch = 250, threads = 0;
  double lambda = 0.0, eps_scale = 0.25, lr = 0.002;
  uint64_t seed = 0;
  bool quiet = false;
};

void add_train(CLI::App& app) {
  auto args = std::make_shared<TrainArgs>();
  CLI::App* cmd = app.add_subcommand("train", "Train a hash function (or clustering model)");
  cmd->add_option("--data", args->data, "Dataset: IDX file or MNIST-style folder, fvecs/bvecs, CSV")
      ->required();
  cmd->add_option("--labels", args->labels, "IDX labels for an IDX image file (not used to train)");
  cmd->add_option("--method", args->method,
                  "imsat-vat, imsat-rpt, linear-imsat, deep-rim, linear-rim, itq, sh, lsh, kmeans")
      ->capture_default_str();
  cmd->add_option("--bits", args->bits, "Code length D (multiple of 8, 8..1024)")
      ->capture_default_str();
  cmd->add_option("--clusters", args->clusters, "Train a clustering model with K clusters");
  cmd->add_option("--hidden", args->hidden,
                  "Hidden layer sizes, e.g. 400-400; 'none' for linear (default: per method)");
  cmd->add_option("--epochs", args->epochs,
                  "Epochs; 0 = automatic (50, or more on small data: at least 14,000 steps)")
      ->capture_default_str();
  cmd->add_option("--batch", args->batch, "Mini-batch size")->capture_default_str();
  cmd->add_option("--device", args->device, "cpu, cuda or auto")->capture_default_str();
  cmd->add_option("--seed", args->seed, "Random seed")->capture_default_str();
  cmd->add_option("--threads", args->threads, "Compute threads (0 = tuned default)");
  cmd->add_option("--lambda", args->lambda, "Weight of the information term (IMSAT, RIM); 0 = automatic:\n"
                  "0.1 up to 16 bits and for clustering, 0.05 for longer codes")
      ->capture_default_str();
  cmd->add_option("--eps-scale", args->eps_scale,
                  "SAT radius: this times the distance to the 10th nearest neighbour")
      ->capture_default_str();
  cmd->add_option("--lr", args->lr, "Adam learning rate")->capture_default_str();
  cmd->add_option("--out", args->out, "Model file to write")->required();
  cmd->add_flag("--quiet", args->quiet, "No progress output");
  cmd->callback([args, cmd] {
    namespace L = imsat::learn;
    L::TrainConfig c;
    c.method = take(L::parse_method(args->method));
    c.bits = args->bits;
    c.clusters = args->clusters;
    if (c.method == L::Method::kKmeans && c.clusters == 0) {
      throw std::runtime_error("--method kmeans needs --clusters K");
    }
    c.has_hidden = cmd->count("--hidden") > 0;
    c.hidden = parse_hidden(args->hidden);
    c.epochs = args->epochs;
    c.batch = args->batch;
    c.device = args->device;
    c.seed = args->seed;
    c.threads = args->threads;
    c.lambda = args->lambda;
    c.eps_scale = args->eps_scale;
    c.lr = args->lr;
    ProgressPrinter printer(c.clusters > 0);
    if (!args->quiet) c.on_progress = [&printer](const L::Progress& p, bool e) { printer(p, e); };
    L::Dataset data = take(L::load_dataset(args->data, args->labels));
    std::fprintf(stderr, "imsat: training %s on %zu items of %zu values (%s)\n",
                 args->method.c_str(), data.rows, data.cols, data.source.c_str());
    const auto t0 = std::chrono::steady_clock::now();
    L::Model model = take(L::train(data, c));
    const double secs =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    check(model.save(args->out));
    std::fprintf(stderr, "imsat: wrote %s (fingerprint %s) after %s\n", args->out.c_str(),
                 model.fingerprint().c_str(), format_duration(secs).c_str());
  });
}

#endif  // IMSAT_HAVE_LEARN

#ifdef IMSAT_HAVE_QUERY

struct EvalArgs {
  std::string data, labels, methods = "imsat-vat,itq,lsh", bits = "16", json_out, csv_out;
  std::string plot, split = "per-class";
  size_t map_at = 0;
  std::string hidden, device = "auto";
  std::vector<std::string> models;
  size_t per_class = 100;
  uint64_t seed = 0;
  int seeds = 1, epochs = 0, threads = 0;
};

struct EvalRow {
  std::string method;
  int bits = 0;
  uint64_t seed = 0;
  imsat::query::RetrievalMetrics m;
  double train_seconds = 0, eval_seconds = 0;
  double map_at_k = -1;  // < 0: not asked for
  imsat::query::Curves curves;
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

void add_eval(CLI::App& app) {
  auto args = std::make_shared<EvalArgs>();
  CLI::App* cmd = app.add_subcommand(
      "eval", "Train each method on all items (no labels), then evaluate retrieval by label");
  cmd->add_option("--data", args->data, "Labelled dataset (IDX folder or file, fvecs, CSV)")
      ->required();
  cmd->add_option("--labels", args->labels, "IDX labels for an IDX image file");
  cmd->add_option("--methods", args->methods, "Comma-separated methods")->capture_default_str();
  cmd->add_option("--bits", args->bits, "Code length, or a comma-separated list")
      ->capture_default_str();
  cmd->add_option("--queries-per-class", args->per_class, "Queries drawn per label")
      ->capture_default_str();
  cmd->add_option("--seed", args->seed, "Seed of the query split and of the first training run")
      ->capture_default_str();
  cmd->add_option("--seeds", args->seeds, "Training runs per method (seeds seed..seed+n-1)")
      ->capture_default_str();
  cmd->add_option("--epochs", args->epochs, "Epochs for the neural methods (0 = automatic)");
  cmd->add_option("--hidden", args->hidden, "Hidden sizes for the deep methods (default 400-400)");
  cmd->add_option("--device", args->device, "cpu, cuda or auto")->capture_default_str();
  cmd->add_option("--threads", args->threads, "Compute threads (0 = tuned default)");
  cmd->add_option("--model", args->models,
                  "Evaluate these trained model files instead of training (repeatable)");
  cmd->add_option("--json", args->json_out, "Write results as JSON");
  cmd->add_option("--csv", args->csv_out, "Write results as CSV");
  cmd->add_option("--plot", args->plot,
                  "Write a precision-recall plot (SVG) of the first run of each method and length");
  cmd->add_option("--map-at", args->map_at, "Also report mAP@k for this k");
  cmd->add_option("--split", args->split,
                  "per-class: --queries-per-class random queries per label, the rest the gallery; "
                  "dataset: the dataset's own test items query its train items")
      ->capture_default_str();
  cmd->callback([args, cmd] {
    namespace L = imsat::learn;
    namespace Q = imsat::query;
    std::vector<L::Method> methods;
    for (const std::string& name : split_list(args->methods)) {
      L::Method m = take(L::parse_method(name));
      if (m == L::Method::kKmeans)
        throw std::runtime_error("--methods: kmeans is not a hashing method");
      methods.push_back(m);
    }
    std::vector<int> bit_list;
    for (const std::string& b : split_list(args->bits)) bit_list.push_back(std::stoi(b));
    if (methods.empty() || bit_list.empty()) throw std::runtime_error("no methods or bits given");
    if (args->seeds < 1) throw std::runtime_error("--seeds must be at least 1");
    L::Dataset data = take(L::load_dataset(args->data, args->labels));
    if (data.labels.empty()) throw std::runtime_error(args->data + ": evaluation needs labels");
    Q::Split split;
    if (args->split == "per-class") {
      split = take(Q::split_per_class(data.labels, args->per_class, args->seed));
    } else if (args->split == "dataset") {
      if (data.train_rows == 0 || data.train_rows >= data.rows) {
        throw std::runtime_error(args->data +
                                 ": --split dataset needs a folder with both train and test files");
      }
      std::vector<size_t> q, g;
      for (size_t i = 0; i < data.rows; ++i) (i < data.train_rows ? g : q).push_back(i);
      split = take(Q::given_split(std::move(q), std::move(g), data.rows));
    } else {
      throw std::runtime_error("--split must be per-class or dataset, got '" + args->split + "'");
    }
    std::fprintf(stderr, "imsat: %zu items, %zu queries, %zu gallery\n", data.rows,
                 split.queries.size(), split.gallery.size());
    std::vector<EvalRow> rows;
    auto evaluate = [&](const L::Model& model, uint64_t seed, double train_seconds) {
      auto t1 = std::chrono::steady_clock::now();
      std::vector<uint8_t> codes = take(model.encode(data));
      Q::RetrievalMetrics m = take(Q::evaluate_retrieval(codes, model.bits(), data.labels, split));
      auto t2 = std::chrono::steady_clock::now();
      EvalRow row{L::method_name(model.method()),
                  model.bits(),
                  seed,
                  m,
                  train_seconds,
                  std::chrono::duration<double>(t2 - t1).count(),
                  -1.0,
                  {}};
      if (args->map_at > 0) {
        row.map_at_k = take(Q::map_at_k(codes, model.bits(), data.labels, split, args->map_at));
      }
      if (!args->plot.empty()) {
        row.curves = take(Q::retrieval_curves(codes, model.bits(), data.labels, split, {500}));
      }
      char trained[48] = "loaded";
      if (train_seconds >= 0) std::snprintf(trained, sizeof(trained), "train %.1fs", train_seconds);
      std::fprintf(stderr, "imsat:   mAP %.4f P@500 %.4f P@r2 %.4f (empty %.3f) %s\n", m.map,
                   m.precision_at_n, m.precision_at_r, m.empty_r_share, trained);
      rows.push_back(row);
    };
    // With --model, methods are trained only when --methods is also given.
    const bool train_too = args->models.empty() || cmd->count("--methods") > 0;
    const std::vector<L::Method> train_methods = train_too ? methods : std::vector<L::Method>{};
    const std::vector<int> train_bits = train_too ? bit_list : std::vector<int>{};
    if (!train_too) {
      methods.clear();
      bit_list.clear();
    }
    size_t loaded_methods = 0;
    if (!args->models.empty()) {
      for (const std::string& path : args->models) {
        L::Model model = take(L::Model::load(path));
        if (model.is_clustering()) throw std::runtime_error(path + ": a clustering model");
        std::fprintf(stderr, "imsat: %s (%s, %d bits)\n", path.c_str(),
                     L::method_name(model.method()).c_str(), model.bits());
        // Loaded models come first in the table, in the order given.
        if (std::find(methods.begin(), methods.end(), model.method()) == methods.end()) {
          methods.insert(methods.begin() + static_cast<long>(loaded_methods++), model.method());
        }
        if (std::find(bit_list.begin(), bit_list.end(), model.bits()) == bit_list.end()) {
          bit_list.push_back(model.bits());
        }
        evaluate(model, 0, -1.0);  // negative: trained elsewhere, time unknown
      }
    }
    for (int bits : train_bits) {
      for (L::Method method : train_methods) {
        const bool stochastic = method != L::Method::kSh;
        const int runs = stochastic ? args->seeds : 1;
        for (int r = 0; r < runs; ++r) {
          L::TrainConfig c;
          c.method = method;
          c.bits = bits;
          c.seed = args->seed + static_cast<uint64_t>(r);
          c.epochs = args->epochs;
          c.device = args->device;
          c.threads = args->threads;
          if (cmd->count("--hidden") > 0 && method != L::Method::kLinearImsat &&
              method != L::Method::kLinearRim) {
            c.has_hidden = true;
            c.hidden = parse_hidden(args->hidden);
          }
          std::fprintf(stderr, "imsat: %s %d bits seed %llu ...\n", L::method_name(method).c_str(),
                       bits, static_cast<unsigned long long>(c.seed));
          auto t0 = std::chrono::steady_clock::now();
          L::Model model = take(L::train(data, c));
          evaluate(model, c.seed,
                   std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
        }
      }
    }
    // Table: one line per (method, bits), mean +- std over seeds, figures in percent.
    const std::string map_k_head = "mAP@" + std::to_string(args->map_at);
    std::printf("%-13s %5s %5s %16s %16s %16s", "method", "bits", "runs", "mAP", "P@500", "P@r=2");
    if (args->map_at > 0) std::printf(" %16s", map_k_head.c_str());
    std::printf(" %10s\n", "train s");
    for (int bits : bit_list) {
      for (L::Method method : methods) {
        std::vector<double> a, p, r, t, mk;
        for (const EvalRow& row : rows) {
          if (row.bits != bits || row.method != L::method_name(method)) continue;
          mk.push_back(row.map_at_k * 100);
          a.push_back(row.m.map * 100);
          p.push_back(row.m.precision_at_n * 100);
          r.push_back(row.m.precision_at_r * 100);
          t.push_back(row.train_seconds);
        }
        auto cell = [](const std::vector<double>& v) {
          char buf[32];
          if (v.size() > 1) {
            std::snprintf(buf, sizeof(buf), "%.1f +- %.1f", mean_of(v), std_of(v));
          } else {
            std::snprintf(buf, sizeof(buf), "%.1f", mean_of(v));
          }
          return std::string(buf);
        };
        std::vector<double> trained;
        for (double x : t) {
          if (x >= 0) trained.push_back(x);
        }
        char train_cell[32] = "-";
        if (!trained.empty())
          std::snprintf(train_cell, sizeof(train_cell), "%.1f", mean_of(trained));
        if (a.empty()) continue;
        std::printf("%-13s %5d %5zu %16s %16s %16s", L::method_name(method).c_str(), bits, a.size(),
                    cell(a).c_str(), cell(p).c_str(), cell(r).c_str());
        if (args->map_at > 0) std::printf(" %16s", cell(mk).c_str());
        std::printf(" %10s\n", train_cell);
      }
    }
    if (!args->json_out.empty()) {
      nlohmann::json out;
      out["data"] = args->data;
      out["queries"] = split.queries.size();
      out["gallery"] = split.gallery.size();
      out["results"] = nlohmann::json::array();
      for (const EvalRow& row : rows) {
        out["results"].push_back(
            {{"method", row.method},
             {"bits", row.bits},
             {"seed", row.seed},
             {"map", row.m.map},
             {"precision_at_500", row.m.precision_at_n},
             {"precision_at_r2", row.m.precision_at_r},
             {"empty_r2_share", row.m.empty_r_share},
             {"train_seconds",
              row.train_seconds < 0 ? nlohmann::json(nullptr) : nlohmann::json(row.train_seconds)},
             {"eval_seconds", row.eval_seconds}});
        if (row.map_at_k >= 0) {
          out["results"].back()["map_at_k"] = row.map_at_k;
          out["results"].back()["k"] = args->map_at;
        }
        if (!row.curves.precision.empty()) {
          out["results"].back()["pr_curve"] = {{"radius_precision", row.curves.precision},
                                               {"radius_recall", row.curves.recall}};
        }
      }
      std::ofstream f(args->json_out);
      f << out.dump(2) << "\n";
      if (!f) throw std::runtime_error(args->json_out + ": cannot write");
    }
    if (!args->plot.empty()) {
      std::vector<imsat::cli::PlotCurve> curves;
      for (int bits : bit_list) {
        for (L::Method method : methods) {
          for (const EvalRow& row : rows) {
            if (row.bits != bits || row.method != L::method_name(method)) continue;
            curves.push_back({row.method + " " + std::to_string(bits) + " bits",
                              row.curves.recall, row.curves.precision});
            break;
          }
        }
      }
      imsat::cli::write_pr_svg(args->plot,
                               "Precision-recall of Hamming ranking, " +
                                   std::filesystem::path(args->data).filename().string(), curves);
      std::fprintf(stderr, "imsat: wrote %s\n", args->plot.c_str());
    }
    if (!args->csv_out.empty()) {
      std::ofstream f(args->csv_out);
      f << "method,bits,seed,map,precision_at_500,precision_at_r2,empty_r2_share,train_seconds,"
           "eval_seconds\n";
      for (const EvalRow& row : rows) {
        f << row.method << ',' << row.bits << ',' << row.seed << ',' << row.m.map << ','
          << row.m.precision_at_n << ',' << row.m.precision_at_r << ',' << row.m.empty_r_share
          << ',' << (row.train_seconds < 0 ? std::string() : std::to_string(row.train_seconds))
          << ',' << row.eval_seconds << '\n';
      }
      if (!f) throw std::runtime_error(args->csv_out + ": cannot write");
    }
  });
}

struct ClusterArgs {
  std::string data, labels, method = "imsat-vat", hidden, device = "auto", model, out;
  int clusters = 10, epochs = 0, threads = 0;
  uint64_t seed = 0;
};

// Trains (or loads, with --model) a clustering model, assigns every item and, when the data
// has labels, prints clustering accuracy (Hungarian matching) and NMI.
void add_cluster(CLI::App& app) {
  auto args = std::make_shared<ClusterArgs>();
  CLI::App* cmd =
      app.add_subcommand("cluster", "Train or apply a clustering model; print ACC and NMI");
  cmd->add_option("--data", args->data, "Dataset (IDX file or folder, fvecs, CSV)")->required();
  cmd->add_option("--labels", args->labels, "IDX labels for an IDX image file");
  cmd->add_option("--method", args->method,
                  "imsat-vat, imsat-rpt, deep-rim, linear-imsat, linear-rim or kmeans")
      ->capture_default_str();
  cmd->add_option("--clusters", args->clusters, "Number of clusters")->capture_default_str();
  cmd->add_option("--hidden", args->hidden, "Hidden sizes (default 1200-1200 for IMSAT)");
  cmd->add_option("--epochs", args->epochs, "Epochs (0 = automatic)");
  cmd->add_option("--device", args->device, "cpu, cuda or auto")->capture_default_str();
  cmd->add_option("--seed", args->seed, "Random seed")->capture_default_str();
  cmd->add_option("--threads", args->threads, "Compute threads (0 = tuned default)");
  cmd->add_option("--model", args->model, "Apply this clustering model instead of training");
  cmd->add_option("--out", args->out, "Write the trained model here");
  cmd->callback([args, cmd] {
    namespace L = imsat::learn;
    namespace Q = imsat::query;
    L::Dataset data = take(L::load_dataset(args->data, args->labels));
    auto t0 = std::chrono::steady_clock::now();
    L::Model model;
    if (!args->model.empty()) {
      model = take(L::Model::load(args->model));
      if (!model.is_clustering())
        throw std::runtime_error(args->model + ": not a clustering model");
    } else {
      L::TrainConfig c;
      c.method = take(L::parse_method(args->method));
      c.clusters = args->clusters;
      c.epochs = args->epochs;
      c.device = args->device;
      c.seed = args->seed;
      c.threads = args->threads;
      if (cmd->count("--hidden") > 0) {
        c.has_hidden = true;
        c.hidden = parse_hidden(args->hidden);
      }
      ProgressPrinter printer(true);
      c.on_progress = [&printer](const L::Progress& p, bool e) { printer(p, e); };
      model = take(L::train(data, c));
      if (!args->out.empty()) check(model.save(args->out));
    }
    const double train_s =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::vector<int32_t> assigned = take(model.assign(data));
    std::vector<size_t> sizes(static_cast<size_t>(model.clusters()), 0);
    for (int32_t a : assigned) ++sizes[static_cast<size_t>(a)];
    std::printf("method: %s\nclusters: %d\nitems: %zu\ntrain seconds: %.1f\ncluster sizes:",
                L::method_name(model.method()).c_str(), model.clusters(), data.rows, train_s);
    for (size_t n : sizes) std::printf(" %zu", n);
    std::printf("\n");
    if (!data.labels.empty()) {
      std::printf("accuracy: %.4f\nnmi: %.4f\n",
                  take(Q::clustering_accuracy(assigned, data.labels)),
                  take(Q::normalized_mutual_information(assigned, data.labels)));
    }
  });
}

#endif  // IMSAT_HAVE_QUERY

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"imsat: learned binary hashing (IMSAT) and Hamming search"};
  app.require_subcommand(1);
  app.add_subcommand("info", "Print the build's libraries and chosen kernels")->callback(run_info);
#ifdef IMSAT_HAVE_LEARN
  add_train(app);
#endif
#ifdef IMSAT_HAVE_INDEX
  add_inspect(app);
#endif
#ifdef IMSAT_HAVE_QUERY
  add_eval(app);
  add_cluster(app);
  imsat::cli::add_encode(app);
  imsat::cli::add_index(app);
  imsat::cli::add_search(app);
  imsat::cli::add_serve(app);
#endif
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "imsat: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
