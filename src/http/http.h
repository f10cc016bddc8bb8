// imsat::http — the similar-image search service: a JSON API over a query engine, served by
// Boost.Beast on a thread pool, with a web page. No Boost type appears here.
//
//   Router   turns one request (method, target, headers, body) into one response; never throws.
//            Tests and fuzzers call it directly, without sockets.
//   Server   listens on an address and port and hands each parsed request to the Router, with
//            limits on header and body size, timeouts for slow clients, and graceful shutdown.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"
#include "query/collections.h"
#include "query/query.h"

namespace imsat::http {

struct Limits {
  size_t max_body_bytes = 16u << 20;    // larger bodies: 413
  size_t max_header_bytes = 16u << 10;  // larger headers: 431
  int max_json_depth = 16;              // deeper JSON: 400
  size_t max_batch = 10000;             // items per POST /v1/items, queries per search
  size_t max_k = 1000;                  // k and candidates per query
  int read_timeout_seconds = 30;        // a client that sends nothing for this long is dropped
  // The cost budget of one request, checked before the work (each refusal is a 4xx naming it):
  size_t max_hits = 10000;                  // hits per radius query (more: 'truncated': true)
  size_t max_results = 100000;              // queries x k (or x max_hits) per request
  size_t max_rerank_values = 50000000;      // queries x candidates x vector dimension
  size_t max_response_bytes = 64u << 20;    // larger answers: 413
  size_t max_image_pixels = 4096u * 4096u;  // declared width x height of an upload
  int heavy_slots = 1;                      // heavy requests at once; more get 503 + Retry-After
  // A search asking for more results than this (queries x k, or x the radius 'limit') is heavy:
  // it runs on the heavy pool like an evaluation, so it cannot hold up ordinary searches.
  size_t heavy_results = 10000;
  // Conditions and values (match_any elements) in one filter: more get 400 naming the limit.
  size_t max_filter_terms = 10000;
  // A search, scroll, count or delete whose body is larger than this (a filter with many values)
  // is heavy, as is a scroll page of more than heavy_scroll_items items.
  size_t heavy_body_bytes = 64u << 10;
  size_t heavy_scroll_items = 1000;
};

struct Request {
  std::string method;                          // "GET", "POST", ...
  std::string target;                          // path and query string, e.g. "/v1/search?explain=1"
  std::map<std::string, std::string> headers;  // names in lower case
  std::string body;
};

struct Response {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::map<std::string, std::string> headers;  // extra headers (e.g. Retry-After)
  // Instead of `body`: a file streamed as the body, removed once opened when `remove_file` (its
  // data stays readable through the open descriptor until the answer is sent).
  std::string file;
  bool remove_file = false;
  // For the access log: the route's name ("search", "unknown") and the collection acted on.
  std::string route;
  std::string collection;
  std::string error_code;  // an error answer's code ("wrong_token"), as its body says
};

// Request counters and latency histograms for GET /metrics (Prometheus text format).
class Metrics {
 public:
  void record(const std::string& route, int status, double seconds);
  std::string prometheus_text(size_t items, size_t memory_bytes) const;

 private:
  mutable std::mutex mutex_;
  std::map<std::pair<std::string, int>, uint64_t> counts_;
  std::map<std::string, std::vector<uint64_t>> latency_;  // per route, cumulative buckets
  std::map<std::string, double> latency_sum_;
};

namespace internal {
struct Route;      // http_internal.h
struct Endpoint;   // http_internal.h
struct Call;       // http_internal.h
struct HttpError;  // http_internal.h
}  // namespace internal

class Router {
 public:
  // `token` empty: no authentication. Otherwise writes and evaluation need
  // "Authorization: Bearer <token>". `read_token` non-empty: every search, item read and store
  // report needs it (or `token`) too; /healthz, /metrics, /openapi.json and the page stay open.
  // A read token without a write token would leave writes open: Server::start refuses it.
  // One engine, served as the only collection ("default").
  Router(query::QueryEngine& engine, Limits limits, std::string token, std::string read_token = "");
  // Every collection of a catalog; un-prefixed endpoints act on its default collection.
  Router(query::Catalog& catalog, Limits limits, std::string token, std::string read_token = "");
  ~Router();
  // What the caller already knows of a request's heaviness (is_heavy).
  enum class Heavy {
    kCheck,     // nothing: handle() decides
    kNo,        // is_heavy() said no
    kReserved,  // heavy, and the caller holds a slot (try_reserve_heavy) and releases it
  };
  // Handles one request. Never throws: errors are 4xx/5xx responses with {"error": "..."}.
  // A heavy request (whole-store work: evaluation, code health; large search batches) takes one of
  // Limits::heavy_slots for its duration, or is answered 503 with Retry-After when none is free.
  Response handle(const Request& request, Heavy heavy = Heavy::kCheck);
  // Whether `request` goes to a heavy endpoint: the Server runs those on its own small pool so
  // that they never occupy the threads that answer ordinary searches.
  bool is_heavy(const Request& request) const;
  // Whether `request` runs the model (a search by vector or image): the Server runs those on its
  // model pool (ServerOptions::model_threads), where concurrent ones share batched model calls.
  bool encodes(const Request& request) const;
  // The 401 answer for a request whose headers lack the token its endpoint needs; std::nullopt
  // when it may go on (unknown endpoints and methods too: handle() answers those). The Server
  // asks before it reads a body, so a client without the token costs no body read or parse, and
  // "Expect: 100-continue" is answered only after this check.
  std::optional<Response> refuse_unauthorized(const std::string& method, const std::string& target,
                                              const std::string& authorization);
  bool try_reserve_heavy();
  void release_heavy();
  Response busy_response() const;
  Metrics& metrics() { return metrics_; }
  // Shutdown has begun: /readyz answers 503 so that a load balancer stops sending requests.
  void set_draining() { draining_.store(true); }
  bool draining() const { return draining_.load(); }
  query::Catalog& catalog() { return catalog_; }
  const Limits& limits() const { return limits_; }

