// libFuzzer target over the HTTP request handling (Router::handle, no sockets). Input layout:
// byte 0 picks the method; then the target up to '\n', the Content-Type up to '\n', and the body.
// A small store (300 items, 16-bit codes, 4 x 4 pixel model) is built once.
#include <unistd.h>

#include <filesystem>
#include <random>
#include <string>

#include "http/http.h"

namespace {

namespace I = imsat::index;
namespace L = imsat::learn;
namespace Q = imsat::query;

// Built once and deliberately never destroyed: at exit, librocksdb's own statics may be gone before
// a static store would close (a harness matter; programs close their stores before exit).
imsat::http::Router& router() {
  static Q::QueryEngine* engine = nullptr;
  static imsat::http::Router* r = nullptr;
  if (r != nullptr) return *r;
  L::Dataset d;
  d.rows = 300;
  d.cols = 16;
  d.item_shape = {4, 4};
  d.uint8_pixels = true;
  std::mt19937 rng(1);
  for (size_t i = 0; i < d.rows * d.cols; ++i) d.values.push_back(float(rng() % 256));
  for (size_t i = 0; i < d.rows; ++i) d.labels.push_back(int32_t(i % 3));
  L::TrainConfig c;
  c.method = L::Method::kLsh;
  c.bits = 16;
  auto model = std::make_unique<L::Model>(std::move(L::train(d, c)).value());
  const std::string dir =
      (std::filesystem::temp_directory_path() / ("imsat-fuzz-router-" + std::to_string(getpid())))
          .string();
  std::filesystem::remove_all(dir);
  I::StoreOptions o;
  o.bits = 16;
  o.sync_writes = false;
  auto store = std::move(I::CodeStore::open(dir, o)).value();
  std::vector<uint8_t> codes = std::move(model->encode(d)).value();
  Q::ItemOptions options;
  options.with_vectors = true;
  const std::vector<I::Item> items = Q::dataset_items(d, codes, 16, options);
  if (!store->put(items).is_ok()) std::abort();
  engine = Q::QueryEngine::create(std::move(store), std::move(model)).value().release();
  imsat::http::Limits limits;
  limits.max_batch = 100;
  r = new imsat::http::Router(*engine, limits, "");
  return *r;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  static const char* methods[] = {"GET", "POST", "DELETE", "PUT"};
  imsat::http::Request req;
  req.method = methods[data[0] % 4];
  const std::string rest(reinterpret_cast<const char*>(data + 1), size - 1);
  const size_t a = rest.find('\n');
  req.target = rest.substr(0, a);
  if (a != std::string::npos) {
    const size_t b = rest.find('\n', a + 1);
    req.headers["content-type"] = rest.substr(a + 1, b == std::string::npos ? b : b - a - 1);
    if (b != std::string::npos) req.body = rest.substr(b + 1);
  }
  const imsat::http::Response res = router().handle(req);
  if (res.status < 200 || res.status > 599) std::abort();
  return 0;
}
