// imsat::io — ordinary image files as model inputs: one preprocessing pipeline (decode, composite
// transparency, grey or RGB, resize with aspect handling, raw pixels or GIST), recorded in the
// model so that training, indexing and every query transform an image identically; and folders
// (or manifests) of image files as datasets. No LibTorch here (library imsat_io).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "common/status.h"

namespace imsat::io {

// How a picture whose aspect ratio differs from the square output is fitted: shrink the whole
// picture into the square and fill the rest with the background (pad), cut the centred square
// (crop), or scale each side on its own (stretch).
enum class Fit { kPad, kCrop, kStretch };
// The feature front-end: the resized pixels themselves, or the GIST descriptor of each channel.
enum class ImageFeatures { kPixels, kGist };

// GIST as Oliva and Torralba define it (the LMgist reference): 4 scales x 8 orientations of
// Gabor filters on the pre-filtered (log, whitened, contrast-normalised) image, each response's
// magnitude averaged over a 4 x 4 grid: 512 values per channel.
constexpr int kGistScales = 4;
constexpr int kGistOrientations = 8;
constexpr int kGistBlocks = 4;
constexpr size_t kGistPerChannel =
    static_cast<size_t>(kGistScales) * kGistOrientations * kGistBlocks * kGistBlocks;

struct ImagePipeline {
  int channels = 1;  // 1: grey (ITU-R BT.601 luma), 3: RGB
  int size = 32;     // output side in pixels (square)
  Fit fit = Fit::kPad;
  uint8_t background[3] = {255, 255, 255};  // behind transparency and padding
  ImageFeatures features = ImageFeatures::kPixels;

  // Values per image: size * size * channels for pixels (interleaved, row-major), 512 *
  // channels for GIST.
  size_t output_dim() const;
  // {size, size} or {size, size, 3} for pixels; {output_dim()} for GIST.
  std::vector<size_t> output_shape() const;
  // Whether the output is 8-bit intensities (0..255), which the model scales as pixels.
  bool outputs_pixels() const { return features == ImageFeatures::kPixels; }

  // One-line JSON, as recorded in the model header, and back. InvalidArgument names the field.
  std::string to_json() const;
  static Result<ImagePipeline> from_json(const std::string& text);
  // Checks the ranges (channels 1 or 3, size 1..1024, at least 16 for GIST).
  Status validate() const;
};

// Parsers for the command-line spellings: "pad" | "crop" | "stretch"; "pixels" | "gist";
// "white", "black" or "#rrggbb".
Result<Fit> parse_fit(const std::string& name);
Result<ImageFeatures> parse_features(const std::string& name);
Status parse_background(const std::string& text, uint8_t rgb[3]);

// Why an image file could not be used; the key in an import's summary.
enum class SkipReason { kNotImage, kTruncated, kEmpty, kTooLarge, kUnreadable, kDuplicate };
const char* skip_reason_name(SkipReason r);  // "not an image", "truncated", ...

// Decodes an encoded image (PNG, JPEG, BMP, GIF first frame, TGA, PNM: what stb_image reads) and
// runs the pipeline. `max_pixels` > 0 refuses an image whose header declares more, before it is
// decoded. InvalidArgument with the reason (and `*reason` set when not null) otherwise.
Result<std::vector<float>> preprocess_image(const std::string& encoded,
                                            const ImagePipeline& pipeline, size_t max_pixels = 0,
                                            SkipReason* reason = nullptr);

// A thumbnail for showing the image: at most `side` pixels on its longest side (never enlarged),
// transparency over white, as a JPEG (quality 85: a few KiB at 96 pixels).
Result<std::string> make_thumbnail(const std::string& encoded, int side, size_t max_pixels = 0);

// The pipeline's geometric part on already decoded 8-bit pixels (`in_channels` 1 to 4, 2 and 4
// with alpha): composite, convert, fit and resize. Returns size * size * channels values.
std::vector<uint8_t> fit_pixels(const uint8_t* pixels, int width, int height, int in_channels,
                                const ImagePipeline& pipeline);

// GIST of one channel: `side` x `side` intensities in [0, 255], row-major. 512 values: for each
// filter (scale-major, then orientation) the 16 grid cells, grid column-major (LMgist's order:
// cell (row r, column c) at r + 4 c).
std::vector<float> gist_descriptor(const float* image, int side);

// ---------------------------------------------------------------------------------------------
// Image folders and manifests as datasets

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
  // Called from the reading threads' coordinator with (files done, total files).
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
};

struct Dataset;

// Every image file under `folder` (recursively, symbolic links followed, sorted by relative path
// as bytes, so non-UTF-8 names work too) through the pipeline. Labels follow the ImageFolder
// convention: files in first-level subfolders are labelled by the subfolder's name (numbered in
// sorted order, names kept in label_names); files directly in `folder` have none (when every
// file is in a subfolder every item is labelled). Keys are the relative paths; metadata records
// the path and label name. Unusable files are skipped and reported (or an error with strict).
Result<Dataset> read_image_folder(const std::string& folder, const ImageImport& settings,
                                  ImportReport* report);
// The same from `settings.manifest` (folder is where relative paths start; the manifest's folder
// when empty).
Result<Dataset> read_image_manifest(const ImageImport& settings, ImportReport* report);
// Whether `path` is a folder of images rather than an MNIST-style IDX folder.
bool is_image_folder(const std::string& path);
// Whether `path` names an image file by its extension.
bool is_image_file_name(const std::string& path);

}  // namespace imsat::io
