// The JSON API: one request in, one response out. Handlers never throw; every error is a JSON
// {"error": "..."} with a 4xx (the client's fault) or 5xx status, and a failed request changes
// nothing.
#include <stb/stb_image_write.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>
#include <sstream>

#include "http/http.h"
#include "http/http_internal.h"

namespace imsat::http {
namespace {

using json = nlohmann::json;
namespace I = imsat::index;
namespace Q = imsat::query;

// A handler's early exit: status and message become the JSON error response.
struct HttpError {
  int status;
  std::string message;
};

Response json_response(int status, const json& body) {
  Response r;
  r.status = status;
  // Strings from requests or stored keys may hold invalid UTF-8; replace it instead of throwing.
  r.body = body.dump(-1, ' ', false, json::error_handler_t::replace);
  return r;
}

Response error_response(int status, const std::string& message) {
  return json_response(status, json{{"error", message}});
}

int status_of(const Status& s) {
  switch (s.code()) {
    case Status::Code::kInvalidArgument:
      return 400;
    case Status::Code::kNotFound:
      return 404;
    default:
      return 500;
  }
}

void check(const Status& s) {
  if (!s.is_ok()) throw HttpError{status_of(s), s.message()};
}
template <typename T>
T take(Result<T> r) {
  check(r.status());
  return std::move(r).value();
}

// Depth of the deepest array/object nesting, counted outside strings; stops early past `limit`.
bool json_too_deep(const std::string& text, int limit) {
  int depth = 0;
  bool in_string = false, escaped = false;
  for (char c : text) {
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > limit) return true;
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return false;
}

json parse_json(const std::string& text, const Limits& limits) {
  if (json_too_deep(text, limits.max_json_depth)) {
    throw HttpError{400, "JSON nests deeper than " + std::to_string(limits.max_json_depth) +
                             " levels"};
  }
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) throw HttpError{400, "malformed JSON body"};
  return j;
}

std::string header(const Request& r, const std::string& name) {
  auto it = r.headers.find(name);
  return it == r.headers.end() ? std::string() : it->second;
}

// Splits "/a/b?x=1&y=2" into the path and its query parameters (no percent-decoding beyond %XX).
std::string url_decode(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && std::isxdigit(static_cast<unsigned char>(s[i + 1])) &&
        std::isxdigit(static_cast<unsigned char>(s[i + 2]))) {
      out.push_back(static_cast<char>(std::stoi(s.substr(i + 1, 2), nullptr, 16)));
      i += 2;
    } else {
      out.push_back(s[i] == '+' ? ' ' : s[i]);
    }
  }
  return out;
}

void split_target(const std::string& target, std::string* path,
                  std::map<std::string, std::string>* params) {
  const size_t q = target.find('?');
  *path = url_decode(target.substr(0, q));
  if (q == std::string::npos) return;
  std::stringstream in(target.substr(q + 1));
  std::string pair;
  while (std::getline(in, pair, '&')) {
    const size_t eq = pair.find('=');
    (*params)[url_decode(pair.substr(0, eq))] =
        eq == std::string::npos ? "" : url_decode(pair.substr(eq + 1));
  }
}

bool constant_time_equal(const std::string& a, const std::string& b) {
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  for (size_t i = 0; i < a.size(); ++i) diff |= a[i] ^ b[i % std::max<size_t>(b.size(), 1)];
  return diff == 0 && !b.empty();
}

// Typed reads of optional JSON fields with clear errors.
size_t get_size(const json& j, const char* name, size_t fallback, size_t max) {
  if (!j.contains(name)) return fallback;
  const json& v = j.at(name);
  if (!v.is_number_integer() || v.get<int64_t>() < 0) {
    throw HttpError{400, std::string("'") + name + "' must be a non-negative integer"};
  }
  const auto n = v.get<uint64_t>();
  if (n > max) {
    throw HttpError{400, std::string("'") + name + "' is " + std::to_string(n) +
                             "; the limit is " + std::to_string(max)};
  }
  return static_cast<size_t>(n);
}

