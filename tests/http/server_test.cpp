// The HTTP service through a real Beast client over 127.0.0.1: every endpoint's success path, bad
// requests (each answered with a 4xx JSON error while the server keeps answering and the data stays
// unchanged), authentication, and concurrent writers and readers.
#include <gtest/gtest.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "http/http.h"
#include "http/http_internal.h"
#include "support/png.h"
#include "support/temp_dir_test.h"

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
using tcp = asio::ip::tcp;
using json = nlohmann::json;
namespace I = imsat::index;
namespace L = imsat::learn;
namespace Q = imsat::query;

struct Reply {
  int status = 0;
  std::string content_type;
  std::string body;
  json js() const { return json::parse(body, nullptr, false); }
};

Reply call(uint16_t port, bhttp::verb method, const std::string& target,
           const std::string& body = "", const std::string& content_type = "application/json",
           const std::string& token = "") {
  asio::io_context ioc;
  tcp::resolver resolver(ioc);
  beast::tcp_stream stream(ioc);
  stream.connect(resolver.resolve("127.0.0.1", std::to_string(port)));
  bhttp::request<bhttp::string_body> req(method, target, 11);
  req.set(bhttp::field::host, "127.0.0.1");
  if (!body.empty() || method == bhttp::verb::post)
    req.set(bhttp::field::content_type, content_type);
  if (!token.empty()) req.set(bhttp::field::authorization, "Bearer " + token);
  req.body() = body;
  req.prepare_payload();
  bhttp::write(stream, req);
  beast::flat_buffer buffer;
  bhttp::response<bhttp::string_body> res;
  beast::error_code ec;
  bhttp::read(stream, buffer, res, ec);
  Reply r;
  if (ec) return r;
  r.status = static_cast<int>(res.result_int());
  r.content_type = std::string(res[bhttp::field::content_type]);
  r.body = res.body();
  stream.socket().shutdown(tcp::socket::shutdown_both, ec);
  return r;
}

using imsat::testing::png;

// 4 x 4 "images" in three groups (dark, mid, bright with noise), labelled by group.
L::Dataset images(size_t n, uint64_t seed) {
  L::Dataset d;
  d.rows = n;
  d.cols = 16;
  d.item_shape = {4, 4};
  d.uint8_pixels = true;
  std::mt19937 rng(static_cast<uint32_t>(seed));
  std::uniform_int_distribution<int> noise(-20, 20);
  for (size_t i = 0; i < n; ++i) {
    const int group = static_cast<int>(i % 3);
    for (int p = 0; p < 16; ++p) {
      const int base = group == 0 ? 30 : group == 1 ? ((p % 2) ? 220 : 30) : 220;
      d.values.push_back(static_cast<float>(std::clamp(base + noise(rng), 0, 255)));
    }
    d.labels.push_back(group);
  }
  return d;
}

class ServerTest : public imsat::testing::TempDirTest {
 protected:
  void SetUp() override {
    TempDirTest::SetUp();
    data_ = images(300, 1);
    L::TrainConfig c;
    c.method = L::Method::kItq;
    c.bits = 16;
    auto model = L::train(data_, c);
    ASSERT_TRUE(model.is_ok()) << model.status().to_string();
    auto codes = model->encode(data_);
    ASSERT_TRUE(codes.is_ok());
    I::StoreOptions o;
    o.bits = 16;
    o.model_fingerprint = model->fingerprint();
    auto store = I::CodeStore::open((dir_ / "db").string(), o);
    ASSERT_TRUE(store.is_ok());
    Q::ItemOptions options;
    options.with_vectors = true;
    const std::vector<I::Item> items = Q::dataset_items(data_, *codes, 16, options);
    ASSERT_TRUE((*store)->put(items).is_ok());
    auto engine = Q::QueryEngine::create(std::move(store).value(),
                                         std::make_unique<L::Model>(std::move(model).value()));
    ASSERT_TRUE(engine.is_ok());
    engine_ = std::move(engine).value();
    ASSERT_TRUE(engine_->cache_vectors().is_ok());
    // Searches by vector go through the model pool and share model calls in every test here.
    Q::EncodeBatchOptions batching;
    batching.max_batch = 8;
    engine_->set_encode_batching(batching);
    imsat::http::ServerOptions so;
    so.model_threads = 4;
    so.port = 0;
    so.threads = 2;
    so.token = "secret";
    so.limits.max_body_bytes = 64 * 1024;
    so.limits.read_timeout_seconds = 2;
    auto server = imsat::http::Server::start(*engine_, so);
    ASSERT_TRUE(server.is_ok()) << server.status().to_string();
    server_ = std::move(server).value();
    port_ = server_->port();
    ASSERT_NE(port_, 0);
  }
  void TearDown() override {
    server_.reset();
    engine_.reset();
    TempDirTest::TearDown();
  }
  Reply post(const std::string& target, const std::string& body,
             const std::string& type = "application/json", const std::string& token = "") {
    return call(port_, bhttp::verb::post, target, body, type, token);
  }
  Reply get(const std::string& target) { return call(port_, bhttp::verb::get, target); }
  size_t items() { return get("/v1/info").js()["items"].get<size_t>(); }
  std::string vector_json(size_t row) {
    return json(std::vector<float>(data_.row(row), data_.row(row) + 16)).dump();
  }

  L::Dataset data_;
  std::unique_ptr<Q::QueryEngine> engine_;
  std::unique_ptr<imsat::http::Server> server_;
  uint16_t port_ = 0;
};

