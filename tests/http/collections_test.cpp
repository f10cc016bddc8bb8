// Collections, filters, scroll/count/delete, snapshots and request hygiene through the Router
// (no sockets): every endpoint's success path and its bad inputs (unknown collection, bad name,
// '../' in a name, bad filters, unknown fields, missing token), and the OpenAPI document against
// the route table.
#include "query/collections.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "http/http.h"
#include "http/http_internal.h"
#include "learn/learn.h"
#include "support/temp_dir_test.h"

namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
namespace H = imsat::http;
namespace Q = imsat::query;

class CollectionsTest : public imsat::testing::TempDirTest {
 protected:
  void SetUp() override {
    TempDirTest::SetUp();
    data_dir_ = (dir_ / "data").string();
    auto catalog = Q::Catalog::open(data_dir_);
    ASSERT_TRUE(catalog.is_ok()) << catalog.status().to_string();
    catalog_ = std::move(catalog).value();
    router_ = std::make_unique<H::Router>(*catalog_, H::Limits{}, "secret");
  }
  void TearDown() override {
    router_.reset();
    catalog_.reset();
    TempDirTest::TearDown();
  }

  H::Response send(const std::string& method, const std::string& target, const json& body = {},
                   bool token = true) {
    H::Request r;
    r.method = method;
    r.target = target;
    if (!body.is_null()) {
      r.body = body.dump();
      r.headers["content-type"] = "application/json";
    }
    if (token) r.headers["authorization"] = "Bearer secret";
    return router_->handle(r);
  }
  static json js(const H::Response& r) { return json::parse(r.body, nullptr, false); }
  static std::string code_of(const H::Response& r) {
    const json j = js(r);
    return j.is_object() ? j.value("code", "") : "";
  }

  // A code-only collection of n items with random metadata; returns the metadata by key.
  std::map<std::string, json> fill(const std::string& name, size_t n, uint64_t seed) {
    EXPECT_EQ(send("PUT", "/v1/collections/" + name, {{"bits", 32}}).status, 201);
    std::mt19937_64 rng(seed);
    json items = json::array();
    std::map<std::string, json> meta;
    const char* colors[] = {"red", "green", "blue"};
    for (size_t i = 0; i < n; ++i) {
      char code[9];
      std::snprintf(code, sizeof(code), "%08x", static_cast<unsigned>(rng()));
      const std::string key = name + "-" + std::to_string(i);
      json m = {{"color", colors[rng() % 3]}, {"price", static_cast<int>(rng() % 50)}};
      meta[key] = m;
      items.push_back({{"key", key}, {"code", code}, {"label", i % 4}, {"metadata", m}});
    }
    EXPECT_EQ(send("POST", "/v1/collections/" + name + "/items", items).status, 200);
    return meta;
  }

  std::string data_dir_;
  std::unique_ptr<Q::Catalog> catalog_;
  std::unique_ptr<H::Router> router_;
};

TEST_F(CollectionsTest, CreateListGetAndNames) {
  auto r = send("PUT", "/v1/collections/shop", {{"bits", 64}});
  ASSERT_EQ(r.status, 201) << r.body;
  EXPECT_EQ(js(r)["bits"], 64);
  EXPECT_EQ(send("PUT", "/v1/collections/shop", {{"bits", 64}}).status, 409);  // exists
  r = send("GET", "/v1/collections");
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(js(r)["collections"].size(), 1u);
  EXPECT_EQ(js(r)["collections"][0]["name"], "shop");
  EXPECT_EQ(js(r)["default"], "shop");  // the only one
  r = send("GET", "/v1/collections/shop");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(js(r)["collection"], "shop");
  // Names that could reach outside the data directory, or are not names at all.
  for (const std::string& bad : std::vector<std::string>{"..%2Fescape", "%2E%2E", "a%20b", "x.y",
                                                         std::string(65, 'a'), "%2Fetc"}) {
    r = send("PUT", "/v1/collections/" + bad, {{"bits", 8}});
    EXPECT_EQ(r.status, 400) << bad;
    EXPECT_EQ(code_of(r), "bad_collection_name") << bad << " " << r.body;
  }
  EXPECT_FALSE(fs::exists(dir_ / "escape"));
  r = send("GET", "/v1/collections/nope/info");
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(code_of(r), "unknown_collection");
  EXPECT_EQ(send("PUT", "/v1/collections/c2", {{"bits", 12}}).status, 400);  // not x8
  EXPECT_EQ(send("PUT", "/v1/collections/c2", {{"bitz", 16}}).status, 400);  // unknown field
  EXPECT_EQ(send("PUT", "/v1/collections/c2", json::object()).status, 400);  // no bits
  EXPECT_EQ(send("PUT", "/v1/collections/c2", {{"bits", 16}}, false).status, 401);
  EXPECT_FALSE(fs::exists(fs::path(data_dir_) / "c2"));
  // Created collections are there after a restart.
  router_.reset();
  catalog_.reset();
  auto reopened = Q::Catalog::open(data_dir_);
  ASSERT_TRUE(reopened.is_ok()) << reopened.status().to_string();
  catalog_ = std::move(reopened).value();
  router_ = std::make_unique<H::Router>(*catalog_, H::Limits{}, "secret");
  EXPECT_NE(catalog_->find("shop"), nullptr);
}