std::vector<float> get_vector(const json& v, size_t dim) {
  if (!v.is_array()) throw HttpError{400, "'vector' must be an array of numbers"};
  if (v.size() != dim) {
    throw HttpError{400, "'vector' has " + std::to_string(v.size()) + " values; the model expects " +
                             std::to_string(dim)};
  }
  std::vector<float> out;
  out.reserve(v.size());
  for (size_t i = 0; i < v.size(); ++i) {
    if (!v[i].is_number()) {
      throw HttpError{400, "'vector' value " + std::to_string(i) + " is not a number"};
    }
    const double x = v[i].get<double>();
    if (!std::isfinite(x) || std::fabs(x) > std::numeric_limits<float>::max()) {
      throw HttpError{400, "'vector' value " + std::to_string(i) + " is not a finite float"};
    }
    out.push_back(static_cast<float>(x));
  }
  return out;
}

json hit_json(const Q::SearchHit& h, bool reranked) {
  json j = {{"key", h.key}, {"distance", h.distance}};
  if (reranked) j["score"] = h.score;
  if (h.label != I::kNoTag) j["label"] = h.label;
  if (!h.metadata.empty()) {
    json meta = json::parse(h.metadata, nullptr, false);
    j["metadata"] = meta.is_discarded() ? json(h.metadata) : meta;
  }
  return j;
}

json response_json(const Q::SearchResponse& r, const Q::SearchRequest& req, bool explain) {
  json hits = json::array();
  const bool reranked = req.rerank != Q::Rerank::kNone;
  for (const Q::SearchHit& h : r.hits) hits.push_back(hit_json(h, reranked));
  json out = {{"code", r.query_code}, {"hits", hits}};
  if (explain) {
    out["explain"] = {{"buckets_probed", r.stats.buckets_probed},
                      {"candidates_verified", r.stats.candidates_verified},
                      {"candidates_reranked", r.candidates_reranked},
                      {"rerank", Q::rerank_name(req.rerank)},
                      {"multi_index", req.use_multi_index}};
  }
  return out;
}

}  // namespace

Router::Router(query::QueryEngine& engine, Limits limits, std::string token)
    : engine_(engine), limits_(limits), token_(std::move(token)) {}

