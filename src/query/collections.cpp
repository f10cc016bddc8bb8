// Collections in a data directory: opening, creating and dropping them, and their snapshots.
#include "query/collections.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/atomic_file.h"
#include "query/store_admin.h"

namespace imsat::query {
namespace fs = std::filesystem;
namespace {

constexpr const char* kStoreFolder = "store";
constexpr const char* kModelFile = "model";
constexpr const char* kSnapshotFolder = "snapshots";
constexpr const char* kDroppedMark = "DROPPED";
// Hidden entries of a data directory (DIR/.NAME.SUFFIX) and of a snapshot folder
// (snapshots/ID.partial, snapshots/.ID.deleting): work in progress, or what it leaves behind.
constexpr const char* kPartial = ".partial";      // a collection or snapshot being built
constexpr const char* kRestoring = ".restoring";  // intent record: .NAME.partial replaces NAME
constexpr const char* kReplaced = ".replaced";    // a collection a restore has replaced
constexpr const char* kDropping = ".dropped";     // a dropped collection's folder, being removed
constexpr const char* kDeleting = ".deleting";    // a snapshot being deleted
constexpr const char* kUpload = ".upload";        // left by servers that staged uploads on disk
// The largest model file a collection is created from (models are a few megabytes).
constexpr uintmax_t kMaxModelFileBytes = uintmax_t{1} << 30;

Status io_error(const std::string& what, const std::error_code& ec) {
  return Status::io_error(what + ": " + ec.message());
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// Renames `from` to `to` and makes the rename durable (both parent folders synced).
Status rename_synced(const fs::path& from, const fs::path& to) {
  std::error_code ec;
  fs::rename(from, to, ec);
  if (ec)
    return io_error("cannot rename " + from.filename().string() + " to " + to.filename().string(),
                    ec);
  IMSAT_RETURN_IF_ERROR(sync_directory(to.parent_path().string()));
  if (from.parent_path() != to.parent_path()) {
    IMSAT_RETURN_IF_ERROR(sync_directory(from.parent_path().string()));
  }
  return Status::ok();
}

// Removes a folder tree if it exists; IOError when some of it stays.
Status remove_tree(const fs::path& dir) {
  std::error_code ec;
  fs::remove_all(dir, ec);
  if (ec) return io_error("cannot remove " + dir.filename().string(), ec);
  return Status::ok();
}

// Copies a file and syncs it (models are small).
Status copy_file_synced(const std::string& from, const std::string& to) {
  std::ifstream in(from, std::ios::binary);
  if (!in) return Status::io_error(fs::path(from).filename().string() + ": cannot read");
  std::stringstream bytes;
  bytes << in.rdbuf();
  return write_file_atomically(to, bytes.str());
}

// Copies a folder tree, every file and folder synced, so that a rename of the copy that survives a
// crash never exposes files whose contents did not.
Status copy_tree_synced(const fs::path& from, const fs::path& to) {
  std::error_code ec;
  fs::create_directories(to, ec);
  if (ec) return io_error("cannot create " + to.filename().string(), ec);
  for (const auto& entry : fs::directory_iterator(from, ec)) {
    const fs::path dest = to / entry.path().filename();
    if (entry.is_directory()) {
      IMSAT_RETURN_IF_ERROR(copy_tree_synced(entry.path(), dest));
      continue;
    }
    fs::copy_file(entry.path(), dest, fs::copy_options::overwrite_existing, ec);
    if (ec) return io_error("cannot copy " + entry.path().filename().string(), ec);
    const int fd = ::open(dest.c_str(), O_RDONLY | O_CLOEXEC);
    const bool synced = fd >= 0 && ::fsync(fd) == 0;
    if (fd >= 0) ::close(fd);
    if (!synced) return Status::io_error("cannot sync " + dest.filename().string());
  }
  if (ec) return io_error("cannot list " + from.filename().string(), ec);
  return sync_directory(to.string());
}

// Rolls forward a restore whose intent record (DIR/.TO.restoring) exists: the complete copy in
// DIR/.TO.partial takes the name TO, with the snapshots of the collection it replaces. Every step
// checks what the earlier ones left, so a crash anywhere is finished by running it again.
Status finish_restore(const fs::path& dir, const std::string& to) {
  const fs::path target = dir / to;
  const fs::path partial = dir / ("." + to + kPartial);
  const fs::path replaced = dir / ("." + to + kReplaced);
  std::error_code ec;
  if (fs::exists(partial, ec)) {
    if (fs::exists(target / kSnapshotFolder, ec) && !fs::exists(partial / kSnapshotFolder, ec)) {
      IMSAT_RETURN_IF_ERROR(rename_synced(target / kSnapshotFolder, partial / kSnapshotFolder));
    }
    if (fs::exists(target, ec)) {
      IMSAT_RETURN_IF_ERROR(remove_tree(replaced));
      IMSAT_RETURN_IF_ERROR(rename_synced(target, replaced));
    }
    IMSAT_RETURN_IF_ERROR(rename_synced(partial, target));
  }
  IMSAT_RETURN_IF_ERROR(remove_tree(replaced));
  fs::remove(dir / ("." + to + kRestoring), ec);
  if (ec) return io_error("cannot remove the restore's intent record", ec);
  return sync_directory(dir.string());
}

// Removes what interrupted work left in a collection's snapshot folder: snapshots being made
// (ID.partial) or deleted (.ID.deleting). Returns how many entries went.
Result<size_t> clean_snapshot_root(const fs::path& root) {
  size_t cleaned = 0;
  std::error_code ec;
  if (!fs::is_directory(root, ec)) return cleaned;
  std::vector<fs::path> leftovers;
  for (const auto& entry : fs::directory_iterator(root, ec)) {
    const std::string name = entry.path().filename().string();
    if (ends_with(name, kPartial) || (name[0] == '.' && ends_with(name, kDeleting))) {
      leftovers.push_back(entry.path());
    }
  }
  if (ec) return io_error("cannot list " + root.filename().string(), ec);
  for (const fs::path& p : leftovers) {
    IMSAT_RETURN_IF_ERROR(remove_tree(p));
    ++cleaned;
  }
  if (cleaned > 0) IMSAT_RETURN_IF_ERROR(sync_directory(root.string()));
  return cleaned;
}

uint64_t folder_bytes(const fs::path& dir) {
  uint64_t total = 0;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(dir, ec); !ec && it != fs::end(it);
       it.increment(ec)) {
    if (it->is_regular_file(ec)) total += it->file_size(ec);
  }
  return total;
}

std::string snapshot_id(int64_t unix_seconds, unsigned sequence) {
  const std::time_t t = static_cast<std::time_t>(unix_seconds);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%04d%02d%02dT%02d%02d%02dZ-%03u", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, sequence);
  return buf;
}

// "20261127T201500Z-000" -> unix seconds (0 when the id has another shape).
int64_t snapshot_time(const std::string& id) {
  std::tm tm{};
  if (std::sscanf(id.c_str(), "%4d%2d%2dT%2d%2d%2dZ", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                  &tm.tm_hour, &tm.tm_min, &tm.tm_sec) != 6) {
    return 0;
  }
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  return static_cast<int64_t>(timegm(&tm));
}

Status check_snapshot_id(const std::string& id) {
  if (id.empty() || id.size() > 64 || id.find_first_not_of("0123456789TZ-") != std::string::npos) {
    return Status::invalid_argument("'" + id +
                                    "' is not a snapshot id (e.g. 20261127T201500Z-000)");
  }
  return Status::ok();
}

}  // namespace

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
    std::fprintf(stderr, "imsat: collection '%s' was dropped but its files stay: %s\n",
                 name_.c_str(), s.message().c_str());
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

namespace {

// What a followed path names now: its resolved folder and that folder's inode (a folder renamed
// into the same place is another one).
std::string resolve_followed(const std::string& path, std::string* folder) {
  std::error_code ec;
  const fs::path real = fs::canonical(path, ec);
  if (ec) return "";
  struct stat st {};
  if (::stat(real.c_str(), &st) != 0) return "";
  *folder = real.string();
  return real.string() + "|" + std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino);
}

}  // namespace