// The search body's fast path: the top-level vector read without the JSON DOM, exactly as the
// full parse reads it, and every other shape left to the full parse.
TEST(TakeVectorArray, ReadsTheTopLevelVectorAsTheFullParseDoes) {
  namespace H = imsat::http::internal;
  std::vector<double> v;
  std::string rest;
  ASSERT_TRUE(H::take_vector_array(" {\"vector\" : [1, -2.5e1,0.5 ,\n3E+2], \"k\": 3}", &v, &rest));
  EXPECT_EQ(v, (std::vector<double>{1, -25, 0.5, 300}));
  EXPECT_EQ(json::parse(rest), json::parse(R"({"vector": [], "k": 3})"));
  // A string holding the key's text, an escaped quote before it.
  ASSERT_TRUE(H::take_vector_array(R"({"key": "a\"vector\":[9]", "vector": [2]})", &v, &rest));
  EXPECT_EQ(v, std::vector<double>{2});
  EXPECT_EQ(json::parse(rest)["key"], "a\"vector\":[9]");
  // Random floats as a client prints them: the same floats as through the DOM.
  std::mt19937 rng(3);
  std::normal_distribution<float> normal(0, 100);
  std::string text = "{\"vector\": [";
  for (int i = 0; i < 300; ++i) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%s%.9g", i ? ", " : "", normal(rng) * (i % 7 ? 1 : 1e-20f));
    text += buf;
  }
  text += std::string("], \"k\": 1, \"filter\": {\"must\": [{\"key\": \"x\", \"match\": 1}]}}");
  ASSERT_TRUE(H::take_vector_array(text, &v, &rest));
  EXPECT_EQ(H::check_vector(v, 300), H::get_vector(json::parse(text)["vector"], 300));
  // Integers (pixel values) are read digit by digit: the same values as the DOM's, to 15 digits.
  const std::string ints =
      R"({"vector": [0, 255, -17, 7, 123456789012345, -12345678901234, -0, 10]})";
  ASSERT_TRUE(H::take_vector_array(ints, &v, &rest));
  EXPECT_EQ(v, (std::vector<double>{0, 255, -17, 7, 123456789012345.0, -12345678901234.0, 0, 10}));
  EXPECT_EQ(H::check_vector(v, 8), H::get_vector(json::parse(ints)["vector"], 8));
  // Left to the full parse: no top-level vector, nested ones, other value types, numbers JSON
  // does not allow, long integers, an empty array, a second vector, an unfinished body.
  for (const char* other :
       {R"({"code": "ab"})", R"({"filter": {"vector": [1]}, "code": "ab"})",
        R"({"key": "vector", "k": 1})", R"({"vector": "1, 2"})", R"({"vector": [[1]]})",
        R"({"vector": [01]})", R"({"vector": [1.]})", R"({"vector": [+1]})", R"({"vector": [.5]})",
        R"({"vector": [1e]})", R"({"vector": [-]})", R"({"vector": [NaN]})",
        R"({"vector": [1234567890123456]})", R"({"vector": []})", R"({"vector": [1,]})",
        R"({"vector": [1], "vector": [2]})", R"({"vector": [1, 2)", R"([{"vector": [1]}])",
        R"({"vector": [1e999]})"}) {
    EXPECT_FALSE(H::take_vector_array(other, &v, &rest)) << other;
  }
}

