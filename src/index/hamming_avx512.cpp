// AVX-512 kernel with the VPOPCNTDQ extension: one popcount instruction per eight 64-bit words.
// Built with -mavx512f -mavx512vpopcntdq -mavx512bw -mavx512vl.
#include <immintrin.h>

#include <algorithm>

#include "index/hamming_internal.h"

namespace imsat::index::internal {
namespace {

inline __m512i popcnt_xor(__m512i a, __m512i b) {
  return _mm512_popcnt_epi64(_mm512_xor_si512(a, b));
}

inline __mmask8 tail_mask(size_t remaining) {
  return static_cast<__mmask8>(remaining >= 8 ? 0xff : ((1u << remaining) - 1));
}

uint32_t distance_avx512(const uint64_t* a, const uint64_t* b, size_t words) {
  __m512i acc = _mm512_setzero_si512();
  for (size_t w = 0; w < words; w += 8) {
    __mmask8 m = tail_mask(words - w);
    acc = _mm512_add_epi64(
        acc, popcnt_xor(_mm512_maskz_loadu_epi64(m, a + w), _mm512_maskz_loadu_epi64(m, b + w)));
  }
  return static_cast<uint32_t>(_mm512_reduce_add_epi64(acc));
}

// Sums adjacent lane pairs of x and y: result lane j = (x|y)[2j] + (x|y)[2j+1].
inline __m512i pair_sum(__m512i x, __m512i y) {
  const __m512i even = _mm512_setr_epi64(0, 2, 4, 6, 8, 10, 12, 14);
  const __m512i odd = _mm512_setr_epi64(1, 3, 5, 7, 9, 11, 13, 15);
  return _mm512_add_epi64(_mm512_permutex2var_epi64(x, even, y),
                          _mm512_permutex2var_epi64(x, odd, y));
}

inline void store8(uint16_t* out, __m512i d) {
  _mm_storeu_si128(reinterpret_cast<__m128i*>(out), _mm512_cvtepi64_epi16(d));
}

void scan_w1(const uint64_t* query, const uint64_t* codes, size_t n, uint16_t* out) {
  const __m512i q = _mm512_set1_epi64(static_cast<long long>(query[0]));
  size_t i = 0;
  for (; i + 8 <= n; i += 8) store8(out + i, popcnt_xor(_mm512_loadu_si512(codes + i), q));
  if (i < n) {
    __mmask8 m = tail_mask(n - i);
    __m512i d = popcnt_xor(_mm512_maskz_loadu_epi64(m, codes + i), q);
    _mm512_mask_cvtepi64_storeu_epi16(out + i, m, d);
  }
}

void scan_w2(const uint64_t* query, const uint64_t* codes, size_t n, uint16_t* out) {
  const __m512i q =
      _mm512_broadcast_i32x4(_mm_loadu_si128(reinterpret_cast<const __m128i*>(query)));
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const uint64_t* c = codes + 2 * i;
    __m512i a = popcnt_xor(_mm512_loadu_si512(c), q);
    __m512i b = popcnt_xor(_mm512_loadu_si512(c + 8), q);
    store8(out + i, pair_sum(a, b));
  }
  for (; i < n; ++i) out[i] = static_cast<uint16_t>(distance_avx512(query, codes + 2 * i, 2));
}

void scan_w4(const uint64_t* query, const uint64_t* codes, size_t n, uint16_t* out) {
  const __m512i q =
      _mm512_broadcast_i64x4(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(query)));
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const uint64_t* c = codes + 4 * i;
    __m512i v0 = popcnt_xor(_mm512_loadu_si512(c), q);
    __m512i v1 = popcnt_xor(_mm512_loadu_si512(c + 8), q);
    __m512i v2 = popcnt_xor(_mm512_loadu_si512(c + 16), q);
    __m512i v3 = popcnt_xor(_mm512_loadu_si512(c + 24), q);
    store8(out + i, pair_sum(pair_sum(v0, v1), pair_sum(v2, v3)));
  }
  for (; i < n; ++i) out[i] = static_cast<uint16_t>(distance_avx512(query, codes + 4 * i, 4));
}

