// The code store's read path: item, metadata and vector reads by key or id, Hamming search over
// the in-memory codes, and the statistics that diagnostics sample.
#include <algorithm>
#include <cstring>
#include <numeric>

#include "index/store_internal.h"

namespace imsat::index {

StoreInfo CodeStore::info() const {
  StoreInfo i;
  const DiskReport disk = disk_report();
  i.writable = disk.writable;
  i.not_writable = disk.reason;
  std::shared_lock lock(impl_->state_mutex);
  i.bits = impl_->schema.bits;
  i.tables = impl_->schema.tables;
  i.format_version = impl_->schema.format_version;
  i.model_fingerprint = impl_->schema.fingerprint;
  i.metric = impl_->schema.metric;
  i.items = impl_->codes.live();
  i.open_source = impl_->open_source;
  i.memory_bytes = impl_->codes.memory_bytes() + impl_->mih.memory_bytes() +
                   impl_->slot_ids.memory_bytes() + impl_->posting_entries * 4 +
                   impl_->postings.size() * 64;
  return i;
}

int CodeStore::bits() const { return impl_->schema.bits; }

Result<Item> CodeStore::get(const std::string& key) const {
  IMSAT_ASSIGN_OR_RETURN(uint64_t id, impl_->lookup_id(key));
  Item item;
  item.key = key;
  {
    std::shared_lock lock(impl_->state_mutex);
    const int64_t slot = impl_->slot_of(id);
    if (slot < 0) return Status::not_found("no item with key '" + key + "'");
    item.code.resize(impl_->codes.code_bytes());
    impl_->codes.unpack(static_cast<uint32_t>(slot), item.code.data());
    item.tag = impl_->codes.tag(static_cast<uint32_t>(slot));
  }
  rocksdb::Status s =
      impl_->db->Get(rocksdb::ReadOptions(), impl_->cf[kMeta], be64(id), &item.metadata);
  if (!s.ok() && !s.IsNotFound()) return translate(s, "reading metadata of '" + key + "'");
  std::string v;
  s = impl_->db->Get(rocksdb::ReadOptions(), impl_->cf[kMeta], vector_key(id), &v);
  if (!s.ok() && !s.IsNotFound()) return translate(s, "reading the vector of '" + key + "'");
  item.vector.resize(v.size() / sizeof(float));
  if (!v.empty()) std::memcpy(item.vector.data(), v.data(), item.vector.size() * sizeof(float));
  return item;
}

Result<std::string> CodeStore::thumbnail(const std::string& key) const {
  IMSAT_ASSIGN_OR_RETURN(uint64_t id, impl_->lookup_id(key));
  std::string out;
  const rocksdb::Status s =
      impl_->db->Get(rocksdb::ReadOptions(), impl_->cf[kMeta], thumbnail_key(id), &out);
  if (s.IsNotFound()) return Status::not_found("item '" + key + "' has no stored thumbnail");
  if (!s.ok()) return translate(s, "reading the thumbnail of '" + key + "'");
  return out;
}

Result<std::vector<Item>> CodeStore::scroll(uint64_t after_id, size_t limit, uint64_t* last_id,
                                            const Selection* selection, bool* more) const {
  std::vector<Item> out;
  std::vector<uint64_t> ids;
  *last_id = after_id;
  if (more != nullptr) *more = false;
  {
    std::shared_lock lock(impl_->state_mutex);
    const CodeArray& codes = impl_->codes;
    for (auto slot = static_cast<uint32_t>(impl_->slot_ids.upper_bound(after_id));
         slot < codes.size() && out.size() < limit; ++slot) {
      if (codes.is_deleted(slot)) continue;
      if (selection != nullptr &&
          (slot >= selection->allowed.size() || !selection->allowed[slot])) {
        continue;
      }
      Item item;
      item.code.resize(codes.code_bytes());
      codes.unpack(slot, item.code.data());
      item.tag = codes.tag(slot);
      out.push_back(std::move(item));
      ids.push_back(impl_->slot_ids[slot]);
    }
  }
  if (!ids.empty()) *last_id = ids.back();
  // The walk stopped at `limit` items: more may follow (even when some of these were deleted
  // since and drop out below).
  if (more != nullptr) *more = out.size() == limit;
  IMSAT_ASSIGN_OR_RETURN(std::vector<std::string> keys, impl_->read_keys(ids));
  IMSAT_ASSIGN_OR_RETURN(std::vector<std::string> meta, metadata(ids));
  std::vector<Item> kept;  // items deleted since the slots were read drop out
  kept.reserve(out.size());
  for (size_t i = 0; i < out.size(); ++i) {
    if (keys[i].empty()) continue;
    out[i].key = std::move(keys[i]);
    out[i].metadata = std::move(meta[i]);
    kept.push_back(std::move(out[i]));
  }
  return kept;
}

Result<size_t> CodeStore::count_existing(const std::vector<std::string>& keys,
                                         std::vector<std::string>* found, size_t max_found) const {
  std::vector<rocksdb::Slice> slices(keys.begin(), keys.end());
  std::vector<rocksdb::PinnableSlice> values;
  std::vector<rocksdb::Status> statuses;
  impl_->multi_get(kKeys, slices, &values, &statuses);
  size_t n = 0;
  for (size_t i = 0; i < keys.size(); ++i) {
    if (statuses[i].IsNotFound()) continue;
    IMSAT_RETURN_IF_ERROR(translate(statuses[i], "reading key '" + keys[i] + "'"));
    if (found != nullptr && found->size() < max_found) found->push_back(keys[i]);
    ++n;
  }
  return n;
}

Result<std::vector<std::string>> CodeStore::Impl::read_keys(
    const std::vector<uint64_t>& ids) const {
  std::vector<std::string> keys;
  keys.reserve(ids.size());
  for (uint64_t id : ids) keys.push_back(be64(id));
  std::vector<rocksdb::PinnableSlice> values;
  std::vector<rocksdb::Status> found;
  multi_get(kCodes, std::vector<rocksdb::Slice>(keys.begin(), keys.end()), &values, &found);
  const size_t head = codes.code_bytes() + 4;  // code | tag | key
  std::vector<std::string> out(ids.size());
  for (size_t i = 0; i < ids.size(); ++i) {
    if (found[i].IsNotFound()) continue;
    if (!found[i].ok()) return translate(found[i], "reading keys");
    if (values[i].size() <= head) {
      return Status::corruption("the code record of item " + std::to_string(ids[i]) +
                                " is damaged");
    }
    out[i].assign(values[i].data() + head, values[i].size() - head);
  }
  return out;
}

Result<std::vector<std::string>> CodeStore::metadata(const std::vector<uint64_t>& ids) const {
  std::vector<std::string> keys;
  keys.reserve(ids.size());
  for (uint64_t id : ids) keys.push_back(be64(id));
  std::vector<rocksdb::PinnableSlice> values;
  std::vector<rocksdb::Status> found;
  impl_->multi_get(kMeta, std::vector<rocksdb::Slice>(keys.begin(), keys.end()), &values, &found);
  std::vector<std::string> out(ids.size());
  for (size_t i = 0; i < ids.size(); ++i) {
    if (found[i].IsNotFound()) continue;
    if (!found[i].ok()) return translate(found[i], "reading metadata");
    out[i] = values[i].ToString();
  }
  return out;
}

Status CodeStore::for_each_vector(
    const std::function<void(uint64_t id, const float* values, size_t count,
                             std::string_view metadata)>& fn) const {
  std::unique_ptr<rocksdb::Iterator> it(
      impl_->db->NewIterator(rocksdb::ReadOptions(), impl_->cf[kMeta]));
  std::vector<float> values;
  // An item's records sort by id, then suffix: its metadata (no suffix) comes before its vector.
  uint64_t metadata_id = 0;
  std::string metadata;
  bool have_metadata = false;
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    const rocksdb::Slice key = it->key();
    if (key.size() == 8) {
      metadata_id = from_be64(key);
      metadata.assign(it->value().data(), it->value().size());
      have_metadata = true;
    }
    if (key.size() != 9 || key[8] != 'v') continue;
    const uint64_t id = from_be64(rocksdb::Slice(key.data(), 8));
    const rocksdb::Slice v = it->value();
    if (v.size() % sizeof(float) != 0) {
      return Status::corruption("stored vector of item " + std::to_string(id) +
                                " is not a whole number of floats");
    }
    values.resize(v.size() / sizeof(float));
    if (!v.empty()) std::memcpy(values.data(), v.data(), v.size());
    fn(id, values.data(), values.size(),
       have_metadata && metadata_id == id ? std::string_view(metadata) : std::string_view());
  }
  return translate(it->status(), "reading stored vectors");
}