TEST_F(ServerTest, EveryEndpointAnswers) {
  EXPECT_EQ(get("/healthz").js()["status"], "ok");
  json info = get("/v1/info").js();
  EXPECT_EQ(info["items"], 300);
  EXPECT_EQ(info["bits"], 16);
  EXPECT_EQ(info["model"]["method"], "itq");
  EXPECT_EQ(info["cached_vectors"], 300);

  Reply by_key = post("/v1/search", R"({"key": "4", "k": 5, "explain": true})");
  ASSERT_EQ(by_key.status, 200) << by_key.body;
  json r = by_key.js();
  ASSERT_EQ(r["hits"].size(), 5u);
  EXPECT_EQ(r["hits"][0]["distance"], 0);  // item 4 itself or an item with the same code
  EXPECT_EQ(r["hits"][0]["metadata"]["row"], std::stoi(r["hits"][0]["key"].get<std::string>()));
  EXPECT_TRUE(r["explain"].contains("candidates_verified"));
  for (const auto& h : r["hits"]) EXPECT_EQ(h["label"], 1);  // item 4 is in group 1

  Reply by_code = post("/v1/search", json{{"code", r["code"]}, {"radius", 0}}.dump());
  ASSERT_EQ(by_code.status, 200);
  const json code_hits = by_code.js()["hits"];  // a range-for over js()[...] would dangle
  for (const auto& h : code_hits) EXPECT_EQ(h["distance"], 0);

  Reply by_vector =
      post("/v1/search", R"({"vector": )" + vector_json(7) +
                             R"(, "k": 3, "rerank": "exact", "filter": {"label": 1}})");
  ASSERT_EQ(by_vector.status, 200) << by_vector.body;
  EXPECT_EQ(by_vector.js()["hits"][0]["key"], "7") << by_vector.body;
  EXPECT_EQ(by_vector.js()["hits"][0]["score"], 0.0);

  Reply batch = post("/v1/search", R"({"queries": [{"key": "1"}, {"key": "2"}], "k": 2})");
  ASSERT_EQ(batch.status, 200);
  EXPECT_EQ(batch.js()["results"].size(), 2u);
  // A batch mixing the three kinds of query (searched together) answers as each query alone.
  const std::string code7 = post("/v1/search", R"({"key": "7", "k": 1})").js()["code"];
  const std::vector<std::string> kinds = {R"({"key": "3"})", R"({"code": ")" + code7 + R"("})",
                                          R"({"vector": )" + vector_json(5) + "}"};
  Reply mixed = post(
      "/v1/search", R"({"k": 4, "queries": [)" + kinds[0] + "," + kinds[1] + "," + kinds[2] + "]}");
  ASSERT_EQ(mixed.status, 200) << mixed.body;
  for (size_t i = 0; i < kinds.size(); ++i) {
    json alone = json::parse(kinds[i]);
    alone["k"] = 4;
    Reply single = post("/v1/search", alone.dump());
    ASSERT_EQ(single.status, 200) << single.body;
    EXPECT_EQ(mixed.js()["results"][i]["hits"], single.js()["hits"]) << kinds[i];
    EXPECT_EQ(mixed.js()["results"][i]["code"], single.js()["code"]) << kinds[i];
  }
  Reply missing = post("/v1/search", R"({"k": 4, "queries": [{"key": "3"}, {"key": "nope"}]})");
  EXPECT_EQ(missing.status, 404) << missing.body;

  std::vector<unsigned char> bright(16, 230);
  Reply by_image = post("/v1/search/image?k=4", png(4, 4, 1, bright), "image/png");
  ASSERT_EQ(by_image.status, 200) << by_image.body;
  const json image_hits = by_image.js()["hits"];
  for (const auto& h : image_hits) EXPECT_EQ(h["label"], 2);
  // The same image as the file of a multipart form, with k as a form field: the same answer.
  const std::string boundary = "b0und4ry";
  const std::string form =
      "--" + boundary + "\r\nContent-Disposition: form-data; name=\"k\"\r\n\r\n4\r\n--" + boundary +
      "\r\nContent-Disposition: form-data; name=\"image\"; "
      "filename=\"q.png\"\r\nContent-Type: image/png\r\n\r\n" +
      png(4, 4, 1, bright) + "\r\n--" + boundary + "--\r\n";
  Reply by_form = post("/v1/search/image", form, "multipart/form-data; boundary=" + boundary);
  ASSERT_EQ(by_form.status, 200) << by_form.body;
  EXPECT_EQ(by_form.js()["hits"], image_hits);
  EXPECT_EQ(post("/v1/search/image?k=4", form, "multipart/form-data; boundary=" + boundary).status,
            400);  // k twice

  Reply item = get("/v1/items/9");
  ASSERT_EQ(item.status, 200);
  EXPECT_EQ(item.js()["label"], 0);
  EXPECT_TRUE(item.js()["has_vector"].get<bool>());
  Reply image = get("/v1/items/9/image");
  ASSERT_EQ(image.status, 200);
  EXPECT_EQ(image.content_type, "image/png");
  EXPECT_EQ(image.body.substr(1, 3), "PNG");

  Reply added = post("/v1/items",
                     json::array({{{"key", "new-1"},
                                   {"vector", json::parse(vector_json(5))},
                                   {"label", 2},
                                   {"metadata", {{"source", "test"}}}},
                                  {{"key", "new-2"}, {"code", "00ff"}}})
                         .dump(),
                     "application/json", "secret");
  ASSERT_EQ(added.status, 200) << added.body;
  EXPECT_EQ(added.js()["items"], 302);
  Reply ndjson =
      post("/v1/items",
           "{\"key\": \"nd-1\", \"code\": \"0f0f\"}\n\n{\"key\": \"nd-2\", \"code\": \"f0f0\"}\n",
           "application/x-ndjson", "secret");
  ASSERT_EQ(ndjson.status, 200) << ndjson.body;
  EXPECT_EQ(items(), 304u);
  EXPECT_EQ(get("/v1/items/new-1").js()["metadata"]["source"], "test");
  Reply deleted = call(port_, bhttp::verb::delete_, "/v1/items/nd-2", "", "", "secret");
  ASSERT_EQ(deleted.status, 200) << deleted.body;
  EXPECT_EQ(get("/v1/items/nd-2").status, 404);

  Reply eval = post("/v1/evaluate", R"({"queries_per_class": 10})", "application/json", "secret");
  ASSERT_EQ(eval.status, 200) << eval.body;
  EXPECT_GT(eval.js()["map"].get<double>(), 0.5);  // three well separated groups
  EXPECT_EQ(eval.js()["queries"], 30);

  json health = get("/v1/health/codes").js();
  EXPECT_EQ(health["bit_entropy"].size(), 16u);
  EXPECT_TRUE(health.contains("max_pairwise_mi"));

  Reply metrics = get("/metrics");
  EXPECT_NE(metrics.body.find("imsat_http_requests_total{route=\"search\",status=\"200\"}"),
            std::string::npos);
  EXPECT_NE(metrics.body.find("imsat_http_request_duration_seconds_bucket"), std::string::npos);
  EXPECT_NE(metrics.body.find("imsat_index_items 303"), std::string::npos);

  json api = get("/openapi.json").js();
  ASSERT_TRUE(api.contains("paths"));
  for (const char* p : {"/v1/search", "/v1/search/image", "/v1/items", "/v1/items/{key}",
                        "/v1/evaluate", "/v1/info", "/v1/health/codes", "/healthz", "/metrics"}) {
    EXPECT_TRUE(api["paths"].contains(p)) << p;
  }
  Reply page = get("/");
  EXPECT_EQ(page.content_type, "text/html; charset=utf-8");
  EXPECT_NE(page.body.find("<canvas"), std::string::npos);
}

