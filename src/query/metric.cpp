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

double reported_distance(learn::Metric metric, double squared_l2) {
  return metric == learn::Metric::kCosine ? squared_l2 / 2 : std::sqrt(squared_l2);
}

}  // namespace imsat::query
