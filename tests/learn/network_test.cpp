// The IMSAT objectives, self-augmentation and the encoder (src/learn/learn_internal.h).
#include <ATen/CPUGeneratorImpl.h>
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "learn/learn_internal.h"

namespace {

namespace L = imsat::learn::internal;

double h(double p) { return -p * std::log(p + 1e-8) - (1 - p) * std::log(1 - p + 1e-8); }

torch::Tensor logits_of(const std::vector<std::vector<double>>& p) {
  std::vector<float> flat;
  for (const auto& row : p) {
    for (double v : row) flat.push_back(static_cast<float>(std::log(v / (1 - v))));
  }
  return torch::tensor(flat).reshape(
      {static_cast<int64_t>(p.size()), static_cast<int64_t>(p[0].size())});
}

TEST(HashInformation, TermsMatchHandComputation) {
  // Two items, two bits: p = [[0.9, 0.2], [0.3, 0.6]].
  const std::vector<std::vector<double>> p = {{0.9, 0.2}, {0.3, 0.6}};
  L::HashTerms t = L::hash_information(logits_of(p));
  const double cond = ((h(0.9) + h(0.2)) + (h(0.3) + h(0.6))) / 2;
  const double m0 = 0.6, m1 = 0.4;  // bit means
  const double marg = h(m0) + h(m1);
  // Joint of bits 0 and 1, averaged over the two items.
  double mi = 0;
  for (int a = 0; a <= 1; ++a) {
    for (int b = 0; b <= 1; ++b) {
      double joint = 0;
      for (const auto& row : p) {
        joint += (a ? row[0] : 1 - row[0]) * (b ? row[1] : 1 - row[1]) / 2;
      }
      const double indep = (a ? m0 : 1 - m0) * (b ? m1 : 1 - m1);
      mi += joint * std::log((joint + 1e-8) / (indep + 1e-8));
    }
  }
  EXPECT_NEAR(t.cond_entropy.item<double>(), cond, 1e-5);
  EXPECT_NEAR(t.marg_entropy.item<double>(), marg, 1e-5);
  // Ordered pairs (0,1) and (1,0) contribute the same mutual information.
  EXPECT_NEAR(t.pair_mi.item<double>(), 2 * mi, 1e-5);
}

TEST(HashInformation, PairwiseMiNearZeroForIndependentBits) {
  // Deterministic bits covering the four combinations equally: independent, balanced.
  const std::vector<std::vector<double>> p = {
      {0.999, 0.999}, {0.999, 0.001}, {0.001, 0.999}, {0.001, 0.001}};
  L::HashTerms t = L::hash_information(logits_of(p));
  EXPECT_NEAR(t.pair_mi.item<double>(), 0.0, 1e-4);
  EXPECT_NEAR(t.marg_entropy.item<double>(), 2 * std::log(2.0), 1e-4);
}

TEST(HashInformation, PairwiseMiLargeForDuplicatedBits) {
  // Bit 1 copies bit 0: I = ln 2 per ordered pair.
  const std::vector<std::vector<double>> p = {{0.99999, 0.99999}, {0.00001, 0.00001}};
  L::HashTerms t = L::hash_information(logits_of(p));
  EXPECT_NEAR(t.pair_mi.item<double>(), 2 * std::log(2.0), 1e-3);
}

TEST(ClusterInformation, TermsMatchHandComputation) {
  torch::Tensor logits = torch::tensor({2.0f, 0.0f, -1.0f, 0.5f, 0.5f, 0.5f}).reshape({2, 3});
  L::ClusterTerms t = L::cluster_information(logits);
  torch::Tensor p = torch::softmax(logits, 1);
  double cond = 0;
  std::vector<double> mean(3, 0);
  for (int i = 0; i < 2; ++i) {
    for (int k = 0; k < 3; ++k) {
      const double v = p[i][k].item<double>();
      cond -= v * std::log(v + 1e-8) / 2;
      mean[k] += v / 2;
    }
  }
  double marg = 0;
  for (double v : mean) marg -= v * std::log(v + 1e-8);
  EXPECT_NEAR(t.cond_entropy.item<double>(), cond, 1e-5);
  EXPECT_NEAR(t.marg_entropy.item<double>(), marg, 1e-5);
}

TEST(SatDivergence, BernoulliAndCategoricalKlMatchHandValues) {
  torch::Tensor a = torch::tensor({0.0f}).reshape({1, 1});  // p = 0.5
  torch::Tensor b = torch::tensor({static_cast<float>(std::log(0.25 / 0.75))}).reshape({1, 1});
  const double want = 0.5 * std::log(0.5 / 0.25) + 0.5 * std::log(0.5 / 0.75);
  EXPECT_NEAR(L::sat_divergence(a, b, false).item<double>(), want, 1e-6);
  torch::Tensor c = torch::tensor({0.0f, 0.0f}).reshape({1, 2});  // (0.5, 0.5)
  torch::Tensor d = torch::tensor({0.0f, static_cast<float>(std::log(3.0))}).reshape({1, 2});
  const double want_cat = 0.5 * std::log(0.5 / 0.25) + 0.5 * std::log(0.5 / 0.75);
  EXPECT_NEAR(L::sat_divergence(c, d, true).item<double>(), want_cat, 1e-6);
  EXPECT_NEAR(L::sat_divergence(d, d, true).item<double>(), 0.0, 1e-7);
}

class TrainedNet : public ::testing::Test {
 protected:
  void SetUp() override {
    gen_ = at::detail::createCPUGenerator(5);
    net_ = L::Mlp(10, std::vector<int>{32}, 8);
    net_->initialise(gen_);
    // Larger output weights than the near-zero init, so the KL has a non-trivial landscape.
    torch::NoGradGuard no_grad;
    net_->linears.back()->weight.normal_(0, 0.5, gen_);
    net_->train();
    x_ = torch::randn({64, 10}, gen_);
  }
  at::Generator gen_;
  L::Mlp net_{nullptr};
  torch::Tensor x_;
};

TEST_F(TrainedNet, VatDirectionRaisesKlMoreThanRandomDirection) {
  torch::Tensor clean = net_->forward(x_, false).detach();
  torch::Tensor random = L::unit_rows(torch::randn(x_.sizes(), gen_));
  torch::Tensor adv = L::vat_direction(net_, x_, clean, random, 1e-1, 1, false);
  const double eps = 0.5;
  torch::NoGradGuard no_grad;
  const double kl_adv =
      L::sat_divergence(clean, net_->forward(x_ + eps * adv, false), false).item<double>();
  const double kl_rand =
      L::sat_divergence(clean, net_->forward(x_ + eps * random, false), false).item<double>();
  EXPECT_GT(kl_adv, 2 * kl_rand) << "adversarial " << kl_adv << " random " << kl_rand;
  EXPECT_NEAR(adv.norm(2, {1}).mean().item<double>(), 1.0, 1e-4);
}

TEST_F(TrainedNet, PerturbedPassesLeaveBatchNormStatisticsAlone) {
  torch::Tensor mean0 = net_->norms[0]->running_mean.clone();
  torch::Tensor var0 = net_->norms[0]->running_var.clone();
  torch::Tensor eps = torch::full({x_.size(0)}, 0.3f);
  L::LossConfig c;
  c.vat = true;
  {
    // The perturbed passes alone (VAT direction + perturbed forward).
    torch::Tensor clean = net_->forward(x_, false).detach();
    torch::Tensor d = L::vat_direction(net_, x_, clean,
                                       L::unit_rows(torch::randn(x_.sizes(), gen_)), 10, 1, false);
    net_->forward(x_ + 0.3 * d, false);
  }
  EXPECT_TRUE(torch::equal(net_->norms[0]->running_mean, mean0));
  EXPECT_TRUE(torch::equal(net_->norms[0]->running_var, var0));
  // A full step's loss: exactly one clean pass updates the statistics, with momentum 0.1.
  L::imsat_loss(net_, x_, eps, c, gen_);
  torch::Tensor h = net_->linears[0]->forward(x_).detach();
  torch::Tensor want_mean = 0.9 * mean0 + 0.1 * h.mean(0);
  EXPECT_TRUE(torch::allclose(net_->norms[0]->running_mean, want_mean, 1e-5, 1e-6));
}

TEST(KthNeighbour, MatchesBruteForceAcrossBlockSizes) {
  at::Generator gen = at::detail::createCPUGenerator(9);
  torch::Tensor x = torch::randn({53, 6}, gen);
  torch::Tensor d = torch::cdist(x, x);
  torch::Tensor want = std::get<0>(d.sort(1)).select(1, 10);
  for (int64_t block : {7, 16, 53, 100}) {
    torch::Tensor got = L::kth_neighbour_distance(x, 10, block);
    EXPECT_TRUE(torch::allclose(got, want, 1e-4, 1e-4)) << "block " << block;
  }
  // Fewer points than k: the farthest other point.
  torch::Tensor small = x.slice(0, 0, 4);
  torch::Tensor far = std::get<0>(torch::cdist(small, small).sort(1)).select(1, 3);
  EXPECT_TRUE(torch::allclose(L::kth_neighbour_distance(small, 10, 2), far, 1e-4, 1e-4));
}

TEST(RandomAffine, MovesImagesAndKeepsConstantOnesConstant) {
  at::Generator gen = at::detail::createCPUGenerator(3);
  L::LossConfig c;
  // A constant image stays constant (bilinear weights sum to 1, borders are extended).
  const torch::Tensor flat = torch::full({4, 8 * 8 * 3}, 0.25f);
  const torch::Tensor moved_flat = L::random_affine(flat, {8, 8, 3}, c, gen);
  ASSERT_EQ(moved_flat.sizes(), flat.sizes());
  EXPECT_TRUE(torch::allclose(moved_flat, flat, 1e-5, 1e-5));
  // A bar image moves, differently per row, and keeps its range.
  torch::Tensor bars = torch::full({4, 16, 16}, -1.0f);
  bars.slice(2, 6, 10).fill_(1.0f);
  const torch::Tensor moved = L::random_affine(bars.view({4, 256}), {16, 16}, c, gen);
  EXPECT_GT((moved - bars.view({4, 256})).abs().max().item<float>(), 0.1f);
  EXPECT_GT((moved[0] - moved[1]).abs().max().item<float>(), 0.01f);
  EXPECT_LE(moved.max().item<float>(), 1.0f + 1e-5f);
  EXPECT_GE(moved.min().item<float>(), -1.0f - 1e-5f);
}

TEST(Mlp, InitialisationStartsAtHalfProbability) {
  at::Generator gen = at::detail::createCPUGenerator(3);
  L::Mlp net(20, std::vector<int>{50, 50}, 16);
  net->initialise(gen);
  net->train();
  torch::Tensor p = torch::sigmoid(net->forward(torch::randn({100, 20}, gen)));
  EXPECT_LT((p - 0.5).abs().max().item<double>(), 1e-3);
}

// A network started at PCA-ITQ (TrainConfig::init_itq) gives PCA-ITQ's codes before training:
// its deep path starts near zero, the shortcut holds the projection, each bit's logits have the
// asked standard deviation, and bits beyond the features start at zero.
TEST(Mlp, ShortcutStartsAtPcaItqsCodes) {
  at::Generator gen = at::detail::createCPUGenerator(5);
  const torch::Tensor x =
      torch::randn({300, 6}, gen) * torch::tensor({3.f, 2.f, 1.f, 1.f, .5f, .2f});
  L::Mlp net(6, std::vector<int>{20}, 8, /*shortcut=*/true);
  net->initialise(gen);
  L::start_shortcut_at_itq(net->skip, x, 8, 20, 3.0, gen);
  net->eval();
  const torch::Tensor skip = net->skip->forward(x).detach();
  const torch::Tensor logits = net->forward(x).detach();
  // Six features, eight bits: ITQ's six, then two bits at zero.
  EXPECT_LT((skip.slice(1, 0, 6).std(0) - 3.0).abs().max().item<double>(), 1e-3);
  EXPECT_EQ(skip.slice(1, 6, 8).abs().max().item<double>(), 0.0);
  EXPECT_TRUE(torch::equal(logits.slice(1, 0, 6) > 0, skip.slice(1, 0, 6) > 0));
  // PCA-ITQ's bits are balanced by construction (centred projections): no bit is constant.
  const torch::Tensor ones = (skip.slice(1, 0, 6) > 0).to(torch::kFloat).mean(0);
  EXPECT_GT(ones.min().item<double>(), 0.2);
  EXPECT_LT(ones.max().item<double>(), 0.8);
  // Without the shortcut, the same network has no `skip` module.
  L::Mlp plain(6, std::vector<int>{20}, 8);
  EXPECT_FALSE(plain->skip);
}

// The static step (FlatAdam, gradients by autograd::grad, buffers allocated once: what a CUDA
// graph captures) trains as the eager step with LibTorch's Adam, up to float rounding.
struct Trained {
  std::vector<std::pair<std::string, torch::Tensor>> params;
  L::StepValues sums{};
};
Trained train_steps(L::StepKind kind, double weight_decay, bool rpt, int steps) {
  at::Generator gen = at::detail::createCPUGenerator(11);
  L::Mlp net(12, std::vector<int>{24, 20}, 8);
  net->initialise(gen);
  net->train();
  torch::Tensor x = torch::randn({40, 12}, gen);
  torch::Tensor eps = torch::full({40}, 0.4f);
  L::LossConfig loss;
  loss.vat = !rpt;
  loss.rpt = rpt;
  L::AdamConfig adam;
  adam.lr = 0.01;
  adam.weight_decay = weight_decay;
  // Adam's update m / (sqrt(v) + eps) turns a gradient of pure rounding noise into a full step of
  // lr with a random sign; the two steps sum in different orders, and on some CPUs (an AMD EPYC
  // with OpenBLAS) that noise grew to 0.04 over twelve steps. A larger eps keeps such gradients'
  // steps small and leaves every real gradient's step (and the bias corrections) as they were.
  adam.eps = 1e-4;
  auto step = L::make_train_step(kind, net, x, eps, 10, loss, adam, gen);
  for (int done = 0; done < steps; ++done) {
    if (done % 4 == 0) step->start_epoch(torch::randperm(40, gen));
    step->run(done % 4);
  }
  Trained out;
  out.sums = step->take_sums();
  for (const auto& p : net->named_parameters()) {
    out.params.emplace_back(p.key(), p.value().detach().clone());
  }
  for (const auto& b : net->named_buffers()) {
    out.params.emplace_back(b.key(), b.value().detach().clone().to(torch::kFloat));
  }
  return out;
}

TEST(TrainStep, StaticStepTrainsAsTheEagerStep) {
  for (double wd : {0.0, 1e-2}) {
    for (bool rpt : {false, true}) {
      const std::string where = "wd " + std::to_string(wd) + " rpt " + std::to_string(rpt);
      // One step: the same numbers.
      Trained eager = train_steps(L::StepKind::kEager, wd, rpt, 1);
      Trained fixed = train_steps(L::StepKind::kStatic, wd, rpt, 1);
      ASSERT_EQ(eager.params.size(), fixed.params.size());
      for (size_t i = 0; i < eager.params.size(); ++i) {
        EXPECT_TRUE(torch::allclose(eager.params[i].second, fixed.params[i].second, 1e-5, 1e-6))
            << where << " " << eager.params[i].first;
      }
      // VAT's adversarial direction is the normalised gradient at a perturbation of size xi, a
      // gradient near rounding level: after a few steps the two steps' different summation
      // orders give different directions on some CPUs (an AMD EPYC: 0.04 apart after twelve
      // steps), so VAT is compared on the one step above and RPT, whose perturbation is drawn,
      // over many.
      if (!rpt) continue;
      // Twelve steps over three epochs (Adam's bias corrections change every step). The biases
      // of the layers before a BatchNorm have no gradient but rounding noise (the normalisation
      // cancels them), which Adam's normalised update amplifies into different values, and the
      // running means follow them; every other tensor must agree.
      eager = train_steps(L::StepKind::kEager, wd, rpt, 12);
      fixed = train_steps(L::StepKind::kStatic, wd, rpt, 12);
      for (size_t i = 0; i < eager.params.size(); ++i) {
        const std::string& name = eager.params[i].first;
        if ((name.rfind("fc", 0) == 0 && name.find(".bias") != std::string::npos) ||
            name.find("running_mean") != std::string::npos) {
          continue;
        }
        EXPECT_TRUE(torch::allclose(eager.params[i].second, fixed.params[i].second, 1e-3, 2e-4))
            << where << " " << name << " max difference "
            << (eager.params[i].second - fixed.params[i].second).abs().max().item<double>();
      }
      for (size_t i = 0; i < eager.sums.size(); ++i) {
        EXPECT_NEAR(eager.sums[i], fixed.sums[i], 1e-3 * (1 + std::abs(eager.sums[i])))
            << where << " term " << i;
      }
      // Twelve steps of non-zero loss terms were summed (the total can come out near zero).
      double largest = 0;
      for (double v : eager.sums) largest = std::max(largest, std::abs(v));
      EXPECT_GT(largest, 1e-3);
    }
  }
}

TEST(TrainStep, StaticStepMovesTheParameters) {
  at::Generator gen = at::detail::createCPUGenerator(2);
  L::Mlp net(6, std::vector<int>{8}, 8);
  net->initialise(gen);
  net->train();
  const torch::Tensor before = net->linears[0]->weight.detach().clone();
  auto step = L::make_train_step(L::StepKind::kStatic, net, torch::randn({8, 6}, gen),
                                 torch::full({8}, 0.3f), 4, L::LossConfig{}, L::AdamConfig{}, gen);
  step->start_epoch(torch::randperm(8, gen));
  step->run(0);
  // The module's own parameter tensors were updated (they are views of the optimiser's buffer).
  EXPECT_FALSE(torch::equal(before, net->linears[0]->weight.detach()));
  EXPECT_EQ(net->linears[0]->weight.sizes(), before.sizes());
}

TEST(TrainStep, CudaGraphNeedsCuda) {
  if (L::cuda_graphs_built() && torch::cuda::is_available()) GTEST_SKIP() << "CUDA present";
  at::Generator gen = at::detail::createCPUGenerator(1);
  L::Mlp net(4, std::vector<int>{8}, 8);
  EXPECT_THROW(L::make_train_step(L::StepKind::kCudaGraph, net, torch::zeros({4, 4}),
                                  torch::zeros({4}), 2, L::LossConfig{}, L::AdamConfig{}, gen),
               std::invalid_argument);
}

}  // namespace
