// The query engine, codes files and hex codes, and an end-to-end run on a Fashion-MNIST slice.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <fstream>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "index/hamming.h"
#include "query/query.h"
#include "support/learn_data.h"
#include "support/temp_dir_test.h"

namespace {

namespace I = imsat::index;
namespace L = imsat::learn;
namespace Q = imsat::query;
using Code = imsat::Status::Code;

using imsat::testing::quick_config;

class EngineTest : public imsat::testing::TempDirTest {
 protected:
  void SetUp() override {
    TempDirTest::SetUp();
    data_ = imsat::testing::blobs(4, 60, 8, 3);
    auto m = L::train(data_, quick_config(L::Method::kImsatVat, 16, 5));
    ASSERT_TRUE(m.is_ok()) << m.status().to_string();
    model_ = std::make_unique<L::Model>(std::move(m).value());
    auto codes = model_->encode(data_);
    ASSERT_TRUE(codes.is_ok());
    codes_ = *codes;
  }

  // A store of every blob item (key = row number, tag = label, with its vector).
  std::unique_ptr<Q::QueryEngine> engine(const std::string& fingerprint, bool with_model = true) {
    I::StoreOptions o;
    o.bits = 16;
    o.sync_writes = false;
    o.model_fingerprint = fingerprint;
    auto store = I::CodeStore::open((dir_ / "db").string(), o);
    EXPECT_TRUE(store.is_ok()) << store.status().to_string();
    Q::ItemOptions options;
    options.with_vectors = true;
    const std::vector<I::Item> items = Q::dataset_items(data_, codes_, 16, options);
    EXPECT_TRUE((*store)->put(items).is_ok());
    auto model =
        with_model ? std::make_unique<L::Model>(L::Model::load(model_path()).value()) : nullptr;
    auto e = Q::QueryEngine::create(std::move(store).value(), std::move(model));
    EXPECT_TRUE(e.is_ok()) << e.status().to_string();
    return e.is_ok() ? std::move(e).value() : nullptr;
  }
  std::string model_path() {
    const std::string p = (dir_ / "m.model").string();
    EXPECT_TRUE(model_->save(p).is_ok());
    return p;
  }

  // How many of one encode's outputs for `row` differ from the batch encode of every row: the
  // two code bytes, and (when `p` is given) the bit probabilities beyond `tolerance` of
  // `all_probabilities`.
  int encode_errors(size_t row, const uint8_t* code, const float* p,
                    const std::vector<float>& all_probabilities, float tolerance) const {
    int wrong = (code[0] != codes_[2 * row]) + (code[1] != codes_[2 * row + 1]);
    for (int b = 0; p != nullptr && b < 16; ++b) {
      if (std::abs(p[b] - all_probabilities[row * 16 + b]) > tolerance) ++wrong;
    }
    return wrong;
  }

  L::Dataset data_;
  std::unique_ptr<L::Model> model_;
  std::vector<uint8_t> codes_;
};

// Concurrent searches by vector share model calls (EncodeBatcher): every caller gets its own
// vector's code and probabilities, as encoding it alone gives, and a bad vector fails alone.
TEST_F(EngineTest, ConcurrentEncodesAreBatchedAndEachGetsItsOwnCode) {
  std::mutex model_mutex;
  Q::EncodeBatchOptions options;
  options.max_batch = 8;
  options.max_wait = std::chrono::microseconds(2000);
  Q::EncodeBatcher batcher(*model_, model_mutex, options);
  const auto alone = model_->bit_probabilities(data_.values.data(), data_.rows, data_.cols);
  ASSERT_TRUE(alone.is_ok());
  constexpr int kThreads = 16, kRounds = 20;
  std::vector<std::thread> threads;
  std::atomic<int> wrong{0}, failed{0}, refused{0};
  // The model is held at first, so the first caller's model call waits and the others queue up
  // behind it: their vectors must then share calls however the threads are scheduled (on a
  // loaded machine the callers could otherwise arrive one at a time, and each encode alone).
  std::unique_lock hold(model_mutex);
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int round = 0; round < kRounds; ++round) {
        const size_t row = static_cast<size_t>(t * kRounds + round) % data_.rows;
        uint8_t code[2];
        float p[16];
        if (round % 5 == 4) {
          // A NaN in one caller's vector: refused before it joins a batch.
          std::vector<float> bad(data_.row(row), data_.row(row) + data_.cols);
          bad[3] = std::nanf("");
          const imsat::Status s = batcher.encode(bad.data(), data_.cols, code, nullptr);
          if (s.code() == Code::kInvalidArgument) ++refused;
          continue;
        }
        const imsat::Status s =
            batcher.encode(data_.row(row), data_.cols, code, round % 2 ? p : nullptr);
        if (!s.is_ok()) {
          ++failed;
          continue;
        }
        wrong += encode_errors(row, code, round % 2 ? p : nullptr, *alone, 1e-6f);
      }
    });
  }
  // One caller holds the batch and waits for the model; every other one's first vector queues.
  batcher.wait_until_queued(kThreads - 1);
  hold.unlock();
  for (auto& th : threads) th.join();
  EXPECT_EQ(wrong.load(), 0);
  EXPECT_EQ(failed.load(), 0);
  EXPECT_EQ(refused.load(), kThreads * kRounds / 5);
  const Q::EncodeBatcher::Stats stats = batcher.stats();
  EXPECT_EQ(stats.requests, static_cast<uint64_t>(kThreads * kRounds * 4 / 5));
  // Sixteen callers at once: some model calls carried several vectors, none more than 8.
  EXPECT_LT(stats.batches, stats.requests);
  EXPECT_GT(stats.largest, 1u);
  EXPECT_LE(stats.largest, 8u);
}

