// imsat::learn — the public interface of src/learn: dataset readers, IMSAT training (hashing and
// clustering), the baseline hashers, model files and encoding to packed codes.
//
// Nothing here exposes a LibTorch type: callers get plain vectors and packed code bytes, so
// src/query and tools/ compile without <torch/torch.h>. Every function that can fail on input
// returns Status or Result<T>; none throws.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"
#include "io/datasets.h"

namespace imsat::learn {

// ---------------------------------------------------------------------------------------------
// Runtime

// The BLAS library that LibTorch's matrix products resolve to in this process.
struct BlasInfo {
  std::string name;          // "openblas", "mkl", "blis", "reference" or "unknown"
  std::string library_path;  // the shared object that defines sgemm_, when known
  std::string config;        // vendor configuration string (e.g. OpenBLAS's), when known
};
BlasInfo linked_blas();

// Sets LibTorch's intra-op threads and, when OpenBLAS is linked, OpenBLAS's threads.
// n <= 0 picks the project's tuned default (see kDefaultThreads in runtime.cpp).
void set_num_threads(int n);
// The number of intra-op threads LibTorch currently uses.
int num_threads();
// "1.13.1" and the like: the LibTorch version this library was built against.
std::string torch_version();
// True when a CUDA device is usable by this build of LibTorch.
bool cuda_available();

// ---------------------------------------------------------------------------------------------
// Datasets (src/learn/io, re-exported here)

using io::Dataset;
using io::load_dataset;
using io::read_bvecs;
using io::read_csv;
using io::read_fvecs;
using io::read_idx;
using io::read_idx_labels;
using io::read_ivecs;

// ---------------------------------------------------------------------------------------------
// Training

enum class Method {
  kImsatVat,     // IMSAT with virtual adversarial training (the paper's method)
  kImsatRpt,     // IMSAT with random perturbation training
  kLinearImsat,  // IMSAT(VAT) with a linear encoder
  kDeepRim,      // information term + weight decay, MLP encoder
  kLinearRim,    // information term + weight decay, linear encoder
  kItq,          // PCA + iterative quantisation (Gong and Lazebnik)
  kSh,           // spectral hashing (Weiss, Torralba, Fergus)
  kLsh,          // random hyperplanes (Charikar)
  kKmeans,       // clustering baseline
};
// "imsat-vat", "imsat-rpt", "linear-imsat", "deep-rim", "linear-rim", "itq", "sh", "lsh",
// "kmeans".
std::string method_name(Method m);
Result<Method> parse_method(const std::string& name);
// Every hashing method, in the order tables list them.
std::vector<Method> hashing_methods();

// What the codes of a hash function are for. Without one (TrainConfig::metric unset), the
// paper's job: codes that group items of one kind, judged by retrieval of same-label items.
// With one, the job is nearest neighbours in the users' own vector space: the codes pick
// candidates whose Hamming order (and asymmetric order) follows that distance, and the store
// re-ranks them by the exact distance.
enum class Metric {
  kL2,      // Euclidean distance between raw vectors
  kCosine,  // 1 - cosine similarity; vectors are scaled to unit length before anything else
};
const char* metric_name(Metric m);  // "l2", "cosine"
Result<Metric> parse_metric(const std::string& name);
// The method and code length a nearest-neighbour job trains with when the user names neither:
// PCA-ITQ (the best recall for a given number of candidates of the methods measured,
// bench/README.md, "Nearest neighbours in the users' vector space") with 128 bits, or as many
// as the input has dimensions (a multiple of 8); random hyperplanes (LSH) with 8 bits for inputs
// of under 8 dimensions.
Method default_method_for_metric(size_t dim);
int default_bits_for_metric(size_t dim);
// Scales `v` to unit Euclidean length (what a cosine model does to its inputs first); false, and
// `v` unchanged, for a zero vector.
bool scale_to_unit_length(float* v, size_t dim);

// What a training run reports after each step (for progress bars) and each epoch (for logs).
struct Progress {
  int epoch = 0;  // 1-based
  int epochs = 0;
  int64_t step = 0;  // 1-based, over the whole run
  int64_t total_steps = 0;
  double seconds = 0;  // since training began
  // Epoch means of each term (for the step callback: the latest step's values).
  double loss = 0;
  double sat = 0;  // R_SAT (VAT or RPT KL), 0 without self-augmentation
  double cond_entropy = 0;
  double marg_entropy = 0;
  double pair_mi = 0;  // hashing only
};

// How the automatic search scores a setting without labels.
enum class AutoCriterion {
  // Held-out neighbour mAP (the default on images): how well one run's codes of held-out items
  // rank their nearest neighbours in the preprocessed feature space (in [0, 1]).
  kNeighbours,
  // Seed agreement: the setting is trained twice, from two seeds, and scored by how alike the two
  // runs place held-out items: per query, the correlation between its Hamming distances to the
  // gallery under the one run and under the other, averaged over the queries (in [-1, 1]). It
  // can favour an early, nearly collapsed run, whose few active bits both seeds reproduce
  // (bench/README.md, "The settings search (`--auto`)"), so it is not the default.
  kAgreement,
  // Neighbour overlap: the setting is trained twice, from two seeds, and scored by the share of
  // each held-out query's `neighbours` nearest gallery items (by Hamming distance, ties at the
  // last place drawn at random, counted in expectation) that both runs return, averaged over
  // the queries (in [0, 1]; codes that cannot tell items apart score near neighbours / gallery).
  // The default on other data.
  kOverlap,
};
// How the criterion is named in reports and in the model header.
const char* criterion_name(AutoCriterion c);

// A setting tried by the automatic search (TrainConfig::auto_settings) and its score.
struct AutoTrial {
  AutoCriterion criterion = AutoCriterion::kNeighbours;  // what `score` measures
  double lambda = 0, eps_scale = 0;
  int64_t steps = 0;  // optimiser steps on the search's rows when scored
  double score = 0;   // the search's criterion, at most 1
};

// The settings the automatic search tries, coordinate-wise: every eps_scale at the middle
// lambda, then the other lambdas at the best eps_scale. Each setting trains on `rows` items (a
// random subsample) and is scored at each checkpoint on `queries` other items against `gallery`
// training items, by `criterion` (for kNeighbours, the `neighbours` nearest ones in feature
// space, for kOverlap the `neighbours` nearest in Hamming space; labels are never read). A setting
// stops at the first checkpoint that scores below its best (with the two-run criteria, the second
// run stops there); the best checkpoint of all sets the length.
//
// What is left unset depends on the data (resolve_search): on images (8-bit pixels) the
// held-out neighbour criterion, half, once and twice effective_lambda() and 500-4,000 steps; on
// other data neighbour overlap, lambdas 0.1-0.8 and 500-8,000 steps, which found the setting
// the labels prefer on LetterRecognition where the image recipe did not (bench/README.md,
// "The settings search (`--auto`)").
struct AutoSearch {
  std::optional<AutoCriterion> criterion;  // unset: by the data
  std::vector<double> lambdas;             // empty: by the data
  std::vector<double> eps_scales = {0.25, 1.0, 4.0};
  std::vector<int64_t> checkpoints;  // empty: by the data
  size_t rows = 10000, queries = 500, gallery = 5000;
  int neighbours = 50;
};

// What the automatic search chose: the best-scoring trial's settings, and every trial.
struct AutoChoice {
  AutoCriterion criterion = AutoCriterion::kNeighbours;
  double lambda = 0, eps_scale = 0;
  int64_t steps = 0;
  double score = 0;
  size_t search_rows = 0, query_rows = 0;
  int neighbours = 0;  // the neighbour and overlap criteria's k (0 with seed agreement)
  double seconds = 0;
  std::vector<AutoTrial> trials;
  std::string json() const;  // recorded as "auto" in the model header's training object
};

struct TrainConfig {
  Method method = Method::kImsatVat;
  // A nearest-neighbour job (see Metric); recorded in the model. It also sets the preprocessing:
  // an l2 job keeps Euclidean geometry (pixels x/128 - 1, other data centred and scaled by one
  // factor for all features instead of per feature), a cosine job scales each vector to unit
  // length, then centres and scales by one factor. Unset: the paper's job (pixels x/128 - 1,
  // other data standardised per feature).
  std::optional<Metric> metric;
  int bits = 16;     // hashing: D, a multiple of 8 in [8, 1024]
  int clusters = 0;  // > 0: train a clustering model with this many clusters instead
  // Hidden layer sizes. Unset (has_hidden false) means the method's default: 400-400 for
  // hashing, 1200-1200 for clustering, none for the linear methods.
  std::vector<int> hidden;
  bool has_hidden = false;
  // Epochs; 0 means automatic: 50 epochs, or more on small data so that a run makes at least
  // kMinAutoSteps optimiser steps on images (the paper's 50 epochs over 70k items are ~14,000
  // steps) and kMinAutoStepsOther for hash functions of other data. See effective_epochs().
  int epochs = 0;
  // > 0: train this many optimiser steps (rounded up to whole epochs), whatever `epochs` says.
  int64_t steps = 0;
  int batch = 250;
  double lr = 0.002;
  // Weight of the information term; <= 0 means automatic: 0.1 (the paper's) for clustering and
  // codes of up to 16 bits, 0.05 for longer codes (on Fashion-MNIST, 0.1 at 32 and 64 bits gave
  // mAP 38 and 34, 0.05 gave 48 and 49; bench/README.md has the runs). See effective_lambda().
  double lambda = 0.0;
  double mu = 4.0;   // clustering: weight of the marginal entropy
  double xi = 10.0;  // VAT finite-difference step
  // Adaptive epsilon = eps_scale * distance to the knn-th neighbour; <= 0 means by the data:
  // 0.25 on images (the paper's) and for clustering, 1 for hash functions of other data (see
  // effective_eps_scale()).
  double eps_scale = 0;
  int knn = 10;
  int power_iterations = 1;
  // IMSAT on images: also train for codes that survive small random affine transforms (the
  // paper's self-augmentation for images), beside VAT or RPT. InvalidArgument for other data or
  // methods.
  bool augment_affine = false;
  // IMSAT hashing: add a linear shortcut from the input to the logits and start it at PCA-ITQ's
  // projection (its first min(bits, features) bits; the rest start at zero), scaled to logits of
  // standard deviation itq_scale, so training starts from PCA-ITQ's codes and the network learns
  // what to change. The shortcut is part of the model. The automatic search searches from this
  // start when it is set but never chooses it: its label-free criterion did not prefer it where
  // it helped (bench/README.md, "Starting from PCA-ITQ's codes").
  bool init_itq = false;
  double itq_scale = 3.0;
  double weight_decay = 1e-4;  // RIM methods only (IMSAT uses SAT instead)
  int itq_iterations = 50;
  int kmeans_iterations = 100;
  std::string device = "auto";  // "cpu", "cuda" or "auto"
  // On CUDA, capture the whole training step once as a CUDA graph and replay it (false:
  // dispatch every operator of every step, as on the CPU). Ignored on the CPU.
  bool cuda_graph = true;
  uint64_t seed = 0;
  int threads = 0;  // <= 0: tuned default
  // Called after every step and every epoch (is_epoch_end true); may be empty.
  std::function<void(const Progress&, bool is_epoch_end)> on_progress;
  // Training stops with Status::cancelled when this becomes true. May be null.
  const std::atomic<bool>* cancel = nullptr;
  // Choose lambda, eps_scale and the training length without labels (choose_settings) before
  // training on all items; IMSAT hashing methods only. The choice is recorded in the model.
  bool auto_settings = false;
  AutoSearch search;
  // Called after each trial of the search; may be empty.
  std::function<void(const AutoTrial&)> on_search;
};
constexpr int64_t kMinAutoSteps = 14000;
// On feature vectors that are not images a quarter of the steps did better, with a wider radius
// (mlbench's Satellite and LetterRecognition, scikit-learn's digits: bench/README.md, "Other data
// sets and the defaults for feature vectors").
constexpr int64_t kMinAutoStepsOther = 5000;
// Small data sets need far fewer steps: the minimum is kAutoStepsPerItem steps per item, at least
// kMinAutoStepsSmall, up to the caps above. Fashion-MNIST-sized sets keep 50 epochs (14,000
// steps); a few hundred items train 1,000 steps, within about half a mAP point of 14,000
// (bench/README.md, "Training length on small data").
constexpr int64_t kAutoStepsPerItem = 2;
constexpr int64_t kMinAutoStepsSmall = 1000;
// The automatic minimum number of optimiser steps for `rows` items (images: the image recipe).
int64_t automatic_min_steps(int64_t rows, bool images);
constexpr double kImageEpsScale = 0.25, kOtherEpsScale = 1.0;
// The information weight a configuration trains with (resolves lambda <= 0 as documented above).
double effective_lambda(const TrainConfig& config);
// The radius scale and the number of epochs a configuration trains with on `data` (resolve
// eps_scale <= 0 and epochs 0 as documented above; images are 8-bit pixels).
double effective_eps_scale(const Dataset& data, const TrainConfig& config);
int effective_epochs(const Dataset& data, const TrainConfig& config);

class Model;

// `config.search` with what it leaves unset filled in for `data` (see AutoSearch), the
// checkpoints sorted and each given once.
AutoSearch resolve_search(const Dataset& data, const TrainConfig& config);

// The automatic search of TrainConfig::auto_settings on its own (train() runs it first when
// auto_settings is set). InvalidArgument for clustering, non-IMSAT methods or under 500 items.
Result<AutoChoice> choose_settings(const Dataset& data, const TrainConfig& config);

// Trains `config.method` on all rows of `data` (labels are never used). Returns the model and
// appends one Progress per epoch to `epoch_log` when it is not null. Errors: InvalidArgument
// for a bad configuration or data (bits out of range, too few rows, NaN), Cancelled, and
// Internal for a NaN loss or a LibTorch failure.
Result<Model> train(const Dataset& data, const TrainConfig& config,
                    std::vector<Progress>* epoch_log = nullptr);

// ---------------------------------------------------------------------------------------------
// Models

// A trained hash function or clustering model. Cheap to move; thread-compatible (encode may be
// called from one thread at a time per Model).
class Model {
 public:
  Model();
  ~Model();
  Model(Model&&) noexcept;
  Model& operator=(Model&&) noexcept;

