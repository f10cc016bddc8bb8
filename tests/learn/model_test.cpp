// Training, model files and encoding through the public interface (src/learn/learn.h).
#include <gtest/gtest.h>

#include <algorithm>
#include <bitset>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "learn/learn.h"
#include "learn/learn_internal.h"
#include "support/learn_data.h"
#include "support/temp_dir_test.h"

namespace {

namespace fs = std::filesystem;
namespace L = imsat::learn;
using imsat::Status;

using imsat::testing::blobs;

using imsat::testing::quick_config;

class ModelTest : public imsat::testing::TempDirTest {
 protected:
  std::string path(const std::string& name) const { return (dir_ / name).string(); }
};

TEST_F(ModelTest, SaveLoadRoundTripGivesIdenticalCodesForEveryMethod) {
  const L::Dataset data = blobs(4, 50, 20, 1);  // 20 dimensions: ITQ needs bits <= dim
  for (L::Method m : L::hashing_methods()) {
    SCOPED_TRACE(L::method_name(m));
    auto model = L::train(data, quick_config(m));
    ASSERT_TRUE(model.is_ok()) << model.status().to_string();
    auto codes = model->encode(data);
    ASSERT_TRUE(codes.is_ok()) << codes.status().to_string();
    ASSERT_EQ(codes->size(), data.rows * 2);
    ASSERT_TRUE(model->save(path("m.bin")).is_ok());
    auto loaded = L::Model::load(path("m.bin"));
    ASSERT_TRUE(loaded.is_ok()) << loaded.status().to_string();
    EXPECT_EQ(loaded->fingerprint(), model->fingerprint());
    EXPECT_EQ(loaded->method(), m);
    auto again = loaded->encode(data);
    ASSERT_TRUE(again.is_ok());
    EXPECT_EQ(*again, *codes);
  }
}

TEST_F(ModelTest, ItqStartIsRecordedAndTheShortcutSurvivesSaveAndLoad) {
  const L::Dataset data = blobs(4, 50, 20, 3);
  L::TrainConfig c = quick_config(L::Method::kImsatVat);
  c.init_itq = true;
  auto model = L::train(data, c);
  ASSERT_TRUE(model.is_ok()) << model.status().to_string();
  const nlohmann::json t = nlohmann::json::parse(model->training_json());
  EXPECT_EQ(t.value("init", ""), "itq");
  EXPECT_EQ(t.value("itq_scale", 0.0), c.itq_scale);
  ASSERT_TRUE(model->save(path("itq.bin")).is_ok());
  auto loaded = L::Model::load(path("itq.bin"));
  ASSERT_TRUE(loaded.is_ok()) << loaded.status().to_string();
  EXPECT_EQ(loaded->fingerprint(), model->fingerprint());
  EXPECT_EQ(*loaded->encode(data), *model->encode(data));
  // The same seed from a random start is another model.
  c.init_itq = false;
  auto plain = L::train(data, c);
  ASSERT_TRUE(plain.is_ok());
  EXPECT_NE(plain->fingerprint(), model->fingerprint());
  // Only IMSAT hashing starts there.
  L::TrainConfig rim = quick_config(L::Method::kDeepRim);
  rim.init_itq = true;
  EXPECT_EQ(L::train(data, rim).status().code(), Status::Code::kInvalidArgument);
  L::TrainConfig clustering = quick_config(L::Method::kImsatVat);
  clustering.init_itq = true;
  clustering.clusters = 4;
  const auto refused = L::train(data, clustering);
  EXPECT_EQ(refused.status().code(), Status::Code::kInvalidArgument);
  EXPECT_NE(refused.status().message().find("--init itq"), std::string::npos);
}

TEST_F(ModelTest, SameSeedSameCodesDifferentSeedDifferentModel) {
  const L::Dataset data = blobs(3, 40, 8, 2);
  L::TrainConfig c = quick_config(L::Method::kImsatVat);
  auto a = L::train(data, c);
  auto b = L::train(data, c);
  c.seed = 1;
  auto other = L::train(data, c);
  ASSERT_TRUE(a.is_ok() && b.is_ok() && other.is_ok());
  EXPECT_EQ(a->fingerprint(), b->fingerprint());
  EXPECT_EQ(*a->encode(data), *b->encode(data));
  EXPECT_NE(a->fingerprint(), other->fingerprint());
}

TEST_F(ModelTest, LearnedCodesSeparateClusters) {
  // IMSAT(VAT) on well-separated blobs: items of one blob should share codes far more than
  // items of different blobs.
  const L::Dataset data = blobs(4, 60, 10, 3);
  L::TrainConfig c = quick_config(L::Method::kImsatVat);
  c.epochs = 40;
  auto model = L::train(data, c);
  ASSERT_TRUE(model.is_ok()) << model.status().to_string();
  auto codes = *model->encode(data);
  double within = 0, between = 0;
  int nw = 0, nb = 0;
  for (size_t i = 0; i < data.rows; ++i) {
    for (size_t j = i + 1; j < data.rows; ++j) {
      const int d = static_cast<int>(std::bitset<8>(codes[2 * i] ^ codes[2 * j]).count() +
                                     std::bitset<8>(codes[2 * i + 1] ^ codes[2 * j + 1]).count());
      (data.labels[i] == data.labels[j] ? within : between) += d;
      (data.labels[i] == data.labels[j] ? nw : nb) += 1;
    }
  }
  EXPECT_LT(within / nw, 0.5 * between / nb)
      << "within " << within / nw << " between " << between / nb;
}

TEST_F(ModelTest, EpochLogAndProgressCallbackReportEveryTerm) {
  const L::Dataset data = blobs(2, 50, 6, 4);
  L::TrainConfig c = quick_config(L::Method::kImsatVat);
  int steps = 0;
  c.on_progress = [&](const L::Progress& p, bool epoch_end) {
    if (!epoch_end) ++steps;
    EXPECT_LE(p.step, p.total_steps);
  };
  std::vector<L::Progress> log;
  auto model = L::train(data, c, &log);
  ASSERT_TRUE(model.is_ok());
  ASSERT_EQ(log.size(), 3u);
  EXPECT_EQ(steps, 3 * 2);  // 100 items, batch 50
  EXPECT_GT(log.back().sat, 0);
  EXPECT_GT(log.back().marg_entropy, 0);
}

TEST_F(ModelTest, CancellationStopsTraining) {
  const L::Dataset data = blobs(2, 50, 6, 4);
  L::TrainConfig c = quick_config(L::Method::kImsatVat);
  std::atomic<bool> cancel{false};
  c.cancel = &cancel;
  c.on_progress = [&](const L::Progress& p, bool) {
    if (p.step >= 2) cancel = true;
  };
  auto model = L::train(data, c);
  ASSERT_FALSE(model.is_ok());
  EXPECT_EQ(model.status().code(), Status::Code::kCancelled);
}

TEST_F(ModelTest, ClusteringModelsAssignClusters) {
  const L::Dataset data = blobs(3, 40, 8, 5);
  for (L::Method m : {L::Method::kImsatVat, L::Method::kKmeans}) {
    L::TrainConfig c = quick_config(m);
    c.clusters = 3;
    c.epochs = 20;
    auto model = L::train(data, c);
    ASSERT_TRUE(model.is_ok()) << model.status().to_string();
    EXPECT_TRUE(model->is_clustering());
    auto assigned = model->assign(data);
    ASSERT_TRUE(assigned.is_ok());
    ASSERT_EQ(assigned->size(), data.rows);
    for (int32_t a : *assigned) EXPECT_TRUE(a >= 0 && a < 3);
    EXPECT_FALSE(model->encode(data).is_ok());
  }
}

TEST_F(ModelTest, ItqProjectionHasOrthonormalColumns) {
  // ITQ's final projection is PCA (orthonormal columns) times a rotation: W^T W = I.
  const L::Dataset data = blobs(4, 50, 20, 6);
  auto model = L::train(data, quick_config(L::Method::kItq));
  ASSERT_TRUE(model.is_ok());
  ASSERT_TRUE(model->save(path("itq.bin")).is_ok());
  auto loaded = L::Model::load(path("itq.bin"));
  ASSERT_TRUE(loaded.is_ok());
  // Read the projection back through the model's own tensors.
  torch::Tensor w;
  for (const auto& [name, t] : loaded->internals().tensors()) {
    if (name == "weight") w = t;
  }
  ASSERT_TRUE(w.defined());
  torch::Tensor gram = w.t().matmul(w);
  EXPECT_TRUE(torch::allclose(gram, torch::eye(16), 1e-4, 1e-4)) << gram;
}

TEST_F(ModelTest, BadConfigurationsAreInvalidArguments) {
  const L::Dataset data = blobs(2, 20, 6, 7);
  L::TrainConfig c = quick_config(L::Method::kImsatVat, 12);
  EXPECT_EQ(L::train(data, c).status().code(), Status::Code::kInvalidArgument);
  c = quick_config(L::Method::kItq, 16);  // 16 bits > 6 dimensions
  EXPECT_EQ(L::train(data, c).status().code(), Status::Code::kInvalidArgument);
  c = quick_config(L::Method::kImsatVat);
  c.device = "tpu";
  EXPECT_EQ(L::train(data, c).status().code(), Status::Code::kInvalidArgument);
  L::Dataset bad = data;
  bad.values[5] = std::numeric_limits<float>::infinity();
  EXPECT_EQ(L::train(bad, quick_config(L::Method::kLsh)).status().code(),
            Status::Code::kInvalidArgument);
}

TEST_F(ModelTest, EncodeRejectsWrongDimensionAndNaN) {
  const L::Dataset data = blobs(2, 20, 6, 8);
  auto model = L::train(data, quick_config(L::Method::kLsh));
  ASSERT_TRUE(model.is_ok());
  std::vector<float> row(7, 0.f);
  auto wrong = model->encode(row.data(), 1, 7);
  ASSERT_FALSE(wrong.is_ok());
  EXPECT_NE(wrong.status().message().find("expects 6"), std::string::npos);
  row.resize(6);
  row[2] = std::nanf("");
  EXPECT_EQ(model->encode(row.data(), 1, 6).status().code(), Status::Code::kInvalidArgument);
}

TEST_F(ModelTest, DamagedTruncatedAndFutureFilesAreClearErrors) {
  const L::Dataset data = blobs(2, 20, 6, 9);
  auto model = L::train(data, quick_config(L::Method::kLsh));
  ASSERT_TRUE(model.is_ok());
  ASSERT_TRUE(model->save(path("m.bin")).is_ok());
  std::string bytes;
  {
    std::ifstream in(path("m.bin"), std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), {});
  }
  auto write = [&](const std::string& name, const std::string& b) {
    std::ofstream(path(name), std::ios::binary) << b;
    return L::Model::load(path(name));
  };
  auto truncated = write("t.bin", bytes.substr(0, bytes.size() - 30));
  ASSERT_FALSE(truncated.is_ok());
  EXPECT_EQ(truncated.status().code(), Status::Code::kCorruption);
  std::string flipped = bytes;
  flipped[flipped.size() / 2] ^= 0x40;
  EXPECT_EQ(write("f.bin", flipped).status().code(), Status::Code::kCorruption);
  std::string future = bytes;
  future[8] = 99;  // format version
  auto v = write("v.bin", future);
  ASSERT_FALSE(v.is_ok());
  EXPECT_EQ(v.status().code(), Status::Code::kInvalidArgument);
  EXPECT_NE(v.status().message().find("version 99"), std::string::npos);
  EXPECT_EQ(write("g.bin", "not a model").status().code(), Status::Code::kCorruption);
  EXPECT_EQ(L::Model::load(path("missing.bin")).status().code(), Status::Code::kNotFound);
}