// Images are added as a raw body or a multipart form, encoded through the model's
// pipeline (the same code as a search by that image), keep a thumbnail, and bad uploads change
// nothing.
TEST_F(ServerTest, ImagesAreAddedRawOrAsAFormAndKeepAThumbnail) {
  std::vector<unsigned char> mid(16);
  for (int p = 0; p < 16; ++p) mid[static_cast<size_t>(p)] = (p % 2) ? 220 : 30;
  const std::string picture = png(4, 4, 1, mid);
  const size_t before = items();
  Reply raw = post("/v1/items?key=photo%201&label=1&metadata=%7B%22shop%22%3A%22x%22%7D", picture,
                   "image/png", "secret");
  ASSERT_EQ(raw.status, 200) << raw.body;
  EXPECT_EQ(items(), before + 1);
  Reply stored = get("/v1/items/photo%201");
  ASSERT_EQ(stored.status, 200) << stored.body;
  EXPECT_EQ(stored.js()["label"], 1);
  EXPECT_EQ(stored.js()["metadata"]["shop"], "x");
  Reply same = post("/v1/search/image?k=1", picture, "image/png");
  ASSERT_EQ(same.status, 200) << same.body;
  EXPECT_EQ(same.js()["code"], stored.js()["code"]);
  Reply thumb = get("/v1/items/photo%201/image");
  ASSERT_EQ(thumb.status, 200);
  EXPECT_EQ(thumb.content_type, "image/jpeg");
  EXPECT_EQ(thumb.body.substr(0, 3), "\xff\xd8\xff");

  const std::string boundary = "b0UnDaRy";
  auto part = [&](const std::string& headers, const std::string& body) {
    return "--" + boundary + "\r\n" + headers + "\r\n\r\n" + body + "\r\n";
  };
  const std::string form =
      part(
          "Content-Disposition: form-data; name=\"file\"; filename=\"a.png\"\r\n"
          "Content-Type: image/png",
          picture) +
      part("Content-Disposition: form-data; name=\"file\"; filename=\"b.png\"",
           png(4, 4, 1, std::vector<unsigned char>(16, 225))) +
      part("Content-Disposition: form-data; name=\"label\"", "2") + "--" + boundary + "--\r\n";
  const std::string multipart = "multipart/form-data; boundary=" + boundary;
  Reply added = post("/v1/items", form, multipart, "secret");
  ASSERT_EQ(added.status, 200) << added.body;
  EXPECT_EQ(added.js()["added"], 2);
  EXPECT_EQ(get("/v1/items/a.png").js()["label"], 2);
  EXPECT_EQ(get("/v1/items/b.png").js()["label"], 2);
  const size_t after = items();

  auto refused = [&](const std::string& body, const std::string& type, int status,
                     const std::string& needle) {
    Reply r = post("/v1/items?key=bad", body, type, "secret");
    EXPECT_EQ(r.status, status) << r.body;
    EXPECT_NE(r.js().value("error", "").find(needle), std::string::npos) << r.body;
    EXPECT_EQ(items(), after);
  };
  refused("plain words", "image/png", 400, "not an image");
  refused(picture.substr(0, picture.size() / 2), "image/png", 400, "cannot decode");
  refused(picture, "text/plain", 415, "multipart/form-data");
  refused(form, "multipart/form-data", 400, "boundary");
  refused(form.substr(0, form.size() / 2), multipart, 400, "malformed multipart body");
  const std::string two_keys =
      part("Content-Disposition: form-data; name=\"file\"; filename=\"c.png\"", picture) +
      part("Content-Disposition: form-data; name=\"key\"", "k1") +
      part("Content-Disposition: form-data; name=\"key\"", "k2") + "--" + boundary + "--\r\n";
  refused(two_keys, multipart, 400, "2 'key' fields for 1 files");
  // A good file beside a bad one: nothing is written.
  const std::string mixed =
      part("Content-Disposition: form-data; name=\"file\"; filename=\"ok.png\"", picture) +
      part("Content-Disposition: form-data; name=\"file\"; filename=\"no.png\"", "junk") + "--" +
      boundary + "--\r\n";
  refused(mixed, multipart, 400, "item 1");
  EXPECT_EQ(get("/v1/items/ok.png").status, 404);
}

TEST_F(ServerTest, BadRequestsGetAJsonErrorAndChangeNothing) {
  const std::string probe = R"({"key": "10", "k": 8})";
  const std::string before = post("/v1/search", probe).body;
  auto expect_error = [&](const Reply& r, int status, const std::string& needle) {
    EXPECT_EQ(r.status, status) << r.body;
    json j = r.js();
    ASSERT_TRUE(j.is_object()) << r.body;
    EXPECT_NE(j.value("error", "").find(needle), std::string::npos) << r.body;
    EXPECT_EQ(get("/healthz").status, 200);
    EXPECT_EQ(items(), 300u);
    EXPECT_EQ(post("/v1/search", probe).body, before);
  };
  expect_error(post("/v1/search", "{\"key\": "), 400, "malformed JSON");
  expect_error(post("/v1/search", std::string(40, '[') + std::string(40, ']')), 400, "deeper");
  expect_error(post("/v1/search", R"({"vector": [1, 2, 3]})"), 400, "model expects 16");
  expect_error(
      post("/v1/search", R"({"vector": [1e39, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]})"), 400,
      "not a finite");
  expect_error(post("/v1/search", R"({"vector": [NaN]})"), 400, "malformed JSON");
  expect_error(post("/v1/search", R"({"key": "no-such-key"})"), 404, "no-such-key");
  expect_error(post("/v1/search", R"({"code": "xyz1"})"), 400, "non-hex");
  expect_error(post("/v1/search", R"({"key": "1", "k": 100000})"), 400, "limit");
  expect_error(post("/v1/search", R"({"key": "1", "code": "0000"})"), 400, "exactly one");
  expect_error(post("/v1/search", R"({"key": "1"})", "text/plain"), 415, "application/json");
  expect_error(post("/v1/search", "{\"key\": \"" + std::string(70000, 'a') + "\"}"), 413,
               "exceeds");
  expect_error(post("/v1/search/image", "\x89PNG\r\n\x1a\n truncated", "image/png"), 400,
               "cannot decode");
  expect_error(post("/v1/search/image", "abc", "application/json"), 415, "multipart/form-data");
  expect_error(get("/v1/nothing"), 404, "no such endpoint");
  expect_error(call(port_, bhttp::verb::put, "/v1/search", "{}"), 405, "not allowed");
  // Writes: missing and wrong tokens, then bad items with a good token; nothing is written.
  const std::string good = R"([{"key": "x", "code": "0000"}])";
  expect_error(post("/v1/items", good), 401, "Bearer");
  expect_error(post("/v1/items", good, "application/json", "wrong"), 401, "wrong token");
  expect_error(call(port_, bhttp::verb::delete_, "/v1/items/1"), 401, "Bearer");
  expect_error(post("/v1/evaluate", "{}"), 401, "Bearer");
  expect_error(post("/v1/items", R"([{"key": "ok", "code": "0000"}, {"key": "bad", "code": "00"}])",
                    "application/json", "secret"),
               400, "item 1");
  expect_error(
      post("/v1/items", R"([{"key": "v", "vector": [1, 2]}])", "application/json", "secret"), 400,
      "model expects 16");
  expect_error(post("/v1/items", "{\"key\": \"a\", \"code\": \"0000\"}\n{broken\n",
                    "application/x-ndjson", "secret"),
               400, "line 2");
  expect_error(post("/v1/items", "[]", "application/json", "secret"), 400, "no items");
  expect_error(call(port_, bhttp::verb::delete_, "/v1/items/no-such", "", "", "secret"), 404,
               "no-such");
  EXPECT_EQ(get("/v1/items/ok").status, 404);  // the good item of the rejected batch
  // A raw malformed request line still gets an HTTP answer, and the server keeps serving.
  {
    asio::io_context ioc;
    tcp::socket s(ioc);
    s.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port_));
    const std::string garbage = "NOT AN HTTP REQUEST\r\n\r\n";
    asio::write(s, asio::buffer(garbage));
    beast::flat_buffer buffer;
    bhttp::response<bhttp::string_body> res;
    beast::error_code ec;
    bhttp::read(s, buffer, res, ec);
    EXPECT_FALSE(ec) << ec.message();
    EXPECT_EQ(res.result_int(), 400u);
  }
  EXPECT_EQ(get("/healthz").status, 200);
}

