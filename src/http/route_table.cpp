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
void require_token(const Call& call, std::initializer_list<const std::string*> tokens) {
  bool needed = false;
  for (const std::string* t : tokens) needed = needed || !t->empty();
  if (!needed) return;
  const std::string auth = call.header("authorization");
  const std::string prefix = "Bearer ";
  if (auth.compare(0, prefix.size(), prefix) != 0) {
    throw HttpError{401, "this endpoint needs 'Authorization: Bearer <token>'"};
  }
  bool match = false;
  for (const std::string* t : tokens) {
    match = constant_time_equal(auth.substr(prefix.size()), *t) || match;
  }
  if (!match) throw HttpError{401, "wrong token"};
}

// Gives freed memory back to the system after a large answer (glibc keeps it otherwise).
void release_memory_after(const Response& r, bool heavy) {
  if (heavy || r.body.size() > (4u << 20)) malloc_trim(0);
}

}  // namespace

const std::vector<Route>& route_table() {
  static const std::vector<Route> routes = {
      {"POST", "/v1/search", Auth::kRead, false, handle_search, "search",
       "kNN or radius search by vector, code or stored key; several queries with 'queries'",
       search_is_heavy},
      {"POST", "/v1/search/image", Auth::kRead, false, handle_search_image, "search_image",
       "search by an uploaded PNG or JPEG"},
      {"POST", "/v1/items", Auth::kToken, false, handle_items_add, "items_add",
       "add or replace items by code, vector or image file (one atomic, durable batch)"},
      {"GET", "/v1/items", Auth::kRead, false, handle_items_scroll, "items_scroll",
       "page through stored items in insertion order (limit, cursor)"},
      {"GET", "/v1/items/{key}", Auth::kRead, false, handle_item_get, "item_get", "a stored item"},
      {"DELETE", "/v1/items/{key}", Auth::kToken, false, handle_item_delete, "item_delete",
       "delete an item"},
      {"GET", "/v1/items/{key}/image", Auth::kRead, false, handle_item_image, "item_image",
       "a stored item's thumbnail (JPEG), or its stored pixels drawn as PNG"},
      {"POST", "/v1/evaluate", Auth::kToken, true, handle_evaluate, "evaluate",
       "the paper's protocol over the labelled items of the index"},
      {"GET", "/v1/info", Auth::kNone, false, handle_info, "info",
       "model, bits, item count, index settings, limits"},
      {"GET", "/v1/health/codes", Auth::kRead, true, handle_health_codes, "health_codes",
       "bit balance and entropy, pairwise bit MI, distance histogram, bucket occupancy"},
      {"GET", "/healthz", Auth::kNone, false, handle_healthz, "healthz", "liveness"},
      {"GET", "/metrics", Auth::kNone, false, handle_metrics, "metrics", "Prometheus metrics"},
      {"GET", "/openapi.json", Auth::kNone, false, handle_openapi, "openapi", "this document"},
      {"GET", "/", Auth::kNone, false, handle_page, "page", "the web page"},
      {"GET", "/index.html", Auth::kNone, false, handle_page, "page", "the web page"},
  };
  return routes;
}

// Each route's pattern split into segments, in table order, computed once.
const std::vector<std::vector<std::string>>& route_segments() {
  static const std::vector<std::vector<std::string>> segments = [] {
    std::vector<std::vector<std::string>> out;
    for (const Route& route : route_table()) out.push_back(split_path(route.pattern));
    return out;
  }();
  return segments;
}

// The route for `method` on the raw path `target` (query string ignored), with its decoded
// captures; nullptr when none matches, with *path_known saying whether another method would.
const Route* find_route(const std::string& method, const std::string& target,
                        std::vector<std::string>* captures, bool* path_known) {
  const std::vector<std::string> raw = split_path(target.substr(0, target.find('?')));
  const std::vector<Route>& routes = route_table();
  *path_known = false;
  for (size_t i = 0; i < routes.size(); ++i) {
    if (!match(route_segments()[i], raw, captures)) continue;
    *path_known = true;
    if (method == routes[i].method) return &routes[i];
  }
  return nullptr;
}

}  // namespace internal

