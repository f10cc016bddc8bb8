// The lean encoder: a hashing model folded into plain dense layers for one input at a time.
#include <algorithm>

#include "learn/learn_internal.h"

#ifdef IMSAT_CBLAS
#include <cblas.h>

namespace imsat::learn::internal {
namespace {

constexpr int kSingleThreadElements = 2304 * 4;

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

// A layer y = w x + b with w (out, in) and b (out), both double, as float32 row-major.
DenseLayer dense(const torch::Tensor& w, const torch::Tensor& b, bool relu) {
  DenseLayer l;
  l.out = static_cast<int>(w.size(0));
  l.in = static_cast<int>(w.size(1));
  const torch::Tensor wf = w.to(torch::kFloat).contiguous();
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

// out = w in + b (out += w in + b when accumulating), then ReLU where the layer has one.
void apply(const DenseLayer& l, const float* in, float* out, bool accumulate) {
  if (accumulate) {
    for (int j = 0; j < l.out; ++j) out[j] += l.b[static_cast<size_t>(j)];
  } else {
    std::copy(l.b.begin(), l.b.end(), out);
  }
  // In blocks of rows small enough that OpenBLAS runs each product on the calling thread (it
  // splits a matrix-vector product of 2304 * 4 elements or more across its own threads, which
  // only adds hand-offs when every server thread encodes its own request).
  const int rows_per_call = std::max(1, (kSingleThreadElements - 1) / l.in);
  for (int j = 0; j < l.out; j += rows_per_call) {
    const int rows = std::min(rows_per_call, l.out - j);
    cblas_sgemv(CblasRowMajor, CblasNoTrans, rows, l.in, 1.0f,
                l.w.data() + static_cast<size_t>(j) * static_cast<size_t>(l.in), l.in, in, 1, 1.0f,
                out + j, 1);
  }
  if (l.relu) {
    for (int j = 0; j < l.out; ++j) out[j] = std::max(out[j], 0.0f);
  }
}

}  // namespace

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

void LeanEncoder::logits(const float* raw, float* out) const {
  thread_local std::vector<float> buffers[2];
  const float* in = raw;
  for (size_t i = 0; i < layers_.size(); ++i) {
    float* y = out;
    if (i + 1 < layers_.size()) {
      std::vector<float>& buf = buffers[i % 2];
      if (buf.size() < widest_) buf.resize(widest_);
      y = buf.data();
    }
    apply(layers_[i], in, y, false);
    in = y;
  }
  if (skip_.in > 0) apply(skip_, raw, out, true);
}

}  // namespace imsat::learn::internal

#else  // no CBLAS

namespace imsat::learn::internal {

std::shared_ptr<const LeanEncoder> LeanEncoder::build(const Model::Impl&) { return nullptr; }
void LeanEncoder::logits(const float*, float*) const {}

}  // namespace imsat::learn::internal

#endif
