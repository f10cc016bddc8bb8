// The durable store: persistence, upserts, deletes, schema checks, damage, bulk load, crash
// safety and concurrent readers (src/index/code_store.h).
#include "index/code_store.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <rocksdb/db.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "support/temp_dir_test.h"

namespace {

namespace fs = std::filesystem;
using imsat::Status;
using imsat::index::CodeStore;
using imsat::index::Item;
using imsat::index::StoreOptions;

class CodeStoreTest : public imsat::testing::TempDirTest {
 protected:
  void SetUp() override {
    TempDirTest::SetUp();
    path_ = (dir_ / "db").string();
  }

  std::unique_ptr<CodeStore> open(int bits = 64, bool sync = false) {
    StoreOptions o;
    o.bits = bits;
    o.sync_writes = sync;
    o.expected_items = 5000;
    auto s = CodeStore::open(path_, o);
    EXPECT_TRUE(s.is_ok()) << s.status().to_string();
    return s.is_ok() ? std::move(s).value() : nullptr;
  }

  std::string path_;
};

Item make_item(const std::string& key, uint64_t code_value, int32_t tag = 0, int bits = 64) {
  Item it;
  it.key = key;
  it.code.resize(static_cast<size_t>(bits) / 8);
  for (size_t i = 0; i < it.code.size(); ++i)
    it.code[i] = static_cast<uint8_t>(code_value >> (8 * (i % 8)));
  it.tag = tag;
  it.metadata = "{\"key\":\"" + key + "\"}";
  return it;
}

std::vector<Item> random_items(size_t n, uint64_t seed, const std::string& prefix) {
  std::mt19937_64 rng(seed);
  std::vector<Item> items;
  for (size_t i = 0; i < n; ++i)
    items.push_back(make_item(prefix + std::to_string(i), rng(), static_cast<int32_t>(i % 3)));
  return items;
}

// Waits for a forked writer's first acknowledgement (opening can be slow under sanitizers and
// load), lets it write for `delay_ms` more, kills it with SIGKILL mid-stream, and adds to
// *acknowledged every number it wrote to `ack_fd` before dying (then closes `ack_fd`).
void kill_writer(pid_t pid, int ack_fd, unsigned delay_ms, std::set<int>* acknowledged) {
  pollfd ready{ack_fd, POLLIN, 0};
  if (poll(&ready, 1, 30000) != 1) {
    kill(pid, SIGKILL);  // never leave the child behind
    waitpid(pid, nullptr, 0);
    FAIL() << "child acknowledged nothing within 30 s";
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms));
  kill(pid, SIGKILL);
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFSIGNALED(status)) << "child exited by itself with " << WEXITSTATUS(status);
  fcntl(ack_fd, F_SETFL, O_NONBLOCK);
  int n;
  while (read(ack_fd, &n, sizeof(n)) == sizeof(n)) acknowledged->insert(n);
  close(ack_fd);
}

// In a writer child: reports `n` as durable to the parent (exits when the pipe is gone).
void acknowledge(int ack_fd, int n) {
  if (write(ack_fd, &n, sizeof(n)) != sizeof(n)) _exit(5);
}

// Crash rounds: each forks a writer child, `write_from(first, ack_fd)`, that never returns and
// acknowledges each number it has made durable; the parent kills it at a random moment (up to
// `max_delay_ms` after its first acknowledgement) and the next child starts two past the last
// acknowledged number (the one after it may have landed in part). *next is the first number no
// child was given. The children are forked from a process that must not have run RocksDB yet (a
// forked child lacks the parent's background threads, and ThreadSanitizer refuses threads after a
// multi-threaded fork): ctest runs each test in its own process; run one at a time by hand.
void kill_rounds(int rounds, uint64_t seed, unsigned max_delay_ms,
                 const std::function<void(int first, int ack_fd)>& write_from,
                 std::set<int>* acknowledged, int* next) {
  std::mt19937_64 rng(seed);
  *next = 0;
  for (int round = 0; round < rounds; ++round) {
    int fds[2];
    ASSERT_EQ(pipe(fds), 0);
    const int first = *next;
    const pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      close(fds[0]);
      write_from(first, fds[1]);
      _exit(6);
    }
    close(fds[1]);
    ASSERT_NO_FATAL_FAILURE(
        kill_writer(pid, fds[0], static_cast<unsigned>(rng() % max_delay_ms), acknowledged));
    *next = (acknowledged->empty() ? first : *acknowledged->rbegin()) + 2;
  }
}

CodeStore::SearchOptions knn(size_t k, bool mih = true) {
  CodeStore::SearchOptions o;
  o.k = k;
  o.use_multi_index = mih;
  return o;
}

TEST_F(CodeStoreTest, PersistenceRoundTrip) {
  auto items = random_items(500, 1, "item-");
  std::vector<std::vector<imsat::index::Hit>> before;
  {
    auto store = open();
    ASSERT_TRUE(store->put(items).is_ok());
    for (int q = 0; q < 5; ++q) before.push_back(*store->search(items[q * 7].code, knn(20)));
    EXPECT_TRUE(store->verify().is_ok());
  }
  auto store = open();
  EXPECT_EQ(store->info().items, 500u);
  for (int q = 0; q < 5; ++q) {
    auto after = *store->search(items[q * 7].code, knn(20));
    ASSERT_EQ(after.size(), before[q].size());
    for (size_t i = 0; i < after.size(); ++i) {
      EXPECT_EQ(after[i].key, before[q][i].key);
      EXPECT_EQ(after[i].distance, before[q][i].distance);
    }
    EXPECT_EQ(after[0].key, items[q * 7].key);
    EXPECT_EQ(after[0].distance, 0u);
  }
  auto got = store->get("item-42");
  ASSERT_TRUE(got.is_ok());
  EXPECT_EQ(got->code, items[42].code);
  EXPECT_EQ(got->tag, items[42].tag);
  EXPECT_EQ(got->metadata, items[42].metadata);
  EXPECT_TRUE(store->verify().is_ok());
}