TEST_F(ModelTest, HeaderRecordsShapePreprocessingAndArchitecture) {
  const L::Dataset data = blobs(2, 30, 6, 10);
  auto model = L::train(data, quick_config(L::Method::kImsatVat));
  ASSERT_TRUE(model.is_ok());
  const std::string header = model->header_json();
  for (const char* key : {"\"format_version\"", "\"input_shape\"", "\"standardize\"", "\"hidden\"",
                          "\"fingerprint\"", "\"imsat-vat\"", "\"eps_mean\""}) {
    EXPECT_NE(header.find(key), std::string::npos) << key << " missing in " << header;
  }
}

TEST_F(ModelTest, AutomaticLambdaDependsOnCodeLengthAndIsRecorded) {
  L::TrainConfig c;
  c.bits = 16;
  EXPECT_DOUBLE_EQ(L::effective_lambda(c), 0.1);
  c.bits = 32;
  EXPECT_DOUBLE_EQ(L::effective_lambda(c), 0.05);
  c.clusters = 10;
  EXPECT_DOUBLE_EQ(L::effective_lambda(c), 0.1);
  c.clusters = 0;
  c.lambda = 0.3;
  EXPECT_DOUBLE_EQ(L::effective_lambda(c), 0.3);

  auto model = L::train(blobs(2, 30, 6, 10), quick_config(L::Method::kImsatVat, 24));
  ASSERT_TRUE(model.is_ok());
  EXPECT_NE(model->header_json().find("\"lambda\": 0.05"), std::string::npos)
      << model->header_json();
}

