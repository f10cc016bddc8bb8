// `imsat encode`, `imsat index` and `imsat search`.
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cli.h"
#include "http/http.h"
#include "index/code_store.h"
#include "learn/learn.h"
#include "query/query.h"

namespace imsat::cli {
namespace {

namespace L = imsat::learn;
namespace I = imsat::index;
namespace Q = imsat::query;

// Encodes in chunks so the progress bar moves and memory for intermediate activations stays
// bounded.
std::vector<uint8_t> encode_all(const L::Model& model, const L::Dataset& data, bool quiet) {
  if (data.cols != model.input_dim()) {
    throw std::runtime_error(data.source + ": items have " + std::to_string(data.cols) +
                             " values, the model expects " + std::to_string(model.input_dim()));
  }
  L::set_num_threads(0);  // the tuned split; LibTorch's own default oversubscribes the cores
  const size_t chunk = 1024;
  const size_t bytes = static_cast<size_t>(model.code_bytes());
  std::vector<uint8_t> codes(data.rows * bytes);
  ItemProgress progress("encode", data.rows, quiet);
  for (size_t start = 0; start < data.rows; start += chunk) {
    const size_t n = std::min(chunk, data.rows - start);
    std::vector<uint8_t> part = take(model.encode(data.row(start), n, data.cols));
    std::copy(part.begin(), part.end(), codes.begin() + static_cast<std::ptrdiff_t>(start * bytes));
    progress.update(start + n);
  }
  progress.finish(data.rows);
  return codes;
}

L::Model load_hash_model(const std::string& path) {
  L::Model model = take(L::Model::load(path));
  if (model.is_clustering()) {
    throw std::runtime_error(path + ": a clustering model; a hash model is needed");
  }
  return model;
}

struct EncodeArgs {
  std::string model, data, labels, out;
  bool quiet = false;
};

struct IndexArgs {
  std::string model, data, labels, db, key_prefix, job;
  size_t batch = 50000;
  int tables = 0;
  bool with_vectors = false, quiet = false;
};

struct SearchArgs {
  std::string db, model, key, code, query_file, image, labels, rerank = "none";
  size_t k = 10, candidates = 0, limit = 10;
  int radius = -1, label = 0;
  bool json = false, scan = false, invert = false;
};

nlohmann::json hit_json(const Q::SearchHit& h, bool reranked) {
  nlohmann::json j = {{"key", h.key}, {"distance", h.distance}};
  if (reranked) j["score"] = h.score;
  if (h.label != I::kNoTag) j["label"] = h.label;
  if (!h.metadata.empty()) {
    nlohmann::json meta = nlohmann::json::parse(h.metadata, nullptr, false);
    j["metadata"] = meta.is_discarded() ? nlohmann::json(h.metadata) : meta;
  }
  return j;
}

}  // namespace

void add_encode(CLI::App& app) {
  auto a = std::make_shared<EncodeArgs>();
  CLI::App* cmd = app.add_subcommand("encode", "Encode a dataset to a codes file");
  cmd->add_option("--model", a->model, "Trained hash model")->required();
  cmd->add_option("--data", a->data, "Dataset: IDX file or folder, fvecs/bvecs, CSV")->required();
  cmd->add_option("--labels", a->labels, "IDX labels for an IDX image file (kept in the file)");
  cmd->add_option("--out", a->out, "Codes file to write")->required();
  cmd->add_flag("--quiet", a->quiet, "No progress output");
  cmd->callback([a] {
    L::Model model = load_hash_model(a->model);
    L::Dataset data = take(L::load_dataset(a->data, a->labels));
    Q::CodesFile f;
    f.bits = model.bits();
    f.rows = data.rows;
    f.fingerprint = model.fingerprint();
    f.source = data.source;
    f.codes = encode_all(model, data, a->quiet);
    f.labels = data.labels;
    check(Q::write_codes_file(a->out, f));
    std::fprintf(stderr, "imsat: wrote %zu %d-bit codes to %s\n", f.rows, f.bits, a->out.c_str());
  });
}

void add_index(CLI::App& app) {
  auto a = std::make_shared<IndexArgs>();
  CLI::App* cmd = app.add_subcommand(
      "index", "Bulk-index a dataset (with --model) or a codes file into a code store");
  cmd->add_option("--model", a->model, "Hash model that encodes --data (not for a codes file)");
  cmd->add_option("--data", a->data, "Dataset (IDX file or folder, fvecs/bvecs, CSV) or codes file")
      ->required();
  cmd->add_option("--labels", a->labels, "IDX labels for an IDX image file");
  cmd->add_option("--db", a->db, "Code store folder (created when missing)")->required();
  cmd->add_option("--key-prefix", a->key_prefix, "Keys are this prefix followed by the row number");
  cmd->add_option("--batch", a->batch, "Items per atomic batch")->capture_default_str();
  cmd->add_option("--tables", a->tables, "Multi-index tables when creating (0 = automatic)");
  cmd->add_option("--job", a->job, "Name of the resumable bulk job (default: from model and data)");
  cmd->add_flag("--with-vectors", a->with_vectors,
                "Also store the raw vectors (for --rerank exact; needs --model)");
  cmd->add_flag("--quiet", a->quiet, "No progress output");
  cmd->callback([a] {
    const auto t0 = std::chrono::steady_clock::now();
    Q::CodesFile f;
    L::Dataset data;
    std::unique_ptr<L::Model> model;
    const bool from_codes = Q::is_codes_file(a->data);
    if (from_codes) {
      if (!a->model.empty()) {
        throw std::runtime_error(a->data + " is a codes file; --model is only for raw data");
      }
      if (a->with_vectors) throw std::runtime_error("--with-vectors needs raw data and --model");
      f = take(Q::read_codes_file(a->data));
    } else {
      if (a->model.empty()) {
        throw std::runtime_error("--model is needed to index raw data (" + a->data + ")");
      }
      model = std::make_unique<L::Model>(load_hash_model(a->model));
      data = take(L::load_dataset(a->data, a->labels));
      if (!a->quiet) {
        std::fprintf(stderr, "read: %zu items of %zu values in %.2f s\n", data.rows, data.cols,
                     std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
      }
      f.bits = model->bits();
      f.rows = data.rows;
      f.fingerprint = model->fingerprint();
      f.source = data.source;
      f.labels = data.labels;
      if (data.cols != model->input_dim()) {  // checked before the store is created or touched
        throw std::runtime_error(data.source + ": items have " + std::to_string(data.cols) +
                                 " values, the model expects " +
                                 std::to_string(model->input_dim()));
      }
    }
    I::StoreOptions o;
    o.bits = f.bits;
    o.tables = a->tables;
    o.expected_items = std::max<size_t>(f.rows, 1000);
    o.model_fingerprint = f.fingerprint;
    std::unique_ptr<I::CodeStore> store = take(I::CodeStore::open(a->db, o));
    const std::string source = std::filesystem::path(f.source).filename().string();
    const std::string job =
        !a->job.empty() ? a->job
                        : "index:" + f.fingerprint + ":" + std::filesystem::absolute(a->data).string();
    const size_t done_before = take(store->bulk_progress(job));
    if (done_before >= f.rows) {
      std::fprintf(stderr, "imsat: %s is already indexed in %s (job %s)\n", a->data.c_str(),
                   a->db.c_str(), job.c_str());
      return;
    }
    if (done_before > 0) {
      std::fprintf(stderr, "imsat: resuming job %s at item %zu of %zu\n", job.c_str(), done_before,
                   f.rows);
    }
    if (model != nullptr) f.codes = encode_all(*model, data, a->quiet);
    const size_t bytes = static_cast<size_t>(f.bits) / 8;
    const size_t train_rows = from_codes ? 0 : data.train_rows;
    ItemProgress progress("index", f.rows, a->quiet);
    auto next = [&](size_t i, I::Item* item) {
      if (i >= f.rows) return false;
      item->key = a->key_prefix + std::to_string(i);
      item->code.assign(f.codes.begin() + static_cast<std::ptrdiff_t>(i * bytes),
                        f.codes.begin() + static_cast<std::ptrdiff_t>((i + 1) * bytes));
      item->tag = f.labels.empty() ? I::kNoTag : f.labels[i];
      nlohmann::json meta = {{"source", source}, {"row", i}};
      if (!f.labels.empty()) meta["label"] = f.labels[i];
      if (train_rows > 0) meta["split"] = i < train_rows ? "train" : "test";
      item->metadata = meta.dump();
      if (a->with_vectors) item->vector.assign(data.row(i), data.row(i) + data.cols);
      return true;
    };
    check(store->bulk_load(job, next, a->batch, [&](size_t done) { progress.update(done); }));
    progress.finish(f.rows - done_before);
    const double secs =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::fprintf(stderr, "imsat: indexed %zu items into %s (%zu in the store) in %.2f s, %.0f items/s end to end\n",
                 f.rows - done_before, a->db.c_str(), store->info().items, secs,
                 double(f.rows - done_before) / secs);
  });
}

void add_search(CLI::App& app) {
  auto a = std::make_shared<SearchArgs>();
  CLI::App* cmd = app.add_subcommand("search", "Search a code store by key, code or query file");
  cmd->add_option("--db", a->db, "Code store folder")->required();
  cmd->add_option("--model", a->model, "Hash model (needed for --query-file and re-ranking)");
  auto* key = cmd->add_option("--key", a->key, "Query by a stored item's key");
  auto* code = cmd->add_option("--code", a->code, "Query by a hex code");
  auto* file = cmd->add_option("--query-file", a->query_file,
                               "Query by every item of a dataset (needs --model)");
  auto* image = cmd->add_option("--image", a->image,
                                "Query by a PNG or JPEG image (needs a model trained on images)");
  cmd->add_flag("--invert", a->invert, "Invert the image (dark-on-light pictures)");
  key->excludes(code)->excludes(file)->excludes(image);
  code->excludes(file)->excludes(image);
  file->excludes(image);
  cmd->add_option("--labels", a->labels, "IDX labels for an IDX --query-file");
  cmd->add_option("--limit", a->limit, "At most this many queries from --query-file")
      ->capture_default_str();
  auto* k = cmd->add_option("-k", a->k, "Nearest neighbours")->capture_default_str();
  auto* radius = cmd->add_option("--radius", a->radius, "All items within this Hamming radius");
  k->excludes(radius);
  cmd->add_option("--rerank", a->rerank, "none, exact (stored vectors) or asymmetric")
      ->capture_default_str();
  cmd->add_option("--candidates", a->candidates,
                  "Hamming candidates to re-rank (0 = max(10 k, 100))");
  cmd->add_option("--label", a->label, "Only items with this label");
  cmd->add_flag("--scan", a->scan, "Linear scan instead of multi-index probing");
  cmd->add_flag("--json", a->json, "JSON output");
  cmd->callback([a, cmd] {
    if (a->key.empty() && a->code.empty() && a->query_file.empty() && a->image.empty()) {
      throw std::runtime_error("give a query: --key, --code, --query-file or --image");
    }
    if ((!a->query_file.empty() || !a->image.empty()) && a->model.empty()) {
      throw std::runtime_error(std::string(a->image.empty() ? "--query-file" : "--image") +
                               " needs --model to encode the query");
    }
    std::unique_ptr<Q::QueryEngine> engine = take(Q::QueryEngine::open(a->db, a->model));
    Q::SearchRequest r;
    r.k = a->k;
    r.radius = cmd->count("--radius") > 0 ? a->radius : -1;
    r.rerank = take(Q::parse_rerank(a->rerank));
    r.candidates = a->candidates;
    r.has_label = cmd->count("--label") > 0;
    r.label = a->label;
    r.use_multi_index = !a->scan;

    struct Answer {
      std::string query;
      Q::SearchResponse response;
    };
    std::vector<Answer> answers;
    if (!a->key.empty()) {
      answers.push_back({"key " + a->key, take(engine->search_key(a->key, r))});
    } else if (!a->code.empty()) {
      std::vector<uint8_t> c = take(Q::parse_hex_code(a->code, engine->bits()));
      answers.push_back({"code " + a->code, take(engine->search_code(c, r))});
    } else if (!a->image.empty()) {
      std::ifstream in(a->image, std::ios::binary);
      if (!in) throw std::runtime_error(a->image + ": cannot read");
      const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      Q::SearchResponse res = take(engine->search_image(bytes, r, a->invert));
      answers.push_back({"image " + a->image, std::move(res)});
    } else {
      L::Dataset q = take(L::load_dataset(a->query_file, a->labels));
      const size_t n = std::min(q.rows, a->limit);
      for (size_t i = 0; i < n; ++i) {
        answers.push_back({"row " + std::to_string(i),
                           take(engine->search_vector(q.row(i), q.cols, r))});
      }
    }
    const bool reranked = r.rerank != Q::Rerank::kNone;
    if (a->json) {
      nlohmann::json out = nlohmann::json::array();
      for (const Answer& ans : answers) {
        nlohmann::json hits = nlohmann::json::array();
        for (const Q::SearchHit& h : ans.response.hits) hits.push_back(hit_json(h, reranked));
        out.push_back({{"query", ans.query},
                       {"code", ans.response.query_code},
                       {"rerank", Q::rerank_name(r.rerank)},
                       {"buckets_probed", ans.response.stats.buckets_probed},
                       {"candidates_verified", ans.response.stats.candidates_verified},
                       {"hits", hits}});
      }
      std::cout << (answers.size() == 1 ? out[0] : out)
                       .dump(2, ' ', false, nlohmann::json::error_handler_t::replace)
                << "\n";
      return;
    }
    for (const Answer& ans : answers) {
      std::printf("query: %s  code %s  (%llu buckets probed, %llu candidates verified)\n",
                  ans.query.c_str(), ans.response.query_code.c_str(),
                  static_cast<unsigned long long>(ans.response.stats.buckets_probed),
                  static_cast<unsigned long long>(ans.response.stats.candidates_verified));
      std::printf("%5s  %-20s %8s %10s %6s  %s\n", "rank", "key", "hamming",
                  reranked ? "score" : "", "label", "metadata");
      for (size_t i = 0; i < ans.response.hits.size(); ++i) {
        const Q::SearchHit& h = ans.response.hits[i];
        char score[32] = "";
        if (reranked) std::snprintf(score, sizeof(score), "%.4f", h.score);
        char label[16] = "-";
        if (h.label != I::kNoTag) std::snprintf(label, sizeof(label), "%d", h.label);
        std::printf("%5zu  %-20s %8u %10s %6s  %s\n", i + 1, h.key.c_str(), h.distance, score, label,
                    h.metadata.c_str());
      }
      if (ans.response.hits.empty()) std::printf("  (no items)\n");
    }
  });
}

void add_serve(CLI::App& app) {
  struct ServeArgs {
    std::string db, model;
    imsat::http::ServerOptions server;
    bool no_cache = false;
    int bits = 0;
  };
  auto a = std::make_shared<ServeArgs>();
  CLI::App* cmd = app.add_subcommand("serve", "Serve a code store over HTTP (JSON API and web page)");
  cmd->add_option("--db", a->db, "Code store folder")->required();
  cmd->add_option("--model", a->model, "Hash model (for vector and image queries, adding vectors)");
  cmd->add_option("--bind", a->server.bind, "Address to listen on")->capture_default_str();
  cmd->add_option("--port", a->server.port, "Port (0 = any free port)")->capture_default_str();
  cmd->add_option("--threads", a->server.threads, "Worker threads")->capture_default_str();
  cmd->add_option("--token", a->server.token,
                  "Require 'Authorization: Bearer TOKEN' for writes and evaluation");
  cmd->add_option("--max-body-bytes", a->server.limits.max_body_bytes, "Largest request body")
      ->capture_default_str();
  cmd->add_option("--max-batch", a->server.limits.max_batch, "Most items or queries per request")
      ->capture_default_str();
  cmd->add_option("--max-k", a->server.limits.max_k, "Largest k")->capture_default_str();
  cmd->add_option("--timeout", a->server.limits.read_timeout_seconds,
                  "Seconds a connection may stay silent")
      ->capture_default_str();
  cmd->add_option("--bits", a->bits,
                  "Create an empty store of this code length when --db does not exist yet");
  cmd->add_flag("--no-vector-cache", a->no_cache,
                "Read stored vectors from RocksDB for exact re-ranking instead of memory");
  cmd->callback([a] {
    if (a->bits > 0 && !std::filesystem::exists(a->db)) {
      I::StoreOptions o;
      o.bits = a->bits;
      if (!a->model.empty()) o.model_fingerprint = load_hash_model(a->model).fingerprint();
      take(I::CodeStore::open(a->db, o));  // created and closed again
    }
    std::unique_ptr<Q::QueryEngine> engine = take(Q::QueryEngine::open(a->db, a->model));
    if (!a->no_cache) check(engine->cache_vectors());
    auto server = take(imsat::http::Server::start(*engine, a->server));
    const I::StoreInfo info = engine->store().info();
    std::fprintf(stderr,
                 "imsat: serving %s (%zu items, %d bits%s) on http://%s:%u/ with %d threads%s\n",
                 a->db.c_str(), info.items, info.bits, a->model.empty() ? ", no model" : "",
                 a->server.bind.c_str(), static_cast<unsigned>(server->port()), a->server.threads,
                 a->server.token.empty() ? "" : ", token required for writes");
    std::fprintf(stderr, "imsat: try  curl -s http://%s:%u/v1/info  (SIGTERM or Ctrl-C stops)\n",
                 a->server.bind.c_str(), static_cast<unsigned>(server->port()));
    server->wait_for_signal();
    std::fprintf(stderr, "imsat: stopped; the store is closed cleanly\n");
  });
}

}  // namespace imsat::cli