TEST_F(CollectionsTest, UnprefixedEndpointsActOnTheDefaultCollection) {
  fill("a", 20, 1);
  auto r = send("POST", "/v1/search", {{"key", "a-3"}, {"k", 2}});
  ASSERT_EQ(r.status, 200) << r.body;  // one collection: it is the default
  fill("b", 20, 2);
  r = send("POST", "/v1/search", {{"key", "a-3"}});
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(code_of(r), "no_default_collection");
  ASSERT_TRUE(catalog_->set_default("b").is_ok());
  r = send("POST", "/v1/search", {{"key", "b-3"}, {"k", 1}});
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(js(r)["hits"][0]["key"], "b-3");
  // The same item through both paths.
  EXPECT_EQ(send("GET", "/v1/items/b-3").body, send("GET", "/v1/collections/b/items/b-3").body);
  EXPECT_EQ(send("GET", "/v1/collections/a/items/b-3").status, 404);
}

TEST_F(CollectionsTest, RequestHygiene) {
  fill("c", 50, 3);
  // Unknown fields are named.
  auto r = send("POST", "/v1/collections/c/search", {{"key", "c-1"}, {"limt", 3}});
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(code_of(r), "unknown_field");
  EXPECT_NE(js(r)["error"].get<std::string>().find("'limt'"), std::string::npos);
  r = send("POST", "/v1/collections/c/items",
           json::array({{{"key", "x"}, {"code", "00000000"}, {"labl", 1}}}));
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(r.body.find("'labl'"), std::string::npos);
  EXPECT_EQ(send("POST", "/v1/collections/c/items/count", {{"filtr", json::object()}}).status, 400);
  EXPECT_EQ(send("POST", "/v1/collections/c/evaluate", {{"seeds", 1}}).status, 400);
  // limit is another name for k.
  r = send("POST", "/v1/collections/c/search", {{"key", "c-1"}, {"limit", 3}});
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(js(r)["hits"].size(), 3u);
  EXPECT_EQ(
      send("POST", "/v1/collections/c/search", {{"key", "c-1"}, {"k", 3}, {"limit", 4}}).status,
      400);
  // k with radius is refused; limit caps a radius search, 1,000 by default.
  EXPECT_EQ(
      send("POST", "/v1/collections/c/search", {{"key", "c-1"}, {"k", 3}, {"radius", 32}}).status,
      400);
  r = send("POST", "/v1/collections/c/search", {{"key", "c-1"}, {"radius", 32}, {"limit", 7}});
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(js(r)["hits"].size(), 7u);
  EXPECT_EQ(js(r)["truncated"], true);
  // 401 names the scheme; 405 lists the methods.
  r = send("POST", "/v1/collections/c/items/delete", {{"keys", {"c-1"}}}, false);
  EXPECT_EQ(r.status, 401);
  EXPECT_EQ(r.headers["WWW-Authenticate"].rfind("Bearer", 0), 0u);
  EXPECT_EQ(code_of(r), "missing_token");
  r = send("PATCH", "/v1/collections/c/search");
  EXPECT_EQ(r.status, 405);
  EXPECT_EQ(r.headers["Allow"], "POST");
  EXPECT_EQ(code_of(r), "method_not_allowed");
  r = send("GET", "/v1/nothing");
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(code_of(r), "unknown_endpoint");
  // Every error carries a code.
  for (const auto& [method, target] : std::vector<std::pair<std::string, std::string>>{
           {"GET", "/v1/items/missing"}, {"POST", "/v1/search"}, {"DELETE", "/v1/items/x"}}) {
    r = send(method, target);
    EXPECT_GE(r.status, 400);
    EXPECT_FALSE(code_of(r).empty()) << method << " " << target << " " << r.body;
  }
}