  Method method() const;
  bool is_clustering() const;
  int bits() const;      // 0 for clustering models
  int clusters() const;  // 0 for hashing models
  size_t input_dim() const;
  // Shape of one input item as trained ({28, 28} for IDX images, {dim} otherwise), and whether
  // inputs are 8-bit pixel intensities (scaled x/128 - 1) rather than standardised features.
  std::vector<size_t> input_shape() const;
  bool takes_pixels() const;
  // The io::ImagePipeline (JSON) that turns an image file into this model's input, when it was
  // trained on image files; empty otherwise (IDX-style pixel models take grey images resized to
  // input_shape()).
  const std::string& image_pipeline() const;
  // How an image file becomes this model's input: the recorded pipeline, or for a model trained
  // on square grey IDX images, grey pixels stretched to its size. InvalidArgument for a model
  // that does not take images.
  Result<io::ImagePipeline> image_input() const;
  // The training data's label names (image folders, manifests), for showing labels; may be empty.
  const std::vector<std::string>& label_names() const;
  int code_bytes() const { return bits() / 8; }
  // Hex digest of the weights and configuration: identical models have identical fingerprints.
  std::string fingerprint() const;
  // The JSON header written to the model file (format version, input shape, preprocessing,
  // method, architecture, training config, fingerprint).
  std::string header_json() const;
  // The "training" object of the header (method, seed, lambda, epochs, seconds, ...), as JSON.
  std::string training_json() const;

