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
    if (body.is_object() && body.contains("items")) body = body["items"];
    if (!body.is_array()) {
      throw HttpError{400, "expected a JSON array of items (or {\"items\": [...]})"};
    }
    for (json& d : body) docs.push_back(std::move(d));
  } else {
    throw HttpError{415, "expected Content-Type application/json or application/x-ndjson"};
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
  if (!d.contains("key") || !d["key"].is_string() || d["key"].get<std::string>().empty()) {
    throw HttpError{400, "needs a non-empty string 'key'"};
  }
  query::NewItem item;
  item.key = d["key"].get<std::string>();
  if (d.contains("vector") == d.contains("code")) {
    throw HttpError{400, "give exactly one of 'vector' or 'code'"};
  }
  if (d.contains("vector")) {
    const learn::Model* model = call.engine.model();
    if (model == nullptr) throw HttpError{400, "adding vectors needs a model"};
    item.vector = get_vector(d["vector"], model->input_dim());
  } else {
    if (!d["code"].is_string()) throw HttpError{400, "'code' must be a hex string"};
    item.code = take(query::parse_hex_code(d["code"].get<std::string>(), call.engine.bits()));
  }
  if (d.contains("label")) item.label = get_label(d["label"], "label");
  if (d.contains("metadata")) item.metadata = d["metadata"].dump();
  return item;
}

}  // namespace

Response handle_items_add(Call& call) {
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
  const size_t total = take(call.engine.add_items(std::move(items)));  // durable when we answer
  return json_response(200, {{"added", added}, {"items", total}});
}

Response handle_items_scroll(Call& call) {
  size_t limit = 100;
  if (call.params.count("limit")) {
    const json v = json::parse(call.params["limit"], nullptr, false);
    limit = get_size(json{{"limit", v}}, "limit", 100, query::kMaxScroll);
  }
  const std::string cursor = call.params.count("cursor") ? call.params["cursor"] : "";
  return json_response(200, query::scroll_json(take(call.engine.scroll(cursor, limit))));
}

Response handle_item_get(Call& call) {
  return json_response(200, query::item_json(take(call.engine.get_item(call.captures[0]))));
}

Response handle_item_delete(Call& call) {
  check(call.engine.erase_items({call.captures[0]}));
  return json_response(200, {{"deleted", call.captures[0]}});
}

Response handle_item_image(Call& call) {
  Response r;
  r.content_type = "image/png";
  r.body = take(call.engine.item_png(call.captures[0]));
  return r;
}

}  // namespace imsat::http::internal
