// The pipeline's geometric part on decoded pixels: composite transparency, convert to grey or RGB,
// fit the aspect ratio and resize (stb_image_resize).
#ifdef IMSAT_IMAGE_CODECS
#include <stb/stb_image_resize.h>
#endif

#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>

#include "io/image_internal.h"

namespace imsat::io {

#ifdef IMSAT_IMAGE_CODECS

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

#else  // IMSAT_IMAGE_CODECS

std::vector<uint8_t> fit_pixels(const uint8_t*, int, int, int, const ImagePipeline&) {
  throw std::logic_error(kNoCodecs);
}

#endif  // IMSAT_IMAGE_CODECS

}  // namespace imsat::io