Result<std::vector<std::optional<size_t>>> CodeStore::vectors_if_present(
    const std::vector<uint64_t>& ids, size_t dim, std::vector<float>* out) const {
  // One MultiGet in key order (ids are big-endian in the keys): RocksDB reads each data block
  // once for the keys it holds, in file order.
  std::vector<size_t> order(ids.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return ids[a] < ids[b]; });
  std::vector<std::string> keys;
  keys.reserve(ids.size());
  for (size_t i : order) keys.push_back(vector_key(ids[i]));
  std::vector<rocksdb::PinnableSlice> values;
  std::vector<rocksdb::Status> found;
  impl_->multi_get(kMeta, std::vector<rocksdb::Slice>(keys.begin(), keys.end()), &values, &found,
                   /*sorted=*/std::adjacent_find(keys.begin(), keys.end()) == keys.end());
  // Rows come out in the order of `ids` (the caller's order), whatever order they were read in.
  std::vector<size_t> read_at(ids.size());
  for (size_t j = 0; j < order.size(); ++j) read_at[order[j]] = j;
  std::vector<std::optional<size_t>> at(ids.size());
  out->clear();
  out->reserve(ids.size() * dim);
  for (size_t i = 0; i < ids.size(); ++i) {
    const size_t j = read_at[i];
    if (found[j].IsNotFound()) continue;
    IMSAT_RETURN_IF_ERROR(translate(found[j], "reading stored vectors"));
    if (values[j].size() != dim * sizeof(float)) {
      return Status::invalid_argument("stored vector of item " + std::to_string(ids[i]) + " has " +
                                      std::to_string(values[j].size() / sizeof(float)) +
                                      " values, expected " + std::to_string(dim));
    }
    at[i] = out->size() / dim;
    out->resize(out->size() + dim);
    std::memcpy(out->data() + out->size() - dim, values[j].data(), dim * sizeof(float));
  }
  return at;
}

