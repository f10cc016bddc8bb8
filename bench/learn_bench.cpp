// Training speed: one full IMSAT(VAT) step (batch 250, 784 -> 400 -> 400 -> 16) under several
// thread splits, next to a plain sgemm of the same shapes, and the adaptive-epsilon kNN pass.
#include <ATen/CPUGeneratorImpl.h>
#include <benchmark/benchmark.h>

#include "learn/learn_internal.h"

namespace {

namespace L = imsat::learn::internal;

constexpr int64_t kBatch = 250, kDim = 784, kHidden = 400, kBits = 16;

// Multiply-adds of one VAT step, counted from the shapes: four forward passes over the MLP
// (clean, power iteration, perturbed) need 3 full forwards; the power iteration's backward
// needs input gradients only; the final backward runs through the clean and perturbed graphs
// with weight gradients and (except the first layer) input gradients.
double step_flops() {
  const double l1 = kDim * kHidden, l2 = kHidden * kHidden, l3 = kHidden * kBits;
  const double fwd = l1 + l2 + l3;
  const double vat_back = fwd;                     // input grads through every layer
  const double full_back = 2 * (fwd + (l2 + l3));  // weight grads + input grads above layer 1
  return 2.0 * kBatch * (3 * fwd + vat_back + full_back);
}

// Fashion-MNIST's test images scaled as in training (x/128 - 1) when the Debian package is
// installed, else Gaussian noise of the same shape.
torch::Tensor training_pool(at::Generator& gen) {
  auto data = imsat::learn::read_idx("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz");
  if (!data.is_ok()) return torch::randn({10000, kDim}, gen);
  return torch::from_blob(data->values.data(), {static_cast<int64_t>(data->rows), kDim},
                          torch::kFloat)
                 .clone() /
             128.0f -
         1.0f;
}

void BM_ImsatVatStep(benchmark::State& state) {
  L::set_thread_split(static_cast<int>(state.range(0)), static_cast<int>(state.range(1)));
  at::Generator gen = at::detail::createCPUGenerator(1);
  L::Mlp net(kDim, std::vector<int>{static_cast<int>(kHidden), static_cast<int>(kHidden)}, kBits);
  net->initialise(gen);
  net->train();
  torch::optim::Adam opt(net->parameters(), torch::optim::AdamOptions(0.002));
  static const torch::Tensor pool = training_pool(gen);
  torch::Tensor eps = torch::full({kBatch}, 2.0f);
  L::LossConfig c;
  int64_t step = 0;
  for (auto _ : state) {
    const int64_t start = (step++ * kBatch) % (pool.size(0) - kBatch);
    torch::Tensor x = pool.slice(0, start, start + kBatch);
    L::LossTerms t = L::imsat_loss(net, x, eps, c, gen);
    opt.zero_grad();
    t.loss.backward();
    opt.step();
    benchmark::DoNotOptimize(t.loss.item<float>());
  }
  state.SetItemsProcessed(state.iterations() * kBatch);
  state.counters["GFLOP/s"] = benchmark::Counter(
      step_flops() * 1e-9 * static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_ImsatVatStep)
    ->ArgNames({"torch_threads", "blas_threads"})
    ->Args({1, 1})
    ->Args({1, 2})
    ->Args({2, 1})
    ->Args({2, 2})
    ->UseRealTime();

// The trainer's step as it runs: the eager step (LibTorch's Adam, the CPU default)
// against the static step (FlatAdam over one flat tensor, gradients by autograd::grad: what a
// CUDA graph captures), 1 LibTorch thread and 2 OpenBLAS threads (the default split).
void BM_TrainStep(benchmark::State& state) {
  L::set_thread_split(1, 2);
  at::Generator gen = at::detail::createCPUGenerator(1);
  L::Mlp net(kDim, std::vector<int>{static_cast<int>(kHidden), static_cast<int>(kHidden)}, kBits);
  net->initialise(gen);
  net->train();
  static const torch::Tensor small_pool = training_pool(gen);
  // rows: the pool the batches are drawn from; 70,000 (the test images seven times over) is
  // Fashion-MNIST's size, whose 220 MB do not fit in any cache. Made only when a case asks.
  static torch::Tensor large_pool;
  if (state.range(1) > small_pool.size(0) && !large_pool.defined()) {
    large_pool = small_pool.repeat({7, 1}).contiguous();
  }
  const torch::Tensor& pool = state.range(1) > small_pool.size(0) ? large_pool : small_pool;
  const auto kind = static_cast<L::StepKind>(state.range(0));
  L::AdamConfig adam;
  auto step = L::make_train_step(kind, net, pool, torch::full({pool.size(0)}, 2.0f), kBatch,
                                 L::LossConfig{}, adam, gen);
  const int64_t per_epoch = pool.size(0) / kBatch;
  int64_t b = 0;
  for (auto _ : state) {
    if (b % per_epoch == 0) step->start_epoch(torch::randperm(pool.size(0), gen));
    step->run(b++ % per_epoch);
    if (step->terms_every_step()) benchmark::DoNotOptimize(step->last_terms());
  }
  state.SetItemsProcessed(state.iterations() * kBatch);
  state.SetLabel(kind == L::StepKind::kEager ? "eager" : "static");
}
BENCHMARK(BM_TrainStep)
    ->ArgNames({"static", "rows"})
    ->Args({0, 10000})
    ->Args({1, 10000})
    ->Args({0, 70000})
    ->UseRealTime();

// The same multiply-adds as one step, as plain sgemm calls of the forward shapes.
void BM_SgemmSameShapes(benchmark::State& state) {
  L::set_thread_split(static_cast<int>(state.range(0)), static_cast<int>(state.range(1)));
  torch::Tensor x = torch::randn({kBatch, kDim}), w1 = torch::randn({kDim, kHidden}),
                w2 = torch::randn({kHidden, kHidden}), w3 = torch::randn({kHidden, kBits});
  const double per_pass = 2.0 * kBatch * (kDim * kHidden + kHidden * kHidden + kHidden * kBits);
  for (auto _ : state) {
    torch::Tensor h = x.matmul(w1);
    torch::Tensor g = h.matmul(w2);
    benchmark::DoNotOptimize(g.matmul(w3).data_ptr<float>());
  }
  state.counters["GFLOP/s"] = benchmark::Counter(
      per_pass * 1e-9 * static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_SgemmSameShapes)
    ->ArgNames({"torch_threads", "blas_threads"})
    ->Args({1, 1})
    ->Args({1, 2})
    ->Args({2, 2})
    ->UseRealTime();

// Adaptive epsilon: distance to the 10th neighbour for N x 784 data.
void BM_KthNeighbour(benchmark::State& state) {
  // threads: OpenBLAS threads (the GEMMs); torch_threads: LibTorch's (the selection).
  L::set_thread_split(static_cast<int>(state.range(2)), static_cast<int>(state.range(1)));
  at::Generator gen = at::detail::createCPUGenerator(2);
  torch::Tensor x = torch::randn({state.range(0), kDim}, gen);
  for (auto _ : state) {
    benchmark::DoNotOptimize(L::kth_neighbour_distance(x, 10).data_ptr<float>());
  }
  state.SetItemsProcessed(state.iterations() * state.range(0));
  const double n = static_cast<double>(state.range(0));
  state.counters["GFLOP/s"] =
      benchmark::Counter(2.0 * n * n * kDim * 1e-9 * static_cast<double>(state.iterations()),
                         benchmark::Counter::kIsRate);
}
BENCHMARK(BM_KthNeighbour)
    ->ArgNames({"n", "threads", "torch_threads"})
    ->Args({8192, 1, 1})
    ->Args({8192, 2, 1})
    ->Args({8192, 2, 2})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

// Encoding throughput of a 784 -> 400 -> 400 -> 16 model (trained briefly; speed does not depend
// on the weights) over Fashion-MNIST's test images, in calls of `rows` items each, with the tuned
// thread split that `imsat encode` and `imsat index` use.
void BM_Encode(benchmark::State& state) {
  static imsat::learn::Dataset data = [] {
    auto d = imsat::learn::read_idx("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz");
    if (d.is_ok()) return std::move(d).value();
    imsat::learn::Dataset fake;
    fake.rows = 10000;
    fake.cols = kDim;
    fake.values.assign(fake.rows * fake.cols, 1.0f);
    fake.uint8_pixels = true;
    return fake;
  }();
  static imsat::learn::Model model = [] {
    imsat::learn::TrainConfig c;
    c.method = imsat::learn::Method::kDeepRim;
    c.epochs = 1;
    c.device = "cpu";
    return std::move(imsat::learn::train(data, c)).value();
  }();
  imsat::learn::set_num_threads(0);
  const size_t rows = static_cast<size_t>(state.range(0));
  size_t done = 0;
  for (auto _ : state) {
    for (size_t start = 0; start + rows <= data.rows; start += rows) {
      auto codes = model.encode(data.row(start), rows, data.cols);
      benchmark::DoNotOptimize(codes.value().data());
      done += rows;
    }
  }
  state.SetItemsProcessed(static_cast<int64_t>(done));
}
BENCHMARK(BM_Encode)
    ->ArgName("rows")
    ->Arg(1)
    ->Arg(8)
    ->Arg(16)
    ->Arg(32)
    ->Arg(64)
    ->Arg(256)
    ->Arg(1024)
    ->Arg(8192)
    ->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
