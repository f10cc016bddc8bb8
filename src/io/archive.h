// imsat::io archives — a folder written as one zip file (libzip, entries stored uncompressed: a
// RocksDB store's tables are compressed already), for downloading a snapshot in one file.
#pragma once

#include <string>

#include "common/status.h"

namespace imsat::io {

// Writes every regular file under `folder` (recursively; paths relative to it, '/'-separated)
// into a new zip file at `zip_path`. IOError naming the file that could not be read or written;
// the partial zip file is removed.
Status zip_folder(const std::string& folder, const std::string& zip_path);

}  // namespace imsat::io