TEST_F(CollectionsTest, FiltersCountScrollAndDelete) {
  const auto meta = fill("f", 300, 4);
  auto brute = [&](const std::string& color, int below) {
    std::set<std::string> keys;
    for (const auto& [key, m] : meta) {
      if (m["color"] == color && m["price"].get<int>() < below) keys.insert(key);
    }
    return keys;
  };
  const json filter = {
      {"must",
       {{{"key", "color"}, {"match", "red"}}, {{"key", "price"}, {"range", {{"lt", 25}}}}}}};
  const std::set<std::string> want = brute("red", 25);
  for (bool indexed : {false, true}) {
    if (indexed) {
      ASSERT_EQ(send("PUT", "/v1/collections/f/index/color").status, 200);
      ASSERT_EQ(send("PUT", "/v1/collections/f/index/price", {}, false).status, 401);
      // A type the index does not have was accepted and ignored; it is refused, naming "any".
      auto typed = send("PUT", "/v1/collections/f/index/price", {{"type", "float"}});
      EXPECT_EQ(typed.status, 400) << typed.body;
      EXPECT_NE(js(typed)["error"].get<std::string>().find("must be \"any\""), std::string::npos)
          << typed.body;
      EXPECT_EQ(send("PUT", "/v1/collections/f/index/price", {{"typ", "any"}}).status, 400);
      EXPECT_EQ(send("PUT", "/v1/collections/f/index/other", {{"type", "any"}}).status, 200);
    }
    auto r = send("POST", "/v1/collections/f/items/count", {{"filter", filter}});
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(js(r)["count"], want.size());
    r = send("POST", "/v1/collections/f/search",
             {{"key", "f-0"}, {"k", 1000}, {"filter", filter}, {"explain", true}});
    ASSERT_EQ(r.status, 200) << r.body;
    std::set<std::string> got;
    const json answer = js(r);
    for (const json& h : answer["hits"]) got.insert(h["key"].get<std::string>());
    EXPECT_EQ(got, want) << r.body.substr(0, 300);
    EXPECT_EQ(js(r)["explain"]["filter"]["unindexed"].size(), indexed ? 1u : 2u);
    // Scroll through the filtered items, 7 at a time.
    std::set<std::string> scrolled;
    json offset = nullptr;
    for (int pages = 0; pages < 100; ++pages) {
      r = send("POST", "/v1/collections/f/items/scroll",
               {{"filter", filter}, {"limit", 7}, {"offset", offset}});
      ASSERT_EQ(r.status, 200) << r.body;
      const json page = js(r);
      for (const json& it : page["items"]) {
        EXPECT_TRUE(scrolled.insert(it["key"].get<std::string>()).second);
      }
      offset = page["next_offset"];
      if (offset.is_null()) break;
    }
    EXPECT_EQ(scrolled, want);
  }
  // Bad filters.
  const std::vector<json> bad_filters = {
      json("red"), json::parse(R"({"must": [{"key": "color", "matches": 1}]})"),
      json::parse(R"({"must": [{"key": "price", "range": {"lt": "x"}}]})")};
  for (const json& bad : bad_filters) {
    auto r = send("POST", "/v1/collections/f/items/count", {{"filter", bad}});
    EXPECT_EQ(r.status, 400) << bad.dump();
    EXPECT_EQ(code_of(r), "invalid_filter") << r.body;
  }
  // Delete by keys (unknown ones reported) and by filter, each one batch.
  auto r = send("POST", "/v1/collections/f/items/delete", {{"keys", {"f-0", "f-1", "zzz"}}});
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(js(r)["deleted"], 2);
  EXPECT_EQ(js(r)["not_found"], 1);
  EXPECT_FALSE(js(r).contains("not_found_keys"));
  // The keys not found, when asked for.
  r = send("POST", "/v1/collections/f/items/delete",
           {{"keys", {"f-0", "yyy"}}, {"with_keys", true}});
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(js(r)["deleted"], 0);
  EXPECT_EQ(js(r)["not_found"], 2);
  EXPECT_EQ(js(r)["not_found_keys"], json::array({"f-0", "yyy"}));
  std::set<std::string> red_cheap = brute("red", 25);
  red_cheap.erase("f-0");
  red_cheap.erase("f-1");
  r = send("POST", "/v1/collections/f/items/delete", {{"filter", filter}});
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(js(r)["deleted"], red_cheap.size());
  EXPECT_EQ(js(r)["not_found"], 0);
  r = send("POST", "/v1/collections/f/items/count", {{"filter", filter}});
  EXPECT_EQ(js(r)["count"], 0);
  EXPECT_EQ(send("POST", "/v1/collections/f/items/delete", {{"filter", json::object()}}).status,
            400);  // an empty filter would delete everything
  EXPECT_EQ(send("POST", "/v1/collections/f/items/delete", {{"keys", {"f-5"}}}, false).status, 401);
}

