#include "training_options.h"

#include "cli.h"

namespace imsat::cli {

void add_training_options(CLI::App* cmd, TrainingOptions* o, const std::string& hidden_help) {
  cmd->add_option("--hidden", o->hidden, hidden_help);
  cmd->add_option("--epochs", o->epochs,
                  "Epochs; 0 = automatic (50, or more on small data: at least 14,000 steps)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
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

void apply_training_options(const CLI::App* cmd, const TrainingOptions& o, learn::TrainConfig* c) {
  c->epochs = o.epochs;
  c->device = o.device;
  c->cuda_graph = o.cuda_graph == "on";
  c->threads = o.threads;
  if (cmd->count("--hidden") > 0) {
    c->has_hidden = true;
    c->hidden = parse_hidden(o.hidden);
  }
}

}  // namespace imsat::cli