TEST_F(EngineTest, UnbatchedEncodesOfALeanModelRunTogetherWithoutTheModelLock) {
  ASSERT_TRUE(model_->encodes_concurrently(1));
  std::mutex model_mutex;
  Q::EncodeBatcher batcher(*model_, model_mutex, Q::EncodeBatchOptions{});  // max_batch 1
  const auto alone = model_->bit_probabilities(data_.values.data(), data_.rows, data_.cols);
  ASSERT_TRUE(alone.is_ok());
  constexpr int kThreads = 8, kRounds = 30;
  std::atomic<int> wrong{0};
  int done = 0;
  std::mutex done_mutex;
  std::condition_variable finished;
  // The model's lock is held throughout: callers that needed it could not finish.
  std::unique_lock hold(model_mutex);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int round = 0; round < kRounds; ++round) {
        const size_t row = static_cast<size_t>(t * kRounds + round) % data_.rows;
        uint8_t code[2];
        float p[16];
        if (!batcher.encode(data_.row(row), data_.cols, code, p).is_ok()) {
          ++wrong;
          continue;
        }
        wrong += encode_errors(row, code, p, *alone, 1e-5f);
      }
      std::lock_guard lock(done_mutex);
      ++done;
      finished.notify_all();
    });
  }
  {
    // Every caller finishes while the lock is held; the bound only turns a hang into a failure.
    std::unique_lock lock(done_mutex);
    finished.wait_for(lock, std::chrono::seconds(60), [&] { return done == kThreads; });
    EXPECT_EQ(done, kThreads);
  }
  hold.unlock();
  for (auto& th : threads) th.join();
  EXPECT_EQ(wrong.load(), 0);
  EXPECT_EQ(batcher.stats().requests, static_cast<uint64_t>(kThreads * kRounds));
}