TEST_F(CollectionsTest, SnapshotsAreConsistentAndRestorable) {
  const auto meta = fill("s", 100, 5);
  auto r = send("POST", "/v1/collections/s/snapshots");
  ASSERT_EQ(r.status, 201) << r.body;
  const std::string id = js(r)["id"];
  EXPECT_GT(js(r)["bytes"].get<uint64_t>(), 0u);
  // Paths are shown relative to the data directory, not as the server's layout.
  EXPECT_EQ(js(r)["path"], "s/snapshots/" + id);
  // Writes after the snapshot are not in it.
  ASSERT_EQ(send("POST", "/v1/collections/s/items",
                 json::array({{{"key", "late"}, {"code", "ffffffff"}}}))
                .status,
            200);
  ASSERT_EQ(send("POST", "/v1/collections/s/items/delete", {{"keys", {"s-0"}}}).status, 200);
  r = send("GET", "/v1/collections/s/snapshots");
  ASSERT_EQ(r.status, 200);
  ASSERT_EQ(js(r)["snapshots"].size(), 1u);
  EXPECT_EQ(js(r)["snapshots"][0]["id"], id);
  EXPECT_EQ(send("DELETE", "/v1/collections/s/snapshots/..%2F..", {}, true).status, 400);
  EXPECT_EQ(send("DELETE", "/v1/collections/s/snapshots/20990101T000000Z-000").status, 404);
  // Restored (offline) as a new collection: exactly the items acknowledged before it.
  ASSERT_TRUE(Q::restore_snapshot(data_dir_, "s", id, "s_restored", false).is_ok());
  EXPECT_FALSE(Q::restore_snapshot(data_dir_, "s", id, "s_restored", false).is_ok());
  EXPECT_FALSE(Q::restore_snapshot(data_dir_, "s", "20990101T000000Z-000", "x", false).is_ok());
  {
    auto restored = Q::QueryEngine::open((fs::path(data_dir_) / "s_restored" / "store").string());
    ASSERT_TRUE(restored.is_ok()) << restored.status().to_string();
    Q::QueryEngine& c = **restored;
    EXPECT_EQ(c.info().items, 100u);
    EXPECT_FALSE(c.get_item("late").is_ok());
    for (const auto& [key, m] : meta) {
      auto item = c.get_item(key);
      ASSERT_TRUE(item.is_ok()) << key;
      EXPECT_EQ(json::parse(item->metadata), m);
    }
    // The snapshot folder is a store of its own: copied elsewhere, it opens.
    const fs::path copy = dir_ / "elsewhere";
    fs::copy(fs::path(data_dir_) / "s" / "snapshots" / id, copy, fs::copy_options::recursive);
    auto engine = Q::QueryEngine::open((copy / "store").string());
    ASSERT_TRUE(engine.is_ok()) << engine.status().to_string();
    EXPECT_EQ((*engine)->info().items, 100u);
  }
  // Over HTTP: restored as a new collection the server serves at once, and downloaded as a zip.
  r = send("POST", "/v1/collections/s/snapshots/" + id + "/restore", {{"as", "s_http"}});
  ASSERT_EQ(r.status, 201) << r.body;
  EXPECT_EQ(js(r)["items"], 100u);
  EXPECT_EQ(js(r)["restored_from"]["snapshot"], id);
  EXPECT_EQ(js(send("GET", "/v1/collections/s_http/items/s-0"))["key"], "s-0");
  EXPECT_EQ(send("GET", "/v1/collections/s_http/items/late").status, 404);
  EXPECT_EQ(
      send("POST", "/v1/collections/s/snapshots/" + id + "/restore", {{"as", "s_http"}}).status,
      409);
  EXPECT_EQ(send("POST", "/v1/collections/s/snapshots/" + id + "/restore", {{"as", "../x"}}).status,
            400);
  EXPECT_EQ(send("POST", "/v1/collections/s/snapshots/" + id + "/restore", json::object()).status,
            400);
  EXPECT_EQ(send("GET", "/v1/collections/s/snapshots/" + id + "/archive", {}, false).status, 401);
  r = send("GET", "/v1/collections/s/snapshots/" + id + "/archive");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.content_type, "application/zip");
  ASSERT_FALSE(r.file.empty());
  {
    std::ifstream zip(r.file, std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(zip)), std::istreambuf_iterator<char>());
    EXPECT_EQ(bytes.substr(0, 2), "PK");
    EXPECT_NE(bytes.find("store/CURRENT"), std::string::npos);
  }
  // A temporary file the server removes once it has opened it; one left by a crash goes at the
  // next open of the data directory.
  EXPECT_EQ(fs::path(r.file).parent_path(), fs::path(data_dir_));
  EXPECT_EQ(send("GET", "/v1/collections/s/snapshots/20990101T000000Z-000/archive").status, 404);
  r = send("DELETE", "/v1/collections/s/snapshots/" + id);
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(js(send("GET", "/v1/collections/s/snapshots"))["snapshots"].size(), 0u);
}