TEST_F(ServerTest, AnswersExpect100ContinueBeforeTheBody) {
  asio::io_context ioc;
  tcp::socket s(ioc);
  s.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port_));
  const std::string body = R"({"key": "3", "k": 2})";
  const std::string head =
      "POST /v1/search HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
      "Expect: 100-continue\r\nContent-Length: " +
      std::to_string(body.size()) + "\r\n\r\n";
  asio::write(s, asio::buffer(head));
  std::string interim;
  asio::read_until(s, asio::dynamic_buffer(interim), "\r\n\r\n");
  EXPECT_EQ(interim.rfind("HTTP/1.1 100 Continue", 0), 0u) << interim;
  asio::write(s, asio::buffer(body));
  beast::flat_buffer buffer;
  bhttp::response<bhttp::string_body> res;
  bhttp::read(s, buffer, res);
  EXPECT_EQ(res.result_int(), 200u);
  EXPECT_EQ(json::parse(res.body())["hits"].size(), 2u);
}

// Bodies were read and parsed before the token was checked, so a client
// without the token could make the server read and parse megabytes. The 401 now comes from the
// headers alone: here the body is never sent, and the answer arrives anyway (it used to wait for
// the body until the read timeout). With "Expect: 100-continue" no 100 is sent first.
TEST_F(ServerTest, AWriteWithoutTheTokenIsRefusedBeforeItsBodyIsRead) {
  for (const bool expect_continue : {false, true}) {
    asio::io_context ioc;
    tcp::socket s(ioc);
    s.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port_));
    const std::string head = std::string("POST /v1/items HTTP/1.1\r\nHost: x\r\n") +
                             "Content-Type: application/json\r\nContent-Length: 60000\r\n" +
                             (expect_continue ? "Expect: 100-continue\r\n" : "") + "\r\n";
    asio::write(s, asio::buffer(head));
    beast::flat_buffer buffer;
    bhttp::response<bhttp::string_body> res;
    beast::error_code ec;
    // A server waiting for the body would close the connection at its read timeout without an
    // answer, and this read would fail.
    bhttp::read(s, buffer, res, ec);
    ASSERT_FALSE(ec) << ec.message();
    EXPECT_EQ(res.result_int(), 401u) << res.body();
    EXPECT_NE(res.body().find("Bearer"), std::string::npos);
  }
  // With the token the same request goes on to its body.
  EXPECT_EQ(
      post("/v1/items", R"([{"key": "t1", "code": "0000"}])", "application/json", "secret").status,
      200);
}

// Idle connections up to the descriptor limit left the accept loop spinning and
// nothing new answered. At the connection cap a new connection closes the oldest idle one.
TEST_F(ServerTest, AtTheConnectionCapTheOldestIdleConnectionMakesRoom) {
  imsat::http::ServerOptions so;
  so.port = 0;
  so.max_connections = 4;
  so.limits.read_timeout_seconds = 30;
  auto server = imsat::http::Server::start(*engine_, so);
  ASSERT_TRUE(server.is_ok()) << server.status().to_string();
  const uint16_t port = (*server)->port();
  asio::io_context ioc;
  std::vector<std::unique_ptr<tcp::socket>> idle;
  for (int i = 0; i < 4; ++i) {
    idle.push_back(std::make_unique<tcp::socket>(ioc));
    idle.back()->connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
    // One answered request: the server has accepted this connection (after the ones before it),
    // and it is idle again, waiting for the next request.
    const std::string ping = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
    asio::write(*idle.back(), asio::buffer(ping));
    beast::flat_buffer buffer;
    bhttp::response<bhttp::string_body> res;
    bhttp::read(*idle.back(), buffer, res);
    ASSERT_EQ(res.result_int(), 200u);
  }
  for (int round = 0; round < 3; ++round) {
    const Reply r = call(port, bhttp::verb::get, "/healthz", "", "", "");
    EXPECT_EQ(r.status, 200) << round;
  }
  // The oldest idle connection was closed to make room: reading it ends at once.
  char byte;
  beast::error_code ec;
  idle.front()->read_some(asio::buffer(&byte, 1), ec);
  EXPECT_EQ(ec, asio::error::eof) << ec.message();
}

// A body in a transfer coding other than chunked (gzip, or one nobody knows) was
// accepted with 200. RFC 9112 asks for 501.
TEST_F(ServerTest, UnknownTransferCodingsGet501) {
  for (const std::string coding : {"gzip", "gzip, chunked", "x-unknown"}) {
    asio::io_context ioc;
    tcp::socket s(ioc);
    s.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port_));
    const std::string head =
        "POST /v1/search HTTP/1.1\r\nHost: x\r\nContent-Type: "
        "application/json\r\nTransfer-Encoding: " +
        coding + "\r\n\r\n";
    asio::write(s, asio::buffer(head));
    beast::flat_buffer buffer;
    bhttp::response<bhttp::string_body> res;
    beast::error_code ec;
    bhttp::read(s, buffer, res, ec);
    ASSERT_FALSE(ec) << coding << ": " << ec.message();
    EXPECT_EQ(res.result_int(), 501u) << coding;
    EXPECT_NE(res.body().find("Transfer-Encoding"), std::string::npos) << res.body();
  }
  // Chunked bodies are understood.
  asio::io_context ioc;
  tcp::socket s(ioc);
  s.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port_));
  const std::string body = R"({"key": "3", "k": 2})";
  char size[16];
  std::snprintf(size, sizeof(size), "%zx", body.size());
  const std::string req =
      "POST /v1/search HTTP/1.1\r\nHost: x\r\nContent-Type: "
      "application/json\r\nTransfer-Encoding: chunked\r\n\r\n" +
      std::string(size) + "\r\n" + body + "\r\n0\r\n\r\n";
  asio::write(s, asio::buffer(req));
  beast::flat_buffer buffer;
  bhttp::response<bhttp::string_body> res;
  bhttp::read(s, buffer, res);
  EXPECT_EQ(res.result_int(), 200u) << res.body();
}

