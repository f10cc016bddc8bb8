// Opening and creating a code store: atomic creation, schema checks, and rebuilding the in-memory
// code array and multi-index from the codes column family.
#include <rocksdb/filter_policy.h>
#include <rocksdb/table.h>
#include <rocksdb/write_batch.h>

#include <cstring>
#include <filesystem>

#include "index/store_internal.h"

namespace imsat::index {

CodeStore::CodeStore(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
CodeStore::~CodeStore() = default;

Result<std::unique_ptr<CodeStore>> CodeStore::open(const std::string& path,
                                                   const StoreOptions& options) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::exists(fs::path(path) / "CURRENT", ec) && options.create_if_missing &&
      options.bits != 0 && (!fs::exists(path, ec) || fs::is_empty(path, ec))) {
    // Creation is made atomic: the store is built complete (column families, schema) in a
    // sibling folder and renamed into place, so a crash never leaves a half-made store.
    IMSAT_RETURN_IF_ERROR(check_code_bits(options.bits));
    const fs::path target = fs::absolute(path, ec);
    const std::string staging = target.string() + ".creating";
    if (target.has_parent_path()) fs::create_directories(target.parent_path(), ec);
    fs::remove_all(staging, ec);
    {
      StoreOptions create = options;
      create.sync_writes = true;
      IMSAT_ASSIGN_OR_RETURN(std::unique_ptr<CodeStore> made,
                             open_existing_or_new(staging, create));
    }
    fs::rename(staging, target, ec);
    if (ec)
      return Status::io_error(path + ": cannot move the new store into place: " + ec.message());
  }
  return open_existing_or_new(path, options);
}

