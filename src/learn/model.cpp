// Model files, encoding to packed codes and cluster assignment.
//
// File layout (all integers little-endian):
//   "IMSATMDL" | u32 format version | u64 header length | header JSON
//   | u32 tensor count | per tensor: u32 name length, name, u32 ndim, i64 dims[ndim], f32 data
//   | u64 FNV-1a checksum of every byte before it
#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "common/atomic_file.h"
#include "common/checksum.h"
#include "common/enum_names.h"
#include "learn/learn_internal.h"

namespace imsat::learn {
namespace {

using internal::Kind;
using nlohmann::json;

constexpr char kMagic[8] = {'I', 'M', 'S', 'A', 'T', 'M', 'D', 'L'};
constexpr int64_t kEncodeBatch =
    1024;  // larger batches spend their time in page faults of fresh temporaries
// Calls of at most this many inputs go through the lean encoder; larger ones through LibTorch's
// matrix products. On one core, 784-400-400-16 (bench/README.md), the lean encoder gives about
// 70,000 inputs/s at 8 and 16 rows against LibTorch's 26,500 and 51,000, and LibTorch 75,000 at
// 32; LibTorch also spreads a large call over OpenBLAS's threads.
constexpr size_t kLeanRows = 16;

std::string hex64(uint64_t v) {
  char buf[17];
  std::snprintf(buf, sizeof(buf), "%016llx", static_cast<unsigned long long>(v));
  return buf;
}

constexpr EnumName<Kind> kKindNames[] = {{Kind::kMlp, "mlp"},
                                         {Kind::kLinear, "linear-sign"},
                                         {Kind::kSpectral, "spectral"},
                                         {Kind::kKmeans, "kmeans"}};

const char* kind_name(Kind k) { return name_of(kKindNames, k); }

Result<Kind> parse_kind(const std::string& s) {
  if (const std::optional<Kind> k = value_of(kKindNames, s)) return *k;
  return Status::corruption("unknown model kind '" + s + "'");
}

json header_of(const Model::Impl& m) {
  json h;
  h["format_version"] = kModelFormatVersion;
  h["method"] = method_name(m.method);
  h["kind"] = kind_name(m.kind);
  h["task"] = m.clusters > 0 ? "clustering" : "hashing";
  h["bits"] = m.bits;
  h["clusters"] = m.clusters;
  h["input_dim"] = m.input_dim;
  h["input_shape"] = m.input_shape;
  if (!m.image_pipeline.empty()) h["image_pipeline"] = json::parse(m.image_pipeline);
  if (!m.label_names.empty()) h["label_names"] = m.label_names;
  h["preprocessing"] = m.pre.pixels ? json{{"kind", "pixels"}, {"formula", "x/128-1"}}
                                    : json{{"kind", m.pre.kind()}};
  if (m.metric) h["metric"] = metric_name(*m.metric);
  h["architecture"] = {{"hidden", m.hidden},
                       {"output", m.clusters > 0 ? m.clusters : m.bits},
                       {"batchnorm", m.kind == Kind::kMlp && !m.hidden.empty()}};
  if (m.shortcut) h["architecture"]["shortcut"] = true;
  h["training"] = json::parse(m.training_json);
  h["fingerprint"] = m.fingerprint;
  return h;
}

template <typename T>
void put(std::string& out, T v) {
  out.append(reinterpret_cast<const char*>(&v), sizeof(T));
}

class Reader {
 public:
  Reader(const std::string& path, const std::string& bytes) : path_(path), b_(bytes) {}
  template <typename T>
  Status get(T* v, const char* what) {
    IMSAT_RETURN_IF_ERROR(need(sizeof(T), what));
    std::memcpy(v, b_.data() + off_, sizeof(T));
    off_ += sizeof(T);
    return Status::ok();
  }
  Status bytes(size_t n, std::string* out, const char* what) {
    IMSAT_RETURN_IF_ERROR(need(n, what));
    out->assign(b_.data() + off_, n);
    off_ += n;
    return Status::ok();
  }
  Status floats(size_t n, float* out, const char* what) {
    if (n > b_.size() / sizeof(float)) return need(b_.size() + 1, what);
    IMSAT_RETURN_IF_ERROR(need(n * sizeof(float), what));
    std::memcpy(out, b_.data() + off_, n * sizeof(float));
    off_ += n * sizeof(float);
    return Status::ok();
  }
  size_t offset() const { return off_; }

