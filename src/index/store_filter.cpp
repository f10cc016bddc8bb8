// The code store's metadata filters: evaluating a filter to a selection of slots (labels from
// memory, indexed fields from the fields column family, other fields from the candidates'
// metadata), declaring indexed fields, deleting by filter, and checkpoints.
#include <rocksdb/utilities/checkpoint.h>
#include <rocksdb/write_batch.h>

#include <cstring>
#include <filesystem>

#include "index/store_internal.h"

namespace imsat::index {
namespace {

constexpr size_t kSelectionCacheEntries = 8;
constexpr size_t kIndexBatchItems = 100000;

using Bytes = std::vector<uint8_t>;

bool label_holds(const Condition& c, int32_t tag) {
  if (tag == kNoTag) return false;
  if (c.kind == Condition::Kind::kRange) return c.holds_for_number(tag);
  for (const FieldValue& v : c.values) {
    if (v.kind == FieldValue::Kind::kNumber && v.number == tag) return true;
  }
  return false;
}

bool contains(const std::vector<std::string>& list, const std::string& s) {
  return std::find(list.begin(), list.end(), s) != list.end();
}

}  // namespace

bool CodeStore::Impl::resolvable(const MetadataFilter& f) const {
  for (const auto* list : {&f.must, &f.should, &f.must_not}) {
    for (const Condition& c : *list) {
      switch (c.kind) {
        case Condition::Kind::kNested:
          if (!resolvable(*c.nested)) return false;
          break;
        case Condition::Kind::kHasKey:
          for (const std::string& k : c.keys) {
            if (k != kLabelField && !contains(indexed_fields, k)) return false;
          }
          break;
        default:
          if (c.key != kLabelField && !contains(indexed_fields, c.key)) return false;
      }
    }
  }
  return true;
}

namespace {

// Evaluates resolvable filters to byte maps over the slots, from the tags and the postings of
// the indexed fields (both in memory). Caller holds the state lock.
class Resolver {
 public:
  explicit Resolver(const CodeStore::Impl& store) : s_(store) {}

  Bytes map(const MetadataFilter& f) const {
    const size_t n = s_.codes.size();
    // The first `must` condition's map is the start (every live slot when there is none); the
    // loops are branch-free byte operations the compiler vectorises.
    Bytes out = f.must.empty() ? Bytes(n, 1) : map(f.must.front());
    for (size_t slot = 0; slot < n; ++slot) {
      out[slot] &= static_cast<uint8_t>(!s_.codes.is_deleted(static_cast<uint32_t>(slot)));
    }
    for (size_t c = 1; c < f.must.size(); ++c) {
      const Bytes m = map(f.must[c]);
      for (size_t i = 0; i < n; ++i) out[i] &= m[i];
    }
    for (const Condition& c : f.must_not) {
      const Bytes m = map(c);
      for (size_t i = 0; i < n; ++i) out[i] &= static_cast<uint8_t>(!m[i]);
    }
    if (!f.should.empty()) {
      Bytes any(n, 0);
      for (const Condition& c : f.should) {
        const Bytes m = map(c);
        for (size_t i = 0; i < n; ++i) any[i] |= m[i];
      }
      for (size_t i = 0; i < n; ++i) out[i] &= any[i];
    }
    return out;
  }

 private:
  // Marks the slots of every term in [begin, end).
  void mark(const std::string& begin, const std::string& end, Bytes* out) const {
    for (auto it = s_.postings.lower_bound(begin); it != s_.postings.end() && it->first < end;
         ++it) {
      for (uint32_t slot : it->second) {
        if (slot < out->size()) (*out)[slot] = 1;
      }
    }
  }
  void mark_term(const std::string& term, Bytes* out) const {
    auto it = s_.postings.find(term);
    if (it == s_.postings.end()) return;
    for (uint32_t slot : it->second) {
      if (slot < out->size()) (*out)[slot] = 1;
    }
  }
  static std::string prefix_end(const std::string& field) {
    std::string end = field;
    end += '\x01';  // field_prefix is field + '\0'
    return end;
  }