Result<std::vector<float>> CodeStore::vectors(const std::vector<uint64_t>& ids, size_t dim) const {
  std::vector<float> values;
  IMSAT_ASSIGN_OR_RETURN(const std::vector<std::optional<size_t>> at,
                         vectors_if_present(ids, dim, &values));
  for (size_t i = 0; i < ids.size(); ++i) {
    if (!at[i]) {
      return Status::not_found("item " + std::to_string(ids[i]) +
                               " has no stored vector (index with vectors to re-rank exactly)");
    }
  }
  return values;  // every id present: rows in the order of ids
}

namespace {

Status check_query(const std::vector<uint8_t>& code, const CodeStore::SearchOptions& o, int bits) {
  if (code.size() != static_cast<size_t>(bits) / 8) {
    return Status::invalid_argument("query code has " + std::to_string(code.size() * 8) +
                                    " bits; the store holds " + std::to_string(bits) +
                                    "-bit codes");
  }
  if (o.radius < 0 && (o.k < 1 || o.k > kMaxK)) {
    return Status::invalid_argument("k must be from 1 to " + std::to_string(kMaxK) + ", got " +
                                    std::to_string(o.k));
  }
  if (o.radius > bits) {
    return Status::invalid_argument("radius " + std::to_string(o.radius) + " exceeds the " +
                                    std::to_string(bits) + "-bit code length");
  }
  return Status::ok();
}

// Hits of found neighbours, without their keys (read after the state lock is released); their
// ids are appended to *ids. Caller holds state_mutex.
std::vector<Hit> hits_of(const CodeStore::Impl& m, const std::vector<Neighbor>& found,
                         bool with_codes, std::vector<uint64_t>* ids) {
  std::vector<Hit> hits;
  hits.reserve(found.size());
  for (const Neighbor& n : found) {
    hits.push_back({std::string(), n.distance, m.codes.tag(n.slot), m.slot_ids[n.slot], {}});
    ids->push_back(hits.back().id);
    if (with_codes) {
      hits.back().code.resize(m.codes.code_bytes());
      m.codes.unpack(n.slot, hits.back().code.data());
    }
  }
  return hits;
}

// Gives hits the keys read for them (keys[i] for the i-th hit); an item deleted meanwhile ("")
// drops out.
void name_hits(std::vector<std::string>::iterator keys, std::vector<Hit>* hits) {
  size_t kept = 0;
  for (size_t i = 0; i < hits->size(); ++i, ++keys) {
    if (keys->empty()) continue;
    (*hits)[i].key = std::move(*keys);
    if (kept != i) (*hits)[kept] = std::move((*hits)[i]);
    ++kept;
  }
  hits->resize(kept);
}

}  // namespace

