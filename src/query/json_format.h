// The JSON shapes both front-ends print: search hits and responses, items, evaluations, code
// health, store info and errors. `imsat ... --json` and the HTTP API give the same documents.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "query/engine.h"

namespace imsat::query {

// Metadata is stored as given; valid JSON is embedded as JSON, anything else as a string.
nlohmann::json hit_json(const SearchHit& hit, bool reranked);
// {"code", "hits", ["explain": {buckets_probed, candidates_verified, candidates_reranked, rerank,
// multi_index}]}
nlohmann::json search_json(const SearchResponse& response, const SearchRequest& request,
                           bool explain);
// The document search_json builds, written straight into a string (no JSON DOM for the hits): the
// HTTP search's response body. Byte for byte dump_json(search_json(...)) where stored metadata is
// compact JSON with sorted keys, as the engine's writers store it; other valid JSON metadata is
// embedded as stored (the same value, its own spacing and key order).
std::string search_json_text(const SearchResponse& response, const SearchRequest& request,
                             bool explain);
// How a metadata filter was evaluated: {"matches", "indexed", "unindexed", ["metadata_read"]}
nlohmann::json selection_json(const index::Selection& selection);
// {"key", "code", "has_vector", ["label"], ["metadata"]}
nlohmann::json item_json(const StoredItem& item);
nlohmann::json scroll_json(const ScrollPage& page);
nlohmann::json evaluation_json(const StoreEvaluation& evaluation, const EvaluateRequest& request);
nlohmann::json health_json(const StoreHealth& health);
nlohmann::json store_info_json(const index::StoreInfo& info);
// {"error": message, "code": code} (a stable machine-readable code; omitted when empty)
nlohmann::json error_json(const std::string& message, const std::string& code = "");
// Serialises without throwing: invalid UTF-8 from keys or requests is replaced. indent < 0: one
// line.
std::string dump_json(const nlohmann::json& j, int indent = -1);

}  // namespace imsat::query
