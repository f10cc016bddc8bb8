// Image folders and manifests as datasets: the scan, batched decoding on every core, the reader
// that streams batches for bulk indexing, and whole datasets for training.
#include "io/image_import.h"

#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

#include "common/checksum.h"
#include "io/datasets.h"

namespace imsat::io {

using json = nlohmann::json;
namespace fs = std::filesystem;

size_t ImportReport::skipped_total() const {
  size_t n = 0;
  for (const auto& [reason, count] : skipped) n += count;
  return n;
}

std::string ImportReport::summary() const {
  std::string s = "read " + std::to_string(read) + ", skipped " + std::to_string(skipped_total());
  const char* sep = " (";
  for (const auto& [reason, count] : skipped) {
    s += sep + std::string(skip_reason_name(reason)) + ": " + std::to_string(count);
    sep = ", ";
  }
  if (!skipped.empty()) s += ")";
  return s;
}

void ImportReport::merge(const ImportReport& later) {
  read += later.read;
  for (const auto& [reason, count] : later.skipped) skipped[reason] += count;
  skip_lines.insert(skip_lines.end(), later.skip_lines.begin(), later.skip_lines.end());
}

bool is_image_file_name(const std::string& path) {
  std::string ext = fs::path(path).extension().string();
  for (char& ch : ext) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  static const std::set<std::string> known = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tga",
                                              ".pnm", ".pgm", ".ppm",  ".pbm", ".jpe", ".jfif"};
  return known.count(ext) > 0;
}

bool is_image_folder(const std::string& path) {
  std::error_code ec;
  if (!fs::is_directory(path, ec)) return false;
  for (const char* idx : {"train-images-idx3-ubyte", "train-images-idx3-ubyte.gz",
                          "t10k-images-idx3-ubyte", "t10k-images-idx3-ubyte.gz"}) {
    if (fs::exists(fs::path(path) / idx, ec)) return false;
  }
  return true;
}

namespace {

// The length of the valid UTF-8 character at raw[i], or 0 when the bytes there are not one.
size_t utf8_length_at(const std::string& raw, size_t i) {
  const auto c = static_cast<unsigned char>(raw[i]);
  const size_t len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
  if (len == 0 || i + len > raw.size() || (len == 2 && c < 0xC2)) return 0;
  for (size_t k = 1; k < len; ++k) {
    if ((static_cast<unsigned char>(raw[i + k]) & 0xC0) != 0x80) return 0;
  }
  return len;
}

bool is_utf8(const std::string& raw) {
  for (size_t i = 0; i < raw.size();) {
    const size_t len = utf8_length_at(raw, i);
    if (len == 0) return false;
    i += len;
  }
  return true;
}

// A path's bytes as a key or label that JSON can carry: valid UTF-8 kept, every other byte
// written as %XX (and '%' itself as %25, so the mapping is one to one).
std::string printable(const std::string& raw) {
  std::string out;
  size_t i = 0;
  while (i < raw.size()) {
    const size_t len = utf8_length_at(raw, i);
    if (len == 0 || raw[i] == '%') {
      char buf[4];
      std::snprintf(buf, sizeof(buf), "%%%02X", static_cast<unsigned char>(raw[i]));
      out += buf;
      ++i;
    } else {
      out.append(raw, i, len);
      i += len;
    }
  }
  return out;
}

Result<std::string> read_file(const std::string& path, SkipReason* reason) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    *reason = SkipReason::kUnreadable;
    return Status::io_error(std::string("cannot open: ") + std::strerror(errno));
  }
  std::error_code ec;
  const auto size = fs::file_size(path, ec);
  if (!ec && size > (uintmax_t{1} << 30)) {
    *reason = SkipReason::kTooLarge;
    return Status::invalid_argument("the file is over 1 GiB");
  }
  std::string bytes(ec ? 0 : static_cast<size_t>(size), '\0');
  in.read(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  bytes.resize(static_cast<size_t>(in.gcount()));
  if (in.bad()) {
    *reason = SkipReason::kUnreadable;
    return Status::io_error(std::string("read failed: ") + std::strerror(errno));
  }
  return bytes;
}

