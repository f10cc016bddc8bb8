// The search response written straight into text is the same document, byte for byte, as the
// JSON DOM that search_json builds, whatever the hits hold.
#include "query/json_format.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>

namespace {

namespace Q = imsat::query;

Q::SearchHit hit(std::string key, uint32_t distance) {
  Q::SearchHit h;
  h.key = std::move(key);
  h.distance = distance;
  h.score = distance;
  return h;
}

void expect_same(const Q::SearchResponse& r, const Q::SearchRequest& req, bool explain) {
  const std::string dom = Q::dump_json(Q::search_json(r, req, explain));
  const std::string text = Q::search_json_text(r, req, explain);
  EXPECT_EQ(text, dom);
  // And it is valid JSON (invalid UTF-8 in keys was replaced).
  EXPECT_EQ(Q::dump_json(nlohmann::json::parse(dom)), dom);
}

TEST(SearchJsonText, EqualsTheDomForPlainHits) {
  Q::SearchResponse r;
  r.query_code = "00ff00ff00ff00ff";
  Q::SearchRequest req;
  expect_same(r, req, false);  // no hits
  r.hits.push_back(hit("item-1", 0));
  r.hits.push_back(hit("item-22", 4294967295u));
  r.hits.back().label = -7;
  r.hits.push_back(hit("", 3));
  r.hits.back().label = 2147483647;
  expect_same(r, req, false);
  r.truncated = true;
  expect_same(r, req, false);
}

TEST(SearchJsonText, EscapesKeysAndEmbedsMetadataAsTheDomDoes) {
  Q::SearchResponse r;
  r.query_code = "0a";
  r.hits.push_back(hit("quote\" and \\ backslash", 1));
  r.hits.push_back(hit("tab\tnewline\ncontrol\x01", 2));
  r.hits.push_back(hit("caf\xc3\xa9 \xe6\x97\xa5", 3));  // UTF-8
  r.hits.push_back(hit("bad \xff\xfe utf-8", 4));        // replaced, not thrown
  r.hits.push_back(hit("meta", 5));
  r.hits.back().metadata = R"({"a":{"y":true,"z":null},"b":[1,2.5,"x"]})";  // as stored
  r.hits.push_back(hit("not json", 6));
  r.hits.back().metadata = "plain text {";
  r.hits.push_back(hit("bad utf-8 in metadata", 7));
  r.hits.back().metadata = "{\"s\":\"\xff\"}";  // not JSON: a (repaired) string
  r.hits.push_back(hit("number", 8));
  r.hits.back().metadata = "12";
  Q::SearchRequest req;
  expect_same(r, req, false);
}

TEST(SearchJsonText, OtherValidJsonMetadataIsEmbeddedAsTheSameValue) {
  Q::SearchResponse r;
  r.query_code = "0a";
  r.hits.push_back(hit("spaced", 1));
  r.hits.back().metadata = R"({"b": [1, 2.5, "x"], "a": {"z": null, "y": true}})";
  r.hits.push_back(hit("float", 2));
  r.hits.back().metadata = R"({"f": 0.1, "e": 1e-30})";
  const Q::SearchRequest req;
  const std::string text = Q::search_json_text(r, req, false);
  EXPECT_NE(text.find(r.hits[0].metadata), std::string::npos) << text;
  EXPECT_EQ(nlohmann::json::parse(text), Q::search_json(r, req, false));
}

TEST(SearchJsonText, RerankScoresAndExplainMatchTheDom) {
  Q::SearchResponse r;
  r.query_code = "ffff";
  r.hits.push_back(hit("a", 1));
  r.hits.back().score = 0.1;
  r.hits.push_back(hit("b", 2));
  r.hits.back().score = 1.0 / 3.0;
  r.hits.push_back(hit("c", 9));
  r.hits.back().score = 1e-300;
  r.stats.buckets_probed = 12;
  r.stats.candidates_verified = 345;
  r.candidates_reranked = 3;
  Q::SearchRequest req;
  req.rerank = Q::Rerank::kAsymmetric;
  expect_same(r, req, false);
  expect_same(r, req, true);
  auto selection = std::make_shared<imsat::index::Selection>();
  selection->count = 40;
  r.selection = selection;
  expect_same(r, req, true);
}

}  // namespace
