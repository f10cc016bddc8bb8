// Indexed metadata fields: PUT /v1/index/{field}.
#include "http/http_internal.h"
#include "query/json_format.h"

namespace imsat::http::internal {

Response handle_index_field(Call& call) {
  check(call.engine->index_field(call.captures[0]));
  return json_response(200, {{"indexed_fields", call.engine->indexed_fields()}});
}

}  // namespace imsat::http::internal
