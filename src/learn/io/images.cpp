// The image pipeline (stb_image decoding, stb_image_resize resizing, GIST on FFTW) and image
// folders or manifests as datasets.
#include "learn/io/images.h"

#include <sys/stat.h>
#ifdef IMSAT_IMAGE_CODECS
#include <fftw3.h>
#include <stb/stb_image.h>
#include <stb/stb_image_resize.h>
#include <stb/stb_image_write.h>
#include <turbojpeg.h>
#endif

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cmath>
#include <complex>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <stdexcept>
#include <thread>

#include "learn/io/datasets.h"

namespace imsat::io {

using json = nlohmann::json;
namespace fs = std::filesystem;

// ---------------------------------------------------------------------------------------------
// The pipeline's description

size_t ImagePipeline::output_dim() const {
  const size_t c = static_cast<size_t>(channels);
  if (features == ImageFeatures::kGist) return kGistPerChannel * c;
  return static_cast<size_t>(size) * static_cast<size_t>(size) * c;
}

std::vector<size_t> ImagePipeline::output_shape() const {
  if (features == ImageFeatures::kGist) return {output_dim()};
  const size_t s = static_cast<size_t>(size);
  if (channels == 1) return {s, s};
  return {s, s, static_cast<size_t>(channels)};
}

namespace {

const char* fit_name(Fit f) {
  switch (f) {
    case Fit::kPad:
      return "pad";
    case Fit::kCrop:
      return "crop";
    case Fit::kStretch:
      return "stretch";
  }
  return "?";
}

const char* features_name(ImageFeatures f) { return f == ImageFeatures::kGist ? "gist" : "pixels"; }

std::string hex_colour(const uint8_t rgb[3]) {
  char buf[8];
  std::snprintf(buf, sizeof(buf), "#%02x%02x%02x", rgb[0], rgb[1], rgb[2]);
  return buf;
}

}  // namespace

std::string ImagePipeline::to_json() const {
  return json{{"channels", channels},
              {"size", size},
              {"fit", fit_name(fit)},
              {"background", hex_colour(background)},
              {"features", features_name(features)},
              {"resize", "area average when shrinking, bilinear when enlarging"}}
      .dump();
}

Status ImagePipeline::validate() const {
  if (channels != 1 && channels != 3) {
    return Status::invalid_argument("image channels must be 1 (grey) or 3 (RGB), not " +
                                    std::to_string(channels));
  }
  if (size < 1 || size > 1024) {
    return Status::invalid_argument("image size must be 1 to 1024 pixels, not " +
                                    std::to_string(size));
  }
  if (features == ImageFeatures::kGist && size < 16) {
    return Status::invalid_argument("GIST needs images of at least 16 x 16 pixels, not " +
                                    std::to_string(size));
  }
  return Status::ok();
}

Result<ImagePipeline> ImagePipeline::from_json(const std::string& text) {
  ImagePipeline p;
  try {
    const json j = json::parse(text);
    p.channels = j.at("channels").get<int>();
    p.size = j.at("size").get<int>();
    IMSAT_ASSIGN_OR_RETURN(p.fit, parse_fit(j.at("fit").get<std::string>()));
    IMSAT_RETURN_IF_ERROR(parse_background(j.at("background").get<std::string>(), p.background));
    IMSAT_ASSIGN_OR_RETURN(p.features, parse_features(j.at("features").get<std::string>()));
  } catch (const json::exception& e) {
    return Status::invalid_argument(std::string("image pipeline is not valid: ") + e.what());
  }
  IMSAT_RETURN_IF_ERROR(p.validate());
  return p;
}

Result<Fit> parse_fit(const std::string& name) {
  for (Fit f : {Fit::kPad, Fit::kCrop, Fit::kStretch}) {
    if (name == fit_name(f)) return f;
  }
  return Status::invalid_argument("unknown fit '" + name + "' (pad, crop or stretch)");
}

Result<ImageFeatures> parse_features(const std::string& name) {
  for (ImageFeatures f : {ImageFeatures::kPixels, ImageFeatures::kGist}) {
    if (name == features_name(f)) return f;
  }
  return Status::invalid_argument("unknown image features '" + name + "' (pixels or gist)");
}

Status parse_background(const std::string& text, uint8_t rgb[3]) {
  if (text == "white" || text == "black") {
    std::fill(rgb, rgb + 3, text == "white" ? 255 : 0);
    return Status::ok();
  }
  if (text.size() == 7 && text[0] == '#' &&
      text.find_first_not_of("0123456789abcdefABCDEF", 1) == std::string::npos) {
    for (int i = 0; i < 3; ++i) {
      rgb[i] = static_cast<uint8_t>(std::stoi(text.substr(1 + 2 * i, 2), nullptr, 16));
    }
    return Status::ok();
  }
  return Status::invalid_argument("background colour '" + text +
                                  "' is not white, black or #rrggbb");
}

const char* skip_reason_name(SkipReason r) {
  switch (r) {
    case SkipReason::kNotImage:
      return "not an image";
    case SkipReason::kTruncated:
      return "truncated or damaged";
    case SkipReason::kEmpty:
      return "empty";
    case SkipReason::kTooLarge:
      return "too large";
    case SkipReason::kUnreadable:
      return "unreadable";
    case SkipReason::kDuplicate:
      return "duplicate";
  }
  return "?";
}

#ifdef IMSAT_IMAGE_CODECS

// ---------------------------------------------------------------------------------------------
// Geometry: composite, convert, fit, resize

namespace {

// Resize of a w x h region (row stride in bytes) to ow x oh: area averaging (a box
// filter) when shrinking, bilinear (triangle) when enlarging.
void resize_into(const uint8_t* in, int w, int h, int stride, uint8_t* out, int ow, int oh,
                 int out_stride, int channels) {
  if (w == ow && h == oh) {
    for (int y = 0; y < h; ++y) {
      std::memcpy(out + static_cast<size_t>(y) * out_stride, in + static_cast<size_t>(y) * stride,
                  static_cast<size_t>(w) * channels);
    }
    return;
  }
  const stbir_filter hf = ow < w ? STBIR_FILTER_BOX : STBIR_FILTER_TRIANGLE;
  const stbir_filter vf = oh < h ? STBIR_FILTER_BOX : STBIR_FILTER_TRIANGLE;
  stbir_resize(in, w, h, stride, out, ow, oh, out_stride, STBIR_TYPE_UINT8, channels,
               STBIR_ALPHA_CHANNEL_NONE, 0, STBIR_EDGE_CLAMP, STBIR_EDGE_CLAMP, hf, vf,
               STBIR_COLORSPACE_LINEAR, nullptr);
}

}  // namespace

namespace {

// Pixels with `in_channels` (1 to 4; 2 and 4 with alpha) as `c` channels (1: luma, 3: RGB),
// composited over `background`.
std::vector<uint8_t> to_channels(const uint8_t* pixels, int width, int height, int in_channels,
                                 int c, const uint8_t background[3]) {
  const size_t n = static_cast<size_t>(width) * static_cast<size_t>(height);
  std::vector<uint8_t> flat;
  if (in_channels == c) {
    flat.assign(pixels, pixels + n * static_cast<size_t>(c));  // nothing to convert
  } else if (in_channels == 1 && c == 3) {
    flat.resize(n * 3);
    for (size_t i = 0; i < n; ++i) flat[3 * i] = flat[3 * i + 1] = flat[3 * i + 2] = pixels[i];
  } else {
    flat.resize(n * static_cast<size_t>(c));
    const bool alpha = in_channels == 2 || in_channels == 4;
    const bool colour = in_channels >= 3;
    for (size_t i = 0; i < n; ++i) {
      const uint8_t* px = pixels + i * static_cast<size_t>(in_channels);
      float rgb[3];
      for (int k = 0; k < 3; ++k) rgb[k] = colour ? px[k] : px[0];
      if (alpha) {
        const float a = px[in_channels - 1] / 255.0f;
        for (int k = 0; k < 3; ++k) rgb[k] = a * rgb[k] + (1 - a) * background[k];
      }
      if (c == 1) {
        const float y = colour ? 0.299f * rgb[0] + 0.587f * rgb[1] + 0.114f * rgb[2] : rgb[0];
        flat[i] = static_cast<uint8_t>(std::clamp(std::lround(y), 0L, 255L));
      } else {
        for (int k = 0; k < 3; ++k) {
          flat[i * 3 + k] = static_cast<uint8_t>(std::clamp(std::lround(rgb[k]), 0L, 255L));
        }
      }
    }
  }
  return flat;
}

}  // namespace

std::vector<uint8_t> fit_pixels(const uint8_t* pixels, int width, int height, int in_channels,
                                const ImagePipeline& p) {
  const int c = p.channels;
  const std::vector<uint8_t> flat =
      to_channels(pixels, width, height, in_channels, c, p.background);
  const int s = p.size;
  std::vector<uint8_t> out(static_cast<size_t>(s) * s * c);
  const int stride = width * c;
  if (p.fit == Fit::kStretch) {
    resize_into(flat.data(), width, height, stride, out.data(), s, s, s * c, c);
  } else if (p.fit == Fit::kCrop) {
    const int side = std::min(width, height);
    const int x0 = (width - side) / 2, y0 = (height - side) / 2;
    resize_into(flat.data() + static_cast<size_t>(y0) * stride + static_cast<size_t>(x0) * c, side,
                side, stride, out.data(), s, s, s * c, c);
  } else {
    // Pad: the longer side becomes s, the shorter keeps the aspect ratio (at least 1 pixel), and
    // the picture is centred on the background.
    int ow = s, oh = s;
    if (width > height) {
      oh = std::max(1, static_cast<int>(std::lround(static_cast<double>(height) * s / width)));
    } else if (height > width) {
      ow = std::max(1, static_cast<int>(std::lround(static_cast<double>(width) * s / height)));
    }
    for (size_t i = 0; i < static_cast<size_t>(s) * s; ++i) {
      for (int k = 0; k < c; ++k) {
        out[i * c + k] = c == 1 ? static_cast<uint8_t>(std::lround(0.299f * p.background[0] +
                                                                   0.587f * p.background[1] +
                                                                   0.114f * p.background[2]))
                                : p.background[k];
      }
    }
    const int x0 = (s - ow) / 2, y0 = (s - oh) / 2;
    resize_into(flat.data(), width, height, stride,
                out.data() + static_cast<size_t>(y0) * s * c + static_cast<size_t>(x0) * c, ow, oh,
                s * c, c);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// GIST

namespace {

using cplx = std::complex<double>;

// FFTW plans for n x n transforms, made once per size and direction (planning is not thread-safe;
// executing a plan on other arrays is).
struct PlanCache {
  std::mutex mutex;
  std::map<std::pair<int, int>, fftw_plan> plans;
  ~PlanCache() {
    for (auto& [key, plan] : plans) fftw_destroy_plan(plan);
    fftw_cleanup();  // FFTW's own planner memory, so leak checkers see none
  }
};

fftw_plan plan_for(int n, int direction) {
  static PlanCache cache;
  std::lock_guard lock(cache.mutex);
  auto& plan = cache.plans[{n, direction}];
  if (plan == nullptr) {
    std::vector<cplx> a(static_cast<size_t>(n) * n), b(a.size());
    plan = fftw_plan_dft_2d(n, n, reinterpret_cast<fftw_complex*>(a.data()),
                            reinterpret_cast<fftw_complex*>(b.data()), direction,
                            FFTW_ESTIMATE | FFTW_UNALIGNED);
  }
  return plan;
}

// out = FFT(in) (forward) or the normalised inverse.
void fft2(int n, const std::vector<cplx>& in, std::vector<cplx>* out, bool inverse) {
  out->resize(in.size());
  fftw_execute_dft(plan_for(n, inverse ? FFTW_BACKWARD : FFTW_FORWARD),
                   reinterpret_cast<fftw_complex*>(const_cast<cplx*>(in.data())),
                   reinterpret_cast<fftw_complex*>(out->data()));
  if (inverse) {
    const double scale = 1.0 / (static_cast<double>(n) * n);
    for (cplx& v : *out) v *= scale;
  }
}

// Frequency of FFT index u in an n-point transform (MATLAB's fftshift(-n/2 : n/2 - 1)).
double freq(int u, int n) { return u < n / 2 ? u : u - n; }

// MATLAB's padarray(x, [p p], 'symmetric') of a side x side image, then 'post' padding (also
// symmetric) up to n x n.
std::vector<cplx> pad_symmetric(const std::vector<double>& x, int side, int p, int n) {
  auto mirror = [side](int i) {
    // Reflect with the edge repeated, as often as needed.
    const int period = 2 * side;
    i %= period;
    if (i < 0) i += period;
    return i < side ? i : period - 1 - i;
  };
  std::vector<cplx> out(static_cast<size_t>(n) * n);
  for (int y = 0; y < n; ++y) {
    for (int xx = 0; xx < n; ++xx) {
      out[static_cast<size_t>(y) * n + xx] =
          x[static_cast<size_t>(mirror(y - p)) * side + mirror(xx - p)];
    }
  }
  return out;
}

// LMgist's prefilt: log, whitening by a Gaussian high-pass (fc = 4) and local contrast
// normalisation, on a symmetric 5-pixel border.
std::vector<double> prefilter(const std::vector<double>& img, int side) {
  const int w = 5;
  const double fc = 4, s1 = fc / std::sqrt(std::log(2.0));
  std::vector<double> logged(img.size());
  for (size_t i = 0; i < img.size(); ++i) logged[i] = std::log(img[i] + 1);
  int n = side + 2 * w;
  n += n % 2;
  std::vector<cplx> x = pad_symmetric(logged, side, w, n);
  std::vector<double> gf(x.size());
  for (int v = 0; v < n; ++v) {
    for (int u = 0; u < n; ++u) {
      const double fx = freq(u, n), fy = freq(v, n);
      gf[static_cast<size_t>(v) * n + u] = std::exp(-(fx * fx + fy * fy) / (s1 * s1));
    }
  }
  std::vector<cplx> f, low;
  fft2(n, x, &f, false);
  for (size_t i = 0; i < f.size(); ++i) f[i] *= gf[i];
  fft2(n, f, &low, true);
  std::vector<cplx> out(x.size()), sq(x.size());
  for (size_t i = 0; i < x.size(); ++i) {
    out[i] = x[i].real() - low[i].real();
    sq[i] = out[i].real() * out[i].real();
  }
  fft2(n, sq, &f, false);
  for (size_t i = 0; i < f.size(); ++i) f[i] *= gf[i];
  fft2(n, f, &low, true);
  std::vector<double> cropped(static_cast<size_t>(side) * side);
  for (int y = 0; y < side; ++y) {
    for (int xx = 0; xx < side; ++xx) {
      const size_t i = static_cast<size_t>(y + w) * n + (xx + w);
      const double local_std = std::sqrt(std::abs(low[i]));
      cropped[static_cast<size_t>(y) * side + xx] = out[i].real() / (0.2 + local_std);
    }
  }
  return cropped;
}

// LMgist's createGabor for an n x n transform: filter l = scale * 8 + orientation.
const std::vector<std::vector<double>>& gabor_bank(int n) {
  static std::mutex mutex;
  static std::map<int, std::vector<std::vector<double>>> banks;
  std::lock_guard lock(mutex);
  auto& bank = banks[n];
  if (!bank.empty()) return bank;
  const double pi = std::acos(-1.0);
  for (int scale = 0; scale < kGistScales; ++scale) {
    for (int o = 0; o < kGistOrientations; ++o) {
      const double p1 = 0.35, p2 = 0.3 / std::pow(1.85, scale);
      const double p3 = 16.0 * kGistOrientations * kGistOrientations / (32.0 * 32.0);
      const double p4 = pi / kGistOrientations * o;
      std::vector<double> g(static_cast<size_t>(n) * n);
      for (int v = 0; v < n; ++v) {
        for (int u = 0; u < n; ++u) {
          const double fx = freq(u, n), fy = freq(v, n);
          const double fr = std::sqrt(fx * fx + fy * fy);
          double tr = std::atan2(fy, fx) + p4;
          if (tr < -pi) tr += 2 * pi;
          if (tr > pi) tr -= 2 * pi;
          const double a = fr / n / p2 - 1;
          g[static_cast<size_t>(v) * n + u] = std::exp(-10 * p1 * a * a - 2 * p3 * pi * tr * tr);
        }
      }
      bank.push_back(std::move(g));
    }
  }
  return bank;
}

}  // namespace

std::vector<float> gist_descriptor(const float* image, int side) {
  // LMgist scales the image to [0, 255] first.
  std::vector<double> img(image, image + static_cast<size_t>(side) * side);
  const auto [lo, hi] = std::minmax_element(img.begin(), img.end());
  const double min = *lo, range = *hi - *lo;
  for (double& v : img) v = range > 0 ? 255 * (v - min) / range : 0;
  const std::vector<double> pre = prefilter(img, side);
  const int border = 32;  // LMgist's boundaryExtension
  const int n = side + 2 * border;
  std::vector<cplx> f;
  fft2(n, pad_symmetric(pre, side, border, n), &f, false);
  const auto& bank = gabor_bank(n);
  std::vector<float> out;
  out.reserve(kGistPerChannel);
  std::vector<cplx> filtered(f.size()), response;
  int edges[kGistBlocks + 1];
  for (int k = 0; k <= kGistBlocks; ++k) edges[k] = k * side / kGistBlocks;
  for (const std::vector<double>& g : bank) {
    for (size_t i = 0; i < f.size(); ++i) filtered[i] = f[i] * g[i];
    fft2(n, filtered, &response, true);
    for (int bc = 0; bc < kGistBlocks; ++bc) {
      for (int br = 0; br < kGistBlocks; ++br) {
        double sum = 0;
        for (int y = edges[br]; y < edges[br + 1]; ++y) {
          for (int x = edges[bc]; x < edges[bc + 1]; ++x) {
            sum += std::abs(response[static_cast<size_t>(y + border) * n + (x + border)]);
          }
        }
        const int cells = (edges[br + 1] - edges[br]) * (edges[bc + 1] - edges[bc]);
        out.push_back(static_cast<float>(sum / std::max(cells, 1)));
      }
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Decoding and the whole pipeline

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

}  // namespace

Result<std::vector<float>> preprocess_image(const std::string& encoded, const ImagePipeline& p,
                                            size_t max_pixels, SkipReason* reason) {
  auto fail = [&](SkipReason r, const std::string& what) -> Status {
    if (reason != nullptr) *reason = r;
    return Status::invalid_argument(what);
  };
  if (encoded.empty()) return fail(SkipReason::kEmpty, "the image is empty (0 bytes)");
  if (encoded.size() > (size_t{1} << 30)) {
    return fail(SkipReason::kTooLarge, "the image file is over 1 GiB");
  }
  const auto* bytes = reinterpret_cast<const stbi_uc*>(encoded.data());
  const int len = static_cast<int>(encoded.size());
  int w = 0, h = 0, comp = 0;
  if (stbi_info_from_memory(bytes, len, &w, &h, &comp) == 0) {
    if (has_image_signature(encoded)) {
      return fail(SkipReason::kTruncated,
                  std::string("cannot decode the image: its header is cut short or damaged (") +
                      stbi_failure_reason() + ")");
    }
    return fail(SkipReason::kNotImage,
                std::string("not an image stb can read (") + stbi_failure_reason() + ")");
  }
  if (w <= 0 || h <= 0) return fail(SkipReason::kNotImage, "the image has no pixels");
  if (max_pixels > 0 && static_cast<uint64_t>(w) * static_cast<uint64_t>(h) > max_pixels) {
    return fail(SkipReason::kTooLarge, "the image declares " + std::to_string(w) + " x " +
                                           std::to_string(h) + " pixels; the limit is " +
                                           std::to_string(max_pixels) + " pixels");
  }
  std::vector<uint8_t> fitted;
  std::vector<uint8_t> jpeg;
  std::string error;
  const int s = p.size;
  auto covers = [&](int sw, int sh) {
    switch (p.fit) {
      case Fit::kStretch:
        return sw >= s && sh >= s;
      case Fit::kCrop:
        return std::min(sw, sh) >= s;
      case Fit::kPad:
        return std::max(sw, sh) >= s;
    }
    return true;
  };
  switch (decode_jpeg(encoded, p.channels, covers, &jpeg, &w, &h, &error)) {
    case Turbo::kDecoded:
      fitted = fit_pixels(jpeg.data(), w, h, p.channels, p);
      break;
    case Turbo::kDamaged:
      return fail(SkipReason::kTruncated, "cannot decode the JPEG: " + error);
    case Turbo::kNotForTurbo: {
      if (pnm_is_short(encoded)) {
        return fail(SkipReason::kTruncated, "cannot decode the image: its pixel data is cut short");
      }
      std::unique_ptr<stbi_uc, void (*)(void*)> pixels(
          stbi_load_from_memory(bytes, len, &w, &h, &comp, 0), stbi_image_free);
      if (pixels == nullptr) {
        return fail(SkipReason::kTruncated,
                    std::string("cannot decode the image: ") + stbi_failure_reason());
      }
      fitted = fit_pixels(pixels.get(), w, h, comp, p);
      break;
    }
  }
  if (p.features == ImageFeatures::kPixels) {
    return std::vector<float>(fitted.begin(), fitted.end());
  }
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

Result<std::string> make_thumbnail(const std::string& encoded, int side, size_t max_pixels) {
  if (side <= 0) return Status::invalid_argument("a thumbnail needs a positive side");
  const auto* bytes = reinterpret_cast<const stbi_uc*>(encoded.data());
  const int len = static_cast<int>(std::min<size_t>(encoded.size(), INT32_MAX));
  int w = 0, h = 0, comp = 0;
  if (encoded.empty() || stbi_info_from_memory(bytes, len, &w, &h, &comp) == 0) {
    return Status::invalid_argument("not an image");
  }
  if (max_pixels > 0 && static_cast<uint64_t>(w) * static_cast<uint64_t>(h) > max_pixels) {
    return Status::invalid_argument("the image has too many pixels");
  }
  std::vector<uint8_t> rgb;
  std::string error;
  std::vector<uint8_t> jpeg;
  const auto covers = [side](int sw, int sh) { return std::max(sw, sh) >= side; };
  const Turbo t = decode_jpeg(encoded, 3, covers, &jpeg, &w, &h, &error);
  if (t == Turbo::kDamaged) return Status::invalid_argument(error);
  if (t == Turbo::kDecoded) {
    rgb = std::move(jpeg);
  } else {
    if (pnm_is_short(encoded)) return Status::invalid_argument("the pixel data is cut short");
    std::unique_ptr<stbi_uc, void (*)(void*)> pixels(
        stbi_load_from_memory(bytes, len, &w, &h, &comp, 0), stbi_image_free);
    if (pixels == nullptr) return Status::invalid_argument(stbi_failure_reason());
    const uint8_t white[3] = {255, 255, 255};
    rgb = to_channels(pixels.get(), w, h, comp, 3, white);
  }
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

#else  // IMSAT_IMAGE_CODECS

// A build without stb, libturbojpeg and FFTW (IMSAT_LEARN_ONLY on a machine whose only library
// is LibTorch, such as a lent GPU machine): the pipeline's description and the folder walking
// remain, every decode is refused with the reason.
namespace {
constexpr const char* kNoCodecs =
    "this imsat was built without image support (stb, libturbojpeg and FFTW were not found)";
}  // namespace

std::vector<uint8_t> fit_pixels(const uint8_t*, int, int, int, const ImagePipeline&) {
  throw std::logic_error(kNoCodecs);
}

std::vector<float> gist_descriptor(const float*, int) { throw std::logic_error(kNoCodecs); }

Result<std::vector<float>> preprocess_image(const std::string&, const ImagePipeline&, size_t,
                                            SkipReason* reason) {
  if (reason != nullptr) *reason = SkipReason::kUnreadable;
  return Status::invalid_argument(kNoCodecs);
}

Result<std::string> make_thumbnail(const std::string&, int, size_t) {
  return Status::invalid_argument(kNoCodecs);
}

#endif  // IMSAT_IMAGE_CODECS

// ---------------------------------------------------------------------------------------------
// Folders and manifests

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

// A path's bytes as a key or label that JSON can carry: valid UTF-8 kept, every other byte
// written as %XX (and '%' itself as %25, so the mapping is one to one).
std::string printable(const std::string& raw) {
  std::string out;
  size_t i = 0;
  auto hex = [&](unsigned char c) {
    char buf[4];
    std::snprintf(buf, sizeof(buf), "%%%02X", c);
    out += buf;
  };
  while (i < raw.size()) {
    const auto c = static_cast<unsigned char>(raw[i]);
    size_t len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    bool ok = len > 0 && i + len <= raw.size() && !(len == 2 && c < 0xC2);
    for (size_t k = 1; ok && k < len; ++k) {
      ok = (static_cast<unsigned char>(raw[i + k]) & 0xC0) == 0x80;
    }
    if (!ok) {
      hex(c);
      ++i;
    } else if (c == '%') {
      hex(c);
      ++i;
    } else {
      out.append(raw, i, len);
      i += len;
    }
  }
  return out;
}

struct Source {
  std::string file;      // path to open
  std::string relative;  // as shown and keyed
  std::string key;
  std::string label_name;  // empty: none
  int32_t label = -1;
  json metadata = json::object();
  bool duplicate = false;
};

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

// Decodes every source on all cores; rows in source order, skipped sources reported.
Result<Dataset> decode_all(std::vector<Source> sources, const std::string& origin,
                           const ImageImport& settings, ImportReport* report) {
  IMSAT_RETURN_IF_ERROR(settings.pipeline.validate());
  const size_t dim = settings.pipeline.output_dim();
  const size_t total = sources.size();
  std::vector<float> values(total * dim);
  std::vector<char> ok(total, 0);
  std::vector<SkipReason> reasons(total, SkipReason::kNotImage);
  std::vector<std::string> details(total);
  std::vector<std::string> thumbs(settings.thumbnail_side > 0 ? total : 0);
  std::atomic<size_t> next{0}, done{0};
  std::atomic<bool> stop{false};
  std::mutex progress_mutex;
  auto work = [&] {
    while (!stop.load(std::memory_order_relaxed)) {
      const size_t i = next.fetch_add(1);
      if (i >= total) break;
      SkipReason reason = SkipReason::kNotImage;
      if (sources[i].duplicate) {
        reasons[i] = SkipReason::kDuplicate;
        details[i] = "the same file as another path (pass --keep-duplicates to read it again)";
      } else {
        Result<std::string> bytes = read_file(sources[i].file, &reason);
        Result<std::vector<float>> row =
            bytes.is_ok()
                ? preprocess_image(*bytes, settings.pipeline, settings.max_pixels, &reason)
                : Result<std::vector<float>>(bytes.status());
        if (row.is_ok()) {
          std::copy(row->begin(), row->end(), values.begin() + static_cast<ptrdiff_t>(i * dim));
          ok[i] = 1;
          if (settings.thumbnail_side > 0) {
            Result<std::string> t = make_thumbnail(*bytes, settings.thumbnail_side);
            if (t.is_ok()) thumbs[i] = std::move(t).value();
          }
        } else {
          reasons[i] = reason;
          details[i] = row.status().message();
          if (settings.strict) stop = true;
        }
      }
      const size_t d = done.fetch_add(1) + 1;
      if (settings.on_progress && (d % 64 == 0 || d == total)) {
        std::lock_guard lock(progress_mutex);
        settings.on_progress(d, total);
      }
    }
  };
  const int threads = settings.threads > 0
                          ? settings.threads
                          : std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  std::vector<std::thread> pool;
  for (int t = 1; t < threads; ++t) pool.emplace_back(work);
  work();
  for (std::thread& t : pool) t.join();

  Dataset d;
  d.source = origin;
  d.cols = dim;
  d.item_shape = settings.pipeline.output_shape();
  d.uint8_pixels = settings.pipeline.outputs_pixels();
  d.image_pipeline = settings.pipeline.to_json();
  ImportReport local;
  ImportReport& r = report != nullptr ? *report : local;
  bool any_label = false, all_labelled = true;
  std::set<std::string> names;
  for (size_t i = 0; i < total; ++i) {
    if (!ok[i]) continue;
    if (sources[i].label_name.empty() && sources[i].label < 0) {
      all_labelled = false;
    } else {
      any_label = true;
    }
    if (!sources[i].label_name.empty()) names.insert(sources[i].label_name);
  }
  const std::vector<std::string> sorted_names(names.begin(), names.end());
  size_t row = 0;
  for (size_t i = 0; i < total; ++i) {
    if (!ok[i]) {
      if (details[i].empty()) continue;  // never reached after a strict stop
      if (settings.strict) {
        return Status::invalid_argument(sources[i].relative + ": " + skip_reason_name(reasons[i]) +
                                        ": " + details[i] + " (--strict)");
      }
      r.skipped[reasons[i]]++;
      r.skip_lines.push_back(sources[i].relative + ": " + skip_reason_name(reasons[i]) + ": " +
                             details[i]);
      continue;
    }
    if (row != i) {
      std::copy(values.begin() + static_cast<ptrdiff_t>(i * dim),
                values.begin() + static_cast<ptrdiff_t>((i + 1) * dim),
                values.begin() + static_cast<ptrdiff_t>(row * dim));
    }
    json meta = std::move(sources[i].metadata);
    meta["path"] = sources[i].relative;
    if (any_label && all_labelled) {
      int32_t label = sources[i].label;
      if (!sources[i].label_name.empty()) {
        label = static_cast<int32_t>(
            std::lower_bound(sorted_names.begin(), sorted_names.end(), sources[i].label_name) -
            sorted_names.begin());
        meta["label_name"] = sources[i].label_name;
      }
      d.labels.push_back(label);
    }
    d.keys.push_back(std::move(sources[i].key));
    if (!thumbs.empty()) d.thumbnails.push_back(std::move(thumbs[i]));
    d.metadata.push_back(meta.dump());
    ++row;
  }
  values.resize(row * dim);
  values.shrink_to_fit();
  d.values = std::move(values);
  d.rows = row;
  r.read = row;
  if (any_label && all_labelled) d.label_names = sorted_names;
  if (d.rows == 0) {
    return Status::invalid_argument(origin + ": holds no readable images (" + r.summary() + ")");
  }
  return d;
}

}  // namespace

Result<Dataset> read_image_folder(const std::string& folder, const ImageImport& settings,
                                  ImportReport* report) {
  std::error_code ec;
  if (!fs::is_directory(folder, ec)) return Status::not_found(folder + ": no such folder");
  std::vector<std::pair<std::string, std::string>> files;  // (relative bytes, path)
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
    files.emplace_back(p.lexically_relative(folder).string(), p.string());
  }
  std::sort(files.begin(), files.end());
  std::vector<Source> sources;
  for (auto& [relative, path] : files) {
    Source s;
    s.file = path;
    s.relative = printable(relative);
    s.key = s.relative;
    const size_t slash = relative.find('/');
    if (slash != std::string::npos) s.label_name = printable(relative.substr(0, slash));
    sources.push_back(std::move(s));
  }
  if (!settings.keep_duplicates) {
    // A file reached by several paths is read once: by its own path when the folder holds it
    // (not through a symbolic link), otherwise by the first link in path order.
    std::set<std::pair<dev_t, ino_t>> seen;
    std::vector<char> direct(sources.size());
    for (size_t i = 0; i < sources.size(); ++i) {
      const fs::path p = fs::absolute(sources[i].file, ec).lexically_normal();
      direct[i] = fs::canonical(p, ec) == p;
    }
    for (int pass = 0; pass < 2; ++pass) {
      for (size_t i = 0; i < sources.size(); ++i) {
        struct stat st {};
        if (direct[i] != (pass == 0) || ::stat(sources[i].file.c_str(), &st) != 0) continue;
        sources[i].duplicate = !seen.insert({st.st_dev, st.st_ino}).second;
      }
    }
  }
  if (sources.empty()) return Status::invalid_argument(folder + ": holds no files");
  return decode_all(std::move(sources), folder, settings, report);
}

namespace {

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

}  // namespace

Result<Dataset> read_image_manifest(const ImageImport& settings, ImportReport* report) {
  const std::string& manifest = settings.manifest;
  std::ifstream in(manifest);
  if (!in) return Status::not_found(manifest + ": cannot open the manifest");
  const fs::path base = fs::path(manifest).parent_path();
  std::vector<Source> sources;
  std::string line;
  size_t line_no = 0;
  std::vector<std::string> header;
  bool json_lines = false;
  std::set<std::string> keys;
  std::set<std::pair<dev_t, ino_t>> seen_files;
  while (std::getline(in, line)) {
    ++line_no;
    const std::string where = manifest + " line " + std::to_string(line_no);
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    json row = json::object();
    if (line_no == 1 || (sources.empty() && header.empty() && !json_lines)) {
      json_lines = line[line.find_first_not_of(" \t")] == '{';
      if (!json_lines) {
        IMSAT_ASSIGN_OR_RETURN(header, csv_fields(line));
        if (std::find(header.begin(), header.end(), "path") == header.end()) {
          return Status::invalid_argument(where + ": the CSV header has no 'path' column");
        }
        continue;
      }
    }
    if (json_lines) {
      try {
        row = json::parse(line);
      } catch (const json::exception& e) {
        return Status::invalid_argument(where + ": not a JSON object: " + e.what());
      }
      if (!row.is_object()) return Status::invalid_argument(where + ": not a JSON object");
    } else {
      Result<std::vector<std::string>> fields = csv_fields(line);
      if (!fields.is_ok())
        return Status::invalid_argument(where + ": " + fields.status().message());
      if (fields->size() != header.size()) {
        return Status::invalid_argument(where + ": " + std::to_string(fields->size()) +
                                        " fields, the header has " + std::to_string(header.size()));
      }
      for (size_t k = 0; k < header.size(); ++k) row[header[k]] = (*fields)[k];
    }
    if (!row.contains("path") || !row["path"].is_string() ||
        row["path"].get<std::string>().empty()) {
      return Status::invalid_argument(where + ": no 'path'");
    }
    Source s;
    const std::string path = row["path"].get<std::string>();
    s.relative = printable(path);
    s.file = fs::path(path).is_absolute() ? path : (base / path).string();
    s.key = s.relative;
    if (row.contains("key")) {
      if (!row["key"].is_string() || row["key"].get<std::string>().empty()) {
        return Status::invalid_argument(where + ": 'key' must be a non-empty string");
      }
      s.key = row["key"].get<std::string>();
    }
    if (!keys.insert(s.key).second) {
      return Status::invalid_argument(where + ": key '" + s.key + "' appears twice");
    }
    if (row.contains("label")) {
      const json& l = row["label"];
      if (l.is_number_integer() && l.get<int64_t>() >= 0 && l.get<int64_t>() <= INT32_MAX) {
        s.label = static_cast<int32_t>(l.get<int64_t>());
      } else if (l.is_string() && !l.get<std::string>().empty()) {
        const std::string text = l.get<std::string>();
        if (text.find_first_not_of("0123456789") == std::string::npos && text.size() < 10) {
          s.label = std::stoi(text);
        } else {
          s.label_name = text;
        }
      } else if (!l.is_null() && !(l.is_string() && l.get<std::string>().empty())) {
        return Status::invalid_argument(where +
                                        ": 'label' must be a non-negative integer or a "
                                        "name");
      }
    }
    for (auto& [name, value] : row.items()) {
      if (name != "path" && name != "key" && name != "label") s.metadata[name] = value;
    }
    struct stat st {};
    if (!settings.keep_duplicates && ::stat(s.file.c_str(), &st) == 0) {
      s.duplicate = !seen_files.insert({st.st_dev, st.st_ino}).second;
    }
    sources.push_back(std::move(s));
  }
  if (sources.empty()) return Status::invalid_argument(manifest + ": lists no images");
  bool named = false, numbered = false;
  for (const Source& s : sources) {
    named |= !s.label_name.empty();
    numbered |= s.label >= 0;
  }
  if (named && numbered) {
    return Status::invalid_argument(manifest +
                                    ": labels mix numbers and names; use one or the other");
  }
  return decode_all(std::move(sources), manifest, settings, report);
}

}  // namespace imsat::io
