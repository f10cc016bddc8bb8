// imsat::io — dataset readers: IDX (MNIST / Fashion-MNIST), TEXMEX vector files and numeric CSV,
// to rows of raw features with optional labels. No LibTorch here (library imsat_io), so the
// sanitizer build and the fuzzers test the readers without it; src/learn re-exports these names.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"
#include "io/image_import.h"

namespace imsat::io {

// Items as rows of raw (not yet preprocessed) features, with optional integer labels.
struct Dataset {
  size_t rows = 0;
  size_t cols = 0;
  std::vector<float> values;       // rows * cols, row-major, as read from the file
  std::vector<int32_t> labels;     // empty, or one per row
  std::vector<size_t> item_shape;  // {28, 28} for IDX images, {cols} otherwise
  bool uint8_pixels = false;       // values are 8-bit image intensities in [0, 255]
  size_t train_rows = 0;           // rows that came from a "train" file (a folder's own split)
  std::string source;              // file or folder it was read from
  // Image folders and manifests only (empty otherwise):
  std::vector<std::string> keys;         // one per row: the relative path or the manifest's key
  std::vector<std::string> label_names;  // label i's name (the subfolder or manifest value)
  std::vector<std::string> metadata;     // one JSON object per row (path, label name, columns)
  std::string image_pipeline;            // the ImagePipeline that made the rows, as JSON
  std::vector<std::string> thumbnails;   // one JPEG per row when asked for (ImageImport)

  const float* row(size_t i) const { return values.data() + i * cols; }
};

// A data set's name, as item metadata and titles show it: the last part of its path, a trailing
// '/' ignored ("photos" for "data/photos/"; the path itself when it has no such part).
std::string source_name(const std::string& path);

// IDX (MNIST / Fashion-MNIST) images, plain or gzip. `labels_path` may be empty; otherwise it
// must be an IDX label file (type ubyte, one dimension) with the same count as the images.
// Errors name the file, the byte offset and what was expected.
Result<Dataset> read_idx(const std::string& images_path, const std::string& labels_path = "");
// IDX labels alone.
Result<std::vector<int32_t>> read_idx_labels(const std::string& path);
// TEXMEX / ann-benchmarks vector files: each vector is an int32 dimension then that many
// float32 (fvecs), uint8 (bvecs) or int32 (ivecs) values. Every vector must have the same
// dimension.
Result<Dataset> read_fvecs(const std::string& path);
Result<Dataset> read_bvecs(const std::string& path);
Result<Dataset> read_ivecs(const std::string& path);
// Numeric CSV: an optional header row (detected when its first row is not all numbers); a
// column headed `label` holds integer labels, every other column is a feature.
Result<Dataset> read_csv(const std::string& path);
// NumPy arrays as numpy.save writes them (.npy, format versions 1 to 3): a 2-D array of float32,
// float16, float64, uint8, int8 (or int32/int64, uint32/uint64, bool) in C or Fortran order, one
// row per item. NaN or infinite values are an error naming the row and column.
Result<Dataset> read_npy(const std::string& path);
// A 1-D .npy array of non-negative integer labels.
Result<std::vector<int32_t>> read_npy_labels(const std::string& path);
// A .npz archive (numpy.savez or savez_compressed): the items are the array named x, X, data,
// embeddings, features or vectors (or the only array not named as labels), the labels the 1-D
// array named y, labels, label or targets when there is one.
Result<Dataset> read_npz(const std::string& path);
// Any of the above by path: a folder holding the standard MNIST file names (train then t10k,
// labels found automatically), *.idx / *-ubyte[.gz] (labels from `labels_path`), *.fvecs,
// *.bvecs, *.ivecs, *.csv, *.npy, *.npz (`labels_path`: IDX or .npy labels). NaN or infinite
// values are an error; a file of another format is an error that lists the formats read.
Result<Dataset> load_dataset(const std::string& path, const std::string& labels_path = "");
// The same, where `path` may also be a folder of image files (read_image_folder) or, with
// `images.manifest` set, is ignored for the manifest's images; `report` (may be null) receives
// what an image import read and skipped.
Result<Dataset> load_dataset(const std::string& path, const std::string& labels_path,
                             const ImageImport& images, ImportReport* report);

}  // namespace imsat::io