// One CSV record (RFC 4180 quoting) from `line`.
Result<std::vector<std::string>> csv_fields(const std::string& line) {
  std::vector<std::string> out(1);
  bool quoted = false;
  for (size_t i = 0; i < line.size(); ++i) {
    const char c = line[i];
    if (quoted) {
      if (c == '"' && i + 1 < line.size() && line[i + 1] == '"') {
        out.back() += '"';
        ++i;
      } else if (c == '"') {
        quoted = false;
      } else {
        out.back() += c;
      }
    } else if (c == '"' && out.back().empty()) {
      quoted = true;
    } else if (c == ',') {
      out.emplace_back();
    } else if (c != '\r') {
      out.back() += c;
    }
  }
  if (quoted) return Status::invalid_argument("an unterminated quoted field");
  return out;
}

// Adds a file's size and modification time (or that it cannot be read) to a scan's fingerprint.
uint64_t fingerprint_file(const struct stat* st, uint64_t h) {
  if (st == nullptr) return fnv1a64("?", h);
  const uint64_t fields[3] = {static_cast<uint64_t>(st->st_size),
                              static_cast<uint64_t>(st->st_mtim.tv_sec),
                              static_cast<uint64_t>(st->st_mtim.tv_nsec)};
  return fnv1a64_bytes(fields, sizeof(fields), h);
}

}  // namespace

std::string ImageScan::file_path(size_t i) const {
  const std::string& p = files[i].path;
  if (!p.empty() && p[0] == '/') return p;
  return base.empty() ? p : base + "/" + p;
}

std::string ImageScan::shown_path(size_t i) const { return printable(files[i].path); }

std::string ImageScan::key(size_t i) const {
  return files[i].key.empty() ? shown_path(i) : files[i].key;
}

void ImageScan::metadata_into(size_t i, json* meta) const {
  const ImageFile& f = files[i];
  if (!f.columns.empty()) meta->update(json::parse(f.columns));
  (*meta)["path"] = shown_path(i);
  if (labelled && !label_names.empty()) (*meta)["label_name"] = label_names[f.label];
}

namespace {

// Labels: the first-level subfolder's name, numbered in sorted order (none when a file lies at
// the top).
void label_by_subfolder(ImageScan* scan) {
  std::set<std::string> names;
  scan->labelled = true;
  for (const ImageFile& f : scan->files) {
    const size_t slash = f.path.find('/');
    if (slash == std::string::npos) {
      scan->labelled = false;
      break;
    }
    names.insert(printable(f.path.substr(0, slash)));
  }
  if (scan->labelled) {
    scan->label_names.assign(names.begin(), names.end());
    for (ImageFile& f : scan->files) {
      const std::string name = printable(f.path.substr(0, f.path.find('/')));
      f.label = static_cast<int32_t>(
          std::lower_bound(scan->label_names.begin(), scan->label_names.end(), name) -
          scan->label_names.begin());
    }
  }
}

// One stat per file: the fingerprint and, unless duplicates are kept, which paths reach the
// same file. A file reached by several paths is read once: by its own path when the folder
// holds it (not through a symbolic link), otherwise by the first link in path order.
void identify_files(const std::string& folder, const ImageImport& settings, ImageScan* scan) {
  std::error_code ec;
  const size_t n = scan->files.size();
  std::vector<std::pair<dev_t, ino_t>> identity(n, {0, 0});
  std::vector<char> direct(n, 1);
  uint64_t h = fnv1a64(folder);
  for (size_t i = 0; i < n; ++i) {
    const std::string path = scan->file_path(i);
    struct stat st {};
    const bool ok = ::stat(path.c_str(), &st) == 0;
    h = fingerprint_file(ok ? &st : nullptr, fnv1a64_bytes(path.data(), path.size() + 1, h));
    if (ok) identity[i] = {st.st_dev, st.st_ino};
    if (!settings.keep_duplicates && ok) {
      // A path through no symbolic link: neither the file nor a folder on the way is one.
      const fs::path abs = fs::absolute(path, ec).lexically_normal();
      direct[i] = fs::canonical(abs, ec) == abs;
    }
  }
  scan->fingerprint = h;
  if (!settings.keep_duplicates) {
    std::set<std::pair<dev_t, ino_t>> seen;
    for (int pass = 0; pass < 2; ++pass) {
      for (size_t i = 0; i < n; ++i) {
        if (direct[i] != (pass == 0) || identity[i].second == 0) continue;
        scan->files[i].duplicate = !seen.insert(identity[i]).second;
      }
    }
  }
}

}  // namespace

