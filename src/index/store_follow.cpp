// Followers: a store opened as a RocksDB secondary instance of a store another process writes.
// catch_up() replays the primary's new writes (TryCatchUpWithPrimary) and applies them to the
// in-memory arrays: items with ids beyond the last one seen are appended in id order; when the
// live count then disagrees with the store's item record, the items whose code records are gone
// (deleted, or replaced under a new id) are found and tombstoned.
#include <chrono>
#include <cstring>

#include "index/store_internal.h"

namespace imsat::index {

namespace {

// The primary's counters and indexed fields as the secondary sees them now.
struct PrimaryState {
  uint64_t next_id = 0, items = 0, generation = 0;
  std::vector<std::string> fields;
};

Result<PrimaryState> read_primary_state(const CodeStore::Impl& x, const rocksdb::ReadOptions& ro) {
  auto read_u64 = [&](const char* name, uint64_t* v) -> Status {
    std::string value;
    const rocksdb::Status s = x.db->Get(ro, x.cf[kSchema], name, &value);
    if (!s.ok()) return translate(s, x.path + ": reading " + name);
    if (value.size() != 8)
      return Status::corruption(x.path + ": the " + name + " record is damaged");
    *v = from_be64(value);
    return Status::ok();
  };
  PrimaryState p;
  IMSAT_RETURN_IF_ERROR(read_u64("next_id", &p.next_id));
  IMSAT_RETURN_IF_ERROR(read_u64("items", &p.items));
  IMSAT_RETURN_IF_ERROR(read_u64("generation", &p.generation));
  std::string field_list;
  const rocksdb::Status fs = x.db->Get(ro, x.cf[kSchema], "fields", &field_list);
  if (!fs.ok() && !fs.IsNotFound()) return translate(fs, x.path + ": reading indexed fields");
  IMSAT_ASSIGN_OR_RETURN(p.fields, decode_field_list(field_list));
  return p;
}

struct NewItem {
  uint64_t id;
  std::string code;
  int32_t tag;
  std::vector<std::string> terms;  // field terms, when fields are indexed
};

// Code records from the first id not seen yet, with their field terms when `fields` is not empty.
Result<std::vector<NewItem>> read_new_items(const CodeStore::Impl& x,
                                            const rocksdb::ReadOptions& ro,
                                            const std::vector<std::string>& fields) {
  std::vector<NewItem> added;
  const size_t code_bytes = x.codes.code_bytes();
  std::unique_ptr<rocksdb::Iterator> it(x.db->NewIterator(ro, x.cf[kCodes]));
  for (it->Seek(be64(x.next_id)); it->Valid(); it->Next()) {
    if (it->key().size() != 8 || it->value().size() < code_bytes + 4) {
      return Status::corruption(x.path + ": a code record is damaged");
    }
    NewItem n;
    n.id = from_be64(it->key());
    n.code.assign(it->value().data(), code_bytes);
    std::memcpy(&n.tag, it->value().data() + code_bytes, 4);
    added.push_back(std::move(n));
  }
  IMSAT_RETURN_IF_ERROR(translate(it->status(), x.path + ": reading new codes"));
  if (fields.empty() || x.cf[kFields] == nullptr || added.empty()) return added;
  std::vector<std::string> keys;
  for (const NewItem& n : added) keys.push_back(terms_key(n.id));
  std::vector<rocksdb::PinnableSlice> values;
  std::vector<rocksdb::Status> found;
  x.multi_get(kMeta, std::vector<rocksdb::Slice>(keys.begin(), keys.end()), &values, &found);
  for (size_t i = 0; i < keys.size(); ++i) {
    if (found[i].ok()) added[i].terms = decode_terms(values[i].ToString());
  }
  return added;
}

// Tombstones the live slots whose code record is gone (deleted, or replaced under a new id).
Result<size_t> remove_gone(CodeStore::Impl& x, const rocksdb::ReadOptions& ro) {
  std::vector<uint64_t> live_ids;
  {
    std::unique_ptr<rocksdb::Iterator> it(x.db->NewIterator(ro, x.cf[kCodes]));
    for (it->SeekToFirst(); it->Valid(); it->Next()) live_ids.push_back(from_be64(it->key()));
    IMSAT_RETURN_IF_ERROR(translate(it->status(), x.path + ": reading codes"));
  }
  std::unique_lock lock(x.state_mutex);
  size_t removed = 0, j = 0;
  for (size_t slot = 0; slot < x.codes.size(); ++slot) {
    if (x.codes.is_deleted(static_cast<uint32_t>(slot))) continue;
    const uint64_t id = x.slot_ids[slot];
    while (j < live_ids.size() && live_ids[j] < id) ++j;
    if (j == live_ids.size() || live_ids[j] != id) {
      x.codes.erase(static_cast<uint32_t>(slot));
      ++removed;
    }
  }
  ++x.version;
  return removed;
}

// A field was indexed on the primary: every posting again, from the fields family.
void reload_postings(CodeStore::Impl& x, const rocksdb::ReadOptions& ro,
                     const std::vector<std::string>& fields) {
  std::unique_lock lock(x.state_mutex);
  x.postings.clear();
  x.posting_entries = 0;
  std::unique_ptr<rocksdb::Iterator> it(x.db->NewIterator(ro, x.cf[kFields]));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    const rocksdb::Slice k = it->key();
    if (k.size() < 9) continue;
    const int64_t slot = x.slot_of(from_be64(rocksdb::Slice(k.data() + k.size() - 8, 8)));
    if (slot >= 0) x.post(std::string(k.data(), k.size() - 8), static_cast<uint32_t>(slot));
  }
  x.indexed_fields = fields;
  ++x.version;
}

}  // namespace

