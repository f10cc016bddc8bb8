// The data directory's crash-safe steps (data_dir_internal.h) and the recovery that finishes or
// removes what an interrupted one left (recover_data_dir).
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <vector>

#include "common/atomic_file.h"
#include "query/collections.h"
#include "query/data_dir_internal.h"

namespace imsat::query {
Result<DataDirLock> DataDirLock::try_acquire(const std::string& data_dir) {
  const std::string path = (fs::path(data_dir) / kLockFile).string();
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0)
    return Status::io_error(data_dir + ": cannot open its lock file: " + std::strerror(errno));
  DataDirLock lock;
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    ::close(fd);
    if (err == EWOULDBLOCK) return lock;  // busy
    return Status::io_error(data_dir + ": cannot lock: " + std::strerror(err));
  }
  lock.fd_ = fd;
  return lock;
}

DataDirLock& DataDirLock::operator=(DataDirLock&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = other.fd_;
    other.fd_ = -1;
  }
  return *this;
}

DataDirLock::~DataDirLock() {
  if (fd_ >= 0) ::close(fd_);  // closing the descriptor releases the flock
}

Status io_error(const std::string& what, const std::error_code& ec) {
  return Status::io_error(what + ": " + ec.message());
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

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

Status remove_tree(const fs::path& dir) {
  std::error_code ec;
  fs::remove_all(dir, ec);
  if (ec) return io_error("cannot remove " + dir.filename().string(), ec);
  return Status::ok();
}

Status copy_file_synced(const std::string& from, const std::string& to) {
  std::ifstream in(from, std::ios::binary);
  if (!in) return Status::io_error(fs::path(from).filename().string() + ": cannot read");
  std::stringstream bytes;
  bytes << in.rdbuf();
  return write_file_atomically(to, bytes.str());
}

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

Result<size_t> recover_data_dir_if_unused(const std::string& data_dir) {
  std::error_code ec;
  if (!fs::is_directory(data_dir, ec)) return size_t{0};
  IMSAT_ASSIGN_OR_RETURN(DataDirLock lock, DataDirLock::try_acquire(data_dir));
  if (!lock.held()) return size_t{0};
  return recover_data_dir(data_dir);
}

}  // namespace imsat::query
