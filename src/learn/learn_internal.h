// LibTorch internals of src/learn: the encoder network, the IMSAT objectives, self-augmentation
// and the model representation. Included only by src/learn and its tests.
#pragma once

#include <torch/torch.h>

#include <array>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "learn/learn.h"

namespace imsat::learn::internal {

// LibTorch's intra-op (OpenMP) threads and OpenBLAS's threads, set separately (benchmarks).
void set_thread_split(int torch_threads, int blas_threads);

// ------------------------------------------------------------------------------------------
// Preprocessing recorded in a model: x/128 - 1 for 8-bit images, per-feature standardisation
// otherwise; for nearest-neighbour jobs (TrainConfig::metric) one scale for all features, after
// scaling each row to unit length for cosine.
struct Preprocess {
  bool pixels = false;
  bool unit_rows = false;  // rows scaled to unit Euclidean length first (cosine)
  bool isotropic = false;  // inv_std holds one value for every feature
  torch::Tensor mean;      // (dim), float32; undefined when pixels
  torch::Tensor inv_std;   // (dim), float32; undefined when pixels

  static Preprocess fit(const Dataset& data, std::optional<Metric> metric = std::nullopt);
  // "pixels", "standardize", "center" (isotropic) or "unit-center" (unit rows, isotropic): the
  // header's preprocessing kind.
  const char* kind() const;
  Status set_kind(const std::string& kind);
  // (rows, dim) float32 on the CPU.
  torch::Tensor apply(const float* raw, size_t rows, size_t dim) const;
};

// ------------------------------------------------------------------------------------------
// Encoder: d -> h1 -> ... -> out; hidden layers Linear -> BatchNorm -> ReLU, the last layer
// Linear only. Initialised as the reference: hidden weights N(0, (0.1 / sqrt(fan_in))^2),
// output weights N(0, (1e-4 / sqrt(fan_in))^2), biases 0, so training starts at p = 0.5.
struct MlpImpl : torch::nn::Module {
  // shortcut: a linear map from the input straight to the output, added to the network's logits
  // (TrainConfig::init_itq starts it at PCA-ITQ's projection).
  MlpImpl(int64_t in, const std::vector<int>& hidden, int64_t out, bool shortcut = false);
  void initialise(at::Generator& gen);
  // Logits. In training mode, update_bn_stats false normalises with the batch statistics but
  // leaves the running averages untouched (the perturbed passes of VAT and RPT).
  torch::Tensor forward(torch::Tensor x, bool update_bn_stats = true);

