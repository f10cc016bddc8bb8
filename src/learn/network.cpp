// The encoder network, the IMSAT objectives and self-augmentation.
#include <cmath>
#include <limits>

#include "learn/learn_internal.h"

namespace imsat::learn::internal {

namespace {

// Rows scaled to unit Euclidean length; a zero row stays zero.
torch::Tensor unit_length(const torch::Tensor& x) {
  return x / x.norm(2, {1}, /*keepdim=*/true).clamp_min(1e-30);
}

}  // namespace

Preprocess Preprocess::fit(const Dataset& data, std::optional<Metric> metric) {
  Preprocess p;
  p.unit_rows = metric == Metric::kCosine;
  p.isotropic = metric.has_value();
  p.pixels = data.uint8_pixels && !p.unit_rows;
  if (p.pixels) {
    p.isotropic = false;
    return p;
  }
  torch::Tensor x =
      torch::from_blob(const_cast<float*>(data.values.data()),
                       {static_cast<int64_t>(data.rows), static_cast<int64_t>(data.cols)},
                       torch::kFloat)
          .to(torch::kDouble);
  if (p.unit_rows) x = unit_length(x);
  torch::Tensor mean = x.mean(0);
  torch::Tensor inv;
  if (p.isotropic) {
    // One scale for every feature keeps Euclidean order: features of unit variance on average.
    const double s = std::sqrt((x - mean).pow(2).mean().item<double>());
    inv = torch::full_like(mean, s > 1e-12 ? 1.0 / s : 1.0);
  } else {
    torch::Tensor std = x.std(0, /*unbiased=*/false);
    // A constant feature carries no information; leave it at zero rather than divide by zero.
    inv = torch::where(std > 1e-12, 1.0 / std, torch::ones_like(std));
  }
  p.mean = mean.to(torch::kFloat).contiguous();
  p.inv_std = inv.to(torch::kFloat).contiguous();
  return p;
}

const char* Preprocess::kind() const {
  if (pixels) return "pixels";
  if (unit_rows) return "unit-center";
  return isotropic ? "center" : "standardize";
}

Status Preprocess::set_kind(const std::string& kind) {
  pixels = kind == "pixels";
  unit_rows = kind == "unit-center";
  isotropic = unit_rows || kind == "center";
  if (!pixels && !isotropic && kind != "standardize") {
    return Status::corruption("unknown preprocessing '" + kind + "'");
  }
  return Status::ok();
}

torch::Tensor Preprocess::apply(const float* raw, size_t rows, size_t dim) const {
  torch::Tensor x =
      torch::from_blob(const_cast<float*>(raw),
                       {static_cast<int64_t>(rows), static_cast<int64_t>(dim)}, torch::kFloat);
  if (pixels) return x / 128.0f - 1.0f;
  if (unit_rows) x = unit_length(x);
  return (x - mean) * inv_std;
}

MlpImpl::MlpImpl(int64_t in, const std::vector<int>& hidden, int64_t out, bool shortcut) {
  int64_t prev = in;
  for (size_t i = 0; i < hidden.size(); ++i) {
    linears.push_back(
        register_module("fc" + std::to_string(i), torch::nn::Linear(prev, hidden[i])));
    norms.push_back(register_module("bn" + std::to_string(i), torch::nn::BatchNorm1d(hidden[i])));
    prev = hidden[i];
  }
  linears.push_back(register_module("out", torch::nn::Linear(prev, out)));
  if (shortcut) skip = register_module("skip", torch::nn::Linear(in, out));
}

void MlpImpl::initialise(at::Generator& gen) {
  torch::NoGradGuard no_grad;
  for (size_t i = 0; i < linears.size(); ++i) {
    const bool is_output = i + 1 == linears.size();
    const double fan_in = static_cast<double>(linears[i]->weight.size(1));
    const double scale = (is_output ? 1e-4 : 0.1) / std::sqrt(fan_in);
    linears[i]->weight.copy_(torch::randn(linears[i]->weight.sizes(), gen) * scale);
    linears[i]->bias.zero_();
  }
}

torch::Tensor MlpImpl::forward(torch::Tensor x, bool update_bn_stats) {
  const torch::Tensor input = x;
  for (size_t i = 0; i + 1 < linears.size(); ++i) {
    x = linears[i]->forward(x);
    if (is_training() && !update_bn_stats) {
      const auto& opt = norms[i]->options;
      x = torch::batch_norm(x, norms[i]->weight, norms[i]->bias, /*running_mean=*/{},
                            /*running_var=*/{}, /*training=*/true, opt.momentum().value_or(0.1),
                            opt.eps(), /*cudnn_enabled=*/false);
    } else {
      x = norms[i]->forward(x);
    }
    x = torch::relu(x);
  }
  if (skip) return linears.back()->forward(x) + skip->forward(input);
  return linears.back()->forward(x);
}

torch::Tensor binary_entropy(const torch::Tensor& p) {
  return -p * torch::log(p + kLogEps) - (1 - p) * torch::log(1 - p + kLogEps);
}

HashTerms hash_information(const torch::Tensor& logits) {
  const torch::Tensor p = torch::sigmoid(logits);
  const torch::Tensor q = 1 - p;
  const double batch = static_cast<double>(p.size(0));
  const torch::Tensor p_mean = p.mean(0);
  HashTerms t;
  t.cond_entropy = binary_entropy(p).sum(1).mean();
  t.marg_entropy = binary_entropy(p_mean).sum();
  // Joint distribution of every bit pair from four matrix products (batch x bits each):
  // P(Y_d = a, Y_d' = b) = mean_x p_d^a (1 - p_d)^(1 - a) p_d'^b (1 - p_d')^(1 - b).
  const torch::Tensor m1 = p_mean, m0 = 1 - p_mean;
  auto term = [&](const torch::Tensor& a, const torch::Tensor& b, const torch::Tensor& ma,
                  const torch::Tensor& mb) {
    torch::Tensor joint = a.t().matmul(b) / batch;
    torch::Tensor indep = ma.unsqueeze(1) * mb.unsqueeze(0);
    return joint * torch::log((joint + kLogEps) / (indep + kLogEps));
  };
  torch::Tensor mi =
      term(p, p, m1, m1) + term(p, q, m1, m0) + term(q, p, m0, m1) + term(q, q, m0, m0);
  t.pair_mi = mi.sum() - mi.diagonal().sum();
  return t;
}

ClusterTerms cluster_information(const torch::Tensor& logits) {
  const torch::Tensor p = torch::softmax(logits, 1);
  const torch::Tensor p_mean = p.mean(0);
  ClusterTerms t;
  t.cond_entropy = (-(p * torch::log(p + kLogEps)).sum(1)).mean();
  t.marg_entropy = -(p_mean * torch::log(p_mean + kLogEps)).sum();
  return t;
}

torch::Tensor sat_divergence(const torch::Tensor& clean_logits, const torch::Tensor& pert_logits,
                             bool clustering) {
  if (clustering) {
    torch::Tensor lp = torch::log_softmax(clean_logits, 1);
    torch::Tensor lq = torch::log_softmax(pert_logits, 1);
    return (lp.exp() * (lp - lq)).sum(1).mean();
  }
  torch::Tensor p = torch::sigmoid(clean_logits);
  torch::Tensor lp1 = torch::log_sigmoid(clean_logits), lp0 = torch::log_sigmoid(-clean_logits);
  torch::Tensor lq1 = torch::log_sigmoid(pert_logits), lq0 = torch::log_sigmoid(-pert_logits);
  return (p * (lp1 - lq1) + (1 - p) * (lp0 - lq0)).sum(1).mean();
}

torch::Tensor unit_rows(const torch::Tensor& d) {
  return d / (d.norm(2, {1}, /*keepdim=*/true) + 1e-12);
}

torch::Tensor vat_direction(Mlp& net, const torch::Tensor& x, const torch::Tensor& clean_logits,
                            const torch::Tensor& random_unit, double xi, int power_iterations,
                            bool clustering) {
  torch::Tensor d = random_unit;
  for (int it = 0; it < power_iterations; ++it) {
    torch::Tensor dv = d.detach().requires_grad_(true);
    torch::Tensor kl = sat_divergence(clean_logits, net->forward(x + xi * dv, false), clustering);
    torch::Tensor grad = torch::autograd::grad({kl}, {dv})[0];
    d = unit_rows(grad.detach());
  }
  return d.detach();
}

LossTerms imsat_loss(Mlp& net, const torch::Tensor& xb, const torch::Tensor& eps_b,
                     const LossConfig& c, at::Generator& gen) {
  LossTerms t;
  torch::Tensor logits = net->forward(xb, true);
  torch::Tensor info;
  if (c.clustering) {
    ClusterTerms ct = cluster_information(logits);
    t.cond_entropy = ct.cond_entropy;
    t.marg_entropy = ct.marg_entropy;
    info = ct.cond_entropy - c.mu * ct.marg_entropy;
  } else {
    HashTerms ht = hash_information(logits);
    t.cond_entropy = ht.cond_entropy;
    t.marg_entropy = ht.marg_entropy;
    t.pair_mi = ht.pair_mi;
    info = ht.cond_entropy - ht.marg_entropy + ht.pair_mi;
  }
  t.loss = c.lambda * info;
  if (c.vat || c.rpt) {
    torch::Tensor clean = logits.detach();
    torch::Tensor d = unit_rows(c.noise_on_device ? torch::randn(xb.sizes(), xb.options())
                                                  : torch::randn(xb.sizes(), gen).to(xb.device()));
    if (c.vat) d = vat_direction(net, xb, clean, d, c.xi, c.power_iterations, c.clustering);
    t.sat = sat_divergence(clean, net->forward(xb + eps_b.unsqueeze(1) * d, false), c.clustering);
    if (!c.affine_shape.empty()) {
      t.sat = t.sat + sat_divergence(clean,
                                     net->forward(random_affine(xb, c.affine_shape, c, gen), false),
                                     c.clustering);
    }
    t.loss = t.loss + t.sat;
  }
  return t;
}

torch::Tensor random_affine(const torch::Tensor& xb, const std::vector<int64_t>& shape,
                            const LossConfig& c, at::Generator& gen) {
  constexpr double kRotation = 10.0 * M_PI / 180.0, kScale = 0.1, kShift = 0.1;  // shift: of 2
  const int64_t b = xb.size(0), h = shape.at(0), w = shape.at(1);
  const int64_t ch = shape.size() > 2 ? shape[2] : 1;
  auto uniform = [&](double lo, double hi) {
    torch::Tensor u =
        c.noise_on_device ? torch::rand({b}, xb.options()) : torch::rand({b}, gen).to(xb.device());
    return u * (hi - lo) + lo;
  };
  const torch::Tensor angle = uniform(-kRotation, kRotation);
  const torch::Tensor scale = uniform(1 - kScale, 1 + kScale);
  const torch::Tensor cos = scale * angle.cos(), sin = scale * angle.sin();
  const torch::Tensor theta =
      torch::stack({cos, -sin, uniform(-kShift, kShift), sin, cos, uniform(-kShift, kShift)}, 1)
          .view({b, 2, 3});
  namespace F = torch::nn::functional;
  const torch::Tensor grid = F::affine_grid(theta, {b, ch, h, w}, /*align_corners=*/false);
  const torch::Tensor moved = F::grid_sample(xb.view({b, h, w, ch}).permute({0, 3, 1, 2}), grid,
                                             F::GridSampleFuncOptions()
                                                 .mode(torch::kBilinear)
                                                 .padding_mode(torch::kBorder)
                                                 .align_corners(false));
  return moved.permute({0, 2, 3, 1}).reshape({b, h * w * ch});
}

namespace {

// The `width` smallest values seen in a row, ascending; +inf until filled.
inline void offer(float* top, int width, float v) {
  if (!(v < top[width - 1])) return;
  int i = width - 1;
  while (i > 0 && top[i - 1] > v) {
    top[i] = top[i - 1];
    --i;
  }
  top[i] = v;
}

// CPU selection over one block of squared distances d2 (rows of block I, columns of block J):
// every row of I takes its row's values; when J is another block, every row of J takes its
// column's values too. A value is compared with the row's current worst kept value and almost
// always rejected there, so a block costs about one comparison per value and direction (the
// LibTorch topk over columns it replaces read the block with a stride and cost as much as the
// distance GEMM itself).
void select_block(const torch::Tensor& d2, float* best, int width, int64_t i0, int64_t j0,
                  bool both) {
  const int64_t rows = d2.size(0), cols = d2.size(1);
  const float* d = d2.data_ptr<float>();
  const int64_t stride = d2.stride(0);
  at::parallel_for(0, rows, 64, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      float* top = best + (i0 + i) * width;
      const float* r = d + i * stride;
      for (int64_t j = 0; j < cols; ++j) offer(top, width, r[j]);
    }
  });
  if (!both) return;
  // Columns: each thread owns a range of columns (rows of J) and reads every row of the block.
  at::parallel_for(0, cols, 256, [&](int64_t begin, int64_t end) {
    for (int64_t i = 0; i < rows; ++i) {
      const float* r = d + i * stride;
      for (int64_t j = begin; j < end; ++j) offer(best + (j0 + j) * width, width, r[j]);
    }
  });
}

}  // namespace