// A read token without a write token left every write open. Such a server is
// refused at the start, naming what to add.
TEST_F(ServerTest, AReadTokenWithoutAWriteTokenIsRefusedAtTheStart) {
  imsat::http::ServerOptions so;
  so.port = 0;
  so.read_token = "reader";
  auto server = imsat::http::Server::start(*engine_, so);
  ASSERT_FALSE(server.is_ok());
  EXPECT_NE(server.status().message().find("write token"), std::string::npos)
      << server.status().message();
  so.token = "writer";
  EXPECT_TRUE(imsat::http::Server::start(*engine_, so).is_ok());
}

TEST_F(ServerTest, InvalidUtf8InTheRequestIsEscapedNotFatal) {
  // Found by fuzz_router: an error message quoting invalid UTF-8 made the JSON writer throw.
  imsat::http::Request req;
  req.method = "POST";
  req.target = "/v1/evaluate\xf6\x9e\x8f";
  req.headers["content-type"] = "application/json";
  imsat::http::Response res = server_->router().handle(req);
  EXPECT_EQ(res.status, 404);
  EXPECT_TRUE(json::parse(res.body, nullptr, false).is_object()) << res.body;
}

// The web page in Debian's headless Chromium: the page loads, a search is clicked (the page's
// #key= link does what the Search button does), and the neighbours appear as loaded images.
// The page after `fragment` (e.g. "#key=4"), as headless Chromium leaves its DOM.
std::string page_dom(const std::filesystem::path& dir, uint16_t port, const std::string& fragment) {
  const std::string chromium = "/usr/bin/chromium";
  EXPECT_TRUE(std::filesystem::exists(chromium)) << "tools/setup.sh installs Debian's chromium";
  const std::string cmd =
      chromium + " --headless --no-sandbox --disable-gpu --disable-background-networking " +
      "--disable-extensions --no-first-run --user-data-dir=" + (dir / "chromium").string() +
      " --virtual-time-budget=15000 --dump-dom 'http://127.0.0.1:" + std::to_string(port) + "/" +
      fragment + "' 2>/dev/null";
  FILE* pipe = popen(cmd.c_str(), "r");
  EXPECT_NE(pipe, nullptr);
  if (pipe == nullptr) return "";
  std::string dom;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), pipe)) > 0) dom.append(buf, n);
  EXPECT_EQ(pclose(pipe), 0);
  return dom;
}

size_t occurrences(const std::string& text, const std::string& needle) {
  size_t count = 0;
  for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) {
    ++count;
  }
  return count;
}

TEST_F(ServerTest, WebPageShowsNeighbourImagesInHeadlessChromium) {
  const std::string dom = page_dom(dir_, port_, "#key=4");
  EXPECT_NE(dom.find("300 items, 16-bit codes"), std::string::npos) << dom.substr(0, 2000);
  // The page's default k, every neighbour image loaded.
  EXPECT_EQ(occurrences(dom, "class=\"hit neighbour\""), 12u) << dom.substr(0, 4000);
  EXPECT_EQ(occurrences(dom, "data-loaded=\"1\""), 12u) << "neighbour images not loaded";
  EXPECT_EQ(dom.find("data-loaded=\"error\""), std::string::npos);
  EXPECT_NE(dom.find("label 1"), std::string::npos);  // item 4's group
}

// Uploaded pictures show as their thumbnails, with label names.
TEST_F(ServerTest, WebPageShowsThumbnailsAndLabelNames) {
  std::vector<unsigned char> px(16 * 16 * 3);
  for (size_t i = 0; i < px.size(); ++i) px[i] = (i / 3) % 2 ? 230 : 20;
  for (int n = 0; n < 3; ++n) {
    Reply r = post("/v1/items?key=pic" + std::to_string(n) +
                       "&label=1&metadata=%7B%22label_name%22%3A%22stripes%22%7D",
                   png(16, 16, 3, px), "image/png", "secret");
    ASSERT_EQ(r.status, 200) << r.body;
  }
  EXPECT_EQ(get("/v1/items/pic0/image").content_type, "image/jpeg");
  const std::string dom = page_dom(dir_, port_, "#key=pic0");
  EXPECT_EQ(occurrences(dom, "data-loaded=\"1\""), 12u) << dom.substr(0, 4000);
  EXPECT_EQ(dom.find("data-loaded=\"error\""), std::string::npos);
  EXPECT_GE(occurrences(dom, "label 1 (stripes)"), 3u) << dom.substr(0, 4000);
}

