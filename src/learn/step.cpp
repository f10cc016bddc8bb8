// Training steps (learn_internal.h, "Training steps"): the eager step, which runs the network's
// operators one by one as LibTorch dispatches them, and the static step, whose tensors never move
// between steps so that on CUDA the whole step is captured once as a CUDA graph and replayed.
#include <array>
#include <cmath>
#include <stdexcept>

#include "learn/learn_internal.h"

#ifdef IMSAT_CUDA_GRAPHS
#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#endif

namespace imsat::learn::internal {
namespace {

// The step's terms in a fixed order: loss, sat, cond_entropy, marg_entropy, pair_mi.
torch::Tensor stack_terms(const LossTerms& lt) {
  const torch::Tensor zero = torch::zeros({}, lt.loss.options());
  return torch::stack({lt.loss.detach(), lt.sat.defined() ? lt.sat.detach() : zero,
                       lt.cond_entropy.detach(), lt.marg_entropy.detach(),
                       lt.pair_mi.defined() ? lt.pair_mi.detach() : zero});
}

StepValues to_values(const torch::Tensor& terms) {
  const torch::Tensor cpu = terms.to(torch::kCPU, torch::kDouble).contiguous();
  const double* v = cpu.data_ptr<double>();
  StepValues out;
  for (size_t i = 0; i < out.size(); ++i) out[i] = v[i];
  return out;
}

// What both steps share: the network, the data and the per-item epsilon, the loss settings and
// the generator, the epoch's permutation, and the loss of one mini-batch.
class BatchStep : public TrainStep {
 protected:
  BatchStep(Mlp net, torch::Tensor x, torch::Tensor eps, int64_t batch, const LossConfig& loss,
            at::Generator gen)
      : net_(std::move(net)),
        x_(std::move(x)),
        eps_(std::move(eps)),
        batch_(batch),
        loss_(loss),
        gen_(std::move(gen)) {}

  // The indices of the b-th mini-batch of the epoch's permutation.
  torch::Tensor batch_indices(int64_t b) const {
    return perm_.slice(0, b * batch_, (b + 1) * batch_);
  }
  // The loss terms of the items `idx` (clean pass updating BatchNorm, perturbed passes).
  LossTerms loss_of(const torch::Tensor& idx) {
    torch::Tensor xb = x_.index_select(0, idx);
    torch::Tensor eps_b = eps_.defined() ? eps_.index_select(0, idx) : torch::Tensor();
    return imsat_loss(net_, xb, eps_b, loss_, gen_);
  }

  Mlp net_;
  torch::Tensor x_, eps_, perm_;
  int64_t batch_;
  LossConfig loss_;
  at::Generator gen_;
};

// The step every device can run: LibTorch's Adam, one host copy of the terms per step.
class EagerStep : public BatchStep {
 public:
  EagerStep(Mlp net, torch::Tensor x, torch::Tensor eps, int64_t batch, const LossConfig& loss,
            const AdamConfig& adam, at::Generator gen)
      : BatchStep(std::move(net), std::move(x), std::move(eps), batch, loss, std::move(gen)),
        opt_(net_->parameters(), torch::optim::AdamOptions(adam.lr)
                                     .betas({adam.beta1, adam.beta2})
                                     .eps(adam.eps)
                                     .weight_decay(adam.weight_decay)) {}

  void start_epoch(const torch::Tensor& perm) override { perm_ = perm.to(x_.device()); }

  void run(int64_t b) override {
    LossTerms lt = loss_of(batch_indices(b));
    opt_.zero_grad();
    lt.loss.backward();
    opt_.step();
    last_ = to_values(stack_terms(lt));
    for (size_t i = 0; i < sums_.size(); ++i) sums_[i] += last_[i];
  }

  bool terms_every_step() const override { return true; }
  StepValues last_terms() override { return last_; }
  StepValues take_sums() override {
    StepValues s = sums_;
    sums_.fill(0);
    return s;
  }

 private:
  torch::optim::Adam opt_;
  StepValues last_{}, sums_{};
};

#ifdef IMSAT_CUDA_GRAPHS
// The CUDA side of a static step: a stream of its own (graphs are captured off the default
// stream) and the graph once captured.
struct CudaGraphState {
  c10::cuda::CUDAStream stream = c10::cuda::getStreamFromPool();
  at::cuda::CUDAGraph graph;
  bool captured = false;
};
#else
struct CudaGraphState {};
#endif

// Runs `fn` on the step's own CUDA stream when there is one.
template <typename Fn>
auto on_stream(CudaGraphState* cuda, Fn&& fn) {
#ifdef IMSAT_CUDA_GRAPHS
  if (cuda != nullptr) {
    c10::cuda::CUDAStreamGuard guard(cuda->stream);
    return fn();
  }
#else
  (void)cuda;
#endif
  return fn();
}

// Eager steps before the capture: they warm up the libraries' lazy state (cuBLAS handles and
// workspaces, the caching allocator) off the graph, as CUDA graph capture requires.
constexpr int kWarmupSteps = 3;

class StaticStep : public BatchStep {
 public:
  StaticStep(Mlp net, torch::Tensor x, torch::Tensor eps, int64_t batch, const LossConfig& loss,
             const AdamConfig& adam, at::Generator gen, bool cuda_graph)
      : BatchStep(std::move(net), std::move(x), std::move(eps), batch, loss, std::move(gen)),
        params_(net_->parameters()),
        opt_(params_, adam) {
    if (cuda_graph) {
#ifdef IMSAT_CUDA_GRAPHS
      if (!x_.is_cuda()) throw std::invalid_argument("a CUDA graph needs the data on CUDA");
      cuda_ = std::make_unique<CudaGraphState>();
      // The data, the network and the optimiser's buffers were made on the default stream; the
      // step's own stream must not read them before they are written.
      c10::cuda::getCurrentCUDAStream().synchronize();
      // Nothing in a captured step may draw from the CPU generator: the graph would replay the
      // same direction every step. The device's generator advances on every replay.
      loss_.noise_on_device = true;
#else
      throw std::invalid_argument("this build of LibTorch has no CUDA graphs");
#endif
    }
    on_stream(cuda_.get(), [&] {
      idx_ = torch::zeros({batch_}, x_.options().dtype(torch::kLong));
      terms_ = torch::zeros({5}, x_.options());
      sums_ = torch::zeros({5}, x_.options());
      return 0;
    });
  }

