// JSON documents shared by the HTTP API and the command line's --json output.
#include "query/json_format.h"

#include <algorithm>
#include <charconv>

namespace imsat::query {
namespace {

using json = nlohmann::json;

json metadata_json(const std::string& metadata) {
  json meta = json::parse(metadata, nullptr, false);
  return meta.is_discarded() ? json(metadata) : meta;
}

}  // namespace

json hit_json(const SearchHit& h, bool reranked) {
  json j = {{"key", h.key}, {"distance", h.distance}};
  if (reranked) j["score"] = h.score;
  if (h.label != index::kNoTag) j["label"] = h.label;
  if (!h.metadata.empty()) j["metadata"] = metadata_json(h.metadata);
  return j;
}

namespace {

// Appends `s` as a JSON string, byte for byte as dump_json writes it: printable ASCII without
// quotes or backslashes is copied; anything else (escapes, UTF-8, invalid UTF-8) goes through
// the JSON library.
void append_string(std::string& out, const std::string& s) {
  const bool plain = std::all_of(
      s.begin(), s.end(), [](char c) { return c >= 0x20 && c <= 0x7e && c != '"' && c != '\\'; });
  if (!plain) {
    out += dump_json(json(s));
    return;
  }
  out += '"';
  out += s;
  out += '"';
}

template <typename Int>
void append_int(std::string& out, Int v) {
  char buf[24];
  const auto end = std::to_chars(buf, buf + sizeof buf, v).ptr;
  out.append(buf, end);
}

}  // namespace

std::string search_json_text(const SearchResponse& r, const SearchRequest& req, bool explain) {
  // Keys in the order nlohmann's sorted objects print them.
  const bool reranked = req.rerank != Rerank::kNone;
  std::string out;
  out.reserve(64 + r.hits.size() * (48 + (r.hits.empty() ? 0 : r.hits[0].key.size())));
  out += "{\"code\":";
  append_string(out, r.query_code);
  if (explain) {
    // Rare (a debugging aid): the library writes this part.
    const json full = search_json(r, req, true);
    out += ",\"explain\":";
    out += dump_json(full.at("explain"));
  }
  out += ",\"hits\":[";
  for (size_t i = 0; i < r.hits.size(); ++i) {
    const SearchHit& h = r.hits[i];
    if (i > 0) out += ',';
    out += "{\"distance\":";
    append_int(out, h.distance);
    out += ",\"key\":";
    append_string(out, h.key);
    if (h.label != index::kNoTag) {
      out += ",\"label\":";
      append_int(out, h.label);
    }
    if (!h.metadata.empty()) {
      out += ",\"metadata\":";
      // Valid JSON is embedded as stored (the writers store it compact with sorted keys, as the
      // DOM would print it), without building a DOM; anything else becomes a string.
      if (json::accept(h.metadata)) {
        out += h.metadata;
      } else {
        out += dump_json(json(h.metadata));
      }
    }
    if (reranked) {
      out += ",\"score\":";
      out += dump_json(json(h.score));
    }
    out += '}';
  }
  out += ']';
  if (r.truncated) out += ",\"truncated\":true";
  out += '}';
  return out;
}

json selection_json(const index::Selection& s) {
  json j = {{"matches", s.count}, {"indexed", s.indexed}, {"unindexed", s.unindexed}};
  if (!s.unindexed.empty()) {
    j["metadata_read"] = s.metadata_read;
    j["note"] =
        "fields without an index were evaluated on the metadata of every candidate the other "
        "conditions left (slower; PUT /v1/collections/{name}/index/{field} indexes a field)";
  }
  return j;
}

json search_json(const SearchResponse& r, const SearchRequest& req, bool explain) {
  json hits = json::array();
  const bool reranked = req.rerank != Rerank::kNone;
  for (const SearchHit& h : r.hits) hits.push_back(hit_json(h, reranked));
  json out = {{"code", r.query_code}, {"hits", hits}};
  if (r.truncated) out["truncated"] = true;
  if (explain) {
    out["explain"] = {{"buckets_probed", r.stats.buckets_probed},
                      {"candidates_verified", r.stats.candidates_verified},
                      {"candidates_reranked", r.candidates_reranked},
                      {"shortlisted_from", r.shortlisted_from},
                      {"candidates_without_vector", r.candidates_without_vector},
                      {"rerank", rerank_name(req.rerank)},
                      {"multi_index", req.use_multi_index}};
    if (r.selection != nullptr) out["explain"]["filter"] = selection_json(*r.selection);
  }
  return out;
}

json item_json(const StoredItem& item) {
  json j = {{"key", item.key}, {"code", item.code_hex}, {"has_vector", !item.vector.empty()}};
  if (item.label) j["label"] = *item.label;
  if (!item.metadata.empty()) j["metadata"] = metadata_json(item.metadata);
  return j;
}

json scroll_json(const ScrollPage& page) {
  json items = json::array();
  for (const StoredItem& item : page.items) items.push_back(item_json(item));
  return {{"items", items},
          {"next_cursor", page.next_cursor.empty() ? json(nullptr) : json(page.next_cursor)}};
}

json evaluation_json(const StoreEvaluation& e, const EvaluateRequest& request) {
  const std::string p_at = "precision_at_" + std::to_string(request.options.precision_at);
  const std::string p_r = "precision_at_r" + std::to_string(request.options.radius);
  const std::string empty_r = "empty_r" + std::to_string(request.options.radius) + "_share";
  return {{"map", e.metrics.map},
          {p_at, e.metrics.precision_at_n},
          {p_r, e.metrics.precision_at_r},
          {empty_r, e.metrics.empty_r_share},
          {"precision_at", request.options.precision_at},
          {"radius", request.options.radius},
          {"queries_per_class", request.queries_per_class},
          {"seed", request.seed},
          {"queries", e.queries},
          {"gallery", e.gallery},
          {"labelled_items", e.labelled_items},
          {"seconds", e.seconds}};
}

json health_json(const StoreHealth& s) {
  json j = {{"items", s.items}, {"bits", s.bits}};
  const CodeHealth& h = s.health;
  if (h.rows == 0) return j;
  j["sampled_items"] = h.rows;
  j["bit_balance"] = h.balance;
  j["bit_entropy"] = h.entropy;
  j["mean_bit_entropy"] = h.mean_entropy;
  j["min_bit_entropy"] = h.min_entropy;
  j["mean_pairwise_mi"] = h.mean_pair_mi;
  j["max_pairwise_mi"] = {{"bits", {h.max_pair_a, h.max_pair_b}}, {"mi", h.max_pair_mi}};
  j["distance_histogram"] = s.distance_histogram;
  j["bucket_occupancy"] = s.bucket_occupancy;
  return j;
}

json store_info_json(const index::StoreInfo& info) {
  return {{"bits", info.bits},
          {"items", info.items},
          {"multi_index_tables", info.tables},
          {"store_format_version", info.format_version},
          {"memory_bytes", info.memory_bytes},
          {"opened_from", info.open_source},
          {"store_model_fingerprint", info.model_fingerprint},
          {"metric", info.metric.empty() ? "l2" : info.metric},
          {"writable", info.writable},
          {"not_writable", info.writable ? json() : json(info.not_writable)}};
}

json error_json(const std::string& message, const std::string& code) {
  json j = {{"error", message}};
  if (!code.empty()) j["code"] = code;
  return j;
}

std::string dump_json(const json& j, int indent) {
  return j.dump(indent, ' ', false, json::error_handler_t::replace);
}

}  // namespace imsat::query