Result<std::vector<std::vector<Hit>>> CodeStore::search_batch(
    const std::vector<std::vector<uint8_t>>& queries, const SearchOptions& o,
    std::vector<SearchStats>* stats) const {
  if (stats != nullptr) stats->assign(queries.size(), SearchStats{});
  std::vector<std::vector<Hit>> out(queries.size());
  if (o.radius >= 0 || o.selection != nullptr || queries.size() < 2) {
    for (size_t i = 0; i < queries.size(); ++i) {
      IMSAT_ASSIGN_OR_RETURN(out[i],
                             search(queries[i], o, stats != nullptr ? &(*stats)[i] : nullptr));
    }
    return out;
  }
  for (const std::vector<uint8_t>& q : queries) {
    IMSAT_RETURN_IF_ERROR(check_query(q, o, impl_->schema.bits));
  }
  const Impl& m = *impl_;
  std::vector<uint64_t> ids;
  {
    std::shared_lock lock(m.state_mutex);
    const CodeArray& codes = m.codes;
    const size_t words = codes.words();
    const Filter filter;  // a selection is searched query by query above
    std::vector<uint64_t> packed(queries.size() * words);
    for (size_t i = 0; i < queries.size(); ++i) {
      codes.pack(queries[i].data(), packed.data() + i * words);
    }
    std::vector<std::vector<Neighbor>> found(queries.size());
    std::vector<size_t> scanned;  // the queries the batched scan answers
    const bool use_mih = o.use_multi_index && !m.index_stale;
    // A query's share of a batched scan: index_bench measured the batched scan (100 queries per
    // pass) at 2x the single-query rate with the codes in cache (N = 1e6) and 6.8x from memory
    // (N = 1e7); a quarter is between, for batches large enough to share a pass well.
    const double share = queries.size() >= 16 ? 0.25 : 1.0;
    for (size_t i = 0; i < queries.size(); ++i) {
      bool wants_scan = true;
      if (use_mih) {
        found[i] = m.mih.knn(codes, packed.data() + i * words, o.k, filter,
                             stats != nullptr ? &(*stats)[i] : nullptr, &wants_scan, share);
      }
      if (wants_scan) scanned.push_back(i);
    }
    if (!scanned.empty()) {
      std::vector<uint64_t> batch(scanned.size() * words);
      for (size_t j = 0; j < scanned.size(); ++j) {
        std::copy_n(packed.data() + scanned[j] * words, words, batch.data() + j * words);
      }
      SearchStats shared;
      std::vector<std::vector<Neighbor>> answers =
          scan_knn_batch(codes, batch.data(), scanned.size(), o.k, filter, &shared);
      for (size_t j = 0; j < scanned.size(); ++j) {
        found[scanned[j]] = std::move(answers[j]);
        if (stats != nullptr) {
          (*stats)[scanned[j]].candidates_verified += shared.candidates_verified / scanned.size();
        }
      }
    }
    for (size_t i = 0; i < queries.size(); ++i) out[i] = hits_of(m, found[i], o.with_codes, &ids);
  }
  if (!o.with_keys) return out;
  // Every hit's key in one MultiGet.
  IMSAT_ASSIGN_OR_RETURN(std::vector<std::string> keys, m.read_keys(ids));
  auto at = keys.begin();
  for (std::vector<Hit>& hits : out) {
    const size_t n = hits.size();
    name_hits(at, &hits);
    at += static_cast<std::ptrdiff_t>(n);
  }
  return out;
}

