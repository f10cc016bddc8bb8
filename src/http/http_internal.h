// Helpers of src/http (not included from other folders): the route table, the request context
// handlers receive, request parsing, and the static assets.
#pragma once

#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "http/http.h"
#include "query/collections.h"
#include "query/engine.h"

namespace imsat::http::internal {

using json = nlohmann::json;

// A handler's early exit: status, message and a stable machine-readable code become the JSON
// error response {"error": message, "code": code}. An empty code is derived from the status
// (error_code_for).
struct HttpError {
  HttpError(int status_, std::string message_, std::string code_ = "", std::string allow_ = "")
      : status(status_),
        message(std::move(message_)),
        code(std::move(code_)),
        allow(std::move(allow_)) {}
  int status;
  std::string message;
  std::string code;
  std::string allow;  // 405: the methods the path has (the Allow header)
};
const char* error_code_for(int status);

// `message` with the server's data directory (and each store's parent folder) removed from the
// paths it names: clients see names relative to the data directory, never the server's layout.
std::string without_server_paths(const std::string& message, const query::Catalog& catalog);
// Throws HttpError for a non-OK status: InvalidArgument 400, NotFound 404, AlreadyExists 409,
// NoSpace 507, else 500.
void check(const Status& s);
template <typename T>
T take(Result<T> r) {
  check(r.status());
  return std::move(r).value();
}

// What a handler sees of one request.
struct Call {
  const Request& request;
  std::string path;                           // decoded
  std::map<std::string, std::string> params;  // query string, decoded ('+' is a space there)
  std::vector<std::string> captures;          // path parameters ({key}), decoded, in order; without
                                              // {collection}
  query::Catalog& catalog;
  // The collection the request acts on (routes of Scope::kCollection; nullptr otherwise), kept
  // alive for the request, and its engine.
  std::shared_ptr<query::Collection> collection;
  query::QueryEngine* engine;
  std::string collection_name;  // the {collection} segment (Scope::kNamed), validated
  const Limits& limits;
  Metrics& metrics;
  bool token_required;    // the server has a token (for /v1/info)
  bool draining = false;  // shutdown has begun (for /readyz)