// The radius scale and the training length left at 0 follow the data: the paper's
// image recipe on 8-bit pixels and for clustering, a wider radius and fewer steps for hash
// functions of other feature vectors, and 2 steps per item (at least 1,000) on small data, so a
// few hundred items do not train the 14,000 steps of Fashion-MNIST.
TEST_F(ModelTest, AutomaticRadiusAndLengthDependOnTheDataAndAreRecorded) {
  L::Dataset vectors = blobs(2, 300, 6, 10);  // 600 rows: 2 steps per epoch of 250
  L::Dataset images = vectors;
  images.uint8_pixels = true;
  L::TrainConfig c;
  EXPECT_DOUBLE_EQ(L::effective_eps_scale(images, c), 0.25);
  EXPECT_DOUBLE_EQ(L::effective_eps_scale(vectors, c), 1.0);
  EXPECT_EQ(L::effective_epochs(images, c), 600);  // 1,200 steps: 2 per item
  EXPECT_EQ(L::effective_epochs(vectors, c), 600);
  L::Dataset more_images = images;
  more_images.rows = 10000;                             // 40 steps per epoch
  EXPECT_EQ(L::effective_epochs(more_images, c), 350);  // the cap: 14,000 steps
  L::Dataset more_vectors = vectors;
  more_vectors.rows = 10000;
  EXPECT_EQ(L::effective_epochs(more_vectors, c), 125);  // the cap: 5,000 steps
  L::Dataset few = vectors;
  few.rows = 100;                                // 1 step per epoch
  EXPECT_EQ(L::effective_epochs(few, c), 1000);  // at least 1,000 steps
  EXPECT_EQ(L::automatic_min_steps(300, true), 1000);
  EXPECT_EQ(L::automatic_min_steps(2000, true), 4000);
  c.clusters = 4;
  EXPECT_DOUBLE_EQ(L::effective_eps_scale(vectors, c), 0.25);
  EXPECT_EQ(L::effective_epochs(vectors, c), 600);
  c.clusters = 0;
  c.steps = 1001;  // --steps: rounded up to whole epochs
  EXPECT_EQ(L::effective_epochs(vectors, c), 501);
  c.steps = 0;
  c.clusters = 0;
  c.eps_scale = 3;
  c.epochs = 9;
  EXPECT_DOUBLE_EQ(L::effective_eps_scale(images, c), 3.0);
  EXPECT_EQ(L::effective_epochs(vectors, c), 9);
  // Large data: never fewer than 50 epochs.
  L::Dataset large = vectors;
  large.rows = 100000;
  EXPECT_EQ(L::effective_epochs(large, L::TrainConfig{}), 50);
  // No rows (train() refuses them first): a defined answer, not a division by zero.
  EXPECT_EQ(L::effective_epochs(L::Dataset{}, L::TrainConfig{}), 1000);

  L::TrainConfig quick = quick_config(L::Method::kImsatVat, 16);
  quick.eps_scale = 0;
  auto model = L::train(blobs(2, 30, 6, 10), quick);
  ASSERT_TRUE(model.is_ok()) << model.status().to_string();
  const nlohmann::json t = nlohmann::json::parse(model->training_json());
  EXPECT_EQ(t["eps_scale"].get<double>(), 1.0) << t.dump();
  quick.eps_scale = -1;
  EXPECT_EQ(L::train(blobs(2, 30, 6, 10), quick).status().code(), Status::Code::kInvalidArgument);
}