// QueryEngine::encode of up to 16 vectors (an HTTP batch of searches by vector) runs on each
// caller's thread at once, without the model's lock; every caller gets the batch's codes.
TEST_F(EngineTest, SmallEncodeCallsRunConcurrentlyAndGetTheBatchCodes) {
  auto e = engine(model_->fingerprint());
  ASSERT_NE(e, nullptr);
  constexpr int kThreads = 8, kRounds = 40;
  std::atomic<int> wrong{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int round = 0; round < kRounds; ++round) {
        const size_t rows = 1 + static_cast<size_t>(t + round) % 16;
        const size_t first = static_cast<size_t>(t * kRounds + round) % (data_.rows - rows);
        auto codes = e->encode(data_.row(first), rows, data_.cols);
        if (!codes.is_ok() || codes->size() != 2 * rows) {
          ++wrong;
          continue;
        }
        wrong += !std::equal(codes->begin(), codes->end(), codes_.begin() + 2 * first);
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(wrong.load(), 0);
}

TEST_F(EngineTest, LoneEncodeNeverWaits) {
  std::mutex model_mutex;
  Q::EncodeBatchOptions options;
  options.max_wait = std::chrono::microseconds(5000000);  // would be seen if a lone call waited
  Q::EncodeBatcher batcher(*model_, model_mutex, options);
  for (size_t row = 0; row < 20; ++row) {
    uint8_t code[2];
    ASSERT_TRUE(batcher.encode(data_.row(row), data_.cols, code, nullptr).is_ok());
    EXPECT_EQ(code[0], codes_[2 * row]);
  }
  EXPECT_EQ(batcher.stats().batches, 20u);
  EXPECT_EQ(batcher.stats().largest, 1u);
  EXPECT_EQ(batcher.stats().waits, 0u);  // no call waited for company
  // A wrong dimension is refused with the model's message.
  uint8_t code[2];
  const imsat::Status s = batcher.encode(data_.row(0), data_.cols - 1, code, nullptr);
  EXPECT_EQ(s.code(), Code::kInvalidArgument);
  EXPECT_NE(s.message().find("values per item"), std::string::npos) << s.message();
}

TEST_F(EngineTest, VectorSearchEqualsSearchByItsCode) {
  auto e = engine(model_->fingerprint());
  ASSERT_NE(e, nullptr);
  Q::SearchRequest r;
  r.k = 15;
  for (size_t row : {0, 17, 101}) {
    auto by_vector = e->search_vector(data_.row(row), data_.cols, r);
    ASSERT_TRUE(by_vector.is_ok()) << by_vector.status().to_string();
    std::vector<uint8_t> code(codes_.begin() + static_cast<long>(2 * row),
                              codes_.begin() + static_cast<long>(2 * row + 2));
    auto by_code = e->search_code(code, r);
    ASSERT_TRUE(by_code.is_ok());
    EXPECT_EQ(by_vector->query_code, Q::to_hex(code.data(), 2));
    ASSERT_EQ(by_vector->hits.size(), 15u);
    for (size_t i = 0; i < 15; ++i) {
      EXPECT_EQ(by_vector->hits[i].key, by_code->hits[i].key);
      EXPECT_EQ(by_vector->hits[i].distance, by_code->hits[i].distance);
      if (i > 0) {
        EXPECT_GE(by_vector->hits[i].distance, by_vector->hits[i - 1].distance);
      }
    }
    EXPECT_EQ(by_vector->hits[0].distance, 0u);
    EXPECT_FALSE(by_vector->hits[0].metadata.empty());
  }
}

TEST_F(EngineTest, ExactRerankReturnsTheTrueEuclideanNeighbours) {
  auto e = engine(model_->fingerprint());
  Q::SearchRequest r;
  r.k = 10;
  r.rerank = Q::Rerank::kExact;
  r.candidates = data_.rows;  // every item is a candidate: the result must be exact
  for (size_t row : {3, 42, 199}) {
    std::vector<float> q(data_.row(row), data_.row(row) + data_.cols);
    q[0] += 0.01f;
    auto res = e->search_vector(q.data(), q.size(), r);
    ASSERT_TRUE(res.is_ok()) << res.status().to_string();
    auto truth = Q::exact_neighbours(q.data(), 1, data_.values.data(), data_.rows, data_.cols, 10);
    std::vector<std::vector<uint64_t>> found(1);
    for (const auto& h : res->hits) found[0].push_back(std::stoull(h.key));
    EXPECT_DOUBLE_EQ(Q::recall_at_k(found, truth, 10), 1.0);
    EXPECT_EQ(res->hits[0].key, std::to_string(row));
    EXPECT_NEAR(res->hits[0].score, 0.01, 1e-4);
    for (size_t i = 1; i < res->hits.size(); ++i) {
      EXPECT_GE(res->hits[i].score, res->hits[i - 1].score);
    }
    EXPECT_EQ(res->candidates_reranked, data_.rows);
  }
  // By stored key: its own vector, so the item itself comes first at distance 0.
  auto by_key = e->search_key("42", r);
  ASSERT_TRUE(by_key.is_ok());
  EXPECT_EQ(by_key->hits[0].key, "42");
  EXPECT_EQ(by_key->hits[0].score, 0.0);
}

// Cached vectors give the distances of the stored ones: float32 exactly as read from RocksDB,
// float16 as the values rounded to half precision.
TEST_F(EngineTest, VectorCacheInEitherPrecisionGivesTheStoredVectorsDistances) {
  auto e = engine(model_->fingerprint());
  Q::SearchRequest r;
  r.k = 10;
  r.rerank = Q::Rerank::kExact;
  r.candidates = data_.rows;
  std::vector<float> halved(data_.values.size());
  for (size_t i = 0; i < halved.size(); ++i) {
    halved[i] = I::half_to_float(I::float_to_half(data_.values[i]));
  }
  for (size_t row : {3, 42, 199}) {
    std::vector<float> q(data_.row(row), data_.row(row) + data_.cols);
    q[1] += 0.25f;
    ASSERT_TRUE(e->cache_vectors(Q::VectorPrecision::kFloat32).is_ok());
    auto from_memory = e->search_vector(q.data(), q.size(), r);
    ASSERT_TRUE(from_memory.is_ok()) << from_memory.status().to_string();
    EXPECT_EQ(e->cached_vectors(), data_.rows);
    ASSERT_TRUE(e->cache_vectors(Q::VectorPrecision::kFloat16).is_ok());
    EXPECT_EQ(e->cache_precision(), Q::VectorPrecision::kFloat16);
    auto from_halves = e->search_vector(q.data(), q.size(), r);
    ASSERT_TRUE(from_halves.is_ok()) << from_halves.status().to_string();
    auto truth = Q::exact_neighbours(q.data(), 1, data_.values.data(), data_.rows, data_.cols, 10);
    auto half_truth = Q::exact_neighbours(q.data(), 1, halved.data(), data_.rows, data_.cols, 10);
    for (size_t i = 0; i < 10; ++i) {
      EXPECT_EQ(std::stoull(from_memory->hits[i].key), truth[0][i]) << "row " << row;
      EXPECT_EQ(std::stoull(from_halves->hits[i].key), half_truth[0][i]) << "row " << row;
      const float* v = halved.data() + std::stoull(from_halves->hits[i].key) * data_.cols;
      double squared = 0;
      for (size_t j = 0; j < data_.cols; ++j)
        squared += (double(q[j]) - v[j]) * (double(q[j]) - v[j]);
      EXPECT_NEAR(from_halves->hits[i].score, std::sqrt(squared), 1e-4 * (1 + std::sqrt(squared)));
    }
  }
}

// Re-ranked hits of cached rows are named from memory; what changes after caching is still seen:
// a deleted item never comes back, an item added or replaced later is named from the store.
TEST_F(EngineTest, CachedVectorsAndKeysFollowLaterChanges) {
  auto e = engine(model_->fingerprint());
  Q::SearchRequest r;
  r.k = 5;
  r.rerank = Q::Rerank::kExact;
  r.candidates = data_.rows + 10;
  // Keys and metadata from the cache equal the store's.
  auto uncached = e->search_vector(data_.row(7), data_.cols, r);
  ASSERT_TRUE(uncached.is_ok());
  ASSERT_TRUE(e->cache_vectors().is_ok());
  auto cached = e->search_vector(data_.row(7), data_.cols, r);
  ASSERT_TRUE(cached.is_ok());
  ASSERT_EQ(cached->hits.size(), uncached->hits.size());
  for (size_t i = 0; i < cached->hits.size(); ++i) {
    EXPECT_EQ(cached->hits[i].key, uncached->hits[i].key);
    EXPECT_EQ(cached->hits[i].metadata, uncached->hits[i].metadata);
    EXPECT_FALSE(cached->hits[i].metadata.empty());
  }
  auto nearest = [&](const float* v) {
    auto res = e->search_vector(v, data_.cols, r);
    EXPECT_TRUE(res.is_ok()) << res.status().to_string();
    std::vector<std::string> keys;
    for (const auto& h : res->hits) keys.push_back(h.key);
    return keys;
  };
  EXPECT_EQ(nearest(data_.row(42))[0], "42");
  ASSERT_TRUE(e->erase_items({"42"}).is_ok());
  std::vector<std::string> after = nearest(data_.row(42));
  EXPECT_EQ(std::count(after.begin(), after.end(), "42"), 0);
  // Added after caching (the model encodes its vector): named from the store.
  Q::NewItem added;
  added.key = "added-42";
  added.vector.assign(data_.row(42), data_.row(42) + data_.cols);
  added.metadata = R"({"added": true})";
  auto put = e->add_items({added});
  ASSERT_TRUE(put.is_ok()) << put.status().to_string();
  EXPECT_EQ(nearest(data_.row(42))[0], "added-42");
  auto described = e->search_vector(data_.row(42), data_.cols, r);
  ASSERT_TRUE(described.is_ok());
  EXPECT_EQ(described->hits[0].metadata, added.metadata);
  // Replaced after caching (same key, another vector): the new vector, under the same key.
  Q::NewItem moved;
  moved.key = "3";
  moved.vector.assign(data_.row(100), data_.row(100) + data_.cols);
  moved.vector[0] += 0.5f;
  ASSERT_TRUE(e->add_items({moved}).is_ok());
  std::vector<std::string> near_moved = nearest(moved.vector.data());
  EXPECT_EQ(near_moved[0], "3");
  EXPECT_EQ(std::count(near_moved.begin(), near_moved.end(), "3"), 1);
}

TEST_F(EngineTest, AFloat16CacheRefusesValuesBeyondItsRange) {
  data_.values[5 * data_.cols + 2] = 1e6f;  // item 5
  auto e = engine(model_->fingerprint());
  const imsat::Status s = e->cache_vectors(Q::VectorPrecision::kFloat16);
  EXPECT_EQ(s.code(), Code::kInvalidArgument);
  EXPECT_NE(s.message().find("float16"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("at index 2"), std::string::npos) << s.message();
  EXPECT_EQ(e->cached_vectors(), 0u);
  EXPECT_TRUE(e->cache_vectors(Q::VectorPrecision::kFloat32).is_ok());
  EXPECT_EQ(e->cached_vectors(), data_.rows);
  EXPECT_EQ(Q::parse_vector_precision("float16").value(), Q::VectorPrecision::kFloat16);
  EXPECT_FALSE(Q::parse_vector_precision("half").is_ok());
}

// The score is the stored code's negative log-likelihood under the query's bit probabilities,
// computed here independently of query/asymmetric.h (probabilities clamped to [1e-7, 1 - 1e-7]).
TEST_F(EngineTest, AsymmetricRerankOrdersByNegativeLogLikelihood) {
  auto e = engine(model_->fingerprint());
  Q::SearchRequest r;
  r.k = 5;
  r.rerank = Q::Rerank::kAsymmetric;
  r.candidates = 40;
  auto res = e->search_vector(data_.row(9), data_.cols, r);
  ASSERT_TRUE(res.is_ok()) << res.status().to_string();
  ASSERT_EQ(res->hits.size(), 5u);
  EXPECT_EQ(res->candidates_reranked, 40u);
  auto p = model_->bit_probabilities(data_.row(9), 1, data_.cols);
  ASSERT_TRUE(p.is_ok());
  for (size_t i = 0; i < res->hits.size(); ++i) {
    const size_t row = std::stoul(res->hits[i].key);
    double expected = 0;
    for (int d = 0; d < 16; ++d) {
      const bool bit = (codes_[2 * row + static_cast<size_t>(d) / 8] >> (d % 8)) & 1;
      const double q = std::min(std::max(double((*p)[static_cast<size_t>(d)]), 1e-7), 1 - 1e-7);
      expected -= std::log(bit ? q : 1.0 - q);
    }
    EXPECT_NEAR(res->hits[i].score, expected, 1e-5);  // grid rounding: at most 16 x 2^-21
    if (i > 0) {
      EXPECT_GE(res->hits[i].score, res->hits[i - 1].score);
    }
  }
}

TEST_F(EngineTest, LabelFilterAndRadius) {
  auto e = engine(model_->fingerprint());
  Q::SearchRequest r;
  r.k = 30;
  r.filter = *Q::Filter().with_label(2);
  auto res = e->search_vector(data_.row(0), data_.cols, r);  // row 0 has label 0
  ASSERT_TRUE(res.is_ok());
  ASSERT_EQ(res->hits.size(), 30u);
  for (const auto& h : res->hits) EXPECT_EQ(h.label, 2);
  // The label and a metadata filter together: both hold for every hit.
  Q::SearchRequest both;
  both.k = 30;
  both.filter = *Q::Filter::from_json(
                     nlohmann::json::parse(R"({"must_not": [{"key": "label", "match": 2}]})"))
                     ->with_label(1);
  auto only_one = e->search_vector(data_.row(0), data_.cols, both);
  ASSERT_TRUE(only_one.is_ok());
  ASSERT_EQ(only_one->hits.size(), 30u);
  for (const auto& h : only_one->hits) EXPECT_EQ(h.label, 1);
  both.filter = *Q::Filter::from_json(
                     nlohmann::json::parse(R"({"must_not": [{"key": "label", "match": 1}]})"))
                     ->with_label(1);
  only_one = e->search_vector(data_.row(0), data_.cols, both);
  ASSERT_TRUE(only_one.is_ok());
  EXPECT_TRUE(only_one->hits.empty());
  Q::SearchRequest radius;
  radius.radius = 1;
  auto ball = e->search_key("5", radius);
  ASSERT_TRUE(ball.is_ok());
  ASSERT_FALSE(ball->hits.empty());
  for (const auto& h : ball->hits) EXPECT_LE(h.distance, 1u);
}

TEST_F(EngineTest, BadQueriesAreClearErrors) {
  auto e = engine(model_->fingerprint());
  Q::SearchRequest r;
  std::vector<float> short_vector(5, 0.f);
  auto wrong = e->search_vector(short_vector.data(), 5, r);
  EXPECT_EQ(wrong.status().code(), Code::kInvalidArgument);
  EXPECT_NE(wrong.status().message().find("expects 8"), std::string::npos)
      << wrong.status().message();
  std::vector<float> nan_vector(8, 0.f);
  nan_vector[3] = std::nanf("");
  EXPECT_EQ(e->search_vector(nan_vector.data(), 8, r).status().code(), Code::kInvalidArgument);
  EXPECT_EQ(e->search_key("no such key", r).status().code(), Code::kNotFound);
  r.k = 0;
  EXPECT_EQ(e->search_key("1", r).status().code(), Code::kInvalidArgument);
  r.k = 10;
  r.rerank = Q::Rerank::kExact;
  EXPECT_EQ(e->search_code({0, 0}, r).status().code(), Code::kInvalidArgument);
  r.rerank = Q::Rerank::kAsymmetric;
  EXPECT_EQ(e->search_code({0, 0}, r).status().code(), Code::kInvalidArgument);
  r.radius = 2;
  EXPECT_EQ(e->search_vector(data_.row(0), 8, r).status().code(), Code::kInvalidArgument);
  EXPECT_EQ(e->search_code({0, 0, 0}, Q::SearchRequest{}).status().code(), Code::kInvalidArgument);
}

TEST_F(EngineTest, ModelStoreMismatchIsRefused) {
  // The store records another model's fingerprint.
  I::StoreOptions o;
  o.bits = 16;
  o.model_fingerprint = "0123456789abcdef";
  auto store = I::CodeStore::open((dir_ / "other").string(), o);
  ASSERT_TRUE(store.is_ok());
  auto e = Q::QueryEngine::create(std::move(store).value(),
                                  std::make_unique<L::Model>(L::Model::load(model_path()).value()));
  ASSERT_FALSE(e.is_ok());
  EXPECT_EQ(e.status().code(), Code::kInvalidArgument);
  EXPECT_NE(e.status().message().find("0123456789abcdef"), std::string::npos);
  // A model of another code length.
  o.bits = 32;
  o.model_fingerprint = "";
  auto store32 = I::CodeStore::open((dir_ / "other32").string(), o);
  ASSERT_TRUE(store32.is_ok());
  auto e32 = Q::QueryEngine::create(
      std::move(store32).value(), std::make_unique<L::Model>(L::Model::load(model_path()).value()));
  EXPECT_EQ(e32.status().code(), Code::kInvalidArgument);
  // Without a model, vector queries are refused but code queries work.
  auto bare = engine(model_->fingerprint(), /*with_model=*/false);
  EXPECT_EQ(bare->search_vector(data_.row(0), 8, {}).status().code(), Code::kInvalidArgument);
  EXPECT_TRUE(bare->search_code({1, 2}, {}).is_ok());
}

TEST(HexCodes, RoundTripAndErrors) {
  const std::vector<uint8_t> code = {0x00, 0xab, 0x1f, 0xff};
  EXPECT_EQ(Q::to_hex(code.data(), code.size()), "00ab1fff");
  auto parsed = Q::parse_hex_code("00AB1fff", 32);
  ASSERT_TRUE(parsed.is_ok());
  EXPECT_EQ(*parsed, code);
  auto short_hex = Q::parse_hex_code("00ab", 32);
  EXPECT_NE(short_hex.status().message().find("needs 8"), std::string::npos);
  auto bad = Q::parse_hex_code("00xb1fff", 32);
  EXPECT_NE(bad.status().message().find("'x' at position 2"), std::string::npos)
      << bad.status().message();
}

class CodesFileTest : public imsat::testing::TempDirTest {};

TEST_F(CodesFileTest, RoundTripAndDamagedFiles) {
  Q::CodesFile f;
  f.bits = 16;
  f.rows = 3;
  f.fingerprint = "abc";
  f.source = "somewhere";
  f.codes = {1, 2, 3, 4, 5, 6};
  f.labels = {7, -1, 9};
  const std::string path = (dir_ / "c.codes").string();
  ASSERT_TRUE(Q::write_codes_file(path, f).is_ok());
  EXPECT_TRUE(Q::is_codes_file(path));
  auto back = Q::read_codes_file(path);
  ASSERT_TRUE(back.is_ok()) << back.status().to_string();
  EXPECT_EQ(back->codes, f.codes);
  EXPECT_EQ(back->labels, f.labels);
  EXPECT_EQ(back->fingerprint, "abc");
  EXPECT_EQ(back->rows, 3u);

  std::ifstream in(path, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto write = [&](const std::string& b) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << b;
  };
  write(bytes.substr(0, bytes.size() - 5));
  EXPECT_EQ(Q::read_codes_file(path).status().code(), Code::kCorruption);
  std::string flipped = bytes;
  flipped[flipped.size() - 12] ^= 0x10;  // a label byte
  write(flipped);
  auto damaged = Q::read_codes_file(path);
  EXPECT_EQ(damaged.status().code(), Code::kCorruption);
  EXPECT_NE(damaged.status().message().find("checksum"), std::string::npos);
  std::string future = bytes;
  future[8] = 9;
  write(future);
  EXPECT_EQ(Q::read_codes_file(path).status().code(), Code::kInvalidArgument);
  write("not a codes file at all");
  EXPECT_FALSE(Q::is_codes_file(path));
  EXPECT_EQ(Q::read_codes_file(path).status().code(), Code::kCorruption);
  EXPECT_EQ(Q::read_codes_file((dir_ / "missing").string()).status().code(), Code::kNotFound);
  f.labels = {1};
  EXPECT_EQ(Q::write_codes_file(path, f).code(), Code::kInvalidArgument);
}

// Train on a 2,000-image Fashion-MNIST slice, index it, and check through the store that the
// learned codes retrieve same-class items far better than random codes do.
class EndToEndTest : public imsat::testing::TempDirTest {};

TEST_F(EndToEndTest, LearnedCodesBeatRandomCodesOnAFashionMnistSlice) {
  auto full = L::read_idx("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz",
                          "/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz");
  ASSERT_TRUE(full.is_ok()) << full.status().to_string()
                            << " (tools/setup.sh installs dataset-fashion-mnist)";
  L::Dataset data = *full;
  data.rows = 2000;
  data.values.resize(data.rows * data.cols);
  data.labels.resize(data.rows);
  L::TrainConfig c = quick_config(L::Method::kImsatVat, 16, 15);
  c.hidden = {200};
  auto model = L::train(data, c);
  ASSERT_TRUE(model.is_ok()) << model.status().to_string();
  auto learned = model->encode(data);
  ASSERT_TRUE(learned.is_ok());
  std::mt19937_64 rng(5);
  std::vector<uint8_t> random_codes(learned->size());
  for (auto& b : random_codes) b = static_cast<uint8_t>(rng());

  auto precision_through_store = [&](const std::vector<uint8_t>& codes, const std::string& name) {
    I::StoreOptions o;
    o.bits = 16;
    o.sync_writes = false;
    auto store = I::CodeStore::open((dir_ / name).string(), o);
    EXPECT_TRUE(store.is_ok());
    size_t i = 0;
    EXPECT_TRUE((*store)
                    ->bulk_load("load",
                                [&](size_t n, I::Item* it) {
                                  if (n >= data.rows) return false;
                                  Q::make_item(codes, 16, data.labels, &data, 0, {}, n, it);
                                  ++i;
                                  return true;
                                })
                    .is_ok());
    auto engine = Q::QueryEngine::create(std::move(store).value(), nullptr);
    Q::SearchRequest r;
    r.k = 51;
    r.with_metadata = false;
    double relevant = 0, returned = 0;
    for (size_t q = 0; q < data.rows; q += 20) {
      auto res = (*engine)->search_key(std::to_string(q), r);
      EXPECT_TRUE(res.is_ok());
      for (const auto& h : res->hits) {
        if (h.key == std::to_string(q)) continue;
        relevant += h.label == data.labels[q];
        returned += 1;
      }
    }
    return relevant / returned;
  };
  const double p_learned = precision_through_store(*learned, "learned");
  const double p_random = precision_through_store(random_codes, "random");
  EXPECT_GT(p_learned, p_random + 0.25) << "learned " << p_learned << " random " << p_random;

  auto split = Q::split_per_class(data.labels, 20, 0);
  ASSERT_TRUE(split.is_ok());
  auto m_learned = Q::evaluate_retrieval(*learned, 16, data.labels, *split);
  auto m_random = Q::evaluate_retrieval(random_codes, 16, data.labels, *split);
  ASSERT_TRUE(m_learned.is_ok() && m_random.is_ok());
  EXPECT_GT(m_learned->map, m_random->map + 0.15)
      << "learned " << m_learned->map << " random " << m_random->map;
  std::printf("precision@50 learned %.3f random %.3f; mAP learned %.3f random %.3f\n", p_learned,
              p_random, m_learned->map, m_random->map);
  auto health = Q::code_health(*learned, 16);
  ASSERT_TRUE(health.is_ok());
  EXPECT_GT(health->mean_entropy, 0.8);  // IMSAT keeps bits balanced
}

TEST_F(EngineTest, ItemsAddGetEraseAndScroll) {
  auto e = engine(model_->fingerprint());
  ASSERT_NE(e, nullptr);
  const size_t before = e->info().items;
  std::vector<Q::NewItem> items(2);
  items[0].key = "by-vector";
  items[0].vector.assign(data_.row(5), data_.row(5) + data_.cols);
  items[0].label = 7;
  items[1].key = "by-code";
  items[1].code = {0x12, 0x34};
  items[1].metadata = R"({"a": 1})";
  auto added = e->add_items(items);
  ASSERT_TRUE(added.is_ok()) << added.status().to_string();
  EXPECT_EQ(*added, before + 2);
  auto got = e->get_item("by-vector");
  ASSERT_TRUE(got.is_ok());
  EXPECT_EQ(got->label, 7);
  EXPECT_EQ(got->code_hex, e->get_item("5")->code_hex);  // same vector, same code
  EXPECT_EQ(got->vector.size(), data_.cols);
  EXPECT_EQ(e->get_item("by-code")->code_hex, "1234");
  // A bad item rejects the whole call: nothing is written.
  std::vector<Q::NewItem> bad(2);
  bad[0].key = "fine";
  bad[0].code = {0, 0};
  bad[1].key = "short";
  bad[1].code = {0};
  auto refused = e->add_items(bad);
  EXPECT_EQ(refused.status().code(), Code::kInvalidArgument);
  EXPECT_NE(refused.status().message().find("item 1"), std::string::npos);
  EXPECT_EQ(e->get_item("fine").status().code(), Code::kNotFound);
  std::vector<Q::NewItem> nan(1);
  nan[0].key = "nan";
  nan[0].vector.assign(data_.cols, std::nanf(""));
  EXPECT_EQ(e->add_items(nan).status().code(), Code::kInvalidArgument);
  ASSERT_TRUE(e->erase_items({"by-code"}).is_ok());
  EXPECT_EQ(e->get_item("by-code").status().code(), Code::kNotFound);
  // Scroll: every live item once, in insertion order, in pages.
  std::vector<std::string> keys;
  std::string cursor;
  do {
    auto page = e->scroll(cursor, 100);
    ASSERT_TRUE(page.is_ok()) << page.status().to_string();
    for (const auto& it : page->items) keys.push_back(it.key);
    cursor = page->next_cursor;
  } while (!cursor.empty());
  ASSERT_EQ(keys.size(), before + 1);
  EXPECT_EQ(keys.front(), "0");
  EXPECT_EQ(keys.back(), "by-vector");
  EXPECT_EQ(e->scroll("", 0).status().code(), Code::kInvalidArgument);
  EXPECT_EQ(e->scroll("-3", 10).status().code(), Code::kInvalidArgument);
}

TEST_F(EngineTest, EvaluateMatchesTheProtocolOnTheSameCodes) {
  auto e = engine(model_->fingerprint());
  ASSERT_NE(e, nullptr);
  Q::EvaluateRequest request;
  request.queries_per_class = 10;
  request.seed = 3;
  request.options.precision_at = 20;
  request.options.radius = 1;
  auto through_store = e->evaluate(request);
  ASSERT_TRUE(through_store.is_ok()) << through_store.status().to_string();
  // The store holds every blob item in row order with its label: the same split and metrics.
  auto split = Q::split_per_class(data_.labels, 10, 3);
  ASSERT_TRUE(split.is_ok());
  auto direct = Q::evaluate_retrieval(codes_, 16, data_.labels, *split, request.options);
  ASSERT_TRUE(direct.is_ok());
  EXPECT_DOUBLE_EQ(through_store->metrics.map, direct->map);
  EXPECT_DOUBLE_EQ(through_store->metrics.precision_at_n, direct->precision_at_n);
  EXPECT_DOUBLE_EQ(through_store->metrics.precision_at_r, direct->precision_at_r);
  EXPECT_EQ(through_store->queries, 40u);
  EXPECT_EQ(through_store->labelled_items, data_.rows);
  auto health = e->health(1000, 5);
  ASSERT_TRUE(health.is_ok());
  EXPECT_EQ(health->health.rows, data_.rows);
  EXPECT_EQ(health->bucket_occupancy.size(), static_cast<size_t>(e->info().tables));
}

// Exact re-ranking answered 404 when a candidate had no stored vector (items added by
// code, or deleted while the query ran); such candidates now rank after the others.
TEST_F(EngineTest, ExactRerankRanksCandidatesWithoutVectorsLast) {
  auto e = engine(model_->fingerprint());
  ASSERT_NE(e, nullptr);
  std::vector<Q::NewItem> items(1);
  items[0].key = "code-only";
  items[0].code.assign(codes_.begin() + 2 * 17, codes_.begin() + 2 * 17 + 2);  // row 17's code
  ASSERT_TRUE(e->add_items(items).is_ok());
  Q::SearchRequest r;
  r.k = 400;
  r.rerank = Q::Rerank::kExact;
  r.candidates = 1000;
  auto res = e->search_vector(data_.row(17), data_.cols, r);
  ASSERT_TRUE(res.is_ok()) << res.status().to_string();
  EXPECT_EQ(res->candidates_without_vector, 1u);
  EXPECT_EQ(res->hits.front().key, "17");
  EXPECT_EQ(res->hits.back().key, "code-only");  // Hamming distance 0, but no vector: last
}

}  // namespace

// A shortlist compares exactly only the best candidates by asymmetric score: with a shortlist as
// long as the candidates it changes nothing; a shorter one reranks that many, says so, and keeps
// the items a full re-rank finds first when their codes agree with the query.
TEST_F(EngineTest, ShortlistReranksTheBestCandidatesByAsymmetricScore) {
  auto e = engine(model_->fingerprint());
  Q::SearchRequest full;
  full.k = 5;
  full.rerank = Q::Rerank::kExact;
  full.candidates = 200;
  Q::SearchRequest same = full, shorter = full;
  same.shortlist = 200;
  shorter.shortlist = 40;
  for (size_t row : {3, 42, 199}) {
    const float* q = data_.row(row);
    const auto a = e->search_vector(q, data_.cols, full);
    const auto b = e->search_vector(q, data_.cols, same);
    const auto c = e->search_vector(q, data_.cols, shorter);
    ASSERT_TRUE(a.is_ok() && b.is_ok() && c.is_ok()) << c.status().to_string();
    ASSERT_EQ(a->hits.size(), b->hits.size());
    for (size_t i = 0; i < a->hits.size(); ++i) {
      EXPECT_EQ(a->hits[i].key, b->hits[i].key);
      EXPECT_EQ(a->hits[i].score, b->hits[i].score);
    }
    EXPECT_EQ(c->candidates_reranked, 40u);
    EXPECT_EQ(c->shortlisted_from, 200u);
    EXPECT_EQ(c->hits[0].key, std::to_string(row));  // the query's own item scores best
    for (size_t i = 1; i < c->hits.size(); ++i) EXPECT_GE(c->hits[i].score, c->hits[i - 1].score);
  }
  // By stored key the stored vector gives the probabilities; by code there are none.
  const auto by_key = e->search_key("42", shorter);
  ASSERT_TRUE(by_key.is_ok()) << by_key.status().to_string();
  EXPECT_EQ(by_key->hits[0].key, "42");
  const std::vector<uint8_t> code(codes_.begin(), codes_.begin() + 2);
  const auto by_code = e->search_code(code, shorter);
  ASSERT_FALSE(by_code.is_ok());
}

// A cosine store end to end: the store records the metric, vectors are kept at unit length,
// queries of any length find the same neighbours, the score is 1 - cosine, and zero vectors are
// refused with a reason.
TEST_F(EngineTest, ACosineStoreComparesDirections) {
  L::TrainConfig c = quick_config(L::Method::kItq, 8);
  c.metric = L::Metric::kCosine;
  auto trained = L::train(data_, c);
  ASSERT_TRUE(trained.is_ok()) << trained.status().to_string();
  auto model = std::make_unique<L::Model>(std::move(trained).value());
  I::StoreOptions o;
  o.bits = 8;
  o.sync_writes = false;
  o.model_fingerprint = model->fingerprint();
  o.metric = Q::metric_of(*model);
  EXPECT_EQ(o.metric, "cosine");
  const std::string db = (dir_ / "cosine").string();
  {
    auto store = I::CodeStore::open(db, o);
    ASSERT_TRUE(store.is_ok()) << store.status().to_string();
    EXPECT_EQ((*store)->info().metric, "cosine");
  }
  I::StoreOptions l2 = o;
  l2.metric = "l2";
  const auto refused = I::CodeStore::open(db, l2);
  ASSERT_FALSE(refused.is_ok());
  EXPECT_NE(refused.status().message().find("cosine"), std::string::npos);

  auto store = I::CodeStore::open(db, o);
  ASSERT_TRUE(store.is_ok());
  auto e = Q::QueryEngine::create(std::move(store).value(), std::move(model));
  ASSERT_TRUE(e.is_ok()) << e.status().to_string();
  EXPECT_EQ((*e)->metric(), L::Metric::kCosine);
  std::vector<Q::NewItem> items;
  for (size_t r = 0; r < data_.rows; ++r) {
    Q::NewItem it;
    it.key = std::to_string(r);
    it.vector.assign(data_.row(r), data_.row(r) + data_.cols);
    items.push_back(std::move(it));
  }
  ASSERT_TRUE((*e)->add_items(items).is_ok());
  const auto stored = (*e)->get_item("7");
  ASSERT_TRUE(stored.is_ok());
  double norm = 0;
  for (float v : stored->vector) norm += double(v) * v;
  EXPECT_NEAR(norm, 1.0, 1e-5);

  Q::SearchRequest r;
  r.k = 10;
  r.rerank = Q::Rerank::kExact;
  r.candidates = data_.rows;
  for (size_t row : {5, 77, 150}) {
    std::vector<float> q(data_.row(row), data_.row(row) + data_.cols);
    for (float& v : q) v *= 3.0f;  // the length does not matter
    const auto res = (*e)->search_vector(q.data(), q.size(), r);
    ASSERT_TRUE(res.is_ok()) << res.status().to_string();
    EXPECT_EQ(res->hits[0].key, std::to_string(row));
    EXPECT_NEAR(res->hits[0].score, 0.0, 1e-6);
    // Every score is 1 - cosine similarity with the raw vectors.
    for (const Q::SearchHit& h : res->hits) {
      const float* x = data_.row(std::stoul(h.key));
      double dot = 0, nq = 0, nx = 0;
      for (size_t i = 0; i < data_.cols; ++i) {
        dot += double(q[i]) * x[i];
        nq += double(q[i]) * q[i];
        nx += double(x[i]) * x[i];
      }
      EXPECT_NEAR(h.score, 1.0 - dot / std::sqrt(nq * nx), 1e-5);
    }
  }
  const std::vector<float> zero(data_.cols, 0.0f);
  const auto zero_query = (*e)->search_vector(zero.data(), zero.size(), r);
  ASSERT_FALSE(zero_query.is_ok());
  EXPECT_NE(zero_query.status().message().find("all zeros"), std::string::npos);
  Q::NewItem bad;
  bad.key = "zero";
  bad.vector = zero;
  const auto zero_item = (*e)->add_items({bad});
  ASSERT_FALSE(zero_item.is_ok());
  EXPECT_NE(zero_item.status().message().find("all zeros"), std::string::npos);
}
