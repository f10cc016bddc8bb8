// The options every training subcommand shares (train, eval, cluster): --hidden, --epochs,
// --device, --threads, declared and applied in one place.
#pragma once

#include <CLI/CLI.hpp>
#include <string>
#include <vector>

#include "learn/learn.h"

namespace imsat::cli {

struct TrainingOptions {
  std::string hidden, device = "auto", cuda_graph = "on", augment = "none", init = "random",
                      auto_criterion = "auto";
  int epochs = 0, threads = 0;
  int64_t steps = 0;
  double eps_scale = 0, init_scale = 3.0;
  bool auto_settings = false;
  // --auto's grid; empty: AutoSearch's defaults.
  std::vector<double> auto_lambdas, auto_eps_scales;
  std::vector<int64_t> auto_steps;
};

void add_training_options(CLI::App* cmd, TrainingOptions* o, const std::string& hidden_help);
// Copies the options into `c`; the hidden sizes only when --hidden was given; --auto only for
// the methods it applies to (IMSAT hashing), with a report of each trial on stderr unless quiet.
void apply_training_options(const CLI::App* cmd, const TrainingOptions& o, learn::TrainConfig* c,
                            bool quiet = false);
// One line on stderr saying what the automatic search chose and why, from a model's header.
void report_auto_choice(const learn::Model& model);

}  // namespace imsat::cli