  std::string header(const std::string& name) const;  // lower-case name; "" when absent
  void require_json_content() const;                  // 415 unless application/json
  json json_body() const;  // parsed with the depth limit; 400 when malformed
  // The named collection (Scope::kNamed routes), or 404 naming it.
  std::shared_ptr<query::Collection> named_collection() const;
};

// kNone: open to all. kRead: needs the read token when the server has one (or the write token).
// kToken: needs the write token when the server has one.
enum class Auth { kNone, kRead, kToken };

// kService: about the server (no collection). kCollection: acts on a collection, at the pattern
// (the default collection) and at /v1/collections/{collection}/... (the pattern without "/v1").
// kNamed: the pattern itself holds {collection}; the handler finds it (call.named_collection).
enum class Scope { kService, kCollection, kNamed };

struct Route {
  const char* method;   // "GET", "POST", "PUT", "DELETE"
  const char* pattern;  // "/v1/items/{key}": a {name} matches one path segment
  Auth auth;
  bool heavy;  // whole-store work: at most Limits::heavy_slots at once, else 503 + Retry-After
  Response (*handler)(Call& call);
  const char* name;     // the route label in /metrics and the operationId in /openapi.json
  const char* summary;  // one line for /openapi.json
  // Heavy for some requests only (a large search batch); read before the handler runs.
  bool (*heavy_when)(const Request& request, const Limits& limits);
  Scope scope;
  bool writes = false;  // changes a collection: refused (403) on a follower
  // Runs the model for some requests (searches by vector or image): the Server runs those on its
  // model pool, whose threads wait together for one batched model call (query::EncodeBatcher)
  // instead of holding the I/O threads.
  bool (*encodes_when)(const Request& request) = nullptr;
};
// encodes_when of the search routes (handlers_search.cpp).
bool search_encodes(const Request& request);
bool always_encodes(const Request& request);

// One path a route answers at: kCollection routes have two (default and prefixed).
struct Endpoint {
  const Route* route;
  std::string pattern;
  std::string operation_id;
  bool prefixed;  // under /v1/collections/{collection}
};
// Every endpoint the router dispatches on, in the order /openapi.json lists them.
const std::vector<Endpoint>& endpoints();

// Every endpoint, in the order /openapi.json lists them (route_table.cpp).
const std::vector<Route>& route_table();

// Request parsing (request_parsing.cpp).
Response json_response(int status, const json& body);
// An error answer: {"error": message, "code": code} with its code kept for the access log.
Response error_answer(int status, const std::string& message, const std::string& code);
json parse_json(const std::string& text, int max_depth);
// Percent-decodes; `plus_is_space` only for query strings (in paths '+' is a plus).
std::string url_decode(const std::string& s, bool plus_is_space);
std::map<std::string, std::string> parse_query_string(const std::string& query);
// One part of a multipart/form-data body (RFC 7578).
struct FormPart {
  std::string name, filename, content_type, body;
};
// The parts of a multipart/form-data body, given the request's Content-Type (which names the
// boundary). 400 naming what is malformed.
std::vector<FormPart> parse_multipart(const std::string& content_type, const std::string& body);
// 400 (code "unknown_field") naming the first member of object `j` not in `allowed`.
void check_fields(const json& j, std::initializer_list<const char*> allowed,
                  const std::string& where = "the body");
// A metadata filter from JSON (400, code "invalid_filter", naming what is wrong).
// A request's filter; 400 naming the problem, or the limit when it holds more than `max_terms`
// conditions and values.
query::Filter parse_filter(const json& j, size_t max_terms);
// Optional non-negative integer field, at most `max`; 400 naming the field otherwise.
size_t get_size(const json& j, const char* name, size_t fallback, size_t max);
// A 32-bit label; 400 when not an integer or out of range.
int32_t get_label(const json& v, const std::string& name);
// An array of `dim` finite floats; 400 naming the first bad value.
std::vector<float> get_vector(const json& v, size_t dim);
// The same checks (dimension, finite floats) on values already read.
std::vector<float> check_vector(const std::vector<double>& values, size_t dim);
// A search body's top-level "vector" read without the JSON DOM: the array's numbers (plain JSON
// numbers only) into `values`, and the body with that array replaced by [] into `rest`, for the
// full parser. False (nothing decided) for any other shape: the full parse then reads the body
// and reports what is wrong with it.
bool take_vector_array(const std::string& text, std::vector<double>* values, std::string* rest);
// Hits a radius search returns unless its 'limit' says otherwise (capped by Limits::max_hits).
constexpr size_t kDefaultRadiusLimit = 1000;
// The shared search options of POST /v1/search (k, radius, limit, candidates, rerank, filter,
// scan).
query::SearchRequest parse_search_options(const json& body, const Limits& limits);
// The request's cost budget (Limits), checked before any search runs: 400 naming the limit.
void check_search_budget(const query::SearchRequest& sr, size_t queries, size_t dim,
                         const Limits& limits);

// GET /v1/info's document for a collection.
json collection_info(const query::Collection& c, const Limits& limits, bool token_required);

// Handlers, one per endpoint (handlers_*.cpp).
Response handle_healthz(Call& call);
Response handle_readyz(Call& call);
Response handle_page(Call& call);
Response handle_openapi(Call& call);
Response handle_metrics(Call& call);
Response handle_info(Call& call);
Response handle_search(Call& call);
// Whether a search body asks for more than Limits::heavy_results results (or cannot be sized
// cheaply: an unparsable body is not heavy, its handler answers 400).
bool search_is_heavy(const Request& request, const Limits& limits);
// Whether a body carries a filter larger than Limits::heavy_body_bytes (count, delete, search).
bool filter_is_heavy(const Request& request, const Limits& limits);
// Whether a scroll asks for more than Limits::heavy_scroll_items items, or carries a heavy filter.
bool scroll_is_heavy(const Request& request, const Limits& limits);
Response handle_search_image(Call& call);
Response handle_items_add(Call& call);
Response handle_items_scroll(Call& call);
Response handle_item_get(Call& call);
Response handle_item_delete(Call& call);
Response handle_item_image(Call& call);
Response handle_evaluate(Call& call);
Response handle_health_codes(Call& call);
Response handle_items_scroll_post(Call& call);
Response handle_items_count(Call& call);
Response handle_items_delete(Call& call);
Response handle_index_field(Call& call);
Response handle_collections_list(Call& call);
Response handle_collection_create(Call& call);
Response handle_collection_get(Call& call);
Response handle_collection_drop(Call& call);
Response handle_snapshot_create(Call& call);
Response handle_snapshots_list(Call& call);
Response handle_snapshot_delete(Call& call);
Response handle_snapshot_archive(Call& call);
Response handle_snapshot_restore(Call& call);

// The single-page web interface served at GET / (HTML, CSS and JavaScript in one document):
// src/http/assets/index.html, compiled in.
const char* web_page();
// The hand-written part of the OpenAPI 3 description (schemas, parameters, responses); the route
// table adds every operation and its summary (handle_openapi): src/http/assets/openapi.json,
// compiled in.
const char* openapi_json();

}  // namespace imsat::http::internal
