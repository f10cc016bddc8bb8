// The service itself: GET /healthz, GET / (web page), GET /openapi.json, GET /metrics.
#include <algorithm>
#include <cctype>

#include "http/http_internal.h"

namespace imsat::http::internal {

Response handle_healthz(Call&) { return json_response(200, {{"status", "ok"}}); }

Response handle_page(Call&) {
  Response r;
  r.content_type = "text/html; charset=utf-8";
  r.body = web_page();
  return r;
}

Response handle_openapi(Call&) {
  json doc = json::parse(openapi_json());
  // The route table names every operation: add any the hand-written part lacks, and keep each
  // summary and security requirement in step with it.
  for (const Route& route : route_table()) {
    std::string method = route.method;
    std::transform(method.begin(), method.end(), method.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    json& op = doc["paths"][route.pattern][method];
    op["summary"] = route.summary;
    op["operationId"] = route.name;
    if (route.auth == Auth::kToken) op["security"] = json::array({{{"bearer", json::array()}}});
    if (!op.contains("responses")) op["responses"] = {{"200", {{"description", "OK"}}}};
  }
  return json_response(200, doc);
}

Response handle_metrics(Call& call) {
  Response r;
  r.content_type = "text/plain; version=0.0.4";
  const index::StoreInfo info = call.engine.info();
  r.body = call.metrics.prometheus_text(info.items, info.memory_bytes);
  return r;
}

}  // namespace imsat::http::internal