// A model path that is a folder failed with "basic_filebuf::underflow error reading the
// file: Is a directory" and no path.
TEST_F(ModelTest, AFolderGivenAsAModelIsNamed) {
  auto m = imsat::learn::Model::load(dir_.string());
  ASSERT_FALSE(m.is_ok());
  EXPECT_EQ(m.status().code(), imsat::Status::Code::kInvalidArgument);
  EXPECT_NE(m.status().message().find(dir_.string()), std::string::npos) << m.status().message();
  EXPECT_NE(m.status().message().find("folder"), std::string::npos) << m.status().message();
}

}  // namespace

namespace {

// Encodes every row alone (the lean encoder: one BLAS matrix-vector product per layer) and all
// rows in one call (LibTorch), and checks that the two agree: bit probabilities within float
// rounding, codes equal wherever a bit is not on the fence.
void expect_lean_matches_batch(const L::Model& model, const L::Dataset& data) {
  const size_t bits = static_cast<size_t>(model.bits());
  auto batch_p = model.bit_probabilities(data.values.data(), data.rows, data.cols);
  auto batch_codes = model.encode(data);
  ASSERT_TRUE(batch_p.is_ok() && batch_codes.is_ok());
  const size_t cb = static_cast<size_t>(model.code_bytes());
  size_t compared = 0;
  for (size_t r = 0; r < data.rows; ++r) {
    auto p = model.bit_probabilities(data.row(r), 1, data.cols);
    auto code = model.encode(data.row(r), 1, data.cols);
    ASSERT_TRUE(p.is_ok() && code.is_ok());
    for (size_t d = 0; d < bits; ++d) {
      const float want = (*batch_p)[r * bits + d];
      ASSERT_NEAR((*p)[d], want, 1e-5) << "row " << r << ", bit " << d;
      if (std::abs(want - 0.5f) < 1e-5f) continue;
      const bool lean_bit = ((*code)[d / 8] >> (d % 8)) & 1;
      const bool batch_bit = ((*batch_codes)[r * cb + d / 8] >> (d % 8)) & 1;
      ASSERT_EQ(lean_bit, batch_bit) << "row " << r << ", bit " << d;
      ++compared;
    }
  }
  EXPECT_GT(compared, data.rows * bits / 2);
  // Calls of up to 16 rows go through the same encoder in blocks of 8 rows, and each row gets the
  // same codes and probabilities, bit for bit, as alone.
  if (model.encodes_concurrently(1)) {  // every hashing model but spectral hashing
    EXPECT_TRUE(model.encodes_concurrently(16));
    EXPECT_FALSE(model.encodes_concurrently(17));
  }
  for (size_t n : {3, 13, 16}) {
    auto codes = model.encode(data.row(1), n, data.cols);
    auto probabilities = model.bit_probabilities(data.row(1), n, data.cols);
    ASSERT_TRUE(codes.is_ok() && probabilities.is_ok());
    for (size_t r = 0; r < n; ++r) {
      auto one = model.encode(data.row(1 + r), 1, data.cols);
      auto p = model.bit_probabilities(data.row(1 + r), 1, data.cols);
      ASSERT_TRUE(one.is_ok() && p.is_ok());
      EXPECT_TRUE(std::equal(one->begin(), one->end(), codes->begin() + r * cb)) << n << " " << r;
      EXPECT_TRUE(std::equal(p->begin(), p->end(), probabilities->begin() + r * bits))
          << n << " " << r;
    }
  }
}

}  // namespace

