// Uploaded images to model inputs, with Debian's stb (stb_image, stb_image_resize).
#include "query/image.h"

#include <stb/stb_image.h>
#include <stb/stb_image_resize.h>
#include <stb/stb_image_write.h>

#include <algorithm>
#include <limits>
#include <memory>

namespace imsat::query {

Result<std::vector<float>> image_to_input(const std::string& encoded, const learn::Model& model,
                                          bool invert, size_t max_pixels) {
  const std::vector<size_t> shape = model.input_shape();
  if (!model.takes_pixels() || shape.size() != 2) {
    return Status::invalid_argument("the model was not trained on images (input shape " +
                                    std::to_string(model.input_dim()) + " features)");
  }
  if (encoded.empty()) return Status::invalid_argument("image is empty");
  if (encoded.size() > static_cast<size_t>(std::numeric_limits<int>::max())) {
    return Status::invalid_argument("image is too large");
  }
  int w = 0, h = 0, channels = 0;
  if (max_pixels > 0 &&
      stbi_info_from_memory(reinterpret_cast<const stbi_uc*>(encoded.data()),
                            static_cast<int>(encoded.size()), &w, &h, &channels) != 0 &&
      static_cast<uint64_t>(w) * static_cast<uint64_t>(h) > max_pixels) {
    return Status::invalid_argument("the image declares " + std::to_string(w) + " x " +
                                    std::to_string(h) + " pixels; the limit is " +
                                    std::to_string(max_pixels) + " pixels");
  }
  std::unique_ptr<stbi_uc, void (*)(void*)> pixels(
      stbi_load_from_memory(reinterpret_cast<const stbi_uc*>(encoded.data()),
                            static_cast<int>(encoded.size()), &w, &h, &channels, 1),
      stbi_image_free);
  if (pixels == nullptr) {
    return Status::invalid_argument(std::string("cannot decode the image: ") +
                                    stbi_failure_reason());
  }
  const int out_h = static_cast<int>(shape[0]), out_w = static_cast<int>(shape[1]);
  std::vector<unsigned char> resized(static_cast<size_t>(out_w) * static_cast<size_t>(out_h));
  if (w == out_w && h == out_h) {
    std::copy(pixels.get(), pixels.get() + resized.size(), resized.begin());
  } else if (!stbir_resize_uint8(pixels.get(), w, h, 0, resized.data(), out_w, out_h, 0, 1)) {
    return Status::invalid_argument("cannot resize the image from " + std::to_string(w) + "x" +
                                    std::to_string(h));
  }
  std::vector<float> out(resized.size());
  for (size_t i = 0; i < resized.size(); ++i) {
    out[i] = invert ? 255.0f - resized[i] : static_cast<float>(resized[i]);
  }
  return out;
}

Result<std::string> input_to_png(const std::vector<float>& input, const learn::Model& model) {
  const std::vector<size_t> shape = model.input_shape();
  if (!model.takes_pixels() || shape.size() != 2 || model.input_dim() != input.size()) {
    return Status::invalid_argument("not an image of the model's input shape");
  }
  const int h = static_cast<int>(shape[0]), w = static_cast<int>(shape[1]);
  std::vector<unsigned char> pixels(input.size());
  for (size_t i = 0; i < pixels.size(); ++i) {
    pixels[i] = static_cast<unsigned char>(std::clamp(input[i], 0.0f, 255.0f));
  }
  std::string png;
  const int ok = stbi_write_png_to_func(
      [](void* ctx, void* data, int size) {
        static_cast<std::string*>(ctx)->append(static_cast<const char*>(data),
                                               static_cast<size_t>(size));
      },
      &png, w, h, 1, pixels.data(), w);
  if (ok == 0) return Status::internal("PNG encoding failed");
  return png;
}

}  // namespace imsat::query