  void start_epoch(const torch::Tensor& perm) override {
    on_stream(cuda_.get(), [&] {
      perm_ = perm.to(x_.device());
      return 0;
    });
  }

  void run(int64_t b) override {
    on_stream(cuda_.get(), [&] {
      idx_.copy_(batch_indices(b));
#ifdef IMSAT_CUDA_GRAPHS
      if (cuda_ != nullptr && steps_ >= kWarmupSteps) {
        if (!cuda_->captured) {
          cuda_->graph.capture_begin();
          body();
          cuda_->graph.capture_end();
          cuda_->captured = true;
        }
        cuda_->graph.replay();
        ++steps_;
        return 0;
      }
#endif
      body();
      ++steps_;
      return 0;
    });
  }

  bool terms_every_step() const override { return cuda_ == nullptr; }
  StepValues last_terms() override {
    return on_stream(cuda_.get(), [&] { return to_values(terms_); });
  }
  StepValues take_sums() override {
    return on_stream(cuda_.get(), [&] {
      StepValues s = to_values(sums_);
      sums_.zero_();
      return s;
    });
  }

 private:
  // One step from idx_ to updated parameters, terms_ and sums_; every tensor it reads or writes
  // outside its own temporaries was allocated before the first step.
  void body() {
    LossTerms lt = loss_of(idx_);
    opt_.step(torch::autograd::grad({lt.loss}, params_));
    torch::NoGradGuard no_grad;
    terms_.copy_(stack_terms(lt));
    sums_.add_(terms_);
  }

  torch::Tensor idx_, terms_, sums_;
  std::vector<torch::Tensor> params_;
  FlatAdam opt_;
  std::unique_ptr<CudaGraphState> cuda_;
  int64_t steps_ = 0;
};

}  // namespace

FlatAdam::FlatAdam(std::vector<torch::Tensor> params, const AdamConfig& c) : c_(c) {
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> pieces;
  for (const torch::Tensor& p : params) pieces.push_back(p.detach().reshape({-1}));
  flat_ = torch::cat(pieces);
  int64_t offset = 0;
  for (torch::Tensor& p : params) {
    const int64_t n = p.numel();
    p.set_data(flat_.slice(0, offset, offset + n).view(p.sizes()));
    offset += n;
  }
  m_ = torch::zeros_like(flat_);
  v_ = torch::zeros_like(flat_);
  step_ = torch::zeros({}, flat_.options().dtype(torch::kDouble));
}

void FlatAdam::step(const std::vector<torch::Tensor>& grads) {
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> pieces;
  for (const torch::Tensor& g : grads) pieces.push_back(g.reshape({-1}));
  torch::Tensor g = torch::cat(pieces);
  if (c_.weight_decay != 0) g.add_(flat_, c_.weight_decay);
  m_.mul_(c_.beta1).add_(g, 1 - c_.beta1);
  v_.mul_(c_.beta2).addcmul_(g, g, 1 - c_.beta2);
  // The step count and both bias corrections stay on the device, so a captured step replays
  // with the right ones.
  step_.add_(1);
  const torch::Tensor correction1 = 1 - torch::pow(c_.beta1, step_);
  const torch::Tensor correction2 = 1 - torch::pow(c_.beta2, step_);
  const torch::Tensor denom = (v_.sqrt() / correction2.sqrt()).add_(c_.eps);
  flat_.sub_(m_ / denom * (c_.lr / correction1));
}

bool cuda_graphs_built() {
#ifdef IMSAT_CUDA_GRAPHS
  return true;
#else
  return false;
#endif
}

std::unique_ptr<TrainStep> make_train_step(StepKind kind, Mlp net, torch::Tensor x,
                                           torch::Tensor eps, int64_t batch, const LossConfig& loss,
                                           const AdamConfig& adam, at::Generator gen) {
  if (kind == StepKind::kEager) {
    return std::make_unique<EagerStep>(std::move(net), std::move(x), std::move(eps), batch, loss,
                                       adam, std::move(gen));
  }
  return std::make_unique<StaticStep>(std::move(net), std::move(x), std::move(eps), batch, loss,
                                      adam, std::move(gen), kind == StepKind::kCudaGraph);
}

}  // namespace imsat::learn::internal
