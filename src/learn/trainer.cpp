// Training: IMSAT and RIM by Adam over mini-batches, and the closed-form / iterative baselines
// (LSH, PCA-ITQ, spectral hashing, K-means).
#include <ATen/CPUGeneratorImpl.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <nlohmann/json.hpp>
#include <thread>

#include "common/code_bits.h"
#include "common/enum_names.h"
#include "learn/learn_internal.h"

namespace imsat::learn {
namespace {

using internal::Kind;
using Clock = std::chrono::steady_clock;

// Optimiser steps in one epoch over `rows` items in batches of `batch` (a last partial batch is
// dropped; at least one step).
int64_t epoch_steps(int64_t rows, int64_t batch) {
  return std::max<int64_t>(1, rows / std::clamp<int64_t>(batch, 1, std::max<int64_t>(1, rows)));
}

struct MethodTraits {
  const char* name;
  bool neural;
  bool deep;  // default hidden layers (otherwise linear)
  bool vat;
  bool rpt;
  bool weight_decay;
};

MethodTraits traits(Method m) {
  switch (m) {
    case Method::kImsatVat:
      return {"imsat-vat", true, true, true, false, false};
    case Method::kImsatRpt:
      return {"imsat-rpt", true, true, false, true, false};
    case Method::kLinearImsat:
      return {"linear-imsat", true, false, true, false, false};
    case Method::kDeepRim:
      return {"deep-rim", true, true, false, false, true};
    case Method::kLinearRim:
      return {"linear-rim", true, false, false, false, true};
    case Method::kItq:
      return {"itq", false, false, false, false, false};
    case Method::kSh:
      return {"sh", false, false, false, false, false};
    case Method::kLsh:
      return {"lsh", false, false, false, false, false};
    case Method::kKmeans:
      return {"kmeans", false, false, false, false, false};
  }
  return {"?", false, false, false, false, false};
}

constexpr Method kAllMethods[] = {Method::kImsatVat, Method::kImsatRpt,  Method::kLinearImsat,
                                  Method::kDeepRim,  Method::kLinearRim, Method::kItq,
                                  Method::kSh,       Method::kLsh,       Method::kKmeans};

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

Status validate(const Dataset& data, const TrainConfig& c) {
  if (data.rows < 2) return Status::invalid_argument("training needs at least 2 items");
  if (data.cols == 0) return Status::invalid_argument("items have no features");
  if (data.values.size() != data.rows * data.cols) {
    return Status::invalid_argument(
        "dataset holds " + std::to_string(data.values.size()) +
        " values, expected rows * cols = " + std::to_string(data.rows * data.cols));
  }
  for (size_t i = 0; i < data.values.size(); ++i) {
    if (!std::isfinite(data.values[i])) {
      return Status::invalid_argument("training value at item " + std::to_string(i / data.cols) +
                                      ", position " + std::to_string(i % data.cols) +
                                      " is not a finite number");
    }
  }
  const bool clustering = c.clusters > 0 || c.method == Method::kKmeans;
  if (clustering) {
    if (c.clusters < 2) return Status::invalid_argument("clustering needs --clusters >= 2");
    if (c.method != Method::kKmeans && c.method != Method::kImsatVat &&
        c.method != Method::kImsatRpt && c.method != Method::kDeepRim &&
        c.method != Method::kLinearImsat && c.method != Method::kLinearRim) {
      return Status::invalid_argument(method_name(c.method) +
                                      " is a hashing method; clustering "
                                      "takes imsat-vat, imsat-rpt, linear-imsat, deep-rim, "
                                      "linear-rim or kmeans");
    }
    if (static_cast<size_t>(c.clusters) > data.rows) {
      return Status::invalid_argument("more clusters than items");
    }
  } else {
    IMSAT_RETURN_IF_ERROR(check_code_bits(c.bits));
    if ((c.method == Method::kItq) && static_cast<size_t>(c.bits) > data.cols) {
      return Status::invalid_argument("itq needs bits <= input dimension (" +
                                      std::to_string(data.cols) + ")");
    }
  }
  if (c.init_itq && (c.clusters > 0 || (!traits(c.method).vat && !traits(c.method).rpt))) {
    return Status::invalid_argument(
        "starting from PCA-ITQ's codes (--init itq) is for IMSAT hashing (imsat-vat, imsat-rpt, "
        "linear-imsat), not " +
        (c.clusters > 0 ? std::string("clustering") : method_name(c.method)));
  }
  if (c.init_itq && !(c.itq_scale > 0)) {
    return Status::invalid_argument("the ITQ start's logit scale must be positive");
  }
  if (c.augment_affine) {
    const MethodTraits t = traits(c.method);
    if (!t.vat && !t.rpt) {
      return Status::invalid_argument(
          "affine augmentation is for imsat-vat, imsat-rpt and "
          "linear-imsat, not " +
          method_name(c.method));
    }
    if (!data.uint8_pixels || data.item_shape.size() < 2 || data.item_shape.size() > 3) {
      return Status::invalid_argument(
          "affine augmentation needs images (IDX images or a folder of image files read as "
          "pixels); " +
          data.source + " holds feature vectors");
    }
  }
  if (c.batch < 2) return Status::invalid_argument("batch must be at least 2");
  if (c.epochs < 0) return Status::invalid_argument("epochs must be >= 0 (0 = automatic)");
  if (!(c.eps_scale >= 0) || !std::isfinite(c.eps_scale)) {
    return Status::invalid_argument("the SAT radius scale must be >= 0 (0 = automatic)");
  }
  for (int h : c.hidden) {
    if (h <= 0) return Status::invalid_argument("hidden layer sizes must be positive");
  }
  if (c.device != "cpu" && c.device != "cuda" && c.device != "auto") {
    return Status::invalid_argument("device must be cpu, cuda or auto, got '" + c.device + "'");
  }
  if (c.device == "cuda" && !torch::cuda::is_available()) {
    return Status::invalid_argument("device cuda requested but no CUDA device is available");
  }
  return Status::ok();
}

torch::Tensor features(const Dataset& data, const internal::Preprocess& pre) {
  return pre.apply(data.values.data(), data.rows, data.cols).clone();
}

// Principal directions of centred x: (dim, k) float, largest variance first.
torch::Tensor principal_components(const torch::Tensor& xc, int64_t k) {
  torch::Tensor xd = xc.to(torch::kDouble);
  torch::Tensor cov = xd.t().matmul(xd) / static_cast<double>(std::max<int64_t>(1, xc.size(0) - 1));
  auto [evals, evecs] = torch::linalg_eigh(cov, "L");  // ascending
  return evecs.flip({1}).slice(1, 0, k).to(torch::kFloat).contiguous();
}

// ---------------------------------------------------------------------------------------------
// Baselines

void train_lsh(Model::Impl& m, const torch::Tensor& x, at::Generator& gen) {
  // Random hyperplanes through the data mean (Charikar 2002), so bits are balanced in
  // expectation.
  torch::Tensor mean = x.mean(0);
  m.weight = torch::randn({x.size(1), m.bits}, gen);
  m.bias = -mean.matmul(m.weight);
}

void train_itq(Model::Impl& m, const torch::Tensor& x, int iterations, at::Generator& gen) {
  // Gong and Lazebnik (CVPR 2011): PCA to `bits` dimensions, then alternate B = sign(V R) and
  // the orthogonal Procrustes rotation R = argmin ||B - V R||.
  torch::Tensor mean = x.mean(0);
  torch::Tensor xc = x - mean;
  torch::Tensor pc = principal_components(xc, m.bits);
  torch::Tensor v = xc.matmul(pc);
  torch::Tensor r = std::get<0>(torch::linalg_qr(torch::randn({m.bits, m.bits}, gen)));
  for (int it = 0; it < iterations; ++it) {
    torch::Tensor b = torch::where(v.matmul(r) >= 0, torch::ones({}), -torch::ones({}));
    auto [u, s, vh] = torch::linalg_svd(b.t().matmul(v).to(torch::kDouble), false);
    // C = B^T V = U S Vh; R = Vh^T U^T.
    r = vh.t().matmul(u.t()).to(torch::kFloat);
  }
  m.weight = pc.matmul(r).contiguous();
  m.bias = -mean.matmul(m.weight);
}

void train_sh(Model::Impl& m, const torch::Tensor& x) {
  // Spectral hashing (Weiss, Torralba, Fergus, NIPS 2008), following the authors' reference:
  // PCA, a box around the projected data, and the `bits` smallest-eigenvalue 1-D
  // eigenfunction modes of the uniform distribution on that box.
  const int64_t npca = std::min<int64_t>(m.bits, x.size(1));
  torch::Tensor pc = principal_components(x - x.mean(0), npca);
  torch::Tensor y = x.matmul(pc).to(torch::kDouble);
  torch::Tensor mn = std::get<0>(y.min(0)) - 1e-10;
  torch::Tensor mx = std::get<0>(y.max(0)) + 1e-10;
  torch::Tensor range = mx - mn;
  const double max_range = range.max().item<double>();
  std::vector<int64_t> max_mode(npca);
  int64_t n_modes = 1;
  for (int64_t j = 0; j < npca; ++j) {
    max_mode[j] =
        static_cast<int64_t>(std::ceil((m.bits + 1) * range[j].item<double>() / max_range));
    n_modes += max_mode[j] - 1;
  }
  torch::Tensor modes = torch::zeros({n_modes, npca}, torch::kDouble);
  int64_t row = 1;
  for (int64_t j = 0; j < npca; ++j) {
    for (int64_t k = 1; k < max_mode[j]; ++k) modes[row++][j] = static_cast<double>(k);
  }
  torch::Tensor omega0 = M_PI / range;
  torch::Tensor omegas = modes * omega0.unsqueeze(0);
  torch::Tensor eig = (omegas * omegas).sum(1);  // smaller = smoother eigenfunction
  torch::Tensor order = eig.argsort();
  // Skip the constant mode (all zeros), take the next `bits`.
  torch::Tensor chosen = order.slice(0, 1, 1 + m.bits);
  m.weight = pc;
  m.bias = mn.to(torch::kFloat);
  m.omegas = omegas.index_select(0, chosen).to(torch::kFloat).contiguous();
}

void train_kmeans(Model::Impl& m, const torch::Tensor& x, int iterations, at::Generator& gen) {
  const int64_t n = x.size(0), k = m.clusters;
  // k-means++ seeding (Arthur and Vassilvitskii 2007).
  torch::Tensor centroids = torch::empty({k, x.size(1)});
  int64_t first = torch::randint(n, {1}, gen).item<int64_t>();
  centroids[0].copy_(x[first]);
  torch::Tensor best = ((x - x[first]).pow(2)).sum(1);
  for (int64_t c = 1; c < k; ++c) {
    torch::Tensor probs = best / best.sum().clamp_min(1e-12);
    int64_t pick = torch::multinomial(probs, 1, false, gen).item<int64_t>();
    centroids[c].copy_(x[pick]);
    best = torch::minimum(best, (x - x[pick]).pow(2).sum(1));
  }
  torch::Tensor xsq = (x * x).sum(1, true);
  torch::Tensor assign;
  for (int it = 0; it < iterations; ++it) {
    torch::Tensor d2 =
        xsq - 2 * x.matmul(centroids.t()) + (centroids * centroids).sum(1).unsqueeze(0);
    torch::Tensor next = d2.argmin(1);
    if (assign.defined() && next.equal(assign)) break;
    assign = next;
    torch::Tensor sums = torch::zeros_like(centroids).index_add_(0, assign, x);
    torch::Tensor counts = torch::zeros({k}).index_add_(0, assign, torch::ones({n}));
    torch::Tensor nonempty = counts > 0;
    centroids =
        torch::where(nonempty.unsqueeze(1), sums / counts.clamp_min(1).unsqueeze(1), centroids);
  }
  m.centroids = centroids.contiguous();
}

// ---------------------------------------------------------------------------------------------
// IMSAT / RIM

Status train_network(Model::Impl& m, const torch::Tensor& x_cpu, const TrainConfig& c,
                     at::Generator& gen, std::vector<Progress>* epoch_log, nlohmann::json* summary,
                     const internal::StepHook* hook) {
  const MethodTraits t = traits(m.method);
  const bool clustering = m.clusters > 0;
  const torch::Device device =
      (c.device == "cuda" || (c.device == "auto" && torch::cuda::is_available()))
          ? torch::Device(torch::kCUDA)
          : torch::Device(torch::kCPU);
  const auto t0 = Clock::now();
  const int64_t n = x_cpu.size(0);
  const int64_t batch = std::min<int64_t>(c.batch, n);
  const int64_t steps_per_epoch = epoch_steps(n, batch);
  int epochs = c.epochs;  // resolved by train_with_hook
  int64_t total_steps = steps_per_epoch * epochs;
  size_t next_hook = 0;
  if (hook != nullptr && !hook->at_steps.empty()) {
    total_steps = hook->at_steps.back();
    epochs = static_cast<int>((total_steps + steps_per_epoch - 1) / steps_per_epoch);
  }

  torch::Tensor x = x_cpu.to(device);
  torch::Tensor eps;
  if (t.vat || t.rpt) {
    // One large GEMM per block pair: every core helps here, unlike in the small training steps.
    // The selection between the GEMMs runs on one LibTorch thread: with as many OpenMP threads
    // as OpenBLAS threads, each pool spun while the other worked (bench/learn_bench
    // BM_KthNeighbour: 644 ms against 437 ms for 8,192 items on 2 cores).
    const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    internal::set_thread_split(1, c.threads > 0 ? c.threads : cores);
    eps = internal::kth_neighbour_distance(x, c.knn) * c.eps_scale;
    set_num_threads(c.threads);
    (*summary)["eps_mean"] = eps.mean().item<double>();
    (*summary)["knn_seconds"] = seconds_since(t0);
  }
  const int out = clustering ? m.clusters : m.bits;
  m.shortcut = c.init_itq;
  m.net = internal::Mlp(x.size(1), m.hidden, out, m.shortcut);
  m.net->initialise(gen);
  if (m.shortcut) {
    internal::start_shortcut_at_itq(m.net->skip, x_cpu, m.bits, c.itq_iterations, c.itq_scale, gen);
    (*summary)["init"] = "itq";
    (*summary)["itq_scale"] = c.itq_scale;
  }
  m.net->to(device);
  m.net->train();
  internal::AdamConfig adam;
  adam.lr = c.lr;
  adam.weight_decay = t.weight_decay ? c.weight_decay : 0.0;

  internal::LossConfig loss_config;
  loss_config.vat = t.vat;
  loss_config.rpt = t.rpt;
  loss_config.clustering = clustering;
  loss_config.lambda = effective_lambda(c);
  loss_config.mu = c.mu;
  loss_config.xi = c.xi;
  loss_config.power_iterations = c.power_iterations;
  if (c.augment_affine) {
    loss_config.affine_shape.assign(m.input_shape.begin(), m.input_shape.end());
  }
  const bool graph = device.is_cuda() && c.cuda_graph && internal::cuda_graphs_built();
  if (graph) torch::cuda::manual_seed(c.seed);  // the captured step draws on the device
  std::unique_ptr<internal::TrainStep> runner =
      internal::make_train_step(graph ? internal::StepKind::kCudaGraph : internal::StepKind::kEager,
                                m.net, x, eps, batch, loss_config, adam, gen);
  (*summary)["step"] = graph ? "cuda-graph" : "eager";

  // Where reading the terms costs a device synchronisation, they are read every
  // kGraphReportSteps steps (for the progress bar and the divergence check) and summed on the
  // device for the epoch's figures.
  constexpr int64_t kGraphReportSteps = 50;
  int64_t step = 0;
  bool stopped = false;  // the hook ended the run early (a settings search's trial)
  Progress last;
  for (int epoch = 1; epoch <= epochs && !stopped; ++epoch) {
    runner->start_epoch(torch::randperm(n, gen));
    for (int64_t b = 0; b < steps_per_epoch; ++b) {
      if (c.cancel != nullptr && c.cancel->load()) return Status::cancelled("training cancelled");
      runner->run(b);
      ++step;
      if (hook != nullptr && next_hook < hook->at_steps.size() &&
          step == hook->at_steps[next_hook]) {
        ++next_hook;
        m.net->eval();
        const bool go_on = hook->fn(step, m.net) && next_hook < hook->at_steps.size();
        m.net->train();
        if (!go_on) {
          stopped = true;
          break;
        }
      }
      const bool report =
          runner->terms_every_step() || step % kGraphReportSteps == 0 || b + 1 == steps_per_epoch;
      if (!report) continue;
      const internal::StepValues v = runner->last_terms();
      if (!std::isfinite(v[0])) {
        return Status::internal("training diverged: the loss became " + std::to_string(v[0]) +
                                (runner->terms_every_step() ? " at step " : " by step ") +
                                std::to_string(step));
      }
      if (c.on_progress) {
        c.on_progress(Progress{epoch, epochs, step, total_steps, seconds_since(t0), v[0], v[1],
                               v[2], v[3], v[4]},
                      false);
      }
    }
    if (stopped) break;  // a partial epoch is not logged
    const internal::StepValues sum = runner->take_sums();
    const double k = static_cast<double>(steps_per_epoch);
    last = Progress{epoch,      epochs,     step,       total_steps, seconds_since(t0),
                    sum[0] / k, sum[1] / k, sum[2] / k, sum[3] / k,  sum[4] / k};
    if (!std::isfinite(last.loss)) {
      return Status::internal("training diverged: the loss became " + std::to_string(last.loss) +
                              " in epoch " + std::to_string(epoch));
    }
    if (epoch_log != nullptr) epoch_log->push_back(last);
    if (c.on_progress) c.on_progress(last, true);
  }
  runner.reset();
  m.net->to(torch::kCPU);
  m.net->eval();
  (*summary)["device"] = device.is_cuda() ? "cuda" : "cpu";
  (*summary)["epochs"] = epochs;
  (*summary)["steps"] = stopped ? step : total_steps;
  (*summary)["final"] = {{"loss", last.loss},
                         {"sat", last.sat},
                         {"cond_entropy", last.cond_entropy},
                         {"marg_entropy", last.marg_entropy},
                         {"pair_mi", last.pair_mi}};
  return Status::ok();
}

}  // namespace

std::string method_name(Method m) { return traits(m).name; }

Result<Method> parse_method(const std::string& name) {
  for (Method m : kAllMethods) {
    if (name == traits(m).name) return m;
  }
  std::string known;
  for (Method m : kAllMethods) known += std::string(known.empty() ? "" : ", ") + traits(m).name;
  return Status::invalid_argument("unknown method '" + name + "' (known: " + known + ")");
}

namespace {
constexpr EnumName<Metric> kMetricNames[] = {{Metric::kL2, "l2"}, {Metric::kCosine, "cosine"}};
}  // namespace

const char* metric_name(Metric m) { return name_of(kMetricNames, m, "l2"); }

Result<Metric> parse_metric(const std::string& name) {
  if (const std::optional<Metric> m = value_of(kMetricNames, name)) return *m;
  return Status::invalid_argument("metric must be " + names_of(kMetricNames) + ", got '" + name +
                                  "'");
}

Method default_method_for_metric(size_t dim) { return dim >= 8 ? Method::kItq : Method::kLsh; }

int default_bits_for_metric(size_t dim) {
  return dim >= 8 ? static_cast<int>(std::min<size_t>(128, dim / 8 * 8)) : 8;
}

bool scale_to_unit_length(float* v, size_t dim) {
  double sq = 0;
  for (size_t i = 0; i < dim; ++i) sq += static_cast<double>(v[i]) * v[i];
  if (sq == 0) return false;
  const double inv = 1.0 / std::sqrt(sq);
  for (size_t i = 0; i < dim; ++i) v[i] = static_cast<float>(v[i] * inv);
  return true;
}

std::vector<Method> hashing_methods() {
  return {Method::kImsatVat,  Method::kImsatRpt, Method::kLinearImsat, Method::kDeepRim,
          Method::kLinearRim, Method::kItq,      Method::kSh,          Method::kLsh};
}

double effective_lambda(const TrainConfig& config) {
  if (config.lambda > 0) return config.lambda;
  return (config.clusters > 0 || config.bits <= 16) ? 0.1 : 0.05;
}

namespace {
// The image recipe (the paper's) applies to images and to clustering, which was measured only
// on images; hash functions of other feature vectors get their own defaults.
bool image_recipe(const Dataset& data, const TrainConfig& config) {
  return data.uint8_pixels || config.clusters > 0;
}
}  // namespace

double effective_eps_scale(const Dataset& data, const TrainConfig& config) {
  if (config.eps_scale > 0) return config.eps_scale;
  return image_recipe(data, config) ? kImageEpsScale : kOtherEpsScale;
}

int64_t automatic_min_steps(int64_t rows, bool images) {
  const int64_t cap = images ? kMinAutoSteps : kMinAutoStepsOther;
  return std::min(cap, std::max(kMinAutoStepsSmall, kAutoStepsPerItem * rows));
}

int effective_epochs(const Dataset& data, const TrainConfig& config) {
  const int64_t steps_per_epoch = epoch_steps(static_cast<int64_t>(data.rows), config.batch);
  if (config.steps > 0) {
    return static_cast<int>(
        std::max<int64_t>(1, (config.steps + steps_per_epoch - 1) / steps_per_epoch));
  }
  if (config.epochs > 0) return config.epochs;
  const int64_t min_steps =
      automatic_min_steps(static_cast<int64_t>(data.rows), image_recipe(data, config));
  return static_cast<int>(
      std::max<int64_t>(50, (min_steps + steps_per_epoch - 1) / steps_per_epoch));
}

namespace internal {

void start_shortcut_at_itq(torch::nn::Linear& skip, const torch::Tensor& x, int bits,
                           int iterations, double scale, at::Generator& gen) {
  Model::Impl itq;
  itq.bits = static_cast<int>(std::min<int64_t>(bits, x.size(1)));
  train_itq(itq, x, iterations, gen);
  const torch::Tensor logits = x.matmul(itq.weight) + itq.bias;
  const torch::Tensor gain = scale / (logits.std(0) + 1e-12);
  torch::NoGradGuard no_grad;
  skip->weight.zero_();
  skip->bias.zero_();
  skip->weight.slice(0, 0, itq.bits).copy_((itq.weight * gain).t());
  skip->bias.slice(0, 0, itq.bits).copy_(itq.bias * gain);
}

Result<Model> train_with_hook(const Dataset& data, const TrainConfig& given,
                              std::vector<Progress>* epoch_log, const StepHook* hook,
                              const std::string& auto_json) {
  IMSAT_RETURN_IF_ERROR(validate(data, given));
  // Every setting left to the data, resolved once here.
  TrainConfig config = given;
  config.eps_scale = effective_eps_scale(data, given);
  config.epochs = effective_epochs(data, given);
  const MethodTraits t = traits(config.method);
  try {
    set_num_threads(config.threads);
    at::Generator gen = at::detail::createCPUGenerator(config.seed);
    auto m = std::make_unique<Model::Impl>();
    m->method = config.method;
    const bool clustering = config.clusters > 0 || config.method == Method::kKmeans;
    m->clusters = clustering ? config.clusters : 0;
    m->bits = clustering ? 0 : config.bits;
    m->input_dim = data.cols;
    m->input_shape = data.item_shape.empty() ? std::vector<size_t>{data.cols} : data.item_shape;
    m->image_pipeline = data.image_pipeline;
    m->label_names = data.label_names;
    m->pre = internal::Preprocess::fit(data, config.metric);
    m->metric = config.metric;
    const torch::Tensor x = features(data, m->pre);

    nlohmann::json summary;
    summary["method"] = t.name;
    summary["seed"] = config.seed;
    summary["rows"] = data.rows;
    summary["source"] = data.source;
    if (config.metric) summary["metric"] = metric_name(*config.metric);
    const auto t0 = Clock::now();
    if (t.neural) {
      if (config.has_hidden) {
        m->hidden = config.hidden;
      } else if (t.deep) {
        m->hidden = clustering ? std::vector<int>{1200, 1200} : std::vector<int>{400, 400};
      }
      m->kind = Kind::kMlp;
      summary["batch"] = config.batch;
      summary["lr"] = config.lr;
      summary["lambda"] = effective_lambda(config);
      if (clustering) summary["mu"] = config.mu;
      if (t.vat) {
        summary["xi"] = config.xi;
        summary["power_iterations"] = config.power_iterations;
      }
      if (t.vat || t.rpt) {
        summary["eps_scale"] = config.eps_scale;
        summary["knn"] = config.knn;
        summary["augment"] = config.augment_affine ? "affine" : "none";
      }
      if (t.weight_decay) summary["weight_decay"] = config.weight_decay;
      IMSAT_RETURN_IF_ERROR(train_network(*m, x, config, gen, epoch_log, &summary, hook));
    } else if (config.method == Method::kLsh) {
      m->kind = Kind::kLinear;
      train_lsh(*m, x, gen);
    } else if (config.method == Method::kItq) {
      m->kind = Kind::kLinear;
      summary["iterations"] = config.itq_iterations;
      train_itq(*m, x, config.itq_iterations, gen);
    } else if (config.method == Method::kSh) {
      m->kind = Kind::kSpectral;
      train_sh(*m, x);
    } else {
      m->kind = Kind::kKmeans;
      summary["iterations"] = config.kmeans_iterations;
      train_kmeans(*m, x, config.kmeans_iterations, gen);
    }
    summary["seconds"] = seconds_since(t0);
    if (!auto_json.empty()) summary["auto"] = nlohmann::json::parse(auto_json);
    m->training_json = summary.dump();
    return make_model(std::move(m));
  } catch (const c10::Error& e) {
    return Status::internal(std::string("LibTorch: ") + e.what_without_backtrace());
  }
}

}  // namespace internal

Result<Model> train(const Dataset& data, const TrainConfig& config,
                    std::vector<Progress>* epoch_log) {
  if (!config.auto_settings) return internal::train_with_hook(data, config, epoch_log, nullptr);
  IMSAT_RETURN_IF_ERROR(validate(data, config));
  if (config.steps > 0) {
    return Status::invalid_argument(
        "--steps and --auto do not go together: the search chooses the training length");
  }
  IMSAT_ASSIGN_OR_RETURN(AutoChoice choice, choose_settings(data, config));
  TrainConfig c = config;
  c.auto_settings = false;
  c.steps = 0;
  c.lambda = choice.lambda;
  c.eps_scale = choice.eps_scale;
  const int64_t steps_per_epoch = epoch_steps(static_cast<int64_t>(data.rows), c.batch);
  c.epochs = static_cast<int>(
      std::max<int64_t>(1, (choice.steps + steps_per_epoch / 2) / steps_per_epoch));
  return internal::train_with_hook(data, c, epoch_log, nullptr, choice.json());
}

}  // namespace imsat::learn
