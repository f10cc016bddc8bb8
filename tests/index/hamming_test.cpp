#include "index/hamming.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

namespace {

using imsat::index::available_kernels;
using imsat::index::float_to_half;
using imsat::index::half_to_float;
using imsat::index::HammingKernel;

class HammingKernelTest : public ::testing::TestWithParam<const HammingKernel*> {};

const HammingKernel& scalar() { return *imsat::index::kernel_by_name("scalar"); }

std::vector<uint64_t> random_words(size_t count, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<uint64_t> out(count);
  for (auto& w : out) w = rng();
  return out;
}

TEST_P(HammingKernelTest, DistanceMatchesScalarOnEveryLength) {
  const HammingKernel& k = *GetParam();
  for (size_t words = 1; words <= 17; ++words) {
    const uint64_t seed = 100 + words;
    std::vector<uint64_t> a = random_words(words, seed), b = random_words(words, seed + 1000);
    EXPECT_EQ(k.distance(a.data(), b.data(), words), scalar().distance(a.data(), b.data(), words))
        << k.name << " words=" << words << " seed=" << seed;
  }
}

TEST_P(HammingKernelTest, SquaredL2MatchesDoublePrecisionOnEveryLengthAndTail) {
  const HammingKernel& k = *GetParam();
  std::mt19937_64 rng(5);
  std::normal_distribution<float> value(0.0f, 3.0f);
  for (size_t dim : {size_t{0}, size_t{1}, size_t{7}, size_t{8}, size_t{15}, size_t{16}, size_t{31},
                     size_t{32}, size_t{33}, size_t{100}, size_t{784}, size_t{1000}}) {
    std::vector<float> a(dim), b(dim);
    for (size_t i = 0; i < dim; ++i) {
      a[i] = value(rng);
      b[i] = value(rng);
    }
    double exact = 0;
    for (size_t i = 0; i < dim; ++i) exact += (double(a[i]) - b[i]) * (double(a[i]) - b[i]);
    EXPECT_NEAR(k.squared_l2(a.data(), b.data(), dim), exact, 1e-5 * exact + 1e-6)
        << k.name << " dim=" << dim;
  }
  const float same[3] = {1.5f, -2.0f, 0.25f};
  EXPECT_EQ(k.squared_l2(same, same, 3), 0.0f) << k.name;
}

TEST_P(HammingKernelTest, SquaredL2HalfWidensEveryStoredValueExactly) {
  const HammingKernel& k = *GetParam();
  std::mt19937_64 rng(6);
  std::normal_distribution<float> value(0.0f, 3.0f);
  for (size_t dim : {size_t{0}, size_t{1}, size_t{7}, size_t{8}, size_t{15}, size_t{16}, size_t{31},
                     size_t{32}, size_t{33}, size_t{100}, size_t{784}, size_t{1000}}) {
    std::vector<float> a(dim), widened(dim);
    std::vector<uint16_t> b(dim);
    for (size_t i = 0; i < dim; ++i) {
      a[i] = value(rng);
      b[i] = float_to_half(value(rng));
      widened[i] = half_to_float(b[i]);
    }
    double exact = 0;
    for (size_t i = 0; i < dim; ++i)
      exact += (double(a[i]) - widened[i]) * (double(a[i]) - widened[i]);
    EXPECT_NEAR(k.squared_l2_half(a.data(), b.data(), dim), exact, 1e-5 * exact + 1e-6)
        << k.name << " dim=" << dim;
  }
}

TEST_P(HammingKernelTest, ScanMatchesScalarOnEveryLengthAndTail) {
  const HammingKernel& k = *GetParam();
  for (size_t words : {1, 2, 3, 4, 5, 8, 9, 16}) {
    for (size_t n : {0, 1, 7, 8, 9, 31, 100}) {
      const uint64_t seed = words * 1000 + n;
      std::vector<uint64_t> codes = random_words(n * words, seed);
      std::vector<uint64_t> query = random_words(words, seed + 1);
      std::vector<uint16_t> got(n + 1, 0xffff), want(n + 1, 0xffff);
      k.scan(query.data(), codes.data(), n, words, got.data());
      scalar().scan(query.data(), codes.data(), n, words, want.data());
      EXPECT_EQ(got, want) << k.name << " words=" << words << " n=" << n << " seed=" << seed;
    }
  }
}

TEST_P(HammingKernelTest, AllZeroAndAllOneCodes) {
  const HammingKernel& k = *GetParam();
  for (size_t words = 1; words <= 16; ++words) {
    std::vector<uint64_t> zeros(words, 0), ones(words, ~uint64_t{0});
    EXPECT_EQ(k.distance(zeros.data(), ones.data(), words), 64 * words) << k.name;
    EXPECT_EQ(k.distance(ones.data(), ones.data(), words), 0u) << k.name;
    std::vector<uint64_t> codes;
    for (int i = 0; i < 9; ++i)
      codes.insert(codes.end(), (i % 2 ? ones : zeros).begin(), (i % 2 ? ones : zeros).end());
    std::vector<uint16_t> out(9);
    k.scan(zeros.data(), codes.data(), 9, words, out.data());
    for (int i = 0; i < 9; ++i) EXPECT_EQ(out[i], i % 2 ? 64 * words : 0) << k.name << " i=" << i;
  }
}

std::string kernel_name(const ::testing::TestParamInfo<const HammingKernel*>& info) {
  return std::string(info.param->name);
}

INSTANTIATE_TEST_SUITE_P(AllKernels, HammingKernelTest, ::testing::ValuesIn(available_kernels()),
                         kernel_name);

TEST(HammingDispatch, ScalarIsAlwaysAvailableAndActiveIsOneOfThem) {
  std::vector<const HammingKernel*> ks = available_kernels();
  ASSERT_FALSE(ks.empty());
  EXPECT_EQ(ks.front()->name, "scalar");
  bool found = false;
  for (const HammingKernel* k : ks) found |= k->name == imsat::index::active_kernel_name();
  EXPECT_TRUE(found) << imsat::index::active_kernel_name();
}

}  // namespace