 private:
  Status need(size_t n, const char* what) const {
    if (b_.size() - off_ < n) {
      return Status::corruption(path_ + " at byte " + std::to_string(off_) +
                                ": model file is truncated; expected " + what);
    }
    return Status::ok();
  }
  const std::string& path_;
  const std::string& b_;
  size_t off_ = 0;
};

}  // namespace

// ---------------------------------------------------------------------------------------------
// Model::Impl

torch::Tensor Model::Impl::scores(const torch::Tensor& x) const {
  switch (kind) {
    case Kind::kMlp: {
      torch::Tensor out = net->forward(x);
      return out;
    }
    case Kind::kLinear:
      return x.matmul(weight) + bias;
    case Kind::kSpectral: {
      // Spectral hashing (Weiss et al. 2008): bit i is the sign of prod_j sin(pi/2 + w_ij y_j),
      // y the PCA projection shifted by the per-component minimum.
      torch::Tensor y = x.matmul(weight) - bias;                            // (n, c)
      torch::Tensor arg = y.unsqueeze(1) * omegas.unsqueeze(0) + M_PI / 2;  // (n, bits, c)
      return torch::sin(arg).prod(2);
    }
    case Kind::kKmeans: {
      torch::Tensor d2 = (x * x).sum(1, true) - 2 * x.matmul(centroids.t()) +
                         (centroids * centroids).sum(1).unsqueeze(0);
      return -d2;
    }
  }
  return {};
}

std::vector<std::pair<std::string, torch::Tensor>> Model::Impl::tensors() const {
  std::vector<std::pair<std::string, torch::Tensor>> out;
  auto add = [&](const std::string& name, const torch::Tensor& t) {
    if (t.defined()) out.emplace_back(name, t.detach().to(torch::kCPU, torch::kFloat).contiguous());
  };
  add("pre.mean", pre.mean);
  add("pre.inv_std", pre.inv_std);
  if (kind == Kind::kMlp) {
    for (const auto& p : net->named_parameters()) add("net." + p.key(), p.value());
    for (const auto& b : net->named_buffers()) {
      if (b.value().is_floating_point()) add("net." + b.key(), b.value());
    }
  }
  add("weight", weight);
  add("bias", bias);
  add("omegas", omegas);
  add("centroids", centroids);
  return out;
}

std::string Model::Impl::compute_fingerprint() const {
  std::string id = method_name(method) + "|" + std::to_string(bits) + "|" +
                   std::to_string(clusters) + "|" + std::to_string(input_dim) + "|" + pre.kind() +
                   (image_pipeline.empty() ? std::string() : "|" + image_pipeline) +
                   (metric ? std::string("|metric=") + metric_name(*metric) : std::string());
  uint64_t h = fnv1a64_bytes(id.data(), id.size());
  for (const auto& [name, t] : tensors()) {
    h = fnv1a64_bytes(name.data(), name.size(), h);
    h = fnv1a64_bytes(t.data_ptr<float>(), static_cast<size_t>(t.numel()) * sizeof(float), h);
  }
  return hex64(h);
}

Result<Model> make_model(std::unique_ptr<Model::Impl> impl) {
  if (impl->kind == Kind::kMlp) impl->net->eval();
  impl->fingerprint = impl->compute_fingerprint();
  try {
    impl->lean = internal::LeanEncoder::build(*impl);
  } catch (const c10::Error& e) {
    return Status::internal(std::string("LibTorch: ") + e.what_without_backtrace());
  }
  return Model(std::move(impl));
}

// ---------------------------------------------------------------------------------------------
// Model

Model::Model() = default;
Model::~Model() = default;
Model::Model(Model&&) noexcept = default;
Model& Model::operator=(Model&&) noexcept = default;
Model::Model(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Method Model::method() const { return impl_->method; }
std::optional<Metric> Model::metric() const { return impl_->metric; }
bool Model::is_clustering() const { return impl_->clusters > 0; }
int Model::bits() const { return impl_->bits; }
int Model::clusters() const { return impl_->clusters; }
size_t Model::input_dim() const { return impl_->input_dim; }
std::vector<size_t> Model::input_shape() const { return impl_->input_shape; }
const std::string& Model::image_pipeline() const { return impl_->image_pipeline; }
const std::vector<std::string>& Model::label_names() const { return impl_->label_names; }

Result<io::ImagePipeline> Model::image_input() const {
  if (!impl_->image_pipeline.empty()) return io::ImagePipeline::from_json(impl_->image_pipeline);
  const std::vector<size_t>& shape = impl_->input_shape;
  if (!impl_->pre.pixels || shape.size() != 2 || shape[0] != shape[1] || shape[0] < 1 ||
      shape[0] > 1024) {
    return Status::invalid_argument("the model was not trained on images (it takes " +
                                    std::to_string(impl_->input_dim) + " features)");
  }
  io::ImagePipeline p;
  p.size = static_cast<int>(shape[0]);
  p.fit = io::Fit::kStretch;
  return p;
}
bool Model::takes_pixels() const { return impl_->pre.pixels; }
std::string Model::fingerprint() const { return impl_->fingerprint; }
std::string Model::header_json() const { return header_of(*impl_).dump(2); }
std::string Model::training_json() const { return impl_->training_json; }

namespace {

Status check_input(const Model::Impl& m, const float* raw, size_t rows, size_t dim) {
  if (dim != m.input_dim) {
    return Status::invalid_argument("input has " + std::to_string(dim) +
                                    " values per item but the model expects " +
                                    std::to_string(m.input_dim));
  }
  // A float is NaN or infinite exactly when its exponent bits are all ones: OR-reducing that
  // test vectorises, so the common all-finite case costs one pass at memory speed.
  const size_t n = rows * dim;
  uint32_t bad = 0;
  for (size_t i = 0; i < n; ++i) {
    uint32_t u;
    std::memcpy(&u, raw + i, 4);
    bad |= static_cast<uint32_t>((u & 0x7f800000u) == 0x7f800000u);
  }
  if (bad != 0) {
    for (size_t i = 0; i < n; ++i) {
      if (!std::isfinite(raw[i])) {
        return Status::invalid_argument("input value at item " + std::to_string(i / dim) +
                                        ", position " + std::to_string(i % dim) +
                                        " is not a finite number");
      }
    }
  }
  if (m.pre.unit_rows) {
    for (size_t r = 0; r < rows; ++r) {
      const float* row = raw + r * dim;
      if (std::all_of(row, row + dim, [](float v) { return v == 0.0f; })) {
        return Status::invalid_argument("input item " + std::to_string(r) +
                                        " is all zeros: it has no direction, and the model "
                                        "compares directions (metric cosine)");
      }
    }
  }
  return Status::ok();
}

// Calls fn(start, n, scores of rows [start, start + n)) for consecutive batches; catches
// LibTorch errors.
template <typename Fn>
Status for_each_batch(const Model::Impl& m, const float* raw, size_t rows, size_t dim, Fn fn) {
  IMSAT_RETURN_IF_ERROR(check_input(m, raw, rows, dim));
  try {
    // Inference mode: no autograd records and no version counters, the leanest path through
    // LibTorch for a forward pass (one vector per call is the common case when serving).
    c10::InferenceMode inference;
    for (size_t start = 0; start < rows; start += kEncodeBatch) {
      const size_t n = std::min<size_t>(kEncodeBatch, rows - start);
      fn(start, n, m.scores(m.pre.apply(raw + start * dim, n, dim)));
    }
  } catch (const c10::Error& e) {
    return Status::internal(std::string("LibTorch: ") + e.what_without_backtrace());
  }
  return Status::ok();
}

// A few inputs (searches by vector) go through the lean encoder.
bool lean_applies(const Model::Impl& m, size_t rows) {
  return m.lean != nullptr && rows <= kLeanRows;
}

// fn(row, logits) for each row, through the lean encoder (lean_applies).
template <typename Fn>
Status for_each_lean(const Model::Impl& m, const float* raw, size_t rows, size_t dim, Fn fn) {
  IMSAT_RETURN_IF_ERROR(check_input(m, raw, rows, dim));
  thread_local std::vector<float> logits, unit;
  const auto bits = static_cast<size_t>(m.bits);
  logits.resize(rows * bits);
  if (m.pre.unit_rows) {
    // The folded encoder takes raw inputs; a cosine model's rows are scaled to unit length first.
    // (check_input refused zero rows.)
    unit.assign(raw, raw + rows * dim);
    for (size_t r = 0; r < rows; ++r) scale_to_unit_length(unit.data() + r * dim, dim);
    raw = unit.data();
  }
  m.lean->logits(raw, rows, logits.data());
  for (size_t r = 0; r < rows; ++r) fn(r, logits.data() + r * bits);
  return Status::ok();
}

}  // namespace

bool Model::encodes_concurrently(size_t rows) const { return lean_applies(*impl_, rows); }

Status Model::check_input(const float* raw, size_t rows, size_t dim) const {
  return learn::check_input(*impl_, raw, rows, dim);
}

Result<std::vector<uint8_t>> Model::encode(const float* raw, size_t rows, size_t dim) const {
  if (is_clustering()) {
    return Status::invalid_argument("a clustering model assigns clusters; it makes no codes");
  }
  const size_t cb = static_cast<size_t>(code_bytes());
  std::vector<uint8_t> codes(rows * cb, 0);
  const size_t nbits = static_cast<size_t>(impl_->bits);
  if (lean_applies(*impl_, rows)) {
    IMSAT_RETURN_IF_ERROR(for_each_lean(*impl_, raw, rows, dim, [&](size_t r, const float* l) {
      uint8_t* code = codes.data() + r * cb;
      for (size_t d = 0; d < nbits; ++d) {
        if (l[d] > 0) code[d / 8] |= static_cast<uint8_t>(1u << (d % 8));
      }
    }));
    return codes;
  }
  Status s = for_each_batch(*impl_, raw, rows, dim, [&](size_t start, size_t n, torch::Tensor s) {
    torch::Tensor bits = (s > 0).to(torch::kUInt8).contiguous();
    const uint8_t* b = bits.data_ptr<uint8_t>();
    for (size_t i = 0; i < n; ++i) {
      uint8_t* code = codes.data() + (start + i) * cb;
      for (size_t d = 0; d < nbits; ++d)
        code[d / 8] |= static_cast<uint8_t>(b[i * nbits + d] << (d % 8));
    }
  });
  if (!s.is_ok()) return s;
  return codes;
}

Result<std::vector<uint8_t>> Model::encode(const Dataset& data) const {
  return encode(data.values.data(), data.rows, data.cols);
}

Result<std::vector<float>> Model::bit_probabilities(const float* raw, size_t rows,
                                                    size_t dim) const {
  if (is_clustering()) return Status::invalid_argument("a clustering model has no bits");
  std::vector<float> out(rows * static_cast<size_t>(impl_->bits));
  const bool soft = impl_->kind == Kind::kMlp;
  // The linear hashers' projections, scaled per item so that the largest is kLinearLogit.
  const bool linear = impl_->kind == Kind::kLinear;
  constexpr float kLinearLogit = 8.0f;
  const auto nbits = static_cast<size_t>(impl_->bits);
  if (lean_applies(*impl_, rows)) {
    IMSAT_RETURN_IF_ERROR(for_each_lean(*impl_, raw, rows, dim, [&](size_t r, const float* l) {
      float scale = 1.0f;
      if (linear) {
        float top = 0;
        for (size_t d = 0; d < nbits; ++d) top = std::max(top, std::fabs(l[d]));
        scale = top > 0 ? kLinearLogit / top : 1.0f;
      }
      for (size_t d = 0; d < nbits; ++d) {
        out[r * nbits + d] =
            soft || linear ? 1.0f / (1.0f + std::exp(-l[d] * scale)) : (l[d] > 0 ? 1.0f : 0.0f);
      }
    }));
    return out;
  }
  Status s = for_each_batch(*impl_, raw, rows, dim, [&](size_t start, size_t, torch::Tensor sc) {
    if (linear) sc = sc * (kLinearLogit / sc.abs().amax(1, /*keepdim=*/true).clamp_min(1e-30));
    torch::Tensor p =
        (soft || linear ? torch::sigmoid(sc) : (sc > 0).to(torch::kFloat)).contiguous();
    std::memcpy(out.data() + start * impl_->bits, p.data_ptr<float>(),
                static_cast<size_t>(p.numel()) * sizeof(float));
  });
  if (!s.is_ok()) return s;
  return out;
}

Result<std::vector<int32_t>> Model::assign(const Dataset& data) const {
  if (!is_clustering()) return Status::invalid_argument("a hashing model does not assign clusters");
  std::vector<int32_t> out(data.rows);
  Status s = for_each_batch(*impl_, data.values.data(), data.rows, data.cols,
                            [&](size_t start, size_t, torch::Tensor sc) {
                              torch::Tensor a = sc.argmax(1).to(torch::kInt).contiguous();
                              std::memcpy(out.data() + start, a.data_ptr<int32_t>(),
                                          static_cast<size_t>(a.numel()) * sizeof(int32_t));
                            });
  if (!s.is_ok()) return s;
  return out;
}

Status Model::save(const std::string& path) const {
  std::string out(kMagic, sizeof(kMagic));
  put<uint32_t>(out, kModelFormatVersion);
  const std::string header = header_of(*impl_).dump();
  put<uint64_t>(out, header.size());
  out += header;
  const auto tensors = impl_->tensors();
  put<uint32_t>(out, static_cast<uint32_t>(tensors.size()));
  for (const auto& [name, t] : tensors) {
    put<uint32_t>(out, static_cast<uint32_t>(name.size()));
    out += name;
    put<uint32_t>(out, static_cast<uint32_t>(t.dim()));
    for (int64_t s : t.sizes()) put<int64_t>(out, s);
    out.append(reinterpret_cast<const char*>(t.data_ptr<float>()),
               static_cast<size_t>(t.numel()) * sizeof(float));
  }
  put<uint64_t>(out, fnv1a64_bytes(out.data(), out.size()));

  return write_file_atomically(path, out);
}

namespace {

// A model file's bytes, checked: magic, format version, length and checksum.
Result<std::string> read_model_file(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) return Status::not_found(path + ": no such model file");
  if (std::filesystem::is_directory(path, ec)) {
    return Status::invalid_argument(path + ": is a folder, not a model file");
  }
  std::ifstream f(path, std::ios::binary);
  if (!f) return Status::io_error(path + ": cannot open: " + std::strerror(errno));
  std::string b((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  if (b.size() < sizeof(kMagic) || std::memcmp(b.data(), kMagic, sizeof(kMagic)) != 0) {
    return Status::corruption(path +
                              " at byte 0: not an imsat model file (expected magic "
                              "IMSATMDL)");
  }
  uint32_t version = 0;
  if (b.size() >= sizeof(kMagic) + sizeof(version)) {
    std::memcpy(&version, b.data() + sizeof(kMagic), sizeof(version));
    if (version != kModelFormatVersion) {
      return Status::invalid_argument(path + ": model format version " + std::to_string(version) +
                                      ", this build reads version " +
                                      std::to_string(kModelFormatVersion));
    }
  }
  if (b.size() < 8 + 4 + 8 + 8) return Status::corruption(path + ": model file is truncated");
  uint64_t stored_sum;
  std::memcpy(&stored_sum, b.data() + b.size() - 8, 8);
  if (fnv1a64_bytes(b.data(), b.size() - 8) != stored_sum) {
    return Status::corruption(path + ": checksum mismatch: the model file (" +
                              std::to_string(b.size()) + " bytes) is truncated or damaged");
  }
  return b;
}

// The JSON header's fields into `impl`.
Status parse_header(const std::string& path, const std::string& text, Model::Impl* impl) {
  try {
    json h = json::parse(text);
    Result<Method> method = parse_method(h.at("method").get<std::string>());
    if (!method.is_ok()) return Status::corruption(path + ": " + method.status().message());
    impl->method = *method;
    Result<Kind> kind = parse_kind(h.at("kind").get<std::string>());
    if (!kind.is_ok()) return Status::corruption(path + ": " + kind.status().message());
    impl->kind = *kind;
    impl->bits = h.at("bits").get<int>();
    impl->clusters = h.at("clusters").get<int>();
    impl->input_dim = h.at("input_dim").get<size_t>();
    impl->input_shape = h.at("input_shape").get<std::vector<size_t>>();
    if (h.contains("image_pipeline")) {
      impl->image_pipeline = h["image_pipeline"].dump();
      Result<io::ImagePipeline> p = io::ImagePipeline::from_json(impl->image_pipeline);
      if (!p.is_ok()) return Status::corruption(path + ": " + p.status().message());
      if (p->output_dim() != impl->input_dim) {
        return Status::corruption(path + ": the image pipeline makes " +
                                  std::to_string(p->output_dim()) + " values, the model takes " +
                                  std::to_string(impl->input_dim));
      }
    }
    if (h.contains("label_names")) {
      impl->label_names = h["label_names"].get<std::vector<std::string>>();
    }
    impl->hidden = h.at("architecture").at("hidden").get<std::vector<int>>();
    impl->shortcut = h["architecture"].value("shortcut", false);
    const Status pre = impl->pre.set_kind(h.at("preprocessing").at("kind").get<std::string>());
    if (!pre.is_ok()) return Status::corruption(path + ": " + pre.message());
    if (h.contains("metric")) {
      Result<Metric> metric = parse_metric(h["metric"].get<std::string>());
      if (!metric.is_ok()) return Status::corruption(path + ": " + metric.status().message());
      impl->metric = *metric;
    }
    impl->training_json = h.at("training").dump();
  } catch (const json::exception& e) {
    return Status::corruption(path + ": model header is not valid: " + e.what());
  }
  return Status::ok();
}

// The named tensors that follow the header.
Result<std::map<std::string, torch::Tensor>> read_tensors(const std::string& path, Reader* r) {
  uint32_t count = 0;
  IMSAT_RETURN_IF_ERROR(r->get(&count, "the tensor count"));
  std::map<std::string, torch::Tensor> loaded;
  for (uint32_t i = 0; i < count; ++i) {
    uint32_t name_len = 0, ndim = 0;
    std::string name;
    IMSAT_RETURN_IF_ERROR(r->get(&name_len, "a tensor name length"));
    IMSAT_RETURN_IF_ERROR(r->bytes(name_len, &name, "a tensor name"));
    IMSAT_RETURN_IF_ERROR(r->get(&ndim, "a tensor rank"));
    if (ndim > 4)
      return Status::corruption(path + ": tensor " + name + " has rank " + std::to_string(ndim));
    std::vector<int64_t> dims(ndim);
    int64_t numel = 1;
    for (auto& d : dims) {
      IMSAT_RETURN_IF_ERROR(r->get(&d, "a tensor dimension"));
      if (d < 0 || d > (int64_t{1} << 32))
        return Status::corruption(path + ": tensor " + name + " has a damaged shape");
      numel *= d;
    }
    torch::Tensor t = torch::empty(dims, torch::kFloat);
    IMSAT_RETURN_IF_ERROR(
        r->floats(static_cast<size_t>(numel), t.data_ptr<float>(), "tensor data"));
    loaded[name] = t;
  }
  return loaded;
}

// The loaded tensors into the model's parts; the network rebuilt from the header's architecture.
Status attach_tensors(const std::string& path, const std::map<std::string, torch::Tensor>& loaded,
                      Model::Impl* impl) {
  auto take = [&](const std::string& name) -> torch::Tensor {
    auto it = loaded.find(name);
    return it == loaded.end() ? torch::Tensor() : it->second;
  };
  impl->pre.mean = take("pre.mean");
  impl->pre.inv_std = take("pre.inv_std");
  impl->weight = take("weight");
  impl->bias = take("bias");
  impl->omegas = take("omegas");
  impl->centroids = take("centroids");
  if (!impl->pre.pixels && (!impl->pre.mean.defined() || !impl->pre.inv_std.defined())) {
    return Status::corruption(path + ": standardisation statistics are missing");
  }
  if (impl->kind != Kind::kMlp) return Status::ok();
  const int out = impl->clusters > 0 ? impl->clusters : impl->bits;
  impl->net =
      internal::Mlp(static_cast<int64_t>(impl->input_dim), impl->hidden, out, impl->shortcut);
  torch::NoGradGuard no_grad;
  auto copy_into = [&](const std::string& key, torch::Tensor& dst) -> Status {
    torch::Tensor src = take("net." + key);
    if (!src.defined() || src.sizes() != dst.sizes()) {
      return Status::corruption(path + ": network tensor " + key + " is missing or misshapen");
    }
    dst.copy_(src);
    return Status::ok();
  };
  for (auto& p : impl->net->named_parameters())
    IMSAT_RETURN_IF_ERROR(copy_into(p.key(), p.value()));
  for (auto& buf : impl->net->named_buffers()) {
    if (buf.value().is_floating_point()) IMSAT_RETURN_IF_ERROR(copy_into(buf.key(), buf.value()));
  }
  return Status::ok();
}

}  // namespace

Result<Model> Model::load(const std::string& path) {
  IMSAT_ASSIGN_OR_RETURN(const std::string b, read_model_file(path));
  Reader r(path, b);
  std::string skip;
  IMSAT_RETURN_IF_ERROR(r.bytes(sizeof(kMagic), &skip, "the magic"));
  uint32_t version = 0;
  IMSAT_RETURN_IF_ERROR(r.get(&version, "the format version"));
  uint64_t header_len = 0;
  IMSAT_RETURN_IF_ERROR(r.get(&header_len, "the header length"));
  std::string header_text;
  if (header_len > b.size()) return Status::corruption(path + ": header length is damaged");
  IMSAT_RETURN_IF_ERROR(r.bytes(header_len, &header_text, "the JSON header"));
  auto impl = std::make_unique<Model::Impl>();
  IMSAT_RETURN_IF_ERROR(parse_header(path, header_text, impl.get()));
  IMSAT_ASSIGN_OR_RETURN(const auto loaded, read_tensors(path, &r));
  IMSAT_RETURN_IF_ERROR(attach_tensors(path, loaded, impl.get()));
  return make_model(std::move(impl));
}

}  // namespace imsat::learn