  std::vector<torch::nn::Linear> linears;
  std::vector<torch::nn::BatchNorm1d> norms;
  torch::nn::Linear skip{nullptr};  // the shortcut, when there is one
};
TORCH_MODULE(Mlp);

// ------------------------------------------------------------------------------------------
// Objectives (docs/algorithm.md, "IMSAT, exactly"). 1e-8 is added inside every log.
constexpr double kLogEps = 1e-8;

// Elementwise binary entropy h(p) in nats.
torch::Tensor binary_entropy(const torch::Tensor& p);

struct HashTerms {
  torch::Tensor cond_entropy;  // mean over the batch of sum_d h(p_d(x))
  torch::Tensor marg_entropy;  // sum_d h(mean_x p_d(x))
  torch::Tensor pair_mi;       // sum over ordered pairs d != d' of I(Y_d; Y_d')
};
// `logits` (batch, bits).
HashTerms hash_information(const torch::Tensor& logits);

struct ClusterTerms {
  torch::Tensor cond_entropy;  // mean over the batch of H(p(y|x))
  torch::Tensor marg_entropy;  // H(mean_x p(y|x))
};
ClusterTerms cluster_information(const torch::Tensor& logits);

// KL(p(clean) || p(perturbed)) averaged over the batch: the sum of Bernoulli KLs over bits for
// hashing, the categorical KL for clustering.
torch::Tensor sat_divergence(const torch::Tensor& clean_logits, const torch::Tensor& pert_logits,
                             bool clustering);

// Rows of `d` scaled to unit Euclidean norm.
torch::Tensor unit_rows(const torch::Tensor& d);

// The VAT direction (unit rows): `power_iterations` gradient steps of the KL w.r.t. a random
// unit direction, at finite-difference step xi. `clean_logits` carries no gradient.
torch::Tensor vat_direction(Mlp& net, const torch::Tensor& x, const torch::Tensor& clean_logits,
                            const torch::Tensor& random_unit, double xi, int power_iterations,
                            bool clustering);

// Euclidean distance from each row of x to its k-th nearest other row (the reference takes
// index k of the sorted distances, the point itself at index 0). Computed in blocks of rows.
torch::Tensor kth_neighbour_distance(const torch::Tensor& x, int k, int64_t block_rows = 2048);
// Starts a network's shortcut at PCA-ITQ's projection of `x` (trainer.cpp; TrainConfig::init_itq):
// ITQ on the first min(bits, features) output bits, each scaled to logits of standard deviation
// `scale` over `x`; the other bits start at zero.
void start_shortcut_at_itq(torch::nn::Linear& skip, const torch::Tensor& x, int bits,
                           int iterations, double scale, at::Generator& gen);

// The loss of one IMSAT / RIM step on a mini-batch:
//   R_SAT + lambda * (H(Y|X) - H(Y) + pairwise MI)      (hashing)
//   R_SAT + lambda * (H(Y|X) - mu * H(Y))               (clustering)
// R_SAT is the VAT or RPT divergence at per-sample radius `eps_b` (batch), or absent.
struct LossConfig {
  bool vat = true;
  bool rpt = false;
  bool clustering = false;
  double lambda = 0.1;
  double mu = 4.0;
  double xi = 10.0;
  int power_iterations = 1;
  // Draw the random directions from the device's own generator instead of `gen` (a captured
  // CUDA graph cannot read the CPU generator).
  bool noise_on_device = false;
  // Images of this shape ({H, W} or {H, W, C}, channels interleaved): add to R_SAT the KL
  // between the clean pass and a pass over randomly transformed images (random_affine).
  // Empty: no affine augmentation.
  std::vector<int64_t> affine_shape;
};
// Each row of `xb` (preprocessed images of `shape`) rotated by up to 10 degrees, scaled by up
// to 10% and shifted by up to 5% of its side, each drawn per row, resampled bilinearly with the
// border pixels extended.
torch::Tensor random_affine(const torch::Tensor& xb, const std::vector<int64_t>& shape,
                            const LossConfig& c, at::Generator& gen);
struct LossTerms {
  torch::Tensor loss, sat, cond_entropy, marg_entropy, pair_mi;  // sat / pair_mi may be undefined
};
// Runs the clean pass (updating BatchNorm statistics) and the perturbed passes (not updating
// them). The random direction is drawn from `gen` on the CPU, so runs are reproducible.
LossTerms imsat_loss(Mlp& net, const torch::Tensor& xb, const torch::Tensor& eps_b,
                     const LossConfig& c, at::Generator& gen);

// ------------------------------------------------------------------------------------------
// Training steps (step.cpp).

struct AdamConfig {
  double lr = 0.002, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0;
};

// Adam (as LibTorch's torch::optim::Adam computes it) over all parameters at once: the
// parameters become views of one flat tensor, so an update is a dozen operations whatever the
// number of layers, and the step count lives on the device (a CUDA graph replays it correctly).
class FlatAdam {
 public:
  FlatAdam(std::vector<torch::Tensor> params, const AdamConfig& c);
  // `grads` in the order of the parameters given to the constructor.
  void step(const std::vector<torch::Tensor>& grads);