void scan_avx512(const uint64_t* query, const uint64_t* codes, size_t n, size_t words,
                 uint16_t* out) {
  switch (words) {
    case 1:
      scan_w1(query, codes, n, out);
      return;
    case 2:
      scan_w2(query, codes, n, out);
      return;
    case 4:
      scan_w4(query, codes, n, out);
      return;
    default:
      for (size_t i = 0; i < n; ++i) {
        out[i] = static_cast<uint16_t>(distance_avx512(query, codes + i * words, words));
      }
  }
}

// Distances of eight consecutive codes of kWords words each.
template <size_t kWords>
inline __m512i distances8(const uint64_t* c, __m512i q) {
  if constexpr (kWords == 1) {
    return popcnt_xor(_mm512_loadu_si512(c), q);
  } else if constexpr (kWords == 2) {
    return pair_sum(popcnt_xor(_mm512_loadu_si512(c), q), popcnt_xor(_mm512_loadu_si512(c + 8), q));
  } else {
    return pair_sum(
        pair_sum(popcnt_xor(_mm512_loadu_si512(c), q), popcnt_xor(_mm512_loadu_si512(c + 8), q)),
        pair_sum(popcnt_xor(_mm512_loadu_si512(c + 16), q),
                 popcnt_xor(_mm512_loadu_si512(c + 24), q)));
  }
}

// Appends the lanes of `d` selected by `pass` (codes base, base + 1, ...).
inline size_t emit(__m512i d, unsigned pass, size_t base, size_t found, uint32_t* out_index,
                   uint16_t* out_distance) {
  uint64_t lanes[8];
  _mm512_storeu_si512(lanes, d);
  for (unsigned m = pass; m != 0; m &= m - 1) {
    const unsigned lane = static_cast<unsigned>(__builtin_ctz(m));
    out_index[found] = static_cast<uint32_t>(base + lane);
    out_distance[found] = static_cast<uint16_t>(lanes[lane]);
    ++found;
  }
  return found;
}

// Fused distance + threshold, 32 codes per step in four independent chains; survivors are rare
// once a top-k threshold is tight, so they are finished in scalar code.
template <size_t kWords>
size_t scan_le_fixed(const uint64_t* query, const uint64_t* codes, size_t n, uint32_t max_distance,
                     uint32_t* out_index, uint16_t* out_distance) {
  const __m512i limit = _mm512_set1_epi64(max_distance);
  __m512i q;
  if constexpr (kWords == 1) {
    q = _mm512_set1_epi64(static_cast<long long>(query[0]));
  } else if constexpr (kWords == 2) {
    q = _mm512_broadcast_i32x4(_mm_loadu_si128(reinterpret_cast<const __m128i*>(query)));
  } else {
    q = _mm512_broadcast_i64x4(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(query)));
  }
  // The four distance vectors are packed into bytes of one vector and compared once: port 5
  // (popcount and compare) is the bottleneck, and this saves three compares per 32 codes.
  // Distances above 255 (only 256, all bits of a 256-bit code) are clamped first.
  const __m512i byte_limit =
      _mm512_set1_epi8(static_cast<char>(std::min<uint32_t>(max_distance, 255)));
  const __m512i clamp = _mm512_set1_epi64(255);
  constexpr uint64_t kLowBytes = 0x0F0F0F0F0F0F0F0FULL;  // bytes 0..3 of every 64-bit lane
  size_t found = 0;
  size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    const uint64_t* c = codes + kWords * i;
    const __m512i d0 = distances8<kWords>(c, q);
    const __m512i d1 = distances8<kWords>(c + 8 * kWords, q);
    const __m512i d2 = distances8<kWords>(c + 16 * kWords, q);
    const __m512i d3 = distances8<kWords>(c + 24 * kWords, q);
    __m512i b0 = d0, b1 = d1, b2 = d2, b3 = d3;
    if constexpr (kWords == 4) {
      b0 = _mm512_min_epu64(d0, clamp);
      b1 = _mm512_min_epu64(d1, clamp);
      b2 = _mm512_min_epu64(d2, clamp);
      b3 = _mm512_min_epu64(d3, clamp);
    }
    const __m512i packed =
        _mm512_or_si512(_mm512_or_si512(b0, _mm512_slli_epi64(b1, 8)),
                        _mm512_or_si512(_mm512_slli_epi64(b2, 16), _mm512_slli_epi64(b3, 24)));
    if ((_mm512_cmple_epu8_mask(packed, byte_limit) & kLowBytes) != 0) {
      found = emit(d0, _mm512_cmple_epu64_mask(d0, limit), i, found, out_index, out_distance);
      found = emit(d1, _mm512_cmple_epu64_mask(d1, limit), i + 8, found, out_index, out_distance);
      found = emit(d2, _mm512_cmple_epu64_mask(d2, limit), i + 16, found, out_index, out_distance);
      found = emit(d3, _mm512_cmple_epu64_mask(d3, limit), i + 24, found, out_index, out_distance);
    }
  }
  for (; i + 8 <= n; i += 8) {
    const __m512i d = distances8<kWords>(codes + kWords * i, q);
    found = emit(d, _mm512_cmple_epu64_mask(d, limit), i, found, out_index, out_distance);
  }
  for (; i < n; ++i) {
    const uint32_t d = distance_avx512(query, codes + kWords * i, kWords);
    if (d <= max_distance) {
      out_index[found] = static_cast<uint32_t>(i);
      out_distance[found] = static_cast<uint16_t>(d);
      ++found;
    }
  }
  return found;
}

