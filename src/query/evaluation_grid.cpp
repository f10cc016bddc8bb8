// The evaluation grid: each model encodes every item, then the retrieval protocol on one split.
#include "query/evaluation_grid.h"

#include <chrono>

#include "query/retrieval_metrics.h"

namespace imsat::query {
namespace {

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// Spectral hashing's bit probabilities are 0 or 1: its asymmetric ranking is its Hamming ranking
// (tests/query), so it is not computed again. LSH and PCA-ITQ give soft bits (learn.h).
bool hard_bits(learn::Method method) { return method == learn::Method::kSh; }

Status evaluate_row(const learn::Dataset& data, const GridRequest& request,
                    const learn::Model& model, GridRow* row) {
  const auto start = std::chrono::steady_clock::now();
  IMSAT_ASSIGN_OR_RETURN(const std::vector<uint8_t> codes, model.encode(data));
  const int bits = model.bits();
  IMSAT_ASSIGN_OR_RETURN(
      row->m, evaluate_retrieval(codes, bits, data.labels, request.split, request.options));
  if (hard_bits(model.method())) {
    row->asymmetric = row->m;
  } else if (request.asymmetric) {
    IMSAT_ASSIGN_OR_RETURN(const std::vector<float> probabilities,
                           model.bit_probabilities(data.values.data(), data.rows, data.cols));
    IMSAT_ASSIGN_OR_RETURN(
        row->asymmetric, evaluate_asymmetric(probabilities, codes, bits, data.labels, request.split,
                                             request.options));
  }
  row->eval_seconds = seconds_since(start);
  if (request.map_at > 0) {
    IMSAT_ASSIGN_OR_RETURN(row->map_at_k,
                           map_at_k(codes, bits, data.labels, request.split, request.map_at));
  }
  if (request.curves) {
    IMSAT_ASSIGN_OR_RETURN(row->curves, retrieval_curves(codes, bits, data.labels, request.split,
                                                         {request.options.precision_at}));
  }
  return Status::ok();
}

}  // namespace

void read_training_record(const learn::Model& model, GridRow* row) {
  const nlohmann::json t = nlohmann::json::parse(model.training_json(), nullptr, false);
  if (t.is_discarded() || !t.is_object()) return;
  if (t.contains("seed") && t["seed"].is_number_unsigned()) row->seed = t["seed"].get<uint64_t>();
  if (t.contains("lambda") && t["lambda"].is_number()) row->lambda = t["lambda"].get<double>();
  for (const char* key : {"eps_scale", "epochs", "steps", "init", "itq_scale"}) {
    if (t.contains(key)) row->settings[key] = t[key];
  }
  // The search's choice with every trial it scored (a few dozen), so that a result file shows
  // why each seed chose what it chose.
  if (t.contains("auto")) row->settings["auto"] = t["auto"];
}

Result<std::vector<GridRow>> evaluate_grid(const learn::Dataset& data, const GridRequest& request,
                                           const GridObserver& observer,
                                           learn::Model* first_loaded) {
  if (data.labels.size() != data.rows) {
    return Status::invalid_argument("evaluation needs a label for every item");
  }
  std::vector<GridRow> rows;
  std::string first_pipeline;
  for (size_t i = 0; i < request.model_paths.size(); ++i) {
    const std::string& path = request.model_paths[i];
    learn::Model model;
    if (i == 0 && first_loaded != nullptr) {
      model = std::move(*first_loaded);
    } else {
      IMSAT_ASSIGN_OR_RETURN(model, learn::Model::load(path));
    }
    if (model.is_clustering()) return Status::invalid_argument(path + ": a clustering model");
    if (i == 0) first_pipeline = model.image_pipeline();
    if (model.image_pipeline() != first_pipeline) {
      return Status::invalid_argument(path + ": reads images through another pipeline than " +
                                      request.model_paths.front() + "; evaluate them separately");
    }
    if (observer.on_loaded) observer.on_loaded(path, model);
    GridRow row;
    row.method = learn::method_name(model.method());
    row.bits = model.bits();
    read_training_record(model, &row);
    IMSAT_RETURN_IF_ERROR(evaluate_row(data, request, model, &row));
    if (observer.on_row) observer.on_row(model, row);
    rows.push_back(std::move(row));
  }
  for (learn::TrainConfig config : request.runs) {
    if (observer.on_training) observer.on_training(&config);
    const auto start = std::chrono::steady_clock::now();
    IMSAT_ASSIGN_OR_RETURN(learn::Model model, learn::train(data, config));
    GridRow row;
    row.method = learn::method_name(config.method);
    row.bits = config.bits;
    row.train_seconds = seconds_since(start);
    read_training_record(model, &row);
    IMSAT_RETURN_IF_ERROR(evaluate_row(data, request, model, &row));
    if (observer.on_row) observer.on_row(model, row);
    rows.push_back(std::move(row));
  }
  return rows;
}

nlohmann::json grid_row_json(const GridRow& row, const GridRequest& request) {
  const std::string p_at = "precision_at_" + std::to_string(request.options.precision_at);
  const std::string radius = std::to_string(request.options.radius);
  const auto or_null = [](const auto& v) {
    return v ? nlohmann::json(*v) : nlohmann::json(nullptr);
  };
  nlohmann::json j = {{"method", row.method},
                      {"bits", row.bits},
                      {"seed", or_null(row.seed)},
                      {"lambda", or_null(row.lambda)},
                      {"map", row.m.map},
                      {p_at, row.m.precision_at_n},
                      {"precision_at_r" + radius, row.m.precision_at_r},
                      {"empty_r" + radius + "_share", row.m.empty_r_share},
                      {"train_seconds", row.train_seconds < 0 ? nlohmann::json(nullptr)
                                                              : nlohmann::json(row.train_seconds)},
                      {"eval_seconds", row.eval_seconds}};
  if (!row.settings.is_null()) j["settings"] = row.settings;
  if (row.asymmetric) {
    // "score" names the asymmetric distance (result files without "score" hold the expected
    // Hamming distance's figures).
    j["asymmetric"] = {{"map", row.asymmetric->map},
                       {p_at, row.asymmetric->precision_at_n},
                       {"score", "negative log-likelihood"}};
  }
  if (row.map_at_k >= 0) {
    j["map_at_k"] = row.map_at_k;
    j["k"] = request.map_at;
  }
  if (!row.curves.precision.empty()) {
    j["pr_curve"] = {{"radius_precision", row.curves.precision},
                     {"radius_recall", row.curves.recall}};
  }
  return j;
}

std::string grid_csv(const std::vector<GridRow>& rows, const GridRequest& request) {
  const std::string n = std::to_string(request.options.precision_at);
  const std::string r = std::to_string(request.options.radius);
  std::string csv =
      "method,bits,seed,lambda,map,precision_at_" + n + ",precision_at_r" + r + ",empty_r" + r +
      "_share,train_seconds,eval_seconds,asymmetric_map,asymmetric_precision_at_" + n + "\n";
  for (const GridRow& row : rows) {
    csv += row.method + ',' + std::to_string(row.bits) + ',' +
           (row.seed ? std::to_string(*row.seed) : std::string()) + ',' +
           (row.lambda ? std::to_string(*row.lambda) : std::string()) + ',' +
           std::to_string(row.m.map) + ',' + std::to_string(row.m.precision_at_n) + ',' +
           std::to_string(row.m.precision_at_r) + ',' + std::to_string(row.m.empty_r_share) + ',' +
           (row.train_seconds < 0 ? std::string() : std::to_string(row.train_seconds)) + ',' +
           std::to_string(row.eval_seconds) + ',' +
           (row.asymmetric ? std::to_string(row.asymmetric->map) + ',' +
                                 std::to_string(row.asymmetric->precision_at_n)
                           : std::string(",")) +
           '\n';
  }
  return csv;
}

}  // namespace imsat::query
