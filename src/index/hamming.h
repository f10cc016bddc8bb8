// Hamming distance kernels (and the float distances of exact re-ranking): a scalar reference, AVX2
// and AVX-512 VPOPCNTDQ versions, one of which is picked once per process from CPUID. This header
// is the only one callers see; no intrinsics appear outside hamming_avx2.cpp and
// hamming_avx512.cpp.
//
// Codes are arrays of 64-bit words (little-endian bytes, zero-padded to whole words).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

namespace imsat::index {

// One implementation of the two primitives every search uses.
struct HammingKernel {
  std::string_view name;  // "scalar", "avx2" or "avx512"
  // Number of differing bits in two codes of `words` 64-bit words.
  uint32_t (*distance)(const uint64_t* a, const uint64_t* b, size_t words);
  // out[i] = distance(query, codes + i * words) for i in [0, n). `codes` is contiguous.
  void (*scan)(const uint64_t* query, const uint64_t* codes, size_t n, size_t words, uint16_t* out);
  // Writes, in increasing order, every i in [0, n) whose distance to `query` is at most
  // `max_distance` to out_index (and its distance to out_distance); returns how many. Both
  // outputs must have room for n entries. The hot loop of every top-k and radius scan: the
  // distances stay in registers unless they pass.
  size_t (*scan_le)(const uint64_t* query, const uint64_t* codes, size_t n, size_t words,
                    uint32_t max_distance, uint32_t* out_index, uint16_t* out_distance);
  // The squared Euclidean distance of two float vectors of `dim` values (exact re-ranking), at
  // the same instruction set level. Sums in float lanes: within float rounding of the scalar one.
  float (*squared_l2)(const float* a, const float* b, size_t dim);
  // The same against a vector stored as IEEE half precision (float_to_half's values): each value
  // of `b` widened to float exactly, then the same sums.
  float (*squared_l2_half)(const float* a, const uint16_t* b, size_t dim);
};

// IEEE 754 binary16 from a float, rounded to nearest even (values past 65504 become infinity,
// NaN stays NaN), and back (exact). Integers up to 2048 in magnitude survive the round trip.
uint16_t float_to_half(float value);
float half_to_float(uint16_t half);

// The kernel chosen at start-up: the widest the CPU supports, unless the environment forces one
// with IMSAT_FORCE_SCALAR=1 or IMSAT_HAMMING_KERNEL=scalar|avx2|avx512 (an unsupported or
// unknown name there falls back to the automatic choice and is reported on stderr once).
const HammingKernel& active_kernel();
std::string_view active_kernel_name();

// Every kernel this CPU can run, scalar first. For tests and benchmarks.
std::vector<const HammingKernel*> available_kernels();
// nullptr when `name` is unknown or this CPU cannot run it.
const HammingKernel* kernel_by_name(std::string_view name);

inline uint32_t hamming_distance(const uint64_t* a, const uint64_t* b, size_t words) {
  return active_kernel().distance(a, b, words);
}

inline float squared_l2(const float* a, const float* b, size_t dim) {
  return active_kernel().squared_l2(a, b, dim);
}

inline float squared_l2_half(const float* a, const uint16_t* b, size_t dim) {
  return active_kernel().squared_l2_half(a, b, dim);
}

}  // namespace imsat::index