  // Packed codes for `rows` raw items of input_dim() floats each (preprocessed here as recorded
  // in the model): rows * code_bytes() bytes, bit d of an item in byte d / 8, bit d % 8 (the
  // index's little-endian layout). Errors: InvalidArgument for a wrong dimension, NaN/Inf.
  Result<std::vector<uint8_t>> encode(const float* raw, size_t rows, size_t dim) const;
  Result<std::vector<uint8_t>> encode(const Dataset& data) const;
  // The checks encode() makes before it runs the model: the dimension, and every value finite.
  Status check_input(const float* raw, size_t rows, size_t dim) const;
  // The nearest-neighbour job the model was trained for; unset for the paper's job (then exact
  // re-ranking uses Euclidean distance).
  std::optional<Metric> metric() const;

  // Bit probabilities p_d(x) in [0, 1] (rows * bits), for asymmetric re-ranking. The networks
  // give their sigmoids; the linear hashers (LSH, PCA-ITQ) the sigmoid of each projection scaled
  // per item so that its largest is 8: the asymmetric order then weights a differing bit by how
  // far the query lies from that bit's hyperplane (the asymmetric distance of ITQ's paper).
  // Spectral hashing returns 0 or 1.
  Result<std::vector<float>> bit_probabilities(const float* raw, size_t rows, size_t dim) const;
  // Cluster index per row, for clustering models.
  Result<std::vector<int32_t>> assign(const Dataset& data) const;
  // True when encode() and bit_probabilities() of `rows` inputs run without LibTorch (the folded
  // network of a hashing MLP or linear model, src/learn/lean.cpp, for up to 16 inputs): such calls
  // may be made from many threads at once. Larger calls and other models go through LibTorch, one
  // caller at a time.
  bool encodes_concurrently(size_t rows) const;

  // Writes atomically (temporary file, then rename). Errors: IOError.
  Status save(const std::string& path) const;
  // Errors: NotFound, IOError, Corruption (truncated or damaged file, checksum mismatch),
  // InvalidArgument (a different format version).
  static Result<Model> load(const std::string& path);

  // The representation, defined in learn_internal.h (src/learn and its tests only).
  struct Impl;
  const Impl& internals() const { return *impl_; }

 private:
  explicit Model(std::unique_ptr<Impl> impl);
  friend Result<Model> make_model(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

constexpr uint32_t kModelFormatVersion = 1;

}  // namespace imsat::learn