namespace {

TEST_P(HammingKernelTest, ScanLeMatchesScalarFilterOnEveryLengthAndThreshold) {
  const HammingKernel& k = *GetParam();
  for (size_t words : {1, 2, 3, 4, 5, 8}) {
    for (size_t n : {0, 1, 7, 8, 9, 100, 1000}) {
      const uint64_t seed = words * 7919 + n;
      std::vector<uint64_t> codes = random_words(n * words, seed);
      std::vector<uint64_t> query = random_words(words, seed + 3);
      // Make some codes close to the query so small thresholds have hits.
      for (size_t i = 0; i < n; i += 5) {
        for (size_t w = 0; w < words; ++w)
          codes[i * words + w] = query[w] ^ (uint64_t{1} << (i % 64));
      }
      std::vector<uint16_t> all(n);
      scalar().scan(query.data(), codes.data(), n, words, all.data());
      for (uint32_t limit :
           {0u, 1u, static_cast<uint32_t>(words), static_cast<uint32_t>(32 * words),
            static_cast<uint32_t>(64 * words)}) {
        std::vector<uint32_t> idx(n + 1);
        std::vector<uint16_t> dist(n + 1);
        const size_t got =
            k.scan_le(query.data(), codes.data(), n, words, limit, idx.data(), dist.data());
        std::vector<uint32_t> want_idx;
        std::vector<uint16_t> want_dist;
        for (size_t i = 0; i < n; ++i) {
          if (all[i] <= limit) {
            want_idx.push_back(static_cast<uint32_t>(i));
            want_dist.push_back(all[i]);
          }
        }
        idx.resize(got);
        dist.resize(got);
        EXPECT_EQ(idx, want_idx) << k.name << " words=" << words << " n=" << n
                                 << " limit=" << limit;
        EXPECT_EQ(dist, want_dist) << k.name << " words=" << words << " n=" << n;
      }
    }
  }
}

}  // namespace

namespace {

// Regression: the packed byte compare clamps 256-bit distances at 255; the reported distance of
// an all-bits-differ code must still be 256.
TEST_P(HammingKernelTest, ScanLeReportsFullDistanceOfComplementCodes) {
  const HammingKernel& k = *GetParam();
  for (size_t words : {1, 2, 4}) {
    const size_t n = 64;
    std::vector<uint64_t> query(words, 0), codes(n * words, ~uint64_t{0});
    std::vector<uint32_t> idx(n);
    std::vector<uint16_t> dist(n);
    const uint32_t full = static_cast<uint32_t>(64 * words);
    ASSERT_EQ(k.scan_le(query.data(), codes.data(), n, words, full, idx.data(), dist.data()), n);
    for (size_t i = 0; i < n; ++i) EXPECT_EQ(dist[i], full) << k.name << " words=" << words;
    EXPECT_EQ(k.scan_le(query.data(), codes.data(), n, words, full - 1, idx.data(), dist.data()),
              0u)
        << k.name << " words=" << words;
  }
}

}  // namespace

TEST(HalfPrecision, RoundsToNearestEvenAndKeepsSpecialValues) {
  // Every integer up to 2048 and the halves' own values come back exactly.
  for (int i = -2048; i <= 2048; ++i) {
    EXPECT_EQ(half_to_float(float_to_half(static_cast<float>(i))), static_cast<float>(i)) << i;
  }
  for (uint32_t h = 0; h < 0x10000u; ++h) {
    const float f = half_to_float(static_cast<uint16_t>(h));
    if (std::isnan(f)) {
      EXPECT_TRUE(std::isnan(half_to_float(float_to_half(f)))) << h;
    } else {
      EXPECT_EQ(float_to_half(f), h) << h;
    }
  }
  // Ties go to the even neighbour: 2049 lies between 2048 and 2050, 2051 between 2050 and 2052.
  EXPECT_EQ(half_to_float(float_to_half(2049.0f)), 2048.0f);
  EXPECT_EQ(half_to_float(float_to_half(2051.0f)), 2052.0f);
  EXPECT_EQ(half_to_float(float_to_half(0.1f)), 0.0999755859375f);
  EXPECT_EQ(half_to_float(float_to_half(65504.0f)), 65504.0f);
  EXPECT_TRUE(std::isinf(half_to_float(float_to_half(70000.0f))));
  EXPECT_EQ(half_to_float(float_to_half(-1e-9f)), 0.0f);
  EXPECT_EQ(half_to_float(float_to_half(6e-8f)), 5.9604644775390625e-8f);  // the least subnormal
  EXPECT_TRUE(std::isnan(half_to_float(float_to_half(std::nanf("")))));
}