// A machine without the primary's disk follows its snapshots through a link that a deployment
// swaps atomically: each new target is taken up, requests already holding the old one finish on
// it, a target that is not a store is reported and skipped, and writes are refused.
TEST_F(CollectionsTest, ASnapshotFollowerTakesUpEachSnapshotItsLinkNames) {
  fill("s", 60, 9);
  auto snapshot = [&] {
    auto r = send("POST", "/v1/collections/s/snapshots");
    EXPECT_EQ(r.status, 201) << r.body;
    return fs::path(data_dir_) / "s" / "snapshots" / js(r)["id"].get<std::string>();
  };
  const fs::path link = dir_ / "current";
  auto point = [&](const fs::path& target) {  // ln -s TARGET next && mv -T next current
    fs::create_directory_symlink(target, dir_ / "next");
    fs::rename(dir_ / "next", link);
  };
  point(snapshot());
  auto follower = Q::Catalog::snapshot_follower("default", link.string(), "", 20);
  ASSERT_TRUE(follower.is_ok()) << follower.status().to_string();
  H::Router replica(**follower, H::Limits{}, "secret");
  auto items = [&] { return (*follower)->find("default")->engine().info().items; };
  EXPECT_EQ(items(), 60u);
  std::shared_ptr<Q::Collection> old = (*follower)->find("default");
  H::Request write;
  write.method = "POST";
  write.target = "/v1/items";
  write.body = R"([{"key": "x", "code": "0000ffff"}])";
  write.headers["content-type"] = "application/json";
  write.headers["authorization"] = "Bearer secret";
  const H::Response refused = replica.handle(write);
  EXPECT_EQ(refused.status, 403) << refused.body;
  EXPECT_NE(refused.body.find(link.string()), std::string::npos) << refused.body;

  ASSERT_EQ(send("POST", "/v1/collections/s/items",
                 json::array({{{"key", "late"}, {"code", "0f0f0f0f"}}}))
                .status,
            200);
  const fs::path second = snapshot();
  point(second);
  (*follower)->wait_for_follow_check(std::chrono::seconds(30));
  EXPECT_EQ(items(), 61u);
  EXPECT_EQ((*follower)->follow_status().swaps, 1u);
  EXPECT_EQ((*follower)->follow_status().serving, fs::canonical(second).string());
  EXPECT_EQ(old->engine().info().items, 60u);  // still usable by whoever holds it
  EXPECT_FALSE(old->engine().get_item("late").is_ok());
  H::Request search;
  search.method = "POST";
  search.target = "/v1/search";
  search.body = R"({"key": "late", "k": 1})";
  search.headers["content-type"] = "application/json";
  const H::Response found = replica.handle(search);
  ASSERT_EQ(found.status, 200) << found.body;
  EXPECT_EQ(js(found)["hits"][0]["key"], "late");

  // A target that is not a store: reported, and the last good snapshot stays in service.
  fs::create_directories(dir_ / "junk" / "store");
  std::ofstream(dir_ / "junk" / "store" / "CURRENT") << "not a store\n";
  point(dir_ / "junk");
  (*follower)->wait_for_follow_check(std::chrono::seconds(30));
  EXPECT_NE((*follower)->follow_status().error.find("junk"), std::string::npos)
      << (*follower)->follow_status().error;
  EXPECT_EQ(items(), 61u);
  EXPECT_EQ((*follower)->follow_status().swaps, 1u);
}

TEST_F(CollectionsTest, ADroppedCollectionLeavesDiskWhenNoRequestUsesIt) {
  fill("d", 10, 6);
  const fs::path folder = fs::path(data_dir_) / "d";
  std::shared_ptr<Q::Collection> in_use = catalog_->find("d");  // a request in flight
  EXPECT_EQ(send("DELETE", "/v1/collections/d", {}, false).status, 401);
  auto r = send("DELETE", "/v1/collections/d");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(send("GET", "/v1/collections/d").status, 404);
  EXPECT_TRUE(fs::exists(folder));
  EXPECT_EQ(in_use->engine().info().items, 10u);  // still answers
  in_use.reset();
  EXPECT_FALSE(fs::exists(folder));
  EXPECT_EQ(send("DELETE", "/v1/collections/d").status, 404);
  // The name can be used again.
  EXPECT_EQ(send("PUT", "/v1/collections/d", {{"bits", 8}}).status, 201);
}

