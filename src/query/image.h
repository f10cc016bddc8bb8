// Uploaded images to model inputs.
#pragma once

#include <string>
#include <vector>

#include "common/status.h"
#include "learn/learn.h"

namespace imsat::query {

// Decodes a PNG or JPEG (or BMP, GIF, TGA, PNM) image to the model's input through the image
// pipeline it records (learn::Model::image_input: for IDX-trained models grey pixels stretched to
// their square size). `invert` (pixel front-end only) turns dark-on-light pictures into the
// light-on-dark style of MNIST-like data.
// Errors: InvalidArgument for undecodable or empty data, or a model that does not take images.
// `max_pixels` > 0 refuses (InvalidArgument) an image whose header declares more pixels, before
// it is decoded.
Result<std::vector<float>> image_to_input(const std::string& encoded, const learn::Model& model,
                                          bool invert = false, size_t max_pixels = 0);

// A model input (pixel intensities 0..255 in the model's H x W or H x W x 3 shape) drawn as a PNG.
// InvalidArgument when the model does not take images or the sizes differ.
Result<std::string> input_to_png(const std::vector<float>& input, const learn::Model& model);

}  // namespace imsat::query