// Every variant of the lean encoder's kernel this CPU runs (AVX-512, AVX2, generic) computes the
// same sums as a double-precision reference, zero inputs and odd sizes included.
TEST(LeanKernels, EveryVariantComputesTheReferenceSums) {
  constexpr int kIn = 37, kOut = 29;
  constexpr size_t kRows = 3, kInStride = 40, kOutStride = 31;
  std::mt19937 rng(5);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> w(kIn * kOut), in(kRows * kInStride), start(kRows * kOutStride);
  for (float& v : w) v = normal(rng);
  for (float& v : start) v = normal(rng);
  for (size_t i = 0; i < in.size(); ++i) in[i] = i % 3 == 0 ? 0.0f : normal(rng);
  const auto variants = L::internal::lean_kernels();
  ASSERT_FALSE(variants.empty());
  EXPECT_STREQ(variants.back().name, "generic");
  for (const auto& v : variants) {
    SCOPED_TRACE(v.name);
    std::vector<float> out = start;
    v.fn(w.data(), in.data(), kInStride, kIn, out.data(), kOutStride, kOut, kRows);
    for (size_t r = 0; r < kRows; ++r) {
      for (int j = 0; j < kOut; ++j) {
        double want = start[r * kOutStride + static_cast<size_t>(j)];
        for (int i = 0; i < kIn; ++i) {
          want += double(in[r * kInStride + static_cast<size_t>(i)]) * w[i * kOut + j];
        }
        EXPECT_NEAR(out[r * kOutStride + static_cast<size_t>(j)], want, 1e-4) << r << " " << j;
      }
      // The padding between output rows is left alone.
      EXPECT_EQ(out[r * kOutStride + kOut], start[r * kOutStride + kOut]);
    }
  }
}

