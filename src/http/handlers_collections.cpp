// Collections: GET /v1/collections, PUT, GET and DELETE /v1/collections/{name}.
#include "http/http_internal.h"
#include "query/json_format.h"

namespace imsat::http::internal {

Response handle_collections_list(Call& call) {
  json list = json::array();
  for (const auto& c : call.catalog.list()) {
    const query::StoreInfo info = c->engine().info();
    const std::optional<query::ModelInfo> model = c->engine().model_info();
    list.push_back({{"name", c->name()},
                    {"bits", info.bits},
                    {"items", info.items},
                    {"model_fingerprint", model ? json(model->fingerprint) : json()},
                    {"indexed_fields", c->engine().indexed_fields()}});
  }
  const std::string fallback = call.catalog.default_name();
  return json_response(
      200, {{"collections", list}, {"default", fallback.empty() ? json() : json(fallback)}});
}

Response handle_collection_create(Call& call) {
  query::CollectionSpec spec;
  spec.remote = true;
  const std::string ct = call.header("content-type");
  if (ct.rfind("application/octet-stream", 0) == 0) {
    if (call.request.body.empty()) throw HttpError{400, "the body holds no model file"};
    for (const auto& [name, value] : call.params) {
      if (name != "tables" && name != "expected_items") {
        throw HttpError{400, "unknown parameter '" + name + "' (tables, expected_items)",
                        "unknown_field"};
      }
    }
    json p = json::object();
    for (const auto& [name, value] : call.params) {
      const json v = json::parse(value, nullptr, false);
      p[name] = v.is_discarded() ? json(value) : v;
    }
    spec.tables = static_cast<int>(get_size(p, "tables", 0, 64));
    spec.expected_items = get_size(p, "expected_items", 1000000, size_t{1} << 40);
    spec.model_bytes = call.request.body;
  } else {
    json body = json::object();
    if (!call.request.body.empty()) {
      call.require_json_content();
      body = call.json_body();
      if (!body.is_object()) throw HttpError{400, "the body must be a JSON object"};
    }
    check_fields(body, {"bits", "model", "tables", "expected_items"});
    spec.bits = static_cast<int>(get_size(body, "bits", 0, 1 << 20));
    if (body.contains("model")) {
      if (!body["model"].is_string()) {
        throw HttpError{400, "'model' must be the path of a model file on the server"};
      }
      spec.model_path = body["model"].get<std::string>();
    }
    spec.tables = static_cast<int>(get_size(body, "tables", 0, 64));
    spec.expected_items = get_size(body, "expected_items", 1000000, size_t{1} << 40);
  }
  const std::shared_ptr<query::Collection> c =
      take(call.catalog.create(call.collection_name, spec));
  return json_response(201, collection_info(*c, call.limits, call.token_required));
}

Response handle_collection_get(Call& call) {
  return json_response(200,
                       collection_info(*call.named_collection(), call.limits, call.token_required));
}

Response handle_collection_drop(Call& call) {
  call.named_collection();  // 404 for an unknown name
  check(call.catalog.drop(call.collection_name));
  return json_response(200, {{"dropped", call.collection_name}});
}

}  // namespace imsat::http::internal
