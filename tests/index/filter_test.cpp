// Metadata filters (src/index/metadata_filter.h, CodeStore::select and friends): the parser's
// errors, filtered kNN and radius search against a brute-force evaluation of the same conditions
// over random metadata (indexed and unindexed fields, multi-index and scan), counts, deletes by
// filter, a scroll cursor under concurrent writes, and checkpoints taken during writes.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "index/code_store.h"
#include "index/metadata_filter.h"
#include "support/temp_dir_test.h"

namespace {

using imsat::index::CodeStore;
using imsat::index::Item;
using imsat::index::MetadataFilter;
using imsat::index::StoreOptions;
using json = nlohmann::json;

MetadataFilter parse(const std::string& text) {
  auto f = imsat::index::parse_metadata_filter(text);
  EXPECT_TRUE(f.is_ok()) << text << ": " << f.status().to_string();
  return f.is_ok() ? std::move(f).value() : MetadataFilter{};
}

TEST(MetadataFilterParse, BadShapesAreRefusedNamingWhere) {
  const std::vector<std::pair<std::string, std::string>> bad = {
      {R"({"mustt": []})", "unknown field 'mustt'"},
      {R"({"must": [{"key": "a", "mach": 1}]})", "filter.must[0]: unknown field 'mach'"},
      {R"({"must": [{"key": "a"}]})", "exactly one of"},
      {R"({"must": [{"key": "a", "match": 1, "range": {"gt": 1}}]})", "exactly one of"},
      {R"({"must": [{"match": 1}]})", "non-empty string 'key'"},
      {R"({"must": [{"key": "a", "match": [1]}]})", "filter.must[0].match"},
      {R"({"must": [{"key": "a", "match": {"x": 1}}]})", "filter.must[0].match"},
      {R"({"must": [{"key": "a", "match_any": []}]})", "non-empty array"},
      {R"({"must": [{"key": "a", "range": {"gte": "1"}}]})", "filter.must[0].range.gte"},
      {R"({"must": [{"key": "a", "range": {"from": 1}}]})", "unknown bound"},
      {R"({"must": [{"key": "label", "match": "x"}]})", "a label is an integer"},
      {R"({"must": [{"key": "label", "match": 1.5}]})", "a label is an integer"},
      {R"({"should": [{"has_key": []}]})", "has_key"},
      {R"({"must_not": 3})", "filter.must_not[0]"},
      {R"([1, 2])", "a filter must be a JSON object"},
      {R"({"must": [)", "not valid JSON"},
  };
  for (const auto& [text, want] : bad) {
    auto f = imsat::index::parse_metadata_filter(text);
    ASSERT_FALSE(f.is_ok()) << text;
    EXPECT_NE(f.status().message().find(want), std::string::npos)
        << text << " -> " << f.status().message();
  }
  std::string deep = R"({"must": [)";
  for (int i = 0; i < 20; ++i) deep += R"({"must": [)";
  deep += std::string(21, ']') + "}";
  EXPECT_FALSE(imsat::index::parse_metadata_filter(deep).is_ok());
}

// A match_any of 100,000 values was compared value by value for every item
// (15 s for one count). Large value lists are hash sets with the same answers as the one-by-one
// check, and a filter beyond the limit is refused naming it.
TEST(MetadataFilterParse, LargeMatchAnyListsAnswerAsTheOneByOneCheckAndAreCapped) {
  std::string values = "\"red\", 0, true, 2.5";
  for (int i = 0; i < 500; ++i)
    values += ", \"s" + std::to_string(i * 3) + "\", " + std::to_string(i * 7);
  const MetadataFilter big = parse(R"({"must": [{"key": "v", "match_any": [)" + values + "]}]}");
  ASSERT_NE(big.must[0].sets, nullptr);
  EXPECT_EQ(big.terms, 1u + 4 + 1000);
  const auto matches = [&](const std::string& v) {
    return imsat::index::filter_matches(big, R"({"v": )" + v + "}", -1);
  };
  for (const char* yes : {"\"red\"", "0", "-0", "0.0", "true", "2.5", "\"s3\"", "\"s1497\"", "21",
                          "3493", "[1, 14]", "[\"x\", \"s0\"]"}) {
    EXPECT_TRUE(matches(yes)) << yes;
  }
  for (const char* no : {"\"RED\"", "1", "false", "2.4", "\"s1\"", "\"21\"", "3500", "null",
                         "[1, 2]", "{\"a\": 0}"}) {
    EXPECT_FALSE(matches(no)) << no;
  }
  std::string many = "0";
  for (int i = 1; i < 10000; ++i) many += "," + std::to_string(i);
  auto refused = imsat::index::parse_metadata_filter(R"({"must": [{"key": "v", "match_any": [)" +
                                                     many + "]}]}");
  ASSERT_FALSE(refused.is_ok());
  EXPECT_NE(refused.status().message().find("the limit is 10000"), std::string::npos)
      << refused.status().message();
  EXPECT_TRUE(imsat::index::parse_metadata_filter(
                  R"({"must": [{"key": "v", "match_any": [)" + many + "]}]}", 20000)
                  .is_ok());
}

TEST(MetadataFilterParse, ConditionsHoldAsDocumented) {
  const std::string meta =
      R"({"color": "red", "price": 7, "ok": true, "tags": ["a", "b"], "size": {"w": 3}})";
  auto holds = [&](const std::string& f, int32_t label = 2) {
    return imsat::index::filter_matches(parse(f), meta, label);
  };
  EXPECT_TRUE(holds(R"({"must": [{"key": "color", "match": "red"}]})"));
  EXPECT_FALSE(holds(R"({"must": [{"key": "color", "match": "re"}]})"));
  EXPECT_TRUE(holds(R"({"must": [{"key": "price", "match": 7.0}]})"));
  EXPECT_FALSE(holds(R"({"must": [{"key": "price", "match": "7"}]})"));
  EXPECT_TRUE(holds(R"({"must": [{"key": "price", "range": {"gt": 6, "lte": 7}}]})"));
  EXPECT_FALSE(holds(R"({"must": [{"key": "price", "range": {"lt": 7}}]})"));
  EXPECT_TRUE(holds(R"({"must": [{"key": "ok", "match": true}]})"));
  EXPECT_TRUE(holds(R"({"must": [{"key": "tags", "match": "b"}]})"));
  EXPECT_TRUE(holds(R"({"must": [{"key": "size.w", "match": 3}]})"));
  EXPECT_TRUE(holds(R"({"must": [{"has_key": ["color", "size.w", "label"]}]})"));
  EXPECT_FALSE(holds(R"({"must": [{"has_key": "nope"}]})"));
  EXPECT_FALSE(holds(R"({"must": [{"has_key": "label"}]})", imsat::index::kNoTag));
  EXPECT_TRUE(holds(R"({"must": [{"key": "label", "match_any": [1, 2]}]})"));
  EXPECT_TRUE(
      holds(R"({"should": [{"key": "color", "match": "x"}, {"key": "ok", "match": true}]})"));
  EXPECT_FALSE(holds(R"({"should": [{"key": "color", "match": "x"}]})"));
  EXPECT_FALSE(holds(R"({"must_not": [{"key": "color", "match_any": ["red", "blue"]}]})"));
  EXPECT_TRUE(holds(R"({"must": [{"must_not": [{"key": "price", "range": {"gte": 8}}]}]})"));
  EXPECT_TRUE(
      imsat::index::filter_matches(parse(R"({"must_not": [{"has_key": "a"}]})"), "not json", 1));
}

// Random items with random metadata: strings, integers, floats, booleans, arrays, missing fields.
struct Fixture {
  std::vector<Item> items;
  std::vector<std::string> metas;
};

Fixture random_items(size_t n, uint64_t seed, size_t first = 0) {
  std::mt19937_64 rng(seed);
  Fixture f;
  const std::vector<std::string> colors = {"red", "green", "blue", "black"};
  for (size_t i = 0; i < n; ++i) {
    Item it;
    it.key = "item-" + std::to_string(first + i);
    it.code.resize(8);
    // Clustered codes: a few centres with a few bits flipped.
    uint64_t code = (rng() % 8) * 0x9E3779B97F4A7C15ull;
    for (int b = 0; b < 6; ++b) code ^= uint64_t{1} << (rng() % 64);
    for (int b = 0; b < 8; ++b) it.code[b] = static_cast<uint8_t>(code >> (8 * b));
    it.tag = rng() % 10 == 0 ? imsat::index::kNoTag : static_cast<int32_t>(rng() % 6);
    json m = json::object();
    if (rng() % 10) m["color"] = colors[rng() % colors.size()];
    if (rng() % 10) m["price"] = static_cast<int>(rng() % 100) - 20;
    if (rng() % 3 == 0) m["weight"] = static_cast<double>(rng() % 1000) / 10.0;
    if (rng() % 2) m["sale"] = rng() % 2 == 0;
    if (rng() % 4 == 0) m["tags"] = json::array({colors[rng() % 4], colors[rng() % 4]});
    it.metadata = rng() % 20 == 0 ? "" : m.dump();
    f.metas.push_back(it.metadata);
    f.items.push_back(std::move(it));
  }
  return f;
}

std::string random_filter(std::mt19937_64& rng) {
  const std::vector<std::string> colors = {"red", "green", "blue", "black", "pink"};
  auto condition = [&](int depth, auto& self) -> json {
    switch (rng() % (depth > 1 ? 7 : 8)) {
      case 0:
        return {{"key", "color"}, {"match", colors[rng() % colors.size()]}};
      case 1:
        return {{"key", "color"},
                {"match_any", json::array({colors[rng() % 5], colors[rng() % 5]})}};
      case 2: {
        json r = json::object();
        const int lo = static_cast<int>(rng() % 100) - 30;
        r[rng() % 2 ? "gte" : "gt"] = lo;
        if (rng() % 2) r[rng() % 2 ? "lt" : "lte"] = lo + static_cast<int>(rng() % 60);
        return {{"key", "price"}, {"range", r}};
      }
      case 3:
        return {{"key", "label"}, {"match", static_cast<int>(rng() % 6)}};
      case 4:
        return {{"key", "sale"}, {"match", rng() % 2 == 0}};
      case 5: {
        json c = {{"key", rng() % 2 ? "weight" : "tags"}};
        if (rng() % 2) {
          c["range"] = {{"lt", 50.5}};
        } else {
          c["match"] = colors[rng() % 5];
        }
        return c;
      }
      case 6:
        return {{"has_key", rng() % 2 ? json("weight") : json::array({"color", "label"})}};
      default: {
        json nested = json::object();
        nested[rng() % 2 ? "must" : "should"] =
            json::array({self(depth + 1, self), self(depth + 1, self)});
        return nested;
      }
    }
  };
  json f = json::object();
  for (const char* part : {"must", "should", "must_not"}) {
    const size_t n = rng() % 3;
    if (part == std::string("must") && n == 0 && rng() % 2) continue;
    json list = json::array();
    for (size_t i = 0; i < n; ++i) list.push_back(condition(0, condition));
    if (!list.empty()) f[part] = list;
  }
  if (f.empty()) f["must"] = json::array({condition(0, condition)});
  return f.dump();
}

uint32_t hamming(const std::vector<uint8_t>& a, const std::vector<uint8_t>& b) {
  uint32_t d = 0;
  for (size_t i = 0; i < a.size(); ++i) d += __builtin_popcount(a[i] ^ b[i]);
  return d;
}

class FilterStoreTest : public imsat::testing::TempDirTest {
 protected:
  std::unique_ptr<CodeStore> open(const std::string& name = "db") {
    StoreOptions o;
    o.bits = 64;
    o.sync_writes = false;
    o.expected_items = 4000;
    auto s = CodeStore::open((dir_ / name).string(), o);
    EXPECT_TRUE(s.is_ok()) << s.status().to_string();
    return s.is_ok() ? std::move(s).value() : nullptr;
  }
};

// Every search, count and scroll with a filter agrees with evaluating the filter item by item.
void check_against_brute_force(const CodeStore& store, const Fixture& data, uint64_t seed,
                               int filters) {
  std::mt19937_64 rng(seed);
  for (int t = 0; t < filters; ++t) {
    const std::string text = random_filter(rng);
    const MetadataFilter f = parse(text);
    std::vector<size_t> pass;
    for (size_t i = 0; i < data.items.size(); ++i) {
      if (imsat::index::filter_matches(f, data.metas[i], data.items[i].tag)) pass.push_back(i);
    }
    auto sel = store.select(f);
    ASSERT_TRUE(sel.is_ok()) << sel.status().to_string();
    ASSERT_EQ((*sel)->count, pass.size()) << text;
    const std::vector<uint8_t>& query = data.items[rng() % data.items.size()].code;
    // Brute force: (distance, insertion order) of every passing item.
    std::vector<std::pair<uint32_t, size_t>> order;
    for (size_t i : pass) order.emplace_back(hamming(query, data.items[i].code), i);
    std::sort(order.begin(), order.end());
    // The selection as counts use it, and as searches make it (with its codes packed: the scan
    // of just them), through the multi-index and the scan.
    auto packed = store.select(f, /*for_search=*/true);
    ASSERT_TRUE(packed.is_ok());
    ASSERT_EQ((*packed)->count, pass.size());
    for (int variant = 0; variant < 3; ++variant) {
      const bool mih = variant != 1;
      CodeStore::SearchOptions o;
      o.k = 10;
      o.use_multi_index = mih;
      o.selection = variant == 2 ? *packed : *sel;
      auto hits = store.search(query, o);
      ASSERT_TRUE(hits.is_ok());
      ASSERT_EQ(hits->size(), std::min<size_t>(10, pass.size())) << text << " mih " << mih;
      for (size_t i = 0; i < hits->size(); ++i) {
        EXPECT_EQ((*hits)[i].key, data.items[order[i].second].key) << text << " mih " << mih;
      }
      o.radius = 8;
      hits = store.search(query, o);
      ASSERT_TRUE(hits.is_ok());
      size_t within = 0;
      while (within < order.size() && order[within].first <= 8) ++within;
      ASSERT_EQ(hits->size(), within) << text << " radius, mih " << mih;
      for (size_t i = 0; i < within; ++i) {
        EXPECT_EQ((*hits)[i].key, data.items[order[i].second].key);
      }
    }
    // A filtered scroll visits exactly the passing items, in insertion order.
    std::vector<std::string> seen;
    uint64_t after = 0;
    while (true) {
      uint64_t last = 0;
      auto page = store.scroll(after, 97, &last, sel->get());
      ASSERT_TRUE(page.is_ok());
      for (const Item& it : *page) seen.push_back(it.key);
      if (page->size() < 97) break;
      after = last;
    }
    ASSERT_EQ(seen.size(), pass.size()) << text;
    for (size_t i = 0; i < pass.size(); ++i) EXPECT_EQ(seen[i], data.items[pass[i]].key);
  }
}

TEST_F(FilterStoreTest, FilteredSearchesEqualBruteForceUnindexedThenIndexed) {
  auto store = open();
  const Fixture data = random_items(3000, 7);
  ASSERT_TRUE(store->put(data.items).is_ok());
  check_against_brute_force(*store, data, 11, 40);  // every field read from metadata
  for (const char* field : {"color", "price", "sale"}) {
    ASSERT_TRUE(store->index_field(field).is_ok());
  }
  check_against_brute_force(*store, data, 11, 40);  // mixed: weight and tags stay unindexed
  for (const char* field : {"weight", "tags"}) ASSERT_TRUE(store->index_field(field).is_ok());
  check_against_brute_force(*store, data, 12, 60);  // everything from the index
  // The indexed fields survive a reopen.
  store.reset();
  store = open();
  EXPECT_EQ(store->indexed_fields().size(), 5u);
  check_against_brute_force(*store, data, 13, 20);
}

// The indexed fields were stored one per line, so a name holding a line break
// came back after a reopen as two other fields. Control characters are refused; any other name
// (quotes, brackets, commas, spaces, non-ASCII) survives a reopen as it was.
TEST_F(FilterStoreTest, FieldNamesSurviveAReopenExactlyAndControlCharactersAreRefused) {
  auto store = open();
  for (const std::string bad : {std::string("a\nb"), std::string("tab\there"),
                                std::string("nul\0x", 5), std::string("del\x7f")}) {
    const imsat::Status s = store->index_field(bad);
    EXPECT_EQ(s.code(), imsat::Status::Code::kInvalidArgument) << s.to_string();
    EXPECT_NE(s.message().find("control characters"), std::string::npos) << s.message();
  }
  EXPECT_TRUE(store->indexed_fields().empty());
  const std::vector<std::string> names = {"a b", "[\"x\", ", "price,eur", "couleur \u00e9t\u00e9"};
  for (const std::string& name : names) ASSERT_TRUE(store->index_field(name).is_ok()) << name;
  store.reset();
  store = open();
  EXPECT_EQ(store->indexed_fields(), names);
}

TEST_F(FilterStoreTest, IndexedTermsFollowUpsertsAndDeletes) {
  auto store = open();
  ASSERT_TRUE(store->index_field("color").is_ok());
  Fixture data = random_items(500, 3);
  ASSERT_TRUE(store->put(data.items).is_ok());
  // Replace half the items with new metadata, delete a tenth: the index must follow.
  Fixture changed = random_items(250, 4);
  for (size_t i = 0; i < 250; ++i) {
    changed.items[i].key = data.items[2 * i].key;
    data.items[2 * i] = changed.items[i];
    data.metas[2 * i] = changed.metas[i];
  }
  ASSERT_TRUE(store->put(changed.items).is_ok());
  std::vector<std::string> gone;
  for (size_t i = 1; i < 500; i += 10) gone.push_back(data.items[i].key);
  ASSERT_TRUE(store->erase(gone).is_ok());
  for (const char* color : {"red", "green", "blue", "black"}) {
    const MetadataFilter f =
        parse(std::string(R"({"must": [{"key": "color", "match": ")") + color + "\"}]}");
    size_t want = 0;
    for (size_t i = 0; i < 500; ++i) {
      if (i % 10 == 1) continue;
      want += imsat::index::filter_matches(f, data.metas[i], data.items[i].tag);
    }
    auto sel = store->select(f);
    ASSERT_TRUE(sel.is_ok());
    EXPECT_EQ((*sel)->count, want) << color;
    EXPECT_TRUE((*sel)->unindexed.empty());
  }
  EXPECT_TRUE(store->verify().is_ok());
}

TEST_F(FilterStoreTest, DeleteByFilterRemovesExactlyThePassingItems) {
  auto store = open();
  const Fixture data = random_items(1000, 5);
  ASSERT_TRUE(store->put(data.items).is_ok());
  ASSERT_TRUE(store->index_field("color").is_ok());
  const MetadataFilter f = parse(
      R"({"must": [{"key": "color", "match": "red"}], "must_not": [{"key": "price", "range": {"lt": 0}}]})");
  size_t want = 0;
  for (size_t i = 0; i < data.items.size(); ++i) {
    want += imsat::index::filter_matches(f, data.metas[i], data.items[i].tag);
  }
  ASSERT_GT(want, 0u);
  auto deleted = store->erase_where(f);
  ASSERT_TRUE(deleted.is_ok());
  EXPECT_EQ(*deleted, want);
  EXPECT_EQ(store->info().items, 1000 - want);
  EXPECT_EQ((*store->select(f))->count, 0u);
  for (size_t i = 0; i < data.items.size(); ++i) {
    const bool passed = imsat::index::filter_matches(f, data.metas[i], data.items[i].tag);
    EXPECT_EQ(store->get(data.items[i].key).is_ok(), !passed) << data.items[i].key;
  }
  std::vector<std::string> missing;
  auto some = store->erase_present({"item-0", "item-1", "nope"}, &missing);
  ASSERT_TRUE(some.is_ok());
  EXPECT_EQ(missing.size() + *some, 3u);
  EXPECT_NE(std::find(missing.begin(), missing.end(), "nope"), missing.end());
}

// A cursor visits every item present for the whole scroll exactly once while another thread
// adds items.
TEST_F(FilterStoreTest, AScrollCursorVisitsEveryItemOnceDuringWrites) {
  auto store = open();
  const Fixture data = random_items(4000, 9);
  ASSERT_TRUE(store->put(data.items).is_ok());
  std::atomic<bool> stop{false};
  std::thread writer([&] {
    size_t next = 100000;
    while (!stop) {
      Fixture more = random_items(50, next, next);
      ASSERT_TRUE(store->put(more.items).is_ok());
      next += 50;
    }
  });
  std::map<std::string, int> visits;
  uint64_t after = 0;
  while (true) {
    uint64_t last = 0;
    auto page = store->scroll(after, 33, &last);
    ASSERT_TRUE(page.is_ok());
    for (const Item& it : *page) ++visits[it.key];
    if (page->size() < 33 || visits.size() > 20000) break;
    after = last;
  }
  stop = true;
  writer.join();
  for (const Item& it : data.items) EXPECT_EQ(visits[it.key], 1) << it.key;
  for (const auto& [key, n] : visits) EXPECT_EQ(n, 1) << key;
}

// A checkpoint taken while a writer runs holds every batch acknowledged before it and opens as a
// store of its own.
TEST_F(FilterStoreTest, ACheckpointUnderWritesHoldsEveryAcknowledgedBatch) {
  auto store = open();
  std::atomic<size_t> acknowledged{0};
  std::atomic<bool> stop{false};
  std::thread writer([&] {
    for (size_t batch = 0; !stop && batch < 400; ++batch) {
      Fixture more = random_items(25, batch, batch * 25);
      ASSERT_TRUE(store->put(more.items).is_ok());
      acknowledged = (batch + 1) * 25;
    }
  });
  while (acknowledged < 500) std::this_thread::yield();
  const size_t before = acknowledged;
  const std::string snap = (dir_ / "snap").string();
  ASSERT_TRUE(store->checkpoint(snap).is_ok());
  const size_t after = acknowledged;
  stop = true;
  writer.join();
  EXPECT_FALSE(store->checkpoint(snap).is_ok());  // an existing folder is refused
  StoreOptions o;
  o.create_if_missing = false;
  o.read_only = true;  // a snapshot is opened as it is, nothing written into it
  auto copy = CodeStore::open(snap, o);
  ASSERT_TRUE(copy.is_ok()) << copy.status().to_string();
  // The arrays saved with the checkpoint match it, so the copy opens from them.
  EXPECT_EQ((*copy)->info().open_source, "arrays file");
  const size_t held = (*copy)->info().items;
  EXPECT_GE(held, before);
  EXPECT_LE(held, after);
  EXPECT_EQ(held % 25, 0u);  // whole batches only
  // Item by item: the first `held` items, with the metadata they were written with.
  for (size_t batch = 0; batch * 25 < held; ++batch) {
    const Fixture want = random_items(25, batch, batch * 25);
    for (const Item& it : want.items) {
      auto got = (*copy)->get(it.key);
      ASSERT_TRUE(got.is_ok()) << it.key;
      EXPECT_EQ(got->code, it.code);
      EXPECT_EQ(got->metadata, it.metadata);
    }
  }
  EXPECT_FALSE((*copy)->get("item-" + std::to_string(held)).is_ok());
  EXPECT_TRUE((*copy)->verify().is_ok());
}

}  // namespace