TEST_F(CodeStoreTest, StoredVectorsFollowTheirItemThroughUpsertBulkAndDelete) {
  std::vector<uint64_t> ids;
  {
    auto store = open();
    Item a = make_item("a", 1), b = make_item("b", 2), c = make_item("c", 3);
    a.vector = {1.f, 2.f, 3.f};
    b.vector = {4.f, 5.f, 6.f};  // c has none
    ASSERT_TRUE(store->put({a, b, c}).is_ok());
    Item bad = make_item("bad", 4);
    bad.vector = {1.f, std::nanf(""), 0.f};
    Status s = store->put({bad});
    EXPECT_EQ(s.code(), imsat::Status::Code::kInvalidArgument);
    EXPECT_NE(s.message().find("NaN"), std::string::npos) << s.to_string();
    size_t n = 0;
    ASSERT_TRUE(store
                    ->bulk_load("job",
                                [&](size_t i, Item* out) {
                                  if (i >= 2) return false;
                                  *out = make_item("bulk" + std::to_string(i), 10 + i);
                                  out->vector = {float(i), float(i), float(i)};
                                  ++n;
                                  return true;
                                })
                    .is_ok());
    EXPECT_EQ(n, 2u);
    // Upsert b with a new vector: the old one must not survive under the old id.
    b.vector = {7.f, 8.f, 9.f};
    ASSERT_TRUE(store->put({b}).is_ok());
    EXPECT_TRUE(store->verify().is_ok());
  }
  auto store = open();
  auto hits = store->search(make_item("q", 1).code, knn(10));
  ASSERT_TRUE(hits.is_ok());
  std::map<std::string, uint64_t> id;
  for (const auto& h : *hits) id[h.key] = h.id;
  ASSERT_EQ(id.size(), 5u);
  auto v = store->vectors({id["a"], id["b"], id["bulk1"]}, 3);
  ASSERT_TRUE(v.is_ok()) << v.status().to_string();
  EXPECT_EQ(*v, (std::vector<float>{1, 2, 3, 7, 8, 9, 1, 1, 1}));
  EXPECT_EQ(store->vectors({id["c"]}, 3).status().code(), imsat::Status::Code::kNotFound);
  EXPECT_EQ(store->vectors({id["a"]}, 4).status().code(), imsat::Status::Code::kInvalidArgument);
  EXPECT_EQ(store->get("b")->vector, (std::vector<float>{7, 8, 9}));
  auto meta = store->metadata({id["a"], id["c"], 987654321});
  ASSERT_TRUE(meta.is_ok());
  EXPECT_EQ(*meta, (std::vector<std::string>{"{\"key\":\"a\"}", "{\"key\":\"c\"}", ""}));
  ASSERT_TRUE(store->erase({"a"}).is_ok());
  EXPECT_EQ(store->vectors({id["a"]}, 3).status().code(), imsat::Status::Code::kNotFound);
  EXPECT_TRUE(store->verify().is_ok());
}

TEST_F(CodeStoreTest, SampleCodesSkipsDeletedItemsAndRespectsTheLimit) {
  auto store = open();
  auto items = random_items(10, 4, "s");
  ASSERT_TRUE(store->put(items).is_ok());
  ASSERT_TRUE(store->erase({"s3"}).is_ok());
  std::vector<uint8_t> all = store->sample_codes(100);
  ASSERT_EQ(all.size(), 9u * 8);
  std::vector<uint8_t> expected;
  for (size_t i = 0; i < items.size(); ++i) {
    if (i != 3) expected.insert(expected.end(), items[i].code.begin(), items[i].code.end());
  }
  EXPECT_EQ(all, expected);
  EXPECT_EQ(store->sample_codes(4).size(), 4u * 8);
  EXPECT_TRUE(store->sample_codes(0).empty());
}

TEST_F(CodeStoreTest, UpsertReplacesAndDeleteLeavesNoStaleHit) {
  auto store = open();
  ASSERT_TRUE(store->put({make_item("a", 0x0F), make_item("b", 0xFF)}).is_ok());
  ASSERT_TRUE(store->put({make_item("a", 0xF000)}).is_ok());  // upsert
  EXPECT_EQ(store->info().items, 2u);
  Item q = make_item("q", 0x0F);
  auto hits = *store->search(q.code, knn(10));
  ASSERT_EQ(hits.size(), 2u);
  EXPECT_EQ(hits[0].key, "b");  // old code of "a" is gone
  ASSERT_TRUE(store->erase({"b"}).is_ok());
  for (bool mih : {true, false}) {
    hits = *store->search(q.code, knn(10, mih));
    ASSERT_EQ(hits.size(), 1u);
    EXPECT_EQ(hits[0].key, "a");
  }
  CodeStore::SearchOptions radius;
  radius.radius = 64;
  EXPECT_EQ(store->search(q.code, radius)->size(), 1u);
  EXPECT_EQ(store->get("b").status().code(), Status::Code::kNotFound);
  EXPECT_EQ(store->erase({"missing"}).code(), Status::Code::kNotFound);
  EXPECT_TRUE(store->verify().is_ok());
  store.reset();
  store = open();
  EXPECT_EQ(store->info().items, 1u);
  EXPECT_EQ(store->get("a")->code, make_item("a", 0xF000).code);
  EXPECT_TRUE(store->verify().is_ok());
}

