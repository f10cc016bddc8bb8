#include "training_options.h"

#include <cstdio>
#include <nlohmann/json.hpp>

#include "cli.h"

namespace imsat::cli {

void add_training_options(CLI::App* cmd, TrainingOptions* o, const std::string& hidden_help) {
  cmd->add_option("--hidden", o->hidden, hidden_help);
  CLI::Option* epochs =
      cmd->add_option("--epochs", o->epochs,
                      "Passes over the data; 0 = automatic: 50, or more on small data for at least "
                      "2 optimiser steps per item (at least 1,000; at most 14,000 on images, 5,000 "
                      "for hash functions of other data)")
          ->check(CLI::NonNegativeNumber)
          ->capture_default_str();
  cmd->add_option("--steps", o->steps,
                  "Optimiser steps (batches) instead of --epochs, rounded up to whole epochs")
      ->check(CLI::PositiveNumber)
      ->excludes(epochs);
  cmd->add_option("--eps-scale", o->eps_scale,
                  "SAT radius: this times the distance to the 10th nearest neighbour; 0 = "
                  "automatic (0.25 on images and for clustering, 1 for hash functions of other "
                  "data)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd->add_option("--augment", o->augment,
                  "IMSAT on images: affine also trains the codes to survive small random "
                  "rotations, scalings and shifts (beside VAT); none for other data")
      ->check(CLI::IsMember({"none", "affine"}))
      ->capture_default_str();
  cmd->add_option("--init", o->init,
                  "IMSAT hashing: itq adds a linear shortcut from the input to the codes and "
                  "starts it at PCA-ITQ's projection, so training refines PCA-ITQ's codes; "
                  "random starts from scratch")
      ->check(CLI::IsMember({"random", "itq"}))
      ->capture_default_str();
  cmd->add_option("--init-scale", o->init_scale,
                  "With --init itq: the standard deviation of each bit's starting logits")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  CLI::Option* auto_flag =
      cmd->add_flag("--auto", o->auto_settings,
                    "IMSAT hashing: choose lambda, --eps-scale and the training length without "
                    "labels (a small grid on a subsample, scored by --auto-criterion)");
  cmd->add_option("--auto-criterion", o->auto_criterion,
                  "With --auto: neighbours (how well one run's codes rank held-out items' nearest "
                  "neighbours in feature space), agreement (train each setting from two seeds "
                  "and score how alike the two place held-out items; can pick a nearly collapsed "
                  "run, see bench/README.md), overlap (train each setting from two seeds and "
                  "score how many of each held-out item's nearest codes both runs return) or "
                  "auto (neighbours on images, overlap on other data)")
      ->check(CLI::IsMember({"auto", "agreement", "neighbours", "overlap"}))
      ->needs(auto_flag)
      ->capture_default_str();
  cmd->add_option("--auto-lambdas", o->auto_lambdas,
                  "With --auto: the information weights to try, comma-separated (default: on "
                  "images half, once and twice the method's default; on other data "
                  "0.1,0.2,0.4,0.8); the radii are tried at the middle one")
      ->delimiter(',')
      ->check(CLI::PositiveNumber)
      ->needs(auto_flag);
  cmd->add_option("--auto-eps-scales", o->auto_eps_scales,
                  "With --auto: the radius scales to try, comma-separated (default 0.25,1,4)")
      ->delimiter(',')
      ->check(CLI::PositiveNumber)
      ->needs(auto_flag);
  cmd->add_option("--auto-steps", o->auto_steps,
                  "With --auto: the training lengths at which each setting is scored, "
                  "comma-separated (default 500,1000,2000,4000 on images; up to 8000 on other "
                  "data)")
      ->delimiter(',')
      ->check(CLI::Range(int64_t{1}, int64_t{100000000}))
      ->needs(auto_flag);
  cmd->add_option("--device", o->device, "cpu, cuda or auto")
      ->check(CLI::IsMember({"cpu", "cuda", "auto"}))
      ->capture_default_str();
  cmd->add_option("--cuda-graph", o->cuda_graph,
                  "On CUDA, capture the training step as one CUDA graph (on) or dispatch every "
                  "operator (off)")
      ->check(CLI::IsMember({"on", "off"}))
      ->capture_default_str();
  cmd->add_option("--threads", o->threads, "Compute threads (0 = tuned default)")
      ->check(CLI::NonNegativeNumber);
}

void apply_training_options(const CLI::App* cmd, const TrainingOptions& o, learn::TrainConfig* c,
                            bool quiet) {
  c->epochs = o.epochs;
  c->steps = o.steps;
  c->eps_scale = o.eps_scale;
  c->device = o.device;
  c->cuda_graph = o.cuda_graph == "on";
  c->threads = o.threads;
  const bool imsat = c->method == learn::Method::kImsatVat ||
                     c->method == learn::Method::kImsatRpt ||
                     c->method == learn::Method::kLinearImsat;
  c->augment_affine = imsat && o.augment == "affine";
  c->init_itq = imsat && o.init == "itq";
  c->itq_scale = o.init_scale;
  c->auto_settings = imsat && o.auto_settings && c->clusters == 0;
  if (o.auto_criterion == "agreement") c->search.criterion = learn::AutoCriterion::kAgreement;
  if (o.auto_criterion == "overlap") c->search.criterion = learn::AutoCriterion::kOverlap;
  if (o.auto_criterion == "neighbours") c->search.criterion = learn::AutoCriterion::kNeighbours;
  if (!o.auto_lambdas.empty()) c->search.lambdas = o.auto_lambdas;
  if (!o.auto_eps_scales.empty()) c->search.eps_scales = o.auto_eps_scales;
  if (!o.auto_steps.empty()) c->search.checkpoints = o.auto_steps;
  if (c->auto_settings && !quiet) {
    c->on_search = [](const learn::AutoTrial& t) {
      std::fprintf(stderr,
                   "\r\033[Kimsat: auto: lambda %.3g eps-scale %.3g after %lld steps: %s %.4f\n",
                   t.lambda, t.eps_scale, static_cast<long long>(t.steps),
                   learn::criterion_name(t.criterion), t.score);
    };
  }
  if (cmd->count("--hidden") > 0) {
    c->has_hidden = true;
    c->hidden = parse_hidden(o.hidden);
  }
}

void report_auto_choice(const learn::Model& model) {
  const nlohmann::json t = nlohmann::json::parse(model.training_json(), nullptr, false);
  if (!t.is_object() || !t.contains("auto")) return;
  const nlohmann::json& a = t["auto"];
  std::fprintf(
      stderr,
      "imsat: auto: chose lambda %.3g, eps-scale %.3g, %d epochs (%lld steps on the "
      "search's %zu items): the best %s %.4f of %zu trials, scored on %zu held-out "
      "items%s (%.0f s)\n",
      a.value("lambda", 0.0), a.value("eps_scale", 0.0), t.value("epochs", 0),
      static_cast<long long>(a.value("steps", int64_t{0})), a.value("search_rows", size_t{0}),
      a.value("criterion", std::string("held-out neighbour mAP")).c_str(), a.value("score", 0.0),
      a["trials"].size(), a.value("query_rows", size_t{0}),
      a.value("neighbours", 0) > 0
          ? (" against their " + std::to_string(a.value("neighbours", 0)) + " nearest").c_str()
          : "",
      a.value("seconds", 0.0));
}

}  // namespace imsat::cli
