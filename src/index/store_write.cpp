// The code store's write path: validating and planning a batch (upserts find existing keys with
// one MultiGet), committing it as one WriteBatch or as ingested SST files, and applying it to the
// in-memory state; deletes and resumable bulk loads.
#include <rocksdb/sst_file_writer.h>
#include <rocksdb/write_batch.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <thread>
#include <unordered_set>

#include "index/store_internal.h"

namespace imsat::index {

Status CodeStore::Impl::validate(const std::vector<Item>& items, bool distinct_keys) const {
  std::unordered_set<std::string> seen;
  for (size_t i = 0; i < items.size(); ++i) {
    const Item& it = items[i];
    if (it.key.empty()) {
      return Status::invalid_argument("item " + std::to_string(i) + " has an empty key");
    }
    if (it.code.size() != codes.code_bytes()) {
      return Status::invalid_argument(
          "item '" + it.key + "' has a " + std::to_string(it.code.size() * 8) +
          "-bit code; the store holds " + std::to_string(codes.bits()) + "-bit codes");
    }
    if (!distinct_keys && !seen.insert(it.key).second) {
      return Status::invalid_argument("key '" + it.key + "' appears twice in one batch");
    }
    if (it.thumbnail.size() > kMaxThumbnailBytes) {
      return Status::invalid_argument(
          "item '" + it.key + "' has a " + std::to_string(it.thumbnail.size()) +
          "-byte thumbnail; the limit is " + std::to_string(kMaxThumbnailBytes));
    }
    for (float v : it.vector) {
      if (!std::isfinite(v)) {
        return Status::invalid_argument("item '" + it.key + "' has a NaN or infinite value");
      }
    }
  }
  return Status::ok();
}

Status CodeStore::Impl::remove_terms(const std::vector<uint64_t>& ids, std::vector<Record>* meta,
                                     std::vector<Record>* fields) const {
  if (ids.empty() || cf[kFields] == nullptr) return Status::ok();
  std::vector<std::string> keys;
  for (uint64_t id : ids) keys.push_back(terms_key(id));
  std::vector<rocksdb::PinnableSlice> values;
  std::vector<rocksdb::Status> found;
  multi_get(kMeta, std::vector<rocksdb::Slice>(keys.begin(), keys.end()), &values, &found);
  for (size_t i = 0; i < ids.size(); ++i) {
    if (found[i].IsNotFound()) continue;
    IMSAT_RETURN_IF_ERROR(translate(found[i], "reading an item's field terms"));
    for (const std::string& t : decode_terms(values[i].ToString())) {
      fields->push_back({t + be64(ids[i]), "", true});
    }
    meta->push_back({keys[i], "", true});
  }
  return Status::ok();
}

Result<CodeStore::Impl::BatchPlan> CodeStore::Impl::plan(const std::vector<Item>& items,
                                                         bool new_keys,
                                                         const PlanBase* base) const {
  IMSAT_RETURN_IF_ERROR(validate(items, new_keys));
  BatchPlan p;
  std::vector<rocksdb::PinnableSlice> values;
  std::vector<rocksdb::Status> found;
  if (new_keys) {
    found.assign(items.size(), rocksdb::Status::NotFound());
  } else {
    std::vector<rocksdb::Slice> keys;
    keys.reserve(items.size());
    for (const Item& item : items) keys.emplace_back(item.key);
    multi_get(kKeys, keys, &values, &found);
  }
  std::vector<uint64_t> packed(codes.words());
  std::vector<uint64_t> replaced_ids;  // whose field terms are removed with them
  std::vector<std::string> fields;
  {
    std::shared_lock lock(state_mutex);
    fields = indexed_fields;
  }
  uint64_t id = base != nullptr ? base->next_id : next_id;
  for (size_t i = 0; i < items.size(); ++i) {
    const Item& item = items[i];
    if (found[i].ok()) {
      if (values[i].size() != 8) {
        return Status::corruption("key '" + item.key + "' maps to a damaged id");
      }
      const uint64_t old = from_be64(values[i]);
      const int64_t slot = slot_of(old);
      if (slot < 0) return Status::corruption("key '" + item.key + "' maps to a missing item");
      p.records[kCodes].push_back({be64(old), "", true});
      p.records[kMeta].push_back({be64(old), "", true});
      p.records[kMeta].push_back({vector_key(old), "", true});
      p.records[kMeta].push_back({thumbnail_key(old), "", true});
      for (int t = 0; schema.persist_buckets && t < mih.tables(); ++t) {
        p.records[kBuckets].push_back(
            {bucket_key(t, mih.substring(t, codes.code(static_cast<uint32_t>(slot))), old), "",
             true});
      }
      p.replaced.emplace_back(static_cast<uint32_t>(slot), old);
      if (!fields.empty()) replaced_ids.push_back(old);
    } else if (!found[i].IsNotFound()) {
      return translate(found[i], "reading key '" + item.key + "'");
    }
    std::string value(reinterpret_cast<const char*>(item.code.data()), item.code.size());
    char tag[4];
    std::memcpy(tag, &item.tag, 4);
    value.append(tag, 4);
    value += item.key;
    const std::string idk = be64(id);
    p.records[kCodes].push_back({idk, std::move(value)});
    if (!item.metadata.empty()) p.records[kMeta].push_back({idk, item.metadata});
    if (!item.vector.empty()) {
      p.records[kMeta].push_back(
          {vector_key(id), std::string(reinterpret_cast<const char*>(item.vector.data()),
                                       item.vector.size() * sizeof(float))});
    }
    if (!item.thumbnail.empty()) p.records[kMeta].push_back({thumbnail_key(id), item.thumbnail});
    if (!fields.empty()) {
      std::vector<std::string> terms = metadata_terms(item.metadata, fields);
      for (const std::string& t : terms) p.records[kFields].push_back({t + idk, ""});
      if (!terms.empty()) p.records[kMeta].push_back({terms_key(id), encode_terms(terms)});
      p.terms.resize(items.size());
      p.terms[i] = std::move(terms);
    }
    p.records[kKeys].push_back({item.key, idk});
    codes.pack(item.code.data(), packed.data());
    for (int t = 0; schema.persist_buckets && t < mih.tables(); ++t) {
      p.records[kBuckets].push_back({bucket_key(t, mih.substring(t, packed.data()), id), ""});
    }
    ++id;
  }
  IMSAT_RETURN_IF_ERROR(remove_terms(replaced_ids, &p.records[kMeta], &p.records[kFields]));
  p.next_id = id;
  p.records[kSchema].push_back({"next_id", be64(id)});
  p.live_after = (base != nullptr ? base->live : codes.live()) - p.replaced.size() + items.size();
  p.records[kSchema].push_back({"items", be64(p.live_after)});
  p.generation = (base != nullptr ? base->generation : generation) + 1;
  p.records[kSchema].push_back({"generation", be64(p.generation)});
  // Records of ids are made in id order; only upserts (old ids) and the keys family need sorting.
  for (auto& r : p.records) {
    if (!std::is_sorted(r.begin(), r.end())) std::sort(r.begin(), r.end());
  }
  return p;
}

Status CodeStore::Impl::commit_write_batch(const BatchPlan& p) {
  rocksdb::WriteBatch batch;
  for (int c = 1; c < kCfCount; ++c) {
    for (const Record& r : p.records[c]) {
      if (r.erase) {
        batch.Delete(cf[c], r.key);
      } else {
        batch.Put(cf[c], r.key, r.value);
      }
    }
  }
  return translate_write(db->Write(write_options, &batch), "writing a batch");
}

std::string CodeStore::Impl::staging_dir() const {
  return (std::filesystem::path(path) / "bulk-ingest").string();
}

Status CodeStore::Impl::write_sst_files(const BatchPlan& p, const std::string& dir,
                                        const std::string& prefix, bool with_schema,
                                        std::vector<SstFile>* files) const {
  std::vector<SstFile> made;
  for (int c = 1; c < kCfCount; ++c) {
    if (p.records[c].empty() || (c == kSchema && !with_schema)) continue;
    made.push_back({c, dir + "/" + prefix + kCfNames[c] + ".sst"});
  }
  // The families are independent: one thread each.
  std::vector<Status> written(made.size(), Status::ok());
  auto write_family = [&](size_t f) {
    const int c = made[f].family;
    const std::string& file = made[f].path;
    // The family's own options (compression, table format, filters) with the store's.
    const rocksdb::Options family(rocksdb::DBOptions(db_options), cf_options[c]);
    rocksdb::SstFileWriter writer(rocksdb::EnvOptions(), family, cf[c]);
    Status s = translate(writer.Open(file), file);
    for (size_t i = 0; s.is_ok() && i < p.records[c].size(); ++i) {
      const Record& r = p.records[c][i];
      s = translate(r.erase ? writer.Delete(r.key) : writer.Put(r.key, r.value), file);
    }
    if (s.is_ok()) s = translate(writer.Finish(), file);
    written[f] = s;
  };
  std::vector<std::thread> threads;
  for (size_t f = 1; f < made.size(); ++f) threads.emplace_back(write_family, f);
  if (!made.empty()) write_family(0);
  for (std::thread& t : threads) t.join();
  for (const Status& s : written) IMSAT_RETURN_IF_ERROR(s);
  files->insert(files->end(), made.begin(), made.end());
  return Status::ok();
}

Status CodeStore::Impl::ingest_files(const std::vector<SstFile>& files, const std::string& what) {
  std::vector<rocksdb::IngestExternalFileArg> args;
  for (const SstFile& f : files) {
    auto it = std::find_if(args.begin(), args.end(), [&](const rocksdb::IngestExternalFileArg& a) {
      return a.column_family == cf[f.family];
    });
    if (it == args.end()) {
      rocksdb::IngestExternalFileArg arg;
      arg.column_family = cf[f.family];
      arg.options.move_files = true;
      args.push_back(std::move(arg));
      it = args.end() - 1;
    }
    it->external_files.push_back(f.path);
  }
  if (args.empty()) return Status::ok();
  return translate_write(db->IngestExternalFiles(args), what);
}

Status CodeStore::Impl::commit_ingest(const BatchPlan& p) {
  namespace fs = std::filesystem;
  const std::string dir = staging_dir();
  std::error_code ec;
  fs::remove_all(dir, ec);
  fs::create_directories(dir, ec);
  if (ec) return Status::io_error(dir + ": " + ec.message());
  std::vector<SstFile> files;
  Status s = write_sst_files(p, dir, "", /*with_schema=*/true, &files);
  if (s.is_ok()) s = ingest_files(files, "ingesting a bulk batch");
  fs::remove_all(dir, ec);
  return s;
}

void CodeStore::Impl::apply(const BatchPlan& p, const std::vector<Item>& items, bool defer_index) {
  std::unique_lock lock(state_mutex);
  for (const auto& [slot, old] : p.replaced) codes.erase(slot);
  uint64_t id = next_id;
  for (size_t i = 0; i < items.size(); ++i) {
    const Item& item = items[i];
    append_memory(id++, item.code.data(), item.tag, defer_index);
    if (i < p.terms.size()) {
      for (const std::string& t : p.terms[i]) post(t, static_cast<uint32_t>(codes.size() - 1));
    }
  }
  next_id = p.next_id;
  ++version;
}

Status CodeStore::put(const std::vector<Item>& items) {
  if (items.empty()) return Status::ok();
  IMSAT_RETURN_IF_ERROR(impl_->check_writable());
  std::lock_guard writer(impl_->writer_mutex);
  IMSAT_ASSIGN_OR_RETURN(Impl::BatchPlan plan, impl_->plan(items));
  IMSAT_RETURN_IF_ERROR(impl_->commit_write_batch(plan));
  impl_->apply(plan, items);
  impl_->acknowledge(plan.generation, plan.live_after);
  return Status::ok();
}

Status CodeStore::erase(const std::vector<std::string>& keys) {
  IMSAT_RETURN_IF_ERROR(impl_->check_writable());
  std::lock_guard writer(impl_->writer_mutex);
  return impl_->erase_locked(keys).status();
}

Result<size_t> CodeStore::erase_present(const std::vector<std::string>& keys,
                                        std::vector<std::string>* missing) {
  IMSAT_RETURN_IF_ERROR(impl_->check_writable());
  std::lock_guard writer(impl_->writer_mutex);
  std::vector<std::string> present;
  for (const std::string& key : keys) {
    Result<uint64_t> id = impl_->lookup_id(key);
    if (id.is_ok()) {
      present.push_back(key);
    } else if (id.status().code() == Status::Code::kNotFound) {
      if (missing != nullptr) missing->push_back(key);
    } else {
      return id.status();
    }
  }
  if (present.empty()) return size_t{0};
  return impl_->erase_locked(present);
}

Result<size_t> CodeStore::Impl::erase_locked(const std::vector<std::string>& keys) {
  rocksdb::WriteBatch batch;
  std::vector<uint32_t> slots;
  std::vector<uint64_t> ids;
  std::unordered_set<std::string> seen;
  for (const std::string& key : keys) {
    if (!seen.insert(key).second) continue;
    IMSAT_ASSIGN_OR_RETURN(uint64_t id, lookup_id(key));
    const int64_t slot = slot_of(id);
    if (slot < 0) return Status::corruption("key '" + key + "' maps to a missing item");
    batch.Delete(cf[kCodes], be64(id));
    batch.Delete(cf[kMeta], be64(id));
    batch.Delete(cf[kMeta], vector_key(id));
    batch.Delete(cf[kMeta], thumbnail_key(id));
    batch.Delete(cf[kKeys], key);
    for (int t = 0; schema.persist_buckets && t < mih.tables(); ++t) {
      const uint64_t* code = codes.code(static_cast<uint32_t>(slot));
      batch.Delete(cf[kBuckets], bucket_key(t, mih.substring(t, code), id));
    }
    slots.push_back(static_cast<uint32_t>(slot));
    ids.push_back(id);
  }
  std::vector<Record> meta, fields;
  IMSAT_RETURN_IF_ERROR(remove_terms(ids, &meta, &fields));
  for (const Record& r : meta) batch.Delete(cf[kMeta], r.key);
  for (const Record& r : fields) batch.Delete(cf[kFields], r.key);
  const size_t live_after = codes.live() - slots.size();
  batch.Put(cf[kSchema], "items", be64(live_after));
  batch.Put(cf[kSchema], "generation", be64(generation + 1));
  IMSAT_RETURN_IF_ERROR(translate_write(db->Write(write_options, &batch), "deleting"));
  {
    std::unique_lock lock(state_mutex);
    for (uint32_t s : slots) codes.erase(s);
    ++version;
  }
  acknowledge(generation + 1, live_after);
  return slots.size();
}

Result<size_t> CodeStore::bulk_progress(const std::string& job) const {
  std::string v;
  rocksdb::Status s = impl_->db->Get(rocksdb::ReadOptions(), impl_->cf[kSchema], "bulk:" + job, &v);
  if (s.IsNotFound()) return size_t{0};
  if (!s.ok()) return translate(s, "reading bulk progress of " + job);
  if (v.size() != 8) return Status::corruption("bulk progress record of " + job + " is damaged");
  return static_cast<size_t>(from_be64(v));
}

Result<std::string> CodeStore::model_path() const {
  std::string v;
  rocksdb::Status s = impl_->db->Get(rocksdb::ReadOptions(), impl_->cf[kSchema], "model_path", &v);
  if (s.IsNotFound()) return std::string();
  if (!s.ok()) return translate(s, "reading the model's path");
  return v;
}

Status CodeStore::record_model_path(const std::string& path) {
  IMSAT_RETURN_IF_ERROR(impl_->check_writable());
  std::string held;
  IMSAT_ASSIGN_OR_RETURN(held, model_path());
  if (held == path) return Status::ok();
  rocksdb::WriteOptions sync;
  sync.sync = true;
  return translate_write(impl_->db->Put(sync, impl_->cf[kSchema], "model_path", path),
                         "recording the model's path");
}

namespace {

// Appends to *items the source's items from `position` on, up to `batch_items` of them. An item
// with an empty key is a position that adds nothing (an input the source skipped, such as an
// unreadable image file). Returns the positions consumed; *more is false once the source ended.
size_t take_batch(const std::function<bool(size_t, Item*)>& next, size_t position,
                  size_t batch_items, std::vector<Item>* items, bool* more) {
  size_t consumed = 0;
  *more = true;
  while (items->size() < batch_items) {
    Item item;
    if (!next(position + consumed, &item)) {
      *more = false;
      break;
    }
    ++consumed;
    if (!item.key.empty()) items->push_back(std::move(item));
  }
  return consumed;
}

}  // namespace

Status CodeStore::bulk_load(const std::string& job, const std::function<bool(size_t, Item*)>& next,
                            size_t batch_items, const std::function<void(size_t)>& progress,
                            bool new_keys, bool build_index) {
  if (job.empty()) return Status::invalid_argument("bulk load needs a job name");
  if (batch_items == 0) return Status::invalid_argument("batch size must be positive");
  IMSAT_RETURN_IF_ERROR(impl_->check_writable());
  std::lock_guard writer(impl_->writer_mutex);
  Impl& m = *impl_;
  IMSAT_ASSIGN_OR_RETURN(size_t done, bulk_progress(job));
  // Keys are taken as new only for a job that starts on an empty store; anything else (a resumed
  // job, a store with items) checks every key.
  new_keys = new_keys && done == 0 && m.codes.live() == 0;
  // A batch in flight: committed on a second thread while the next one is read and planned. Only
  // a job of new keys is pipelined; otherwise a batch's existence check must see the previous
  // batch, so each batch is committed before the next is planned.
  struct Flight {
    Impl::BatchPlan plan;
    std::vector<Item> items;
    size_t end = 0;
    std::thread thread;
    Status status = Status::ok();
  };
  std::unique_ptr<Flight> flight;
  // Waits for the batch in flight and applies it once it is durable.
  auto land = [&]() -> Status {
    if (!flight) return Status::ok();
    flight->thread.join();
    std::unique_ptr<Flight> f = std::move(flight);
    IMSAT_RETURN_IF_ERROR(f->status);
    m.apply(f->plan, f->items, /*defer_index=*/true);
    m.acknowledge(f->plan.generation, f->plan.live_after);
    if (progress) progress(f->end);
    return Status::ok();
  };
  // Whatever ends the loop, the batch in flight lands (or fails) before the store is used again.
  struct Landing {
    std::function<Status()> land;
    ~Landing() { land().ignore(); }
  } landing{land};
  Impl::PlanBase base{m.next_id, m.codes.live(), m.generation};
  size_t position = done;
  bool more = true;
  while (more) {
    auto f = std::make_unique<Flight>();
    std::vector<Item>& items = f->items;
    items.reserve(std::min<size_t>(batch_items, 1 << 20));
    const size_t consumed = take_batch(next, position, batch_items, &items, &more);
    if (items.empty()) break;  // skipped inputs at the end are read again by a resumed job
    IMSAT_ASSIGN_OR_RETURN(f->plan, m.plan(items, new_keys, new_keys ? &base : nullptr));
    // The progress record travels in the same atomic ingestion as the items.
    auto& schema = f->plan.records[kSchema];
    schema.push_back({"bulk:" + job, be64(position + consumed)});
    std::sort(schema.begin(), schema.end());
    base = {f->plan.next_id, f->plan.live_after, f->plan.generation};
    position += consumed;
    f->end = position;
    IMSAT_RETURN_IF_ERROR(land());
    flight = std::move(f);
    Flight* fl = flight.get();
    fl->thread = std::thread([&m, fl] { fl->status = m.commit_ingest(fl->plan); });
    if (!new_keys) IMSAT_RETURN_IF_ERROR(land());
  }
  IMSAT_RETURN_IF_ERROR(land());
  if (build_index) m.rebuild_stale_index();
  return Status::ok();
}

Result<size_t> CodeStore::bulk_load_atomic(const std::vector<BulkJob>& jobs, size_t batch_items,
                                           const std::function<void(size_t)>& progress,
                                           bool new_keys, bool build_index) {
  namespace fs = std::filesystem;
  if (batch_items == 0) return Status::invalid_argument("batch size must be positive");
  for (size_t j = 0; j < jobs.size(); ++j) {
    if (jobs[j].name.empty()) return Status::invalid_argument("bulk load needs a job name");
    for (size_t i = 0; i < j; ++i) {
      if (jobs[i].name == jobs[j].name) {
        return Status::invalid_argument("job '" + jobs[j].name + "' is given twice");
      }
    }
  }
  IMSAT_RETURN_IF_ERROR(impl_->check_writable());
  std::lock_guard writer(impl_->writer_mutex);
  Impl& m = *impl_;
  std::vector<size_t> start(jobs.size());
  bool fresh = m.codes.live() == 0;
  for (size_t j = 0; j < jobs.size(); ++j) {
    IMSAT_ASSIGN_OR_RETURN(start[j], bulk_progress(jobs[j].name));
    fresh = fresh && start[j] == 0;
  }
  new_keys = new_keys && fresh;
  // What the in-memory state needs once the step is ingested; the records themselves go to SST
  // files batch by batch.
  struct Staged {
    std::vector<uint8_t> codes;
    std::vector<int32_t> tags;
    std::vector<std::pair<uint32_t, uint64_t>> replaced;
    std::vector<std::vector<std::string>> terms;
  };
  std::vector<Staged> staged;
  Impl::PlanBase base{m.next_id, m.codes.live(), m.generation};
  std::vector<Impl::SstFile> files;
  const std::string dir = m.staging_dir();
  std::error_code ec;
  fs::remove_all(dir, ec);
  fs::create_directories(dir, ec);
  if (ec) return Status::io_error(dir + ": " + ec.message());
  // Removes the staged files whatever happens.
  struct Cleanup {
    std::string dir;
    ~Cleanup() {
      std::error_code e;
      fs::remove_all(dir, e);
    }
  } cleanup{dir};
  // The batch whose SST files are being written, and the thread writing them; joined before
  // anything else happens to the staging folder (the Cleanup above runs after it).
  struct Writing {
    std::unique_ptr<Impl::BatchPlan> plan;
    std::thread thread;
    Status status = Status::ok();
    Status wait() {
      if (thread.joinable()) thread.join();
      plan.reset();
      return status;
    }
    ~Writing() { wait().ignore(); }
  } writing;
  Impl::BatchPlan final_plan;
  auto& schema = final_plan.records[kSchema];
  size_t added = 0;
  std::vector<Item> items;
  for (size_t j = 0; j < jobs.size(); ++j) {
    size_t position = start[j];
    bool more = true;
    while (more) {
      items.clear();
      const size_t consumed = take_batch(jobs[j].next, position, batch_items, &items, &more);
      if (items.empty()) break;
      auto plan = std::make_unique<Impl::BatchPlan>();
      IMSAT_ASSIGN_OR_RETURN(*plan, m.plan(items, new_keys, &base));
      // The batch's files are written on a second thread while the next batch is planned.
      IMSAT_RETURN_IF_ERROR(writing.wait());
      writing.plan = std::move(plan);
      const Impl::BatchPlan* p = writing.plan.get();
      const std::string prefix = std::to_string(staged.size()) + "-";
      writing.thread = std::thread([&m, &files, &dir, &writing, p, prefix] {
        writing.status = m.write_sst_files(*p, dir, prefix, /*with_schema=*/false, &files);
      });
      Impl::BatchPlan& plan_ref = *writing.plan;
      Staged st;
      st.codes.reserve(items.size() * m.codes.code_bytes());
      for (const Item& item : items) {
        st.codes.insert(st.codes.end(), item.code.begin(), item.code.end());
        st.tags.push_back(item.tag);
      }
      st.replaced = plan_ref.replaced;
      st.terms = plan_ref.terms;
      staged.push_back(std::move(st));
      base = {plan_ref.next_id, plan_ref.live_after, base.generation};
      position += consumed;
      added += items.size();
      if (progress) progress(added);
    }
    if (position > start[j]) schema.push_back({"bulk:" + jobs[j].name, be64(position)});
  }
  IMSAT_RETURN_IF_ERROR(writing.wait());
  if (schema.empty()) return size_t{0};
  // One record of each kind for the whole step, beside the jobs' progress.
  schema.push_back({"next_id", be64(base.next_id)});
  schema.push_back({"items", be64(base.live)});
  schema.push_back({"generation", be64(base.generation + 1)});
  std::sort(schema.begin(), schema.end());
  IMSAT_RETURN_IF_ERROR(m.write_sst_files(final_plan, dir, "step-", /*with_schema=*/true, &files));
  IMSAT_RETURN_IF_ERROR(m.ingest_files(files, "ingesting a bulk step"));
  {
    std::unique_lock lock(m.state_mutex);
    uint64_t id = m.next_id;
    const size_t bytes = m.codes.code_bytes();
    for (const Staged& st : staged) {
      for (const auto& [slot, old] : st.replaced) m.codes.erase(slot);
      for (size_t i = 0; i < st.tags.size(); ++i) {
        m.append_memory(id++, st.codes.data() + i * bytes, st.tags[i], /*defer_index=*/true);
        if (i < st.terms.size()) {
          for (const std::string& t : st.terms[i]) {
            m.post(t, static_cast<uint32_t>(m.codes.size() - 1));
          }
        }
      }
    }
    m.next_id = base.next_id;
    ++m.version;
  }
  m.acknowledge(base.generation + 1, base.live);
  if (build_index) m.rebuild_stale_index();
  return added;
}

void CodeStore::Impl::rebuild_stale_index() {
  {
    std::shared_lock lock(state_mutex);
    if (!index_stale) return;
  }
  // Built beside the old one while searches go on (the writer lock keeps the codes still), then
  // swapped in.
  MultiIndex fresh(schema.bits, schema.tables, codes.size());
  {
    std::shared_lock lock(state_mutex);
    fresh.rebuild(codes);
  }
  std::unique_lock lock(state_mutex);
  mih = std::move(fresh);
  index_stale = false;
}

}  // namespace imsat::index
