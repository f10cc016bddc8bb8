// Settings chosen without labels (TrainConfig::auto_settings): the self-augmentation radius and
// then the information weight, each setting trained on a subsample with checkpoints and scored
// by how alike two runs from different seeds place held-out items (seed agreement, neighbour
// overlap), or by how well the codes of held-out items retrieve their nearest neighbours in
// feature space.
#include <ATen/CPUGeneratorImpl.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <map>
#include <nlohmann/json.hpp>
#include <numeric>

#include "common/enum_names.h"
#include "learn/learn_internal.h"

namespace imsat::learn {
namespace {

using Clock = std::chrono::steady_clock;

// The rows `rows` of `d` (values, labels and shape; no keys or thumbnails: training ignores them).
Dataset take_rows(const Dataset& d, const std::vector<int64_t>& rows) {
  Dataset out;
  out.rows = rows.size();
  out.cols = d.cols;
  out.item_shape = d.item_shape;
  out.uint8_pixels = d.uint8_pixels;
  out.source = d.source;
  out.values.reserve(rows.size() * d.cols);
  for (int64_t r : rows) out.values.insert(out.values.end(), d.row(r), d.row(r) + d.cols);
  return out;
}

// Expected number of differing bits between each row of `a` (bit probabilities, or bits as 0/1)
// and each row of `bits` (0/1): the Hamming distance when `a` holds bits too.
torch::Tensor mismatches(const torch::Tensor& a, const torch::Tensor& bits) {
  return a.matmul(1 - bits.t()) + (1 - a).matmul(bits.t());
}

// Per query (row of the distance matrix `d`), the probability that each gallery item is among
// its k nearest when ties at the k-th distance are broken uniformly at random.
torch::Tensor inclusion(const torch::Tensor& d, int k) {
  const torch::Tensor kth = std::get<0>(d.kthvalue(k, 1, /*keepdim=*/true));
  const torch::Tensor below = (d < kth).to(torch::kDouble);
  const torch::Tensor at = (d == kth).to(torch::kDouble);
  const torch::Tensor share = (k - below.sum(1, true)) / at.sum(1, true);
  return below + at * share;
}

}  // namespace

constexpr EnumName<AutoCriterion> kCriterionNames[] = {
    {AutoCriterion::kNeighbours, "held-out neighbour mAP"},
    {AutoCriterion::kAgreement, "seed agreement"},
    {AutoCriterion::kOverlap, "neighbour overlap"}};

const char* criterion_name(AutoCriterion c) { return name_of(kCriterionNames, c); }

namespace internal {

torch::Tensor nearest_rows(const torch::Tensor& queries, const torch::Tensor& gallery, int k) {
  torch::NoGradGuard no_grad;
  const torch::Tensor d2 = (queries * queries).sum(1, true) - 2 * queries.matmul(gallery.t()) +
                           (gallery * gallery).sum(1).unsqueeze(0);
  return std::get<1>(d2.topk(std::min<int64_t>(k, gallery.size(0)), 1, /*largest=*/false));
}

double neighbour_map(Mlp& net, const torch::Tensor& queries, const torch::Tensor& gallery,
                     const torch::Tensor& truth) {
  torch::NoGradGuard no_grad;
  const torch::Tensor pq = torch::sigmoid(net->forward(queries, false));
  const torch::Tensor bg = (net->forward(gallery, false) > 0).to(torch::kFloat);
  const torch::Tensor bq = (pq > 0.5).to(torch::kFloat);
  const int64_t bits = bg.size(1);
  // Hamming distance, ties broken by the expected distance under the query's bit probabilities
  // (in [0, bits], so adding it / (bits + 1) never reorders different Hamming distances).
  const torch::Tensor hamming = mismatches(bq, bg);
  const torch::Tensor expected = mismatches(pq, bg);
  const torch::Tensor order =
      std::get<1>((hamming + expected / static_cast<double>(bits + 1)).sort(1));
  // rank of each gallery item per query, then average precision over the true neighbours.
  const int64_t n = gallery.size(0), k = truth.size(1);
  torch::Tensor rank = torch::empty_like(order);
  rank.scatter_(1, order, torch::arange(n, order.options()).unsqueeze(0).expand_as(order));
  const torch::Tensor ranks = std::get<0>(rank.gather(1, truth).sort(1)).to(torch::kDouble) + 1;
  const torch::Tensor hits = torch::arange(1, k + 1, ranks.options()).unsqueeze(0);
  return (hits / ranks).mean().item<double>();
}

// Hamming distances (queries x gallery) between the codes the network gives.
torch::Tensor hamming_matrix(Mlp& net, const torch::Tensor& queries, const torch::Tensor& gallery) {
  torch::NoGradGuard no_grad;
  const torch::Tensor bq = (net->forward(queries, false) > 0).to(torch::kFloat);
  const torch::Tensor bg = (net->forward(gallery, false) > 0).to(torch::kFloat);
  return mismatches(bq, bg);
}

double seed_agreement(const torch::Tensor& a, const torch::Tensor& b) {
  torch::NoGradGuard no_grad;
  const torch::Tensor ca = a.to(torch::kDouble) - a.to(torch::kDouble).mean(1, true);
  const torch::Tensor cb = b.to(torch::kDouble) - b.to(torch::kDouble).mean(1, true);
  const torch::Tensor cov = (ca * cb).sum(1);
  const torch::Tensor norm = ((ca * ca).sum(1) * (cb * cb).sum(1)).sqrt();
  // A query at one distance from every gallery item (a collapsed run) agrees with nothing.
  const torch::Tensor r =
      torch::where(norm > 0, cov / norm.clamp_min(1e-12), torch::zeros_like(cov));
  return r.mean().item<double>();
}

double neighbour_overlap(const torch::Tensor& a, const torch::Tensor& b, int k) {
  torch::NoGradGuard no_grad;
  k = static_cast<int>(std::min<int64_t>(std::max(k, 1), a.size(1)));
  return ((inclusion(a, k) * inclusion(b, k)).sum(1) / k).mean().item<double>();
}

}  // namespace internal

std::string AutoChoice::json() const {
  nlohmann::json trials_json = nlohmann::json::array();
  for (const AutoTrial& t : trials) {
    trials_json.push_back(
        {{"lambda", t.lambda}, {"eps_scale", t.eps_scale}, {"steps", t.steps}, {"score", t.score}});
  }
  return nlohmann::json{{"criterion", criterion_name(criterion)},
                        {"lambda", lambda},
                        {"eps_scale", eps_scale},
                        {"steps", steps},
                        {"score", score},
                        {"search_rows", search_rows},
                        {"query_rows", query_rows},
                        {"neighbours", neighbours},
                        {"seconds", seconds},
                        {"trials", trials_json}}
      .dump();
}

AutoSearch resolve_search(const Dataset& data, const TrainConfig& config) {
  AutoSearch s = config.search;
  // Images keep the recipe tuned on Fashion-MNIST; other data get the two-run criterion and the
  // wider grid that found LetterRecognition's label-best setting (bench/README.md).
  const bool images = data.uint8_pixels;
  if (!s.criterion) s.criterion = images ? AutoCriterion::kNeighbours : AutoCriterion::kOverlap;
  if (s.lambdas.empty()) {
    const double l = effective_lambda(config);
    s.lambdas =
        images ? std::vector<double>{l / 2, l, 2 * l} : std::vector<double>{0.1, 0.2, 0.4, 0.8};
  }
  if (s.checkpoints.empty()) {
    s.checkpoints = {500, 1000, 2000, 4000};
    if (!images) s.checkpoints.push_back(8000);
  }
  // Checkpoints in training order, each once.
  std::sort(s.checkpoints.begin(), s.checkpoints.end());
  s.checkpoints.erase(std::unique(s.checkpoints.begin(), s.checkpoints.end()), s.checkpoints.end());
  return s;
}

namespace {

// What every trial of the search reads: its training rows, the preprocessed held-out queries and
// gallery, and (for the neighbour criterion) the queries' nearest gallery rows.
struct SearchData {
  const Dataset& train_set;
  const torch::Tensor& xq;
  const torch::Tensor& xg;
  const torch::Tensor& truth;
  int k;
  AutoCriterion criterion;
  const std::vector<int64_t>& checkpoints;
};

// Trains one setting on the search's rows, scoring it at each checkpoint into `choice` (its trials
// and, when it scores best, its choice). With the two-run criteria a first run from another seed
// records its distances at every checkpoint, and the second run is scored against them.
Status run_trial(const SearchData& d, const TrainConfig& config, double lambda, double eps_scale,
                 AutoChoice* choice) {
  const bool two_runs = d.criterion != AutoCriterion::kNeighbours;
  TrainConfig c = config;
  c.auto_settings = false;
  c.steps = 0;  // the search's checkpoints set the length
  c.lambda = lambda;
  c.eps_scale = eps_scale;
  c.on_progress = nullptr;
  std::map<int64_t, torch::Tensor> first_run;
  if (two_runs) {
    TrainConfig other = c;
    other.seed = config.seed + 1;
    internal::StepHook record;
    record.at_steps = d.checkpoints;
    record.fn = [&](int64_t step, internal::Mlp& net) {
      first_run[step] = internal::hamming_matrix(net, d.xq, d.xg);
      return true;
    };
    IMSAT_RETURN_IF_ERROR(internal::train_with_hook(d.train_set, other, nullptr, &record).status());
  }
  internal::StepHook hook;
  hook.at_steps = d.checkpoints;
  double best_here = -2;
  hook.fn = [&](int64_t step, internal::Mlp& net) {
    double score = -1;
    if (!two_runs) {
      score = internal::neighbour_map(net, d.xq, d.xg, d.truth);
    } else if (const auto it = first_run.find(step); it != first_run.end()) {
      const torch::Tensor mine = internal::hamming_matrix(net, d.xq, d.xg);
      score = d.criterion == AutoCriterion::kOverlap
                  ? internal::neighbour_overlap(mine, it->second, d.k)
                  : internal::seed_agreement(mine, it->second);
    }
    choice->trials.push_back({d.criterion, lambda, eps_scale, step, score});
    if (config.on_search) config.on_search(choice->trials.back());
    if (score > choice->score) {
      choice->score = score;
      choice->lambda = lambda;
      choice->eps_scale = eps_scale;
      choice->steps = step;
    }
    // Early stopping: the first checkpoint below this setting's best ends it.
    const bool better = score > best_here;
    best_here = std::max(best_here, score);
    return better;
  };
  return internal::train_with_hook(d.train_set, c, nullptr, &hook).status();
}

}  // namespace

Result<AutoChoice> choose_settings(const Dataset& data, const TrainConfig& config) {
  if (config.clusters > 0 ||
      (config.method != Method::kImsatVat && config.method != Method::kImsatRpt &&
       config.method != Method::kLinearImsat)) {
    return Status::invalid_argument(
        "automatic settings are for IMSAT hashing (imsat-vat, imsat-rpt, linear-imsat)");
  }
  const auto t0 = Clock::now();
  const AutoSearch s = resolve_search(data, config);
  const AutoCriterion criterion = *s.criterion;
  const auto positive = [](double v) { return v > 0 && std::isfinite(v); };
  if (s.eps_scales.empty() || s.checkpoints.front() < 1 ||
      !std::all_of(s.eps_scales.begin(), s.eps_scales.end(), positive) ||
      !std::all_of(s.lambdas.begin(), s.lambdas.end(), positive)) {
    return Status::invalid_argument(
        "automatic settings need at least one radius scale and one checkpoint, and positive "
        "radius scales, weights and checkpoints");
  }
  // Held-out queries, then the search's training rows, drawn from one permutation of the items.
  const size_t n = data.rows;
  const size_t queries = std::min<size_t>(s.queries, n / 5);
  const size_t rows = std::min<size_t>(s.rows, n - queries);
  if (queries < 10 || rows < 100) {
    return Status::invalid_argument("automatic settings need at least 500 items, got " +
                                    std::to_string(n));
  }
  try {
    at::Generator gen = at::detail::createCPUGenerator(config.seed + 0x5eed);
    const torch::Tensor perm = torch::randperm(static_cast<int64_t>(n), gen);
    const int64_t* p = perm.data_ptr<int64_t>();
    const std::vector<int64_t> query_rows(p, p + queries);
    const std::vector<int64_t> train_rows(p + queries, p + queries + rows);
    const Dataset train_set = take_rows(data, train_rows);
    const Dataset query_set = take_rows(data, query_rows);
    // The same preprocessing train() fits on the search's rows.
    const internal::Preprocess pre = internal::Preprocess::fit(train_set);
    const torch::Tensor xq = pre.apply(query_set.values.data(), queries, data.cols).clone();
    const size_t gallery = std::min<size_t>(s.gallery, rows);
    const torch::Tensor xg = pre.apply(train_set.values.data(), gallery, data.cols).clone();
    const int k = std::max(1, std::min<int>(s.neighbours, static_cast<int>(gallery / 20)));
    // The two-run criteria; the feature-space neighbours only the neighbour criterion reads.
    const bool two_runs = criterion != AutoCriterion::kNeighbours;
    const torch::Tensor truth = two_runs ? torch::Tensor() : internal::nearest_rows(xq, xg, k);

    AutoChoice choice;
    choice.search_rows = rows;
    choice.query_rows = queries;
    choice.neighbours = criterion == AutoCriterion::kAgreement ? 0 : k;
    choice.score = -2;
    const std::vector<double>& lambdas = s.lambdas;
    choice.criterion = criterion;
    const SearchData d{train_set, xq, xg, truth, k, criterion, s.checkpoints};
    const auto trial = [&](double lambda, double eps_scale) {
      return run_trial(d, config, lambda, eps_scale, &choice);
    };
    // Coordinate search: the radius at the middle weight, then the other weights at the best
    // radius.
    const double middle = lambdas[lambdas.size() / 2];
    for (double eps_scale : s.eps_scales) IMSAT_RETURN_IF_ERROR(trial(middle, eps_scale));
    const double best_eps = choice.eps_scale;
    for (double lambda : lambdas) {
      if (lambda != middle) IMSAT_RETURN_IF_ERROR(trial(lambda, best_eps));
    }
    choice.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
    return choice;
  } catch (const c10::Error& e) {
    return Status::internal(std::string("LibTorch: ") + e.what_without_backtrace());
  }
}

}  // namespace imsat::learn
