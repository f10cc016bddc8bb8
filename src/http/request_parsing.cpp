// Parsing of requests: JSON bodies with a depth limit, query strings, typed fields with clear
// errors, and the search options every search endpoint shares.
#include <algorithm>
#include <charconv>
#include <cmath>
#include <limits>
#include <sstream>

#include "http/http_internal.h"
#include "query/json_format.h"

namespace imsat::http::internal {
namespace {

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

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

const char* error_code_for(int status) {
  switch (status) {
    case 400:
      return "bad_request";
    case 401:
      return "unauthorized";
    case 403:
      return "forbidden";
    case 404:
      return "not_found";
    case 405:
      return "method_not_allowed";
    case 408:
      return "timeout";
    case 413:
      return "too_large";
    case 415:
      return "unsupported_media_type";
    case 431:
      return "headers_too_large";
    case 501:
      return "not_implemented";
    case 503:
      return "busy";
    case 507:
      return "insufficient_storage";
    default:
      return status >= 500 ? "internal" : "error";
  }
}

std::string without_server_paths(const std::string& message, const query::Catalog& catalog) {
  std::vector<std::string> roots;
  if (!catalog.data_dir().empty()) roots.push_back(catalog.data_dir());
  for (const auto& c : catalog.list()) {
    const std::string& store = c->store_path();
    const size_t slash = store.find_last_of('/');
    if (slash != std::string::npos && slash > 0) roots.push_back(store.substr(0, slash));
  }
  std::string out = message;
  for (std::string root : roots) {
    while (root.size() > 1 && root.back() == '/') root.pop_back();
    root += '/';
    for (size_t at = out.find(root); at != std::string::npos; at = out.find(root, at)) {
      out.erase(at, root.size());
    }
  }
  return out;
}

void check(const Status& s) {
  if (s.is_ok()) return;
  switch (s.code()) {
    case Status::Code::kInvalidArgument:
      throw HttpError{400, s.message(), "invalid_argument"};
    case Status::Code::kNotFound:
      throw HttpError{404, s.message(), "not_found"};
    case Status::Code::kAlreadyExists:
      throw HttpError{409, s.message(), "conflict"};
    case Status::Code::kNoSpace:
      throw HttpError{507, s.message(), "insufficient_storage"};
    case Status::Code::kCorruption:
      throw HttpError{500, s.message(), "corruption"};
    case Status::Code::kIOError:
      throw HttpError{500, s.message(), "io_error"};
    default:
      throw HttpError{500, s.message(), "internal"};
  }
}

void check_fields(const json& j, std::initializer_list<const char*> allowed,
                  const std::string& where) {
  if (!j.is_object()) return;
  for (auto it = j.begin(); it != j.end(); ++it) {
    bool known = false;
    for (const char* a : allowed) known = known || it.key() == a;
    if (!known) {
      std::string list;
      for (const char* a : allowed) list += (list.empty() ? "" : ", ") + std::string(a);
      throw HttpError{400,
                      "unknown field '" + it.key() + "' in " + where + " (known: " + list + ")",
                      "unknown_field"};
    }
  }
}

query::Filter parse_filter(const json& j, size_t max_terms) {
  if (!j.is_object()) {
    throw HttpError{400, "'filter' must be a JSON object", "invalid_filter"};
  }
  Result<query::Filter> f = query::Filter::from_json(j, max_terms);
  if (!f.is_ok()) throw HttpError{400, f.status().message(), "invalid_filter"};
  return std::move(f).value();
}

std::shared_ptr<query::Collection> Call::named_collection() const {
  std::shared_ptr<query::Collection> c = catalog.find(collection_name);
  if (c == nullptr) {
    throw HttpError{404, "no collection named '" + collection_name + "'", "unknown_collection"};
  }
  return c;
}

std::string Call::header(const std::string& name) const {
  auto it = request.headers.find(name);
  return it == request.headers.end() ? std::string() : it->second;
}

void Call::require_json_content() const {
  const std::string ct = header("content-type");
  if (ct.find("application/json") == std::string::npos) {
    throw HttpError{415, "expected Content-Type application/json, got '" + ct + "'"};
  }
}

json Call::json_body() const { return parse_json(request.body, limits.max_json_depth); }

Response error_answer(int status, const std::string& message, const std::string& code) {
  Response r = json_response(status, query::error_json(message, code));
  r.error_code = code;
  return r;
}

Response json_response(int status, const json& body) {
  Response r;
  r.status = status;
  // Strings from requests or stored keys may hold invalid UTF-8; replace it instead of throwing.
  r.body = query::dump_json(body);
  return r;
}

json parse_json(const std::string& text, int max_depth) {
  if (json_too_deep(text, max_depth)) {
    throw HttpError{400, "JSON nests deeper than " + std::to_string(max_depth) + " levels"};
  }
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) throw HttpError{400, "malformed JSON body"};
  return j;
}

std::string url_decode(const std::string& s, bool plus_is_space) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && hex_value(s[i + 1]) >= 0 && hex_value(s[i + 2]) >= 0) {
      out.push_back(static_cast<char>(hex_value(s[i + 1]) * 16 + hex_value(s[i + 2])));
      i += 2;
    } else if (plus_is_space && s[i] == '+') {
      out.push_back(' ');
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

namespace {

// The value of `name`="..." (or name=token) in a header's parameters, "" when absent.
std::string header_parameter(const std::string& header, const std::string& name) {
  size_t at = 0;
  while ((at = header.find(name + "=", at)) != std::string::npos) {
    const bool starts =
        at == 0 || header[at - 1] == ';' || header[at - 1] == ' ' || header[at - 1] == '\t';
    at += name.size() + 1;
    if (!starts) continue;
    if (at < header.size() && header[at] == '"') {
      std::string value;
      for (size_t i = at + 1; i < header.size() && header[i] != '"'; ++i) {
        if (header[i] == '\\' && i + 1 < header.size()) ++i;
        value += header[i];
      }
      return value;
    }
    return header.substr(at, header.find(';', at) - at);
  }
  return "";
}

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

}  // namespace

std::vector<FormPart> parse_multipart(const std::string& content_type, const std::string& body) {
  const std::string boundary = header_parameter(content_type, "boundary");
  if (boundary.empty() || boundary.size() > 200) {
    throw HttpError{400, "multipart/form-data without a usable boundary parameter"};
  }
  const std::string delimiter = "--" + boundary;
  size_t at = body.find(delimiter);
  if (at == std::string::npos) throw HttpError{400, "malformed multipart body: no boundary"};
  std::vector<FormPart> parts;
  while (true) {
    at += delimiter.size();
    if (body.compare(at, 2, "--") == 0) break;  // the closing delimiter
    if (body.compare(at, 2, "\r\n") != 0) {
      throw HttpError{400, "malformed multipart body: a boundary is not followed by a line end"};
    }
    at += 2;
    const size_t headers_end = body.find("\r\n\r\n", at);
    if (headers_end == std::string::npos) {
      throw HttpError{400, "malformed multipart body: part " + std::to_string(parts.size()) +
                               " has no end of headers"};
    }
    FormPart part;
    size_t line = at;
    while (line < headers_end) {
      const size_t end = body.find("\r\n", line);
      const std::string h = body.substr(line, end - line);
      line = end + 2;
      const size_t colon = h.find(':');
      if (colon == std::string::npos) continue;
      const std::string name = lower(h.substr(0, colon));
      std::string value = h.substr(colon + 1);
      value.erase(0, value.find_first_not_of(" \t"));
      if (name == "content-disposition") {
        part.name = header_parameter(value, "name");
        part.filename = header_parameter(value, "filename");
      } else if (name == "content-type") {
        part.content_type = lower(value);
      }
    }
    const size_t body_start = headers_end + 4;
    const size_t next = body.find("\r\n" + delimiter, body_start);
    if (next == std::string::npos) {
      throw HttpError{400, "malformed multipart body: part " + std::to_string(parts.size()) +
                               " is not closed by the boundary (truncated?)"};
    }
    part.body = body.substr(body_start, next - body_start);
    parts.push_back(std::move(part));
    at = next + 2;
  }
  return parts;
}

std::map<std::string, std::string> parse_query_string(const std::string& query) {
  std::map<std::string, std::string> params;
  std::stringstream in(query);
  std::string pair;
  while (std::getline(in, pair, '&')) {
    const size_t eq = pair.find('=');
    params[url_decode(pair.substr(0, eq), true)] =
        eq == std::string::npos ? "" : url_decode(pair.substr(eq + 1), true);
  }
  return params;
}

size_t get_size(const json& j, const char* name, size_t fallback, size_t max) {
  if (!j.contains(name)) return fallback;
  const json& v = j.at(name);
  if (!v.is_number_integer() || (!v.is_number_unsigned() && v.get<int64_t>() < 0)) {
    throw HttpError{400, std::string("'") + name + "' must be a non-negative integer"};
  }
  const auto n = v.get<uint64_t>();
  if (n > max) {
    throw HttpError{400, std::string("'") + name + "' is " + std::to_string(n) + "; the limit is " +
                             std::to_string(max)};
  }
  return static_cast<size_t>(n);
}

int32_t get_label(const json& v, const std::string& name) {
  if (!v.is_number_integer()) throw HttpError{400, "'" + name + "' must be an integer"};
  // Unsigned values above INT64_MAX do not fit get<int64_t>: check them first.
  if (v.is_number_unsigned() && v.get<uint64_t>() > uint64_t{std::numeric_limits<int32_t>::max()}) {
    throw HttpError{400, "'" + name + "' is out of range (0 to 2147483647)"};
  }
  const int64_t x = v.get<int64_t>();
  if (x < 0 || x > std::numeric_limits<int32_t>::max()) {
    throw HttpError{400, "'" + name + "' is out of range (0 to 2147483647)"};
  }
  return static_cast<int32_t>(x);
}

std::vector<float> get_vector(const json& v, size_t dim) {
  if (!v.is_array()) throw HttpError{400, "'vector' must be an array of numbers"};
  std::vector<double> values;
  values.reserve(v.size());
  for (size_t i = 0; i < v.size(); ++i) {
    if (!v[i].is_number()) {
      throw HttpError{400, "'vector' value " + std::to_string(i) + " is not a number"};
    }
    values.push_back(v[i].get<double>());
  }
  return check_vector(values, dim);
}

std::vector<float> check_vector(const std::vector<double>& values, size_t dim) {
  if (values.size() != dim) {
    throw HttpError{400, "'vector' has " + std::to_string(values.size()) +
                             " values; the model expects " + std::to_string(dim)};
  }
  std::vector<float> out;
  out.reserve(values.size());
  for (size_t i = 0; i < values.size(); ++i) {
    const double x = values[i];
    if (!std::isfinite(x) || std::fabs(x) > std::numeric_limits<float>::max()) {
      throw HttpError{400, "'vector' value " + std::to_string(i) + " is not a finite float"};
    }
    out.push_back(static_cast<float>(x));
  }
  return out;
}

namespace {

bool is_json_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

size_t skip_space(const std::string& t, size_t i) {
  while (i < t.size() && is_json_space(t[i])) ++i;
  return i;
}

// End of the JSON number starting at i (-?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?), or npos
// when none starts there. `integer` tells whether it had neither fraction nor exponent.
size_t json_number_end(const std::string& t, size_t i, bool* integer) {
  auto digit = [&](size_t k) { return k < t.size() && t[k] >= '0' && t[k] <= '9'; };
  if (i < t.size() && t[i] == '-') ++i;
  if (!digit(i)) return std::string::npos;
  if (t[i] == '0') {
    ++i;
  } else {
    while (digit(i)) ++i;
  }
  *integer = true;
  if (i < t.size() && t[i] == '.') {
    *integer = false;
    if (!digit(++i)) return std::string::npos;
    while (digit(i)) ++i;
  }
  if (i < t.size() && (t[i] == 'e' || t[i] == 'E')) {
    *integer = false;
    ++i;
    if (i < t.size() && (t[i] == '+' || t[i] == '-')) ++i;
    if (!digit(i)) return std::string::npos;
    while (digit(i)) ++i;
  }
  return i;
}

}  // namespace

bool take_vector_array(const std::string& text, std::vector<double>* values, std::string* rest) {
  size_t i = skip_space(text, 0);
  if (i >= text.size() || text[i] != '{') return false;
  int depth = 0;
  while (i < text.size()) {
    const char c = text[i];
    if (c == '"') {
      size_t j = i + 1;
      while (j < text.size() && text[j] != '"') j += text[j] == '\\' ? 2 : 1;
      if (j >= text.size()) return false;
      const bool is_vector_key = depth == 1 && text.compare(i, j + 1 - i, "\"vector\"") == 0;
      i = j + 1;
      if (!is_vector_key) continue;
      size_t k = skip_space(text, i);
      if (k >= text.size() || text[k] != ':') continue;  // a string value, not the key
      k = skip_space(text, k + 1);
      if (k >= text.size() || text[k] != '[') return false;
      const size_t open = k;
      k = skip_space(text, k + 1);
      values->clear();
      while (true) {
        bool integer = false;
        const size_t end = json_number_end(text, k, &integer);
        // Long integers: nlohmann converts those from the integer, not through a double.
        if (end == std::string::npos || (integer && end - k > 15)) return false;
        if (integer) {
          // At most 15 digits: exact in an int64 and in a double, as nlohmann reads it (so
          // "-0" is 0). Pixel values are such integers, and this is several times from_chars.
          const bool negative = text[k] == '-';
          int64_t n = 0;
          for (size_t p = k + (negative ? 1 : 0); p < end; ++p) n = n * 10 + (text[p] - '0');
          values->push_back(static_cast<double>(negative ? -n : n));
        } else {
          double x = 0;
          const auto r = std::from_chars(text.data() + k, text.data() + end, x);
          if (r.ec != std::errc() || r.ptr != text.data() + end) return false;
          values->push_back(x);
        }
        k = skip_space(text, end);
        if (k < text.size() && text[k] == ']') break;
        if (k >= text.size() || text[k] != ',') return false;
        k = skip_space(text, k + 1);
      }
      // A second top-level "vector" (the full parser keeps the last one) is left to it.
      if (text.find("\"vector\"", k) != std::string::npos) return false;
      *rest = text.substr(0, open) + "[]" + text.substr(k + 1);
      return true;
    }
    if (c == '{' || c == '[') ++depth;
    if ((c == '}' || c == ']') && --depth == 0) return false;
    ++i;
  }
  return false;
}

void check_search_budget(const query::SearchRequest& sr, size_t queries, size_t dim,
                         const Limits& limits) {
  const size_t per_query = sr.radius >= 0 ? sr.max_hits : sr.k;
  if (queries * per_query > limits.max_results) {
    throw HttpError{400, std::to_string(queries) + " queries x " + std::to_string(per_query) +
                             (sr.radius >= 0 ? " hits ('limit')" : " neighbours ('k')") +
                             " exceed the budget of " + std::to_string(limits.max_results) +
                             " results per request"};
  }
  if (sr.rerank == query::Rerank::kExact) {
    const size_t candidates = sr.candidates > 0 ? sr.candidates : std::max<size_t>(10 * sr.k, 100);
    const size_t values = queries * std::max(candidates, sr.k) * dim;
    if (values > limits.max_rerank_values) {
      throw HttpError{400, "exact re-ranking of " + std::to_string(queries) + " queries x " +
                               std::to_string(candidates) + " candidates x " + std::to_string(dim) +
                               " values exceeds the budget of " +
                               std::to_string(limits.max_rerank_values) + " values per request"};
    }
  }
}

query::SearchRequest parse_search_options(const json& body, const Limits& limits) {
  query::SearchRequest sr;
  if (body.contains("radius")) {
    if (body.contains("k")) {
      throw HttpError{400,
                      "'k' does not apply to a radius search; cap the hits with 'limit' "
                      "(default " +
                          std::to_string(std::min(kDefaultRadiusLimit, limits.max_hits)) + ")"};
    }
    sr.radius = static_cast<int>(get_size(body, "radius", 0, 1024));
    sr.max_hits =
        get_size(body, "limit", std::min(kDefaultRadiusLimit, limits.max_hits), limits.max_hits);
    if (sr.max_hits == 0) throw HttpError{400, "'limit' must be at least 1"};
  } else {
    // 'limit' is another name for k.
    if (body.contains("k") && body.contains("limit") && body["k"] != body["limit"]) {
      throw HttpError{400, "'k' and 'limit' name the same setting; give one"};
    }
    sr.k = get_size(body, body.contains("k") ? "k" : "limit", 10, limits.max_k);
    if (sr.k == 0) throw HttpError{400, "'k' must be at least 1"};
  }
  sr.candidates = get_size(body, "candidates", 0, 10 * limits.max_k);
  sr.shortlist = get_size(body, "shortlist", 0, 10 * limits.max_k);
  if (body.contains("rerank")) {
    if (!body["rerank"].is_string()) throw HttpError{400, "'rerank' must be a string"};
    sr.rerank = take(query::parse_rerank(body["rerank"].get<std::string>()));
  }
  if (body.contains("filter") && !body["filter"].is_null()) {
    sr.filter = parse_filter(body["filter"], limits.max_filter_terms);
  }
  if (body.contains("scan") && !body["scan"].is_boolean()) {
    throw HttpError{400, "'scan' must be true or false"};
  }
  sr.use_multi_index = !body.value("scan", false);
  return sr;
}

}  // namespace imsat::http::internal
