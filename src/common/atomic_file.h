// Writing a whole file so that readers see the old contents or the new, never a mix: the bytes go
// to a temporary file beside the target, which is fsynced, renamed over the target, and the
// folder fsynced so the rename itself survives a power cut. Used for model and codes files.
#pragma once

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <functional>
#include <string>
#include <string_view>

#include "common/status.h"

namespace imsat {

// Makes the entries of folder `dir` (files created, renamed or removed in it) durable.
// IOError naming the folder and the system's reason.
inline Status sync_directory(const std::string& dir) {
  const int fd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return Status::io_error(dir + ": cannot open the folder: " + std::strerror(errno));
  const int rc = ::fsync(fd);
  const int saved = errno;
  ::close(fd);
  if (rc != 0) return Status::io_error(dir + ": cannot sync the folder: " + std::strerror(saved));
  return Status::ok();
}

// Errors: IOError naming the file and the system's reason. On error the target is unchanged and
// the temporary file is removed. `before_rename` is a test hook (simulating a crash between the
// write and the rename); leave it empty.
inline Status write_file_atomically(const std::string& path, std::string_view bytes,
                                    const std::function<void()>& before_rename = nullptr) {
  namespace fs = std::filesystem;
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  auto fail = [&](const std::string& what) {
    const std::string reason = std::strerror(errno);
    ::unlink(tmp.c_str());
    return Status::io_error(path + ": " + what + ": " + reason);
  };
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return Status::io_error(tmp + ": cannot create: " + std::strerror(errno));
  size_t written = 0;
  while (written < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + written, bytes.size() - written);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      ::close(fd);
      return fail("cannot write " + tmp);
    }
    written += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0) {
    ::close(fd);
    return fail("cannot sync " + tmp);
  }
  if (::close(fd) != 0) return fail("cannot close " + tmp);
  if (before_rename) before_rename();
  if (::rename(tmp.c_str(), path.c_str()) != 0) return fail("cannot rename " + tmp + " into place");
  return sync_directory(fs::path(path).parent_path().string());
}

}  // namespace imsat
