// Items: POST /v1/items (add, JSON array or NDJSON), GET /v1/items (scroll),
// GET and DELETE /v1/items/{key}, GET /v1/items/{key}/image.
#include <sstream>

#include "http/http_internal.h"
#include "query/codes_file.h"
#include "query/json_format.h"

namespace imsat::http::internal {
namespace {

std::vector<json> item_documents(const Call& call) {
  const std::string ct = call.header("content-type");
  std::vector<json> docs;
  if (ct.find("application/x-ndjson") != std::string::npos) {
    std::stringstream in(call.request.body);
    std::string line;
    size_t number = 0;
    while (std::getline(in, line)) {
      ++number;
      if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
      try {
        docs.push_back(parse_json(line, call.limits.max_json_depth));
      } catch (const HttpError& e) {
        throw HttpError{400, "line " + std::to_string(number) + ": " + e.message};
      }
    }
  } else if (ct.find("application/json") != std::string::npos) {
    json body = call.json_body();
    if (body.is_object()) {
      check_fields(body, {"items"});
      if (body.contains("items")) body = body["items"];
    }
    if (!body.is_array()) {
      throw HttpError{400, "expected a JSON array of items (or {\"items\": [...]})"};
    }
    for (json& d : body) docs.push_back(std::move(d));
  } else {
    throw HttpError{415,
                    "expected Content-Type application/json, application/x-ndjson, image/* or "
                    "multipart/form-data"};
  }
  if (docs.empty()) throw HttpError{400, "no items given"};
  if (docs.size() > call.limits.max_batch) {
    throw HttpError{400, std::to_string(docs.size()) + " items in one request; the limit is " +
                             std::to_string(call.limits.max_batch)};
  }
  return docs;
}

query::NewItem new_item(const Call& call, const json& d) {
  if (!d.is_object()) throw HttpError{400, "not a JSON object"};
  check_fields(d, {"key", "vector", "code", "label", "metadata"}, "the item");
  if (!d.contains("key") || !d["key"].is_string() || d["key"].get<std::string>().empty()) {
    throw HttpError{400, "needs a non-empty string 'key'"};
  }
  query::NewItem item;
  item.key = d["key"].get<std::string>();
  if (d.contains("vector") == d.contains("code")) {
    throw HttpError{400, "give exactly one of 'vector' or 'code'"};
  }
  if (d.contains("vector")) {
    const size_t dim = call.engine->input_dim();
    if (dim == 0) throw HttpError{400, "adding vectors needs a model"};
    item.vector = get_vector(d["vector"], dim);
  } else {
    if (!d["code"].is_string()) throw HttpError{400, "'code' must be a hex string"};
    item.code = take(query::parse_hex_code(d["code"].get<std::string>(), call.engine->bits()));
  }
  if (d.contains("label")) item.label = get_label(d["label"], "label");
  if (d.contains("metadata")) item.metadata = d["metadata"].dump();
  return item;
}

// Optional label and metadata given as text (a query-string value or a form field).
void apply_text_fields(const std::string& label, const std::string& metadata,
                       query::NewItem* item) {
  if (!label.empty()) {
    item->label = get_label(parse_json(label, 2), "label");
  }
  if (!metadata.empty()) {
    json m;
    try {
      m = parse_json(metadata, 16);
    } catch (const HttpError& e) {
      throw HttpError{400, "'metadata' is not JSON: " + e.message};
    }
    item->metadata = m.dump();
  }
}

// Image uploads: a raw image body (key, label, metadata in the query string), or a
// multipart/form-data body with one or more files and optional key/label/metadata fields (one
// value for every file, or one per file in order; keys default to the file names).
std::vector<query::NewItem> image_items(Call& call) {
  const std::string ct = call.header("content-type");
  std::vector<query::NewItem> items;
  if (ct.rfind("image/", 0) == 0) {
    if (!call.params.count("key") || call.params["key"].empty()) {
      throw HttpError{400, "an image body needs its key in the query string (?key=...)"};
    }
    query::NewItem item;
    item.key = call.params["key"];
    item.image = call.request.body;
    apply_text_fields(call.params.count("label") ? call.params["label"] : "",
                      call.params.count("metadata") ? call.params["metadata"] : "", &item);
    items.push_back(std::move(item));
    return items;
  }
  const std::vector<FormPart> parts = parse_multipart(ct, call.request.body);
  std::vector<const FormPart*> files;
  std::map<std::string, std::vector<std::string>> fields;
  for (const FormPart& p : parts) {
    if (!p.filename.empty() || p.content_type.rfind("image/", 0) == 0) {
      files.push_back(&p);
    } else if (p.name == "key" || p.name == "label" || p.name == "metadata") {
      fields[p.name].push_back(p.body);
    } else {
      throw HttpError{400, "unknown form field '" + p.name + "' (key, label, metadata, files)"};
    }
  }
  if (files.empty()) throw HttpError{400, "the form holds no image file"};
  if (files.size() > call.limits.max_batch) {
    throw HttpError{400, std::to_string(files.size()) + " files in one request; the limit is " +
                             std::to_string(call.limits.max_batch)};
  }
  auto value = [&](const std::string& name, size_t i) -> std::string {
    const auto it = fields.find(name);
    if (it == fields.end()) return "";
    if (it->second.size() == 1 && name != "key") return it->second[0];
    if (it->second.size() != files.size()) {
      throw HttpError{400, std::to_string(it->second.size()) + " '" + name + "' fields for " +
                               std::to_string(files.size()) + " files (give one per file" +
                               (name == "key" ? ")" : ", or one for all)")};
    }
    return it->second[i];
  };
  for (size_t i = 0; i < files.size(); ++i) {
    query::NewItem item;
    item.key = value("key", i);
    if (item.key.empty()) item.key = files[i]->filename;
    if (item.key.empty()) throw HttpError{400, "file " + std::to_string(i) + " has no key or name"};
    item.image = files[i]->body;
    try {
      apply_text_fields(value("label", i), value("metadata", i), &item);
    } catch (const HttpError& e) {
      throw HttpError{e.status, "file " + std::to_string(i) + ": " + e.message};
    }
    items.push_back(std::move(item));
  }
  return items;
}

}  // namespace

Response handle_items_add(Call& call) {
  const std::string ct = call.header("content-type");
  if (ct.rfind("image/", 0) == 0 || ct.rfind("multipart/form-data", 0) == 0) {
    std::vector<query::NewItem> items = image_items(call);
    const size_t added = items.size();
    // Decoded, checked and encoded before anything is written: a bad file rejects the request.
    const size_t total =
        take(call.engine->add_items(std::move(items), call.limits.max_image_pixels));
    return json_response(200, {{"added", added}, {"items", total}});
  }
  const std::vector<json> docs = item_documents(call);
  // Everything is parsed and validated before anything is written: a bad item rejects the whole
  // request unchanged.
  std::vector<query::NewItem> items;
  items.reserve(docs.size());
  for (size_t i = 0; i < docs.size(); ++i) {
    try {
      items.push_back(new_item(call, docs[i]));
    } catch (const HttpError& e) {
      throw HttpError{e.status, "item " + std::to_string(i) + ": " + e.message};
    }
  }
  const size_t added = items.size();
  const size_t total = take(call.engine->add_items(std::move(items)));  // durable when we answer
  return json_response(200, {{"added", added}, {"items", total}});
}

Response handle_items_scroll(Call& call) {
  size_t limit = 100;
  if (call.params.count("limit")) {
    const json v = json::parse(call.params["limit"], nullptr, false);
    limit = get_size(json{{"limit", v}}, "limit", 100, query::kMaxScroll);
  }
  const std::string cursor = call.params.count("cursor") ? call.params["cursor"] : "";
  return json_response(200, query::scroll_json(take(call.engine->scroll(cursor, limit))));
}

namespace {

// The optional JSON body of scroll, count and delete ({} when empty).
json optional_body(const Call& call) {
  if (call.request.body.empty()) return json::object();
  call.require_json_content();
  json body = call.json_body();
  if (!body.is_object()) throw HttpError{400, "the body must be a JSON object"};
  return body;
}

query::Filter optional_filter(const json& body, const Limits& limits) {
  if (!body.contains("filter") || body["filter"].is_null()) return query::Filter();
  return parse_filter(body["filter"], limits.max_filter_terms);
}

}  // namespace

bool filter_is_heavy(const Request& request, const Limits& limits) {
  return request.body.size() > limits.heavy_body_bytes &&
         request.body.find("\"filter\"") != std::string::npos;
}

bool scroll_is_heavy(const Request& request, const Limits& limits) {
  if (filter_is_heavy(request, limits)) return true;
  // The page size: from the query string (GET) or a small body (POST), read cheaply; anything
  // unreadable is left to the handler's 400.
  std::string limit;
  const size_t q = request.target.find('?');
  if (q != std::string::npos) {
    for (const auto& [name, value] : parse_query_string(request.target.substr(q + 1))) {
      if (name == "limit") limit = value;
    }
  }
  if (limit.empty() && !request.body.empty() && request.body.size() <= limits.heavy_body_bytes) {
    const json body = json::parse(request.body, nullptr, false);
    if (body.is_object() && body.contains("limit") && body["limit"].is_number_unsigned()) {
      return body["limit"].get<uint64_t>() > limits.heavy_scroll_items;
    }
  }
  const unsigned long long n = std::strtoull(limit.c_str(), nullptr, 10);
  return n > limits.heavy_scroll_items;
}

Response handle_items_scroll_post(Call& call) {
  const json body = optional_body(call);
  check_fields(body, {"filter", "limit", "offset", "cursor"});
  const size_t limit = get_size(body, "limit", 100, query::kMaxScroll);
  if (limit == 0) throw HttpError{400, "'limit' must be at least 1"};
  std::string cursor;
  for (const char* name : {"offset", "cursor"}) {
    if (!body.contains(name) || body[name].is_null()) continue;
    if (body[name].is_string()) {
      cursor = body[name].get<std::string>();
    } else if (body[name].is_number_unsigned()) {
      cursor = std::to_string(body[name].get<uint64_t>());
    } else {
      throw HttpError{400, std::string("'") + name + "' must be the 'next_offset' of a page"};
    }
  }
  const auto filter = optional_filter(body, call.limits);
  query::ScrollPage page = take(call.engine->scroll(cursor, limit, &filter));
  json out = query::scroll_json(page);
  out["next_offset"] = out["next_cursor"];
  return json_response(200, out);
}

Response handle_items_count(Call& call) {
  const json body = optional_body(call);
  check_fields(body, {"filter"});
  const auto filter = optional_filter(body, call.limits);
  return json_response(200, {{"count", take(call.engine->count(&filter))}});
}

Response handle_items_delete(Call& call) {
  call.require_json_content();
  const json body = call.json_body();
  if (!body.is_object()) throw HttpError{400, "the body must be a JSON object"};
  check_fields(body, {"keys", "filter", "with_keys"});
  const bool with_keys =
      body.contains("with_keys") && body["with_keys"].is_boolean() && body["with_keys"].get<bool>();
  if (body.contains("with_keys") && !body["with_keys"].is_boolean()) {
    throw HttpError{400, "'with_keys' must be true or false"};
  }
  if (body.contains("keys") == body.contains("filter")) {
    throw HttpError{400, "give exactly one of 'keys' or 'filter'"};
  }
  if (body.contains("filter")) {
    const auto filter = optional_filter(body, call.limits);
    if (filter.empty()) {
      throw HttpError{400, "an empty filter would delete every item; give at least one condition",
                      "invalid_filter"};
    }
    return json_response(200,
                         {{"deleted", take(call.engine->erase_where(filter))}, {"not_found", 0}});
  }
  const json& keys = body["keys"];
  if (!keys.is_array() || keys.empty()) {
    throw HttpError{400, "'keys' must be a non-empty array of strings"};
  }
  if (keys.size() > call.limits.max_batch) {
    throw HttpError{400, std::to_string(keys.size()) + " keys in one request; the limit is " +
                             std::to_string(call.limits.max_batch)};
  }
  std::vector<std::string> list;
  for (const json& k : keys) {
    if (!k.is_string() || k.get<std::string>().empty()) {
      throw HttpError{400, "'keys' must be a non-empty array of non-empty strings"};
    }
    list.push_back(k.get<std::string>());
  }
  std::vector<std::string> missing;
  const size_t deleted = take(call.engine->erase_present(list, &missing));
  json out = {{"deleted", deleted}, {"not_found", missing.size()}};
  if (with_keys) out["not_found_keys"] = missing;
  return json_response(200, out);
}

Response handle_item_get(Call& call) {
  return json_response(200, query::item_json(take(call.engine->get_item(call.captures[0]))));
}

Response handle_item_delete(Call& call) {
  check(call.engine->erase_items({call.captures[0]}));
  return json_response(200, {{"deleted", 1}, {"not_found", 0}, {"key", call.captures[0]}});
}

Response handle_item_image(Call& call) {
  query::QueryEngine::Picture picture = take(call.engine->item_image(call.captures[0]));
  Response r;
  r.content_type = picture.content_type;
  r.body = std::move(picture.bytes);
  return r;
}

}  // namespace imsat::http::internal
