// The reference kernel: the simplest correct loop. Every other kernel is tested against it.
#include <bitset>
#include <cstring>

#include "index/hamming_internal.h"

namespace imsat::index::internal {
namespace {

uint32_t distance_scalar(const uint64_t* a, const uint64_t* b, size_t words) {
  uint32_t d = 0;
  for (size_t w = 0; w < words; ++w) {
    d += static_cast<uint32_t>(std::bitset<64>(a[w] ^ b[w]).count());
  }
  return d;
}

void scan_scalar(const uint64_t* query, const uint64_t* codes, size_t n, size_t words,
                 uint16_t* out) {
  for (size_t i = 0; i < n; ++i) {
    out[i] = static_cast<uint16_t>(distance_scalar(query, codes + i * words, words));
  }
}

inline float widen(float v) { return v; }
inline float widen(uint16_t v) { return half_to_float(v); }

// Eight partial sums, added in a fixed order: the reference the vector kernels are tested against.
// `b` holds floats, or halves that are widened first.
template <typename T>
float squared_l2_of(const float* a, const T* b, size_t dim) {
  float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  size_t i = 0;
  for (; i + 8 <= dim; i += 8) {
    for (size_t j = 0; j < 8; ++j) {
      const float d = a[i + j] - widen(b[i + j]);
      acc[j] += d * d;
    }
  }
  float s = 0;
  for (; i < dim; ++i) {
    const float d = a[i] - widen(b[i]);
    s += d * d;
  }
  for (float v : acc) s += v;
  return s;
}

}  // namespace

const HammingKernel kScalarKernel{"scalar",
                                  distance_scalar,
                                  scan_scalar,
                                  scan_le_via_scan<scan_scalar>,
                                  squared_l2_of<float>,
                                  squared_l2_of<uint16_t>};

}  // namespace imsat::index::internal

namespace imsat::index {

uint16_t float_to_half(float value) {
  uint32_t f;
  std::memcpy(&f, &value, sizeof f);
  const uint32_t sign = (f >> 16) & 0x8000u;
  const uint32_t exponent = (f >> 23) & 0xffu;
  uint32_t mantissa = f & 0x7fffffu;
  if (exponent == 0xffu) {  // infinity, or NaN (kept quiet and non-zero)
    return static_cast<uint16_t>(sign | 0x7c00u | (mantissa != 0 ? 0x200u | (mantissa >> 13) : 0));
  }
  const int e = static_cast<int>(exponent) - 127 + 15;
  if (e >= 31) return static_cast<uint16_t>(sign | 0x7c00u);  // too large: infinity
  if (e <= 0) {
    // A subnormal half (or zero): the mantissa with its implicit bit, shifted into place.
    if (e < -10) return static_cast<uint16_t>(sign);
    mantissa |= 0x800000u;
    const int shift = 14 - e;
    uint32_t half = mantissa >> shift;
    const uint32_t rest = mantissa & ((1u << shift) - 1), midway = 1u << (shift - 1);
    if (rest > midway || (rest == midway && (half & 1u))) ++half;
    return static_cast<uint16_t>(sign | half);
  }
  uint32_t half = (static_cast<uint32_t>(e) << 10) | (mantissa >> 13);
  const uint32_t rest = mantissa & 0x1fffu;
  // Round to nearest even; a carry out of the mantissa moves to the next exponent (or infinity).
  if (rest > 0x1000u || (rest == 0x1000u && (half & 1u))) ++half;
  return static_cast<uint16_t>(sign | half);
}

float half_to_float(uint16_t half) {
  const uint32_t sign = uint32_t{half & 0x8000u} << 16;
  const uint32_t exponent = (half >> 10) & 0x1fu;
  uint32_t mantissa = half & 0x3ffu;
  uint32_t f;
  if (exponent == 0x1fu) {
    f = sign | 0x7f800000u | (mantissa << 13);
  } else if (exponent != 0) {
    f = sign | ((exponent - 15 + 127) << 23) | (mantissa << 13);
  } else if (mantissa == 0) {
    f = sign;
  } else {  // subnormal: normalise
    int e = -1;
    do {
      mantissa <<= 1;
      ++e;
    } while ((mantissa & 0x400u) == 0);
    f = sign | (static_cast<uint32_t>(127 - 15 - e) << 23) | ((mantissa & 0x3ffu) << 13);
  }
  float out;
  std::memcpy(&out, &f, sizeof out);
  return out;
}

}  // namespace imsat::index