Result<std::unique_ptr<CodeStore>> CodeStore::open_existing_or_new(const std::string& path,
                                                                   const StoreOptions& options) {
  if (options.bits != 0) IMSAT_RETURN_IF_ERROR(check_code_bits(options.bits));
  std::error_code ec;
  const bool exists = std::filesystem::exists(std::filesystem::path(path) / "CURRENT", ec);
  if (!exists && !options.create_if_missing)
    return Status::not_found(path + ": no code store here");
  if (!exists && options.bits == 0) {
    return Status::invalid_argument(path + ": creating a store needs the code length (bits)");
  }
  if (!exists && std::filesystem::exists(path, ec) && !std::filesystem::is_empty(path, ec)) {
    return Status::invalid_argument(path +
                                    ": exists and is not a code store (no RocksDB CURRENT file)");
  }

  auto impl = std::make_unique<Impl>();
  impl->path = path;
  impl->options = options;
  impl->write_options.sync = options.sync_writes;

  rocksdb::Options db_options;
  db_options.create_if_missing = options.create_if_missing;
  db_options.create_missing_column_families = !exists;
  db_options.paranoid_checks = true;
  db_options.IncreaseParallelism(2);
  rocksdb::BlockBasedTableOptions table;
  table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
  rocksdb::ColumnFamilyOptions keys_options;
  keys_options.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
  // A bulk load writes several records per code; a third memtable lets writes continue while
  // two flush.
  keys_options.write_buffer_size = 64 << 20;
  keys_options.max_write_buffer_number = 3;
  rocksdb::ColumnFamilyOptions bulk_options;
  bulk_options.write_buffer_size = 64 << 20;
  bulk_options.max_write_buffer_number = 3;

  impl->db_options = db_options;
  std::vector<rocksdb::ColumnFamilyDescriptor> descriptors;
  for (int i = 0; i < kCfCount; ++i) {
    descriptors.emplace_back(kCfNames[i], i == kKeys ? keys_options : bulk_options);
  }
  if (exists) {
    std::vector<std::string> present;
    Status s = translate(rocksdb::DB::ListColumnFamilies(db_options, path, &present),
                         path + ": reading column families");
    if (!s.is_ok()) return s;
    for (int i = 1; i < kCfCount; ++i) {
      if (std::find(present.begin(), present.end(), kCfNames[i]) == present.end()) {
        return Status::corruption(path + ": not an imsat code store (column family '" +
                                  std::string(kCfNames[i]) + "' is missing)");
      }
    }
  }
  rocksdb::DB* raw = nullptr;
  Status s = translate(rocksdb::DB::Open(db_options, path, descriptors, &impl->cf, &raw),
                       path + ": opening the code store");
  if (!s.is_ok()) return s;
  impl->db.reset(raw);

  std::string schema_text;
  rocksdb::Status gs =
      impl->db->Get(rocksdb::ReadOptions(), impl->cf[kSchema], "schema", &schema_text);
  if (gs.IsNotFound()) {
    if (exists) return Status::corruption(path + ": the schema record is missing");
    impl->schema.bits = options.bits;
    impl->schema.tables = options.tables > 0
                              ? options.tables
                              : MultiIndex::default_tables(options.bits, options.expected_items);
    impl->schema.fingerprint = options.model_fingerprint;
    // Normalise through MultiIndex, which caps substrings at 32 bits.
    impl->schema.tables = MultiIndex(options.bits, impl->schema.tables).tables();
    rocksdb::WriteBatch batch;
    batch.Put(impl->cf[kSchema], "schema", impl->schema.encode());
    batch.Put(impl->cf[kSchema], "next_id", be64(1));
    s = translate(impl->db->Write(impl->write_options, &batch), path + ": writing the schema");
    if (!s.is_ok()) return s;
  } else {
    s = translate(gs, path + ": reading the schema");
    if (!s.is_ok()) return s;
    Result<Schema> schema = Schema::decode(schema_text);
    if (!schema.is_ok()) return Status::corruption(path + ": " + schema.status().message());
    impl->schema = *schema;
    if (impl->schema.format_version != kStoreFormatVersion) {
      return Status::invalid_argument(
          path + ": store format version " + std::to_string(impl->schema.format_version) +
          ", this build reads version " + std::to_string(kStoreFormatVersion));
    }
    if (check_code_bits(impl->schema.bits).is_ok() == false) {
      return Status::corruption(path + ": schema holds an invalid code length");
    }
    if (options.bits != 0 && options.bits != impl->schema.bits) {
      return Status::invalid_argument(path + ": the store holds " +
                                      std::to_string(impl->schema.bits) + "-bit codes, but " +
                                      std::to_string(options.bits) + "-bit codes were asked for");
    }
    if (!options.model_fingerprint.empty() && !impl->schema.fingerprint.empty() &&
        options.model_fingerprint != impl->schema.fingerprint) {
      return Status::invalid_argument(path + ": the store was built with model " +
                                      impl->schema.fingerprint + ", not " +
                                      options.model_fingerprint);
    }
  }
  const int bits = impl->schema.bits;
  impl->codes = CodeArray(bits);
  impl->mih = MultiIndex(bits, impl->schema.tables, options.expected_items);
  if (impl->mih.tables() != impl->schema.tables) {
    return Status::corruption(path + ": schema holds an invalid number of tables");
  }

  std::string next;
  gs = impl->db->Get(rocksdb::ReadOptions(), impl->cf[kSchema], "next_id", &next);
  if (!gs.ok() || next.size() != 8)
    return Status::corruption(path + ": next_id record is missing or damaged");
  impl->next_id = from_be64(next);

  // Rebuild the in-memory array from the codes column family, in id order.
  const size_t code_bytes = static_cast<size_t>(bits) / 8;
  std::unique_ptr<rocksdb::Iterator> it(
      impl->db->NewIterator(rocksdb::ReadOptions(), impl->cf[kCodes]));
  uint64_t last_id = 0;
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    if (it->key().size() != 8 || it->value().size() < code_bytes + 4) {
      return Status::corruption(path + ": a code record is damaged");
    }
    const uint64_t id = from_be64(it->key());
    if (id >= impl->next_id || id <= last_id) {
      return Status::corruption(path + ": code record id " + std::to_string(id) +
                                " is out of order");
    }
    last_id = id;
    const rocksdb::Slice v = it->value();
    int32_t tag;
    std::memcpy(&tag, v.data() + code_bytes, 4);
    const std::string key(v.data() + code_bytes + 4, v.size() - code_bytes - 4);
    const uint32_t slot = impl->codes.append(reinterpret_cast<const uint8_t*>(v.data()), tag);
    (void)slot;
    impl->slot_ids.push_back(id);
    impl->key_blob += key;
    impl->key_offsets.push_back(impl->key_blob.size());
  }
  s = translate(it->status(), path + ": reading codes");
  if (!s.is_ok()) return s;
  impl->mih = MultiIndex(bits, impl->schema.tables, impl->codes.size());
  impl->mih.rebuild(impl->codes);
  return std::unique_ptr<CodeStore>(new CodeStore(std::move(impl)));
}

}  // namespace imsat::index
