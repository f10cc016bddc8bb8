// Uploaded images to model inputs, with Debian's stb (stb_image, stb_image_resize).
#include "query/image.h"

#include <stb/stb_image_write.h>

#include <algorithm>
#include <limits>
#include <memory>

namespace imsat::query {

Result<std::vector<float>> image_to_input(const std::string& encoded, const learn::Model& model,
                                          bool invert, size_t max_pixels) {
  IMSAT_ASSIGN_OR_RETURN(const io::ImagePipeline pipeline, model.image_input());
  if (encoded.size() > static_cast<size_t>(std::numeric_limits<int>::max())) {
    return Status::invalid_argument("image is too large");
  }
  IMSAT_ASSIGN_OR_RETURN(std::vector<float> out,
                         io::preprocess_image(encoded, pipeline, max_pixels));
  if (invert && pipeline.outputs_pixels()) {
    for (float& v : out) v = 255.0f - v;
  }
  return out;
}

Result<std::string> input_to_png(const std::vector<float>& input, const learn::Model& model) {
  const std::vector<size_t> shape = model.input_shape();
  const int channels = shape.size() == 3 ? static_cast<int>(shape[2]) : 1;
  if (!model.takes_pixels() || (shape.size() != 2 && !(shape.size() == 3 && channels == 3)) ||
      model.input_dim() != input.size()) {
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
      &png, w, h, channels, pixels.data(), w * channels);
  if (ok == 0) return Status::internal("PNG encoding failed");
  return png;
}

}  // namespace imsat::query
