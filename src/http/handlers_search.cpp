// POST /v1/search (by vector, code or key; one query or a batch) and POST /v1/search/image.
#include <algorithm>

#include "http/http_internal.h"
#include "query/codes_file.h"
#include "query/json_format.h"

namespace imsat::http::internal {
namespace {

// One query of a search body, checked: a vector (the model's input), a code or a stored item's
// key, exactly one of them.
struct Query {
  std::vector<float> vector;  // non-empty for a search by vector
  std::vector<uint8_t> code;  // non-empty for a search by code
  std::string key;            // a search by key otherwise
};

// `fast_vector`: the query's "vector", already read by take_vector_array (its place in `q`
// holds an empty array).
Query parse_query(Call& call, const json& q, bool in_batch,
                  const std::vector<double>* fast_vector = nullptr) {
  if (!q.is_object()) throw HttpError{400, "each query must be a JSON object"};
  if (in_batch) check_fields(q, {"vector", "code", "key"}, "a query of 'queries'");
  const int given = q.contains("vector") + q.contains("code") + q.contains("key");
  if (given != 1) throw HttpError{400, "give exactly one of 'vector', 'code' or 'key' per query"};
  Query out;
  if (q.contains("vector")) {
    const size_t dim = call.engine->input_dim();
    if (dim == 0) throw HttpError{400, "searching by vector needs a model"};
    out.vector =
        fast_vector != nullptr ? check_vector(*fast_vector, dim) : get_vector(q["vector"], dim);
  } else if (q.contains("code")) {
    if (!q["code"].is_string()) throw HttpError{400, "'code' must be a hex string"};
    out.code = take(query::parse_hex_code(q["code"].get<std::string>(), call.engine->bits()));
  } else {
    if (!q["key"].is_string()) throw HttpError{400, "'key' must be a string"};
    out.key = q["key"].get<std::string>();
  }
  return out;
}

query::SearchResponse one_query(Call& call, const json& q, const query::SearchRequest& sr,
                                bool in_batch, const std::vector<double>* fast_vector = nullptr) {
  const Query query = parse_query(call, q, in_batch, fast_vector);
  query::QueryEngine& engine = *call.engine;
  if (!query.vector.empty()) {
    return take(engine.search_vector(query.vector.data(), query.vector.size(), sr));
  }
  if (!query.code.empty()) return take(engine.search_code(query.code, sr));
  return take(engine.search_key(query.key, sr));
}

// A 200 whose body is already JSON text.
Response text_response(std::string body) {
  Response r;
  r.body = std::move(body);
  return r;
}

// The queries of a plain kNN batch as codes, searched together; the same answers and errors as
// one_query on each.
std::vector<std::string> batch_knn(Call& call, const json& qs, const query::SearchRequest& sr,
                                   bool explain) {
  query::QueryEngine& engine = *call.engine;
  std::vector<std::vector<uint8_t>> codes(qs.size());
  std::vector<float> vectors;
  std::vector<size_t> by_vector;
  for (size_t i = 0; i < qs.size(); ++i) {
    Query query = parse_query(call, qs[i], /*in_batch=*/true);
    if (!query.vector.empty()) {
      vectors.insert(vectors.end(), query.vector.begin(), query.vector.end());
      by_vector.push_back(i);
    } else if (!query.code.empty()) {
      codes[i] = std::move(query.code);
    } else {
      codes[i] =
          take(query::parse_hex_code(take(engine.get_item(query.key)).code_hex, engine.bits()));
    }
  }
  if (!by_vector.empty()) {
    const std::vector<uint8_t> packed =
        take(engine.encode(vectors.data(), by_vector.size(), engine.input_dim()));
    const size_t bytes = static_cast<size_t>(engine.bits()) / 8;
    for (size_t j = 0; j < by_vector.size(); ++j) {
      codes[by_vector[j]].assign(packed.begin() + static_cast<std::ptrdiff_t>(j * bytes),
                                 packed.begin() + static_cast<std::ptrdiff_t>((j + 1) * bytes));
    }
  }
  std::vector<std::string> out;
  out.reserve(qs.size());
  for (const query::SearchResponse& r : take(engine.search_codes(codes, sr))) {
    out.push_back(query::search_json_text(r, sr, explain));
  }
  return out;
}

size_t param_size(const Call& call, const char* name, size_t fallback) {
  auto it = call.params.find(name);
  if (it == call.params.end()) return fallback;
  size_t used = 0;
  unsigned long long v = 0;
  try {
    v = std::stoull(it->second, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used == 0 || used != it->second.size() || it->second[0] == '-') {
    throw HttpError{400, std::string("'") + name + "' must be a non-negative integer"};
  }
  return static_cast<size_t>(v);
}

}  // namespace

bool search_is_heavy(const Request& request, const Limits& limits) {
  if (filter_is_heavy(request, limits)) return true;
  // One query (no 'queries' batch) asks for at most max_k (kNN) or max_hits (radius) results, as
  // the handler enforces: when that cannot exceed heavy_results the body is not parsed here (a
  // search by vector's body is mostly numbers, and parsing it twice cost as much as the model).
  if (request.body.find("\"queries\"") == std::string::npos &&
      std::min(std::max(limits.max_k, limits.max_hits), limits.max_results) <=
          limits.heavy_results) {
    return false;
  }
  json body;
  try {
    body = parse_json(request.body, limits.max_json_depth);
  } catch (const std::exception&) {
    return false;
  } catch (const HttpError&) {
    return false;
  }
  if (!body.is_object()) return false;
  const auto number = [&](const char* name, size_t fallback) -> size_t {
    const auto it = body.find(name);
    return it != body.end() && it->is_number_unsigned() ? it->get<size_t>() : fallback;
  };
  const auto qs = body.find("queries");
  const size_t queries = qs != body.end() && qs->is_array() ? qs->size() : 1;
  const size_t per_query = body.contains("radius")
                               ? number("limit", std::min(kDefaultRadiusLimit, limits.max_hits))
                               : number("k", number("limit", 10));
  return queries * std::min(per_query, limits.max_results) > limits.heavy_results;
}

bool search_encodes(const Request& request) {
  // A cheap look at the body (no JSON parse): a search naming a vector runs the model. A key or
  // code search that happens to contain the word only runs on another thread, with the same result.
  return request.body.find("\"vector\"") != std::string::npos;
}

bool always_encodes(const Request&) { return true; }

Response handle_search(Call& call) {
  call.require_json_content();
  // A search by vector is mostly numbers: its top-level vector is read straight into doubles
  // (take_vector_array), and only the rest of the body goes through the JSON DOM.
  std::vector<double> fast;
  std::string rest;
  const bool have_fast = take_vector_array(call.request.body, &fast, &rest);
  const json body = have_fast ? parse_json(rest, call.limits.max_json_depth) : call.json_body();
  if (!body.is_object()) throw HttpError{400, "the body must be a JSON object"};
  check_fields(body, {"vector", "code", "key", "queries", "k", "limit", "radius", "candidates",
                      "shortlist", "rerank", "filter", "scan", "explain"});
  const query::SearchRequest sr = parse_search_options(body, call.limits);
  const bool explain = body.value("explain", false) || call.params.count("explain") > 0;
  const size_t dim = call.engine->input_dim();
  if (!body.contains("queries")) {
    check_search_budget(sr, 1, dim, call.limits);
    return text_response(query::search_json_text(
        one_query(call, body, sr, false, have_fast ? &fast : nullptr), sr, explain));
  }
  const json& qs = body["queries"];
  if (!qs.is_array() || qs.empty()) throw HttpError{400, "'queries' must be a non-empty array"};
  if (qs.size() > call.limits.max_batch) {
    throw HttpError{400, "'queries' holds " + std::to_string(qs.size()) +
                             " queries; the limit is " + std::to_string(call.limits.max_batch)};
  }
  check_search_budget(sr, qs.size(), dim, call.limits);
  std::vector<std::string> results;
  if (body.contains("vector") || body.contains("code") || body.contains("key")) {
    throw HttpError{400, "give 'queries' or one query ('vector', 'code' or 'key'), not both"};
  }
  if (sr.rerank == query::Rerank::kNone && sr.radius < 0 && sr.filter.empty()) {
    // Plain kNN: every query becomes a code first (the vectors in one model call), then all are
    // searched together (QueryEngine::search_codes).
    results = batch_knn(call, qs, sr, explain);
  } else {
    for (const json& q : qs) {
      results.push_back(query::search_json_text(one_query(call, q, sr, true), sr, explain));
    }
  }
  std::string out = "{\"results\":[";
  for (size_t i = 0; i < results.size(); ++i) {
    if (i > 0) out += ',';
    out += results[i];
  }
  out += "]}";
  return text_response(std::move(out));
}

namespace {

// The uploaded image of a search: the body itself (an image Content-Type), or the one file of a
// multipart/form-data form whose other fields are the query parameters (k, filter, ...; the same
// name in the query string and the form is a 400).
std::string search_image_bytes(Call& call) {
  const std::string ct = call.header("content-type");
  if (ct.rfind("image/", 0) == 0) return call.request.body;
  if (ct.rfind("multipart/form-data", 0) != 0) {
    throw HttpError{415,
                    "expected an image Content-Type (image/png or image/jpeg) or "
                    "multipart/form-data, got '" +
                        ct + "'"};
  }
  std::vector<FormPart> parts = parse_multipart(ct, call.request.body);
  std::string image;
  bool found = false;
  for (FormPart& p : parts) {
    if (!p.filename.empty() || p.content_type.rfind("image/", 0) == 0) {
      if (found) throw HttpError{400, "the form holds more than one image file"};
      image = std::move(p.body);
      found = true;
    } else if (!call.params.emplace(p.name, p.body).second) {
      throw HttpError{400, "'" + p.name + "' is given both in the query string and the form"};
    }
  }
  if (!found) throw HttpError{400, "the form holds no image file"};
  return image;
}

}  // namespace

Response handle_search_image(Call& call) {
  const std::string image = search_image_bytes(call);
  query::SearchRequest sr;
  sr.k = param_size(call, "k", 10);
  sr.candidates = param_size(call, "candidates", 0);
  sr.shortlist = param_size(call, "shortlist", 0);
  if (sr.k == 0 || sr.k > call.limits.max_k) {
    throw HttpError{400, "'k' must be from 1 to " + std::to_string(call.limits.max_k)};
  }
  if (call.params.count("rerank")) sr.rerank = take(query::parse_rerank(call.params["rerank"]));
  for (const auto& [name, value] : call.params) {
    static const char* const known[] = {"k",     "limit",  "candidates", "shortlist", "rerank",
                                        "label", "filter", "invert",     "explain"};
    if (std::find(std::begin(known), std::end(known), name) == std::end(known)) {
      throw HttpError{400, "unknown parameter '" + name + "'", "unknown_field"};
    }
  }
  if (call.params.count("limit") && !call.params.count("k")) {
    sr.k = param_size(call, "limit", 10);
  }
  if (call.params.count("filter")) {
    const json filter = json::parse(call.params["filter"], nullptr, false);
    if (filter.is_discarded()) throw HttpError{400, "'filter' is not JSON", "invalid_filter"};
    sr.filter = parse_filter(filter, call.limits.max_filter_terms);
  }
  if (call.params.count("label")) {
    const json label = json::parse(call.params["label"], nullptr, false);
    if (label.is_discarded()) throw HttpError{400, "'label' must be an integer"};
    sr.filter = take(sr.filter.with_label(get_label(label, "label")));
  }
  const bool invert = call.params.count("invert") && call.params["invert"] != "0";
  const size_t dim = call.engine->input_dim();
  check_search_budget(sr, 1, dim, call.limits);
  return text_response(query::search_json_text(
      take(call.engine->search_image(image, sr, invert, call.limits.max_image_pixels)), sr,
      call.params.count("explain") > 0));
}

}  // namespace imsat::http::internal
