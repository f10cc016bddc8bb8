// Whole-store operations of the query engine: the paper's protocol over the store's labelled
// items, and code health of a sample.
#include <chrono>
#include <limits>

#include "query/engine.h"

namespace imsat::query {

Result<StoreEvaluation> QueryEngine::evaluate(const EvaluateRequest& request) const {
  const auto t0 = std::chrono::steady_clock::now();
  std::vector<int32_t> tags;
  const std::vector<uint8_t> all = store_->sample_codes(std::numeric_limits<size_t>::max(), &tags);
  const size_t bytes = static_cast<size_t>(bits()) / 8;
  std::vector<uint8_t> codes;
  std::vector<int32_t> labels;
  for (size_t i = 0; i < tags.size(); ++i) {
    if (tags[i] == index::kNoTag) continue;
    codes.insert(codes.end(), all.begin() + static_cast<std::ptrdiff_t>(i * bytes),
                 all.begin() + static_cast<std::ptrdiff_t>((i + 1) * bytes));
    labels.push_back(tags[i]);
  }
  if (labels.empty())
    return Status::invalid_argument("the store holds no labelled items to evaluate");
  IMSAT_ASSIGN_OR_RETURN(const Split split,
                         split_per_class(labels, request.queries_per_class, request.seed));
  StoreEvaluation out;
  IMSAT_ASSIGN_OR_RETURN(out.metrics,
                         evaluate_retrieval(codes, bits(), labels, split, request.options));
  out.queries = split.queries.size();
  out.gallery = split.gallery.size();
  out.labelled_items = labels.size();
  out.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return out;
}

Result<StoreHealth> QueryEngine::health(size_t sample_items, size_t distance_queries) const {
  StoreHealth out;
  out.items = store_->info().items;
  out.bits = bits();
  const std::vector<uint8_t> sample = store_->sample_codes(sample_items);
  if (sample.empty()) return out;
  IMSAT_ASSIGN_OR_RETURN(out.health, code_health(sample, bits()));
  out.distance_histogram = store_->distance_histogram(distance_queries, 1);
  out.bucket_occupancy = store_->occupancy_histograms(16);
  return out;
}

}  // namespace imsat::query