TEST_F(ServerTest, ConcurrentSearchesByVectorEachGetTheirOwnCode) {
  std::atomic<int> wrong{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 10; ++i) {
        const size_t row = static_cast<size_t>(t * 10 + i);
        Reply r = post("/v1/search", R"({"k": 3, "vector": )" + vector_json(row) + "}");
        const auto want = engine_->model()->encode(data_.row(row), 1, data_.cols);
        if (r.status != 200 || !want.is_ok() ||
            json::parse(r.body)["code"] != Q::to_hex(want->data(), want->size())) {
          ++wrong;
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(wrong.load(), 0);
  EXPECT_GE(engine_->encode_batch_stats().requests, 80u);
}

TEST_F(ServerTest, ConcurrentWritersAndReaders) {
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int w = 0; w < 2; ++w) {
    threads.emplace_back([&, w] {
      for (int b = 0; b < 10; ++b) {
        json batch = json::array();
        for (int i = 0; i < 20; ++i) {
          batch.push_back({{"key", "w" + std::to_string(w) + "-" + std::to_string(b * 20 + i)},
                           {"code", i % 2 ? "00ff" : "ff00"},
                           {"label", 5}});
        }
        if (post("/v1/items", batch.dump(), "application/json", "secret").status != 200) ++failures;
      }
    });
  }
  for (int r = 0; r < 3; ++r) {
    threads.emplace_back([&, r] {
      for (int i = 0; i < 40; ++i) {
        const size_t row = static_cast<size_t>(r * 40 + i) % 300;
        // One reader queries by vector: the model is shared by the server's threads.
        Reply s = r == 2 ? post("/v1/search", R"({"k": 5, "vector": )" + vector_json(row) + "}")
                         : post("/v1/search", json{{"key", std::to_string(row)}, {"k", 5}}.dump());
        if (s.status != 200 || s.js()["hits"].size() != 5u) ++failures;
        // Every batch is seen whole or not at all: label-5 items come in multiples of 20.
        Reply f = post("/v1/search", R"({"code": "00ff", "k": 1000, "filter": {"label": 5}})");
        if (f.status != 200 || f.js()["hits"].size() % 10 != 0) ++failures;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(items(), 300u + 2 * 10 * 20);
  EXPECT_TRUE(engine_->verify().is_ok());
}

TEST_F(ServerTest, StopsGracefullyAndRefusesNewConnections) {
  EXPECT_EQ(get("/healthz").status, 200);
  server_->stop();
  asio::io_context ioc;
  tcp::socket s(ioc);
  beast::error_code ec;
  s.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port_), ec);
  EXPECT_TRUE(ec) << "still accepting after stop";
}

// A JSON error with this status whose message contains `needle`.
void expect_json_error(const Reply& r, int status, const std::string& needle) {
  EXPECT_EQ(r.status, status) << r.body;
  const json j = r.js();
  ASSERT_TRUE(j.is_object()) << r.body;
  EXPECT_NE(j.value("error", "").find(needle), std::string::npos) << r.body;
}

// '+' in a path is a plus (only query strings turn it into a space), a percent-encoded
// '/' belongs to the key, and labels outside 32 bits are refused instead of truncated.
TEST_F(ServerTest, PathKeysAreDecodedAsKeys) {
  const std::string items =
      R"([{"key": "p+q", "code": "0100"}, {"key": "p q", "code": "0200"},
          {"key": "x/image", "code": "0300"}, {"key": "x", "code": "0400"}])";
  ASSERT_EQ(post("/v1/items", items, "application/json", "secret").status, 200);
  EXPECT_EQ(get("/v1/items/p+q").js()["key"], "p+q");
  EXPECT_EQ(get("/v1/items/p%20q").js()["key"], "p q");
  EXPECT_EQ(get("/v1/items/x%2Fimage").js()["key"], "x/image");
  EXPECT_EQ(get("/v1/items/x%2Fimage").js()["code"], "0300");
  const Reply del = call(port_, bhttp::verb::delete_, "/v1/items/p+q", "", "", "secret");
  ASSERT_EQ(del.status, 200) << del.body;
  EXPECT_EQ(del.js()["deleted"], 1);
  EXPECT_EQ(del.js()["key"], "p+q");
  EXPECT_EQ(get("/v1/items/p+q").status, 404);
  EXPECT_EQ(get("/v1/items/p%20q").status, 200);  // the other item is untouched
  ASSERT_EQ(call(port_, bhttp::verb::delete_, "/v1/items/x%2Fimage", "", "", "secret").status, 200);
  EXPECT_EQ(get("/v1/items/x").status, 200);
  expect_json_error(post("/v1/search", R"({"key": "x", "filter": {"label": 4294967298}})"), 400,
                    "out of range");
  expect_json_error(post("/v1/search", R"({"key": "x", "filter": {"label": -1}})"), 400,
                    "out of range");
  expect_json_error(post("/v1/items", R"([{"key": "y", "code": "0000", "label": 4294967298}])",
                         "application/json", "secret"),
                    400, "out of range");
  expect_json_error(post("/v1/search/image?label=4294967298", "x", "image/png"), 400,
                    "out of range");
}

TEST_F(ServerTest, ScrollVisitsEveryItemOnceInPages) {
  std::set<std::string> seen;
  std::string cursor;
  size_t pages = 0;
  do {
    const Reply r = get("/v1/items?limit=128" + (cursor.empty() ? "" : "&cursor=" + cursor));
    ASSERT_EQ(r.status, 200) << r.body;
    const json page = r.js();
    for (const json& item : page["items"]) {
      EXPECT_TRUE(seen.insert(item["key"].get<std::string>()).second) << item;
      EXPECT_TRUE(item.contains("code"));
    }
    cursor = page["next_cursor"].is_null() ? "" : page["next_cursor"].get<std::string>();
    ASSERT_LT(++pages, 10u);
  } while (!cursor.empty());
  EXPECT_EQ(seen.size(), 300u);
  EXPECT_EQ(pages, 3u);
  expect_json_error(get("/v1/items?limit=0"), 400, "limit");
  expect_json_error(get("/v1/items?cursor=abc"), 400, "cursor");
}

TEST_F(ServerTest, OpenApiListsEveryRouteOfTheTable) {
  const json doc = get("/openapi.json").js();
  ASSERT_TRUE(doc.contains("paths"));
  for (const auto& route : imsat::http::internal::route_table()) {
    std::string method = route.method;
    for (char& c : method) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    ASSERT_TRUE(doc["paths"].contains(route.pattern)) << route.pattern;
    ASSERT_TRUE(doc["paths"][route.pattern].contains(method)) << route.pattern << " " << method;
    EXPECT_EQ(doc["paths"][route.pattern][method]["summary"], route.summary);
    EXPECT_EQ(doc["paths"][route.pattern][method].contains("security"),
              route.auth == imsat::http::internal::Auth::kToken)
        << route.pattern;
  }
}

// What one request may cost is bounded before the work; heavy requests beyond the slots
// are told to come back; a read token can guard the read endpoints. Through the Router directly.
class RouterBudgetTest : public ServerTest {
 protected:
  imsat::http::Response route(imsat::http::Router& router, const std::string& method,
                              const std::string& target, const std::string& body = "",
                              const std::string& type = "application/json",
                              const std::string& token = "") {
    imsat::http::Request r;
    r.method = method;
    r.target = target;
    r.body = body;
    r.headers["content-type"] = type;
    if (!token.empty()) r.headers["authorization"] = "Bearer " + token;
    return router.handle(r);
  }
  static void expect_refusal(const imsat::http::Response& r, int status,
                             const std::string& needle) {
    EXPECT_EQ(r.status, status) << r.body;
    EXPECT_NE(json::parse(r.body, nullptr, false).value("error", "").find(needle),
              std::string::npos)
        << r.body;
  }
};

TEST_F(RouterBudgetTest, RadiusSearchesStopAtTheLimitAndSayTheyWereTruncated) {
  imsat::http::Limits limits;
  limits.max_hits = 50;
  imsat::http::Router router(*engine_, limits, "");
  const auto r = route(router, "POST", "/v1/search", R"({"key": "4", "radius": 16, "limit": 7})");
  ASSERT_EQ(r.status, 200) << r.body;
  const json j = json::parse(r.body);
  EXPECT_EQ(j["hits"].size(), 7u);
  EXPECT_EQ(j["truncated"], true);
  for (size_t i = 1; i < j["hits"].size(); ++i) {
    EXPECT_LE(j["hits"][i - 1]["distance"], j["hits"][i]["distance"]);  // the nearest are kept
  }
  const auto all =
      json::parse(route(router, "POST", "/v1/search", R"({"key": "4", "radius": 16})").body);
  EXPECT_EQ(all["hits"].size(), 50u);  // radius 16 of 16 bits holds all 300: capped at max_hits
  expect_refusal(route(router, "POST", "/v1/search", R"({"key": "4", "radius": 2, "limit": 51})"),
                 400, "limit");
}

TEST_F(RouterBudgetTest, BudgetsAreCheckedBeforeTheWork) {
  imsat::http::Limits limits;
  limits.max_results = 50;
  limits.max_rerank_values = 1000;
  limits.max_response_bytes = 2000;
  imsat::http::Router router(*engine_, limits, "");
  std::string queries = R"({"k": 10, "queries": [)";
  for (int i = 0; i < 10; ++i)
    queries += std::string(i ? "," : "") + R"({"key": ")" + std::to_string(i) + R"("})";
  queries += "]}";
  expect_refusal(route(router, "POST", "/v1/search", queries), 400, "budget of 50 results");
  expect_refusal(
      route(router, "POST", "/v1/search", R"({"key": "1", "rerank": "exact", "candidates": 100})"),
      400, "budget of 1000 values");
  expect_refusal(route(router, "POST", "/v1/search", R"({"key": "1", "k": 40})"), 413,
                 "limit is 2000");
  EXPECT_EQ(route(router, "POST", "/v1/search", R"({"key": "1", "k": 3})").status, 200);
}

TEST_F(RouterBudgetTest, AnOversizedImageIsRefusedFromItsHeader) {
  imsat::http::Limits limits;
  limits.max_image_pixels = 1000;
  imsat::http::Router router(*engine_, limits, "");
  // A real 40 x 30 PNG: 1,200 declared pixels, over the limit, refused before decoding.
  const std::string big = imsat::testing::png(40, 30, 1, std::vector<unsigned char>(1200, 7));
  expect_refusal(route(router, "POST", "/v1/search/image", big, "image/png"), 400,
                 "40 x 30 pixels");
}

TEST_F(RouterBudgetTest, HeavyRequestsBeyondTheSlotsGet503WithRetryAfter) {
  imsat::http::Limits limits;
  limits.heavy_slots = 0;
  imsat::http::Router router(*engine_, limits, "");
  const auto r = route(router, "GET", "/v1/health/codes");
  EXPECT_EQ(r.status, 503) << r.body;
  ASSERT_EQ(r.headers.count("Retry-After"), 1u);
  EXPECT_EQ(route(router, "POST", "/v1/evaluate", "{}").status, 503);
  EXPECT_EQ(route(router, "POST", "/v1/search", R"({"key": "1"})").status, 200);  // not heavy
  // A search batch asking for more than heavy_results results is heavy too.
  std::string batch = R"({"k": 100, "queries": [)";
  for (int i = 0; i < 101; ++i) batch += std::string(i ? "," : "") + R"({"key": "1"})";
  batch += "]}";
  imsat::http::Request large{"POST", "/v1/search", {{"content-type", "application/json"}}, batch};
  EXPECT_TRUE(router.is_heavy(large));
  EXPECT_EQ(router.handle(large).status, 503);
  imsat::http::Request small = large;
  small.body = R"({"k": 100, "queries": [{"key": "1"}, {"key": "2"}]})";
  EXPECT_FALSE(router.is_heavy(small));
  limits.heavy_slots = 1;
  imsat::http::Router open(*engine_, limits, "");
  EXPECT_EQ(route(open, "GET", "/v1/health/codes").status, 200);
}

TEST_F(RouterBudgetTest, AReadTokenGuardsTheReadEndpoints) {
  imsat::http::Router router(*engine_, imsat::http::Limits{}, "writer", "reader");
  const std::string q = R"({"key": "1"})";
  expect_refusal(route(router, "POST", "/v1/search", q), 401, "Bearer");
  expect_refusal(route(router, "POST", "/v1/search", q, "application/json", "nope"), 401, "wrong");
  EXPECT_EQ(route(router, "POST", "/v1/search", q, "application/json", "reader").status, 200);
  EXPECT_EQ(route(router, "POST", "/v1/search", q, "application/json", "writer").status, 200);
  EXPECT_EQ(route(router, "GET", "/v1/items/1").status, 401);
  EXPECT_EQ(route(router, "GET", "/healthz").status, 200);
  EXPECT_EQ(route(router, "GET", "/metrics").status, 200);
  // The read token does not allow writes.
  expect_refusal(route(router, "POST", "/v1/items", R"([{"key": "z", "code": "0000"}])",
                       "application/json", "reader"),
                 401, "wrong token");
}

}  // namespace