Response Router::handle(const Request& request) {
  const auto t0 = std::chrono::steady_clock::now();
  std::string route_name = "unknown";
  Response r;
  try {
    r = route(request, &route_name);
  } catch (const HttpError& e) {
    r = error_response(e.status, e.message);
  } catch (const json::exception& e) {
    r = error_response(400, std::string("bad JSON field: ") + e.what());
  } catch (const std::exception& e) {
    r = error_response(500, std::string("internal error: ") + e.what());
  }
  metrics_.record(route_name, r.status,
                  std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  return r;
}

Response Router::route(const Request& req, std::string* route_name) {
  std::string path;
  std::map<std::string, std::string> params;
  split_target(req.target, &path, &params);
  const std::string& m = req.method;
  auto require_token = [&] {
    if (token_.empty()) return;
    const std::string auth = header(req, "authorization");
    const std::string prefix = "Bearer ";
    if (auth.compare(0, prefix.size(), prefix) != 0) {
      throw HttpError{401, "this endpoint needs 'Authorization: Bearer <token>'"};
    }
    if (!constant_time_equal(auth.substr(prefix.size()), token_)) {
      throw HttpError{401, "wrong token"};
    }
  };
  auto require_method = [&](std::initializer_list<const char*> allowed) {
    for (const char* a : allowed) {
      if (m == a) return;
    }
    throw HttpError{405, "method " + m + " is not allowed on " + path};
  };
  auto require_json = [&] {
    const std::string ct = header(req, "content-type");
    if (ct.find("application/json") == std::string::npos) {
      throw HttpError{415, "expected Content-Type application/json, got '" + ct + "'"};
    }
  };

  if (path == "/healthz") {
    *route_name = "healthz";
    require_method({"GET"});
    return json_response(200, {{"status", "ok"}});
  }
  if (path == "/" || path == "/index.html") {
    *route_name = "page";
    require_method({"GET"});
    Response r;
    r.content_type = "text/html; charset=utf-8";
    r.body = internal::web_page();
    return r;
  }
  if (path == "/openapi.json") {
    *route_name = "openapi";
    require_method({"GET"});
    return json_response(200, json::parse(internal::openapi_json()));
  }
  if (path == "/metrics") {
    *route_name = "metrics";
    require_method({"GET"});
    Response r;
    r.content_type = "text/plain; version=0.0.4";
    const I::StoreInfo info = engine_.store().info();
    r.body = metrics_.prometheus_text(info.items, info.memory_bytes);
    return r;
  }
  if (path == "/v1/info") {
    *route_name = "info";
    require_method({"GET"});
    const I::StoreInfo info = engine_.store().info();
    json j = {{"bits", info.bits},
              {"items", info.items},
              {"multi_index_tables", info.tables},
              {"store_format_version", info.format_version},
              {"memory_bytes", info.memory_bytes},
              {"store_model_fingerprint", info.model_fingerprint},
              {"cached_vectors", engine_.cached_vectors()},
              {"limits",
               {{"max_body_bytes", limits_.max_body_bytes},
                {"max_json_depth", limits_.max_json_depth},
                {"max_batch", limits_.max_batch},
                {"max_k", limits_.max_k}}},
              {"auth", token_.empty() ? "none" : "bearer token for writes and evaluation"}};
    if (const learn::Model* model = engine_.model()) {
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
  if (path == "/v1/search") {
    *route_name = "search";
    require_method({"POST"});
    require_json();
    const json body = parse_json(req.body, limits_);
    if (!body.is_object()) throw HttpError{400, "the body must be a JSON object"};
    Q::SearchRequest sr;
    sr.k = get_size(body, "k", 10, limits_.max_k);
    if (sr.k == 0) throw HttpError{400, "'k' must be at least 1"};
    if (body.contains("radius")) {
      sr.radius = static_cast<int>(get_size(body, "radius", 0, 1024));
    }
    sr.candidates = get_size(body, "candidates", 0, 10 * limits_.max_k);
    if (body.contains("rerank")) {
      if (!body["rerank"].is_string()) throw HttpError{400, "'rerank' must be a string"};
      sr.rerank = take(Q::parse_rerank(body["rerank"].get<std::string>()));
    }
    if (body.contains("filter")) {
      const json& f = body["filter"];
      if (!f.is_object()) throw HttpError{400, "'filter' must be an object"};
      for (auto it = f.begin(); it != f.end(); ++it) {
        if (it.key() != "label") {
          throw HttpError{400, "unknown filter '" + it.key() + "' (supported: label)"};
        }
        if (!it.value().is_number_integer()) throw HttpError{400, "'filter.label' must be an integer"};
        sr.has_label = true;
        sr.label = it.value().get<int32_t>();
      }
    }
    sr.use_multi_index = !body.value("scan", false);
    const bool explain = body.value("explain", false) || params.count("explain") > 0;
    auto one = [&](const json& q) -> json {
      if (!q.is_object()) throw HttpError{400, "each query must be a JSON object"};
      const int given = q.contains("vector") + q.contains("code") + q.contains("key");
      if (given != 1) {
        throw HttpError{400, "give exactly one of 'vector', 'code' or 'key' per query"};
      }
      if (q.contains("vector")) {
        const learn::Model* model = engine_.model();
        if (model == nullptr) throw HttpError{400, "searching by vector needs a model"};
        const std::vector<float> v = get_vector(q["vector"], model->input_dim());
        return response_json(take(engine_.search_vector(v.data(), v.size(), sr)), sr, explain);
      }
      if (q.contains("code")) {
        if (!q["code"].is_string()) throw HttpError{400, "'code' must be a hex string"};
        const std::vector<uint8_t> code =
            take(Q::parse_hex_code(q["code"].get<std::string>(), engine_.bits()));
        return response_json(take(engine_.search_code(code, sr)), sr, explain);
      }
      if (!q["key"].is_string()) throw HttpError{400, "'key' must be a string"};
      return response_json(take(engine_.search_key(q["key"].get<std::string>(), sr)), sr, explain);
    };
    if (body.contains("queries")) {
      const json& qs = body["queries"];
      if (!qs.is_array() || qs.empty()) throw HttpError{400, "'queries' must be a non-empty array"};
      if (qs.size() > limits_.max_batch) {
        throw HttpError{400, "'queries' holds " + std::to_string(qs.size()) +
                                 " queries; the limit is " + std::to_string(limits_.max_batch)};
      }
      json results = json::array();
      for (const json& q : qs) results.push_back(one(q));
      return json_response(200, {{"results", results}});
    }
    return json_response(200, one(body));
  }
  if (path == "/v1/search/image") {
    *route_name = "search_image";
    require_method({"POST"});
    const std::string ct = header(req, "content-type");
    if (ct.rfind("image/", 0) != 0) {
      throw HttpError{415, "expected an image Content-Type (image/png or image/jpeg), got '" + ct +
                               "'"};
    }
    Q::SearchRequest sr;
    try {
      sr.k = params.count("k") ? std::stoul(params["k"]) : 10;
      sr.candidates = params.count("candidates") ? std::stoul(params["candidates"]) : 0;
    } catch (const std::exception&) {
      throw HttpError{400, "'k' and 'candidates' must be integers"};
    }
    if (sr.k == 0 || sr.k > limits_.max_k) {
      throw HttpError{400, "'k' must be from 1 to " + std::to_string(limits_.max_k)};
    }
    if (params.count("rerank")) sr.rerank = take(Q::parse_rerank(params["rerank"]));
    if (params.count("label")) {
      try {
        sr.label = std::stoi(params["label"]);
      } catch (const std::exception&) {
        throw HttpError{400, "'label' must be an integer"};
      }
      sr.has_label = true;
    }
    const bool invert = params.count("invert") && params["invert"] != "0";
    return json_response(200, response_json(take(engine_.search_image(req.body, sr, invert)), sr,
                                            params.count("explain") > 0));
  }
  if (path == "/v1/items") {
    *route_name = "items_add";
    require_method({"POST"});
    require_token();
    const std::string ct = header(req, "content-type");
    std::vector<json> docs;
    if (ct.find("application/x-ndjson") != std::string::npos) {
      std::stringstream in(req.body);
      std::string line;
      size_t number = 0;
      while (std::getline(in, line)) {
        ++number;
        if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
        try {
          docs.push_back(parse_json(line, limits_));
        } catch (const HttpError& e) {
          throw HttpError{400, "line " + std::to_string(number) + ": " + e.message};
        }
      }
    } else if (ct.find("application/json") != std::string::npos) {
      json body = parse_json(req.body, limits_);
      if (body.is_object() && body.contains("items")) body = body["items"];
      if (!body.is_array()) {
        throw HttpError{400, "expected a JSON array of items (or {\"items\": [...]})"};
      }
      for (json& d : body) docs.push_back(std::move(d));
    } else {
      throw HttpError{415, "expected Content-Type application/json or application/x-ndjson"};
    }
    if (docs.empty()) throw HttpError{400, "no items given"};
    if (docs.size() > limits_.max_batch) {
      throw HttpError{400, std::to_string(docs.size()) + " items in one request; the limit is " +
                               std::to_string(limits_.max_batch)};
    }
    // Validate and encode everything first: a bad item rejects the whole request unchanged.
    std::vector<I::Item> items;
    items.reserve(docs.size());
    for (size_t i = 0; i < docs.size(); ++i) {
      const json& d = docs[i];
      const std::string where = "item " + std::to_string(i) + ": ";
      try {
        if (!d.is_object()) throw HttpError{400, "not a JSON object"};
        if (!d.contains("key") || !d["key"].is_string() || d["key"].get<std::string>().empty()) {
          throw HttpError{400, "needs a non-empty string 'key'"};
        }
        I::Item item;
        item.key = d["key"].get<std::string>();
        if (d.contains("vector") == d.contains("code")) {
          throw HttpError{400, "give exactly one of 'vector' or 'code'"};
        }
        if (d.contains("vector")) {
          const learn::Model* model = engine_.model();
          if (model == nullptr) throw HttpError{400, "adding vectors needs a model"};
          item.vector = get_vector(d["vector"], model->input_dim());
          item.code = take(engine_.encode(item.vector.data(), 1, item.vector.size()));
        } else {
          if (!d["code"].is_string()) throw HttpError{400, "'code' must be a hex string"};
          item.code = take(Q::parse_hex_code(d["code"].get<std::string>(), engine_.bits()));
        }
        if (d.contains("label")) {
          if (!d["label"].is_number_integer()) throw HttpError{400, "'label' must be an integer"};
          item.tag = d["label"].get<int32_t>();
        }
        if (d.contains("metadata")) item.metadata = d["metadata"].dump();
        items.push_back(std::move(item));
      } catch (const HttpError& e) {
        throw HttpError{e.status, where + e.message};
      }
    }
    check(engine_.store().put(items));  // one atomic, synced batch: durable when we answer
    return json_response(200, {{"added", items.size()}, {"items", engine_.store().info().items}});
  }
  const std::string items_prefix = "/v1/items/";
  if (path.compare(0, items_prefix.size(), items_prefix) == 0 && path.size() > items_prefix.size()) {
    std::string key = path.substr(items_prefix.size());
    const std::string image_suffix = "/image";
    const bool image = key.size() > image_suffix.size() &&
                       key.compare(key.size() - image_suffix.size(), image_suffix.size(),
                                   image_suffix) == 0;
    if (image) {
      *route_name = "item_image";
      require_method({"GET"});
      key.resize(key.size() - image_suffix.size());
      const I::Item item = take(engine_.store().get(key));
      const learn::Model* model = engine_.model();
      if (item.vector.empty()) {
        throw HttpError{404, "item '" + key + "' has no stored vector to draw (index with vectors)"};
      }
      if (model == nullptr || !model->takes_pixels() || model->input_shape().size() != 2 ||
          model->input_dim() != item.vector.size()) {
        throw HttpError{404, "item '" + key + "' is not an image of the model's shape"};
      }
      const int h = static_cast<int>(model->input_shape()[0]);
      const int w = static_cast<int>(model->input_shape()[1]);
      std::vector<unsigned char> pixels(item.vector.size());
      for (size_t i = 0; i < pixels.size(); ++i) {
        pixels[i] = static_cast<unsigned char>(std::clamp(item.vector[i], 0.0f, 255.0f));
      }
      Response r;
      r.content_type = "image/png";
      stbi_write_png_to_func(
          [](void* ctx, void* data, int size) {
            static_cast<std::string*>(ctx)->append(static_cast<const char*>(data),
                                                   static_cast<size_t>(size));
          },
          &r.body, w, h, 1, pixels.data(), w);
      return r;
    }
    if (m == "GET") {
      *route_name = "item_get";
      const I::Item item = take(engine_.store().get(key));
      json j = {{"key", item.key},
                {"code", Q::to_hex(item.code.data(), item.code.size())},
                {"has_vector", !item.vector.empty()}};
      if (item.tag != I::kNoTag) j["label"] = item.tag;
      if (!item.metadata.empty()) {
        json meta = json::parse(item.metadata, nullptr, false);
        j["metadata"] = meta.is_discarded() ? json(item.metadata) : meta;
      }
      return json_response(200, j);
    }
    if (m == "DELETE") {
      *route_name = "item_delete";
      require_token();
      check(engine_.store().erase({key}));
      return json_response(200, {{"deleted", key}});
    }
    *route_name = "items";
    throw HttpError{405, "method " + m + " is not allowed on " + path};
  }
  if (path == "/v1/evaluate") {
    *route_name = "evaluate";
    require_method({"POST"});
    require_token();
    json body = json::object();
    if (!req.body.empty()) {
      require_json();
      body = parse_json(req.body, limits_);
      if (!body.is_object()) throw HttpError{400, "the body must be a JSON object"};
    }
    const size_t per_class = get_size(body, "queries_per_class", 100, 100000);
    const uint64_t seed = get_size(body, "seed", 0, std::numeric_limits<uint32_t>::max());
    const auto t0 = std::chrono::steady_clock::now();
    std::vector<int32_t> tags;
    std::vector<uint8_t> all = engine_.store().sample_codes(std::numeric_limits<size_t>::max(), &tags);
    const size_t bytes = static_cast<size_t>(engine_.bits()) / 8;
    std::vector<uint8_t> codes;
    std::vector<int32_t> labels;
    for (size_t i = 0; i < tags.size(); ++i) {
      if (tags[i] == I::kNoTag) continue;
      codes.insert(codes.end(), all.begin() + static_cast<long>(i * bytes),
                   all.begin() + static_cast<long>((i + 1) * bytes));
      labels.push_back(tags[i]);
    }
    if (labels.empty()) throw HttpError{400, "the index holds no labelled items to evaluate"};
    const Q::Split split = take(Q::split_per_class(labels, per_class, seed));
    const Q::RetrievalMetrics m2 = take(Q::evaluate_retrieval(codes, engine_.bits(), labels, split));
    return json_response(
        200, {{"map", m2.map},
              {"precision_at_500", m2.precision_at_n},
              {"precision_at_r2", m2.precision_at_r},
              {"empty_r2_share", m2.empty_r_share},
              {"queries", split.queries.size()},
              {"gallery", split.gallery.size()},
              {"labelled_items", labels.size()},
              {"seconds",
               std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count()}});
  }
  if (path == "/v1/health/codes") {
    *route_name = "health_codes";
    require_method({"GET"});
    const I::CodeStore& store = engine_.store();
    const std::vector<uint8_t> sample = store.sample_codes(100000);
    json j = {{"items", store.info().items}, {"bits", engine_.bits()}};
    if (!sample.empty()) {
      const Q::CodeHealth h = take(Q::code_health(sample, engine_.bits()));
      j["sampled_items"] = h.rows;
      j["bit_balance"] = h.balance;
      j["bit_entropy"] = h.entropy;
      j["mean_bit_entropy"] = h.mean_entropy;
      j["min_bit_entropy"] = h.min_entropy;
      j["mean_pairwise_mi"] = h.mean_pair_mi;
      j["max_pairwise_mi"] = {{"bits", {h.max_pair_a, h.max_pair_b}}, {"mi", h.max_pair_mi}};
      j["distance_histogram"] = store.distance_histogram(50, 1);
      j["bucket_occupancy"] = store.occupancy_histograms(16);
    }
    return json_response(200, j);
  }
  *route_name = "unknown";
  throw HttpError{404, "no such endpoint: " + m + " " + path};
}

void Metrics::record(const std::string& route, int status, double seconds) {
  static const double bounds[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                  0.05,   0.1,   0.25,   0.5,   1,    2.5};
  std::lock_guard lock(mutex_);
  ++counts_[{route, status}];
  std::vector<uint64_t>& b = latency_[route];
  if (b.empty()) b.assign(std::size(bounds) + 1, 0);
  for (size_t i = 0; i < std::size(bounds); ++i) {
    if (seconds <= bounds[i]) ++b[i];
  }
  ++b.back();  // +Inf
  latency_sum_[route] += seconds;
}

std::string Metrics::prometheus_text(size_t items, size_t memory_bytes) const {
  static const char* bounds[] = {"0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025",
                                 "0.05",   "0.1",   "0.25",   "0.5",   "1",    "2.5"};
  std::ostringstream o;
  std::lock_guard lock(mutex_);
  o << "# HELP imsat_http_requests_total Requests answered, by route and status.\n"
    << "# TYPE imsat_http_requests_total counter\n";
  for (const auto& [k, n] : counts_) {
    o << "imsat_http_requests_total{route=\"" << k.first << "\",status=\"" << k.second << "\"} "
      << n << "\n";
  }
  o << "# HELP imsat_http_request_duration_seconds Time to answer a request, by route.\n"
    << "# TYPE imsat_http_request_duration_seconds histogram\n";
  for (const auto& [route, b] : latency_) {
    for (size_t i = 0; i + 1 < b.size(); ++i) {
      o << "imsat_http_request_duration_seconds_bucket{route=\"" << route << "\",le=\""
        << bounds[i] << "\"} " << b[i] << "\n";
    }
    o << "imsat_http_request_duration_seconds_bucket{route=\"" << route << "\",le=\"+Inf\"} "
      << b.back() << "\n"
      << "imsat_http_request_duration_seconds_sum{route=\"" << route << "\"} "
      << latency_sum_.at(route) << "\n"
      << "imsat_http_request_duration_seconds_count{route=\"" << route << "\"} " << b.back()
      << "\n";
  }
  o << "# HELP imsat_index_items Live items in the code store.\n"
    << "# TYPE imsat_index_items gauge\nimsat_index_items " << items << "\n"
    << "# HELP imsat_index_memory_bytes Memory of the in-memory codes and buckets.\n"
    << "# TYPE imsat_index_memory_bytes gauge\nimsat_index_memory_bytes " << memory_bytes << "\n";
  return o.str();
}

}  // namespace imsat::http
