// Helpers of src/http (not included from other folders).
#pragma once

namespace imsat::http::internal {

// The single-page web interface served at GET / (HTML, CSS and JavaScript in one document).
const char* web_page();
// The OpenAPI 3 description served at GET /openapi.json.
const char* openapi_json();

}  // namespace imsat::http::internal