TEST_F(ModelTest, OneInputAtATimeGivesTheCodesOfABatch) {
  const L::Dataset data = blobs(4, 30, 20, 5);
  for (L::Method m : L::hashing_methods()) {
    SCOPED_TRACE(L::method_name(m));
    auto model = L::train(data, quick_config(m));
    ASSERT_TRUE(model.is_ok()) << model.status().to_string();
    expect_lean_matches_batch(*model, data);
    // A loaded model builds the same encoder.
    ASSERT_TRUE(model->save(path("m.bin")).is_ok());
    auto loaded = L::Model::load(path("m.bin"));
    ASSERT_TRUE(loaded.is_ok());
    expect_lean_matches_batch(*loaded, data);
  }
  // Two hidden layers with batch normalisation, and the linear shortcut of the ITQ start.
  L::TrainConfig c = quick_config(L::Method::kImsatVat);
  c.hidden = {24, 16};
  c.init_itq = true;
  auto deep = L::train(data, c);
  ASSERT_TRUE(deep.is_ok()) << deep.status().to_string();
  expect_lean_matches_batch(*deep, data);
  // Pixels (scaled, not standardised).
  L::Dataset pixels;
  pixels.rows = 60;
  pixels.cols = 36;
  pixels.uint8_pixels = true;
  std::mt19937 rng(3);
  for (size_t i = 0; i < pixels.rows * pixels.cols; ++i) {
    pixels.values.push_back(static_cast<float>(rng() % 256));
  }
  auto pix = L::train(pixels, quick_config(L::Method::kImsatVat, 32));
  ASSERT_TRUE(pix.is_ok()) << pix.status().to_string();
  expect_lean_matches_batch(*pix, pixels);
}

namespace {

// A nearest-neighbour model: PCA-ITQ for `metric` on blobs of 16 dimensions.
L::Model metric_model(L::Metric metric, const L::Dataset& data) {
  L::TrainConfig c = quick_config(L::Method::kItq, 16);
  c.metric = metric;
  auto model = L::train(data, c);
  EXPECT_TRUE(model.is_ok()) << model.status().to_string();
  return std::move(model).value();
}

}  // namespace

