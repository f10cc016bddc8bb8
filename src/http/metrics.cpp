// Request counters and latency histograms in the Prometheus text format (GET /metrics).
#include <sstream>

#include "http/http.h"

namespace imsat::http {

void Metrics::record(const std::string& route, int status, double seconds) {
  static const double bounds[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                  0.05,   0.1,   0.25,   0.5,   1,    2.5};
  std::lock_guard lock(mutex_);
  ++counts_[{route, status}];
  std::vector<uint64_t>& b = latency_[route];
  if (b.empty()) b.assign(std::size(bounds) + 1, 0);
  for (size_t i = 0; i < std::size(bounds); ++i) {
    if (seconds <= bounds[i]) ++b[i];
  }
  ++b.back();  // +Inf
  latency_sum_[route] += seconds;
}

std::string Metrics::prometheus_text(size_t items, size_t memory_bytes) const {
  static const char* bounds[] = {"0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025",
                                 "0.05",   "0.1",   "0.25",   "0.5",   "1",    "2.5"};
  std::ostringstream o;
  std::lock_guard lock(mutex_);
  o << "# HELP imsat_http_requests_total Requests answered, by route and status.\n"
    << "# TYPE imsat_http_requests_total counter\n";
  for (const auto& [k, n] : counts_) {
    o << "imsat_http_requests_total{route=\"" << k.first << "\",status=\"" << k.second << "\"} "
      << n << "\n";
  }
  o << "# HELP imsat_http_request_duration_seconds Time to answer a request, by route.\n"
    << "# TYPE imsat_http_request_duration_seconds histogram\n";
  for (const auto& [route, b] : latency_) {
    for (size_t i = 0; i + 1 < b.size(); ++i) {
      o << "imsat_http_request_duration_seconds_bucket{route=\"" << route << "\",le=\"" << bounds[i]
        << "\"} " << b[i] << "\n";
    }
    o << "imsat_http_request_duration_seconds_bucket{route=\"" << route << "\",le=\"+Inf\"} "
      << b.back() << "\n"
      << "imsat_http_request_duration_seconds_sum{route=\"" << route << "\"} "
      << latency_sum_.at(route) << "\n"
      << "imsat_http_request_duration_seconds_count{route=\"" << route << "\"} " << b.back()
      << "\n";
  }
  o << "# HELP imsat_index_items Live items in the code store.\n"
    << "# TYPE imsat_index_items gauge\nimsat_index_items " << items << "\n"
    << "# HELP imsat_index_memory_bytes Memory of the in-memory codes and buckets.\n"
    << "# TYPE imsat_index_memory_bytes gauge\nimsat_index_memory_bytes " << memory_bytes << "\n";
  return o.str();
}

}  // namespace imsat::http
