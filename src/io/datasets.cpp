// Dataset readers: IDX (plain or gzip), fvecs/bvecs/ivecs and CSV. Errors name the file, the
// byte offset (or line) and what was expected.
#include "io/datasets.h"

#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <charconv>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>

#include "common/huge_pages.h"
#include "io/io_internal.h"

namespace imsat::io {
namespace {

namespace fs = std::filesystem;

std::string at(const std::string& path, uint64_t offset) {
  return path + " at byte " + std::to_string(offset);
}

uint32_t be32(const std::string& b, size_t off) {
  const auto* p = reinterpret_cast<const unsigned char*>(b.data() + off);
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}

struct IdxHeader {
  uint8_t type = 0;
  std::vector<size_t> dims;
  size_t data_offset = 0;
  size_t count() const {
    size_t c = 1;
    for (size_t d : dims) c *= d;
    return c;
  }
};

Result<IdxHeader> parse_idx_header(const std::string& path, const std::string& b) {
  if (b.size() < 4) {
    return Status::corruption(at(path, 0) + ": expected a 4-byte IDX magic number, file has " +
                              std::to_string(b.size()) + " bytes");
  }
  IdxHeader h;
  if (b[0] != 0 || b[1] != 0) {
    return Status::corruption(at(path, 0) +
                              ": not an IDX file (magic must start with two zero bytes)");
  }
  h.type = static_cast<uint8_t>(b[2]);
  const size_t ndims = static_cast<uint8_t>(b[3]);
  if (ndims == 0 || ndims > 8) {
    return Status::corruption(at(path, 3) + ": expected 1 to 8 dimensions, found " +
                              std::to_string(ndims));
  }
  if (b.size() < 4 + 4 * ndims) {
    return Status::corruption(at(path, b.size()) + ": truncated header, expected " +
                              std::to_string(ndims) + " dimension sizes");
  }
  for (size_t i = 0; i < ndims; ++i) h.dims.push_back(be32(b, 4 + 4 * i));
  h.data_offset = 4 + 4 * ndims;
  return h;
}

size_t idx_type_size(uint8_t type) {
  switch (type) {
    case 0x08:
    case 0x09:
      return 1;
    case 0x0B:
      return 2;
    case 0x0C:
    case 0x0D:
      return 4;
    case 0x0E:
      return 8;
    default:
      return 0;
  }
}

Status check_finite(const Dataset& d) {
  for (size_t i = 0; i < d.values.size(); ++i) {
    if (!std::isfinite(d.values[i])) {
      return Status::invalid_argument(d.source + ": value at row " + std::to_string(i / d.cols) +
                                      ", column " + std::to_string(i % d.cols) +
                                      " is not a finite number");
    }
  }
  return Status::ok();
}

template <typename T>
Result<Dataset> read_vecs(const std::string& path, const char* kind) {
  IMSAT_ASSIGN_OR_RETURN(std::string bytes, read_all(path));
  const std::string& b = bytes;
  Dataset d;
  d.source = path;
  size_t off = 0;
  while (off < b.size()) {
    if (b.size() - off < 4) {
      return Status::corruption(at(path, off) + ": truncated " + kind +
                                " record, expected a 4-byte dimension");
    }
    int32_t dim;
    std::memcpy(&dim, b.data() + off, 4);
    if (dim <= 0 || dim > (1 << 24)) {
      return Status::corruption(at(path, off) + ": expected a positive " + kind +
                                " dimension, found " + std::to_string(dim));
    }
    if (d.rows == 0) {
      d.cols = static_cast<size_t>(dim);
    } else if (static_cast<size_t>(dim) != d.cols) {
      return Status::corruption(at(path, off) + ": vector " + std::to_string(d.rows) +
                                " has dimension " + std::to_string(dim) + ", expected " +
                                std::to_string(d.cols) + " like the first");
    }
    off += 4;
    const size_t need = d.cols * sizeof(T);
    if (b.size() - off < need) {
      return Status::corruption(at(path, off) + ": truncated " + kind + " vector " +
                                std::to_string(d.rows) + ", expected " + std::to_string(need) +
                                " bytes, found " + std::to_string(b.size() - off));
    }
    for (size_t j = 0; j < d.cols; ++j) {
      T v;
      std::memcpy(&v, b.data() + off + j * sizeof(T), sizeof(T));
      d.values.push_back(static_cast<float>(v));
    }
    off += need;
    ++d.rows;
  }
  if (d.rows == 0) return Status::invalid_argument(path + ": holds no vectors");
  d.item_shape = {d.cols};
  IMSAT_RETURN_IF_ERROR(check_finite(d));
  return d;
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::string trim(std::string s) {
  size_t a = s.find_first_not_of(" \t\r\"");
  size_t b = s.find_last_not_of(" \t\r\"");
  return a == std::string::npos ? std::string() : s.substr(a, b - a + 1);
}

std::vector<std::string> split_csv(const std::string& line) {
  std::vector<std::string> out;
  std::string field;
  std::istringstream in(line);
  while (std::getline(in, field, ',')) out.push_back(trim(field));
  if (!line.empty() && line.back() == ',') out.emplace_back();
  return out;
}

bool parse_number(const std::string& s, double* out) {
  if (s.empty()) return false;
  const char* begin = s.data();
  if (*begin == '+') ++begin;
  auto [ptr, ec] = std::from_chars(begin, s.data() + s.size(), *out);
  return ec == std::errc() && ptr == s.data() + s.size();
}

// The first existing name among `stem` and `stem`.gz inside `dir`, or "".
std::string find_in(const fs::path& dir, const std::string& stem) {
  for (const std::string& name : {stem, stem + ".gz"}) {
    if (fs::exists(dir / name)) return (dir / name).string();
  }
  return "";
}

}  // namespace

Status check_readable(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    const int e = errno;
    if (e == ENOENT) return Status::not_found(path + ": no such file");
    return Status::io_error(path + ": cannot read: " + std::strerror(e));
  }
  if (S_ISDIR(st.st_mode)) return Status::invalid_argument(path + ": is a directory, not a file");
  if (::access(path.c_str(), R_OK) != 0) {
    return Status::io_error(path + ": cannot read: " + std::strerror(errno));
  }
  return Status::ok();
}

// Reads a whole file, transparently gunzipping it (zlib reads plain files as they are).
Result<std::string> read_all(const std::string& path) {
  std::error_code ec;
  IMSAT_RETURN_IF_ERROR(check_readable(path));
  gzFile f = gzopen(path.c_str(), "rb");
  if (f == nullptr) return Status::io_error(path + ": cannot open: " + std::strerror(errno));
  gzbuffer(f, 1 << 20);
  std::string out;
  // Reserve the expected size so the string does not regrow: the file's size, or for gzip its
  // trailer's ISIZE (the uncompressed size mod 2^32; only a hint, the loop below reads to the end).
  {
    uint64_t hint = fs::file_size(path, ec);
    std::ifstream raw(path, std::ios::binary);
    unsigned char magic[2] = {0, 0};
    raw.read(reinterpret_cast<char*>(magic), 2);
    if (!ec && hint >= 18 && magic[0] == 0x1f && magic[1] == 0x8b) {
      unsigned char t[4] = {0, 0, 0, 0};
      raw.seekg(-4, std::ios::end);
      raw.read(reinterpret_cast<char*>(t), 4);
      hint = uint64_t{t[0]} | uint64_t{t[1]} << 8 | uint64_t{t[2]} << 16 | uint64_t{t[3]} << 24;
    }
    if (!ec && hint < (uint64_t{1} << 32)) {
      out.reserve(static_cast<size_t>(hint));
      advise_huge_pages(out.data(), out.capacity());
    }
  }
  char buf[1 << 16];
  while (true) {
    int n = gzread(f, buf, sizeof(buf));
    if (n < 0) {
      int errnum = 0;
      std::string msg = gzerror(f, &errnum);
      gzclose(f);
      return Status::corruption(path + ": cannot decompress after " + std::to_string(out.size()) +
                                " bytes: " + msg);
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  int rc = gzclose(f);
  if (rc == Z_BUF_ERROR) {
    return Status::corruption(path + ": gzip stream is truncated after " +
                              std::to_string(out.size()) + " decompressed bytes");
  }
  if (rc != Z_OK) return Status::corruption(path + ": gzip stream is damaged");
  return out;
}

Result<std::vector<int32_t>> read_idx_labels(const std::string& path) {
  IMSAT_ASSIGN_OR_RETURN(std::string bytes, read_all(path));
  IMSAT_ASSIGN_OR_RETURN(IdxHeader h, parse_idx_header(path, bytes));
  if (h.type != 0x08 || h.dims.size() != 1) {
    return Status::corruption(at(path, 2) +
                              ": expected an IDX label file (unsigned bytes, one dimension)");
  }
  const size_t n = h.dims[0];
  if (bytes.size() != h.data_offset + n) {
    return Status::corruption(
        at(path, bytes.size()) + ": expected " + std::to_string(h.data_offset + n) + " bytes for " +
        std::to_string(n) + " labels, file has " + std::to_string(bytes.size()));
  }
  std::vector<int32_t> labels(n);
  for (size_t i = 0; i < n; ++i) {
    labels[i] = static_cast<uint8_t>(bytes[h.data_offset + i]);
  }
  return labels;
}

Result<Dataset> read_idx(const std::string& images_path, const std::string& labels_path) {
  IMSAT_ASSIGN_OR_RETURN(std::string bytes, read_all(images_path));
  const std::string& b = bytes;
  IMSAT_ASSIGN_OR_RETURN(IdxHeader h, parse_idx_header(images_path, b));
  const size_t elem = idx_type_size(h.type);
  if (elem == 0) {
    return Status::corruption(at(images_path, 2) + ": unknown IDX element type 0x" +
                              std::to_string(h.type));
  }
  if (h.dims.size() < 2) {
    return Status::invalid_argument(images_path +
                                    ": has one dimension; expected items (an image file), not "
                                    "labels");
  }
  Dataset d;
  d.source = images_path;
  d.rows = h.dims[0];
  d.cols = h.count() / std::max<size_t>(d.rows, 1);
  d.item_shape.assign(h.dims.begin() + 1, h.dims.end());
  const size_t expected = h.data_offset + h.count() * elem;
  if (b.size() != expected) {
    return Status::corruption(at(images_path, b.size()) + ": expected " + std::to_string(expected) +
                              " bytes for " + std::to_string(d.rows) + " items of " +
                              std::to_string(d.cols) + " values, file has " +
                              std::to_string(b.size()));
  }
  if (d.rows == 0) return Status::invalid_argument(images_path + ": holds no items");
  reserve_huge(d.values, h.count());
  d.values.resize(h.count());
  const char* p = b.data() + h.data_offset;
  auto be = [&](size_t i, size_t width) {
    uint64_t v = 0;
    for (size_t k = 0; k < width; ++k) v = (v << 8) | static_cast<uint8_t>(p[i * width + k]);
    return v;
  };
  if (h.type == 0x08) {  // the common case (images), in a loop the compiler vectorises
    const auto* u = reinterpret_cast<const uint8_t*>(p);
    for (size_t i = 0; i < d.values.size(); ++i) d.values[i] = u[i];
  }
  for (size_t i = 0; h.type != 0x08 && i < d.values.size(); ++i) {
    switch (h.type) {
      case 0x08:
        d.values[i] = static_cast<uint8_t>(p[i]);
        break;
      case 0x09:
        d.values[i] = static_cast<int8_t>(p[i]);
        break;
      case 0x0B:
        d.values[i] = static_cast<int16_t>(be(i, 2));
        break;
      case 0x0C:
        d.values[i] = static_cast<float>(static_cast<int32_t>(be(i, 4)));
        break;
      case 0x0D: {
        uint32_t u = static_cast<uint32_t>(be(i, 4));
        float f;
        std::memcpy(&f, &u, 4);
        d.values[i] = f;
        break;
      }
      default: {
        uint64_t u = be(i, 8);
        double f;
        std::memcpy(&f, &u, 8);
        // Beyond the float range the cast is undefined: store infinity, which check_finite
        // below reports with the file and offset.
        d.values[i] = std::fabs(f) <= static_cast<double>(std::numeric_limits<float>::max())
                          ? static_cast<float>(f)
                          : std::numeric_limits<float>::infinity();
      }
    }
  }
  d.uint8_pixels = h.type == 0x08;
  IMSAT_RETURN_IF_ERROR(check_finite(d));
  if (!labels_path.empty()) {
    IMSAT_ASSIGN_OR_RETURN(std::vector<int32_t> labels, read_idx_labels(labels_path));
    if (labels.size() != d.rows) {
      return Status::invalid_argument(labels_path + ": holds " + std::to_string(labels.size()) +
                                      " labels but " + images_path + " holds " +
                                      std::to_string(d.rows) + " items");
    }
    d.labels = std::move(labels);
  }
  return d;
}

Result<Dataset> read_fvecs(const std::string& path) { return read_vecs<float>(path, "fvecs"); }
Result<Dataset> read_bvecs(const std::string& path) { return read_vecs<uint8_t>(path, "bvecs"); }
Result<Dataset> read_ivecs(const std::string& path) { return read_vecs<int32_t>(path, "ivecs"); }

Result<Dataset> read_csv(const std::string& path) {
  IMSAT_ASSIGN_OR_RETURN(std::string bytes, read_all(path));
  std::istringstream in(bytes);
  Dataset d;
  d.source = path;
  std::string line;
  size_t line_no = 0;
  long label_col = -1;
  size_t ncols = 0;
  bool first = true;
  while (std::getline(in, line)) {
    ++line_no;
    if (trim(line).empty()) continue;
    std::vector<std::string> fields = split_csv(line);
    std::vector<double> nums(fields.size());
    bool all_numeric = true;
    for (size_t j = 0; j < fields.size(); ++j) all_numeric &= parse_number(fields[j], &nums[j]);
    if (first) {
      first = false;
      ncols = fields.size();
      if (!all_numeric) {  // a header row
        for (size_t j = 0; j < fields.size(); ++j) {
          if (fields[j] == "label") label_col = static_cast<long>(j);
        }
        continue;
      }
    }
    if (fields.size() != ncols) {
      return Status::invalid_argument(path + ":" + std::to_string(line_no) + ": expected " +
                                      std::to_string(ncols) + " columns, found " +
                                      std::to_string(fields.size()));
    }
    for (size_t j = 0; j < fields.size(); ++j) {
      if (!parse_number(fields[j], &nums[j])) {
        return Status::invalid_argument(path + ":" + std::to_string(line_no) + ": column " +
                                        std::to_string(j + 1) + " is not a number: '" + fields[j] +
                                        "'");
      }
      if (!std::isfinite(nums[j])) {
        return Status::invalid_argument(path + ":" + std::to_string(line_no) + ": column " +
                                        std::to_string(j + 1) + " is not a finite number: '" +
                                        fields[j] + "'");
      }
      if (static_cast<long>(j) == label_col) {
        if (nums[j] != std::floor(nums[j]) || nums[j] < 0 ||
            nums[j] > static_cast<double>(std::numeric_limits<int32_t>::max())) {
          return Status::invalid_argument(path + ":" + std::to_string(line_no) +
                                          ": label is not a non-negative 32-bit integer: '" +
                                          fields[j] + "'");
        }
        d.labels.push_back(static_cast<int32_t>(nums[j]));
      } else {
        if (std::fabs(nums[j]) > static_cast<double>(std::numeric_limits<float>::max())) {
          return Status::invalid_argument(path + ":" + std::to_string(line_no) + ": column " +
                                          std::to_string(j + 1) + " is outside the float range: '" +
                                          fields[j] + "'");
        }
        d.values.push_back(static_cast<float>(nums[j]));
      }
    }
    ++d.rows;
  }
  d.cols = ncols - (label_col >= 0 ? 1 : 0);
  if (d.rows == 0) return Status::invalid_argument(path + ": holds no data rows");
  if (d.cols == 0) return Status::invalid_argument(path + ": holds no feature columns");
  d.item_shape = {d.cols};
  return d;
}

std::string source_name(const std::string& path) {
  fs::path p(path);
  while (p.filename().empty() && p.has_relative_path()) p = p.parent_path();  // a trailing '/'
  const std::string name = p.filename().string();
  return name.empty() ? path : name;
}

Result<Dataset> load_dataset(const std::string& path, const std::string& labels_path,
                             const ImageImport& images, ImportReport* report) {
  if (!images.manifest.empty()) return read_image_manifest(images, report);
  if (is_image_folder(path)) {
    if (!labels_path.empty()) {
      return Status::invalid_argument(path +
                                      ": a folder of images takes its labels from its "
                                      "subfolders (or a --manifest), not --labels");
    }
    return read_image_folder(path, images, report);
  }
  return load_dataset(path, labels_path);
}

namespace {

// Whether the file starts like an IDX file (two zero bytes, a type code, a dimension count), plain
// or gzip (then the IDX reader finds out).
bool has_idx_magic(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  unsigned char b[4] = {1, 1, 1, 1};
  in.read(reinterpret_cast<char*>(b), 4);
  if (b[0] == 0x1f && b[1] == 0x8b) return true;
  return b[0] == 0 && b[1] == 0 && b[2] >= 0x08 && b[2] <= 0x0e;
}

}  // namespace

Result<Dataset> load_dataset(const std::string& path, const std::string& labels_path) {
  std::error_code ec;
  if (is_image_folder(path)) return read_image_folder(path, ImageImport{}, nullptr);
  if (fs::is_directory(path, ec)) {
    const fs::path dir(path);
    Dataset all;
    for (const char* split : {"train", "t10k"}) {
      std::string images = find_in(dir, std::string(split) + "-images-idx3-ubyte");
      if (images.empty()) continue;
      std::string labels = find_in(dir, std::string(split) + "-labels-idx1-ubyte");
      IMSAT_ASSIGN_OR_RETURN(Dataset part, read_idx(images, labels));
      if (all.rows == 0) {
        all = std::move(part);
        all.source = path;
      } else {
        if (part.cols != all.cols) {
          return Status::invalid_argument(images + ": items have " + std::to_string(part.cols) +
                                          " values, the train file's have " +
                                          std::to_string(all.cols));
        }
        if (part.labels.empty() != all.labels.empty()) {
          return Status::invalid_argument(path + ": labels exist for only one of train and t10k");
        }
        std::vector<float> joined;
        reserve_huge(joined, all.values.size() + part.values.size());
        joined.insert(joined.end(), all.values.begin(), all.values.end());
        all.values = std::move(joined);
        all.values.insert(all.values.end(), part.values.begin(), part.values.end());
        all.labels.insert(all.labels.end(), part.labels.begin(), part.labels.end());
        all.rows += part.rows;
      }
      if (std::string(split) == "train") all.train_rows = all.rows;
    }
    if (all.rows == 0) {
      return Status::not_found(path +
                               ": folder holds no train-images-idx3-ubyte[.gz] or "
                               "t10k-images-idx3-ubyte[.gz]");
    }
    return all;
  }
  Result<Dataset> d = Status::internal("unreachable");
  if (ends_with(path, ".fvecs")) {
    d = read_fvecs(path);
  } else if (ends_with(path, ".bvecs")) {
    d = read_bvecs(path);
  } else if (ends_with(path, ".ivecs")) {
    d = read_ivecs(path);
  } else if (ends_with(path, ".csv") || ends_with(path, ".csv.gz")) {
    d = read_csv(path);
  } else if (ends_with(path, ".npy") || ends_with(path, ".npy.gz")) {
    d = read_npy(path);
  } else if (ends_with(path, ".npz")) {
    d = read_npz(path);
    if (d.is_ok() && !d->labels.empty() && !labels_path.empty()) {
      return Status::invalid_argument(path + " holds its own labels; --labels is not needed");
    }
  } else {
    IMSAT_RETURN_IF_ERROR(check_readable(path));
    if (!has_idx_magic(path)) {
      return Status::invalid_argument(
          path +
          ": not a format imsat reads. Datasets are IDX files (MNIST's *-ubyte[.gz], "
          "*.idx) or a folder of them, .npy and .npz arrays, .fvecs/.bvecs/.ivecs, .csv, "
          "or a folder of image files (or --manifest)");
    }
    d = read_idx(path, labels_path);
    return d;
  }
  if (!d.is_ok() || labels_path.empty()) return d;
  IMSAT_ASSIGN_OR_RETURN(std::vector<int32_t> labels, ends_with(labels_path, ".npy")
                                                          ? read_npy_labels(labels_path)
                                                          : read_idx_labels(labels_path));
  if (labels.size() != d->rows) {
    return Status::invalid_argument(labels_path + ": holds " + std::to_string(labels.size()) +
                                    " labels but " + path + " holds " + std::to_string(d->rows) +
                                    " items");
  }
  d->labels = std::move(labels);
  return d;
}

}  // namespace imsat::io