// /openapi.json is generated from the route table: every endpoint is described, and every
// described operation is one the router dispatches.
// The bytes of a model file (LSH over random data: trained in milliseconds).
std::string model_file_bytes(const fs::path& dir, int bits) {
  imsat::learn::Dataset d;
  d.cols = 8;
  d.item_shape = {d.cols};
  std::mt19937_64 rng(static_cast<uint64_t>(bits));
  std::normal_distribution<float> noise(0, 1);
  for (int i = 0; i < 64 * 8; ++i) d.values.push_back(noise(rng));
  d.rows = 64;
  imsat::learn::TrainConfig c;
  c.method = imsat::learn::Method::kLsh;
  c.bits = bits;
  c.device = "cpu";
  auto model = imsat::learn::train(d, c);
  EXPECT_TRUE(model.is_ok()) << model.status().to_string();
  const std::string path = (dir / ("m" + std::to_string(bits) + ".model")).string();
  EXPECT_TRUE(model->save(path).is_ok());
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// Concurrent creates with uploaded models shared one staging file, so a 201
// could describe the other request's model. Each request's upload is its own; the name is claimed
// atomically; the loser gets 409.
TEST_F(CollectionsTest, ConcurrentCreatesWithUploadedModelsAcknowledgeTheirOwnModel) {
  const std::string wide = model_file_bytes(dir_, 64), narrow = model_file_bytes(dir_, 32);
  for (int pair = 0; pair < 15; ++pair) {
    const std::string target = "/v1/collections/race" + std::to_string(pair);
    H::Response answers[2];
    auto create = [&](int i) {
      H::Request r;
      r.method = "PUT";
      r.target = target;
      r.body = i == 0 ? wide : narrow;
      r.headers["content-type"] = "application/octet-stream";
      r.headers["authorization"] = "Bearer secret";
      answers[i] = router_->handle(r);
    };
    std::thread a(create, 0), b(create, 1);
    a.join();
    b.join();
    int created = 0;
    for (int i = 0; i < 2; ++i) {
      if (answers[i].status == 201) {
        ++created;
        EXPECT_EQ(js(answers[i])["model"]["bits"], i == 0 ? 64 : 32) << answers[i].body;
        EXPECT_EQ(js(answers[i])["bits"], i == 0 ? 64 : 32);
      } else {
        EXPECT_EQ(answers[i].status, 409) << answers[i].body;
      }
    }
    EXPECT_EQ(created, 1) << target;
    const json listed = js(send("GET", target));
    const int winner = answers[0].status == 201 ? 0 : 1;
    EXPECT_EQ(listed["model"]["bits"], winner == 0 ? 64 : 32);
  }
  // No staging files are left in the data directory.
  for (const auto& entry : fs::directory_iterator(data_dir_)) {
    if (entry.path().filename() == ".imsat-lock") continue;  // the directory's lock
    EXPECT_NE(entry.path().filename().string()[0], '.') << entry.path();
  }
}

// A damaged or foreign model file is the client's bad input (400 naming it), and a
// model named by server path is read only if it is a regular file, with an answer that does not
// tell whether the path exists.
TEST_F(CollectionsTest, BadModelFilesAreTheClientsErrorAndPathsDiscloseNothing) {
  std::string model = model_file_bytes(dir_, 16);
  auto upload = [&](const std::string& name, const std::string& bytes) {
    H::Request r;
    r.method = "PUT";
    r.target = "/v1/collections/" + name;
    r.body = bytes;
    r.headers["content-type"] = "application/octet-stream";
    r.headers["authorization"] = "Bearer secret";
    return router_->handle(r);
  };
  std::string flipped = model;
  flipped[flipped.size() / 2] ^= 0x40;
  std::mt19937 rng(3);
  std::string noise(4096, '\0');
  for (char& c : noise) c = static_cast<char>(rng());
  const std::string cases[] = {noise, model.substr(0, model.size() / 2), flipped,
                               "root:x:0:0:root:/root:/bin/bash\n"};
  int i = 0;
  for (const std::string& bytes : cases) {
    const H::Response r = upload("bad" + std::to_string(i++), bytes);
    EXPECT_EQ(r.status, 400) << r.body;
    EXPECT_NE(r.body.find("the uploaded model is not a model file imsat can read"),
              std::string::npos)
        << r.body;
  }
  EXPECT_EQ(upload("good", model).status, 201);
  // Paths: a missing file, a device that never ends, a folder and a non-model file all get the
  // same 400, quickly (nothing is read from /dev/zero).
  const std::string fifo = (dir_ / "fifo").string();
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  std::ofstream((dir_ / "text").string()) << "not a model\n";
  for (const std::string& path : {(dir_ / "missing").string(), std::string("/dev/zero"), fifo,
                                  dir_.string(), (dir_ / "text").string()}) {
    const H::Response r = send("PUT", "/v1/collections/bypath", {{"model", path}});
    EXPECT_EQ(r.status, 400) << path << ": " << r.body;
    EXPECT_EQ(js(r)["error"], "model '" + path + "' is not a readable imsat model file") << r.body;
  }
  std::ofstream((dir_ / "ok.model").string(), std::ios::binary) << model;
  EXPECT_EQ(send("PUT", "/v1/collections/bypath", {{"model", (dir_ / "ok.model").string()}}).status,
            201);
  // Under a models folder, a path outside it is refused.
  catalog_->set_models_dir((dir_ / "models").string());
  fs::create_directories(dir_ / "models");
  const H::Response outside =
      send("PUT", "/v1/collections/outside", {{"model", (dir_ / "ok.model").string()}});
  EXPECT_EQ(outside.status, 400) << outside.body;
  fs::copy_file(dir_ / "ok.model", dir_ / "models" / "ok.model");
  EXPECT_EQ(send("PUT", "/v1/collections/inside", {{"model", "ok.model"}}).status, 201);
  EXPECT_EQ(send("PUT", "/v1/collections/escape", {{"model", "../ok.model"}}).status, 400);
}

// A crash between the steps of a restore --force lost the collection or its
// snapshots. Every state the steps can leave is finished by the next open: the name holds the
// restored copy and every snapshot of the replaced collection.
TEST_F(CollectionsTest, EveryInterruptedRestoreIsFinishedAtTheNextOpen) {
  fill("r", 20, 9);
  const std::string id = js(send("POST", "/v1/collections/r/snapshots"))["id"];
  const std::string id2 = js(send("POST", "/v1/collections/r/snapshots"))["id"];
  ASSERT_EQ(send("POST", "/v1/collections/r/items",
                 json::array({{{"key", "late"}, {"code", "ffffffff"}}}))
                .status,
            200);
  router_.reset();
  catalog_.reset();
  const fs::path dd(data_dir_);
  // The steps of finish_restore, cut after each: 0 = only the intent record written.
  for (int steps = 0; steps <= 3; ++steps) {
    ASSERT_TRUE(Q::restore_snapshot(data_dir_, "r", id, "copy", false).is_ok());
    fs::create_directories(dd / ".r.partial");
    fs::copy(dd / "copy" / "store", dd / ".r.partial" / "store", fs::copy_options::recursive);
    fs::remove_all(dd / "copy");
    std::ofstream(dd / ".r.restoring") << "restore r " << id << "\n";
    if (steps >= 1) fs::rename(dd / "r" / "snapshots", dd / ".r.partial" / "snapshots");
    if (steps >= 2) fs::rename(dd / "r", dd / ".r.replaced");
    if (steps >= 3) fs::rename(dd / ".r.partial", dd / "r");
    auto reopened = Q::Catalog::open(data_dir_);
    ASSERT_TRUE(reopened.is_ok()) << steps << ": " << reopened.status().to_string();
    auto c = (*reopened)->find("r");
    ASSERT_NE(c, nullptr) << steps;
    EXPECT_EQ(c->engine().info().items, 20u) << steps;  // the snapshot's items, not "late"
    auto snaps = (*reopened)->snapshots("r");
    ASSERT_TRUE(snaps.is_ok());
    ASSERT_EQ(snaps->size(), 2u) << steps;
    EXPECT_EQ((*snaps)[0].id, id);
    EXPECT_EQ((*snaps)[1].id, id2);
    for (const auto& entry : fs::directory_iterator(dd)) {
      if (entry.path().filename() == ".imsat-lock") continue;  // the directory's lock
      EXPECT_NE(entry.path().filename().string()[0], '.') << steps << ": " << entry.path();
    }
    // Back to the state with "late", for the next round.
    reopened->reset();
    ASSERT_TRUE(Q::restore_snapshot(data_dir_, "r", id2, "r", true).is_ok());
  }
}

// A snapshot deleted halfway was still listed. The delete renames it out of the
// list first; what a crash leaves of it is removed at the next open, as are the leftovers of
// interrupted creates, snapshots and uploads.
TEST_F(CollectionsTest, LeftoversOfInterruptedWorkAreRemovedAtOpen) {
  fill("d", 10, 4);
  const std::string id = js(send("POST", "/v1/collections/d/snapshots"))["id"];
  router_.reset();
  catalog_.reset();
  const fs::path dd(data_dir_);
  const fs::path snaps = dd / "d" / "snapshots";
  fs::rename(snaps / id, snaps / ("." + id + ".deleting"));  // a delete cut short
  fs::create_directories(snaps / "20260101T000000Z-000.partial" / "store");
  fs::create_directories(dd / ".new.partial" / "store");
  std::ofstream(dd / ".up.upload") << "model bytes";
  fs::create_directories(dd / ".old.replaced");
  auto reopened = Q::Catalog::open(data_dir_);
  ASSERT_TRUE(reopened.is_ok()) << reopened.status().to_string();
  auto list = (*reopened)->snapshots("d");
  ASSERT_TRUE(list.is_ok());
  EXPECT_TRUE(list->empty());
  EXPECT_EQ(std::distance(fs::directory_iterator(snaps), fs::directory_iterator()), 0);
  for (const auto& entry : fs::directory_iterator(dd)) {
    if (entry.path().filename() == ".imsat-lock") continue;  // the directory's lock
    EXPECT_EQ(entry.path().filename(), "d") << entry.path();
  }
  EXPECT_EQ((*reopened)->find("d")->engine().info().items, 10u);
}

// Large filters and large scroll pages ran on the I/O threads, where
// they held up ordinary searches. They are heavy requests now (the heavy pool, 503 beyond its
// slots), and a filter beyond max_filter_terms is refused naming the limit.
TEST_F(CollectionsTest, LargeFiltersAndScrollPagesAreHeavyAndFilterSizeIsCapped) {
  fill("h", 50, 2);
  auto request = [](const std::string& method, const std::string& target, const std::string& body) {
    H::Request r;
    r.method = method;
    r.target = target;
    r.body = body;
    r.headers["content-type"] = "application/json";
    r.headers["authorization"] = "Bearer secret";
    return r;
  };
  std::string values = "\"red\"";
  for (int i = 0; i < 9000; ++i) values += ", \"c" + std::to_string(i) + "\"";
  const std::string big =
      R"({"filter": {"must": [{"key": "color", "match_any": [)" + values + "]}]}}";
  const std::string small = R"({"filter": {"must": [{"key": "color", "match": "red"}]}})";
  for (const char* target : {"/v1/collections/h/items/count", "/v1/collections/h/items/scroll"}) {
    EXPECT_TRUE(router_->is_heavy(request("POST", target, big))) << target;
    EXPECT_FALSE(router_->is_heavy(request("POST", target, small))) << target;
  }
  EXPECT_TRUE(router_->is_heavy(request("GET", "/v1/collections/h/items?limit=5000", "")));
  EXPECT_FALSE(router_->is_heavy(request("GET", "/v1/collections/h/items?limit=100", "")));
  EXPECT_TRUE(
      router_->is_heavy(request("POST", "/v1/collections/h/items/scroll", R"({"limit": 5000})")));
  EXPECT_FALSE(
      router_->is_heavy(request("POST", "/v1/collections/h/items/scroll", R"({"limit": 50})")));
  // The heavy count gives the same answer as the small one.
  const auto counted = router_->handle(request("POST", "/v1/collections/h/items/count", big));
  ASSERT_EQ(counted.status, 200) << counted.body;
  EXPECT_EQ(js(counted)["count"],
            js(router_->handle(request("POST", "/v1/collections/h/items/count", small)))["count"]);
  for (int i = 9000; i < 10500; ++i) values += ", \"c" + std::to_string(i) + "\"";
  const auto refused = router_->handle(
      request("POST", "/v1/collections/h/items/count",
              R"({"filter": {"must": [{"key": "color", "match_any": [)" + values + "]}]}}"));
  EXPECT_EQ(refused.status, 400);
  EXPECT_NE(refused.body.find("max_filter_terms"), std::string::npos) << refused.body;
}

// A restore --force under a server replaced the folder the server was writing, losing its writes:
// the data directory's lock keeps a second Catalog and a forced restore out while one is open;
// a restore under a new name may run beside it.
TEST_F(CollectionsTest, TheDataDirectoryIsLockedWhileACatalogHoldsIt) {
  fill("l", 10, 1);
  const std::string id = js(send("POST", "/v1/collections/l/snapshots"))["id"];
  auto second = Q::Catalog::open(data_dir_);
  ASSERT_FALSE(second.is_ok());
  EXPECT_NE(second.status().message().find("in use by another imsat process"), std::string::npos)
      << second.status().message();
  const imsat::Status forced = Q::restore_snapshot(data_dir_, "l", id, "l", true);
  EXPECT_EQ(forced.code(), imsat::Status::Code::kInvalidArgument) << forced.to_string();
  EXPECT_TRUE(Q::restore_snapshot(data_dir_, "l", id, "l_copy", false).is_ok());
  router_.reset();
  catalog_.reset();
  EXPECT_TRUE(Q::restore_snapshot(data_dir_, "l", id, "l", true).is_ok());
  auto reopened = Q::Catalog::open(data_dir_);
  ASSERT_TRUE(reopened.is_ok()) << reopened.status().to_string();
  EXPECT_NE((*reopened)->find("l_copy"), nullptr);
}

TEST_F(CollectionsTest, OpenApiDescribesExactlyTheRoutes) {
  fill("o", 5, 7);
  auto r = send("GET", "/openapi.json", {}, false);
  ASSERT_EQ(r.status, 200);
  const json doc = js(r);
  std::set<std::string> described, ids;
  for (auto p = doc["paths"].begin(); p != doc["paths"].end(); ++p) {
    for (auto m = p->begin(); m != p->end(); ++m) {
      if (m.key() == "parameters" || m.key() == "summary") continue;  // path-level fields
      std::string method = m.key();
      for (char& ch : method) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
      described.insert(method + " " + p.key());
      ASSERT_TRUE(m->contains("operationId")) << p.key();
      EXPECT_TRUE(ids.insert((*m)["operationId"].get<std::string>()).second)
          << "duplicate operationId " << (*m)["operationId"];
      // Dispatch it, with every {parameter} filled in: the router knows the path and method.
      std::string target = p.key();
      for (size_t at; (at = target.find('{')) != std::string::npos;) {
        const size_t end = target.find('}', at);
        const std::string param = target.substr(at + 1, end - at - 1);
        target.replace(at, end - at + 1, param == "collection" ? "o" : "x");
      }
      const H::Response answer = send(method, target, {}, true);
      EXPECT_NE(code_of(answer), "unknown_endpoint") << method << " " << target;
      EXPECT_NE(answer.status, 405) << method << " " << target;
    }
  }
  std::set<std::string> routes;
  for (const auto& e : imsat::http::internal::endpoints()) {
    routes.insert(std::string(e.route->method) + " " + e.pattern);
  }
  EXPECT_EQ(described, routes);
}

}  // namespace