 private:
  bool route_is_heavy(const internal::Route& route, const Request& request) const;
  // Throws HttpError 401 when `authorization` (the header's value) does not carry the token
  // `route` needs.
  void check_authorization(const internal::Route& route, const std::string& authorization) const;
  static Response error_response(const internal::HttpError& e);
  // The collection a request names (or the default one) into `call`: HttpError 400, 403 or 404
  // when the name is bad, the collection missing, or a write reaches a follower.
  void bind_collection(const internal::Endpoint& chosen, internal::Call* call);
  // The route's handler, in a heavy slot when `heavy` and the caller holds none (503 when no slot
  // is free); HttpError 413 when the answer exceeds the response limit.
  Response run_handler(const internal::Route& route, internal::Call& call, bool heavy, Heavy known);

  std::unique_ptr<query::Catalog> owned_catalog_;  // Router(QueryEngine&) only
  query::Catalog& catalog_;
  Limits limits_;
  std::string token_;
  std::string read_token_;
  Metrics metrics_;
  std::atomic<int> heavy_running_{0};
  std::atomic<bool> draining_{false};
};

struct ServerOptions {
  std::string bind = "127.0.0.1";
  uint16_t port = 8080;  // 0: any free port (see Server::port)
  int threads = 2;
  // Threads for searches by vector or image. They mostly wait: with batching on (query::
  // EncodeBatchOptions::max_batch > 1), concurrent searches' vectors are encoded together in one
  // model call, so this bounds the batch that concurrent clients can form. 0 (the default): such
  // searches run on the I/O threads like any other. The hand-off to a pool costs
  // two thread wake-ups per request (bench/README.md, "Search by vector"): worth it only where
  // the model's time dominates a request (large networks, many cores).
  int model_threads = 0;
  // Open connections at most (0: three quarters of the descriptor limit, less 32 for the store).
  // At the cap a new connection closes the oldest idle one, or, when none is idle, gets 503.
  size_t max_connections = 0;
  Limits limits;
  std::string token;
  std::string read_token;
};

class Server {
 public:
  // Binds and starts serving on `threads` threads. Errors: InvalidArgument (bad address),
  // IOError (cannot bind).
  static Result<std::unique_ptr<Server>> start(query::QueryEngine& engine,
                                               const ServerOptions& options);
  // Serves every collection of `catalog` (which must outlive the server).
  static Result<std::unique_ptr<Server>> start(query::Catalog& catalog,
                                               const ServerOptions& options);
  ~Server();  // stops as stop() does
  uint16_t port() const;
  // Stops accepting, lets requests in flight finish (up to `grace_seconds`), then closes every
  // connection and joins the threads.
  void stop(double grace_seconds = 10);
  // Blocks until SIGTERM or SIGINT arrives, then stops gracefully.
  void wait_for_signal();
  Router& router();

  struct Impl;

 private:
  explicit Server(std::unique_ptr<Impl> impl);
  static Result<std::unique_ptr<Server>> start_with(std::unique_ptr<Router> router,
                                                    const ServerOptions& options);
  std::unique_ptr<Impl> impl_;
};

}  // namespace imsat::http
