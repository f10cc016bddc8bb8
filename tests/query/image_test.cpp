// Uploaded images to model inputs: decoding, grayscale, resizing, inversion and bad data.
#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "query/query.h"
#include "support/png.h"

namespace {

namespace L = imsat::learn;
namespace Q = imsat::query;

// A hash model over 4 x 4 pixel images (LSH: no training time).
L::Model pixel_model() {
  L::Dataset d;
  d.rows = 64;
  d.cols = 16;
  d.item_shape = {4, 4};
  d.uint8_pixels = true;
  std::mt19937 rng(1);
  for (size_t i = 0; i < d.rows * d.cols; ++i) d.values.push_back(float(rng() % 256));
  L::TrainConfig c;
  c.method = L::Method::kLsh;
  c.bits = 8;
  return std::move(L::train(d, c)).value();
}

using imsat::testing::png;

TEST(ImageToInput, DecodesResizesInvertsAndRejectsBadData) {
  L::Model model = pixel_model();
  ASSERT_TRUE(model.takes_pixels());
  std::vector<unsigned char> gray(16);
  for (int i = 0; i < 16; ++i) gray[static_cast<size_t>(i)] = static_cast<unsigned char>(i * 16);
  auto same = Q::image_to_input(png(4, 4, 1, gray), model);
  ASSERT_TRUE(same.is_ok()) << same.status().to_string();
  for (size_t i = 0; i < 16; ++i) EXPECT_EQ((*same)[i], gray[i]);

  auto inverted = Q::image_to_input(png(4, 4, 1, gray), model, /*invert=*/true);
  ASSERT_TRUE(inverted.is_ok());
  for (size_t i = 0; i < 16; ++i) EXPECT_EQ((*inverted)[i], 255 - gray[i]);

  // An 8 x 8 RGB picture made of 2 x 2 gray blocks shrinks back to about the 4 x 4 original.
  std::vector<unsigned char> rgb(8 * 8 * 3);
  for (int y = 0; y < 8; ++y) {
    for (int x = 0; x < 8; ++x) {
      for (int c = 0; c < 3; ++c)
        rgb[static_cast<size_t>((y * 8 + x) * 3 + c)] =
            gray[static_cast<size_t>((y / 2) * 4 + x / 2)];
    }
  }
  auto shrunk = Q::image_to_input(png(8, 8, 3, rgb), model);
  ASSERT_TRUE(shrunk.is_ok()) << shrunk.status().to_string();
  ASSERT_EQ(shrunk->size(), 16u);
  for (size_t i = 0; i < 16; ++i) EXPECT_NEAR((*shrunk)[i], gray[i], 24.0) << i;

  const std::string good = png(4, 4, 1, gray);
  auto truncated = Q::image_to_input(good.substr(0, good.size() / 2), model);
  EXPECT_EQ(truncated.status().code(), imsat::Status::Code::kInvalidArgument);
  EXPECT_NE(truncated.status().message().find("cannot decode"), std::string::npos);
  EXPECT_FALSE(Q::image_to_input("", model).is_ok());
  EXPECT_FALSE(Q::image_to_input("GIF89a but not really", model).is_ok());

  // A model over plain features does not take images.
  L::Dataset f;
  f.rows = 32;
  f.cols = 5;
  f.item_shape = {5};
  for (size_t i = 0; i < f.rows * f.cols; ++i) f.values.push_back(float(i % 7));
  L::TrainConfig c;
  c.method = L::Method::kLsh;
  c.bits = 8;
  L::Model features = std::move(L::train(f, c)).value();
  auto refused = Q::image_to_input(good, features);
  EXPECT_NE(refused.status().message().find("not trained on images"), std::string::npos);
}

}  // namespace
