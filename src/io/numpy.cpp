// NumPy's .npy arrays (format versions 1 to 3) and .npz archives of them (libzip): embeddings as
// users save them with numpy.save and numpy.savez[_compressed].
#ifdef IMSAT_NPZ
#include <zip.h>
#endif

#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <regex>

#include "io/datasets.h"
#include "io/io_internal.h"

namespace imsat::io {
namespace {

// One array's header: its element type, order and shape.
struct NpyHeader {
  char kind = 0;  // 'f' float, 'i' signed, 'u' unsigned, 'b' bool
  size_t item_bytes = 0;
  bool fortran = false;
  std::vector<size_t> shape;
  size_t data_offset = 0;
};

std::string describe(const std::string& where, const std::string& what) {
  return where + ": " + what;
}

// The header of the array that `b` holds (the whole .npy file's bytes).
Result<NpyHeader> parse_npy_header(const std::string& where, const std::string& b) {
  if (b.size() < 10 || std::memcmp(b.data(), "\x93NUMPY", 6) != 0) {
    return Status::invalid_argument(describe(where, "not a .npy array (no \\x93NUMPY magic)"));
  }
  const auto major = static_cast<uint8_t>(b[6]);
  size_t header_len = 0, at = 0;
  if (major == 1) {
    header_len = static_cast<uint8_t>(b[8]) | static_cast<size_t>(static_cast<uint8_t>(b[9])) << 8;
    at = 10;
  } else if (major == 2 || major == 3) {
    if (b.size() < 12) return Status::invalid_argument(describe(where, "the header is cut short"));
    for (int k = 0; k < 4; ++k) {
      header_len |= static_cast<size_t>(static_cast<uint8_t>(b[8 + k])) << (8 * k);
    }
    at = 12;
  } else {
    return Status::invalid_argument(
        describe(where, ".npy format version " + std::to_string(major) + " (1 to 3 are read)"));
  }
  if (header_len > b.size() - at) {
    return Status::invalid_argument(describe(where, "the header is cut short"));
  }
  const std::string header = b.substr(at, header_len);
  NpyHeader h;
  h.data_offset = at + header_len;
  std::smatch m;
  static const std::regex descr(R"('descr'\s*:\s*'([<>|=])([fiub])(\d+)')");
  static const std::regex order(R"('fortran_order'\s*:\s*(True|False))");
  static const std::regex shape(R"('shape'\s*:\s*\(([^)]*)\))");
  if (!std::regex_search(header, m, descr)) {
    return Status::invalid_argument(
        describe(where, "an element type imsat does not read (the header says " + header +
                            "); float32, float16, float64, uint8 and int8 are read"));
  }
  const char endian = m[1].str()[0];
  h.kind = m[2].str()[0];
  h.item_bytes = std::stoul(m[3].str());
  if (endian == '>' && h.item_bytes > 1) {
    return Status::invalid_argument(describe(where, "big-endian arrays are not read"));
  }
  const bool known =
      (h.kind == 'f' && (h.item_bytes == 2 || h.item_bytes == 4 || h.item_bytes == 8)) ||
      ((h.kind == 'u' || h.kind == 'i') &&
       (h.item_bytes == 1 || h.item_bytes == 4 || h.item_bytes == 8)) ||
      (h.kind == 'b' && h.item_bytes == 1);
  if (!known) {
    return Status::invalid_argument(
        describe(where, std::string("element type ") + h.kind + std::to_string(h.item_bytes) +
                            " is not read; float32, float16, float64, uint8 and int8 are"));
  }
  if (!std::regex_search(header, m, order)) {
    return Status::invalid_argument(describe(where, "the header has no fortran_order"));
  }
  h.fortran = m[1].str() == "True";
  if (!std::regex_search(header, m, shape)) {
    return Status::invalid_argument(describe(where, "the header has no shape"));
  }
  const std::string dims = m[1].str();
  static const std::regex number(R"(\d+)");
  for (auto it = std::sregex_iterator(dims.begin(), dims.end(), number);
       it != std::sregex_iterator(); ++it) {
    if (it->str().size() > 15) return Status::invalid_argument(describe(where, "a huge shape"));
    h.shape.push_back(std::stoull(it->str()));
  }
  size_t elements = 1;
  for (size_t d : h.shape) {
    if (d != 0 && elements > std::numeric_limits<size_t>::max() / d) {
      return Status::invalid_argument(describe(where, "a huge shape"));
    }
    elements *= d;
  }
  if (elements > (b.size() - h.data_offset) / h.item_bytes ||
      (b.size() - h.data_offset) != elements * h.item_bytes) {
    return Status::invalid_argument(describe(
        where, "the shape needs " + std::to_string(elements * h.item_bytes) +
                   " bytes of data, the file holds " + std::to_string(b.size() - h.data_offset)));
  }
  return h;
}

float half_to_float(uint16_t h) {
  const uint32_t sign = (h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1f;
  const uint32_t mant = h & 0x3ffu;
  if (exp == 0) {  // zero or subnormal
    const float v = std::ldexp(static_cast<float>(mant), -24);
    return sign ? -v : v;
  }
  uint32_t bits = 0;
  if (exp == 31) {
    bits = sign | 0x7f800000u | (mant << 13);  // infinity or NaN
  } else {
    bits = sign | ((exp + 112) << 23) | (mant << 13);
  }
  float f = 0;
  std::memcpy(&f, &bits, sizeof(f));
  return f;
}

// The value of type T stored (unaligned, little-endian) at p.
template <typename T>
double load(const char* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  return static_cast<double>(v);
}

// Element i of the array as a double (the types parse_npy_header accepts).
double element(const NpyHeader& h, const char* data, size_t i) {
  const char* p = data + i * h.item_bytes;
  if (h.kind == 'f') {
    if (h.item_bytes == 2) {
      uint16_t v;
      std::memcpy(&v, p, 2);
      return half_to_float(v);
    }
    return h.item_bytes == 4 ? load<float>(p) : load<double>(p);
  }
  const bool is_signed = h.kind == 'i';
  switch (h.item_bytes) {
    case 1:
      return is_signed ? load<int8_t>(p) : load<uint8_t>(p);
    case 4:
      return is_signed ? load<int32_t>(p) : load<uint32_t>(p);
    default:
      return is_signed ? load<int64_t>(p) : load<uint64_t>(p);
  }
}

// A 2-D array (or 1-D: one value per row) as a Dataset's rows; every value finite.
Result<Dataset> npy_rows(const std::string& where, const std::string& bytes) {
  IMSAT_ASSIGN_OR_RETURN(NpyHeader h, parse_npy_header(where, bytes));
  if (h.shape.size() != 2) {
    return Status::invalid_argument(
        describe(where, "a " + std::to_string(h.shape.size()) +
                            "-D array; items are read from a 2-D array (one row per item)"));
  }
  Dataset d;
  d.source = where;
  d.rows = h.shape[0];
  d.cols = h.shape[1];
  if (d.rows == 0 || d.cols == 0) return Status::invalid_argument(describe(where, "no items"));
  d.item_shape = {d.cols};
  d.uint8_pixels = false;
  d.values.resize(d.rows * d.cols);
  const char* data = bytes.data() + h.data_offset;
  const bool plain_f32 = h.kind == 'f' && h.item_bytes == 4 && !h.fortran;
  if (plain_f32) std::memcpy(d.values.data(), data, d.values.size() * sizeof(float));
  for (size_t r = 0; r < d.rows; ++r) {
    for (size_t c = 0; c < d.cols; ++c) {
      float& out = d.values[r * d.cols + c];
      if (!plain_f32) {
        const double v = element(h, data, h.fortran ? c * d.rows + r : r * d.cols + c);
        if (std::isfinite(v) && std::fabs(v) > std::numeric_limits<float>::max()) {
          return Status::invalid_argument(describe(where, "row " + std::to_string(r) + ", column " +
                                                              std::to_string(c) +
                                                              " is outside the float32 range"));
        }
        out = static_cast<float>(v);
      }
      if (!std::isfinite(out)) {
        return Status::invalid_argument(
            describe(where, "row " + std::to_string(r) + ", column " + std::to_string(c) +
                                " is not a finite number (NaN or infinite)"));
      }
    }
  }
  return d;
}

// A 1-D array of non-negative integer labels.
Result<std::vector<int32_t>> npy_labels(const std::string& where, const std::string& bytes) {
  IMSAT_ASSIGN_OR_RETURN(NpyHeader h, parse_npy_header(where, bytes));
  const bool column = h.shape.size() == 2 && h.shape[1] == 1;
  if (h.shape.size() != 1 && !column) {
    return Status::invalid_argument(describe(where, "labels must be a 1-D array"));
  }
  std::vector<int32_t> labels(h.shape[0]);
  const char* data = bytes.data() + h.data_offset;
  for (size_t i = 0; i < labels.size(); ++i) {
    const double v = element(h, data, i);
    if (!(v >= 0) || v != std::floor(v) || v > std::numeric_limits<int32_t>::max()) {
      return Status::invalid_argument(
          describe(where, "label " + std::to_string(i) + " is not a non-negative 32-bit integer"));
    }
    labels[i] = static_cast<int32_t>(v);
  }
  return labels;
}

bool is_label_name(const std::string& name) {
  return name == "y" || name == "labels" || name == "label" || name == "targets";
}

bool is_data_name(const std::string& name) {
  return name == "x" || name == "X" || name == "data" || name == "embeddings" ||
         name == "features" || name == "vectors";
}

}  // namespace

Result<Dataset> read_npy(const std::string& path) {
  IMSAT_ASSIGN_OR_RETURN(const std::string bytes, read_all(path));
  IMSAT_ASSIGN_OR_RETURN(Dataset d, npy_rows(path, bytes));
  d.source = path;
  return d;
}

Result<std::vector<int32_t>> read_npy_labels(const std::string& path) {
  IMSAT_ASSIGN_OR_RETURN(const std::string bytes, read_all(path));
  return npy_labels(path, bytes);
}

#ifdef IMSAT_NPZ

Result<Dataset> read_npz(const std::string& path) {
  IMSAT_RETURN_IF_ERROR(check_readable(path));
  int error = 0;
  // zip_discard, not zip_close: nothing is written, and zip_close leaves a damaged archive
  // allocated when it fails.
  std::unique_ptr<zip_t, void (*)(zip_t*)> archive(zip_open(path.c_str(), ZIP_RDONLY, &error),
                                                   zip_discard);
  if (archive == nullptr) {
    zip_error_t e;
    zip_error_init_with_code(&e, error);
    const std::string why = zip_error_strerror(&e);
    zip_error_fini(&e);
    return Status::invalid_argument(path + ": not a .npz archive (" + why + ")");
  }
  const zip_int64_t n = zip_get_num_entries(archive.get(), 0);
  std::vector<std::string> names;
  for (zip_int64_t i = 0; i < n; ++i) {
    const char* name = zip_get_name(archive.get(), static_cast<zip_uint64_t>(i), 0);
    if (name != nullptr) names.emplace_back(name);
  }
  auto read_entry = [&](const std::string& name) -> Result<std::string> {
    zip_stat_t st;
    if (zip_stat(archive.get(), name.c_str(), 0, &st) != 0 || (st.valid & ZIP_STAT_SIZE) == 0) {
      return Status::invalid_argument(path + ": cannot read " + name);
    }
    if (st.size > (uint64_t{1} << 36))
      return Status::invalid_argument(path + ": " + name + " is over 64 GiB");
    std::unique_ptr<zip_file_t, int (*)(zip_file_t*)> f(zip_fopen(archive.get(), name.c_str(), 0),
                                                        zip_fclose);
    if (f == nullptr) return Status::invalid_argument(path + ": cannot open " + name);
    // Read as the data comes, not by the declared size: a damaged header may declare any size.
    std::string bytes;
    char buf[1 << 16];
    for (;;) {
      const zip_int64_t got = zip_fread(f.get(), buf, sizeof(buf));
      if (got < 0) return Status::corruption(path + ": " + name + " is damaged");
      if (got == 0) break;
      bytes.append(buf, static_cast<size_t>(got));
      if (bytes.size() > st.size) break;
    }
    if (bytes.size() != st.size) {
      return Status::corruption(path + ": " + name + " is damaged or cut short (" +
                                std::to_string(bytes.size()) + " bytes, its header says " +
                                std::to_string(st.size) + ")");
    }
    return bytes;
  };
  std::string data_name, label_name;
  std::vector<std::string> others;
  for (const std::string& name : names) {
    const std::string stem = name.size() > 4 && name.substr(name.size() - 4) == ".npy"
                                 ? name.substr(0, name.size() - 4)
                                 : name;
    if (is_label_name(stem)) {
      label_name = name;
    } else if (is_data_name(stem) && data_name.empty()) {
      data_name = name;
    } else {
      others.push_back(name);
    }
  }
  if (data_name.empty() && others.size() == 1) data_name = others.front();
  if (data_name.empty()) {
    std::string list;
    for (const std::string& name : names) list += (list.empty() ? "" : ", ") + name;
    return Status::invalid_argument(
        path + ": cannot tell which array holds the items (it holds " +
        (list.empty() ? std::string("none") : list) +
        "); name it x, data, embeddings, features or vectors, or save only one other array");
  }
  IMSAT_ASSIGN_OR_RETURN(const std::string data_bytes, read_entry(data_name));
  IMSAT_ASSIGN_OR_RETURN(Dataset d, npy_rows(path + ":" + data_name, data_bytes));
  d.source = path;
  if (!label_name.empty()) {
    IMSAT_ASSIGN_OR_RETURN(const std::string label_bytes, read_entry(label_name));
    IMSAT_ASSIGN_OR_RETURN(d.labels, npy_labels(path + ":" + label_name, label_bytes));
    if (d.labels.size() != d.rows) {
      return Status::invalid_argument(path + ": " + label_name + " holds " +
                                      std::to_string(d.labels.size()) + " labels, " + data_name +
                                      " " + std::to_string(d.rows) + " items");
    }
  }
  return d;
}

#else  // IMSAT_NPZ

Result<Dataset> read_npz(const std::string& path) {
  return Status::invalid_argument(path +
                                  ": this imsat was built without libzip, which .npz "
                                  "archives need; save the array with numpy.save (.npy)");
}

#endif  // IMSAT_NPZ

}  // namespace imsat::io
