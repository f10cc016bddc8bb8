// The store as a whole: GET /v1/info, POST /v1/evaluate, GET /v1/health/codes.
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
  j["vector_precision"] = query::vector_precision_name(engine.cache_precision());
  j["limits"] = {{"max_body_bytes", limits.max_body_bytes},
                 {"max_json_depth", limits.max_json_depth},
                 {"max_batch", limits.max_batch},
                 {"max_k", limits.max_k},
                 {"max_hits", limits.max_hits}};
  j["auth"] = token_required ? "bearer token for writes and evaluation" : "none";
  const std::optional<query::ModelInfo> model = engine.model_info();
  if (model) {
    j["model"] = {{"method", model->method},
                  {"metric", model->metric.empty() ? json() : json(model->metric)},
                  {"bits", model->bits},
                  {"fingerprint", model->fingerprint},
                  {"input_dim", model->input_dim},
                  {"input_shape", model->input_shape},
                  {"takes_images", model->takes_images},
                  {"image_channels", model->takes_images ? json(model->image_channels) : json()},
                  {"image_pipeline",
                   model->image_pipeline.empty() ? json() : json::parse(model->image_pipeline)}};
  } else {
    j["model"] = nullptr;
  }
  // What a query (POST /v1/search, /v1/search/image) may carry here: always a stored key and a
  // code of the collection's length; a vector and an image only with a model that takes them.
  const int bits = engine.bits();
  j["queries"] = {
      {"key", true},
      {"code", {{"hex_digits", bits / 4}}},
      {"vector", model ? json{{"dim", model->input_dim}} : json()},
      {"image", model && model->takes_images
                    ? json{{"channels", model->image_channels},
                           {"content_types", {"image/png", "image/jpeg", "multipart/form-data"}}}
                    : json()},
      {"filter", true},
      {"rerank", model ? json::array({"none", "exact", "asymmetric"}) : json::array({"none"})}};
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

}  // namespace imsat::http::internal