TEST_F(ModelTest, AMetricIsRecordedAndSurvivesSaveAndLoad) {
  const L::Dataset data = blobs(3, 40, 16, 4);
  const L::Model plain = L::train(data, quick_config(L::Method::kItq, 16)).value();
  EXPECT_FALSE(plain.metric().has_value());
  EXPECT_EQ(plain.header_json().find("\"metric\""), std::string::npos);
  for (L::Metric metric : {L::Metric::kL2, L::Metric::kCosine}) {
    const L::Model model = metric_model(metric, data);
    ASSERT_EQ(model.metric(), metric);
    const nlohmann::json h = nlohmann::json::parse(model.header_json());
    EXPECT_EQ(h["metric"], L::metric_name(metric));
    // One scale for every feature keeps Euclidean order (per-feature standardisation would not).
    EXPECT_EQ(h["preprocessing"]["kind"], metric == L::Metric::kL2 ? "center" : "unit-center");
    EXPECT_NE(model.fingerprint(), plain.fingerprint());
    ASSERT_TRUE(model.save(path("m.model")).is_ok());
    const auto loaded = L::Model::load(path("m.model"));
    ASSERT_TRUE(loaded.is_ok()) << loaded.status().to_string();
    EXPECT_EQ(loaded->metric(), metric);
    EXPECT_EQ(loaded->fingerprint(), model.fingerprint());
    EXPECT_EQ(*loaded->encode(data), *model.encode(data));
  }
  EXPECT_EQ(*L::parse_metric("cosine"), L::Metric::kCosine);
  EXPECT_FALSE(L::parse_metric("dot").is_ok());
}

TEST_F(ModelTest, ACosineModelIgnoresLengthAndRefusesZeroVectors) {
  const L::Dataset data = blobs(3, 40, 16, 5);
  const L::Model model = metric_model(L::Metric::kCosine, data);
  std::vector<float> scaled(data.values);
  for (float& v : scaled) v *= 7.5f;
  // Batches (LibTorch) and single inputs (the lean encoder) alike.
  EXPECT_EQ(*model.encode(scaled.data(), data.rows, data.cols), *model.encode(data));
  for (size_t r = 0; r < 5; ++r) {
    EXPECT_EQ(*model.encode(scaled.data() + r * data.cols, 1, data.cols),
              *model.encode(data.row(r), 1, data.cols));
  }
  const std::vector<float> zero(data.cols, 0.0f);
  const auto refused = model.encode(zero.data(), 1, data.cols);
  ASSERT_FALSE(refused.is_ok());
  EXPECT_NE(refused.status().message().find("all zeros"), std::string::npos)
      << refused.status().message();
}

TEST_F(ModelTest, LinearHashersGiveSoftBitsThatAgreeWithTheirCodes) {
  const L::Dataset data = blobs(3, 40, 16, 6);
  for (L::Method method : {L::Method::kItq, L::Method::kLsh}) {
    const L::Model model = L::train(data, quick_config(method, 16)).value();
    const std::vector<uint8_t> codes = *model.encode(data);
    for (size_t rows : {size_t{1}, data.rows}) {  // the lean encoder and LibTorch
      const std::vector<float> p = *model.bit_probabilities(data.values.data(), rows, data.cols);
      size_t strictly_inside = 0;
      for (size_t r = 0; r < rows; ++r) {
        float top = 0;
        for (size_t d = 0; d < 16; ++d) {
          const float q = p[r * 16 + d];
          const bool bit = codes[r * 2 + d / 8] >> (d % 8) & 1;
          EXPECT_EQ(q > 0.5f, bit) << L::method_name(method) << " row " << r << " bit " << d;
          strictly_inside += q > 0.01f && q < 0.99f;
          top = std::max(top, std::fabs(q - 0.5f));
        }
        // The surest bit of each item sits at the logit of 8.
        EXPECT_NEAR(top, 1.0f / (1.0f + std::exp(-8.0f)) - 0.5f, 1e-4f);
      }
      EXPECT_GT(strictly_inside, rows * 16 / 4) << L::method_name(method);
    }
  }
  EXPECT_EQ(L::default_method_for_metric(784), L::Method::kItq);
  EXPECT_EQ(L::default_bits_for_metric(784), 128);
  EXPECT_EQ(L::default_bits_for_metric(20), 16);
  EXPECT_EQ(L::default_method_for_metric(5), L::Method::kLsh);
}
