// The service itself: GET /healthz, GET / (web page), GET /openapi.json, GET /metrics.
#include <algorithm>
#include <cctype>

#include "http/http_internal.h"

namespace imsat::http::internal {

// 200 while the server answers reads; "degraded", naming each collection that cannot take writes
// (a full disk) and why, so that a monitor can tell.
Response handle_healthz(Call& call) {
  json blocked = json::object();
  for (const auto& c : call.catalog.list()) {
    const query::StoreInfo info = c->engine().info();
    if (!info.writable && c->primary().empty()) {
      blocked[c->name()] = without_server_paths(info.not_writable, call.catalog);
    }
  }
  if (blocked.empty()) return json_response(200, {{"status", "ok"}});
  return json_response(200, {{"status", "degraded"}, {"not_writable", blocked}});
}

// Ready for traffic: the server listens only once every collection is open (recovered and
// checked), so it is ready from its first answer until shutdown begins; then 503, so that a load
// balancer stops sending requests while those in flight finish.
Response handle_readyz(Call& call) {
  if (call.draining) {
    return json_response(503, {{"status", "shutting_down"}});
  }
  return json_response(200, {{"status", "ready"}, {"collections", call.catalog.list().size()}});
}

Response handle_page(Call&) {
  Response r;
  r.content_type = "text/html; charset=utf-8";
  r.body = web_page();
  return r;
}

Response handle_openapi(Call&) {
  json doc = json::parse(openapi_json());
  // The route table names every operation: add any the hand-written part lacks, and keep each
  // summary, operationId and security requirement in step with it. An endpoint under
  // /v1/collections/{collection} documents the same operation as its un-prefixed path.
  for (const Endpoint& e : endpoints()) {
    const Route& route = *e.route;
    std::string method = route.method;
    std::transform(method.begin(), method.end(), method.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    json& op = doc["paths"][e.pattern][method];
    if (e.prefixed) {
      const json* plain =
          doc["paths"].contains(route.pattern) && doc["paths"][route.pattern].contains(method)
              ? &doc["paths"][route.pattern][method]
              : nullptr;
      if (plain != nullptr) op = *plain;
      op["parameters"] = op.value("parameters", json::array());
      // Path-level parameters of the un-prefixed path ({key}) belong to this operation too.
      const json& path_item = doc["paths"][route.pattern];
      if (path_item.contains("parameters")) {
        for (const json& p : path_item["parameters"]) op["parameters"].push_back(p);
      }
      op["parameters"].push_back({{"name", "collection"},
                                  {"in", "path"},
                                  {"required", true},
                                  {"schema", {{"type", "string"}}}});
      op["summary"] = std::string(route.summary) + " (in the named collection)";
    } else {
      op["summary"] = route.summary;
      if (route.scope == Scope::kCollection) {
        op["description"] = "Acts on the default collection (--default-collection).";
      }
    }
    op["operationId"] = e.operation_id;
    if (route.auth == Auth::kToken) op["security"] = json::array({{{"bearer", json::array()}}});
    if (!op.contains("responses")) op["responses"] = {{"200", {{"description", "OK"}}}};
    if (route.scope == Scope::kCollection && !op["responses"].contains("404")) {
      op["responses"]["404"] = {
          {"description", "no such collection (or, un-prefixed, no default collection)"},
          {"content",
           {{"application/json", {{"schema", {{"$ref", "#/components/schemas/Error"}}}}}}}};
    }
  }
  return json_response(200, doc);
}

Response handle_metrics(Call& call) {
  Response r;
  r.content_type = "text/plain; version=0.0.4";
  size_t items = 0, memory = 0;
  std::string writable =
      "# HELP imsat_store_writable Whether a collection's store takes writes (0: disk full or "
      "read-only).\n# TYPE imsat_store_writable gauge\n";
  for (const auto& c : call.catalog.list()) {
    const query::StoreInfo info = c->engine().info();
    items += info.items;
    memory += info.memory_bytes;
    writable += "imsat_store_writable{collection=\"" + c->name() + "\"} " +
                (info.writable ? "1" : "0") + "\n";
  }
  r.body = call.metrics.prometheus_text(items, memory) + writable;
  return r;
}

}  // namespace imsat::http::internal