Result<ImageScan> scan_image_folder(const std::string& folder, const ImageImport& settings) {
  std::error_code ec;
  if (!fs::is_directory(folder, ec)) return Status::not_found(folder + ": no such folder");
  ImageScan scan;
  scan.origin = folder;
  scan.base = folder;
  const auto options = fs::directory_options::follow_directory_symlink |
                       fs::directory_options::skip_permission_denied;
  std::set<std::pair<dev_t, ino_t>> seen_dirs;
  fs::recursive_directory_iterator it(folder, options, ec), end;
  if (ec) return Status::io_error(folder + ": cannot list: " + ec.message());
  for (; it != end; it.increment(ec)) {
    if (ec) return Status::io_error(folder + ": cannot list: " + ec.message());
    const fs::path& p = it->path();
    const std::string name = p.filename().string();
    if (!name.empty() && name[0] == '.') {  // hidden files and folders
      if (it->is_directory(ec)) it.disable_recursion_pending();
      continue;
    }
    if (it->is_directory(ec)) {
      // A symbolic link back up the tree would recurse forever: enter each folder once.
      struct stat st {};
      if (::stat(p.c_str(), &st) != 0 || !seen_dirs.insert({st.st_dev, st.st_ino}).second) {
        it.disable_recursion_pending();
      }
      continue;
    }
    if (!it->is_regular_file(ec)) continue;
    // Lexically: fs::relative would resolve a symbolic link to its target's name.
    ImageFile f;
    f.path = p.lexically_relative(folder).string();
    scan.files.push_back(std::move(f));
  }
  if (scan.files.empty()) return Status::invalid_argument(folder + ": holds no files");
  std::sort(scan.files.begin(), scan.files.end(),
            [](const ImageFile& a, const ImageFile& b) { return a.path < b.path; });

  label_by_subfolder(&scan);
  identify_files(folder, settings, &scan);
  return scan;
}

