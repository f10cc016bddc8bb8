// Private to src/query: the data directory's file layout and the crash-safe steps that change it
// (collections.h describes the layout). Used by the catalog, snapshots and recovery.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <system_error>

#include "common/status.h"

namespace imsat::query {

namespace fs = std::filesystem;

inline constexpr const char* kStoreFolder = "store";
inline constexpr const char* kModelFile = "model";
inline constexpr const char* kSnapshotFolder = "snapshots";
inline constexpr const char* kDroppedMark = "DROPPED";
// Hidden entries of a data directory (DIR/.NAME.SUFFIX) and of a snapshot folder
// (snapshots/ID.partial, snapshots/.ID.deleting): work in progress, or what it leaves behind.
inline constexpr const char* kPartial = ".partial";  // a collection or snapshot being built
inline constexpr const char* kRestoring =
    ".restoring";                                      // intent record: .NAME.partial replaces NAME
inline constexpr const char* kReplaced = ".replaced";  // a collection a restore has replaced
inline constexpr const char* kDropping =
    ".dropped";  // a dropped collection's folder, being removed
inline constexpr const char* kDeleting = ".deleting";  // a snapshot being deleted
inline constexpr const char* kUpload = ".upload";  // left by servers that staged uploads on disk
// The largest model file a collection is created from (models are a few megabytes).
inline constexpr uintmax_t kMaxModelFileBytes = uintmax_t{1} << 30;

Status io_error(const std::string& what, const std::error_code& ec);
bool ends_with(const std::string& s, const std::string& suffix);
// Renames `from` to `to` and makes the rename durable (both parent folders synced).
Status rename_synced(const fs::path& from, const fs::path& to);
// Removes a folder tree if it exists; IOError when some of it stays.
Status remove_tree(const fs::path& dir);
// Copies a file and syncs it (models are small).
Status copy_file_synced(const std::string& from, const std::string& to);
// Copies a folder tree, every file and folder synced, so that a rename of the copy that survives a
// crash never exposes files whose contents did not.
Status copy_tree_synced(const fs::path& from, const fs::path& to);
// An exclusive lock on a data directory (flock on DIR/.imsat-lock), held by a Catalog for its
// lifetime and by the offline commands that change the directory: recovery and restore --force
// never run under a server that uses the directory.
class DataDirLock {
 public:
  // Busy (is_ok but !held()) when another process, or another Catalog, holds it.
  static Result<DataDirLock> try_acquire(const std::string& data_dir);
  DataDirLock() = default;
  DataDirLock(DataDirLock&& other) noexcept : fd_(other.fd_) { other.fd_ = -1; }
  DataDirLock& operator=(DataDirLock&& other) noexcept;
  DataDirLock(const DataDirLock&) = delete;
  DataDirLock& operator=(const DataDirLock&) = delete;
  ~DataDirLock();
  bool held() const { return fd_ >= 0; }

 private:
  int fd_ = -1;
};
inline constexpr const char* kLockFile = ".imsat-lock";

// Rolls forward a restore whose intent record (DIR/.TO.restoring) exists: the complete copy in
// DIR/.TO.partial takes the name TO, with the snapshots of the collection it replaces. Every step
// checks what the earlier ones left, so a crash anywhere is finished by running it again.
Status finish_restore(const fs::path& dir, const std::string& to);
// Removes what interrupted work left in a collection's snapshot folder: snapshots being made
// (ID.partial) or deleted (.ID.deleting). Returns how many entries went.
Result<size_t> clean_snapshot_root(const fs::path& root);

}  // namespace imsat::query
