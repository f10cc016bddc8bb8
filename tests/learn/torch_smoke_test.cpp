// Foundation smoke test: LibTorch trains a tiny network, on a fast BLAS.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "learn/learn.h"

namespace {

TEST(TorchSmoke, LinkedBlasIsNotTheReferenceOne) {
  imsat::learn::BlasInfo blas = imsat::learn::linked_blas();
  // The reference BLAS makes a training step ~25x slower; tools/setup.sh installs OpenBLAS.
  EXPECT_NE(blas.name, "reference") << "sgemm_ resolves to " << blas.library_path;
  EXPECT_NE(blas.name, "unknown") << "sgemm_ resolves to " << blas.library_path;
}

TEST(TorchSmoke, TinyNetworkLossFalls) {
  torch::manual_seed(0);
  // y = sign of a fixed linear function of x: learnable by a small MLP in a few steps.
  torch::Tensor x = torch::randn({256, 8});
  torch::Tensor w = torch::randn({8, 1});
  torch::Tensor y = (x.matmul(w) > 0).to(torch::kFloat);
  torch::nn::Sequential net(torch::nn::Linear(8, 16), torch::nn::ReLU(), torch::nn::Linear(16, 1));
  torch::optim::Adam opt(net->parameters(), torch::optim::AdamOptions(0.01));
  auto loss_of = [&] { return torch::binary_cross_entropy_with_logits(net->forward(x), y); };
  const float initial = loss_of().item<float>();
  for (int step = 0; step < 50; ++step) {
    opt.zero_grad();
    torch::Tensor loss = loss_of();
    loss.backward();
    opt.step();
  }
  const float final_loss = loss_of().item<float>();
  EXPECT_LT(final_loss, 0.7f * initial) << "initial " << initial << " final " << final_loss;
}

TEST(TorchSmoke, ThreadSettingTakesEffect) {
  imsat::learn::set_num_threads(1);
  EXPECT_EQ(imsat::learn::num_threads(), 1);
}

}  // namespace
