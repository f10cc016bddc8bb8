// Consistency check of a code store: codes, keys and bucket entries against each other and
// against memory.
#include <cstring>

#include "index/store_internal.h"

namespace imsat::index {

Status CodeStore::verify() const {
  std::lock_guard writer(impl_->writer_mutex);
  std::shared_lock lock(impl_->state_mutex);
  const Impl& x = *impl_;
  const size_t code_bytes = x.codes.code_bytes();
  // Every live slot has its code record, key record and one bucket entry per table.
  size_t code_records = 0;
  std::unique_ptr<rocksdb::Iterator> it(x.db->NewIterator(rocksdb::ReadOptions(), x.cf[kCodes]));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    ++code_records;
    const uint64_t id = from_be64(it->key());
    const int64_t slot = x.slot_of(id);
    if (slot < 0)
      return Status::corruption("code record " + std::to_string(id) +
                                " has no live item in memory");
    if (std::memcmp(it->value().data(), x.codes.code(static_cast<uint32_t>(slot)), code_bytes) !=
        0) {
      return Status::corruption("code record " + std::to_string(id) + " differs from memory");
    }
    if (it->value().size() <= code_bytes + 4) {
      return Status::corruption("code record " + std::to_string(id) + " is damaged");
    }
    const std::string key(it->value().data() + code_bytes + 4, it->value().size() - code_bytes - 4);
    Result<uint64_t> mapped = x.lookup_id(key);
    if (!mapped.is_ok() && mapped.status().code() != Status::Code::kNotFound) {
      return mapped.status();  // a damaged table: RocksDB's message names the file
    }
    if (!mapped.is_ok() || *mapped != id) {
      return Status::corruption(x.path + ": key '" + key +
                                "' does not map to its item (the multi-index and keys can be "
                                "rebuilt with imsat repair)");
    }
    for (int t = 0; x.schema.persist_buckets && t < x.mih.tables(); ++t) {
      std::string v;
      const std::string bk =
          bucket_key(t, x.mih.substring(t, x.codes.code(static_cast<uint32_t>(slot))), id);
      const rocksdb::Status got = x.db->Get(rocksdb::ReadOptions(), x.cf[kBuckets], bk, &v);
      if (!got.ok() && !got.IsNotFound()) return translate(got, x.path + ": reading buckets");
      if (!got.ok()) {
        return Status::corruption(x.path + ": bucket entry of item " + std::to_string(id) +
                                  " in table " + std::to_string(t) +
                                  " is missing (imsat repair rebuilds the multi-index)");
      }
    }
  }
  IMSAT_RETURN_IF_ERROR(translate(it->status(), "reading codes"));
  if (code_records != x.codes.live()) {
    return Status::corruption(std::to_string(code_records) + " code records but " +
                              std::to_string(x.codes.live()) + " live items in memory");
  }
  size_t key_records = 0, bucket_records = 0;
  std::unique_ptr<rocksdb::Iterator> kit(x.db->NewIterator(rocksdb::ReadOptions(), x.cf[kKeys]));
  for (kit->SeekToFirst(); kit->Valid(); kit->Next()) ++key_records;
  std::unique_ptr<rocksdb::Iterator> bit(x.db->NewIterator(rocksdb::ReadOptions(), x.cf[kBuckets]));
  for (bit->SeekToFirst(); bit->Valid(); bit->Next()) ++bucket_records;
  if (key_records != code_records) {
    return Status::corruption(std::to_string(key_records) + " key records for " +
                              std::to_string(code_records) + " items");
  }
  const size_t expected_buckets =
      x.schema.persist_buckets ? code_records * static_cast<size_t>(x.mih.tables()) : 0;
  if (bucket_records != expected_buckets) {
    return Status::corruption(std::to_string(bucket_records) + " bucket entries for " +
                              std::to_string(code_records) + " items in " +
                              std::to_string(x.mih.tables()) + " tables");
  }
  return Status::ok();
}

}  // namespace imsat::index
