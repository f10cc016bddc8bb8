#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <set>
#include <vector>

#include "query/query.h"

namespace {

namespace Q = imsat::query;

// Items: 0 and 5 are queries; 1..4 the gallery. 8-bit codes, one byte each.
struct Fixture {
  std::vector<uint8_t> codes = {0x00, 0x00, 0x01, 0x02, 0x03, 0xF0};
  std::vector<int32_t> labels = {1, 1, 0, 1, 0, 0};
};

TEST(GroupedAveragePrecision, MatchesHandComputationWithTies) {
  // Distances 0, 1, 1, 2 with relevance 1, 0, 1, 0: AP = 1/2 * 1/1 + 1/2 * 2/3.
  std::vector<uint64_t> rel = {1, 1, 0}, all = {1, 2, 1};
  EXPECT_NEAR(Q::grouped_average_precision(rel, all), 0.5 + 1.0 / 3, 1e-12);
  EXPECT_EQ(Q::grouped_average_precision({0, 0}, {3, 1}), 0.0);
}

TEST(EvaluateRetrieval, HandComputedCaseWithTiesAndAnEmptyBall) {
  Fixture f;
  auto split = Q::given_split({0, 5}, {1, 2, 3, 4}, 6);
  ASSERT_TRUE(split.is_ok());
  Q::RetrievalOptions opt;
  opt.precision_at = 2;
  opt.radius = 2;
  auto m = Q::evaluate_retrieval(f.codes, 8, f.labels, *split, opt);
  ASSERT_TRUE(m.is_ok()) << m.status().to_string();
  // Query 0: AP 5/6. Query 5 (distances 4, 5, 5, 6; relevant at 5 and 6): AP 1/6 + 1/4.
  EXPECT_NEAR(m->map, (5.0 / 6 + 5.0 / 12) / 2, 1e-12);
  // precision@2 breaks the distance-1 tie (items 2, 3) by gallery order: item 2 is irrelevant
  // for query 0; for query 5 the distance-5 tie (items 2, 3) starts with relevant item 2.
  EXPECT_NEAR(m->precision_at_n, 0.5, 1e-12);
  // Radius 2: query 0 sees all four (2 relevant); query 5's ball is empty and counts 0.
  EXPECT_NEAR(m->precision_at_r, 0.25, 1e-12);
  EXPECT_NEAR(m->empty_r_share, 0.5, 1e-12);
  EXPECT_EQ(m->queries, 2u);
}

TEST(EvaluateRetrieval, WrongSizesAreInvalidArguments) {
  Fixture f;
  auto split = Q::given_split({0}, {1, 2}, 6);
  ASSERT_TRUE(split.is_ok());
  EXPECT_FALSE(Q::evaluate_retrieval(f.codes, 16, f.labels, *split).is_ok());
  EXPECT_FALSE(Q::evaluate_retrieval(f.codes, 12, f.labels, *split).is_ok());
}

TEST(Splits, GivenSplitThatOverlapsIsAnError) {
  auto s = Q::given_split({0, 3}, {1, 2, 3}, 5);
  ASSERT_FALSE(s.is_ok());
  EXPECT_NE(s.status().message().find("item 3"), std::string::npos);
  EXPECT_FALSE(Q::given_split({0}, {9}, 5).is_ok());
}

TEST(Splits, PerClassDrawsExactlyNPerLabelDisjointAndSeeded) {
  std::vector<int32_t> labels;
  for (int i = 0; i < 30; ++i) labels.push_back(i % 3);
  auto a = Q::split_per_class(labels, 2, 7);
  auto b = Q::split_per_class(labels, 2, 7);
  auto c = Q::split_per_class(labels, 2, 8);
  ASSERT_TRUE(a.is_ok() && b.is_ok() && c.is_ok());
  EXPECT_EQ(a->queries.size(), 6u);
  EXPECT_EQ(a->gallery.size(), 24u);
  std::vector<int> per(3, 0);
  for (size_t q : a->queries) ++per[labels[q]];
  EXPECT_EQ(per, (std::vector<int>{2, 2, 2}));
  std::set<size_t> all(a->queries.begin(), a->queries.end());
  all.insert(a->gallery.begin(), a->gallery.end());
  EXPECT_EQ(all.size(), 30u);
  EXPECT_EQ(a->queries, b->queries);
  EXPECT_NE(a->queries, c->queries);
  EXPECT_FALSE(Q::split_per_class({}, 1, 7).is_ok());
}

// On uneven classes the per-class count is a cap (at most half a class), a single-item
// class gives no query and is listed; --queries N draws N over all items.
TEST(Splits, PerClassIsACapOnUnevenClasses) {
  std::vector<int32_t> labels;
  for (int i = 0; i < 40; ++i) labels.push_back(0);
  for (int i = 0; i < 5; ++i) labels.push_back(1);
  labels.push_back(2);
  auto s = Q::split_per_class(labels, 10, 7);
  ASSERT_TRUE(s.is_ok()) << s.status().message();
  EXPECT_EQ(s->queries_per_label.at(0), 10u);
  EXPECT_EQ(s->queries_per_label.at(1), 2u);
  EXPECT_EQ(s->queries_per_label.at(2), 0u);
  EXPECT_EQ(s->too_small, (std::vector<int32_t>{2}));
  EXPECT_EQ(s->queries.size(), 12u);
  EXPECT_EQ(s->gallery.size(), 34u);
  EXPECT_FALSE(Q::split_per_class({4, 5, 6}, 10, 7).is_ok());  // no class has 2 items

  auto r = Q::split_random(labels, 9, 3);
  ASSERT_TRUE(r.is_ok());
  EXPECT_EQ(r->queries.size(), 9u);
  EXPECT_EQ(r->gallery.size(), 37u);
  size_t counted = 0;
  for (const auto& [label, n] : r->queries_per_label) counted += n;
  EXPECT_EQ(counted, 9u);
  EXPECT_EQ(r->queries, Q::split_random(labels, 9, 3)->queries);
  EXPECT_FALSE(Q::split_random(labels, 46, 3).is_ok());
  EXPECT_FALSE(Q::split_random(labels, 0, 3).is_ok());
}

// Asymmetric ranking by the codes' negative log-likelihood under the query's bit
// probabilities. With 0/1 probabilities it is exactly Hamming ranking; with soft ones it can
// reorder, as computed by hand here.
TEST(Asymmetric, EqualsHammingForHardBitsAndReordersForSoftOnes) {
  std::mt19937 rng(4);
  const int bits = 16;
  const size_t n = 300;
  std::vector<uint8_t> codes(n * 2);
  std::vector<int32_t> labels(n);
  std::vector<float> hard(n * bits);
  for (size_t i = 0; i < n; ++i) {
    labels[i] = static_cast<int32_t>(i % 3);
    // Codes near one centre per label, with noise, so the ranking is not trivial.
    const uint16_t centre = labels[i] == 0 ? 0x00ff : labels[i] == 1 ? 0xf0f0 : 0x3c3c;
    const uint16_t code = centre ^ static_cast<uint16_t>(1u << (rng() % 16)) ^
                          static_cast<uint16_t>(rng() % 4 == 0 ? 1u << (rng() % 16) : 0);
    codes[2 * i] = static_cast<uint8_t>(code & 0xff);
    codes[2 * i + 1] = static_cast<uint8_t>(code >> 8);
    for (int d = 0; d < bits; ++d) hard[i * bits + static_cast<size_t>(d)] = float(code >> d & 1);
  }
  auto split = Q::split_per_class(labels, 10, 1);
  ASSERT_TRUE(split.is_ok());
  Q::RetrievalOptions options;
  options.precision_at = 50;
  auto hamming = Q::evaluate_retrieval(codes, bits, labels, *split, options);
  auto asym = Q::evaluate_asymmetric(hard, codes, bits, labels, *split, options);
  ASSERT_TRUE(hamming.is_ok() && asym.is_ok()) << asym.status().to_string();
  EXPECT_DOUBLE_EQ(asym->map, hamming->map);
  EXPECT_DOUBLE_EQ(asym->precision_at_n, hamming->precision_at_n);

  // One query (item 0, p_0 = 0.9, the other bits 0) and a gallery of three 8-bit codes:
  // A = 0x01 (score -log 0.9, other label), B = 0x00 (-log 0.1), C = 0x03 (-log 0.9 - log 1e-7,
  // the clamp). Asymmetric order A, B, C: AP = (1/2 + 2/3) / 2; Hamming ranks B (distance 0),
  // A (1), C (2): AP = (1 + 2/3) / 2.
  const std::vector<uint8_t> small = {0x00, 0x01, 0x00, 0x03};
  const std::vector<int32_t> small_labels = {0, 1, 0, 0};
  std::vector<float> p(4 * 8, 0.0f);
  p[0] = 0.9f;
  const Q::Split one{{0}, {1, 2, 3}, {}, {}};
  auto a = Q::evaluate_asymmetric(p, small, 8, small_labels, one, options);
  ASSERT_TRUE(a.is_ok());
  EXPECT_NEAR(a->map, (0.5 + 2.0 / 3.0) / 2, 1e-12);
  auto h = Q::evaluate_retrieval(small, 8, small_labels, one, options);
  ASSERT_TRUE(h.is_ok());
  EXPECT_NEAR(h->map, (1.0 + 2.0 / 3.0) / 2, 1e-12);
  EXPECT_FALSE(
      Q::evaluate_asymmetric(std::vector<float>(3), small, 8, small_labels, one, options).is_ok());

  // Where the likelihood and the expected Hamming distance sum_d |b_d - p_d| disagree: the query
  // is all but sure of bit 0 (p 0.999) and fairly sure of bits 1 and 2 (p 0.9 each); its most
  // likely code is W = 0x07. X = 0x06 contradicts only bit 0: expected distance 0.999 + 0.1 +
  // 0.1 = 1.199, score -log 0.001 - 2 log 0.9 = 7.12. Y = 0x01 contradicts bits 1 and 2: 0.001 +
  // 0.9 + 0.9 = 1.801, score -log 0.999 - 2 log 0.1 = 4.61. Z = 0x00 contradicts all three. W
  // and Y share the query's label, X and Z do not: the likelihood ranks W, Y, X, Z (AP 1), the
  // expected distance W, X, Y, Z (AP (1 + 2/3) / 2).
  const std::vector<uint8_t> g = {0x07, 0x06, 0x01, 0x00, 0x07};
  const std::vector<int32_t> g_labels = {0, 1, 0, 1, 0};
  std::vector<float> pq(5 * 8, 0.0f);
  pq[0] = 0.999f;
  pq[1] = pq[2] = 0.9f;
  const Q::Split two{{0}, {1, 2, 3, 4}, {}, {}};
  auto b = Q::evaluate_asymmetric(pq, g, 8, g_labels, two, options);
  ASSERT_TRUE(b.is_ok());
  EXPECT_NEAR(b->map, 1.0, 1e-12);
}

TEST(Hungarian, FindsTheKnownOptimum) {
  const std::vector<double> cost = {4, 1, 3, 2, 0, 5, 3, 2, 2};
  EXPECT_EQ(Q::hungarian_min_cost(cost, 3), (std::vector<size_t>{1, 0, 2}));
}

TEST(Hungarian, MatchesBruteForceOnRandomMatrices) {
  std::srand(11);
  for (int trial = 0; trial < 20; ++trial) {
    const size_t n = 5;
    std::vector<double> cost(n * n);
    for (double& c : cost) c = std::rand() % 20;
    std::vector<size_t> perm = {0, 1, 2, 3, 4};
    double best = 1e18;
    do {
      double s = 0;
      for (size_t r = 0; r < n; ++r) s += cost[r * n + perm[r]];
      best = std::min(best, s);
    } while (std::next_permutation(perm.begin(), perm.end()));
    std::vector<size_t> got = Q::hungarian_min_cost(cost, n);
    double s = 0;
    for (size_t r = 0; r < n; ++r) s += cost[r * n + got[r]];
    EXPECT_EQ(s, best) << "trial " << trial;
    EXPECT_EQ(std::set<size_t>(got.begin(), got.end()).size(), n);
  }
}

TEST(ClusteringAccuracy, BestOneToOneMap) {
  auto acc = Q::clustering_accuracy({0, 0, 1, 1, 2, 2}, {1, 1, 0, 0, 2, 0});
  ASSERT_TRUE(acc.is_ok());
  EXPECT_NEAR(*acc, 5.0 / 6, 1e-12);
  EXPECT_FALSE(Q::clustering_accuracy({0, 1}, {0}).is_ok());
}

TEST(NormalizedMutualInformation, OneForRelabelledZeroForIndependent) {
  EXPECT_NEAR(*Q::normalized_mutual_information({0, 0, 1, 1, 2}, {5, 5, 3, 3, 9}), 1.0, 1e-12);
  EXPECT_NEAR(*Q::normalized_mutual_information({0, 0, 1, 1}, {0, 1, 0, 1}), 0.0, 1e-12);
  // 2 I(a; b) / (H(a) + H(b)) worked out by hand for these two partitions.
  EXPECT_NEAR(*Q::normalized_mutual_information({0, 0, 1, 1}, {0, 0, 0, 1}), 0.3437110184854508,
              1e-9);
}

TEST(MapAtK, HandComputedCaseWithTies) {
  Fixture f;
  auto split = Q::given_split({0, 5}, {1, 2, 3, 4}, 6);
  ASSERT_TRUE(split.is_ok());
  // Query 0 ranks items 1 (relevant), 2, 3 (relevant), 4; the distance-1 tie of items 2 and 3
  // goes by gallery order. AP@2 = (1/1) / min(R = 2, 2) = 0.5. Query 5 ranks 1, 2 (relevant),
  // 3, 4 (relevant): AP@2 = (1/2) / 2 = 0.25.
  auto m = Q::map_at_k(f.codes, 8, f.labels, *split, 2);
  ASSERT_TRUE(m.is_ok());
  EXPECT_NEAR(*m, (0.5 + 0.25) / 2, 1e-12);
  // k beyond the gallery: AP over the whole ranking divided by R.
  auto all = Q::map_at_k(f.codes, 8, f.labels, *split, 100);
  EXPECT_NEAR(*all, ((1 + 2.0 / 3) / 2 + (0.5 + 0.5) / 2) / 2, 1e-12);
  EXPECT_FALSE(Q::map_at_k(f.codes, 8, f.labels, *split, 0).is_ok());
}

TEST(RetrievalCurves, HandComputedPrecisionRecallByRadius) {
  Fixture f;
  auto split = Q::given_split({0, 5}, {1, 2, 3, 4}, 6);
  auto c = Q::retrieval_curves(f.codes, 8, f.labels, *split, {2, 4});
  ASSERT_TRUE(c.is_ok());
  ASSERT_EQ(c->precision.size(), 9u);
  // Query 0: radius 0 holds item 1 (relevant); radius 1 adds 2 and 3; radius 2 adds 4.
  // Query 5: nothing within 3 (precision counts 0), item 1 at 4, items 2, 3 at 5, item 4 at 6.
  EXPECT_NEAR(c->precision[0], (1.0 + 0) / 2, 1e-12);
  EXPECT_NEAR(c->recall[0], (0.5 + 0) / 2, 1e-12);
  EXPECT_NEAR(c->precision[1], (2.0 / 3 + 0) / 2, 1e-12);
  EXPECT_NEAR(c->recall[1], (1.0 + 0) / 2, 1e-12);
  EXPECT_NEAR(c->precision[5], (0.5 + 1.0 / 3) / 2, 1e-12);
  EXPECT_NEAR(c->recall[5], (1.0 + 0.5) / 2, 1e-12);
  EXPECT_NEAR(c->precision[8], 0.5, 1e-12);
  EXPECT_NEAR(c->recall[8], 1.0, 1e-12);
  ASSERT_EQ(c->precision_at_n.size(), 2u);
  EXPECT_NEAR(c->precision_at_n[0], 0.5, 1e-12);
  EXPECT_NEAR(c->precision_at_n[1], 0.5, 1e-12);
}

TEST(RecallAtK, CountsOverlapWithTheTrueNeighbours) {
  std::vector<std::vector<uint64_t>> truth = {{1, 2, 3}, {4, 5, 6}};
  std::vector<std::vector<uint64_t>> found = {{3, 2, 9}, {6}};
  EXPECT_NEAR(Q::recall_at_k(found, truth, 3), (2.0 / 3 + 1.0 / 3) / 2, 1e-12);
  EXPECT_NEAR(Q::recall_at_k(truth, truth, 3), 1.0, 1e-12);
}

TEST(ExactNeighbours, MatchesBruteForceAndBreaksTiesByIndex) {
  // 1-d points 0, 1, 2, 3, 1 (items 1 and 4 tie); query 1.1 -> 1, 4, 2 (2 at 0.9 vs 0 at 1.1).
  std::vector<float> gallery = {0, 1, 2, 3, 1};
  std::vector<float> queries = {1.1f, 2.9f};
  for (int threads : {1, 2}) {
    auto nn = Q::exact_neighbours(queries.data(), 2, gallery.data(), 5, 1, 3, threads);
    ASSERT_EQ(nn.size(), 2u);
    EXPECT_EQ(nn[0], (std::vector<uint64_t>{1, 4, 2}));
    EXPECT_EQ(nn[1], (std::vector<uint64_t>{3, 2, 1}));
  }
}

TEST(CodeHealth, FindsCollapsedAndDuplicatedBits) {
  // bit 0 = bit 1 (duplicated), bit 2 always 0 (collapsed), bit 3 independent of bit 0.
  std::vector<uint8_t> codes = {0x00, 0x08, 0x03, 0x0B};
  auto h = Q::code_health(codes, 8);
  ASSERT_TRUE(h.is_ok());
  EXPECT_EQ(h->rows, 4u);
  EXPECT_NEAR(h->entropy[0], 1.0, 1e-12);
  EXPECT_NEAR(h->entropy[2], 0.0, 1e-12);
  EXPECT_NEAR(h->balance[3], 0.5, 1e-12);
  EXPECT_NEAR(h->pair_mi[0 * 8 + 1], 1.0, 1e-12);
  EXPECT_NEAR(h->pair_mi[1 * 8 + 0], 1.0, 1e-12);
  EXPECT_NEAR(h->pair_mi[0 * 8 + 3], 0.0, 1e-12);
  EXPECT_NEAR(h->pair_mi[0 * 8 + 2], 0.0, 1e-12);
  EXPECT_NEAR(h->max_pair_mi, 1.0, 1e-12);
  EXPECT_EQ(h->max_pair_a, 0);
  EXPECT_EQ(h->max_pair_b, 1);
  EXPECT_NEAR(h->min_entropy, 0.0, 1e-12);
  EXPECT_FALSE(Q::code_health({1, 2, 3}, 16).is_ok());
}

}  // namespace