Result<std::shared_ptr<Collection>> Catalog::open_followed(const std::string& name,
                                                           const std::string& followed,
                                                           const std::string& folder,
                                                           const std::string& model_path,
                                                           size_t cache_mb) {
  std::shared_ptr<Collection> c(new Collection());
  std::error_code ec;
  const fs::path inner = fs::path(folder) / kStoreFolder;
  const std::string store = fs::is_directory(inner, ec) ? inner.string() : folder;
  std::string model = model_path;
  if (model.empty() && fs::is_regular_file(fs::path(folder) / kModelFile, ec)) {
    model = (fs::path(folder) / kModelFile).string();
  }
  IMSAT_ASSIGN_OR_RETURN(std::unique_ptr<QueryEngine> engine,
                         QueryEngine::open(store, model, /*read_only=*/true, cache_mb));
  c->name_ = name;
  c->store_path_ = store;
  c->model_path_ = model;
  c->primary_ = followed;
  c->owned_ = std::move(engine);
  c->engine_ = c->owned_.get();
  return c;
}

Result<std::unique_ptr<Catalog>> Catalog::snapshot_follower(const std::string& name,
                                                            const std::string& path,
                                                            const std::string& model_path,
                                                            int interval_ms, size_t cache_mb) {
  IMSAT_RETURN_IF_ERROR(check_collection_name(name));
  std::string folder;
  std::string identity = resolve_followed(path, &folder);
  if (identity.empty()) return Status::not_found(path + ": no such snapshot or store folder");
  std::unique_ptr<Catalog> cat(new Catalog());
  IMSAT_ASSIGN_OR_RETURN(std::shared_ptr<Collection> first,
                         open_followed(name, path, folder, model_path, cache_mb));
  const int bits = first->engine().bits();
  cat->collections_[name] = first;
  cat->default_ = name;
  cat->follow_status_.serving = folder;
  Catalog* self = cat.get();
  cat->follow_thread_ =
      std::thread([self, name, path, model_path, interval_ms, cache_mb, bits, identity]() mutable {
        std::string failed;  // the identity that last failed to open (not retried until it changes)
        std::unique_lock lock(self->follow_mutex_);
        while (!self->follow_wake_.wait_for(lock, std::chrono::milliseconds(interval_ms),
                                            [self] { return self->follow_stop_; })) {
          lock.unlock();
          std::string folder;
          const std::string now = resolve_followed(path, &folder);
          std::shared_ptr<Collection> next;
          std::string error;
          if (!now.empty() && now != identity && now != failed) {
            Result<std::shared_ptr<Collection>> opened =
                open_followed(name, path, folder, model_path, cache_mb);
            if (!opened.is_ok()) {
              error = folder + ": " + opened.status().message();
            } else if ((*opened)->engine().bits() != bits) {
              error = folder + " holds " + std::to_string((*opened)->engine().bits()) +
                      "-bit codes; the followed snapshots hold " + std::to_string(bits) +
                      "-bit codes";
            } else {
              next = std::move(opened).value();
            }
            if (next) {
              std::lock_guard catalog_lock(self->mutex_);
              self->collections_[name] = next;  // the old one closes when its last request ends
            }
            if (!error.empty()) {
              failed = now;
              std::fprintf(stderr, "imsat: not following %s: %s\n", path.c_str(), error.c_str());
            } else {
              identity = now;
              failed.clear();
              std::fprintf(stderr, "imsat: now serving %s (%zu items)\n", folder.c_str(),
                           next->engine().info().items);
            }
          }
          lock.lock();
          if (next) {
            self->follow_status_.serving = folder;
            ++self->follow_status_.swaps;
            self->follow_status_.error.clear();
          } else if (!error.empty()) {
            self->follow_status_.error = error;
          }
        }
      });
  return cat;
}

