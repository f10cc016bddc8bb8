// imsat::io — folders and manifests of image files as datasets: a scan that lists the files once
// (keys, labels, a fingerprint of what it found), then decoding in batches, either all of it into
// a Dataset (training, evaluation) or batch after batch with bounded memory (ImageReader, for
// bulk indexing). No LibTorch here (library imsat_io).
#pragma once

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "common/status.h"
#include "io/images.h"

namespace imsat::io {

struct ImageImport {
  ImagePipeline pipeline;
  // A CSV (header row naming the columns) or JSON-lines file with `path` (relative to the
  // manifest's folder, or absolute), optional `key` and `label` (an integer, or a name numbered
  // in sorted order), and any other columns as metadata. Empty: the folder itself is read.
  std::string manifest;
  bool strict = false;           // the first unusable file is an error instead of a skip
  bool keep_duplicates = false;  // a file reached twice (symbolic links) is read twice
  size_t max_pixels = 8192u * 8192u;
  int thumbnail_side = 0;  // > 0: keep a thumbnail of each image (Dataset::thumbnails)
  int threads = 0;         // <= 0: all cores
  // Called from the decoding threads (one at a time) with (files done, total files).
  std::function<void(size_t done, size_t total)> on_progress;
};

// What an import read and skipped.
struct ImportReport {
  size_t read = 0;
  std::map<SkipReason, size_t> skipped;
  std::vector<std::string> skip_lines;  // "<relative path>: <reason>: <detail>", in path order
  size_t skipped_total() const;
  // "read 120, skipped 4: 3 not images, 1 truncated"
  std::string summary() const;
  // Adds another part of the same import (read after this one).
  void merge(const ImportReport& later);
};

// One file of an import as the scan found it.
struct ImageFile {
  std::string path;     // a folder's: relative to it (raw bytes); a manifest's: as written there
  std::string key;      // a manifest's `key`; empty: the printable path
  std::string columns;  // a manifest's other columns as a JSON object; empty otherwise
  int32_t label = -1;   // numbered (names in sorted order); -1: none
  bool duplicate = false;
};

// The files of an import, in the order they are read and keyed.
struct ImageScan {
  std::string origin;  // the folder or the manifest
  std::string base;    // where relative paths start
  std::vector<ImageFile> files;
  std::vector<std::string> label_names;  // label i's name (subfolders, a manifest's names)
  // Every file has a label: a folder whose files all lie in subfolders (hidden ones aside), or a
  // manifest with a label on every row. Otherwise no item is labelled.
  bool labelled = false;
  // A hash of every file's path, size and modification time: a changed, added or removed file
  // changes it.
  uint64_t fingerprint = 0;

  std::string file_path(size_t i) const;   // the path to open
  std::string shown_path(size_t i) const;  // the path as keys and reports show it (UTF-8)
  std::string key(size_t i) const;
  // Adds file i's metadata to *meta: a manifest's other columns, its `path`, and `label_name`
  // when the labels are names.
  void metadata_into(size_t i, nlohmann::json* meta) const;
};

// Every file under `folder` (recursively, symbolic links followed, hidden files and folders left
// out, sorted by relative path as bytes, so non-UTF-8 names work too). Labels follow the
// ImageFolder convention: files in first-level subfolders are labelled by the subfolder's name.
// Keys are the relative paths. A file reached by several paths is marked a duplicate (read once)
// unless settings.keep_duplicates.
Result<ImageScan> scan_image_folder(const std::string& folder, const ImageImport& settings);
// The files `settings.manifest` lists (its rows checked: a path on each, keys distinct, labels all
// numbers or all names).
Result<ImageScan> scan_image_manifest(const ImageImport& settings);
// The manifest when settings.manifest is set, otherwise the folder.
Result<ImageScan> scan_images(const std::string& folder, const ImageImport& settings);

// Files [first, first + files) of a scan, decoded: one row per file read.
struct ImageBatch {
  size_t first = 0;
  size_t files = 0;
  std::vector<size_t> positions;        // one per row: the file's position in the scan
  std::vector<float> values;            // rows x the pipeline's output_dim, row-major
  std::vector<std::string> thumbnails;  // one per row when settings.thumbnail_side > 0
  ImportReport report;                  // what this batch read and skipped
  size_t rows() const { return positions.size(); }
};

// Reads and decodes files [first, first + count) of `scan` on settings.threads threads, each file
// read and decoded once. Unusable files are skipped and reported (with settings.strict, the first
// in order is an error naming it).
Result<ImageBatch> decode_images(const ImageScan& scan, size_t first, size_t count,
                                 const ImageImport& settings);

// A scan's files from `first` on, decoded `batch_files` at a time on a thread of its own, one batch
// ahead of the consumer: memory holds at most two batches whatever the scan's size.
class ImageReader {
 public:
  ImageReader(const ImageScan& scan, ImageImport settings, size_t first, size_t batch_files);
  ~ImageReader();  // stops the decoding and waits for it
  ImageReader(const ImageReader&) = delete;
  ImageReader& operator=(const ImageReader&) = delete;
  // The next batch in order; one with no files once the scan is done. The first error ends it.
  Result<ImageBatch> next();

 private:
  void run();

  const ImageScan& scan_;
  const ImageImport settings_;
  const size_t batch_files_;
  size_t position_;
  std::mutex mutex_;
  std::condition_variable changed_;
  std::optional<Result<ImageBatch>> ready_;
  bool stop_ = false;
  std::thread thread_;
};

struct Dataset;

// The whole scan decoded into one Dataset (rows of the files read, in order): keys, metadata and
// thumbnails per row, labels when the scan is labelled. `report` (may be null) receives what was
// read and skipped; a scan with no readable file is an error.
Result<Dataset> read_images(const ImageScan& scan, const ImageImport& settings,
                            ImportReport* report);
// scan_image_folder then read_images.
Result<Dataset> read_image_folder(const std::string& folder, const ImageImport& settings,
                                  ImportReport* report);
// scan_image_manifest then read_images.
Result<Dataset> read_image_manifest(const ImageImport& settings, ImportReport* report);
// Whether `path` is a folder of images rather than an MNIST-style IDX folder.
bool is_image_folder(const std::string& path);
// Whether `path` names an image file by its extension.
bool is_image_file_name(const std::string& path);

}  // namespace imsat::io
