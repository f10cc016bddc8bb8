// imsat::io — ordinary image files as model inputs: one preprocessing pipeline (decode, composite
// transparency, grey or RGB, resize with aspect handling, raw pixels or GIST), recorded in the
// model so that training, indexing and every query transform an image identically; and folders
// (or manifests) of image files as datasets (image_import.h). No LibTorch here (library imsat_io).
#pragma once

#include <cstddef>
#include <cstdint>
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

// One image file through the pipeline and, when `thumbnail_side` > 0, its thumbnail (as
// make_thumbnail makes it; empty when it cannot be made), from one read of `encoded`: files other
// than JPEG are decoded once for both; a JPEG is decoded at the features' DCT scale and, for a
// larger thumbnail, again at the thumbnail's. Errors as preprocess_image.
struct DecodedImage {
  std::vector<float> features;
  std::string thumbnail;
};
Result<DecodedImage> decode_image(const std::string& encoded, const ImagePipeline& pipeline,
                                  int thumbnail_side, size_t max_pixels = 0,
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

}  // namespace imsat::io