Catalog::FollowStatus Catalog::follow_status() const {
  std::lock_guard lock(follow_mutex_);
  return follow_status_;
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
  Result<std::unique_ptr<QueryEngine>> engine =
      QueryEngine::open(c->store_path_, c->model_path_, false, cache_mb_);
  if (!engine.is_ok()) {
    return engine.status().prefixed("collection '" + name + "': ");
  }
  c->owned_ = std::move(engine).value();
  c->engine_ = c->owned_.get();
  c->owned_->set_encode_batching(encode_batching_);
  if (cache_vectors_) IMSAT_RETURN_IF_ERROR(c->owned_->cache_vectors());
  return c;
}

void Catalog::set_encode_batching(const EncodeBatchOptions& options) {
  std::lock_guard lock(mutex_);
  encode_batching_ = options;
  for (auto& [name, c] : collections_) c->engine_->set_encode_batching(options);
}

Result<std::unique_ptr<Catalog>> Catalog::open(const std::string& data_dir, bool cache_vectors,
                                               size_t cache_mb) {
  std::unique_ptr<Catalog> cat(new Catalog());
  cat->data_dir_ = data_dir;
  cat->cache_vectors_ = cache_vectors;
  cat->cache_mb_ = cache_mb;
  std::error_code ec;
  fs::create_directories(data_dir, ec);
  if (ec) return io_error(data_dir + ": cannot create the data directory", ec);
  if (!fs::is_directory(data_dir, ec)) {
    return Status::invalid_argument(data_dir + ": not a directory");
  }
  IMSAT_ASSIGN_OR_RETURN(const size_t recovered, recover_data_dir(data_dir));
  if (recovered > 0) {
    std::fprintf(stderr,
                 "imsat: %s: finished or removed %zu leftovers of interrupted operations "
                 "(restores, drops, creates, snapshots)\n",
                 data_dir.c_str(), recovered);
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
                                                 size_t cache_mb) {
  IMSAT_RETURN_IF_ERROR(check_collection_name(name));
  std::unique_ptr<Catalog> cat(new Catalog());
  cat->cache_vectors_ = cache_vectors;
  cat->cache_mb_ = cache_mb;
  std::shared_ptr<Collection> c(new Collection());
  c->name_ = name;
  c->store_path_ = store_path;
  c->model_path_ = model_path;
  std::string root = store_path;
  while (root.size() > 1 && root.back() == '/') root.pop_back();
  c->snapshot_root_ = root + ".snapshots";
  IMSAT_RETURN_IF_ERROR(clean_snapshot_root(c->snapshot_root_).status());
  IMSAT_ASSIGN_OR_RETURN(c->owned_, QueryEngine::open(store_path, model_path, false, cache_mb));
  c->engine_ = c->owned_.get();
  if (cache_vectors) IMSAT_RETURN_IF_ERROR(c->owned_->cache_vectors());
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
  Result<std::unique_ptr<QueryEngine>> engine =
      QueryEngine::open(c->store_path_, c->model_path_, false, cache_mb_);
  if (!engine.is_ok() || !(*engine)->info().writable) return c;
  std::shared_ptr<Collection> fresh(new Collection());
  fresh->name_ = c->name_;
  fresh->folder_ = c->folder_;
  fresh->store_path_ = c->store_path_;
  fresh->model_path_ = c->model_path_;
  fresh->snapshot_root_ = c->snapshot_root_;
  fresh->owned_ = std::move(engine).value();
  fresh->engine_ = fresh->owned_.get();
  fresh->owned_->set_encode_batching(encode_batching_);
  if (cache_vectors_ && !fresh->owned_->cache_vectors().is_ok()) return c;
  std::fprintf(stderr, "imsat: collection '%s' takes writes again (space was freed)\n",
               c->name_.c_str());
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

Result<SnapshotInfo> Catalog::create_snapshot(const std::string& name) {
  std::shared_ptr<Collection> c = find(name);
  if (c == nullptr) return Status::not_found("no collection named '" + name + "'");
  if (c->snapshot_root().empty()) {
    return Status::invalid_argument("collection '" + name + "' has no folder for snapshots");
  }
  std::lock_guard lock(snapshot_mutex_);
  std::error_code ec;
  fs::create_directories(c->snapshot_root(), ec);
  if (ec) return io_error(c->snapshot_root(), ec);
  if (!c->primary().empty()) {
    return Status::invalid_argument("collection '" + name + "' follows " + c->primary() +
                                    "; take snapshots on the primary");
  }
  const int64_t now = std::chrono::duration_cast<std::chrono::seconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  std::string id;
  for (unsigned seq = 0; seq < 1000; ++seq) {
    id = snapshot_id(now, seq);
    if (!fs::exists(fs::path(c->snapshot_root()) / id, ec)) break;
  }
  const fs::path partial = fs::path(c->snapshot_root()) / (id + kPartial);
  fs::remove_all(partial, ec);
  fs::create_directories(partial, ec);
  if (ec) return io_error(partial.string(), ec);
  Status s = c->engine().checkpoint((partial / kStoreFolder).string());
  if (s.is_ok() && !c->model_path().empty()) {
    s = copy_file_synced(c->model_path(), (partial / kModelFile).string());
  }
  if (s.is_ok()) s = sync_directory(partial.string());
  if (s.is_ok()) s = rename_synced(partial, fs::path(c->snapshot_root()) / id);
  if (!s.is_ok()) {
    fs::remove_all(partial, ec);
    return s;
  }
  SnapshotInfo info;
  info.id = id;
  info.path = (fs::path(c->snapshot_root()) / id).string();
  info.bytes = folder_bytes(info.path);
  info.created_unix = now;
  info.has_model = !c->model_path().empty();
  return info;
}

Result<std::vector<SnapshotInfo>> list_snapshots(const std::string& root) {
  std::vector<SnapshotInfo> out;
  std::error_code ec;
  if (!fs::exists(root, ec)) return out;
  for (const auto& entry : fs::directory_iterator(root, ec)) {
    const std::string id = entry.path().filename().string();
    if (!entry.is_directory() || !check_snapshot_id(id).is_ok()) continue;  // skips .partial
    SnapshotInfo info;
    info.id = id;
    info.path = entry.path().string();
    info.bytes = folder_bytes(entry.path());
    info.created_unix = snapshot_time(id);
    info.has_model = fs::exists(entry.path() / kModelFile);
    out.push_back(std::move(info));
  }
  if (ec) return io_error(root + ": cannot list snapshots", ec);
  std::sort(out.begin(), out.end(),
            [](const SnapshotInfo& a, const SnapshotInfo& b) { return a.id < b.id; });
  return out;
}

Result<std::vector<SnapshotInfo>> Catalog::snapshots(const std::string& name) const {
  std::shared_ptr<Collection> c = find(name);
  if (c == nullptr) return Status::not_found("no collection named '" + name + "'");
  return list_snapshots(c->snapshot_root());
}

Status Catalog::delete_snapshot(const std::string& name, const std::string& id) {
  IMSAT_RETURN_IF_ERROR(check_snapshot_id(id));
  std::shared_ptr<Collection> c = find(name);
  if (c == nullptr) return Status::not_found("no collection named '" + name + "'");
  const fs::path dir = fs::path(c->snapshot_root()) / id;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    return Status::not_found("collection '" + name + "' has no snapshot '" + id + "'");
  }
  // Renamed out of the list in one step first: a crash during the removal leaves a hidden
  // folder (removed at the next open), never a listed snapshot with some of its files gone.
  std::lock_guard lock(snapshot_mutex_);
  const fs::path gone = fs::path(c->snapshot_root()) / ("." + id + kDeleting);
  IMSAT_RETURN_IF_ERROR(remove_tree(gone));
  IMSAT_RETURN_IF_ERROR(rename_synced(dir, gone));
  return remove_tree(gone);
}

Result<size_t> recover_data_dir(const std::string& data_dir) {
  const fs::path dir(data_dir);
  std::vector<std::string> restores, leftovers, collections;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.size() > 1 && name[0] == '.' && name.find(".tmp.") != std::string::npos) {
      leftovers.push_back(name);  // a record whose atomic write was cut short
    } else if (name.size() > 1 && name[0] == '.') {
      for (const std::string suffix : {kRestoring, kPartial, kReplaced, kDropping, kUpload}) {
        if (!ends_with(name, suffix)) continue;
        const std::string base = name.substr(1, name.size() - 1 - suffix.size());
        if (!check_collection_name(base).is_ok()) break;
        (suffix == kRestoring ? restores : leftovers).push_back(suffix == kRestoring ? base : name);
        break;
      }
    } else if (entry.is_directory(ec) && check_collection_name(name).is_ok()) {
      collections.push_back(name);
    }
  }
  if (ec) return io_error(data_dir + ": cannot list", ec);
  size_t done = 0;
  for (const std::string& to : restores) {
    IMSAT_RETURN_IF_ERROR(
        finish_restore(dir, to).prefixed("finishing the restore of '" + to + "': "));
    ++done;
  }
  for (const std::string& name : leftovers) {
    if (!fs::exists(dir / name, ec)) continue;  // a restore just finished took it
    IMSAT_RETURN_IF_ERROR(remove_tree(dir / name));
    ++done;
  }
  for (const std::string& name : collections) {
    if (fs::exists(dir / name / kDroppedMark, ec)) {  // a drop that was interrupted
      const fs::path gone = dir / ("." + name + kDropping);
      IMSAT_RETURN_IF_ERROR(remove_tree(gone));
      IMSAT_RETURN_IF_ERROR(rename_synced(dir / name, gone));
      IMSAT_RETURN_IF_ERROR(remove_tree(gone));
      ++done;
      continue;
    }
    IMSAT_ASSIGN_OR_RETURN(const size_t cleaned, clean_snapshot_root(dir / name / kSnapshotFolder));
    done += cleaned;
  }
  if (done > 0) IMSAT_RETURN_IF_ERROR(sync_directory(data_dir));
  return done;
}