namespace {

// A search within a selection made from the store's present state (same version), whose codes
// are packed together: a scan of just them. Positions map back to slots in order, which keeps
// ties in slot order.
std::vector<Neighbor> search_compact(const Selection& selection, const uint64_t* query,
                                     const CodeStore::SearchOptions& o, SearchStats* stats) {
  std::vector<Neighbor> found =
      o.radius >= 0
          ? scan_radius(*selection.compact, query, static_cast<uint32_t>(o.radius), {}, stats)
          : scan_knn(*selection.compact, query, o.k, {}, stats, o.threads);
  for (Neighbor& n : found) n.slot = selection.slots[n.slot];
  return found;
}

// A search within a few selected items: their distances directly, nothing else read. A kNN keeps
// the k nearest in a max-heap, so most candidates cost one distance and one comparison.
std::vector<Neighbor> search_sparse(const CodeArray& codes, const Selection& selection,
                                    const uint64_t* query, const Filter& filter,
                                    const CodeStore::SearchOptions& o, SearchStats* stats) {
  const auto nearer = [](const Neighbor& a, const Neighbor& b) {
    return a.distance != b.distance ? a.distance < b.distance : a.slot < b.slot;
  };
  std::vector<Neighbor> found;
  const size_t words = codes.words();
  for (uint32_t slot : selection.slots) {
    if (slot >= codes.size()) break;  // slots are sorted
    const uint32_t d = hamming_distance(codes.code(slot), query, words);
    if (o.radius >= 0 ? d > static_cast<uint32_t>(o.radius)
                      : found.size() == o.k && d >= found.front().distance) {
      continue;  // a later slot at the same distance loses the tie too
    }
    if (codes.is_deleted(slot) || !filter.pass(slot)) continue;
    if (o.radius >= 0) {
      found.push_back({slot, d});
      continue;
    }
    if (found.size() == o.k) {
      std::pop_heap(found.begin(), found.end(), nearer);
      found.pop_back();
    }
    found.push_back({slot, d});
    std::push_heap(found.begin(), found.end(), nearer);
  }
  if (stats != nullptr) stats->candidates_verified += selection.slots.size();
  std::sort(found.begin(), found.end(), nearer);
  return found;
}

}  // namespace

namespace {

// The nearest items of a checked query as (slot, distance), by the cheapest strategy for the
// options: a selection's packed codes, its few items one by one, the multi-index or a scan.
// Caller holds state_mutex.
std::vector<Neighbor> find_nearest(const CodeStore::Impl& m, const std::vector<uint8_t>& code,
                                   const CodeStore::SearchOptions& o, SearchStats* stats) {
  const CodeArray& codes = m.codes;
  Filter filter;
  if (o.selection != nullptr) filter.allowed_slots = &o.selection->allowed;
  std::vector<uint64_t> query(codes.words());
  codes.pack(code.data(), query.data());
  // Few selected items: their distances one by one; up to half: a scan of their packed codes.
  const bool compact = o.selection != nullptr && o.selection->compact != nullptr &&
                       o.selection->version == m.version;
  const bool sparse = !compact && o.selection != nullptr &&
                      o.selection->slots.size() == o.selection->count &&
                      o.selection->count * kSparseSelection <= o.selection->allowed.size();
  // During a bulk load the multi-index lags (rebuilt once at its end): scan meanwhile.
  const bool use_mih = o.use_multi_index && !m.index_stale;
  if (compact) return search_compact(*o.selection, query.data(), o, stats);
  if (sparse) return search_sparse(codes, *o.selection, query.data(), filter, o, stats);
  if (o.radius >= 0) {
    return use_mih
               ? m.mih.radius(codes, query.data(), static_cast<uint32_t>(o.radius), filter, stats)
               : scan_radius(codes, query.data(), static_cast<uint32_t>(o.radius), filter, stats);
  }
  return use_mih ? m.mih.knn(codes, query.data(), o.k, filter, stats)
                 : scan_knn(codes, query.data(), o.k, filter, stats, o.threads);
}

}  // namespace

