// What the readers of imsat_io share: opening a file with a reason when it cannot be read.
#pragma once

#include <string>

#include "common/status.h"

namespace imsat::io {

// Ok when `path` is a file this process may read; otherwise the reason, naming the path: no such
// file (NotFound), a directory, or the system's reason (permission denied, ...).
Status check_readable(const std::string& path);
// A whole file's bytes, gunzipped when it is gzip (zlib reads plain files as they are).
Result<std::string> read_all(const std::string& path);

}  // namespace imsat::io
