// The catalog of collections: opening a data directory or one store, finding, creating and
// dropping collections.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/atomic_file.h"
#include "common/log.h"
#include "query/collections.h"
#include "query/data_dir_internal.h"
#include "query/metric.h"

namespace imsat::query {

Status check_collection_name(const std::string& name) {
  if (name.empty() || name.size() > kMaxCollectionName) {
    return Status::invalid_argument("a collection name has 1 to 64 characters, got " +
                                    std::to_string(name.size()));
  }
  for (unsigned char c : name) {
    if (!std::isalnum(c) && c != '-' && c != '_') {
      return Status::invalid_argument("collection name '" + name +
                                      "' may hold only letters, digits, '-' and '_'");
    }
  }
  return Status::ok();
}

Result<std::string> collection_folder(const std::string& data_dir, const std::string& name) {
  IMSAT_RETURN_IF_ERROR(check_collection_name(name));
  return (fs::path(data_dir) / name).string();
}

Collection::~Collection() {
  if (!secondary_dir_.empty()) {
    owned_.reset();
    std::error_code ec;
    fs::remove_all(secondary_dir_, ec);
  }
  if (!dropped_) return;
  owned_.reset();  // closes the store before its files go
  // Out of the catalog's sight in one rename, then removed: a crash during the removal leaves a
  // hidden folder that the next open removes (the DROPPED mark covers a crash before the rename).
  const fs::path folder(folder_);
  const fs::path gone = folder.parent_path() / ("." + name_ + kDropping);
  Status s = remove_tree(gone);
  if (s.is_ok()) s = rename_synced(folder, gone);
  if (s.is_ok()) s = remove_tree(gone);
  if (!s.is_ok()) {
    log::error("collection_files_left",
               {{"collection", name_},
                {"reason", s.message()},
                {"note", "dropped; the next open of the data directory removes them"}});
  }
}

Catalog::~Catalog() {
  if (follow_thread_.joinable()) {
    {
      std::lock_guard lock(follow_mutex_);
      follow_stop_ = true;
    }
    follow_wake_.notify_all();
    follow_thread_.join();
  }
}

Result<std::shared_ptr<Collection>> Catalog::load(const std::string& name,
                                                  const std::string& folder) {
  std::shared_ptr<Collection> c(new Collection());
  c->name_ = name;
  c->folder_ = folder;
  c->store_path_ = (fs::path(folder) / kStoreFolder).string();
  std::error_code ec;
  const std::string model = (fs::path(folder) / kModelFile).string();
  if (fs::exists(model, ec)) c->model_path_ = model;
  c->snapshot_root_ = (fs::path(folder) / kSnapshotFolder).string();
  IMSAT_RETURN_IF_ERROR(open_engine(*c).prefixed("collection '" + name + "': "));
  c->owned_->set_encode_batching(encode_batching_);
  const index::StoreInfo info = c->owned_->info();
  log::info("collection_open", {{"collection", name},
                                {"items", info.items},
                                {"bits", info.bits},
                                {"writable", info.writable},
                                {"opened_from", info.open_source}});
  return c;
}

Status Catalog::open_engine(Collection& c) const {
  IMSAT_ASSIGN_OR_RETURN(c.owned_,
                         QueryEngine::open(c.store_path_, c.model_path_, false, cache_mb_));
  c.engine_ = c.owned_.get();
  return cache_vectors_ ? c.owned_->cache_vectors(cache_precision_) : Status::ok();
}

void Catalog::set_encode_batching(const EncodeBatchOptions& options) {
  std::lock_guard lock(mutex_);
  encode_batching_ = options;
  for (auto& [name, c] : collections_) c->engine_->set_encode_batching(options);
}

Result<std::unique_ptr<Catalog>> Catalog::open(const std::string& data_dir, bool cache_vectors,
                                               size_t cache_mb, VectorPrecision precision) {
  std::unique_ptr<Catalog> cat(new Catalog());
  cat->data_dir_ = data_dir;
  cat->cache_vectors_ = cache_vectors;
  cat->cache_precision_ = precision;
  cat->cache_mb_ = cache_mb;
  std::error_code ec;
  fs::create_directories(data_dir, ec);
  if (ec) return io_error(data_dir + ": cannot create the data directory", ec);
  if (!fs::is_directory(data_dir, ec)) {
    return Status::invalid_argument(data_dir + ": not a directory");
  }
  IMSAT_ASSIGN_OR_RETURN(DataDirLock lock, DataDirLock::try_acquire(data_dir));
  if (!lock.held()) {
    return Status::invalid_argument(data_dir +
                                    " is in use by another imsat process (a server, or a command "
                                    "changing it); stop it first");
  }
  cat->lock_ = std::make_shared<DataDirLock>(std::move(lock));
  IMSAT_ASSIGN_OR_RETURN(const size_t recovered, recover_data_dir(data_dir));
  if (recovered > 0) {
    log::warn("recovered", {{"data_dir", data_dir},
                            {"leftovers", recovered},
                            {"what",
                             "interrupted restores, drops, creates and snapshots, "
                             "finished or removed"}});
  }
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(data_dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (!entry.is_directory() || !check_collection_name(name).is_ok()) continue;
    if (!fs::exists(entry.path() / kStoreFolder)) continue;
    names.push_back(name);
  }
  if (ec) return io_error(data_dir + ": cannot list", ec);
  for (const std::string& name : names) {
    IMSAT_ASSIGN_OR_RETURN(std::shared_ptr<Collection> c,
                           cat->load(name, (fs::path(data_dir) / name).string()));
    cat->collections_[name] = std::move(c);
  }
  return cat;
}

Result<std::unique_ptr<Catalog>> Catalog::single(const std::string& name,
                                                 const std::string& store_path,
                                                 const std::string& model_path, bool cache_vectors,
                                                 size_t cache_mb, VectorPrecision precision) {
  IMSAT_RETURN_IF_ERROR(check_collection_name(name));
  std::unique_ptr<Catalog> cat(new Catalog());
  cat->cache_vectors_ = cache_vectors;
  cat->cache_precision_ = precision;
  cat->cache_mb_ = cache_mb;
  std::shared_ptr<Collection> c(new Collection());
  c->name_ = name;
  c->store_path_ = store_path;
  c->model_path_ = model_path;
  std::string root = store_path;
  while (root.size() > 1 && root.back() == '/') root.pop_back();
  c->snapshot_root_ = root + ".snapshots";
  IMSAT_RETURN_IF_ERROR(clean_snapshot_root(c->snapshot_root_).status());
  IMSAT_RETURN_IF_ERROR(cat->open_engine(*c));
  cat->collections_[name] = std::move(c);
  cat->default_ = name;
  return cat;
}

Result<std::unique_ptr<Catalog>> Catalog::follower(const std::string& name,
                                                   const std::string& primary,
                                                   const std::string& model_path, int interval_ms,
                                                   size_t cache_mb) {
  IMSAT_RETURN_IF_ERROR(check_collection_name(name));
  std::unique_ptr<Catalog> cat(new Catalog());
  std::shared_ptr<Collection> c(new Collection());
  c->name_ = name;
  c->store_path_ = primary;
  c->model_path_ = model_path;
  c->primary_ = primary;
  std::string tmpl = (fs::temp_directory_path() / "imsat-follower-XXXXXX").string();
  if (mkdtemp(tmpl.data()) == nullptr) return Status::io_error("cannot create " + tmpl);
  c->secondary_dir_ = tmpl;
  index::StoreOptions o;
  o.read_only = true;
  o.create_if_missing = false;
  o.secondary_path = tmpl;
  if (cache_mb > 0) o.cache_mb = cache_mb;
  Result<std::unique_ptr<index::CodeStore>> store = index::CodeStore::open(primary, o);
  if (!store.is_ok()) {
    std::error_code ec;
    fs::remove_all(tmpl, ec);
    return store.status().prefixed("following " + primary + ": ");
  }
  (*store)->follow(interval_ms);
  std::unique_ptr<learn::Model> model;
  if (!model_path.empty()) {
    IMSAT_ASSIGN_OR_RETURN(learn::Model m, learn::Model::load(model_path));
    model = std::make_unique<learn::Model>(std::move(m));
  }
  IMSAT_ASSIGN_OR_RETURN(c->owned_,
                         QueryEngine::create(std::move(store).value(), std::move(model)));
  c->engine_ = c->owned_.get();
  cat->collections_[name] = std::move(c);
  cat->default_ = name;
  return cat;
}

std::unique_ptr<Catalog> Catalog::wrap(QueryEngine& engine, const std::string& name) {
  std::unique_ptr<Catalog> cat(new Catalog());
  std::shared_ptr<Collection> c(new Collection());
  c->name_ = name;
  c->engine_ = &engine;
  cat->collections_[name] = std::move(c);
  cat->default_ = name;
  return cat;
}

std::vector<std::shared_ptr<Collection>> Catalog::list() const {
  std::lock_guard lock(mutex_);
  std::vector<std::shared_ptr<Collection>> out;
  for (const auto& [name, c] : collections_) out.push_back(c);
  return out;
}

std::shared_ptr<Collection> Catalog::find(const std::string& name) const {
  std::lock_guard lock(mutex_);
  auto it = collections_.find(name);
  return it == collections_.end() ? nullptr : writable_again(it->second);
}

std::shared_ptr<Collection> Catalog::default_collection() const {
  std::lock_guard lock(mutex_);
  if (!default_.empty()) {
    auto it = collections_.find(default_);
    return it == collections_.end() ? nullptr : writable_again(it->second);
  }
  return collections_.size() == 1 ? writable_again(collections_.begin()->second) : nullptr;
}

std::shared_ptr<Collection> Catalog::writable_again(const std::shared_ptr<Collection>& c) const {
  if (c->owned_ == nullptr || !c->primary_.empty() || !c->owned_->reopen_for_writes()) return c;
  // Opened read-only on a full disk, and there is room now: the same collection opened anew
  // takes its place; requests holding the old one finish on it.
  std::shared_ptr<Collection> fresh(new Collection());
  fresh->name_ = c->name_;
  fresh->folder_ = c->folder_;
  fresh->store_path_ = c->store_path_;
  fresh->model_path_ = c->model_path_;
  fresh->snapshot_root_ = c->snapshot_root_;
  if (!open_engine(*fresh).is_ok() || !fresh->engine_->info().writable) return c;
  fresh->owned_->set_encode_batching(encode_batching_);
  log::info("writable_again", {{"collection", c->name_}, {"reason", "space was freed"}});
  collections_[c->name_] = fresh;
  return fresh;
}

std::string Catalog::default_name() const {
  std::shared_ptr<Collection> c = default_collection();
  return c == nullptr ? "" : c->name();
}

Status Catalog::set_default(const std::string& name) {
  std::lock_guard lock(mutex_);
  if (!collections_.count(name)) {
    return Status::not_found("no collection named '" + name + "' (--default-collection)");
  }
  default_ = name;
  return Status::ok();
}

namespace {

// The bytes of a model file named by a client: only a regular file of at most
// kMaxModelFileBytes, read with a bound (no device, FIFO or endless file), and errors that say
// only what the client may know. Under `models_dir` (when set) a relative name is resolved there
// and a name outside it is refused.
Result<std::string> read_named_model(const std::string& name, const std::string& models_dir) {
  fs::path path(name);
  if (!models_dir.empty()) {
    std::error_code ec;
    const fs::path root = fs::weakly_canonical(models_dir, ec);
    path = fs::weakly_canonical(path.is_absolute() ? path : root / path, ec);
    const std::string r = root.string() + "/";
    if (ec || path.string().rfind(r, 0) != 0) {
      return Status::invalid_argument("model '" + name +
                                      "' is not a model file under the server's models folder");
    }
  }
  const auto unusable = [&] {
    return Status::invalid_argument("model '" + name + "' is not a readable model file" +
                                    (models_dir.empty() ? "" : " in the server's models folder"));
  };
  std::error_code ec;
  const fs::file_status st = fs::status(path, ec);
  if (ec || !fs::is_regular_file(st)) return unusable();
  const uintmax_t size = fs::file_size(path, ec);
  if (ec) return unusable();
  if (size > kMaxModelFileBytes) {
    return Status::invalid_argument("model '" + name + "' is " + std::to_string(size) +
                                    " bytes; a model file is at most " +
                                    std::to_string(kMaxModelFileBytes));
  }
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) return unusable();
  std::string bytes(static_cast<size_t>(size), '\0');
  size_t got = 0;
  while (got < bytes.size()) {
    const ssize_t n = ::read(fd, bytes.data() + got, bytes.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got += static_cast<size_t>(n);
  }
  ::close(fd);
  if (got != bytes.size()) return unusable();
  return bytes;
}

}  // namespace

void Catalog::set_models_dir(const std::string& dir) {
  std::lock_guard lock(mutex_);
  models_dir_ = dir;
}

Result<std::shared_ptr<Collection>> Catalog::create(const std::string& name,
                                                    const CollectionSpec& spec) {
  IMSAT_RETURN_IF_ERROR(check_collection_name(name));
  if (data_dir_.empty()) {
    return Status::invalid_argument(
        "collections can be created only when serving a data directory (--data-dir)");
  }
  if (!spec.model_path.empty() && !spec.model_bytes.empty()) {
    return Status::invalid_argument("give a model file's path or its bytes, not both");
  }
  const fs::path folder = fs::path(data_dir_) / name;
  std::string models_dir;
  {
    // The name is claimed here, atomically: a second create of it gets AlreadyExists at once, and
    // the catalog stays open to other requests while this one builds.
    std::lock_guard lock(mutex_);
    if (collections_.count(name) || creating_.count(name)) {
      return Status::already_exists("collection '" + name + "' already exists");
    }
    std::error_code ec;
    if (fs::exists(folder, ec)) {
      return Status::already_exists("collection '" + name +
                                    "': its folder exists (a collection being dropped, or other "
                                    "files); choose another name");
    }
    creating_.insert(name);
    models_dir = models_dir_;
  }
  Result<std::shared_ptr<Collection>> made = build(name, spec, models_dir);
  std::lock_guard lock(mutex_);
  creating_.erase(name);
  if (made.is_ok()) collections_[name] = made.value();
  return made;
}

Result<std::shared_ptr<Collection>> Catalog::restore_snapshot(const std::string& name,
                                                              const std::string& id,
                                                              const std::string& as) {
  IMSAT_RETURN_IF_ERROR(check_collection_name(as));
  if (data_dir_.empty()) {
    return Status::invalid_argument(
        "snapshots can be restored only when serving a data directory (--data-dir)");
  }
  {
    std::lock_guard lock(mutex_);
    if (collections_.count(as) || creating_.count(as)) {
      return Status::already_exists("collection '" + as + "' already exists");
    }
    creating_.insert(as);
  }
  Result<std::shared_ptr<Collection>> made = [&]() -> Result<std::shared_ptr<Collection>> {
    IMSAT_RETURN_IF_ERROR(query::restore_snapshot(data_dir_, name, id, as, /*force=*/false));
    return load(as, (fs::path(data_dir_) / as).string());
  }();
  std::lock_guard lock(mutex_);
  creating_.erase(as);
  if (made.is_ok()) collections_[as] = made.value();
  return made;
}

Result<std::shared_ptr<Collection>> Catalog::build(const std::string& name,
                                                   const CollectionSpec& spec,
                                                   const std::string& models_dir) {
  const fs::path folder = fs::path(data_dir_) / name;
  // Built in a partial folder and renamed into place, so a crash leaves no half collection (the
  // partial folder is removed at the next open).
  const fs::path partial = fs::path(data_dir_) / ("." + name + kPartial);
  IMSAT_RETURN_IF_ERROR(remove_tree(partial));
  std::error_code ec;
  fs::create_directories(partial, ec);
  if (ec) return io_error("cannot create the collection's folder", ec);
  auto fail = [&](const Status& s) {
    std::error_code ignored;
    fs::remove_all(partial, ignored);
    return s;
  };
  int bits = spec.bits;
  index::StoreOptions o;
  if (!spec.model_path.empty() || !spec.model_bytes.empty()) {
    // A remote client naming a path learns only that it is not a usable model file: not whether
    // the path exists, nor what it is.
    const bool opaque = spec.remote && !spec.model_path.empty() && models_dir.empty();
    const auto refuse = [&](const Status& s) {
      return fail(opaque ? Status::invalid_argument("model '" + spec.model_path +
                                                    "' is not a readable imsat model file")
                         : s);
    };
    std::string bytes = spec.model_bytes;
    if (!spec.model_path.empty()) {
      Result<std::string> read = read_named_model(spec.model_path, models_dir);
      if (!read.is_ok()) return refuse(read.status());
      bytes = std::move(read).value();
    }
    const std::string model_file = (partial / kModelFile).string();
    Status s = write_file_atomically(model_file, bytes);
    if (!s.is_ok()) return fail(s);
    Result<learn::Model> model = learn::Model::load(model_file);
    if (!model.is_ok()) {
      // A damaged or foreign file is the client's bad input, not the server's fault.
      return refuse(Status::invalid_argument(
          (spec.model_bytes.empty() ? "model '" + spec.model_path + "'" : "the uploaded model") +
          " is not a model file imsat can read: " + model.status().message()));
    }
    if (bits != 0 && bits != model->bits()) {
      return fail(Status::invalid_argument("'bits' is " + std::to_string(bits) +
                                           " but the model makes " + std::to_string(model->bits()) +
                                           "-bit codes"));
    }
    bits = model->bits();
    o.model_fingerprint = model->fingerprint();
    o.metric = metric_of(*model);
  }
  if (bits == 0) return fail(Status::invalid_argument("give 'bits' or a model"));
  o.bits = bits;
  o.tables = spec.tables;
  o.expected_items = spec.expected_items;
  {
    Result<std::unique_ptr<index::CodeStore>> store =
        index::CodeStore::open((partial / kStoreFolder).string(), o);
    if (!store.is_ok()) return fail(store.status());
  }
  Status s = sync_directory(partial.string());
  if (s.is_ok()) s = rename_synced(partial, folder);
  if (!s.is_ok()) return fail(s.prefixed("cannot move the new collection into place: "));
  return load(name, folder.string());
}

Status Catalog::drop(const std::string& name) {
  std::lock_guard lock(mutex_);
  auto it = collections_.find(name);
  if (it == collections_.end()) return Status::not_found("no collection named '" + name + "'");
  if (!it->second->owns_files()) {
    return Status::invalid_argument("collection '" + name +
                                    "' is a store served with --db; it is not removed over HTTP");
  }
  // The mark makes the drop survive a crash: the next open removes the folder.
  IMSAT_RETURN_IF_ERROR(
      write_file_atomically((fs::path(it->second->folder_) / kDroppedMark).string(), "dropped\n"));
  it->second->dropped_ = true;
  collections_.erase(it);  // the folder goes with the last reference (Collection::~Collection)
  if (default_ == name) default_.clear();
  return Status::ok();
}

}  // namespace imsat::query
