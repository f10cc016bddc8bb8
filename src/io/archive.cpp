// zip_folder: libzip, entries stored (no compression), each file read by libzip as it writes.
#include "io/archive.h"

#include <filesystem>

#ifdef IMSAT_NPZ
#include <zip.h>
#endif

namespace imsat::io {

namespace fs = std::filesystem;

Status zip_folder(const std::string& folder, const std::string& zip_path) {
#ifndef IMSAT_NPZ
  (void)folder;
  (void)zip_path;
  return Status::invalid_argument("this build has no zip support (libzip)");
#else
  std::error_code ec;
  if (!fs::is_directory(folder, ec)) return Status::not_found(folder + ": no such folder");
  int error = 0;
  zip_t* zip = zip_open(zip_path.c_str(), ZIP_CREATE | ZIP_EXCL, &error);
  if (zip == nullptr) {
    zip_error_t e;
    zip_error_init_with_code(&e, error);
    const std::string why = zip_error_strerror(&e);
    zip_error_fini(&e);
    return Status::io_error(zip_path + ": cannot create: " + why);
  }
  const auto fail = [&](const std::string& what) {
    const std::string why = zip_strerror(zip);
    zip_discard(zip);
    std::error_code ignored;
    fs::remove(zip_path, ignored);
    return Status::io_error(what + ": " + why);
  };
  for (fs::recursive_directory_iterator it(folder, ec), end; !ec && it != end; it.increment(ec)) {
    if (!it->is_regular_file(ec)) continue;
    const std::string path = it->path().string();
    const std::string name = it->path().lexically_relative(folder).generic_string();
    // Length 0: to the end of the file (libzip 1.7 has no ZIP_LENGTH_TO_END).
    zip_source_t* source = zip_source_file(zip, path.c_str(), 0, 0);
    if (source == nullptr) return fail(path);
    const zip_int64_t index = zip_file_add(zip, name.c_str(), source, ZIP_FL_ENC_UTF_8);
    if (index < 0) {
      zip_source_free(source);
      return fail(path);
    }
    if (zip_set_file_compression(zip, static_cast<zip_uint64_t>(index), ZIP_CM_STORE, 0) != 0) {
      return fail(path);
    }
  }
  if (ec) {
    zip_discard(zip);
    fs::remove(zip_path, ec);
    return Status::io_error(folder + ": cannot list: " + ec.message());
  }
  if (zip_close(zip) != 0) return fail(zip_path);  // the files are read and written here
  return Status::ok();
#endif
}

}  // namespace imsat::io
