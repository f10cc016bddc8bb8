// Test helper: encode pixels as a PNG in memory (Debian's stb).
#pragma once

#include <stb/stb_image_write.h>

#include <string>
#include <vector>

namespace imsat::testing {

// A w x h PNG of 8-bit pixels with `channels` channels, rows packed.
inline std::string png(int w, int h, int channels, const std::vector<unsigned char>& pixels) {
  std::string out;
  stbi_write_png_to_func(
      [](void* ctx, void* data, int size) {
        static_cast<std::string*>(ctx)->append(static_cast<const char*>(data),
                                               static_cast<size_t>(size));
      },
      &out, w, h, channels, pixels.data(), w * channels);
  return out;
}

}  // namespace imsat::testing
