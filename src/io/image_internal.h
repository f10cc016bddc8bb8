// What the image pipeline's files share inside imsat_io: the resampling and channel conversion
// under fit_pixels, which thumbnails use too, and the message of a build without codecs.
#pragma once

#include <cstdint>
#include <vector>

#include "io/images.h"

namespace imsat::io {

// A build without stb, libturbojpeg and FFTW (IMSAT_LEARN_ONLY on a machine whose only library
// is LibTorch, such as a lent GPU machine) keeps the pipeline's description and the folder
// walking; every decode is refused with this reason.
constexpr const char* kNoCodecs =
    "this imsat was built without image support (stb, libturbojpeg and FFTW were not found)";

// Resize of a w x h region (row stride in bytes) to ow x oh: area averaging (a box filter) when
// shrinking, bilinear (triangle) when enlarging.
void resize_into(const uint8_t* in, int w, int h, int stride, uint8_t* out, int ow, int oh,
                 int out_stride, int channels);

// Pixels with `in_channels` (1 to 4; 2 and 4 with alpha) as `c` channels (1: luma, 3: RGB),
// composited over `background`.
std::vector<uint8_t> to_channels(const uint8_t* pixels, int width, int height, int in_channels,
                                 int c, const uint8_t background[3]);

}  // namespace imsat::io