TEST_F(CodeStoreTest, BadItemsAreRejectedAndChangeNothing) {
  auto store = open();
  ASSERT_TRUE(store->put({make_item("a", 1)}).is_ok());
  EXPECT_EQ(store->put({make_item("x", 2), make_item("", 3)}).code(),
            Status::Code::kInvalidArgument);
  EXPECT_EQ(store->put({make_item("x", 2), make_item("x", 3)}).code(),
            Status::Code::kInvalidArgument);
  EXPECT_EQ(store->put({make_item("x", 2), make_item("y", 3, 0, 32)}).code(),
            Status::Code::kInvalidArgument);
  EXPECT_EQ(store->info().items, 1u);
  EXPECT_EQ(store->get("x").status().code(), Status::Code::kNotFound);
  Item q = make_item("q", 1, 0, 32);
  EXPECT_EQ(store->search(q.code, knn(5)).status().code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(store->search(make_item("q", 1).code, knn(0)).status().code(),
            Status::Code::kInvalidArgument);
  EXPECT_EQ(store->search(make_item("q", 1).code, knn(10001)).status().code(),
            Status::Code::kInvalidArgument);
}

TEST_F(CodeStoreTest, SchemaMismatchIsAClearError) {
  { auto store = open(64); }
  StoreOptions o;
  o.bits = 32;
  auto wrong = CodeStore::open(path_, o);
  ASSERT_FALSE(wrong.is_ok());
  EXPECT_EQ(wrong.status().code(), Status::Code::kInvalidArgument);
  EXPECT_NE(wrong.status().message().find("holds 64-bit codes"), std::string::npos)
      << wrong.status().message();
  o.bits = 0;  // opening without saying the length adopts the store's
  auto any = CodeStore::open(path_, o);
  ASSERT_TRUE(any.is_ok()) << any.status().to_string();
  EXPECT_EQ((*any)->bits(), 64);
}

TEST_F(CodeStoreTest, FingerprintMismatchIsAClearError) {
  StoreOptions o;
  o.bits = 16;
  o.model_fingerprint = "aaaa";
  ASSERT_TRUE(CodeStore::open(path_, o).is_ok());
  o.model_fingerprint = "bbbb";
  auto wrong = CodeStore::open(path_, o);
  ASSERT_FALSE(wrong.is_ok());
  EXPECT_NE(wrong.status().message().find("aaaa"), std::string::npos);
}

TEST_F(CodeStoreTest, DamagedDatabaseIsAClearError) {
  {
    auto store = open(64, true);
    ASSERT_TRUE(store->put(random_items(100, 2, "k")).is_ok());
  }
  // Truncate every table and log file to a few bytes: the store must refuse to open.
  for (const auto& e : fs::directory_iterator(path_)) {
    const std::string name = e.path().filename().string();
    if (name.rfind("MANIFEST", 0) == 0) fs::resize_file(e.path(), 10);
  }
  StoreOptions o;
  o.bits = 64;
  auto s = CodeStore::open(path_, o);
  ASSERT_FALSE(s.is_ok());
  EXPECT_TRUE(s.status().code() == Status::Code::kCorruption ||
              s.status().code() == Status::Code::kIOError)
      << s.status().to_string();
  EXPECT_NE(s.status().message().find(path_), std::string::npos);
}

TEST_F(CodeStoreTest, NonStoreFolderIsRefused) {
  fs::create_directories(path_);
  std::ofstream(path_ + "/precious.txt") << "user data";
  StoreOptions o;
  o.bits = 64;
  auto s = CodeStore::open(path_, o);
  ASSERT_FALSE(s.is_ok());
  EXPECT_TRUE(fs::exists(path_ + "/precious.txt"));
}

// A selection of one label, for a search.
std::shared_ptr<const imsat::index::Selection> label_selection(const CodeStore& store, int label) {
  auto filter = imsat::index::parse_metadata_filter(R"({"must": [{"key": "label", "match": )" +
                                                    std::to_string(label) + "}]}");
  EXPECT_TRUE(filter.is_ok());
  auto selection = store.select(*filter, /*for_search=*/true);
  EXPECT_TRUE(selection.is_ok());
  return *selection;
}

TEST_F(CodeStoreTest, LabelFilterAndAllowListApplyBeforeTopK) {
  auto store = open();
  auto items = random_items(300, 3, "k");
  ASSERT_TRUE(store->put(items).is_ok());
  CodeStore::SearchOptions o = knn(10);
  o.selection = label_selection(*store, 1);
  auto hits = *store->search(items[0].code, o);
  ASSERT_EQ(hits.size(), 10u);
  for (const auto& h : hits) EXPECT_EQ(h.tag, 1);
  // A list of keys is a selection like a filter's.
  auto allow = store->select_keys({"k5", "k6", "missing", "k5"}, /*for_search=*/true);
  ASSERT_TRUE(allow.is_ok());
  EXPECT_EQ((*allow)->count, 2u);
  CodeStore::SearchOptions a = knn(10);
  a.selection = *allow;
  hits = *store->search(items[0].code, a);
  ASSERT_EQ(hits.size(), 2u);
  std::set<std::string> keys = {hits[0].key, hits[1].key};
  EXPECT_EQ(keys, (std::set<std::string>{"k5", "k6"}));
}

// A batch of queries gets what each query gets alone: on uniform codes (where the multi-index
// hands its queries to the shared scan) and clustered ones (where it probes), with a tag filter,
// after deletions, with codes; a bad query fails the whole batch.
TEST_F(CodeStoreTest, SearchBatchEqualsSearchPerQuery) {
  auto store = open();
  std::vector<Item> items = random_items(3000, 11, "u");
  std::mt19937_64 rng(12);
  for (int c = 0; c < 40; ++c) {  // 40 clusters of 50 near-copies
    const uint64_t centre = rng();
    for (int i = 0; i < 50; ++i) {
      const uint64_t flips = (uint64_t{1} << (rng() % 64)) | (uint64_t{1} << (rng() % 64));
      items.push_back(make_item("c" + std::to_string(c) + "-" + std::to_string(i), centre ^ flips,
                                static_cast<int32_t>(i % 3)));
    }
  }
  ASSERT_TRUE(store->put(items).is_ok());
  std::vector<std::string> gone;
  for (size_t i = 0; i < items.size(); i += 37) gone.push_back(items[i].key);
  ASSERT_TRUE(store->erase(gone).is_ok());
  std::vector<std::vector<uint8_t>> queries;
  for (size_t i = 1; i < items.size(); i += 97) queries.push_back(items[i].code);
  for (int i = 0; i < 20; ++i) queries.push_back(make_item("q", rng()).code);
  for (size_t k : {size_t{1}, size_t{10}, size_t{60}}) {
    for (int variant = 0; variant < 3; ++variant) {
      CodeStore::SearchOptions o = knn(k, /*mih=*/variant != 2);
      if (variant == 1) o.selection = label_selection(*store, 2);
      o.with_codes = true;
      std::vector<imsat::index::SearchStats> stats;
      auto batch = store->search_batch(queries, o, &stats);
      ASSERT_TRUE(batch.is_ok()) << batch.status().to_string();
      ASSERT_EQ(batch->size(), queries.size());
      ASSERT_EQ(stats.size(), queries.size());
      for (size_t q = 0; q < queries.size(); ++q) {
        auto alone = store->search(queries[q], o);
        ASSERT_TRUE(alone.is_ok());
        ASSERT_EQ((*batch)[q].size(), alone->size()) << "query " << q << " k " << k;
        for (size_t h = 0; h < alone->size(); ++h) {
          EXPECT_EQ((*batch)[q][h].key, (*alone)[h].key) << "query " << q << " hit " << h;
          EXPECT_EQ((*batch)[q][h].distance, (*alone)[h].distance);
          EXPECT_EQ((*batch)[q][h].tag, (*alone)[h].tag);
          EXPECT_EQ((*batch)[q][h].code, (*alone)[h].code);
        }
        EXPECT_GT(stats[q].candidates_verified, 0u);
      }
    }
  }
  queries[3].resize(4);
  auto bad = store->search_batch(queries, knn(5));
  ASSERT_FALSE(bad.is_ok());
  EXPECT_NE(bad.status().message().find("32 bits"), std::string::npos) << bad.status().message();
}

TEST_F(CodeStoreTest, BulkLoadResumesFromItsRecordedProgress) {
  auto items = random_items(1000, 4, "b");
  {
    auto store = open();
    // A source that fails after 450 items, as if the process had died there.
    auto partial = [&](size_t i, Item* out) {
      if (i >= 450) return false;
      *out = items[i];
      return true;
    };
    ASSERT_TRUE(store->bulk_load("job", partial, 100).is_ok());
    EXPECT_EQ(*store->bulk_progress("job"), 450u);
  }
  auto store = open();
  size_t first_asked = SIZE_MAX;
  std::vector<size_t> reported;
  auto full = [&](size_t i, Item* out) {
    first_asked = std::min(first_asked, i);
    if (i >= items.size()) return false;
    *out = items[i];
    return true;
  };
  ASSERT_TRUE(store->bulk_load("job", full, 100, [&](size_t d) { reported.push_back(d); }).is_ok());
  EXPECT_EQ(first_asked, 450u);
  EXPECT_EQ(reported.back(), 1000u);
  EXPECT_EQ(store->info().items, 1000u);
  EXPECT_TRUE(store->verify().is_ok());
}

// Opening a store another process writes printed RocksDB's raw "While lock file: .../LOCK:
// Resource temporarily unavailable"; it says what that means and who holds it.
TEST_F(CodeStoreTest, AStoreInUseNamesTheProcessThatHoldsIt) {
  auto held = open();
  StoreOptions o;
  o.bits = 64;
  auto second = CodeStore::open(path_, o);
  ASSERT_FALSE(second.is_ok());
  const std::string msg = second.status().message();
  EXPECT_NE(msg.find("the store is in use by another imsat process (pid " +
                     std::to_string(::getpid()) + ")"),
            std::string::npos)
      << msg;
  EXPECT_EQ(msg.find("LOCK"), std::string::npos) << msg;
  // A read-only open beside it works.
  o.read_only = true;
  o.create_if_missing = false;
  EXPECT_TRUE(CodeStore::open(path_, o).is_ok());
}

// A source's skipped inputs (items with an empty key: unreadable image files) are consumed
// positions that add nothing; the recorded progress counts them, so a resumed job goes on after
// them and batches fill with real items.
TEST_F(CodeStoreTest, BulkLoadCountsSkippedPositionsWithoutWritingThem) {
  auto items = random_items(300, 4, "s");
  auto skipped = [](size_t i) { return i % 3 == 1; };
  {
    auto store = open();
    auto partial = [&](size_t i, Item* out) {
      if (i >= 150) return false;
      if (skipped(i)) {
        out->key.clear();
      } else {
        *out = items[i];
      }
      return true;
    };
    std::vector<size_t> reported;
    ASSERT_TRUE(
        store->bulk_load("job", partial, 40, [&](size_t d) { reported.push_back(d); }).is_ok());
    EXPECT_EQ(*store->bulk_progress("job"), 150u);
    EXPECT_EQ(store->info().items, 100u);
    // Batches of 40 written items consume 60 positions each.
    ASSERT_GE(reported.size(), 2u);
    EXPECT_EQ(reported[0], 60u);
    EXPECT_EQ(reported[1], 120u);
  }
  auto store = open();
  size_t first_asked = SIZE_MAX;
  auto full = [&](size_t i, Item* out) {
    first_asked = std::min(first_asked, i);
    if (i >= items.size()) return false;
    if (skipped(i)) {
      out->key.clear();
    } else {
      *out = items[i];
    }
    return true;
  };
  ASSERT_TRUE(store->bulk_load("job", full, 40).is_ok());
  EXPECT_EQ(first_asked, 150u);
  EXPECT_EQ(store->info().items, 200u);
  EXPECT_FALSE(store->get(items[1].key).is_ok());
  EXPECT_TRUE(store->get(items[2].key).is_ok());
  EXPECT_TRUE(store->verify().is_ok());
}

// Stores whose schema has no "buckets=0" line record the multi-index entries in the buckets column
// family: they keep writing, deleting and verifying them; new stores leave the family empty.
TEST_F(CodeStoreTest, OldStoresKeepTheirBucketEntriesNewOnesHaveNone) {
  auto count_buckets = [&] {
    rocksdb::Options options;
    std::vector<std::string> names;
    EXPECT_TRUE(rocksdb::DB::ListColumnFamilies(options, path_, &names).ok());
    std::vector<rocksdb::ColumnFamilyDescriptor> cfs;
    for (const std::string& n : names) cfs.emplace_back(n, rocksdb::ColumnFamilyOptions());
    std::vector<rocksdb::ColumnFamilyHandle*> handles;
    rocksdb::DB* raw = nullptr;
    EXPECT_TRUE(rocksdb::DB::OpenForReadOnly(options, path_, cfs, &handles, &raw).ok());
    size_t n = 0;
    for (size_t i = 0; i < names.size(); ++i) {
      if (names[i] != "buckets") continue;
      std::unique_ptr<rocksdb::Iterator> it(raw->NewIterator(rocksdb::ReadOptions(), handles[i]));
      for (it->SeekToFirst(); it->Valid(); it->Next()) ++n;
    }
    for (auto* h : handles) raw->DestroyColumnFamilyHandle(h);
    delete raw;
    return n;
  };
  {
    auto store = open();
    ASSERT_TRUE(store->put(random_items(50, 1, "a")).is_ok());
  }
  EXPECT_EQ(count_buckets(), 0u);
  {
    // Rewrite the schema record the way an older build wrote it (no "buckets" line).
    rocksdb::Options options;
    std::vector<std::string> names;
    ASSERT_TRUE(rocksdb::DB::ListColumnFamilies(options, path_, &names).ok());
    std::vector<rocksdb::ColumnFamilyDescriptor> cfs;
    for (const std::string& n : names) cfs.emplace_back(n, rocksdb::ColumnFamilyOptions());
    std::vector<rocksdb::ColumnFamilyHandle*> handles;
    rocksdb::DB* raw = nullptr;
    ASSERT_TRUE(rocksdb::DB::Open(options, path_, cfs, &handles, &raw).ok());
    for (size_t i = 0; i < names.size(); ++i) {
      if (names[i] != "schema") continue;
      std::string text;
      ASSERT_TRUE(raw->Get(rocksdb::ReadOptions(), handles[i], "schema", &text).ok());
      const size_t at = text.find("buckets=0\n");
      ASSERT_NE(at, std::string::npos) << text;
      text.erase(at, 10);
      ASSERT_TRUE(raw->Put(rocksdb::WriteOptions(), handles[i], "schema", text).ok());
    }
    for (auto* h : handles) raw->DestroyColumnFamilyHandle(h);
    ASSERT_TRUE(raw->Close().ok());
    delete raw;
  }
  auto store = open();
  // The 50 items written without entries now fail the old stores' check, as they would have.
  EXPECT_FALSE(store->verify().is_ok());
  ASSERT_TRUE(store->erase({"a0"}).is_ok());
  auto more = random_items(20, 2, "b");
  ASSERT_TRUE(store->put(more).is_ok());
  const int tables = store->info().tables;
  store.reset();
  EXPECT_EQ(count_buckets(), 20u * static_cast<size_t>(tables));
}

TEST_F(CodeStoreTest, BulkLoadOfNewKeysIntoAnEmptyStoreSkipsNothingThatMatters) {
  auto items = random_items(500, 7, "n");
  auto store = open();
  auto next = [&](size_t i, Item* out) {
    if (i >= items.size()) return false;
    *out = items[i];
    return true;
  };
  ASSERT_TRUE(store->bulk_load("fresh", next, 128, nullptr, /*new_keys=*/true).is_ok());
  EXPECT_EQ(store->info().items, 500u);
  ASSERT_TRUE(store->verify().is_ok()) << store->verify().to_string();
  store.reset();
  store = open();
  EXPECT_EQ(store->info().items, 500u);
  ASSERT_TRUE(store->verify().is_ok());
  EXPECT_EQ(store->get("n499")->code, items[499].code);
}

TEST_F(CodeStoreTest, BulkLoadUpsertsExistingKeysAndSurvivesReopen) {
  auto store = open();
  ASSERT_TRUE(store->put(random_items(200, 5, "u")).is_ok());
  auto fresh = random_items(300, 6, "u");  // keys u0..u199 exist, u200..u299 are new
  auto next = [&](size_t i, Item* out) {
    if (i >= fresh.size()) return false;
    *out = fresh[i];
    return true;
  };
  // new_keys is only a promise for a job on an empty store: here keys are still checked.
  ASSERT_TRUE(store->bulk_load("upsert", next, 64, nullptr, /*new_keys=*/true).is_ok());
  EXPECT_EQ(store->info().items, 300u);
  ASSERT_TRUE(store->verify().is_ok()) << store->verify().to_string();
  store.reset();
  store = open();
  EXPECT_EQ(store->info().items, 300u);
  ASSERT_TRUE(store->verify().is_ok()) << store->verify().to_string();
  for (size_t i : {size_t{0}, size_t{150}, size_t{299}}) {
    auto got = store->get(fresh[i].key);
    ASSERT_TRUE(got.is_ok());
    EXPECT_EQ(got->code, fresh[i].code);
    auto hits = *store->search(fresh[i].code, knn(1));
    EXPECT_EQ(hits[0].key, fresh[i].key);
    EXPECT_EQ(hits[0].distance, 0u);
  }
}

CodeStore::BulkJob job_of(const std::string& name, const std::vector<Item>& items) {
  return {name, [&items](size_t i, Item* out) {
            if (i >= items.size()) return false;
            *out = items[i];
            return true;
          }};
}

// Several jobs as one atomic step: all of them land (with their progress), a second run adds
// nothing, and a step that fails in its last job leaves the store exactly as it was.
TEST_F(CodeStoreTest, AnAtomicBulkStepLandsWhollyOrNotAtAll) {
  auto store = open();
  ASSERT_TRUE(store->put(random_items(50, 1, "old")).is_ok());
  const auto a = random_items(700, 2, "a"), b = random_items(450, 3, "b");
  auto c = random_items(300, 4, "old");  // old0..old49 replaced, old50..old299 new
  size_t progress_calls = 0;
  auto added = store->bulk_load_atomic({job_of("a", a), job_of("b", b), job_of("c", c)}, 128,
                                       [&](size_t) { ++progress_calls; });
  ASSERT_TRUE(added.is_ok()) << added.status().to_string();
  EXPECT_EQ(*added, 1450u);
  EXPECT_EQ(progress_calls, 6u + 4u + 3u);
  EXPECT_EQ(store->info().items, 1450u);
  EXPECT_EQ(*store->bulk_progress("b"), 450u);
  ASSERT_TRUE(store->verify().is_ok()) << store->verify().to_string();
  // Complete jobs are skipped.
  added = store->bulk_load_atomic({job_of("a", a), job_of("b", b)}, 128);
  ASSERT_TRUE(added.is_ok());
  EXPECT_EQ(*added, 0u);
  // A failing job (a code of the wrong length in its last batch) stops the step before anything
  // is ingested: the other job of the step is not in the store either.
  const auto d = random_items(300, 5, "d");
  auto e = random_items(300, 6, "e");
  e[290].code.resize(4);
  const auto before = store->info().items;
  added = store->bulk_load_atomic({job_of("d", d), job_of("e", e)}, 100);
  ASSERT_FALSE(added.is_ok());
  EXPECT_NE(added.status().message().find("e290"), std::string::npos) << added.status().message();
  EXPECT_EQ(store->info().items, before);
  EXPECT_FALSE(store->get("d0").is_ok());
  EXPECT_EQ(*store->bulk_progress("d"), 0u);
  EXPECT_FALSE(fs::exists(fs::path(path_) / "bulk-ingest"));
  for (const std::vector<Item>* items : {&a, &b, static_cast<const std::vector<Item>*>(&c)}) {
    for (size_t i : {size_t{0}, size_t{42}, items->size() - 1}) {
      const Item& want = (*items)[i];
      auto hits = store->search(want.code, knn(1));
      ASSERT_TRUE(hits.is_ok());
      EXPECT_EQ((*hits)[0].key, want.key);
      EXPECT_EQ((*hits)[0].distance, 0u);
    }
  }
  store.reset();
  store = open();
  EXPECT_EQ(store->info().items, 1450u);
  ASSERT_TRUE(store->verify().is_ok()) << store->verify().to_string();
  auto got = store->get("old7");
  ASSERT_TRUE(got.is_ok());
  EXPECT_EQ(got->code, c[7].code);
}

TEST_F(CodeStoreTest, ConcurrentReadersSeeWholeBatchesOnly) {
  auto store = open();
  constexpr int kBatches = 40, kPerBatch = 25;
  std::atomic<bool> stop{false};
  std::atomic<int> bad{0};
  // Every batch writes kPerBatch items with the same code: a reader must always see a multiple
  // of kPerBatch items at distance 0 from it.
  Item probe = make_item("p", 0x5555AAAA5555AAAAULL);
  auto reader = [&] {
    CodeStore::SearchOptions o;
    o.radius = 0;
    while (!stop) {
      auto hits = store->search(probe.code, o);
      if (!hits.is_ok() || hits->size() % kPerBatch != 0) ++bad;
    }
  };
  std::vector<std::thread> readers;
  for (int i = 0; i < 3; ++i) readers.emplace_back(reader);
  for (int b = 0; b < kBatches; ++b) {
    std::vector<Item> batch;
    for (int i = 0; i < kPerBatch; ++i) {
      Item it = probe;
      it.key = "b" + std::to_string(b) + "-" + std::to_string(i);
      batch.push_back(it);
    }
    ASSERT_TRUE(store->put(batch).is_ok());
  }
  stop = true;
  for (auto& t : readers) t.join();
  EXPECT_EQ(bad.load(), 0);
  EXPECT_EQ(store->info().items, static_cast<size_t>(kBatches * kPerBatch));
}

// Crash safety: a child process ingests batches with synced writes and reports each
// acknowledged batch on a pipe; the parent kills it with SIGKILL at random moments, several
// times, then reopens. Every acknowledged batch must be complete, no batch partial, and the
// buckets consistent with the codes.
TEST_F(CodeStoreTest, SigkillDuringIngestLosesNoAcknowledgedBatch) {
  constexpr int kPerBatch = 20;
  std::set<int> acknowledged;
  int next_batch = 0;
  auto writer = [&](int first, int ack_fd) {
    StoreOptions o;
    o.bits = 64;
    o.sync_writes = true;
    auto store = CodeStore::open(path_, o);
    if (!store.is_ok()) _exit(3);
    for (int b = first;; ++b) {
      std::vector<Item> batch;
      for (int i = 0; i < kPerBatch; ++i) {
        batch.push_back(make_item("c" + std::to_string(b) + "-" + std::to_string(i),
                                  static_cast<uint64_t>(b) * 1000003 + i, b % 7));
      }
      if (!(*store)->put(batch).is_ok()) _exit(4);
      acknowledge(ack_fd, b);
    }
  };
  ASSERT_NO_FATAL_FAILURE(kill_rounds(4, 2024, 300, writer, &acknowledged, &next_batch));
  ASSERT_FALSE(acknowledged.empty());
  auto store = open(64, true);
  ASSERT_TRUE(store->verify().is_ok()) << store->verify().to_string();
  for (int b = 0; b < next_batch + 2; ++b) {
    int present = 0;
    for (int i = 0; i < kPerBatch; ++i) {
      present += store->get("c" + std::to_string(b) + "-" + std::to_string(i)).is_ok();
    }
    EXPECT_TRUE(present == 0 || present == kPerBatch)
        << "batch " << b << " is partial: " << present;
    if (acknowledged.count(b)) {
      EXPECT_EQ(present, kPerBatch) << "acknowledged batch " << b << " lost";
    }
  }
}

// The bulk paths under SIGKILL, at 24 random points: bulk_load commits whole batches (what is
// stored always equals its progress record, in whole batches), an atomic step of three jobs lands
// wholly or not at all, and every load acknowledged before the kill is complete.
TEST_F(CodeStoreTest, SigkillDuringBulkLoadsLosesNoAcknowledgedLoad) {
  constexpr size_t kBatch = 100, kJobItems = 600, kStepItems = 200;
  auto items_of = [](const std::string& job, size_t n, uint64_t seed) {
    std::vector<Item> items;
    for (size_t i = 0; i < n; ++i) {
      items.push_back(make_item(job + "-" + std::to_string(i), seed * 1000003 + i, 1));
    }
    return items;
  };
  auto step_job = [](int g, int part) {
    return "s" + std::to_string(g) + "." + std::to_string(part);
  };
  std::set<int> acknowledged;
  int next_load = 0;
  auto writer = [&](int first, int ack_fd) {
    StoreOptions o;
    o.bits = 64;
    auto store = CodeStore::open(path_, o);
    if (!store.is_ok()) _exit(3);
    for (int g = first;; ++g) {
      if (g % 2 == 0) {  // a job of 6 batches, each ingested on its own
        const std::string job = "j" + std::to_string(g);
        const auto items = items_of(job, kJobItems, static_cast<uint64_t>(g));
        if (!(*store)->bulk_load(job, job_of(job, items).next, kBatch).is_ok()) _exit(4);
      } else {  // three jobs of 2 batches each, ingested in one step
        std::vector<std::vector<Item>> parts;
        std::vector<CodeStore::BulkJob> jobs;
        for (int p = 0; p < 3; ++p)
          parts.push_back(items_of(step_job(g, p), kStepItems, g * 7 + p));
        for (int p = 0; p < 3; ++p) jobs.push_back(job_of(step_job(g, p), parts[p]));
        if (!(*store)->bulk_load_atomic(jobs, kBatch).is_ok()) _exit(4);
      }
      acknowledge(ack_fd, g);
    }
  };
  ASSERT_NO_FATAL_FAILURE(kill_rounds(24, 77, 250, writer, &acknowledged, &next_load));
  ASSERT_GE(acknowledged.size(), 24u);
  auto store = open(64, true);
  ASSERT_TRUE(store->verify().is_ok()) << store->verify().to_string();
  auto present = [&](const std::string& job, size_t n) {
    size_t count = 0, prefix = 0;
    for (size_t i = 0; i < n; ++i) {
      const bool here = store->get(job + "-" + std::to_string(i)).is_ok();
      count += here;
      if (here && prefix == i) ++prefix;
    }
    EXPECT_EQ(count, prefix) << job << ": the stored items are not the first ones";
    return count;
  };
  size_t total = 0;
  for (int g = 0; g < next_load + 2; ++g) {
    if (g % 2 == 0) {
      const std::string job = "j" + std::to_string(g);
      const size_t n = present(job, kJobItems);
      total += n;
      EXPECT_EQ(n % kBatch, 0u) << job << " holds part of a batch: " << n;
      EXPECT_EQ(n, *store->bulk_progress(job)) << job;
      if (acknowledged.count(g)) {
        EXPECT_EQ(n, kJobItems) << "acknowledged " << job << " lost";
      }
    } else {
      size_t landed = 0;
      for (int p = 0; p < 3; ++p) {
        const size_t n = present(step_job(g, p), kStepItems);
        total += n;
        EXPECT_TRUE(n == 0 || n == kStepItems) << step_job(g, p) << ": " << n;
        EXPECT_EQ(n, *store->bulk_progress(step_job(g, p)));
        landed += n == kStepItems;
      }
      EXPECT_TRUE(landed == 0 || landed == 3) << "step " << g << " landed in part: " << landed;
      if (acknowledged.count(g)) {
        EXPECT_EQ(landed, 3u) << "acknowledged step " << g << " lost";
      }
    }
  }
  EXPECT_EQ(store->info().items, total);
}

// The arrays saved at close are read at the next open only when they match the store; a stale,
// damaged or truncated file is reported and the arrays are rebuilt from RocksDB, with the same
// results either way.
TEST_F(CodeStoreTest, TheArraysFileIsUsedOnlyWhenItMatchesTheStore) {
  std::vector<Item> items = random_items(3000, 5, "a");
  std::vector<std::string> gone;
  for (int i = 0; i < 3000; i += 60) gone.push_back("a" + std::to_string(i));
  const std::vector<uint8_t> query = items[17].code;
  std::vector<std::string> before;
  {
    auto store = open();
    ASSERT_TRUE(store->put(items).is_ok());
    ASSERT_TRUE(store->erase(gone).is_ok());
    const auto hits = store->search(query, knn(50));
    ASSERT_TRUE(hits.is_ok());
    for (const auto& h : *hits) before.push_back(h.key);
  }
  const fs::path file = fs::path(path_) / "IMSAT-ARRAYS";
  ASSERT_TRUE(fs::exists(file));
  auto same_answers = [&](CodeStore& store) {
    std::vector<std::string> now;
    const auto hits = store.search(query, knn(50));
    ASSERT_TRUE(hits.is_ok());
    for (const auto& h : *hits) now.push_back(h.key);
    EXPECT_EQ(now, before);
    EXPECT_EQ(store.info().items, 3000 - gone.size());
    EXPECT_TRUE(store.verify().is_ok()) << store.verify().to_string();
    EXPECT_FALSE(store.get(gone[3]).is_ok());
    EXPECT_TRUE(store.get("a1").is_ok());
  };
  {
    auto store = open();
    EXPECT_EQ(store->info().open_source, "arrays file");
    same_answers(*store);
  }
  {
    StoreOptions o;
    o.read_only = true;
    o.create_if_missing = false;
    auto ro = CodeStore::open(path_, o);
    ASSERT_TRUE(ro.is_ok());
    EXPECT_EQ((*ro)->info().open_source, "arrays file");
  }
  // Stale: the file of an earlier state put back after more writes.
  fs::copy_file(file, dir_ / "old-arrays");
  {
    auto store = open();
    ASSERT_TRUE(store->put({make_item("late", 42)}).is_ok());
  }
  fs::copy_file(dir_ / "old-arrays", file, fs::copy_options::overwrite_existing);
  {
    auto store = open();
    EXPECT_NE(store->info().open_source.find("stale"), std::string::npos)
        << store->info().open_source;
    EXPECT_TRUE(store->get("late").is_ok());
    ASSERT_TRUE(store->erase({"late"}).is_ok());
  }
  // Damaged in the middle, then truncated: rebuilt, same answers.
  {
    std::fstream f(file, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(fs::file_size(file) / 2));
    f.put('\x5a');
  }
  {
    auto store = open();
    EXPECT_NE(store->info().open_source.find("damaged"), std::string::npos)
        << store->info().open_source;
    same_answers(*store);
  }
  fs::resize_file(file, fs::file_size(file) - 9);
  {
    auto store = open();
    EXPECT_NE(store->info().open_source.find("rebuilt"), std::string::npos);
    same_answers(*store);
  }
  // A leftover temporary file (a crash while saving) is ignored.
  std::ofstream(fs::path(path_) / "IMSAT-ARRAYS.tmp") << "partial";
  {
    auto store = open();
    EXPECT_EQ(store->info().open_source, "arrays file");
    same_answers(*store);
  }
}

// SIGKILL at random points of a writer that closes cleanly (saving the arrays) and reopens
// (reading them) between rounds of writes: every acknowledged batch is there, no batch is
// partial, and a stale or half-written arrays file is never trusted. 24 kill points.
TEST_F(CodeStoreTest, SigkillAroundTheArraysFileLosesNoAcknowledgedBatch) {
  constexpr int kPerBatch = 50;
  std::set<int> acknowledged;
  int next_batch = 0;
  auto writer = [&](int first, int ack_fd) {
    StoreOptions o;
    o.bits = 64;
    o.sync_writes = true;
    for (int b = first;; ++b) {
      // Every third batch is written by a fresh open and followed by a clean close, which saves
      // the arrays; the kill may land while they are being written.
      auto store = CodeStore::open(path_, o);
      if (!store.is_ok()) _exit(3);
      for (int j = 0; j < 3; ++j, ++b) {
        std::vector<Item> batch;
        for (int i = 0; i < kPerBatch; ++i) {
          batch.push_back(make_item("k" + std::to_string(b) + "-" + std::to_string(i),
                                    static_cast<uint64_t>(b) * 7919 + i, b % 5));
        }
        if (!(*store)->put(batch).is_ok()) _exit(4);
        acknowledge(ack_fd, b);
      }
      --b;
    }
  };
  ASSERT_NO_FATAL_FAILURE(kill_rounds(24, 77, 400, writer, &acknowledged, &next_batch));
  ASSERT_FALSE(acknowledged.empty());
  auto store = open(64, true);
  ASSERT_TRUE(store->verify().is_ok()) << store->verify().to_string();
  for (int b = 0; b < next_batch + 2; ++b) {
    int present = 0;
    for (int i = 0; i < kPerBatch; ++i) {
      present += store->get("k" + std::to_string(b) + "-" + std::to_string(i)).is_ok();
    }
    EXPECT_TRUE(present == 0 || present == kPerBatch)
        << "batch " << b << " is partial: " << present;
    if (acknowledged.count(b)) {
      EXPECT_EQ(present, kPerBatch) << "acknowledged batch " << b << " lost";
    }
  }
}

// A follower (a RocksDB secondary instance) sees the primary's adds, upserts and deletes after
// catch_up, without reopening, and refuses writes.
TEST_F(CodeStoreTest, AFollowerCatchesUpWithThePrimary) {
  auto primary = open();
  ASSERT_TRUE(primary->put(random_items(100, 1, "p")).is_ok());
  StoreOptions o;
  o.read_only = true;
  o.create_if_missing = false;
  o.secondary_path = (dir_ / "secondary").string();
  auto follower = CodeStore::open(path_, o);
  ASSERT_TRUE(follower.is_ok()) << follower.status().to_string();
  CodeStore& f = **follower;
  EXPECT_EQ(f.info().items, 100u);
  ASSERT_TRUE(primary->put(random_items(50, 2, "q")).is_ok());
  ASSERT_TRUE(primary->put({make_item("p3", 99)}).is_ok());  // an upsert: a new id
  ASSERT_TRUE(primary->erase({"p7", "p8"}).is_ok());
  ASSERT_TRUE(primary->index_field("key").is_ok());
  auto caught = f.catch_up();
  ASSERT_TRUE(caught.is_ok()) << caught.status().to_string();
  EXPECT_EQ(caught->added, 51u);
  EXPECT_EQ(caught->removed, 3u);  // p7, p8 and p3's old id
  EXPECT_EQ(f.info().items, primary->info().items);
  EXPECT_FALSE(f.get("p7").is_ok());
  ASSERT_TRUE(f.get("q10").is_ok());
  EXPECT_EQ(f.get("p3")->code, make_item("p3", 99).code);
  // Searches agree with the primary's, the multi-index included.
  const std::vector<uint8_t> q = make_item("x", 12345).code;
  for (bool mih : {true, false}) {
    auto a = primary->search(q, knn(20, mih));
    auto b = f.search(q, knn(20, mih));
    ASSERT_TRUE(a.is_ok() && b.is_ok());
    ASSERT_EQ(a->size(), b->size());
    for (size_t i = 0; i < a->size(); ++i) EXPECT_EQ((*a)[i].key, (*b)[i].key);
  }
  // An indexed field made on the primary filters on the follower from its postings.
  auto filter = imsat::index::parse_metadata_filter(R"({"must": [{"key": "key", "match": "q5"}]})");
  ASSERT_TRUE(filter.is_ok());
  auto sel = f.select(*filter);
  ASSERT_TRUE(sel.is_ok());
  EXPECT_EQ((*sel)->count, 1u);
  EXPECT_TRUE((*sel)->unindexed.empty());
  EXPECT_FALSE(f.put({make_item("nope", 1)}).is_ok());
  EXPECT_EQ(f.catch_up()->added, 0u);  // nothing new
}

}  // namespace
