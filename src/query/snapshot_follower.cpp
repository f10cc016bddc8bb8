// A collection that serves, read-only, the snapshot a path names and each one that replaces it.
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

namespace imsat::query {

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
              log::error("follow_failed", {{"path", path}, {"reason", error}});
            } else {
              identity = now;
              failed.clear();
              log::info("follow_swapped",
                        {{"serving", folder}, {"items", next->engine().info().items}});
            }
          }
          lock.lock();
          ++self->follow_status_.checks;
          self->follow_checked_.notify_all();
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

Catalog::FollowStatus Catalog::wait_for_follow_check(std::chrono::milliseconds timeout) const {
  std::unique_lock lock(follow_mutex_);
  const uint64_t target = follow_status_.checks + 2;
  follow_checked_.wait_for(lock, timeout, [&] { return follow_status_.checks >= target; });
  return follow_status_;
}

Catalog::FollowStatus Catalog::follow_status() const {
  std::lock_guard lock(follow_mutex_);
  return follow_status_;
}

}  // namespace imsat::query
