#include "query/metric.h"

#include <cmath>

namespace imsat::query {

std::string metric_of(const learn::Model& model) {
  const std::optional<learn::Metric> m = model.metric();
  return m ? learn::metric_name(*m) : std::string();
}

Result<learn::Metric> parse_store_metric(const std::string& recorded) {
  if (recorded.empty()) return learn::Metric::kL2;
  return learn::parse_metric(recorded);
}

bool scale_to_unit_length(float* v, size_t dim) {
  double sq = 0;
  for (size_t i = 0; i < dim; ++i) sq += static_cast<double>(v[i]) * v[i];
  if (sq == 0) return false;
  const double inv = 1.0 / std::sqrt(sq);
  for (size_t i = 0; i < dim; ++i) v[i] = static_cast<float>(v[i] * inv);
  return true;
}

double reported_distance(learn::Metric metric, double squared_l2) {
  return metric == learn::Metric::kCosine ? squared_l2 / 2 : std::sqrt(squared_l2);
}

}  // namespace imsat::query