size_t scan_le_avx512(const uint64_t* query, const uint64_t* codes, size_t n, size_t words,
                      uint32_t max_distance, uint32_t* out_index, uint16_t* out_distance) {
  switch (words) {
    case 1:
      return scan_le_fixed<1>(query, codes, n, max_distance, out_index, out_distance);
    case 2:
      return scan_le_fixed<2>(query, codes, n, max_distance, out_index, out_distance);
    case 4:
      return scan_le_fixed<4>(query, codes, n, max_distance, out_index, out_distance);
    default:
      return scan_le_via_scan<scan_avx512>(query, codes, n, words, max_distance, out_index,
                                           out_distance);
  }
}

// Sixteen stored values as floats (the lanes of mask `m`, zeros elsewhere): loaded, or half
// precision widened (vcvtph2ps).
inline __m512 load16(__mmask16 m, const float* b) { return _mm512_maskz_loadu_ps(m, b); }
inline __m512 load16(__mmask16 m, const uint16_t* b) {
  return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, b));
}
inline __m512 load16(const float* b) { return _mm512_loadu_ps(b); }
inline __m512 load16(const uint16_t* b) {
  return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(b)));
}

// Two 16-lane fused multiply-add accumulators; the tail through a mask. `b` holds floats or
// halves.
template <typename T>
float squared_l2_avx512(const float* a, const T* b, size_t dim) {
  __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
  size_t i = 0;
  for (; i + 32 <= dim; i += 32) {
    const __m512 d0 = _mm512_sub_ps(_mm512_loadu_ps(a + i), load16(b + i));
    const __m512 d1 = _mm512_sub_ps(_mm512_loadu_ps(a + i + 16), load16(b + i + 16));
    acc0 = _mm512_fmadd_ps(d0, d0, acc0);
    acc1 = _mm512_fmadd_ps(d1, d1, acc1);
  }
  for (; i < dim; i += 16) {
    const __mmask16 m = dim - i >= 16 ? __mmask16(0xffff) : __mmask16((1u << (dim - i)) - 1);
    const __m512 d = _mm512_sub_ps(_mm512_maskz_loadu_ps(m, a + i), load16(m, b + i));
    acc0 = _mm512_fmadd_ps(d, d, acc0);
  }
  return _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1));
}

}  // namespace

const HammingKernel kAvx512Kernel{
    "avx512",       distance_avx512,          scan_avx512,
    scan_le_avx512, squared_l2_avx512<float>, squared_l2_avx512<uint16_t>};

}  // namespace imsat::index::internal
