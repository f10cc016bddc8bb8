// The lean encoder: a hashing model folded into plain dense layers for one input at a time.
#include <algorithm>

#include "learn/learn_internal.h"

namespace imsat::learn::internal {
namespace {

// A model tensor as double on the CPU (a model trained on a GPU may still hold CUDA tensors).
torch::Tensor cpu64(const torch::Tensor& t) { return t.detach().to(torch::kCPU, torch::kDouble); }

// x -> scale * x + shift, the preprocessing as an affine map per feature (double, on the CPU).
struct Affine {
  torch::Tensor scale, shift;
};

Affine input_affine(const Preprocess& pre, int64_t dim) {
  const auto opts = torch::TensorOptions().dtype(torch::kDouble);
  if (pre.pixels) return {torch::full({dim}, 1.0 / 128.0, opts), torch::full({dim}, -1.0, opts)};
  const torch::Tensor inv = cpu64(pre.inv_std);
  return {inv, -cpu64(pre.mean) * inv};
}

// A layer y = w x + b with w (out, in) and b (out), both double, as float32 with the weights
// stored input-major (DenseLayer).
DenseLayer dense(const torch::Tensor& w, const torch::Tensor& b, bool relu) {
  DenseLayer l;
  l.out = static_cast<int>(w.size(0));
  l.in = static_cast<int>(w.size(1));
  const torch::Tensor wf = w.t().to(torch::kFloat).contiguous();
  const torch::Tensor bf = b.to(torch::kFloat).contiguous();
  l.w.assign(wf.data_ptr<float>(), wf.data_ptr<float>() + wf.numel());
  l.b.assign(bf.data_ptr<float>(), bf.data_ptr<float>() + bf.numel());
  l.relu = relu;
  return l;
}

// w (x * scale + shift) + b = (w * scale) x + (w shift + b).
DenseLayer fold_input(const torch::Tensor& w, const torch::Tensor& b, const Affine& a, bool relu) {
  return dense(w * a.scale.unsqueeze(0), w.matmul(a.shift) + b, relu);
}

// For each of `rows` inputs r (in + r * in_stride) and outputs (out + r * out_stride):
// out_r += sum over i of in_r[i] * (row i of w), skipping the inputs that are zero: black pixels
// (the preprocessing is folded into the weights, so a raw zero contributes nothing) and about
// half of every hidden layer after its ReLU. The weights stream through once, in order, for all
// the rows together (each row of w is read from memory once and from L1 for the other inputs);
// the outputs stay in L1. The inner loop is a plain multiply-add over a contiguous row, which the
// compiler vectorises for the instruction set of each variant below. Each output is summed in the
// same order whatever `rows` is, so an input gets the same logits alone as in a batch.
__attribute__((always_inline)) inline void accumulate_rows(const float* __restrict w,
                                                           const float* __restrict in,
                                                           size_t in_stride, int n_in,
                                                           float* __restrict out, size_t out_stride,
                                                           int n_out, size_t rows) {
  for (int i = 0; i < n_in; ++i, w += n_out) {
    for (size_t r = 0; r < rows; ++r) {
      const float x = in[r * in_stride + static_cast<size_t>(i)];
      if (x == 0.0f) continue;
      float* __restrict o = out + r * out_stride;
      for (int j = 0; j < n_out; ++j) o[j] += x * w[j];
    }
  }
}

__attribute__((target("avx512f"))) void accumulate_avx512(const float* w, const float* in,
                                                          size_t in_stride, int n_in, float* out,
                                                          size_t out_stride, int n_out,
                                                          size_t rows) {
  accumulate_rows(w, in, in_stride, n_in, out, out_stride, n_out, rows);
}
__attribute__((target("avx2,fma"))) void accumulate_avx2(const float* w, const float* in,
                                                         size_t in_stride, int n_in, float* out,
                                                         size_t out_stride, int n_out,
                                                         size_t rows) {
  accumulate_rows(w, in, in_stride, n_in, out, out_stride, n_out, rows);
}
void accumulate_generic(const float* w, const float* in, size_t in_stride, int n_in, float* out,
                        size_t out_stride, int n_out, size_t rows) {
  accumulate_rows(w, in, in_stride, n_in, out, out_stride, n_out, rows);
}

// The widest variant this CPU runs, chosen once.
LeanKernel accumulate_variant() {
  static const LeanKernel fn = lean_kernels().front().fn;
  return fn;
}

// For each row: out = w in + b (out += w in + b when accumulating), then ReLU where the layer has
// one. Outputs are l.out apart, inputs in_stride apart.
void apply(const DenseLayer& l, const float* in, size_t in_stride, size_t rows, float* out,
           bool accumulate) {
  const size_t n_out = static_cast<size_t>(l.out);
  for (size_t r = 0; r < rows; ++r) {
    float* o = out + r * n_out;
    if (accumulate) {
      for (size_t j = 0; j < n_out; ++j) o[j] += l.b[j];
    } else {
      std::copy(l.b.begin(), l.b.end(), o);
    }
  }
  accumulate_variant()(l.w.data(), in, in_stride, l.in, out, n_out, l.out, rows);
  if (l.relu) {
    for (size_t k = 0; k < rows * n_out; ++k) out[k] = std::max(out[k], 0.0f);
  }
}

}  // namespace

std::vector<LeanKernelVariant> lean_kernels() {
  // __builtin_cpu_supports also checks that the OS saves the wide registers.
  __builtin_cpu_init();
  std::vector<LeanKernelVariant> out;
  if (__builtin_cpu_supports("avx512f")) out.push_back({"avx512", &accumulate_avx512});
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
    out.push_back({"avx2", &accumulate_avx2});
  }
  out.push_back({"generic", &accumulate_generic});
  return out;
}