namespace {

// One manifest line as a JSON object: a JSON line as it is, a CSV line by the header's names.
Result<json> manifest_row(const std::string& line, const std::vector<std::string>& header,
                          bool json_lines, const std::string& where) {
  json row = json::object();
  if (json_lines) {
    try {
      row = json::parse(line);
    } catch (const json::exception& e) {
      return Status::invalid_argument(where + ": not a JSON object: " + e.what());
    }
    if (!row.is_object()) return Status::invalid_argument(where + ": not a JSON object");
    return row;
  }
  Result<std::vector<std::string>> fields = csv_fields(line);
  if (!fields.is_ok()) return Status::invalid_argument(where + ": " + fields.status().message());
  if (fields->size() != header.size()) {
    return Status::invalid_argument(where + ": " + std::to_string(fields->size()) +
                                    " fields, the header has " + std::to_string(header.size()));
  }
  for (size_t k = 0; k < header.size(); ++k) {
    // JSON carries text only: a path is escaped (printable), every other value must be text.
    if (header[k] != "path" && (!is_utf8(header[k]) || !is_utf8((*fields)[k]))) {
      return Status::invalid_argument(where + ": column " + std::to_string(k + 1) +
                                      " is not valid UTF-8 text");
    }
    row[header[k]] = (*fields)[k];
  }
  return row;
}

// A manifest row's file: path, key, label (a number, or a name into *label_name) and the other
// columns as metadata.
Result<ImageFile> manifest_file(const json& row, const std::string& where,
                                std::string* label_name) {
  if (!row.contains("path") || !row["path"].is_string() || row["path"].get<std::string>().empty()) {
    return Status::invalid_argument(where + ": no 'path'");
  }
  ImageFile f;
  f.path = row["path"].get<std::string>();
  if (row.contains("key")) {
    if (!row["key"].is_string() || row["key"].get<std::string>().empty()) {
      return Status::invalid_argument(where + ": 'key' must be a non-empty string");
    }
    f.key = row["key"].get<std::string>();
  }
  if (row.contains("label")) {
    const json& l = row["label"];
    if (l.is_number_integer() && l.get<int64_t>() >= 0 && l.get<int64_t>() <= INT32_MAX) {
      f.label = static_cast<int32_t>(l.get<int64_t>());
    } else if (l.is_string() && !l.get<std::string>().empty()) {
      const std::string text = l.get<std::string>();
      if (text.find_first_not_of("0123456789") == std::string::npos && text.size() < 10) {
        f.label = std::stoi(text);
      } else {
        *label_name = text;
      }
    } else if (!l.is_null() && !(l.is_string() && l.get<std::string>().empty())) {
      return Status::invalid_argument(where +
                                      ": 'label' must be a non-negative integer or a "
                                      "name");
    }
  }
  json columns = json::object();
  for (auto& [name, value] : row.items()) {
    if (name != "path" && name != "key" && name != "label") columns[name] = value;
  }
  if (!columns.empty()) f.columns = columns.dump();
  return f;
}

// Labels of a manifest's files: numbers, or names numbered in sorted order, on every file or on
// none; then each file's identity (duplicates) and the scan's fingerprint.
Status finish_manifest(const std::vector<std::string>& label_names, const ImageImport& settings,
                       uint64_t h, ImageScan* scan) {
  bool named = false, numbered = false, all = true;
  std::set<std::string> names;
  for (size_t i = 0; i < scan->files.size(); ++i) {
    named |= !label_names[i].empty();
    numbered |= scan->files[i].label >= 0;
    all &= !label_names[i].empty() || scan->files[i].label >= 0;
    if (!label_names[i].empty()) names.insert(label_names[i]);
  }
  if (named && numbered) {
    return Status::invalid_argument(settings.manifest +
                                    ": labels mix numbers and names; use one or the other");
  }
  scan->labelled = all;
  if (named) scan->label_names.assign(names.begin(), names.end());
  std::set<std::pair<dev_t, ino_t>> seen;
  for (size_t i = 0; i < scan->files.size(); ++i) {
    ImageFile& f = scan->files[i];
    if (named) {
      f.label = static_cast<int32_t>(
          std::lower_bound(scan->label_names.begin(), scan->label_names.end(), label_names[i]) -
          scan->label_names.begin());
    }
    if (!all) f.label = -1;
    struct stat st {};
    const bool ok = ::stat(scan->file_path(i).c_str(), &st) == 0;
    h = fingerprint_file(ok ? &st : nullptr, h);
    if (ok && !settings.keep_duplicates) f.duplicate = !seen.insert({st.st_dev, st.st_ino}).second;
  }
  scan->fingerprint = h;
  return Status::ok();
}

}  // namespace

Result<ImageScan> scan_image_manifest(const ImageImport& settings) {
  const std::string& manifest = settings.manifest;
  std::ifstream in(manifest);
  if (!in) return Status::not_found(manifest + ": cannot open the manifest");
  ImageScan scan;
  scan.origin = manifest;
  scan.base = fs::path(manifest).parent_path().string();
  std::string line;
  size_t line_no = 0;
  std::vector<std::string> header;
  bool json_lines = false;
  std::set<std::string> keys;
  std::vector<std::string> label_names;  // per file; empty: numbered or none
  uint64_t h = fnv1a64(manifest);
  while (std::getline(in, line)) {
    ++line_no;
    const std::string where = manifest + " line " + std::to_string(line_no);
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    h = fnv1a64_bytes(line.data(), line.size() + 1, h);
    if (scan.files.empty() && header.empty() && !json_lines) {
      json_lines = line[line.find_first_not_of(" \t")] == '{';
      if (!json_lines) {
        IMSAT_ASSIGN_OR_RETURN(header, csv_fields(line));
        if (std::find(header.begin(), header.end(), "path") == header.end()) {
          return Status::invalid_argument(where + ": the CSV header has no 'path' column");
        }
        continue;
      }
    }
    IMSAT_ASSIGN_OR_RETURN(const json row, manifest_row(line, header, json_lines, where));
    std::string label_name;
    IMSAT_ASSIGN_OR_RETURN(ImageFile f, manifest_file(row, where, &label_name));
    const std::string key = f.key.empty() ? printable(f.path) : f.key;
    if (!keys.insert(key).second) {
      return Status::invalid_argument(where + ": key '" + key + "' appears twice");
    }
    label_names.push_back(std::move(label_name));
    scan.files.push_back(std::move(f));
  }
  if (scan.files.empty()) return Status::invalid_argument(manifest + ": lists no images");
  IMSAT_RETURN_IF_ERROR(finish_manifest(label_names, settings, h, &scan));
  return scan;
}

