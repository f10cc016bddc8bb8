// The store as a whole: GET /v1/info, POST /v1/evaluate, GET /v1/health/codes.
#include <limits>

#include "http/http_internal.h"
#include "query/json_format.h"

namespace imsat::http::internal {

Response handle_info(Call& call) {
  json j = query::store_info_json(call.engine.info());
  j["cached_vectors"] = call.engine.cached_vectors();
  j["limits"] = {{"max_body_bytes", call.limits.max_body_bytes},
                 {"max_json_depth", call.limits.max_json_depth},
                 {"max_batch", call.limits.max_batch},
                 {"max_k", call.limits.max_k}};
  j["auth"] = call.token_required ? "bearer token for writes and evaluation" : "none";
  if (const learn::Model* model = call.engine.model()) {
    j["model"] = {{"method", learn::method_name(model->method())},
                  {"bits", model->bits()},
                  {"fingerprint", model->fingerprint()},
                  {"input_dim", model->input_dim()},
                  {"input_shape", model->input_shape()},
                  {"takes_images", model->takes_pixels() && model->input_shape().size() == 2}};
  } else {
    j["model"] = nullptr;
  }
  return json_response(200, j);
}

Response handle_evaluate(Call& call) {
  json body = json::object();
  if (!call.request.body.empty()) {
    call.require_json_content();
    body = call.json_body();
    if (!body.is_object()) throw HttpError{400, "the body must be a JSON object"};
  }
  query::EvaluateRequest request;
  request.queries_per_class = get_size(body, "queries_per_class", 100, 100000);
  request.seed = get_size(body, "seed", 0, std::numeric_limits<uint32_t>::max());
  request.options.precision_at = get_size(body, "precision_at", 500, 1000000);
  request.options.radius = static_cast<int>(get_size(body, "radius", 2, 1024));
  return json_response(200, query::evaluation_json(take(call.engine.evaluate(request)), request));
}

Response handle_health_codes(Call& call) {
  return json_response(200, query::health_json(take(call.engine.health())));
}

}  // namespace imsat::http::internal