std::shared_ptr<const LeanEncoder> LeanEncoder::build(const Model::Impl& m) {
  if ((m.kind != Kind::kMlp && m.kind != Kind::kLinear) || m.bits <= 0) return nullptr;
  torch::NoGradGuard no_grad;
  auto e = std::make_shared<LeanEncoder>();
  const Affine input = input_affine(m.pre, static_cast<int64_t>(m.input_dim));
  if (m.kind == Kind::kLinear) {
    // scores = x' weight + bias, weight (dim, bits).
    const torch::Tensor w = cpu64(m.weight).t();
    e->layers_.push_back(fold_input(w, cpu64(m.bias), input, false));
  } else {
    const MlpImpl& net = *m.net;
    for (size_t i = 0; i < net.linears.size(); ++i) {
      const torch::nn::Linear& lin = net.linears[i];
      torch::Tensor w = cpu64(lin->weight);
      torch::Tensor b = cpu64(lin->bias);
      const bool hidden = i + 1 < net.linears.size();
      if (hidden) {
        // Batch normalisation with its running statistics: s (z - mean) + beta, s = gamma / sd.
        const torch::nn::BatchNorm1d& bn = net.norms[i];
        const torch::Tensor s =
            cpu64(bn->weight) / torch::sqrt(cpu64(bn->running_var) + bn->options.eps());
        w = w * s.unsqueeze(1);
        b = (b - cpu64(bn->running_mean)) * s + cpu64(bn->bias);
      }
      e->layers_.push_back(i == 0 ? fold_input(w, b, input, hidden) : dense(w, b, hidden));
    }
    if (net.skip) {
      e->skip_ = fold_input(cpu64(net.skip->weight), cpu64(net.skip->bias), input, false);
    }
  }
  for (const DenseLayer& l : e->layers_) e->widest_ = std::max(e->widest_, size_t(l.out));
  return e;
}

void LeanEncoder::logits(const float* raw, size_t rows, float* out) const {
  thread_local std::vector<float> buffers[2];
  const size_t bits = static_cast<size_t>(layers_.back().out);
  const size_t dim = static_cast<size_t>(layers_.front().in);
  for (size_t start = 0; start < rows; start += kBlockRows) {
    const size_t n = std::min(kBlockRows, rows - start);
    const float* x = raw + start * dim;
    float* y_out = out + start * bits;
    const float* in = x;
    size_t in_stride = dim;
    for (size_t i = 0; i < layers_.size(); ++i) {
      float* y = y_out;
      if (i + 1 < layers_.size()) {
        std::vector<float>& buf = buffers[i % 2];
        if (buf.size() < kBlockRows * widest_) buf.resize(kBlockRows * widest_);
        y = buf.data();
      }
      apply(layers_[i], in, in_stride, n, y, false);
      in = y;
      in_stride = static_cast<size_t>(layers_[i].out);
    }
    if (skip_.in > 0) apply(skip_, x, dim, n, y_out, true);
  }
}

}  // namespace imsat::learn::internal