Result<ImageScan> scan_images(const std::string& folder, const ImageImport& settings) {
  if (!settings.manifest.empty()) return scan_image_manifest(settings);
  return scan_image_folder(folder, settings);
}

Result<ImageBatch> decode_images(const ImageScan& scan, size_t first, size_t count,
                                 const ImageImport& settings) {
  IMSAT_RETURN_IF_ERROR(settings.pipeline.validate());
  if (first > scan.files.size()) first = scan.files.size();
  count = std::min(count, scan.files.size() - first);
  const size_t dim = settings.pipeline.output_dim();
  std::vector<float> values(count * dim);
  std::vector<char> ok(count, 0);
  std::vector<SkipReason> reasons(count, SkipReason::kNotImage);
  std::vector<std::string> details(count);
  std::vector<std::string> thumbs(settings.thumbnail_side > 0 ? count : 0);
  std::atomic<size_t> next{0}, done{0};
  std::atomic<bool> stop{false};
  std::mutex progress_mutex;
  auto work = [&] {
    while (!stop.load(std::memory_order_relaxed)) {
      const size_t k = next.fetch_add(1);
      if (k >= count) break;
      const ImageFile& file = scan.files[first + k];
      SkipReason reason = SkipReason::kNotImage;
      if (file.duplicate) {
        reasons[k] = SkipReason::kDuplicate;
        details[k] = "the same file as another path (pass --keep-duplicates to read it again)";
      } else {
        Result<std::string> bytes = read_file(scan.file_path(first + k), &reason);
        Result<DecodedImage> image =
            bytes.is_ok() ? decode_image(*bytes, settings.pipeline, settings.thumbnail_side,
                                         settings.max_pixels, &reason)
                          : Result<DecodedImage>(bytes.status());
        if (image.is_ok()) {
          std::copy(image->features.begin(), image->features.end(),
                    values.begin() + static_cast<ptrdiff_t>(k * dim));
          if (!thumbs.empty()) thumbs[k] = std::move(image->thumbnail);
          ok[k] = 1;
        } else {
          reasons[k] = reason;
          details[k] = image.status().message();
          if (settings.strict) stop = true;
        }
      }
      const size_t d = done.fetch_add(1) + 1;
      if (settings.on_progress && (d % 64 == 0 || d == count)) {
        std::lock_guard lock(progress_mutex);
        settings.on_progress(first + d, scan.files.size());
      }
    }
  };
  const int threads = settings.threads > 0
                          ? settings.threads
                          : std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  std::vector<std::thread> pool;
  for (int t = 1; t < threads && static_cast<size_t>(t) < count; ++t) pool.emplace_back(work);
  work();
  for (std::thread& t : pool) t.join();

  ImageBatch b;
  b.first = first;
  b.files = count;
  size_t row = 0;
  for (size_t k = 0; k < count; ++k) {
    if (!ok[k]) {
      if (details[k].empty()) continue;  // never reached after a strict stop
      const std::string line =
          scan.shown_path(first + k) + ": " + skip_reason_name(reasons[k]) + ": " + details[k];
      if (settings.strict) return Status::invalid_argument(line + " (--strict)");
      b.report.skipped[reasons[k]]++;
      b.report.skip_lines.push_back(line);
      continue;
    }
    if (row != k) {
      std::copy(values.begin() + static_cast<ptrdiff_t>(k * dim),
                values.begin() + static_cast<ptrdiff_t>((k + 1) * dim),
                values.begin() + static_cast<ptrdiff_t>(row * dim));
    }
    if (!thumbs.empty()) b.thumbnails.push_back(std::move(thumbs[k]));
    b.positions.push_back(first + k);
    ++row;
  }
  values.resize(row * dim);
  b.values = std::move(values);
  b.report.read = row;
  return b;
}

