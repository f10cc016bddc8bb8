// Decoding an encoded image (libjpeg-turbo for JPEG at a reduced DCT scale, stb_image for the
// rest) and running the whole pipeline; thumbnails.
#ifdef IMSAT_IMAGE_CODECS
#include <stb/stb_image.h>
#include <stb/stb_image_write.h>
#include <turbojpeg.h>
#endif

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstring>
#include <functional>
#include <memory>

#include "io/image_internal.h"

namespace imsat::io {

#ifdef IMSAT_IMAGE_CODECS

namespace {

// Whether the bytes start like an image file stb reads (so a failure is damage, not another kind
// of file). TGA has no signature.
bool has_image_signature(const std::string& b) {
  auto starts = [&b](const char* magic, size_t n) {
    return b.size() >= n && std::memcmp(b.data(), magic, n) == 0;
  };
  return starts("\x89PNG", 4) || starts("\xff\xd8\xff", 3) || starts("GIF8", 4) ||
         starts("BM", 2) || (b.size() >= 2 && b[0] == 'P' && b[1] >= '1' && b[1] <= '7');
}

// Debian's stb reads a binary PNM (P5, P6) whose pixel data is cut short without noticing and
// leaves the rest of the image uninitialised: check the data's length against the header.
bool pnm_is_short(const std::string& b) {
  if (b.size() < 2 || b[0] != 'P' || (b[1] != '5' && b[1] != '6')) return false;
  size_t at = 2;
  uint64_t fields[3] = {0, 0, 0};  // width, height, maxval
  for (uint64_t& field : fields) {
    while (at < b.size() && (std::isspace(static_cast<unsigned char>(b[at])) || b[at] == '#')) {
      if (b[at] == '#') {
        while (at < b.size() && b[at] != '\n') ++at;
      } else {
        ++at;
      }
    }
    if (at >= b.size() || !std::isdigit(static_cast<unsigned char>(b[at]))) return true;
    while (at < b.size() && std::isdigit(static_cast<unsigned char>(b[at])) && field < (1u << 30)) {
      field = field * 10 + static_cast<uint64_t>(b[at++] - '0');
    }
  }
  ++at;  // the single whitespace before the data
  const uint64_t samples = fields[0] * fields[1] * (b[1] == '6' ? 3 : 1);
  const uint64_t need = samples * (fields[2] > 255 ? 2 : 1);
  return at > b.size() || b.size() - at < need;
}

enum class Turbo { kDecoded, kNotForTurbo, kDamaged };

// JPEG files through libjpeg-turbo, decoded directly at the smallest of its DCT scales (1/8 to 1)
// that still covers the output: at 1/8 each 8 x 8 block becomes its average, area averaging at a
// fraction of a full decode's cost. kNotForTurbo (stb decodes the file) for other files and
// colour spaces turbo does not convert (CMYK); kDamaged for a JPEG it accepted but cannot decode.
Turbo decode_jpeg(const std::string& encoded, int channels,
                  const std::function<bool(int, int)>& covers, std::vector<uint8_t>* out, int* w,
                  int* h, std::string* error) {
  if (encoded.size() < 3 || std::memcmp(encoded.data(), "\xff\xd8\xff", 3) != 0) {
    return Turbo::kNotForTurbo;
  }
  thread_local std::unique_ptr<void, int (*)(tjhandle)> handle(tjInitDecompress(), tjDestroy);
  if (handle == nullptr) return Turbo::kNotForTurbo;
  const auto* buf = reinterpret_cast<const unsigned char*>(encoded.data());
  const auto len = static_cast<unsigned long>(encoded.size());
  int width = 0, height = 0, subsamp = 0, colorspace = 0;
  if (tjDecompressHeader3(handle.get(), buf, len, &width, &height, &subsamp, &colorspace) != 0 ||
      colorspace == TJCS_CMYK || colorspace == TJCS_YCCK || width <= 0 || height <= 0) {
    return Turbo::kNotForTurbo;
  }
  int count = 0;
  const tjscalingfactor* factors = tjGetScalingFactors(&count);
  int best_w = width, best_h = height;
  for (int i = 0; factors != nullptr && i < count; ++i) {
    if (factors[i].num > factors[i].denom) continue;  // enlarging
    const int sw = TJSCALED(width, factors[i]), sh = TJSCALED(height, factors[i]);
    if (covers(sw, sh) && static_cast<int64_t>(sw) * sh < static_cast<int64_t>(best_w) * best_h) {
      best_w = sw;
      best_h = sh;
    }
  }
  out->resize(static_cast<size_t>(best_w) * best_h * channels);
  if (tjDecompress2(handle.get(), buf, len, out->data(), best_w, 0, best_h,
                    channels == 1 ? TJPF_GRAY : TJPF_RGB, 0) != 0) {
    *error = tjGetErrorStr2(handle.get());
    return Turbo::kDamaged;
  }
  *w = best_w;
  *h = best_h;
  return Turbo::kDecoded;
}

// Pixels decoded by stb (every format but the JPEG files turbo takes), freed with stb.
using StbPixels = std::unique_ptr<stbi_uc, void (*)(void*)>;

// Why `encoded` cannot be used, before anything is decoded: empty, over 1 GiB, not an image stb
// recognises, a header cut short, more pixels than `max_pixels` (> 0). Sets *w and *h.
Status check_encoded(const std::string& encoded, size_t max_pixels, int* w, int* h,
                     SkipReason* reason) {
  auto fail = [&](SkipReason r, const std::string& what) -> Status {
    *reason = r;
    return Status::invalid_argument(what);
  };
  if (encoded.empty()) return fail(SkipReason::kEmpty, "the image is empty (0 bytes)");
  if (encoded.size() > (size_t{1} << 30)) {
    return fail(SkipReason::kTooLarge, "the image file is over 1 GiB");
  }
  int comp = 0;
  if (stbi_info_from_memory(reinterpret_cast<const stbi_uc*>(encoded.data()),
                            static_cast<int>(encoded.size()), w, h, &comp) == 0) {
    if (has_image_signature(encoded)) {
      return fail(SkipReason::kTruncated,
                  std::string("cannot decode the image: its header is cut short or damaged (") +
                      stbi_failure_reason() + ")");
    }
    return fail(SkipReason::kNotImage,
                std::string("not an image stb can read (") + stbi_failure_reason() + ")");
  }
  if (*w <= 0 || *h <= 0) return fail(SkipReason::kNotImage, "the image has no pixels");
  if (max_pixels > 0 && static_cast<uint64_t>(*w) * static_cast<uint64_t>(*h) > max_pixels) {
    return fail(SkipReason::kTooLarge, "the image declares " + std::to_string(*w) + " x " +
                                           std::to_string(*h) + " pixels; the limit is " +
                                           std::to_string(max_pixels) + " pixels");
  }
  return Status::ok();
}

// stb's full decode, with the checks stb itself misses.
Result<StbPixels> stb_decode(const std::string& encoded, int* w, int* h, int* comp,
                             SkipReason* reason) {
  *reason = SkipReason::kTruncated;
  if (pnm_is_short(encoded)) {
    return Status::invalid_argument("cannot decode the image: its pixel data is cut short");
  }
  StbPixels pixels(stbi_load_from_memory(reinterpret_cast<const stbi_uc*>(encoded.data()),
                                         static_cast<int>(encoded.size()), w, h, comp, 0),
                   stbi_image_free);
  if (pixels == nullptr) {
    return Status::invalid_argument(std::string("cannot decode the image: ") +
                                    stbi_failure_reason());
  }
  return pixels;
}

// The pipeline's output from its fitted pixels: the pixels themselves, or each channel's GIST.
std::vector<float> features_of(const std::vector<uint8_t>& fitted, const ImagePipeline& p) {
  if (p.features == ImageFeatures::kPixels) return std::vector<float>(fitted.begin(), fitted.end());
  std::vector<float> out;
  out.reserve(p.output_dim());
  std::vector<float> channel(static_cast<size_t>(p.size) * p.size);
  for (int c = 0; c < p.channels; ++c) {
    for (size_t i = 0; i < channel.size(); ++i) {
      channel[i] = fitted[i * static_cast<size_t>(p.channels) + static_cast<size_t>(c)];
    }
    const std::vector<float> g = gist_descriptor(channel.data(), p.size);
    out.insert(out.end(), g.begin(), g.end());
  }
  return out;
}

// A JPEG thumbnail of RGB pixels: at most `side` on the longest side, never enlarged.
Result<std::string> thumbnail_of(const std::vector<uint8_t>& rgb, int w, int h, int side) {
  int tw = w, th = h;
  if (std::max(w, h) > side) {
    if (w >= h) {
      tw = side;
      th = std::max(1, static_cast<int>(std::lround(static_cast<double>(h) * side / w)));
    } else {
      th = side;
      tw = std::max(1, static_cast<int>(std::lround(static_cast<double>(w) * side / h)));
    }
  }
  std::vector<uint8_t> small(static_cast<size_t>(tw) * th * 3);
  resize_into(rgb.data(), w, h, w * 3, small.data(), tw, th, tw * 3, 3);
  std::string out;
  stbi_write_jpg_to_func(
      [](void* ctx, void* data, int size) {
        static_cast<std::string*>(ctx)->append(static_cast<const char*>(data),
                                               static_cast<size_t>(size));
      },
      &out, tw, th, 3, small.data(), 85);
  if (out.empty()) return Status::internal("JPEG encoding of a thumbnail failed");
  return out;
}

// Whether a decoded w x h covers an output of side s under `fit` (turbo's DCT scale choice).
bool covers(Fit fit, int s, int w, int h) {
  switch (fit) {
    case Fit::kStretch:
      return w >= s && h >= s;
    case Fit::kCrop:
      return std::min(w, h) >= s;
    case Fit::kPad:
      return std::max(w, h) >= s;
  }
  return true;
}

}  // namespace

Result<DecodedImage> decode_image(const std::string& encoded, const ImagePipeline& p,
                                  int thumbnail_side, size_t max_pixels, SkipReason* reason) {
  SkipReason local = SkipReason::kNotImage;
  SkipReason& why = reason != nullptr ? *reason : local;
  int w = 0, h = 0;
  IMSAT_RETURN_IF_ERROR(check_encoded(encoded, max_pixels, &w, &h, &why));
  DecodedImage out;
  std::vector<uint8_t> jpeg;
  std::string error;
  auto feature_scale = [&p](int sw, int sh) { return covers(p.fit, p.size, sw, sh); };
  switch (decode_jpeg(encoded, p.channels, feature_scale, &jpeg, &w, &h, &error)) {
    case Turbo::kDamaged:
      why = SkipReason::kTruncated;
      return Status::invalid_argument("cannot decode the JPEG: " + error);
    case Turbo::kDecoded:
      out.features = features_of(fit_pixels(jpeg.data(), w, h, p.channels, p), p);
      if (thumbnail_side > 0) {
        // The features' DCT scale is part of the pipeline (a query decodes its image the same
        // way), so a thumbnail larger than that scale is decoded again at its own, larger scale:
        // the file is read and its header parsed once, and the 1/8 scale the features usually
        // take costs a fraction of a full decode.
        const auto thumb_scale = [thumbnail_side](int sw, int sh) {
          return std::max(sw, sh) >= thumbnail_side;
        };
        if (decode_jpeg(encoded, 3, thumb_scale, &jpeg, &w, &h, &error) == Turbo::kDecoded) {
          Result<std::string> t = thumbnail_of(jpeg, w, h, thumbnail_side);
          if (t.is_ok()) out.thumbnail = std::move(t).value();
        }
      }
      return out;
    case Turbo::kNotForTurbo:
      break;
  }
  // Every other file is decoded in full once: the features and the thumbnail come from the same
  // pixels.
  int comp = 0;
  IMSAT_ASSIGN_OR_RETURN(StbPixels pixels, stb_decode(encoded, &w, &h, &comp, &why));
  out.features = features_of(fit_pixels(pixels.get(), w, h, comp, p), p);
  if (thumbnail_side > 0) {
    const uint8_t white[3] = {255, 255, 255};
    Result<std::string> t =
        thumbnail_of(to_channels(pixels.get(), w, h, comp, 3, white), w, h, thumbnail_side);
    if (t.is_ok()) out.thumbnail = std::move(t).value();
  }
  return out;
}

Result<std::vector<float>> preprocess_image(const std::string& encoded, const ImagePipeline& p,
                                            size_t max_pixels, SkipReason* reason) {
  IMSAT_ASSIGN_OR_RETURN(DecodedImage d, decode_image(encoded, p, 0, max_pixels, reason));
  return std::move(d.features);
}

Result<std::string> make_thumbnail(const std::string& encoded, int side, size_t max_pixels) {
  if (side <= 0) return Status::invalid_argument("a thumbnail needs a positive side");
  SkipReason why = SkipReason::kNotImage;
  int w = 0, h = 0;
  IMSAT_RETURN_IF_ERROR(check_encoded(encoded, max_pixels, &w, &h, &why));
  std::vector<uint8_t> rgb;
  std::string error;
  const auto scale = [side](int sw, int sh) { return std::max(sw, sh) >= side; };
  switch (decode_jpeg(encoded, 3, scale, &rgb, &w, &h, &error)) {
    case Turbo::kDamaged:
      return Status::invalid_argument(error);
    case Turbo::kDecoded:
      return thumbnail_of(rgb, w, h, side);
    case Turbo::kNotForTurbo:
      break;
  }
  int comp = 0;
  IMSAT_ASSIGN_OR_RETURN(StbPixels pixels, stb_decode(encoded, &w, &h, &comp, &why));
  const uint8_t white[3] = {255, 255, 255};
  return thumbnail_of(to_channels(pixels.get(), w, h, comp, 3, white), w, h, side);
}

#else  // IMSAT_IMAGE_CODECS

Result<DecodedImage> decode_image(const std::string&, const ImagePipeline&, int, size_t,
                                  SkipReason* reason) {
  if (reason != nullptr) *reason = SkipReason::kUnreadable;
  return Status::invalid_argument(kNoCodecs);
}

Result<std::vector<float>> preprocess_image(const std::string&, const ImagePipeline&, size_t,
                                            SkipReason* reason) {
  if (reason != nullptr) *reason = SkipReason::kUnreadable;
  return Status::invalid_argument(kNoCodecs);
}

Result<std::string> make_thumbnail(const std::string&, int, size_t) {
  return Status::invalid_argument(kNoCodecs);
}

#endif  // IMSAT_IMAGE_CODECS

}  // namespace imsat::io