  Bytes map(const Condition& c) const {
    const size_t n = s_.codes.size();
    if (c.kind == Condition::Kind::kNested) return map(*c.nested);
    Bytes out(n, 0);
    if (c.kind == Condition::Kind::kHasKey) {
      std::fill(out.begin(), out.end(), 1);
      for (const std::string& k : c.keys) {
        Bytes m(n, 0);
        if (k == kLabelField) {
          for (size_t i = 0; i < n; ++i) m[i] = s_.codes.tag(static_cast<uint32_t>(i)) != kNoTag;
        } else {
          mark(field_prefix(k), prefix_end(k), &m);
        }
        for (size_t i = 0; i < n; ++i) out[i] &= m[i];
      }
      return out;
    }
    if (c.key == kLabelField) {
      for (size_t i = 0; i < n; ++i) {
        out[i] = label_holds(c, s_.codes.tag(static_cast<uint32_t>(i)));
      }
      return out;
    }
    if (c.kind == Condition::Kind::kRange) {
      const auto [begin, end] = number_term_range(c.key, c);
      if (begin < end) mark(begin, end, &out);
      return out;
    }
    for (const FieldValue& v : c.values) mark_term(field_term(c.key, v), &out);
    return out;
  }

  const CodeStore::Impl& s_;
};

}  // namespace

Result<Selection> CodeStore::Impl::evaluate(const MetadataFilter& f) const {
  Selection sel;
  std::vector<std::string> indexed;
  {
    std::shared_lock lock(state_mutex);
    indexed = indexed_fields;
  }
  for (const std::string& field : f.fields()) {
    (field == kLabelField || contains(indexed, field) ? sel.indexed : sel.unindexed)
        .push_back(field);
  }
  Resolver resolver(*this);
  // Fully answerable: one byte map from memory. Otherwise the answerable `must` conditions
  // narrow the candidates whose metadata is read.
  MetadataFilter narrowing;
  const bool whole = sel.unindexed.empty();
  if (!whole) {
    std::shared_lock lock(state_mutex);
    for (const Condition& c : f.must) {
      MetadataFilter one;
      one.must.push_back(c);
      if (resolvable(one)) narrowing.must.push_back(c);
    }
  }
  std::vector<uint64_t> candidate_ids;
  std::vector<int32_t> candidate_tags;
  {
    std::shared_lock lock(state_mutex);
    sel.allowed = resolver.map(whole ? f : narrowing);
    sel.version = version;
    if (whole) {
      size_t count = 0;
      for (uint8_t a : sel.allowed) count += a;
      sel.count = count;
      return sel;
    }
    for (size_t slot = 0; slot < sel.allowed.size(); ++slot) {
      if (!sel.allowed[slot]) continue;
      candidate_ids.push_back(slot_ids[slot]);
      candidate_tags.push_back(codes.tag(static_cast<uint32_t>(slot)));
    }
  }
  // The rest: each candidate's metadata, read in chunks (one MultiGet each).
  std::vector<uint8_t> pass(candidate_ids.size(), 0);
  constexpr size_t kChunk = 4096;
  for (size_t start = 0; start < candidate_ids.size(); start += kChunk) {
    const size_t end = std::min(candidate_ids.size(), start + kChunk);
    std::vector<std::string> keys;
    for (size_t i = start; i < end; ++i) keys.push_back(be64(candidate_ids[i]));
    std::vector<rocksdb::PinnableSlice> values;
    std::vector<rocksdb::Status> found;
    multi_get(kMeta, std::vector<rocksdb::Slice>(keys.begin(), keys.end()), &values, &found);
    for (size_t i = start; i < end; ++i) {
      const rocksdb::Status& st = found[i - start];
      if (!st.ok() && !st.IsNotFound()) return translate(st, "reading metadata for a filter");
      const std::string meta = st.ok() ? values[i - start].ToString() : std::string();
      pass[i] = filter_matches(f, meta, candidate_tags[i]);
    }
  }
  sel.metadata_read = candidate_ids.size();
  std::shared_lock lock(state_mutex);
  // Slots of the candidates, found again: items deleted meanwhile drop out.
  std::fill(sel.allowed.begin(), sel.allowed.end(), 0);
  sel.allowed.resize(codes.size(), 0);
  for (size_t i = 0; i < candidate_ids.size(); ++i) {
    if (!pass[i]) continue;
    const int64_t slot = slot_of(candidate_ids[i]);
    if (slot >= 0) {
      sel.allowed[static_cast<size_t>(slot)] = 1;
      ++sel.count;
    }
  }
  sel.version = version;
  return sel;
}

namespace {

// Lists the selected slots when they are at most three quarters (Selection::slots).
void keep_sparse_slots(Selection* sel) {
  if (sel->count * 4 > sel->allowed.size() * 3) return;
  sel->slots.reserve(sel->count);
  const uint8_t* a = sel->allowed.data();
  const size_t n = sel->allowed.size();
  size_t slot = 0;
  for (; slot + 8 <= n; slot += 8) {  // eight bytes at a time: most are zero
    uint64_t word;
    std::memcpy(&word, a + slot, 8);
    if (word == 0) continue;
    for (size_t j = 0; j < 8; ++j) {
      if (a[slot + j]) sel->slots.push_back(static_cast<uint32_t>(slot + j));
    }
  }
  for (; slot < n; ++slot) {
    if (a[slot]) sel->slots.push_back(static_cast<uint32_t>(slot));
  }
}

}  // namespace

namespace {

// The selected items' codes packed together (Selection::compact), when eligible; nullptr when the
// store changed since the selection was made (it is then not reused anyway).
std::shared_ptr<const CodeArray> pack_selection(const CodeStore::Impl& x, const Selection& sel) {
  if (sel.slots.empty() || sel.slots.size() * x.codes.words() * 8 > kCompactSelectionBytes) {
    return nullptr;
  }
  auto compact = std::make_shared<CodeArray>(x.schema.bits);
  compact->reserve(sel.slots.size());
  std::shared_lock lock(x.state_mutex);
  if (x.version != sel.version) return nullptr;
  for (uint32_t slot : sel.slots) compact->append_words(x.codes.code(slot), x.codes.tag(slot));
  return compact;
}

}  // namespace

Result<std::shared_ptr<const Selection>> CodeStore::select(const MetadataFilter& filter,
                                                           bool for_search) const {
  uint64_t version;
  {
    std::shared_lock lock(impl_->state_mutex);
    version = impl_->version;
  }
  std::shared_ptr<const Selection> cached;
  {
    std::lock_guard lock(impl_->selection_mutex);
    for (const auto& [text, sel] : impl_->selection_cache) {
      if (text == filter.canonical && sel->version == version) cached = sel;
    }
  }
  if (cached != nullptr && (!for_search || cached->compact != nullptr || cached->slots.empty())) {
    return cached;
  }
  Selection sel;
  if (cached != nullptr) {
    sel = *cached;  // reused for a search: its packed codes are added once
  } else {
    IMSAT_ASSIGN_OR_RETURN(sel, impl_->evaluate(filter));
    keep_sparse_slots(&sel);
  }
  // Packed codes only for searches (counts, scrolls and deletes do not read codes): at most
  // three quarters of the slots, a SIMD scan of just them beats both the whole scan and
  // computing their distances one by one.
  if (for_search) sel.compact = pack_selection(*impl_, sel);
  auto shared = std::make_shared<const Selection>(std::move(sel));
  if (!filter.canonical.empty()) {
    std::lock_guard lock(impl_->selection_mutex);
    auto& cache = impl_->selection_cache;
    cache.erase(std::remove_if(cache.begin(), cache.end(),
                               [&](const auto& e) {
                                 return e.first == filter.canonical ||
                                        e.second->version != shared->version;
                               }),
                cache.end());
    if (cache.size() >= kSelectionCacheEntries) cache.erase(cache.begin());
    cache.emplace_back(filter.canonical, shared);
  }
  return shared;
}

Result<std::shared_ptr<const Selection>> CodeStore::select_keys(
    const std::vector<std::string>& keys, bool for_search) const {
  std::vector<uint64_t> ids;
  ids.reserve(keys.size());
  for (const std::string& key : keys) {
    Result<uint64_t> id = impl_->lookup_id(key);
    if (id.is_ok()) {
      ids.push_back(*id);
    } else if (id.status().code() != Status::Code::kNotFound) {
      return id.status();
    }
  }
  Selection sel;
  {
    std::shared_lock lock(impl_->state_mutex);
    sel.version = impl_->version;
    sel.allowed.assign(impl_->codes.size(), 0);
    for (uint64_t id : ids) {
      const int64_t slot = impl_->slot_of(id);
      if (slot < 0 || sel.allowed[static_cast<size_t>(slot)]) continue;
      sel.allowed[static_cast<size_t>(slot)] = 1;
      ++sel.count;
    }
  }
  keep_sparse_slots(&sel);
  if (for_search) sel.compact = pack_selection(*impl_, sel);
  return std::make_shared<const Selection>(std::move(sel));
}

std::vector<std::string> CodeStore::indexed_fields() const {
  std::shared_lock lock(impl_->state_mutex);
  return impl_->indexed_fields;
}

Status CodeStore::index_field(const std::string& field) {
  IMSAT_RETURN_IF_ERROR(check_field_name(field));
  IMSAT_RETURN_IF_ERROR(impl_->check_writable());
  if (impl_->cf[kFields] == nullptr) {
    return Status::invalid_argument(impl_->path + ": this store has no fields column family");
  }
  std::lock_guard writer(impl_->writer_mutex);
  std::vector<std::string> fields = indexed_fields();
  if (contains(fields, field)) return Status::ok();
  // Every stored item's values of the field, with its terms list extended, in batches. An
  // interrupted backfill leaves entries that nothing consults until the declaration is written
  // (the last batch), and declaring the field again rewrites them.
  std::unique_ptr<rocksdb::Iterator> it(
      impl_->db->NewIterator(rocksdb::ReadOptions(), impl_->cf[kMeta]));
  rocksdb::WriteBatch batch;
  size_t in_batch = 0;
  std::vector<std::pair<uint64_t, std::string>> posted;  // (id, term), ids increasing
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    const rocksdb::Slice key = it->key();
    if (key.size() != 8) continue;  // metadata records only
    const uint64_t id = from_be64(key);
    const std::vector<std::string> terms = metadata_terms(it->value().ToString(), {field});
    if (terms.empty()) continue;
    for (const std::string& t : terms) posted.emplace_back(id, t);
    std::string old;
    const rocksdb::Status g =
        impl_->db->Get(rocksdb::ReadOptions(), impl_->cf[kMeta], terms_key(id), &old);
    if (!g.ok() && !g.IsNotFound()) return translate(g, "reading an item's field terms");
    std::vector<std::string> all = decode_terms(old);
    for (const std::string& t : terms) {
      IMSAT_RETURN_IF_ERROR(
          translate(batch.Put(impl_->cf[kFields], t + be64(id), ""), "indexing a field"));
      if (!contains(all, t)) all.push_back(t);
    }
    IMSAT_RETURN_IF_ERROR(
        translate(batch.Put(impl_->cf[kMeta], terms_key(id), encode_terms(all)), "indexing"));
    if (++in_batch == kIndexBatchItems) {
      IMSAT_RETURN_IF_ERROR(
          translate_write(impl_->db->Write(impl_->write_options, &batch), "indexing a field"));
      batch.Clear();
      in_batch = 0;
    }
  }
  IMSAT_RETURN_IF_ERROR(translate(it->status(), "reading metadata to index '" + field + "'"));
  fields.push_back(field);
  IMSAT_RETURN_IF_ERROR(
      translate(batch.Put(impl_->cf[kSchema], "fields", encode_field_list(fields)), "indexing"));
  IMSAT_RETURN_IF_ERROR(translate_write(impl_->db->Write(impl_->write_options, &batch),
                                        "declaring an indexed field"));
  std::unique_lock lock(impl_->state_mutex);
  for (const auto& [id, term] : posted) {
    const int64_t slot = impl_->slot_of(id);
    if (slot >= 0) impl_->post(term, static_cast<uint32_t>(slot));
  }
  impl_->indexed_fields = std::move(fields);
  ++impl_->version;
  return Status::ok();
}