ImageReader::ImageReader(const ImageScan& scan, ImageImport settings, size_t first,
                         size_t batch_files)
    : scan_(scan),
      settings_(std::move(settings)),
      batch_files_(std::max<size_t>(batch_files, 1)),
      position_(std::min(first, scan.files.size())),
      thread_([this] { run(); }) {}

ImageReader::~ImageReader() {
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
  }
  changed_.notify_all();
  thread_.join();
}

void ImageReader::run() {
  for (;;) {
    size_t position = 0;
    {
      std::lock_guard lock(mutex_);
      if (stop_) return;
      position = position_;
    }
    Result<ImageBatch> batch = decode_images(scan_, position, batch_files_, settings_);
    const bool last = !batch.is_ok() || batch->files == 0;
    std::unique_lock lock(mutex_);
    changed_.wait(lock, [this] { return stop_ || !ready_.has_value(); });
    if (stop_) return;
    if (batch.is_ok()) position_ += batch->files;
    ready_.emplace(std::move(batch));
    changed_.notify_all();
    if (last) return;
  }
}

Result<ImageBatch> ImageReader::next() {
  std::unique_lock lock(mutex_);
  changed_.wait(lock, [this] { return ready_.has_value(); });
  Result<ImageBatch> batch = std::move(*ready_);
  const bool last = !batch.is_ok() || batch->files == 0;
  // The last answer (the end, or an error) stays for any later call.
  if (!last) {
    ready_.reset();
    changed_.notify_all();
  } else if (batch.is_ok()) {
    ready_.emplace(ImageBatch{position_, 0, {}, {}, {}, {}});
  } else {
    ready_.emplace(batch.status());
  }
  return batch;
}

Result<Dataset> read_images(const ImageScan& scan, const ImageImport& settings,
                            ImportReport* report) {
  IMSAT_RETURN_IF_ERROR(settings.pipeline.validate());
  Dataset d;
  d.source = scan.origin;
  d.cols = settings.pipeline.output_dim();
  d.item_shape = settings.pipeline.output_shape();
  d.uint8_pixels = settings.pipeline.outputs_pixels();
  d.image_pipeline = settings.pipeline.to_json();
  if (scan.labelled) d.label_names = scan.label_names;
  ImportReport local;
  ImportReport& r = report != nullptr ? *report : local;
  constexpr size_t kBatch = 4096;
  for (size_t first = 0; first < scan.files.size(); first += kBatch) {
    IMSAT_ASSIGN_OR_RETURN(ImageBatch b, decode_images(scan, first, kBatch, settings));
    r.merge(b.report);
    d.values.insert(d.values.end(), b.values.begin(), b.values.end());
    for (size_t row = 0; row < b.rows(); ++row) {
      const size_t i = b.positions[row];
      if (scan.labelled) d.labels.push_back(scan.files[i].label);
      d.keys.push_back(scan.key(i));
      json meta = json::object();
      scan.metadata_into(i, &meta);
      d.metadata.push_back(meta.dump());
      if (!b.thumbnails.empty()) d.thumbnails.push_back(std::move(b.thumbnails[row]));
    }
  }
  d.rows = d.keys.size();
  if (d.rows == 0) {
    return Status::invalid_argument(scan.origin + ": holds no readable images (" + r.summary() +
                                    ")");
  }
  return d;
}

Result<Dataset> read_image_folder(const std::string& folder, const ImageImport& settings,
                                  ImportReport* report) {
  IMSAT_ASSIGN_OR_RETURN(ImageScan scan, scan_image_folder(folder, settings));
  return read_images(scan, settings, report);
}

Result<Dataset> read_image_manifest(const ImageImport& settings, ImportReport* report) {
  IMSAT_ASSIGN_OR_RETURN(ImageScan scan, scan_image_manifest(settings));
  return read_images(scan, settings, report);
}

}  // namespace imsat::io