Status restore_snapshot(const std::string& data_dir, const std::string& from, const std::string& id,
                        const std::string& to, bool force) {
  IMSAT_RETURN_IF_ERROR(check_snapshot_id(id));
  IMSAT_ASSIGN_OR_RETURN(const std::string source_folder, collection_folder(data_dir, from));
  IMSAT_ASSIGN_OR_RETURN(const std::string target, collection_folder(data_dir, to));
  // An earlier restore that a crash interrupted is finished first (it may be this one).
  IMSAT_RETURN_IF_ERROR(recover_data_dir(data_dir).status());
  const fs::path snapshot = fs::path(source_folder) / kSnapshotFolder / id;
  std::error_code ec;
  if (!fs::is_directory(snapshot / kStoreFolder, ec)) {
    return Status::not_found("collection '" + from + "' has no snapshot '" + id + "'");
  }
  if (fs::exists(target, ec) && !force) {
    return Status::already_exists("collection '" + to +
                                  "' exists; restore under another name, or replace it with "
                                  "--force");
  }
  // Copied (not linked) and synced into a partial folder, opened once to check it; then the
  // intent record, from which a crash at any later point is rolled forward (finish_restore).
  const fs::path partial = fs::path(data_dir) / ("." + to + kPartial);
  IMSAT_RETURN_IF_ERROR(remove_tree(partial));
  auto fail = [&](const Status& s) {
    std::error_code ignored;
    fs::remove_all(partial, ignored);
    return s;
  };
  Status s = copy_tree_synced(snapshot / kStoreFolder, partial / kStoreFolder);
  if (s.is_ok() && fs::exists(snapshot / kModelFile, ec)) {
    s = copy_file_synced((snapshot / kModelFile).string(), (partial / kModelFile).string());
  }
  if (!s.is_ok()) return fail(s.prefixed("copying the snapshot: "));
  {
    const std::string model =
        fs::exists(partial / kModelFile, ec) ? (partial / kModelFile).string() : "";
    Result<std::unique_ptr<QueryEngine>> check =
        QueryEngine::open((partial / kStoreFolder).string(), model);
    if (!check.is_ok()) return fail(check.status().prefixed("the snapshot does not open: "));
  }
  s = sync_directory(partial.string());
  if (!s.is_ok()) return fail(s);
  s = write_file_atomically((fs::path(data_dir) / ("." + to + kRestoring)).string(),
                            "restore " + from + " " + id + "\n");
  if (!s.is_ok()) return fail(s);
  return finish_restore(data_dir, to);
}

}  // namespace imsat::query
