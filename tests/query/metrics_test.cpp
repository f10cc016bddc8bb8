#include <gtest/gtest.h>

#include <cmath>
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
  EXPECT_FALSE(Q::split_per_class(labels, 10, 7).is_ok());
  EXPECT_FALSE(Q::split_per_class({}, 1, 7).is_ok());
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

}  // namespace
