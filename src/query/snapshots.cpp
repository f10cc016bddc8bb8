// Snapshots of a collection: create, list, delete, and restore (offline).
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
#include "io/archive.h"
#include "query/collections.h"
#include "query/data_dir_internal.h"

namespace imsat::query {

namespace {

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

Result<std::string> Catalog::snapshot_folder(const std::string& name, const std::string& id) const {
  IMSAT_RETURN_IF_ERROR(check_snapshot_id(id));
  const std::shared_ptr<Collection> c = find(name);
  if (c == nullptr) return Status::not_found("no collection named '" + name + "'");
  const fs::path folder = fs::path(c->snapshot_root()) / id;
  std::error_code ec;
  if (c->snapshot_root().empty() || !fs::is_directory(folder / kStoreFolder, ec)) {
    return Status::not_found("collection '" + name + "' has no snapshot '" + id + "'");
  }
  return folder.string();
}

Result<std::string> Catalog::snapshot_archive(const std::string& name,
                                              const std::string& id) const {
  IMSAT_ASSIGN_OR_RETURN(const std::string folder, snapshot_folder(name, id));
  static std::atomic<uint64_t> serial{0};
  // ".NAME.archive.tmp.ID-N": a name recover_data_dir removes (".tmp.") if it is left behind.
  const std::string zip = (fs::path(data_dir_) / ("." + name + ".archive.tmp." + id + "-" +
                                                  std::to_string(serial.fetch_add(1))))
                              .string();
  IMSAT_RETURN_IF_ERROR(io::zip_folder(folder, zip));
  return zip;
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

Status restore_snapshot(const std::string& data_dir, const std::string& from, const std::string& id,
                        const std::string& to, bool force) {
  IMSAT_RETURN_IF_ERROR(check_snapshot_id(id));
  IMSAT_ASSIGN_OR_RETURN(const std::string source_folder, collection_folder(data_dir, from));
  IMSAT_ASSIGN_OR_RETURN(const std::string target, collection_folder(data_dir, to));
  // Replacing a collection needs the directory to itself; a new one can be added beside a
  // server. An earlier restore that a crash interrupted is finished first (it may be this one).
  IMSAT_ASSIGN_OR_RETURN(DataDirLock lock, DataDirLock::try_acquire(data_dir));
  if (!lock.held() && force) {
    return Status::invalid_argument(data_dir +
                                    " is in use by another imsat process (a server?): replacing "
                                    "a collection it serves would lose its writes; stop it first");
  }
  if (lock.held()) IMSAT_RETURN_IF_ERROR(recover_data_dir(data_dir).status());
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