 private:
  AdamConfig c_;
  torch::Tensor flat_, m_, v_, step_;
};

// loss, sat, cond_entropy, marg_entropy, pair_mi (zero where a method has no such term).
using StepValues = std::array<double, 5>;

// One optimisation step of IMSAT / RIM over mini-batches drawn from a permutation per epoch.
class TrainStep {
 public:
  virtual ~TrainStep() = default;
  // `perm` (n, int64, on the CPU): the epoch's order of the items.
  virtual void start_epoch(const torch::Tensor& perm) = 0;
  // Trains on items perm[b * batch, (b + 1) * batch).
  virtual void run(int64_t b) = 0;
  // Whether last_terms() costs nothing after each step (no device synchronisation).
  virtual bool terms_every_step() const = 0;
  virtual StepValues last_terms() = 0;
  // The terms summed over the steps since the previous call.
  virtual StepValues take_sums() = 0;
};

enum class StepKind {
  kEager,      // LibTorch's Adam, operators dispatched one by one (the CPU's step)
  kStatic,     // FlatAdam and buffers allocated once, dispatched one by one
  kCudaGraph,  // the static step captured as one CUDA graph after a few warm-up steps
};
// Whether this build can capture CUDA graphs (a CUDA LibTorch).
bool cuda_graphs_built();
std::unique_ptr<TrainStep> make_train_step(StepKind kind, Mlp net, torch::Tensor x,
                                           torch::Tensor eps, int64_t batch, const LossConfig& loss,
                                           const AdamConfig& adam, at::Generator gen);

// ------------------------------------------------------------------------------------------
// Checkpoints and the automatic search (trainer.cpp, auto.cpp).

// Called by training after each of `at_steps` (ascending) optimiser steps with the network in
// evaluation mode; training ends there when `fn` returns false or after the last of them.
struct StepHook {
  std::vector<int64_t> at_steps;
  std::function<bool(int64_t step, Mlp& net)> fn;
};
// train() with an optional hook (which sets the number of steps) and an "auto" record (JSON,
// empty for none) for the model header.
Result<Model> train_with_hook(const Dataset& data, const TrainConfig& config,
                              std::vector<Progress>* epoch_log, const StepHook* hook,
                              const std::string& auto_json = "");
// Indices (queries, k) of each query's k nearest gallery rows by Euclidean distance.
torch::Tensor nearest_rows(const torch::Tensor& queries, const torch::Tensor& gallery, int k);
// Mean average precision of the network's Hamming ranking of `gallery` for each query (ties
// broken by the expected distance), with the query's `truth` row as the relevant items.
double neighbour_map(Mlp& net, const torch::Tensor& queries, const torch::Tensor& gallery,
                     const torch::Tensor& truth);
// Hamming distances (queries x gallery, float) between the codes `net` gives.
torch::Tensor hamming_matrix(Mlp& net, const torch::Tensor& queries, const torch::Tensor& gallery);
// Seed agreement of two runs' distance matrices: per query (row), the correlation between its
// distances under the one and under the other (0 where a row is constant), averaged over rows.
double seed_agreement(const torch::Tensor& a, const torch::Tensor& b);
// Neighbour overlap of two runs' distance matrices: per query (row), the expected number of
// gallery items (columns) among its k nearest under both runs, where ties at the k-th distance
// are broken uniformly at random and independently in each run, divided by k; averaged over rows.
double neighbour_overlap(const torch::Tensor& a, const torch::Tensor& b, int k);

// ------------------------------------------------------------------------------------------
// Model representation.
enum class Kind { kMlp, kLinear, kSpectral, kKmeans };

// One dense layer of the lean encoder: y = w x + b, then ReLU if set. The weights are stored
// input-major (w[i * out + j] multiplies input i into output j), so that one input's weights are
// one contiguous row.
struct DenseLayer {
  int in = 0, out = 0;
  std::vector<float> w, b;
  bool relu = false;
};

// The lean encoder's kernel: for each of `rows` inputs r, out_r += sum over i of in_r[i] * (row
// i of w), w input-major (n_in rows of n_out), inputs in_stride and outputs out_stride apart.
using LeanKernel = void (*)(const float* w, const float* in, size_t in_stride, int n_in, float* out,
                            size_t out_stride, int n_out, size_t rows);
struct LeanKernelVariant {
  const char* name;  // "avx512", "avx2" or "generic"
  LeanKernel fn;
};
// The variants this CPU runs, widest first (the encoder uses the first); tests compare them.
std::vector<LeanKernelVariant> lean_kernels();

// The encoder of a hashing model (kMlp or kLinear) for a few inputs at a time, the common case
// when serving searches by vector: the preprocessing and the batch normalisations are folded
// into the dense layers once, and each input costs one pass over each layer's weights (skipping
// the rows of inputs that are zero) into per-thread buffers, with no LibTorch dispatch and no
// allocation. Its logits equal LibTorch's up to float rounding (the folding reorders the
// arithmetic).
class LeanEncoder {
 public:
  // nullptr for kinds it does not cover (spectral hashing, k-means).
  static std::shared_ptr<const LeanEncoder> build(const Model::Impl& model);
  // Logits of `rows` raw (not preprocessed) inputs, side by side, into out[0 .. rows * bits).
  // Inputs go through the layers kBlockRows at a time, each layer's weights read once per block.
  void logits(const float* raw, size_t rows, float* out) const;
  static constexpr size_t kBlockRows = 8;

 private:
  std::vector<DenseLayer> layers_;
  DenseLayer skip_;  // the linear shortcut (in == 0 without one)
  size_t widest_ = 0;
};

}  // namespace imsat::learn::internal

namespace imsat::learn {

struct Model::Impl {
  Method method = Method::kImsatVat;
  internal::Kind kind = internal::Kind::kMlp;
  int bits = 0;
  int clusters = 0;
  size_t input_dim = 0;
  std::vector<size_t> input_shape;
  std::string image_pipeline;  // io::ImagePipeline JSON; empty unless trained on image files
  std::vector<std::string> label_names;  // the training data's label names, when it had them
  std::vector<int> hidden;
  std::optional<Metric> metric;  // the nearest-neighbour job, when trained for one
  bool shortcut = false;         // kMlp: the network has a linear shortcut (TrainConfig::init_itq)
  internal::Preprocess pre;
  mutable internal::Mlp net{nullptr};  // kMlp; forward is not const in LibTorch
  torch::Tensor weight;                // kLinear: (dim, bits); kSpectral: principal components
  torch::Tensor bias;                  // kLinear: (bits); kSpectral: per-component minimum
  torch::Tensor omegas;                // kSpectral: (bits, components)
  torch::Tensor centroids;             // kKmeans: (clusters, dim)
  std::string training_json = "{}";    // training configuration and summary
  std::string fingerprint;
  // kMlp and kLinear: the folded encoder for one input at a time (set by make_model).
  std::shared_ptr<const internal::LeanEncoder> lean;

  // Logits (rows, bits or clusters) of preprocessed inputs, on the CPU.
  torch::Tensor scores(const torch::Tensor& x) const;
  // Every tensor that defines the model, by name, float32 on the CPU.
  std::vector<std::pair<std::string, torch::Tensor>> tensors() const;
  std::string compute_fingerprint() const;
};

Result<Model> make_model(std::unique_ptr<Model::Impl> impl);

}  // namespace imsat::learn