Result<std::vector<Hit>> CodeStore::search(const std::vector<uint8_t>& code, const SearchOptions& o,
                                           SearchStats* stats, bool* truncated) const {
  IMSAT_RETURN_IF_ERROR(check_query(code, o, impl_->schema.bits));
  std::shared_lock lock(impl_->state_mutex);
  std::vector<Neighbor> found = find_nearest(*impl_, code, o, stats);
  if (truncated != nullptr) *truncated = o.max_hits > 0 && found.size() > o.max_hits;
  if (o.max_hits > 0 && found.size() > o.max_hits)
    found.resize(o.max_hits);  // sorted nearest first
  std::vector<uint64_t> ids;
  ids.reserve(found.size());
  std::vector<Hit> hits = hits_of(*impl_, found, o.with_codes, &ids);
  lock.unlock();
  if (!o.with_keys) return hits;
  // The keys of the hits, from RocksDB; an item deleted meanwhile drops out.
  IMSAT_ASSIGN_OR_RETURN(std::vector<std::string> keys, impl_->read_keys(ids));
  name_hits(keys.begin(), &hits);
  return hits;
}

Status CodeStore::candidates(const std::vector<uint8_t>& code, const SearchOptions& o,
                             Candidates* out, SearchStats* stats) const {
  if (o.radius >= 0) return Status::invalid_argument("candidates are a kNN, not a radius search");
  IMSAT_RETURN_IF_ERROR(check_query(code, o, impl_->schema.bits));
  std::shared_lock lock(impl_->state_mutex);
  const std::vector<Neighbor> found = find_nearest(*impl_, code, o, stats);
  const size_t n = found.size(), bytes = impl_->codes.code_bytes();
  out->ids.resize(n);
  out->distances.resize(n);
  out->tags.resize(n);
  out->codes.resize(n * bytes);
  for (size_t i = 0; i < n; ++i) {
    const uint32_t slot = found[i].slot;
    out->ids[i] = impl_->slot_ids[slot];
    out->distances[i] = found[i].distance;
    out->tags[i] = impl_->codes.tag(slot);
    impl_->codes.unpack(slot, out->codes.data() + i * bytes);
  }
  return Status::ok();
}

Result<std::vector<std::string>> CodeStore::keys(const std::vector<uint64_t>& ids) const {
  return impl_->read_keys(ids);
}

std::vector<std::vector<uint64_t>> CodeStore::occupancy_histograms(size_t max_count) const {
  std::shared_lock lock(impl_->state_mutex);
  std::vector<std::vector<uint64_t>> out;
  for (int t = 0; t < impl_->mih.tables(); ++t)
    out.push_back(impl_->mih.occupancy_histogram(t, max_count));
  return out;
}

std::vector<uint64_t> CodeStore::distance_histogram(size_t sample_queries, uint64_t seed) const {
  std::shared_lock lock(impl_->state_mutex);
  return index::distance_histogram(impl_->codes, sample_queries, seed);
}

std::vector<uint8_t> CodeStore::sample_codes(size_t max_items, std::vector<int32_t>* tags) const {
  std::shared_lock lock(impl_->state_mutex);
  const CodeArray& codes = impl_->codes;
  const size_t bytes = codes.code_bytes();
  std::vector<uint8_t> out;
  if (tags != nullptr) tags->clear();
  if (codes.live() == 0 || max_items == 0) return out;
  const size_t step = std::max<size_t>(1, codes.size() / max_items);
  out.reserve(std::min(max_items, codes.live()) * bytes);
  size_t taken = 0;
  for (size_t slot = 0; slot < codes.size() && taken < max_items; slot += step) {
    if (codes.is_deleted(static_cast<uint32_t>(slot))) continue;
    ++taken;
    out.resize(out.size() + bytes);
    codes.unpack(static_cast<uint32_t>(slot), out.data() + out.size() - bytes);
    if (tags != nullptr) tags->push_back(codes.tag(static_cast<uint32_t>(slot)));
  }
  return out;
}

}  // namespace imsat::index
