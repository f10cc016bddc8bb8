// imsat::query evaluation grid — `imsat eval --data`: trained model files and training runs
// (method x bits x seeds), each encoding every item and evaluated on one query/gallery split with
// the retrieval protocol (retrieval_metrics.h); the rows as JSON and CSV. The command line parses
// its flags into a GridRequest, calls evaluate_grid and prints.
#pragma once

#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"
#include "learn/learn.h"
#include "query/retrieval_metrics.h"

namespace imsat::query {

// One evaluated model.
struct GridRow {
  std::string method;
  int bits = 0;
  std::optional<uint64_t> seed;  // unknown for a loaded model without one in its header
  std::optional<double> lambda;  // the information weight it trained with, when it has one
  nlohmann::json settings;       // eps_scale, epochs, steps and the "auto" search, when recorded
  RetrievalMetrics m;            // Hamming ranking
  std::optional<RetrievalMetrics> asymmetric;  // mAP and P@N of asymmetric ranking
  double train_seconds = -1;                   // < 0: trained elsewhere (a loaded model)
  double eval_seconds = 0;
  double map_at_k = -1;  // < 0: not asked for
  Curves curves;         // when asked for
};

struct GridRequest {
  // Model files evaluated first, in this order; each must read images through the same pipeline
  // as the first (the data were read with it), and none may be a clustering model.
  std::vector<std::string> model_paths;
  // Training runs evaluated after them, in this order (method, bits, seed and the rest set).
  std::vector<learn::TrainConfig> runs;
  Split split;
  RetrievalOptions options;  // precision@N and radius r
  bool asymmetric = false;   // also rank asymmetrically (methods with soft bits)
  size_t map_at = 0;         // > 0: also mAP@k
  bool curves = false;       // also the precision-recall curve over Hamming radii
};

// What the caller shows while the grid runs; every member is optional.
struct GridObserver {
  // Before a model file is evaluated (loaded_first: the caller's already loaded model is used).
  std::function<void(const std::string& path, const learn::Model& model)> on_loaded;
  // Before a training run starts; may set config->on_progress.
  std::function<void(learn::TrainConfig* config)> on_training;
  // After a row is evaluated, with the model it came from.
  std::function<void(const learn::Model& model, const GridRow& row)> on_row;
};

// The rows, one per model file and training run, in order. `first_loaded` (may be null) is the
// first model file already loaded by the caller (to read the data through its image pipeline);
// it is moved from. InvalidArgument for a clustering model or a second image pipeline.
Result<std::vector<GridRow>> evaluate_grid(const learn::Dataset& data, const GridRequest& request,
                                           const GridObserver& observer = {},
                                           learn::Model* first_loaded = nullptr);

// The seed, lambda and recorded settings of a model's header ("training" object).
void read_training_record(const learn::Model& model, GridRow* row);

// One row as JSON (fractions), with keys named by the request's N and r.
nlohmann::json grid_row_json(const GridRow& row, const GridRequest& request);
// Every row as CSV with a header line.
std::string grid_csv(const std::vector<GridRow>& rows, const GridRequest& request);

}  // namespace imsat::query
