// Indexed metadata fields: PUT /v1/index/{field}.
#include "http/http_internal.h"
#include "query/json_format.h"

namespace imsat::http::internal {

Response handle_index_field(Call& call) {
  // The body is optional. An indexed field holds every value the field takes (strings, numbers,
  // booleans, each element of an array), so the only type is "any"; another one (a client that
  // expects typed indexes, "float" or "keyword") is refused rather than silently ignored.
  if (!call.request.body.empty()) {
    call.require_json_content();
    const json body = call.json_body();
    if (!body.is_object()) throw HttpError{400, "the body must be a JSON object"};
    check_fields(body, {"type"});
    if (body.contains("type") && body["type"] != "any") {
      throw HttpError{400,
                      "'type' must be \"any\" (or left out): an indexed field holds every value "
                      "it takes, strings, numbers and booleans alike",
                      "invalid_argument"};
    }
  }
  check(call.engine->index_field(call.captures[0]));
  return json_response(200, {{"indexed_fields", call.engine->indexed_fields()}});
}

}  // namespace imsat::http::internal