using internal::HttpError;

Router::Router(query::QueryEngine& engine, Limits limits, std::string token, std::string read_token)
    : engine_(engine),
      limits_(limits),
      token_(std::move(token)),
      read_token_(std::move(read_token)) {}

bool Router::try_reserve_heavy() {
  if (heavy_running_.fetch_add(1) < limits_.heavy_slots) return true;
  heavy_running_.fetch_sub(1);
  return false;
}

void Router::release_heavy() { heavy_running_.fetch_sub(1); }

Response Router::busy_response() const {
  Response busy = internal::json_response(
      503, query::error_json("the server is busy with " + std::to_string(limits_.heavy_slots) +
                             " heavy request(s) (evaluation, code health, large search "
                             "batches); retry shortly"));
  busy.headers["Retry-After"] = "2";
  return busy;
}

bool Router::is_heavy(const Request& request) const {
  std::vector<std::string> captures;
  bool path_known = false;
  const internal::Route* route =
      internal::find_route(request.method, request.target, &captures, &path_known);
  return route != nullptr && route_is_heavy(*route, request);
}

bool Router::route_is_heavy(const internal::Route& route, const Request& request) const {
  return route.heavy || (route.heavy_when != nullptr && route.heavy_when(request, limits_));
}

Response Router::handle(const Request& request, Heavy known) {
  const auto t0 = std::chrono::steady_clock::now();
  const char* route_name = "unknown";
  Response r;
  try {
    const size_t q = request.target.find('?');
    const std::string raw_path = request.target.substr(0, q);
    internal::Call call{
        request,        internal::url_decode(raw_path, false), {}, {}, engine_, limits_, metrics_,
        !token_.empty()};
    if (q != std::string::npos)
      call.params = internal::parse_query_string(request.target.substr(q + 1));
    bool path_known = false;
    const internal::Route* chosen =
        internal::find_route(request.method, request.target, &call.captures, &path_known);
    if (chosen == nullptr) {
      if (path_known) {
        throw HttpError{405, "method " + request.method + " is not allowed on " + call.path};
      }
      throw HttpError{404, "no such endpoint: " + request.method + " " + call.path};
    }
    route_name = chosen->name;
    if (chosen->auth == internal::Auth::kToken) internal::require_token(call, {&token_});
    if (chosen->auth == internal::Auth::kRead && !read_token_.empty()) {
      internal::require_token(call, {&read_token_, &token_});
    }
    // The server has already decided (and parsed a search body to do so); others ask here.
    const bool heavy =
        known == Heavy::kReserved || (known == Heavy::kCheck && route_is_heavy(*chosen, request));
    if (heavy && known != Heavy::kReserved) {
      // Whole-store work runs at most heavy_slots at a time so ordinary searches keep their
      // latency; the rest are told to come back.
      if (!try_reserve_heavy()) {
        r = busy_response();
      } else {
        try {
          r = chosen->handler(call);
        } catch (...) {
          release_heavy();
          throw;
        }
        release_heavy();
      }
    } else {
      r = chosen->handler(call);
    }
    if (r.body.size() > limits_.max_response_bytes) {
      throw HttpError{413, "the answer would be " + std::to_string(r.body.size()) +
                               " bytes; the limit is " +
                               std::to_string(limits_.max_response_bytes) +
                               " (ask for fewer queries, a smaller k or a smaller radius limit)"};
    }
    internal::release_memory_after(r, heavy);
  } catch (const HttpError& e) {
    r = internal::json_response(e.status, query::error_json(e.message));
  } catch (const nlohmann::json::exception& e) {
    r = internal::json_response(400, query::error_json(std::string("bad JSON field: ") + e.what()));
  } catch (const std::exception& e) {
    r = internal::json_response(500, query::error_json(std::string("internal error: ") + e.what()));
  }
  metrics_.record(route_name, r.status,
                  std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  return r;
}

}  // namespace imsat::http
