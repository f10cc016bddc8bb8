// The route table and the dispatch that reads it: method, path pattern, authentication, handler,
// metrics label and summary of every endpoint. /openapi.json is generated from the same table.
#include <malloc.h>

#include <chrono>

#include "http/http_internal.h"
#include "query/json_format.h"

namespace imsat::http {
namespace internal {
namespace {

std::vector<std::string> split_path(const std::string& path) {
  std::vector<std::string> parts;
  size_t start = 0;
  while (true) {
    const size_t slash = path.find('/', start);
    parts.push_back(path.substr(start, slash == std::string::npos ? slash : slash - start));
    if (slash == std::string::npos) break;
    start = slash + 1;
  }
  return parts;
}

// Matches the raw (still percent-encoded) path's segments against a pattern's (split once, see
// route_segments), so an encoded '/' stays inside its segment; captures are decoded afterwards.
bool match(const std::vector<std::string>& want, const std::vector<std::string>& raw,
           std::vector<std::string>* captures) {
  if (want.size() != raw.size()) return false;
  std::vector<std::string> found;
  for (size_t i = 0; i < want.size(); ++i) {
    if (!want[i].empty() && want[i].front() == '{') {
      if (raw[i].empty()) return false;
      found.push_back(url_decode(raw[i], /*plus_is_space=*/false));
    } else if (want[i] != raw[i]) {
      return false;
    }
  }
  *captures = std::move(found);
  return true;
}

bool constant_time_equal(const std::string& a, const std::string& b) {
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  for (size_t i = 0; i < a.size(); ++i) diff |= a[i] ^ b[i % std::max<size_t>(b.size(), 1)];
  return diff == 0 && !b.empty();
}

// Accepts any of the non-empty `tokens`; nothing is required when all are empty.
void require_token(const std::string& auth, std::initializer_list<const std::string*> tokens) {
  bool needed = false;
  for (const std::string* t : tokens) needed = needed || !t->empty();
  if (!needed) return;
  const std::string prefix = "Bearer ";
  if (auth.compare(0, prefix.size(), prefix) != 0) {
    throw HttpError{401, "this endpoint needs 'Authorization: Bearer <token>'", "missing_token"};
  }
  bool match = false;
  for (const std::string* t : tokens) {
    match = constant_time_equal(auth.substr(prefix.size()), *t) || match;
  }
  if (!match) throw HttpError{401, "wrong token", "wrong_token"};
}

// Gives freed memory back to the system after a large answer (glibc keeps it otherwise).
void release_memory_after(const Response& r, bool heavy) {
  if (heavy || r.body.size() > (4u << 20)) malloc_trim(0);
}

}  // namespace

const std::vector<Route>& route_table() {
  constexpr Scope kService = Scope::kService, kCollection = Scope::kCollection,
                  kNamed = Scope::kNamed;
  static const std::vector<Route> routes = {
      {"POST", "/v1/search", Auth::kRead, false, handle_search, "search",
       "kNN or radius search by vector, code or stored key; several queries with 'queries'; "
       "metadata filters",
       search_is_heavy, kCollection, false, search_encodes},
      {"POST", "/v1/search/image", Auth::kRead, false, handle_search_image, "search_image",
       "search by an uploaded PNG or JPEG", nullptr, kCollection, false, always_encodes},
      {"POST", "/v1/items", Auth::kToken, false, handle_items_add, "items_add",
       "add or replace items by code, vector or image file (one atomic, durable batch)", nullptr,
       kCollection, true},
      {"GET", "/v1/items", Auth::kRead, false, handle_items_scroll, "items_scroll",
       "page through stored items in insertion order (limit, cursor)", scroll_is_heavy,
       kCollection},
      {"POST", "/v1/items/scroll", Auth::kRead, false, handle_items_scroll_post,
       "items_scroll_filtered",
       "page through the items passing a filter ({filter, limit, offset}); a stable cursor",
       scroll_is_heavy, kCollection},
      {"POST", "/v1/items/count", Auth::kRead, false, handle_items_count, "items_count",
       "the exact number of items passing a filter ({filter})", filter_is_heavy, kCollection},
      {"POST", "/v1/items/delete", Auth::kToken, false, handle_items_delete, "items_delete",
       "delete items by keys or by filter in one atomic batch; answers how many", filter_is_heavy,
       kCollection, true},
      {"GET", "/v1/items/{key}", Auth::kRead, false, handle_item_get, "item_get", "a stored item",
       nullptr, kCollection},
      {"DELETE", "/v1/items/{key}", Auth::kToken, false, handle_item_delete, "item_delete",
       "delete an item", nullptr, kCollection, true},
      {"GET", "/v1/items/{key}/image", Auth::kRead, false, handle_item_image, "item_image",
       "a stored item's thumbnail (JPEG), or its stored pixels drawn as PNG", nullptr, kCollection},
      {"PUT", "/v1/index/{field}", Auth::kToken, false, handle_index_field, "index_field",
       "index a metadata field (filters on it then select items from the index)", nullptr,
       kCollection, true},
      {"POST", "/v1/evaluate", Auth::kToken, true, handle_evaluate, "evaluate",
       "the paper's protocol over the labelled items of the index", nullptr, kCollection},
      {"GET", "/v1/info", Auth::kNone, false, handle_info, "info",
       "model, bits, item count, index settings, indexed fields, limits", nullptr, kCollection},
      {"GET", "/v1/health/codes", Auth::kRead, true, handle_health_codes, "health_codes",
       "bit balance and entropy, pairwise bit MI, distance histogram, bucket occupancy", nullptr,
       kCollection},
      {"POST", "/v1/snapshots", Auth::kToken, false, handle_snapshot_create, "snapshot_create",
       "a consistent point-in-time copy of the collection (RocksDB checkpoint: hard links)",
       nullptr, kCollection, true},
      {"GET", "/v1/snapshots", Auth::kRead, false, handle_snapshots_list, "snapshots_list",
       "the collection's snapshots with sizes and times", nullptr, kCollection},
      {"DELETE", "/v1/snapshots/{id}", Auth::kToken, false, handle_snapshot_delete,
       "snapshot_delete", "remove a snapshot", nullptr, kCollection, true},
      {"GET", "/v1/snapshots/{id}/archive", Auth::kToken, true, handle_snapshot_archive,
       "snapshot_archive", "download a snapshot (its store and model) as one zip file", nullptr,
       kCollection},
      {"POST", "/v1/snapshots/{id}/restore", Auth::kToken, true, handle_snapshot_restore,
       "snapshot_restore", "restore a snapshot as a new collection ({\"as\": NAME})", nullptr,
       kCollection, true},
      {"GET", "/v1/collections", Auth::kRead, false, handle_collections_list, "collections_list",
       "every collection: name, bits, items, model fingerprint", nullptr, kService},
      {"PUT", "/v1/collections/{collection}", Auth::kToken, false, handle_collection_create,
       "collection_create",
       "create a collection: {bits, model (a path on the server), tables, expected_items}, or a "
       "model file as the body",
       nullptr, kNamed},
      {"GET", "/v1/collections/{collection}", Auth::kNone, false, handle_collection_get,
       "collection_get", "the collection's info (as /v1/info)", nullptr, kNamed},
      {"DELETE", "/v1/collections/{collection}", Auth::kToken, false, handle_collection_drop,
       "collection_drop", "remove a collection (its files go once no request uses it)", nullptr,
       kNamed},
      {"GET", "/healthz", Auth::kNone, false, handle_healthz, "healthz", "liveness", nullptr,
       kService},
      {"GET", "/readyz", Auth::kNone, false, handle_readyz, "readyz",
       "readiness: 200 while serving, 503 once shutdown has begun", nullptr, kService},
      {"GET", "/metrics", Auth::kNone, false, handle_metrics, "metrics", "Prometheus metrics",
       nullptr, kService},
      {"GET", "/openapi.json", Auth::kNone, false, handle_openapi, "openapi", "this document",
       nullptr, kService},
      {"GET", "/", Auth::kNone, false, handle_page, "page", "the web page", nullptr, kService},
      {"GET", "/index.html", Auth::kNone, false, handle_page, "page_index", "the web page", nullptr,
       kService},
  };
  return routes;
}

const std::vector<Endpoint>& endpoints() {
  static const std::vector<Endpoint> all = [] {
    std::vector<Endpoint> out;
    for (const Route& route : route_table()) {
      out.push_back({&route, route.pattern, route.name, false});
    }
    for (const Route& route : route_table()) {
      if (route.scope != Scope::kCollection) continue;
      const std::string pattern = route.pattern;
      out.push_back({&route, "/v1/collections/{collection}" + pattern.substr(3),
                     std::string("collection_") + route.name, true});
    }
    return out;
  }();
  return all;
}

// Each endpoint's pattern split into segments, in endpoint order, computed once.
const std::vector<std::vector<std::string>>& endpoint_segments() {
  static const std::vector<std::vector<std::string>> segments = [] {
    std::vector<std::vector<std::string>> out;
    for (const Endpoint& e : endpoints()) out.push_back(split_path(e.pattern));
    return out;
  }();
  return segments;
}

// The endpoint for `method` on the raw path `target` (query string ignored), with its decoded
// captures; nullptr when none matches, with *allowed listing the methods the path has.
const Endpoint* find_endpoint(const std::string& method, const std::string& target,
                              std::vector<std::string>* captures, std::string* allowed) {
  const std::vector<std::string> raw = split_path(target.substr(0, target.find('?')));
  const std::vector<Endpoint>& all = endpoints();
  allowed->clear();
  const Endpoint* found = nullptr;
  std::vector<std::string> found_captures;
  for (size_t i = 0; i < all.size(); ++i) {
    std::vector<std::string> c;
    if (!match(endpoint_segments()[i], raw, &c)) continue;
    const std::string m = all[i].route->method;
    if (allowed->find(m) == std::string::npos) *allowed += (allowed->empty() ? "" : ", ") + m;
    if (found == nullptr && method == m) {
      found = &all[i];
      found_captures = std::move(c);
    }
  }
  *captures = std::move(found_captures);
  return found;
}

}  // namespace internal

using internal::HttpError;

Router::Router(query::QueryEngine& engine, Limits limits, std::string token, std::string read_token)
    : owned_catalog_(query::Catalog::wrap(engine)),
      catalog_(*owned_catalog_),
      limits_(limits),
      token_(std::move(token)),
      read_token_(std::move(read_token)) {}

Router::Router(query::Catalog& catalog, Limits limits, std::string token, std::string read_token)
    : catalog_(catalog),
      limits_(limits),
      token_(std::move(token)),
      read_token_(std::move(read_token)) {}

Router::~Router() = default;

bool Router::try_reserve_heavy() {
  if (heavy_running_.fetch_add(1) < limits_.heavy_slots) return true;
  heavy_running_.fetch_sub(1);
  return false;
}

void Router::release_heavy() { heavy_running_.fetch_sub(1); }

Response Router::busy_response() const {
  Response busy = internal::error_answer(
      503,
      "the server is busy with " + std::to_string(limits_.heavy_slots) +
          " heavy request(s) (evaluation, code health, large search batches); retry shortly",
      "busy");
  busy.headers["Retry-After"] = "2";
  return busy;
}

bool Router::is_heavy(const Request& request) const {
  std::vector<std::string> captures;
  std::string allowed;
  const internal::Endpoint* e =
      internal::find_endpoint(request.method, request.target, &captures, &allowed);
  return e != nullptr && route_is_heavy(*e->route, request);
}

bool Router::encodes(const Request& request) const {
  std::vector<std::string> captures;
  std::string allowed;
  const internal::Endpoint* e =
      internal::find_endpoint(request.method, request.target, &captures, &allowed);
  return e != nullptr && e->route->encodes_when != nullptr && e->route->encodes_when(request);
}

void Router::check_authorization(const internal::Route& route,
                                 const std::string& authorization) const {
  if (route.auth == internal::Auth::kToken) internal::require_token(authorization, {&token_});
  if (route.auth == internal::Auth::kRead && !read_token_.empty()) {
    internal::require_token(authorization, {&read_token_, &token_});
  }
}

Response Router::error_response(const HttpError& e) {
  Response r = internal::error_answer(e.status, e.message,
                                      e.code.empty() ? internal::error_code_for(e.status) : e.code);
  if (e.status == 401) r.headers["WWW-Authenticate"] = "Bearer realm=\"imsat\"";
  if (e.status == 405) r.headers["Allow"] = e.allow;
  return r;
}

std::optional<Response> Router::refuse_unauthorized(const std::string& method,
                                                    const std::string& target,
                                                    const std::string& authorization) {
  std::vector<std::string> captures;
  std::string allowed;
  const internal::Endpoint* e = internal::find_endpoint(method, target, &captures, &allowed);
  if (e == nullptr) return std::nullopt;  // handle() answers 404 or 405
  try {
    check_authorization(*e->route, authorization);
  } catch (const HttpError& error) {
    Response r = error_response(error);
    r.route = e->route->name;
    if ((e->prefixed || e->route->scope == internal::Scope::kNamed) && !captures.empty()) {
      r.collection = captures.front();
    }
    metrics_.record(e->route->name, r.status, 0);
    return r;
  }
  return std::nullopt;
}

bool Router::route_is_heavy(const internal::Route& route, const Request& request) const {
  return route.heavy || (route.heavy_when != nullptr && route.heavy_when(request, limits_));
}

void Router::bind_collection(const internal::Endpoint& chosen, internal::Call* call) {
  const internal::Route& route = *chosen.route;
  if (chosen.prefixed || route.scope == internal::Scope::kNamed) {
    // The {collection} segment is the first capture; handlers see only their own.
    call->collection_name = call->captures.front();
    call->captures.erase(call->captures.begin());
    const Status name_ok = query::check_collection_name(call->collection_name);
    if (!name_ok.is_ok()) throw HttpError{400, name_ok.message(), "bad_collection_name"};
  }
  if (route.scope != internal::Scope::kCollection) return;
  call->collection =
      chosen.prefixed ? catalog_.find(call->collection_name) : catalog_.default_collection();
  if (call->collection == nullptr && chosen.prefixed) {
    throw HttpError{404, "no collection named '" + call->collection_name + "'",
                    "unknown_collection"};
  }
  if (call->collection == nullptr) {
    throw HttpError{404,
                    "no default collection: this server holds " +
                        std::to_string(catalog_.list().size()) +
                        " collections; use /v1/collections/{name}/... or start it with "
                        "--default-collection",
                    "no_default_collection"};
  }
  call->engine = &call->collection->engine();
  if (route.writes && !call->collection->primary().empty()) {
    throw HttpError{403,
                    "this server follows " + call->collection->primary() +
                        " and is read-only; send writes to the primary",
                    "read_only_follower"};
  }
}

Response Router::run_handler(const internal::Route& route, internal::Call& call, bool heavy,
                             Heavy known) {
  Response r;
  if (heavy && known != Heavy::kReserved) {
    // Whole-store work runs at most heavy_slots at a time so ordinary searches keep their
    // latency; the rest are told to come back.
    if (!try_reserve_heavy()) return busy_response();
    try {
      r = route.handler(call);
    } catch (...) {
      release_heavy();
      throw;
    }
    release_heavy();
  } else {
    r = route.handler(call);
  }
  if (r.body.size() > limits_.max_response_bytes) {
    throw HttpError{413,
                    "the answer would be " + std::to_string(r.body.size()) +
                        " bytes; the limit is " + std::to_string(limits_.max_response_bytes) +
                        " (ask for fewer queries, a smaller k or a smaller radius limit)",
                    "response_too_large"};
  }
  return r;
}

Response Router::handle(const Request& request, Heavy known) {
  const auto t0 = std::chrono::steady_clock::now();
  const char* route_name = "unknown";
  std::string collection;
  Response r;
  try {
    const size_t q = request.target.find('?');
    const std::string raw_path = request.target.substr(0, q);
    internal::Call call{request,
                        internal::url_decode(raw_path, false),
                        {},
                        {},
                        catalog_,
                        nullptr,
                        nullptr,
                        {},
                        limits_,
                        metrics_,
                        !token_.empty()};
    call.draining = draining_.load();
    if (q != std::string::npos)
      call.params = internal::parse_query_string(request.target.substr(q + 1));
    std::string allowed;
    const internal::Endpoint* chosen =
        internal::find_endpoint(request.method, request.target, &call.captures, &allowed);
    if (chosen == nullptr) {
      if (!allowed.empty()) {
        throw HttpError{405,
                        "method " + request.method + " is not allowed on " + call.path +
                            " (allowed: " + allowed + ")",
                        "method_not_allowed", allowed};
      }
      throw HttpError{404, "no such endpoint: " + request.method + " " + call.path,
                      "unknown_endpoint"};
    }
    const internal::Route& route = *chosen->route;
    route_name = route.name;
    check_authorization(route, call.header("authorization"));
    if ((chosen->prefixed || route.scope == internal::Scope::kNamed) && !call.captures.empty()) {
      collection = call.captures.front();  // a bad or unknown name is logged as given
    }
    bind_collection(*chosen, &call);
    if (call.collection != nullptr) collection = call.collection->name();
    // The server has already decided (and parsed a search body to do so); others ask here.
    const bool heavy =
        known == Heavy::kReserved || (known == Heavy::kCheck && route_is_heavy(route, request));
    r = run_handler(route, call, heavy, known);
    internal::release_memory_after(r, heavy);
  } catch (const HttpError& e) {
    HttpError shown = e;
    shown.message = internal::without_server_paths(e.message, catalog_);
    r = error_response(shown);
  } catch (const nlohmann::json::exception& e) {
    r = internal::error_answer(400, std::string("bad JSON field: ") + e.what(), "bad_request");
  } catch (const std::exception& e) {
    r = internal::error_answer(500, std::string("internal error: ") + e.what(), "internal");
  }
  r.route = route_name;
  r.collection = collection;
  metrics_.record(route_name, r.status,
                  std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  return r;
}

}  // namespace imsat::http