torch::Tensor kth_neighbour_distance(const torch::Tensor& x, int k, int64_t block_rows) {
  torch::NoGradGuard no_grad;
  const int64_t n = x.size(0);
  const int64_t kk = std::min<int64_t>(k, n - 1);
  if (kk <= 0) return torch::zeros({n}, x.options());
  // Squared distances are symmetric, so each pair of row blocks (I, J >= I) is computed once
  // and feeds both the rows of I (along its rows) and the rows of J (along its columns): half
  // the multiply-adds of the full N x N product. `best` keeps each row's kk + 1 smallest
  // squared distances (the row itself, at distance 0, among them).
  const torch::Tensor sq = (x * x).sum(1);
  const torch::Tensor inf = torch::full({1}, std::numeric_limits<float>::infinity(), x.options());
  torch::Tensor best = inf.expand({n, kk + 1}).contiguous().clone();
  const bool cpu = x.is_cpu() && x.scalar_type() == torch::kFloat;
  auto merge = [&](int64_t start, int64_t end, const torch::Tensor& candidates) {
    torch::Tensor rows = best.slice(0, start, end);
    torch::Tensor both = torch::cat({rows, candidates}, 1);
    const int64_t take = std::min<int64_t>(kk + 1, both.size(1));
    rows.copy_(std::get<0>(both.topk(take, 1, /*largest=*/false, /*sorted=*/true)));
  };
  for (int64_t i0 = 0; i0 < n; i0 += block_rows) {
    const int64_t i1 = std::min(n, i0 + block_rows);
    const torch::Tensor xi = x.slice(0, i0, i1);
    const torch::Tensor sqi = sq.slice(0, i0, i1).unsqueeze(1);
    for (int64_t j0 = i0; j0 < n; j0 += block_rows) {
      const int64_t j1 = std::min(n, j0 + block_rows);
      torch::Tensor d2 = torch::addmm(sqi + sq.slice(0, j0, j1).unsqueeze(0), xi,
                                      x.slice(0, j0, j1).t(), 1.0, -2.0);
      if (cpu) {
        // The same values as the topk below select, so the same result.
        select_block(d2.contiguous(), best.data_ptr<float>(), static_cast<int>(kk + 1), i0, j0,
                     j0 != i0);
        continue;
      }
      const int64_t take_rows = std::min<int64_t>(kk + 1, d2.size(1));
      merge(i0, i1, std::get<0>(d2.topk(take_rows, 1, false, true)));
      if (j0 != i0) {
        const int64_t take_cols = std::min<int64_t>(kk + 1, d2.size(0));
        merge(j0, j1, std::get<0>(d2.topk(take_cols, 0, false, true)).t());
      }
    }
  }
  return best.select(1, kk).clamp_min(0).sqrt();
}

}  // namespace imsat::learn::internal
