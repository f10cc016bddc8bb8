// The store as a whole: GET /v1/info, POST /v1/evaluate, GET /v1/health/codes; collections
// (list, create, get, drop) and snapshots.
#include <cstdio>
#include <limits>

#include "http/http_internal.h"
#include "query/json_format.h"

namespace imsat::http::internal {

json collection_info(const query::Collection& c, const Limits& limits, bool token_required) {
  query::QueryEngine& engine = c.engine();
  json j = query::store_info_json(engine.info());
  j["collection"] = c.name();
  j["indexed_fields"] = engine.indexed_fields();
  j["cached_vectors"] = engine.cached_vectors();
  j["limits"] = {{"max_body_bytes", limits.max_body_bytes},
                 {"max_json_depth", limits.max_json_depth},
                 {"max_batch", limits.max_batch},
                 {"max_k", limits.max_k},
                 {"max_hits", limits.max_hits}};
  j["auth"] = token_required ? "bearer token for writes and evaluation" : "none";
  if (const learn::Model* model = engine.model()) {
    j["model"] = {{"method", learn::method_name(model->method())},
                  {"bits", model->bits()},
                  {"fingerprint", model->fingerprint()},
                  {"input_dim", model->input_dim()},
                  {"input_shape", model->input_shape()},
                  {"takes_images", model->takes_pixels() && model->input_shape().size() == 2}};
  } else {
    j["model"] = nullptr;
  }
  return j;
}

Response handle_info(Call& call) {
  return json_response(200, collection_info(*call.collection, call.limits, call.token_required));
}

Response handle_evaluate(Call& call) {
  json body = json::object();
  if (!call.request.body.empty()) {
    call.require_json_content();
    body = call.json_body();
    if (!body.is_object()) throw HttpError{400, "the body must be a JSON object"};
  }
  check_fields(body, {"queries_per_class", "seed", "precision_at", "radius"});
  query::EvaluateRequest request;
  request.queries_per_class = get_size(body, "queries_per_class", 100, 100000);
  request.seed = get_size(body, "seed", 0, std::numeric_limits<uint32_t>::max());
  request.options.precision_at = get_size(body, "precision_at", 500, 1000000);
  request.options.radius = static_cast<int>(get_size(body, "radius", 2, 1024));
  return json_response(200, query::evaluation_json(take(call.engine->evaluate(request)), request));
}

Response handle_health_codes(Call& call) {
  return json_response(200, query::health_json(take(call.engine->health())));
}

Response handle_collections_list(Call& call) {
  json list = json::array();
  for (const auto& c : call.catalog.list()) {
    const index::StoreInfo info = c->engine().info();
    const learn::Model* model = c->engine().model();
    list.push_back({{"name", c->name()},
                    {"bits", info.bits},
                    {"items", info.items},
                    {"model_fingerprint", model != nullptr ? json(model->fingerprint()) : json()},
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

json snapshot_json(const query::SnapshotInfo& s, const query::Catalog& catalog) {
  return {{"id", s.id},
          {"path", shown_path(s.path, catalog)},
          {"bytes", s.bytes},
          {"created_unix", s.created_unix},
          {"has_model", s.has_model}};
}

Response handle_snapshot_create(Call& call) {
  if (!call.request.body.empty() &&
      call.request.body.find_first_not_of(" \t\r\n{}") != std::string::npos) {
    throw HttpError{400, "a snapshot takes no options; send an empty body"};
  }
  return json_response(
      201,
      snapshot_json(take(call.catalog.create_snapshot(call.collection->name())), call.catalog));
}

Response handle_snapshots_list(Call& call) {
  json list = json::array();
  for (const auto& s : take(call.catalog.snapshots(call.collection->name()))) {
    list.push_back(snapshot_json(s, call.catalog));
  }
  return json_response(200, {{"snapshots", list}});
}

Response handle_snapshot_delete(Call& call) {
  check(call.catalog.delete_snapshot(call.collection->name(), call.captures[0]));
  return json_response(200, {{"deleted", call.captures[0]}});
}

}  // namespace imsat::http::internal