Result<CodeStore::CatchUp> CodeStore::catch_up() {
  Impl& x = *impl_;
  if (x.options.secondary_path.empty()) {
    return Status::invalid_argument(x.path + ": not a follower (open with a secondary path)");
  }
  std::lock_guard writer(x.writer_mutex);  // one catch-up at a time
  IMSAT_RETURN_IF_ERROR(translate(x.db->TryCatchUpWithPrimary(), x.path + ": catching up"));
  IMSAT_ASSIGN_OR_RETURN(const uint64_t generation, recorded_generation(x.db.get(), x.cf[kSchema]));
  CatchUp out;
  if (generation == x.generation) return out;

  // The secondary's view changes only in TryCatchUpWithPrimary, which runs under the writer lock
  // held here, so the reads below agree with each other (secondaries have no snapshots).
  const rocksdb::ReadOptions ro;
  IMSAT_ASSIGN_OR_RETURN(const PrimaryState primary, read_primary_state(x, ro));
  IMSAT_ASSIGN_OR_RETURN(const std::vector<NewItem> added, read_new_items(x, ro, primary.fields));
  {
    std::unique_lock lock(x.state_mutex);
    for (const NewItem& n : added) {
      x.append_memory(n.id, reinterpret_cast<const uint8_t*>(n.code.data()), n.tag);
      for (const std::string& t : n.terms) x.post(t, static_cast<uint32_t>(x.codes.size() - 1));
    }
    x.next_id = std::max(x.next_id, primary.next_id);
    out.added = added.size();
    ++x.version;
  }
  if (x.codes.live() != primary.items) {
    IMSAT_ASSIGN_OR_RETURN(out.removed, remove_gone(x, ro));
  }
  if (primary.fields != x.indexed_fields) reload_postings(x, ro, primary.fields);
  x.generation = primary.generation;
  return out;
}

void CodeStore::follow(int interval_ms) {
  Impl& x = *impl_;
  if (x.follower.joinable()) return;
  x.follower = std::thread([this, &x, interval_ms] {
    std::unique_lock lock(x.follow_mutex);
    while (!x.follow_stop) {
      lock.unlock();
      Result<CatchUp> r = catch_up();
      lock.lock();
      x.follow_error = r.is_ok() ? "" : r.status().message();
      x.follow_wake.wait_for(lock, std::chrono::milliseconds(interval_ms),
                             [&] { return x.follow_stop; });
    }
  });
}

std::string CodeStore::follow_error() const {
  std::lock_guard lock(impl_->follow_mutex);
  return impl_->follow_error;
}

}  // namespace imsat::index
