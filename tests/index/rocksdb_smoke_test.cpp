// Foundation smoke test: RocksDB writes, closes, reopens and reads back.
#include <gtest/gtest.h>
#include <rocksdb/db.h>

#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>

namespace {

std::filesystem::path fresh_dir() {
  std::string tmpl = (std::filesystem::temp_directory_path() / "imsat-rocksdb-XXXXXX").string();
  char* made = mkdtemp(tmpl.data());
  EXPECT_NE(made, nullptr);
  return tmpl;
}

TEST(RocksDbSmoke, WriteReopenRead) {
  const std::filesystem::path dir = fresh_dir();
  rocksdb::Options options;
  options.create_if_missing = true;
  {
    rocksdb::DB* raw = nullptr;
    ASSERT_TRUE(rocksdb::DB::Open(options, dir.string(), &raw).ok());
    std::unique_ptr<rocksdb::DB> db(raw);
    rocksdb::WriteOptions sync;
    sync.sync = true;
    ASSERT_TRUE(db->Put(sync, "key-1", "value-1").ok());
    ASSERT_TRUE(db->Put(sync, "key-2", std::string("\0binary\xff", 8)).ok());
    ASSERT_TRUE(db->Close().ok());
  }
  rocksdb::DB* raw = nullptr;
  ASSERT_TRUE(rocksdb::DB::Open(options, dir.string(), &raw).ok());
  std::unique_ptr<rocksdb::DB> db(raw);
  std::string value;
  ASSERT_TRUE(db->Get(rocksdb::ReadOptions(), "key-1", &value).ok());
  EXPECT_EQ(value, "value-1");
  ASSERT_TRUE(db->Get(rocksdb::ReadOptions(), "key-2", &value).ok());
  EXPECT_EQ(value, std::string("\0binary\xff", 8));
  EXPECT_TRUE(db->Get(rocksdb::ReadOptions(), "missing", &value).IsNotFound());
  ASSERT_TRUE(db->Close().ok());
  db.reset();
  std::filesystem::remove_all(dir);
}

}  // namespace