Result<size_t> CodeStore::erase_where(const MetadataFilter& filter) {
  IMSAT_RETURN_IF_ERROR(impl_->check_writable());
  std::lock_guard writer(impl_->writer_mutex);
  // Writers are held off, so the selection is exactly what the batch deletes.
  IMSAT_ASSIGN_OR_RETURN(Selection sel, impl_->evaluate(filter));
  std::vector<uint64_t> ids;
  {
    std::shared_lock lock(impl_->state_mutex);
    for (size_t slot = 0; slot < sel.allowed.size(); ++slot) {
      if (sel.allowed[slot] && !impl_->codes.is_deleted(static_cast<uint32_t>(slot))) {
        ids.push_back(impl_->slot_ids[slot]);
      }
    }
  }
  if (ids.empty()) return size_t{0};
  IMSAT_ASSIGN_OR_RETURN(std::vector<std::string> keys, impl_->read_keys(ids));
  return impl_->erase_locked(keys);
}

Status CodeStore::checkpoint(const std::string& dir) const {
  std::error_code ec;
  if (std::filesystem::exists(dir, ec)) {
    return Status::invalid_argument(dir + ": already exists; a checkpoint needs a new folder");
  }
  rocksdb::Checkpoint* raw = nullptr;
  IMSAT_RETURN_IF_ERROR(
      translate(rocksdb::Checkpoint::Create(impl_->db.get(), &raw), "creating a checkpoint"));
  std::unique_ptr<rocksdb::Checkpoint> cp(raw);
  // No write between the checkpoint and the arrays saved beside it, so that the copy opens from
  // them (a 1e8-item store in seconds) rather than rebuilding them from its records.
  std::lock_guard writer(impl_->writer_mutex);
  // log_size_for_flush = 0: the memtables are flushed first, so the copy holds no log to replay.
  IMSAT_RETURN_IF_ERROR(translate(cp->CreateCheckpoint(dir, 0), dir + ": writing a checkpoint"));
  // Failing to write them only costs the copy's first open the rebuild.
  if (impl_->arrays_enabled) impl_->save_arrays(dir).ignore();
  return Status::ok();
}

}  // namespace imsat::index
