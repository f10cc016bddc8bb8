// AVX2 kernel: popcount by nibble lookup (vpshufb) and byte sums (vpsadbw). Built with -mavx2
// -mf16c (half-precision vectors are widened by F16C, which every AVX2 CPU has).
#include <immintrin.h>

#include <cstring>

#include "index/hamming_internal.h"

namespace imsat::index::internal {
namespace {

inline __m256i popcount_bytes_sum(__m256i v) {
  const __m256i lookup = _mm256_setr_epi8(0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4, 0, 1, 1,
                                          2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4);
  const __m256i low_mask = _mm256_set1_epi8(0x0f);
  __m256i lo = _mm256_and_si256(v, low_mask);
  __m256i hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), low_mask);
  __m256i counts =
      _mm256_add_epi8(_mm256_shuffle_epi8(lookup, lo), _mm256_shuffle_epi8(lookup, hi));
  return _mm256_sad_epu8(counts, _mm256_setzero_si256());  // four 64-bit lane counts
}

inline __m256i load4(const uint64_t* p) {
  __m256i v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}

uint32_t distance_avx2(const uint64_t* a, const uint64_t* b, size_t words) {
  size_t w = 0;
  __m256i acc = _mm256_setzero_si256();
  for (; w + 4 <= words; w += 4) {
    acc = _mm256_add_epi64(acc, popcount_bytes_sum(_mm256_xor_si256(load4(a + w), load4(b + w))));
  }
  uint64_t lanes[4];
  std::memcpy(lanes, &acc, sizeof(lanes));
  uint64_t d = lanes[0] + lanes[1] + lanes[2] + lanes[3];
  for (; w < words; ++w) d += static_cast<uint64_t>(__builtin_popcountll(a[w] ^ b[w]));
  return static_cast<uint32_t>(d);
}

// One word per code: four codes per vector.
void scan_w1(const uint64_t* query, const uint64_t* codes, size_t n, uint16_t* out) {
  const __m256i q = _mm256_set1_epi64x(static_cast<long long>(query[0]));
  size_t i = 0;
  for (; i + 4 <= n; i += 4) {
    __m256i c = popcount_bytes_sum(_mm256_xor_si256(load4(codes + i), q));
    uint64_t lanes[4];
    std::memcpy(lanes, &c, sizeof(lanes));
    for (int j = 0; j < 4; ++j) out[i + j] = static_cast<uint16_t>(lanes[j]);
  }
  for (; i < n; ++i) out[i] = static_cast<uint16_t>(__builtin_popcountll(codes[i] ^ query[0]));
}

// Four words per code (256 bits): one vector per code.
void scan_w4(const uint64_t* query, const uint64_t* codes, size_t n, uint16_t* out) {
  const __m256i q = load4(query);
  for (size_t i = 0; i < n; ++i) {
    __m256i c = popcount_bytes_sum(_mm256_xor_si256(load4(codes + i * 4), q));
    uint64_t lanes[4];
    std::memcpy(lanes, &c, sizeof(lanes));
    out[i] = static_cast<uint16_t>(lanes[0] + lanes[1] + lanes[2] + lanes[3]);
  }
}

void scan_avx2(const uint64_t* query, const uint64_t* codes, size_t n, size_t words,
               uint16_t* out) {
  switch (words) {
    case 1:
      scan_w1(query, codes, n, out);
      return;
    case 2:
      for (size_t i = 0; i < n; ++i) {
        out[i] = static_cast<uint16_t>(__builtin_popcountll(codes[2 * i] ^ query[0]) +
                                       __builtin_popcountll(codes[2 * i + 1] ^ query[1]));
      }
      return;
    case 4:
      scan_w4(query, codes, n, out);
      return;
    default:
      for (size_t i = 0; i < n; ++i) {
        out[i] = static_cast<uint16_t>(distance_avx2(query, codes + i * words, words));
      }
  }
}

// Eight stored values as floats: loaded, or half precision widened by F16C (vcvtph2ps).
inline __m256 load8(const float* b) { return _mm256_loadu_ps(b); }
inline __m256 load8(const uint16_t* b) {
  return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b)));
}
inline float widen(float v) { return v; }
inline float widen(uint16_t v) { return _cvtsh_ss(v); }

// Four 8-lane accumulators (32 floats a step) hide the add latency. `b` holds floats or halves.
template <typename T>
float squared_l2_avx2(const float* a, const T* b, size_t dim) {
  __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(),
                   _mm256_setzero_ps()};
  size_t i = 0;
  for (; i + 32 <= dim; i += 32) {
    for (size_t j = 0; j < 4; ++j) {
      const __m256 d = _mm256_sub_ps(_mm256_loadu_ps(a + i + 8 * j), load8(b + i + 8 * j));
      acc[j] = _mm256_add_ps(acc[j], _mm256_mul_ps(d, d));
    }
  }
  for (; i + 8 <= dim; i += 8) {
    const __m256 d = _mm256_sub_ps(_mm256_loadu_ps(a + i), load8(b + i));
    acc[0] = _mm256_add_ps(acc[0], _mm256_mul_ps(d, d));
  }
  const __m256 sum = _mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3]));
  const __m128 half = _mm_add_ps(_mm256_castps256_ps128(sum), _mm256_extractf128_ps(sum, 1));
  const __m128 pair = _mm_add_ps(half, _mm_movehl_ps(half, half));
  float s = _mm_cvtss_f32(_mm_add_ss(pair, _mm_shuffle_ps(pair, pair, 1)));
  for (; i < dim; ++i) {
    const float d = a[i] - widen(b[i]);
    s += d * d;
  }
  return s;
}

}  // namespace

const HammingKernel kAvx2Kernel{"avx2",
                                distance_avx2,
                                scan_avx2,
                                scan_le_via_scan<scan_avx2>,
                                squared_l2_avx2<float>,
                                squared_l2_avx2<uint16_t>};

}  // namespace imsat::index::internal
