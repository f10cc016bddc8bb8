// The automatic settings search (TrainConfig::auto_settings, choose_settings in auto.cpp).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>

#include "learn/learn.h"
#include "learn/learn_internal.h"
#include "support/learn_data.h"

namespace {

namespace L = imsat::learn;
using StatusCode = imsat::Status::Code;
using imsat::testing::blobs;
using imsat::testing::quick_config;

// A search small enough for a unit test: two radii at one weight, two checkpoints each.
L::TrainConfig tiny_search() {
  L::TrainConfig c = quick_config(L::Method::kImsatVat, 16);
  c.search.lambdas = {0.1};
  c.search.eps_scales = {0.25, 1.0};
  c.search.checkpoints = {20, 40};
  c.search.rows = 400;
  c.search.queries = 100;
  c.search.gallery = 400;
  c.search.neighbours = 10;
  return c;
}

class AutoCriteria : public ::testing::TestWithParam<L::AutoCriterion> {};

TEST_P(AutoCriteria, ChoosesItsBestTrialWithoutReadingLabels) {
  const L::Dataset labelled = blobs(4, 150, 8, 3);
  L::Dataset unlabelled = labelled;
  unlabelled.labels.clear();
  L::TrainConfig c = tiny_search();
  c.search.criterion = GetParam();
  // Seed agreement is a correlation; held-out neighbour mAP and neighbour overlap are shares.
  const double lowest = GetParam() == L::AutoCriterion::kAgreement ? -1.0 : 0.0;
  std::vector<L::AutoTrial> reported;
  L::TrainConfig reporting = c;
  reporting.on_search = [&](const L::AutoTrial& t) { reported.push_back(t); };
  auto a = L::choose_settings(labelled, reporting);
  auto b = L::choose_settings(unlabelled, c);
  ASSERT_TRUE(a.is_ok()) << a.status().to_string();
  ASSERT_TRUE(b.is_ok()) << b.status().to_string();
  // Every trial was reported, and labels changed nothing.
  ASSERT_EQ(reported.size(), a->trials.size());
  ASSERT_EQ(a->trials.size(), b->trials.size());
  ASSERT_GE(a->trials.size(), 2u);  // at least one checkpoint per radius
  for (size_t i = 0; i < a->trials.size(); ++i) {
    EXPECT_EQ(a->trials[i].score, b->trials[i].score) << i;
    EXPECT_EQ(a->trials[i].steps, b->trials[i].steps) << i;
    EXPECT_EQ(a->trials[i].criterion, GetParam()) << i;
    EXPECT_GE(a->trials[i].score, lowest);
    EXPECT_LE(a->trials[i].score, 1.0);
  }
  // The choice is the best trial.
  const auto best = std::max_element(
      a->trials.begin(), a->trials.end(),
      [](const L::AutoTrial& x, const L::AutoTrial& y) { return x.score < y.score; });
  EXPECT_EQ(a->score, best->score);
  EXPECT_EQ(a->eps_scale, best->eps_scale);
  EXPECT_EQ(a->steps, best->steps);
  EXPECT_EQ(a->lambda, 0.1);
  EXPECT_EQ(a->query_rows, 100u);
  EXPECT_EQ(a->search_rows, 400u);
  EXPECT_EQ(a->criterion, GetParam());
}

INSTANTIATE_TEST_SUITE_P(EveryCriterion, AutoCriteria,
                         ::testing::Values(L::AutoCriterion::kAgreement,
                                           L::AutoCriterion::kNeighbours,
                                           L::AutoCriterion::kOverlap));

// Seed agreement: per query, the correlation of the two runs' distances, averaged.
TEST(AutoSettings, SeedAgreementIsTheMeanCorrelationOfTheRunsDistances) {
  const torch::Tensor a =
      torch::tensor({0.0f, 1.0f, 2.0f, 3.0f, 4.0f, 2.0f, 2.0f, 0.0f}).view({2, 4});
  EXPECT_NEAR(L::internal::seed_agreement(a, a), 1.0, 1e-12);
  // The first row reversed (correlation -1); the second the same (1).
  const torch::Tensor b =
      torch::tensor({3.0f, 2.0f, 1.0f, 0.0f, 4.0f, 2.0f, 2.0f, 0.0f}).view({2, 4});
  EXPECT_NEAR(L::internal::seed_agreement(a, b), 0.0, 1e-12);
  // A run that gives one code to everything agrees with nothing: its rows count 0.
  const torch::Tensor flat = torch::full({2, 4}, 5.0f);
  EXPECT_NEAR(L::internal::seed_agreement(a, flat), 0.0, 1e-12);
  // Scaled and shifted distances correlate perfectly.
  EXPECT_NEAR(L::internal::seed_agreement(a, 2 * a + 1), 1.0, 1e-12);
}

// Neighbour overlap: the expected share of each query's k nearest items that both runs return.
TEST(AutoSettings, NeighbourOverlapCountsSharedNearestItemsWithRandomTies) {
  // Distinct distances: the two nearest are columns 0 and 1 in `a`, 0 and 3 in `b`.
  const torch::Tensor a = torch::tensor({0.0f, 1.0f, 2.0f, 3.0f}).view({1, 4});
  const torch::Tensor b = torch::tensor({0.0f, 3.0f, 2.0f, 1.0f}).view({1, 4});
  EXPECT_NEAR(L::internal::neighbour_overlap(a, a, 2), 1.0, 1e-12);
  EXPECT_NEAR(L::internal::neighbour_overlap(a, b, 2), 0.5, 1e-12);
  // One code for every item: each of the 4 is among the 2 nearest with probability 1/2, so the
  // two runs share 4 * 1/2 * 1/2 = 1 of 2 in expectation, whatever the other run does.
  const torch::Tensor flat = torch::full({1, 4}, 5.0f);
  EXPECT_NEAR(L::internal::neighbour_overlap(flat, flat, 2), 0.5, 1e-12);
  EXPECT_NEAR(L::internal::neighbour_overlap(a, flat, 2), 0.5, 1e-12);
  // A tie at the last place: column 0 is in, one of columns 1-3 (each 1/3) fills the other place;
  // against `a` (columns 0 and 1): 1 + 1/3 shared of 2.
  const torch::Tensor tie = torch::tensor({0.0f, 1.0f, 1.0f, 1.0f}).view({1, 4});
  EXPECT_NEAR(L::internal::neighbour_overlap(a, tie, 2), (1.0 + 1.0 / 3) / 2, 1e-12);
  // Rows are averaged; k beyond the gallery means the whole gallery.
  EXPECT_NEAR(L::internal::neighbour_overlap(torch::cat({a, a}), torch::cat({a, b}), 2), 0.75,
              1e-12);
  EXPECT_NEAR(L::internal::neighbour_overlap(a, b, 9), 1.0, 1e-12);
}

TEST(AutoSettings, TrainingWithThemRecordsTheChoiceInTheModel) {
  const L::Dataset data = blobs(4, 150, 8, 5);
  L::TrainConfig c = tiny_search();
  c.auto_settings = true;
  auto model = L::train(data, c);
  ASSERT_TRUE(model.is_ok()) << model.status().to_string();
  const nlohmann::json t = nlohmann::json::parse(model->training_json());
  ASSERT_TRUE(t.contains("auto")) << t.dump();
  const nlohmann::json& a = t["auto"];
  EXPECT_EQ(a["criterion"], "neighbour overlap");  // the default on feature vectors
  // The final run trained with the chosen settings, for the chosen length on all 600 items
  // (12 steps per epoch of 50).
  EXPECT_EQ(t["lambda"].get<double>(), a["lambda"].get<double>());
  EXPECT_EQ(t["eps_scale"].get<double>(), a["eps_scale"].get<double>());
  const int64_t steps = a["steps"].get<int64_t>();
  EXPECT_EQ(t["epochs"].get<int>(), std::max<int64_t>(1, (steps + 6) / 12));
  EXPECT_FALSE(a["trials"].empty());
}

TEST(AutoSettings, RefusesClusteringOtherMethodsAndTinyData) {
  const L::Dataset data = blobs(4, 150, 8, 7);
  L::TrainConfig clustering = tiny_search();
  clustering.clusters = 4;
  EXPECT_EQ(L::choose_settings(data, clustering).status().code(), StatusCode::kInvalidArgument);
  L::TrainConfig itq = tiny_search();
  itq.method = L::Method::kItq;
  EXPECT_EQ(L::choose_settings(data, itq).status().code(), StatusCode::kInvalidArgument);
  // A grid without radii or checkpoints, or with a weight that is not positive, is refused.
  L::TrainConfig no_radius = tiny_search();
  no_radius.search.eps_scales.clear();
  EXPECT_EQ(L::choose_settings(data, no_radius).status().code(), StatusCode::kInvalidArgument);
  L::TrainConfig no_length = tiny_search();
  no_length.search.checkpoints = {0, 20};
  EXPECT_EQ(L::choose_settings(data, no_length).status().code(), StatusCode::kInvalidArgument);
  L::TrainConfig bad_weight = tiny_search();
  bad_weight.search.lambdas = {0.1, std::nan("")};
  EXPECT_EQ(L::choose_settings(data, bad_weight).status().code(), StatusCode::kInvalidArgument);
  const auto small = L::choose_settings(blobs(4, 25, 8, 7), tiny_search());
  EXPECT_EQ(small.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(small.status().message().find("500 items"), std::string::npos);
}

// Checkpoints given out of order (or twice) are scored in training order, once each.
TEST(AutoSettings, ScoresCheckpointsInTrainingOrder) {
  L::TrainConfig c = tiny_search();
  c.search.eps_scales = {1.0};
  c.search.checkpoints = {40, 20, 40};
  auto a = L::choose_settings(blobs(4, 150, 8, 3), c);
  ASSERT_TRUE(a.is_ok()) << a.status().to_string();
  ASSERT_FALSE(a->trials.empty());
  ASSERT_LE(a->trials.size(), 2u);
  EXPECT_EQ(a->trials[0].steps, 20);
  if (a->trials.size() == 2) EXPECT_EQ(a->trials[1].steps, 40);
}

// What the search leaves unset follows the data: the image recipe on 8-bit pixels, neighbour
// overlap over a wider grid on other data; whatever is set stays.
TEST(AutoSettings, UnsetSearchSettingsFollowTheData) {
  L::Dataset images = blobs(4, 150, 8, 3);
  images.uint8_pixels = true;
  const L::Dataset vectors = blobs(4, 150, 8, 3);
  L::TrainConfig c = quick_config(L::Method::kImsatVat, 16);  // lambda 0.1 at 16 bits
  const L::AutoSearch on_images = L::resolve_search(images, c);
  ASSERT_TRUE(on_images.criterion.has_value());
  EXPECT_EQ(*on_images.criterion, L::AutoCriterion::kNeighbours);
  EXPECT_EQ(on_images.lambdas, (std::vector<double>{0.05, 0.1, 0.2}));
  EXPECT_EQ(on_images.checkpoints, (std::vector<int64_t>{500, 1000, 2000, 4000}));
  const L::AutoSearch on_vectors = L::resolve_search(vectors, c);
  ASSERT_TRUE(on_vectors.criterion.has_value());
  EXPECT_EQ(*on_vectors.criterion, L::AutoCriterion::kOverlap);
  EXPECT_EQ(on_vectors.lambdas, (std::vector<double>{0.1, 0.2, 0.4, 0.8}));
  EXPECT_EQ(on_vectors.checkpoints, (std::vector<int64_t>{500, 1000, 2000, 4000, 8000}));
  EXPECT_EQ(on_vectors.eps_scales, on_images.eps_scales);
  // Given settings are kept (checkpoints sorted, each once).
  c.search.criterion = L::AutoCriterion::kAgreement;
  c.search.lambdas = {0.3};
  c.search.checkpoints = {40, 20, 40};
  const L::AutoSearch given = L::resolve_search(vectors, c);
  EXPECT_EQ(*given.criterion, L::AutoCriterion::kAgreement);
  EXPECT_EQ(given.lambdas, (std::vector<double>{0.3}));
  EXPECT_EQ(given.checkpoints, (std::vector<int64_t>{20, 40}));
}

// 8x8 grey "images" (uint8 intensities): two patterns, a bright left half or a bright top half.
L::Dataset tiny_images(int per) {
  L::Dataset d;
  d.cols = 64;
  d.item_shape = {8, 8};
  d.uint8_pixels = true;
  d.source = "tiny images";
  for (int i = 0; i < 2 * per; ++i) {
    for (int y = 0; y < 8; ++y) {
      for (int x = 0; x < 8; ++x) {
        const bool on = (i % 2 == 0) ? x < 4 : y < 4;
        d.values.push_back(on ? 200.0f + static_cast<float>(i % 7) : static_cast<float>(i % 5));
      }
    }
  }
  d.rows = static_cast<size_t>(2 * per);
  return d;
}

TEST(AffineAugmentation, TrainsOnImagesAndIsRecorded) {
  L::TrainConfig c = quick_config(L::Method::kImsatVat, 8, 2);
  c.augment_affine = true;
  auto model = L::train(tiny_images(50), c);
  ASSERT_TRUE(model.is_ok()) << model.status().to_string();
  EXPECT_EQ(nlohmann::json::parse(model->training_json())["augment"], "affine");
}

TEST(AffineAugmentation, RefusesFeatureVectorsAndMethodsWithoutSat) {
  L::TrainConfig c = quick_config(L::Method::kImsatVat, 8, 2);
  c.augment_affine = true;
  const auto vectors = L::train(blobs(4, 50, 8, 1), c);
  EXPECT_EQ(vectors.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(vectors.status().message().find("feature vectors"), std::string::npos);
  c.method = L::Method::kDeepRim;
  EXPECT_EQ(L::train(tiny_images(50), c).status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
