// A full disk: writes refused with NoSpace while reads go on, and resumed once space is freed.
//
// RocksDB 7.8 stops a database's writes after a background error. Its own recovery from a
// NoSpace error (the SstFileManager polling free space, then DB::Resume) closes the write-ahead
// log writer that failed, which trips the assertion `sync_without_flush_called_` in Debian's
// build and aborts the process. So the store turns that recovery off (DiskListener), keeps
// writes from reaching a nearly full disk (a free-space reserve checked before each write), and
// resumes it itself (DB::Resume) once the reserve is back, which is safe with room to flush.
#include <sys/statvfs.h>

#include <algorithm>
#include <cstdio>

#include "index/store_internal.h"

namespace imsat::index {

namespace {

bool is_no_space(const rocksdb::Status& s) {
  return s.IsNoSpace() || s.subcode() == rocksdb::Status::SubCode::kNoSpace;
}

std::string megabytes(uint64_t bytes) {
  char text[32];
  std::snprintf(text, sizeof(text), "%.1f MiB", static_cast<double>(bytes) / (1 << 20));
  return text;
}

}  // namespace

void DiskListener::OnBackgroundError(rocksdb::BackgroundErrorReason /*reason*/,
                                     rocksdb::Status* bg_error) {
  if (bg_error == nullptr || !is_no_space(*bg_error)) return;
  std::lock_guard lock(state_->mutex);
  state_->stopped = true;
  // Without the file name RocksDB puts in its message: clients see this reason (/healthz).
  state_->reason = "RocksDB stopped writes: no space left on the device";
}

void DiskListener::OnErrorRecoveryBegin(rocksdb::BackgroundErrorReason /*reason*/,
                                        rocksdb::Status bg_error, bool* auto_recovery) {
  if (auto_recovery != nullptr && is_no_space(bg_error)) *auto_recovery = false;
}

Status translate_write(const rocksdb::Status& s, const std::string& what) {
  if (is_no_space(s)) {
    return Status::no_space(what + ": the disk is full (" + s.ToString() +
                            "); reads go on, and writes resume once space is freed");
  }
  return translate(s, what);
}

uint64_t DiskState::reserve_bytes(uint64_t filesystem_bytes) {
  // 64 MiB, or a twentieth of a small file system (at least 1 MiB): room for a batch, the
  // memtable flushes and the manifest after the check passes.
  return std::min<uint64_t>(64u << 20, std::max<uint64_t>(1u << 20, filesystem_bytes / 20));
}

namespace {

// Free bytes on the store's file system and the reserve for its size; false when unknown.
bool free_space(const std::string& path, uint64_t* free_bytes, uint64_t* reserve) {
  struct statvfs fs {};
  if (::statvfs(path.c_str(), &fs) != 0) return false;
  *free_bytes = static_cast<uint64_t>(fs.f_bavail) * fs.f_frsize;
  *reserve = DiskState::reserve_bytes(static_cast<uint64_t>(fs.f_blocks) * fs.f_frsize);
  return true;
}

}  // namespace

bool disk_below_reserve(const std::string& path) {
  uint64_t free_bytes = 0, reserve = 0;
  return free_space(path, &free_bytes, &reserve) && free_bytes < reserve;
}

bool CodeStore::reopen_for_writes() const {
  return impl_->full_at_open && !disk_below_reserve(impl_->path);
}

Status CodeStore::Impl::check_disk() {
  if (disk == nullptr) return Status::ok();
  uint64_t free_bytes = 0, reserve = 0;
  if (free_space(path, &free_bytes, &reserve) && free_bytes < reserve) {
    return Status::no_space("the disk holding the store has " + megabytes(free_bytes) +
                            " free, less than the " + megabytes(reserve) +
                            " writes keep in reserve; nothing was written. Reads go on, and "
                            "writes resume once space is freed");
  }
  std::lock_guard lock(disk->mutex);
  if (!disk->stopped) return Status::ok();
  // RocksDB stopped writes for lack of space (a log append, a flush or a compaction), and there
  // is room again: resumed here, never while the disk is still full (see the top of the file).
  const rocksdb::Status resumed = db->Resume();
  if (!resumed.ok()) return translate_write(resumed, "resuming after a full disk");
  disk->stopped = false;
  disk->reason.clear();
  return Status::ok();
}

CodeStore::DiskReport CodeStore::disk_report() const {
  DiskReport r;
  if (impl_->full_at_open) {
    r.writable = false;
    r.reason = "the disk was full when the store was opened; it serves reads only";
    return r;
  }
  if (impl_->disk == nullptr) {  // opened read-only on purpose
    r.writable = false;
    r.reason = "opened read-only";
    return r;
  }
  uint64_t free_bytes = 0, reserve = 0;
  const bool low = free_space(impl_->path, &free_bytes, &reserve) && free_bytes < reserve;
  std::lock_guard lock(impl_->disk->mutex);
  r.writable = !low && !impl_->disk->stopped;
  r.reason = impl_->disk->stopped ? impl_->disk->reason
             : low ? "free space " + megabytes(free_bytes) + " is below the " + megabytes(reserve) +
                         " reserve"
                   : std::string();
  return r;
}

}  // namespace imsat::index
