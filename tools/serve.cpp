// `imsat serve`: the store over HTTP (JSON API and web page) until SIGTERM or Ctrl-C.
#include <cstdio>
#include <filesystem>

#include "cli.h"
#include "common/log.h"
#include "http/http.h"
#include "query/collections.h"
#include "query/engine.h"
#include "query/store_admin.h"

namespace imsat::cli {

namespace {

struct ServeArgs {
  std::string db, model, data_dir, default_collection, follow, follow_snapshot;
  int follow_interval_ms = 500;
  http::ServerOptions server;
  bool no_cache = false;
  std::string vector_precision = "float32";
  int bits = 0;
  size_t cache_mb = 64;
  std::string log_format = "text", log_level = "info";
  std::string models_dir;
  query::EncodeBatchOptions encode_batch;
  int encode_wait_us = 0;
};

// What is served: a store, a data directory, a replica or a snapshot link, and its model.
void add_source_options(CLI::App* cmd, const std::shared_ptr<ServeArgs>& a) {
  auto* db = cmd->add_option("--db", a->db, "Code store folder (served as collection 'default')");
  auto* data_dir = cmd->add_option(
      "--data-dir", a->data_dir,
      "Data directory of named collections (created when missing; each DIR/NAME/store with an "
      "optional DIR/NAME/model)");
  db->excludes(data_dir);
  auto* follow = cmd->add_option(
      "--follow", a->follow,
      "Serve a read replica of this store, which another `imsat serve` (or `imsat index`) "
      "writes: a RocksDB secondary instance caught up every --follow-interval-ms; writes get "
      "403 naming the primary");
  follow->excludes(db)->excludes(data_dir);
  auto* follow_snapshot = cmd->add_option(
      "--follow-snapshot", a->follow_snapshot,
      "Serve, read-only, the snapshot (or store) folder this path names, usually a symbolic link "
      "swapped atomically to each newer snapshot copied from the primary's machine; checked "
      "every --follow-interval-ms, the new folder is opened and served in place of the old");
  follow_snapshot->excludes(db)->excludes(data_dir)->excludes(follow);
  cmd->add_option("--follow-interval-ms", a->follow_interval_ms,
                  "How often a follower catches up with its primary (or looks at its snapshot "
                  "link)")
      ->check(CLI::Range(10, 600000))
      ->capture_default_str();
  auto* model = cmd->add_option("--model", a->model,
                                "Hash model (for vector and image queries, adding vectors)");
  model->excludes(data_dir);
  cmd->add_option("--default-collection", a->default_collection,
                  "The collection the un-prefixed endpoints (/v1/search, ...) act on (default: "
                  "the only one)");
  cmd->add_option("--bits", a->bits,
                  "Create an empty store of this code length when --db does not exist yet")
      ->check(code_bits_validator());
  cmd->add_option("--models-dir", a->models_dir,
                  "With --data-dir: a collection created over HTTP from a model path takes it "
                  "from this folder only (relative paths resolve here); without it any regular "
                  "model file the server may read")
      ->check(CLI::ExistingDirectory);
}

// The listener, its threads, model calls and tokens.
void add_server_options(CLI::App* cmd, const std::shared_ptr<ServeArgs>& a) {
  cmd->add_option("--bind", a->server.bind, "Address to listen on")->capture_default_str();
  cmd->add_option("--port", a->server.port, "Port (0 = any free port)")->capture_default_str();
  cmd->add_option("--threads", a->server.threads, "Worker threads")
      ->check(CLI::Range(1, 256))
      ->capture_default_str();
  cmd->add_option("--model-threads", a->server.model_threads,
                  "Threads for searches by vector or image, whose vectors are encoded together "
                  "(at most --encode-batch per model call); 0 = on the worker threads, which share "
                  "model calls too")
      ->check(CLI::Range(0, 1024))
      ->capture_default_str();
  cmd->add_option("--encode-batch", a->encode_batch.max_batch,
                  "Most vectors of concurrent searches encoded in one model call")
      ->check(CLI::Range(size_t{1}, size_t{4096}))
      ->capture_default_str();
  cmd->add_option("--encode-wait-us", a->encode_wait_us,
                  "Under concurrent load, how long the next model call waits for more vectors "
                  "(microseconds; 0 = never)")
      ->check(CLI::Range(0, 100000))
      ->capture_default_str();
  cmd->add_option("--token", a->server.token,
                  "Require 'Authorization: Bearer TOKEN' for writes and evaluation (or set "
                  "IMSAT_TOKEN, which keeps it out of the process list)");
  cmd->add_option("--read-token", a->server.read_token,
                  "Also require a bearer token (this one or --token) for searches, item reads "
                  "and store reports (or set IMSAT_READ_TOKEN)");
  cmd->add_option("--max-connections", a->server.max_connections,
                  "Most open connections; at the cap a new one closes the oldest idle one, or "
                  "gets 503 (0 = three quarters of the descriptor limit)")
      ->capture_default_str();
  cmd->add_option("--cache-mb", a->cache_mb,
                  "RocksDB block cache per store (keys, metadata, vectors and thumbnails are "
                  "read through it; the codes and the multi-index are always in memory)")
      ->check(CLI::Range(size_t{1}, size_t{1} << 20))
      ->capture_default_str();
}

// Each request's budget (Limits): refused with a 4xx naming the limit, or run as heavy.
void add_limit_options(CLI::App* cmd, const std::shared_ptr<ServeArgs>& a) {
  cmd->add_option("--max-hits", a->server.limits.max_hits, "Most hits per radius query")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("--max-results", a->server.limits.max_results,
                  "Most results (queries x k) per request")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("--max-rerank-values", a->server.limits.max_rerank_values,
                  "Most values (queries x candidates x dimension) exact re-ranking may read")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("--max-response-bytes", a->server.limits.max_response_bytes, "Largest answer")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("--max-image-pixels", a->server.limits.max_image_pixels,
                  "Largest uploaded image (declared width x height)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("--heavy-slots", a->server.limits.heavy_slots,
                  "Heavy requests at once: evaluations, code-health reports, searches over "
                  "--heavy-results (more: 503 and Retry-After)")
      ->check(CLI::Range(0, 64))
      ->capture_default_str();
  cmd->add_option("--heavy-results", a->server.limits.heavy_results,
                  "A search asking for more results (queries x k) runs as a heavy request")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("--heavy-scroll-items", a->server.limits.heavy_scroll_items,
                  "A scroll page of more items runs as a heavy request")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("--max-filter-terms", a->server.limits.max_filter_terms,
                  "Most conditions and values (match_any elements) in one filter")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("--max-body-bytes", a->server.limits.max_body_bytes, "Largest request body")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("--max-batch", a->server.limits.max_batch, "Most items or queries per request")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("--max-k", a->server.limits.max_k, "Largest k")
      ->check(CLI::Range(size_t{1}, query::kMaxK))
      ->capture_default_str();
  cmd->add_option("--timeout", a->server.limits.read_timeout_seconds,
                  "Seconds a connection may stay silent")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
}

// How stored vectors are held for exact re-ranking.
void add_cache_options(CLI::App* cmd, const std::shared_ptr<ServeArgs>& a) {
  cmd->add_flag("--no-vector-cache", a->no_cache,
                "Read stored vectors from RocksDB for exact re-ranking instead of memory");
  cmd->add_option("--vector-precision", a->vector_precision,
                  "How the vector cache holds stored vectors: float32, or float16 (half the "
                  "memory and faster re-ranking; values rounded to 11 significant bits, so "
                  "integers up to 2,048 stay exact; refused for values beyond 65,504)")
      ->check(CLI::IsMember({"float32", "float16"}))
      ->capture_default_str();
}

}  // namespace

void add_serve(CLI::App& app) {
  auto a = std::make_shared<ServeArgs>();
  CLI::App* cmd =
      app.add_subcommand("serve", "Serve a code store over HTTP (JSON API and web page)");
  add_source_options(cmd, a);
  add_server_options(cmd, a);
  add_limit_options(cmd, a);
  add_cache_options(cmd, a);
  cmd->add_option("--log-format", a->log_format,
                  "Log lines on stderr as text or json (one object per line): start-up, "
                  "shutdown, collections opened, background errors, and one access line per "
                  "request (method, route, collection, status, bytes, ms, client, request id)")
      ->check(CLI::IsMember({"text", "json"}))
      ->capture_default_str();
  cmd->add_option("--log-level", a->log_level,
                  "Least level logged: debug, info, warn (errors, 5xx answers), error or off")
      ->check(CLI::IsMember({"debug", "info", "warn", "error", "off"}))
      ->capture_default_str();
  add_config_options(cmd, /*environment=*/true);
  cmd->callback([a, cmd] {
    if (print_config_if_asked(cmd)) return;
    if (a->db.empty() && a->data_dir.empty() && a->follow.empty() && a->follow_snapshot.empty()) {
      throw UsageError("give --db, --data-dir, --follow or --follow-snapshot");
    }
    log::configure(take(log::parse_format(a->log_format)), take(log::parse_level(a->log_level)));
    std::unique_ptr<query::Catalog> catalog;
    const query::VectorPrecision precision =
        take(query::parse_vector_precision(a->vector_precision));
    if (!a->follow_snapshot.empty()) {
      catalog = take(query::Catalog::snapshot_follower("default", a->follow_snapshot, a->model,
                                                       a->follow_interval_ms, a->cache_mb));
    } else if (!a->follow.empty()) {
      catalog = take(query::Catalog::follower("default", a->follow, a->model, a->follow_interval_ms,
                                              a->cache_mb));
    } else if (!a->data_dir.empty()) {
      if (a->bits > 0)
        throw UsageError(
            "--bits creates a store for --db; with --data-dir use "
            "PUT /v1/collections/NAME or imsat collections create");
      catalog = take(query::Catalog::open(a->data_dir, !a->no_cache, a->cache_mb, precision));
      catalog->set_models_dir(a->models_dir);
    } else {
      if (a->bits > 0 && !std::filesystem::exists(a->db)) {
        check(query::create_store(a->db, a->bits, a->model));
      }
      catalog = take(
          query::Catalog::single("default", a->db, a->model, !a->no_cache, a->cache_mb, precision));
    }
    if (!a->default_collection.empty()) check(catalog->set_default(a->default_collection));
    a->encode_batch.max_wait = std::chrono::microseconds(a->encode_wait_us);
    catalog->set_encode_batching(a->encode_batch);
    auto server = take(http::Server::start(*catalog, a->server));
    size_t items = 0;
    for (const auto& c : catalog->list()) items += c->engine().info().items;
    const std::string fallback = catalog->default_name();
    const std::string url = "http://" + a->server.bind + ":" + std::to_string(server->port()) + "/";
    log::info("serving",
              {{"source", !a->follow_snapshot.empty() ? "snapshots at " + a->follow_snapshot
                          : !a->follow.empty()        ? "replica of " + a->follow
                          : a->data_dir.empty()       ? a->db
                                                      : a->data_dir},
               {"collections", catalog->list().size()},
               {"items", items},
               {"default_collection", fallback.empty() ? "-" : fallback},
               {"url", url},
               {"threads", a->server.threads},
               {"auth", a->server.token.empty()        ? "none"
                        : a->server.read_token.empty() ? "token for writes"
                                                       : "tokens for reads and writes"},
               {"version", IMSAT_VERSION}});
    log::info("ready",
              {{"try", "curl -s " + url + "v1/collections"}, {"stop", "SIGTERM or Ctrl-C"}});
    server->wait_for_signal();
    log::info("stopping", {{"reason", "signal"}});
    server.reset();
    catalog.reset();
    log::info("stopped", {{"stores", "closed cleanly"}});
  });
}

}  // namespace imsat::cli
