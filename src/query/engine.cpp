// The query engine: encode a query with the model, search the store by Hamming distance, and
// optionally re-rank the Hamming candidates exactly (Euclidean on stored raw vectors) or
// asymmetrically (the stored codes' negative log-likelihood under the query's bit probabilities).
#include "query/engine.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <new>
#include <numeric>
#include <optional>
#include <stdexcept>

#include "common/enum_names.h"
#include "common/huge_pages.h"
#include "index/hamming.h"
#include "query/asymmetric.h"
#include "query/codes_file.h"
#include "query/image.h"

namespace imsat::query {
namespace {

constexpr float kMaxHalf = 65504.0f;  // the largest finite float16

}  // namespace

constexpr EnumName<Rerank> kRerankNames[] = {
    {Rerank::kNone, "none"}, {Rerank::kExact, "exact"}, {Rerank::kAsymmetric, "asymmetric"}};

Result<Rerank> parse_rerank(const std::string& name) {
  if (name.empty()) return Rerank::kNone;
  if (const std::optional<Rerank> r = value_of(kRerankNames, name)) return *r;
  return Status::invalid_argument("re-rank must be " + names_of(kRerankNames) + ", got '" + name +
                                  "'");
}

const char* rerank_name(Rerank r) { return name_of(kRerankNames, r, "none"); }

constexpr EnumName<VectorPrecision> kVectorPrecisionNames[] = {
    {VectorPrecision::kFloat32, "float32"}, {VectorPrecision::kFloat16, "float16"}};

Result<VectorPrecision> parse_vector_precision(const std::string& name) {
  if (const std::optional<VectorPrecision> p = value_of(kVectorPrecisionNames, name)) return *p;
  return Status::invalid_argument("vector precision must be " + names_of(kVectorPrecisionNames) +
                                  ", got '" + name + "'");
}

const char* vector_precision_name(VectorPrecision p) {
  return name_of(kVectorPrecisionNames, p, "float32");
}

void QueryEngine::RowStrings::append(std::string_view s) {
  full_ = full_ || text_.size() + s.size() > std::numeric_limits<uint32_t>::max();
  if (full_) return;
  text_.append(s);
  end_.push_back(static_cast<uint32_t>(text_.size()));
}

bool QueryEngine::RowStrings::get(uint32_t row, std::string* out) const {
  if (row >= end_.size()) return false;
  const uint32_t begin = row == 0 ? 0 : end_[row - 1];
  out->assign(text_, begin, end_[row] - begin);
  return true;
}

QueryEngine::QueryEngine(std::unique_ptr<index::CodeStore> store,
                         std::unique_ptr<learn::Model> model)
    : store_(std::move(store)), model_(std::move(model)) {
  set_encode_batching(EncodeBatchOptions{});
  const Result<learn::Metric> recorded = parse_store_metric(store_->info().metric);
  if (!store_->info().metric.empty() && recorded.is_ok()) {
    metric_ = *recorded;
  } else if (model_ != nullptr && model_->metric()) {
    metric_ = *model_->metric();
  }
}

void QueryEngine::set_encode_batching(EncodeBatchOptions options) {
  if (model_ == nullptr) return;
  batcher_ = std::make_unique<EncodeBatcher>(*model_, model_mutex_, options);
}

EncodeBatcher::Stats QueryEngine::encode_batch_stats() const {
  return batcher_ != nullptr ? batcher_->stats() : EncodeBatcher::Stats{};
}

QueryEngine::~QueryEngine() = default;

std::optional<ModelInfo> QueryEngine::model_info() const {
  if (model_ == nullptr) return std::nullopt;
  ModelInfo m;
  m.method = learn::method_name(model_->method());
  m.metric = metric_of(*model_);
  m.bits = model_->bits();
  m.fingerprint = model_->fingerprint();
  m.input_dim = model_->input_dim();
  m.input_shape = model_->input_shape();
  // What an image query becomes: the model's recorded pipeline (image folders), or its grey
  // pixel input (IDX images) resized to fit.
  const Result<io::ImagePipeline> pipeline = model_->image_input();
  m.takes_images = pipeline.is_ok();
  if (pipeline.is_ok()) {
    m.image_channels = pipeline->channels;
    if (!model_->image_pipeline().empty()) m.image_pipeline = pipeline->to_json();
  }
  return m;
}

size_t QueryEngine::input_dim() const { return model_ != nullptr ? model_->input_dim() : 0; }

Result<std::unique_ptr<QueryEngine>> QueryEngine::create(std::unique_ptr<index::CodeStore> store,
                                                         std::unique_ptr<learn::Model> model) {
  if (store == nullptr) return Status::invalid_argument("query engine needs a store");
  if (model != nullptr) {
    if (model->is_clustering()) {
      return Status::invalid_argument("model is a clustering model; a hash model is needed");
    }
    if (model->bits() != store->bits()) {
      return Status::invalid_argument("model makes " + std::to_string(model->bits()) +
                                      "-bit codes, the store holds " +
                                      std::to_string(store->bits()) + "-bit codes");
    }
    const std::string recorded = store->info().model_fingerprint;
    if (!recorded.empty() && recorded != model->fingerprint()) {
      return Status::invalid_argument("the store was built with model " + recorded +
                                      ", not with this model (" + model->fingerprint() + ")");
    }
  }
  IMSAT_RETURN_IF_ERROR(parse_store_metric(store->info().metric).status());
  return std::unique_ptr<QueryEngine>(new QueryEngine(std::move(store), std::move(model)));
}

Result<std::unique_ptr<QueryEngine>> QueryEngine::open(const std::string& db,
                                                       const std::string& model_path,
                                                       bool read_only, size_t cache_mb) {
  std::unique_ptr<learn::Model> model;
  if (!model_path.empty()) {
    IMSAT_ASSIGN_OR_RETURN(learn::Model m, learn::Model::load(model_path));
    model = std::make_unique<learn::Model>(std::move(m));
  }
  index::StoreOptions options;
  options.create_if_missing = false;
  options.read_only = read_only;
  if (cache_mb > 0) options.cache_mb = cache_mb;
  IMSAT_ASSIGN_OR_RETURN(std::unique_ptr<index::CodeStore> store,
                         index::CodeStore::open(db, options));
  if (model == nullptr) {
    // No model named: the one the store was indexed with, when it is still there and is still
    // that model (otherwise queries that need a model say so).
    Result<learn::Model> recorded = load_recorded_model(*store, db);
    if (recorded.is_ok()) model = std::make_unique<learn::Model>(std::move(recorded).value());
  }
  return create(std::move(store), std::move(model));
}

index::StoreInfo QueryEngine::info() const { return store_->info(); }

Status QueryEngine::verify() const { return store_->verify(); }

Status QueryEngine::cache_vectors(VectorPrecision precision) {
  const bool half = precision == VectorPrecision::kFloat16;
  std::vector<uint32_t> row_of;
  std::vector<float> values;
  std::vector<uint16_t> halves;
  // The rows' keys and metadata, so that the hits returned are named and described from memory
  // too (an id's key and metadata never change: a replaced item gets a new id).
  RowStrings keys, meta;
  size_t dim = 0, rows = 0;
  const size_t expected = static_cast<size_t>(store_->info().items);
  Status bad = Status::ok();
  IMSAT_RETURN_IF_ERROR(store_->for_each_vector(
      [&](uint64_t id, const float* v, size_t n, std::string_view metadata) {
        if (!bad.is_ok()) return;
        if (dim == 0) dim = n;
        if (n != dim) {
          bad = Status::invalid_argument("stored vectors differ in length (" + std::to_string(dim) +
                                         " and " + std::to_string(n) + ")");
          return;
        }
        // The row map costs 4 bytes per id up to the largest: refuse ids far sparser than the rows.
        if (rows >= kNotCached || id > 16 * rows + (uint64_t{1} << 24)) {
          bad = Status::invalid_argument("cannot cache the stored vectors: item id " +
                                         std::to_string(id) + " after only " +
                                         std::to_string(rows) + " vectors (ids too sparse)");
          return;
        }
        if (id >= row_of.size())
          row_of.resize(std::max<size_t>(id + 1, row_of.size() * 2), kNotCached);
        // Rows are read at random by re-ranking: on huge pages most of them avoid a TLB miss. Room
        // for every item is a guess (not every item need have a vector): when the system refuses
        // it, the rows grow as they come instead.
        if (rows == 0) {
          try {
            half ? reserve_huge(halves, expected * n) : reserve_huge(values, expected * n);
          } catch (const std::bad_alloc&) {
          } catch (const std::length_error&) {
          }
        }
        if (half) {
          for (size_t j = 0; j < n; ++j) {
            if (!(std::fabs(v[j]) <= kMaxHalf)) {
              bad = Status::invalid_argument(
                  "cannot cache the stored vectors as float16: item id " + std::to_string(id) +
                  " holds " + std::to_string(v[j]) + " at index " + std::to_string(j) +
                  ", beyond float16's range (65,504); cache them as float32");
              return;
            }
            halves.push_back(index::float_to_half(v[j]));
          }
        } else {
          values.insert(values.end(), v, v + n);
        }
        meta.append(metadata);
        row_of[id] = static_cast<uint32_t>(rows++);
      }));
  IMSAT_RETURN_IF_ERROR(bad);
  while (!row_of.empty() && row_of.back() == kNotCached) row_of.pop_back();
  row_of.shrink_to_fit();
  // Keys live in another column family: read in batches of rows.
  std::vector<uint64_t> ids(rows);
  for (uint64_t id = 0; id < row_of.size(); ++id) {
    if (row_of[id] != kNotCached) ids[row_of[id]] = id;
  }
  constexpr size_t kKeyBatch = 8192;
  for (size_t at = 0; at < rows; at += kKeyBatch) {
    const std::vector<uint64_t> batch(
        ids.begin() + static_cast<std::ptrdiff_t>(at),
        ids.begin() + static_cast<std::ptrdiff_t>(std::min(rows, at + kKeyBatch)));
    IMSAT_ASSIGN_OR_RETURN(std::vector<std::string> named, store_->keys(batch));
    for (const std::string& k : named) keys.append(k);
  }
  keys.shrink();
  meta.shrink();
  cache_row_of_ = std::move(row_of);
  cache_ = std::move(values);
  cache16_ = std::move(halves);
  cache_keys_ = std::move(keys);
  cache_meta_ = std::move(meta);
  cache_precision_ = precision;
  cache_dim_ = dim;
  cache_rows_ = rows;
  return Status::ok();
}

Result<std::vector<uint8_t>> QueryEngine::encode(const float* raw, size_t rows, size_t dim) const {
  if (model_ == nullptr)
    return Status::invalid_argument("encoding needs a model (this engine has none)");
  // A few inputs go through the lean encoder, which many threads may run at once.
  std::unique_lock lock(model_mutex_, std::defer_lock);
  if (!model_->encodes_concurrently(rows)) lock.lock();
  return model_->encode(raw, rows, dim);
}

Result<SearchResponse> QueryEngine::search_vector(const float* vector, size_t dim,
                                                  const SearchRequest& request) const {
  if (model_ == nullptr) {
    return Status::invalid_argument("searching by vector needs a model (this engine has none)");
  }
  // A cosine store compares unit vectors: the query is scaled too.
  std::vector<float> unit;
  if (metric_ == learn::Metric::kCosine && dim == model_->input_dim()) {
    unit.assign(vector, vector + dim);
    if (!scale_to_unit_length(unit.data(), dim)) {
      return Status::invalid_argument(
          "the query vector is all zeros: it has no direction (the metric is cosine)");
    }
    vector = unit.data();
  }
  // Concurrent searches' vectors are encoded together (EncodeBatcher).
  std::vector<uint8_t> code(static_cast<size_t>(model_->code_bytes()));
  std::vector<float> probabilities;
  const bool soft = request.rerank == Rerank::kAsymmetric ||
                    (request.rerank == Rerank::kExact && request.shortlist > 0);
  if (soft) probabilities.resize(static_cast<size_t>(model_->bits()));
  IMSAT_RETURN_IF_ERROR(
      batcher_->encode(vector, dim, code.data(), soft ? probabilities.data() : nullptr));
  return run(code, vector, dim, soft ? &probabilities : nullptr, request);
}

Result<SearchResponse> QueryEngine::search_image(const std::string& encoded,
                                                 const SearchRequest& request, bool invert,
                                                 size_t max_pixels) const {
  if (model_ == nullptr) {
    return Status::invalid_argument("searching by image needs a model (this engine has none)");
  }
  IMSAT_ASSIGN_OR_RETURN(std::vector<float> input,
                         image_to_input(encoded, *model_, invert, max_pixels));
  return search_vector(input.data(), input.size(), request);
}

Result<SearchResponse> QueryEngine::search_code(const std::vector<uint8_t>& code,
                                                const SearchRequest& request) const {
  return run(code, nullptr, 0, nullptr, request);
}

Result<SearchResponse> QueryEngine::search_key(const std::string& key,
                                               const SearchRequest& request) const {
  IMSAT_ASSIGN_OR_RETURN(index::Item item, store_->get(key));
  if (request.rerank == Rerank::kExact && item.vector.empty()) {
    return Status::invalid_argument("item '" + key +
                                    "' has no stored vector, so it cannot be re-ranked exactly");
  }
  std::vector<float> probabilities;
  const bool soft = request.rerank == Rerank::kExact && request.shortlist > 0 &&
                    model_ != nullptr && item.vector.size() == model_->input_dim();
  if (soft) {
    probabilities.resize(static_cast<size_t>(model_->bits()));
    std::vector<uint8_t> code(item.code.size());
    IMSAT_RETURN_IF_ERROR(batcher_->encode(item.vector.data(), item.vector.size(), code.data(),
                                           probabilities.data()));
  }
  return run(item.code, item.vector.empty() ? nullptr : item.vector.data(), item.vector.size(),
             soft ? &probabilities : nullptr, request);
}

namespace {

// A store hit as a response hit with its score (its key moved out).
SearchHit take_hit(index::Hit* h, double score) {
  SearchHit out;
  out.key = std::move(h->key);
  out.distance = h->distance;
  out.score = score;
  out.label = h->tag;
  return out;
}

// The best `keep` of the candidates by asymmetric score against the query's bit probabilities, as
// hits in the candidates' own (Hamming) order, which a stable sort by exact distance keeps among
// ties.
std::vector<index::Hit> shortlist_hits(const index::CodeStore::Candidates& c,
                                       const std::vector<float>& probabilities, int bits,
                                       size_t keep) {
  const size_t n = c.ids.size(), bytes = static_cast<size_t>(bits) / 8;
  std::vector<size_t> kept(n);
  std::iota(kept.begin(), kept.end(), size_t{0});
  if (n > keep) {
    const AsymmetricScorer scorer(probabilities.data(), bits);
    std::vector<double> score(n);
    for (size_t i = 0; i < n; ++i) score[i] = scorer.score(c.codes.data() + i * bytes);
    std::nth_element(
        kept.begin(), kept.begin() + static_cast<std::ptrdiff_t>(keep - 1), kept.end(),
        [&](size_t a, size_t b) { return score[a] != score[b] ? score[a] < score[b] : a < b; });
    kept.resize(keep);
    std::sort(kept.begin(), kept.end());
  }
  std::vector<index::Hit> hits(kept.size());
  for (size_t j = 0; j < kept.size(); ++j) {
    hits[j].distance = c.distances[kept[j]];
    hits[j].tag = c.tags[kept[j]];
    hits[j].id = c.ids[kept[j]];
  }
  return hits;
}

// The store's options for a request, before re-ranking widens k.
index::CodeStore::SearchOptions store_options(const SearchRequest& request) {
  index::CodeStore::SearchOptions o;
  o.radius = request.radius;
  o.k = request.k;
  o.use_multi_index = request.use_multi_index;
  o.max_hits = request.radius >= 0 ? request.max_hits : 0;
  return o;
}

}  // namespace

Result<std::vector<SearchResponse>> QueryEngine::search_codes(
    const std::vector<std::vector<uint8_t>>& codes, const SearchRequest& request) const {
  std::vector<SearchResponse> responses(codes.size());
  if (request.rerank != Rerank::kNone || request.radius >= 0 || !request.filter.empty()) {
    for (size_t i = 0; i < codes.size(); ++i) {
      IMSAT_ASSIGN_OR_RETURN(responses[i], search_code(codes[i], request));
    }
    return responses;
  }
  if (request.k < 1 || request.k > index::kMaxK) {
    return Status::invalid_argument("k must be from 1 to " + std::to_string(index::kMaxK) +
                                    ", got " + std::to_string(request.k));
  }
  std::vector<index::SearchStats> stats;
  IMSAT_ASSIGN_OR_RETURN(std::vector<std::vector<index::Hit>> hits,
                         store_->search_batch(codes, store_options(request), &stats));
  std::vector<uint64_t> ids;
  for (size_t i = 0; i < codes.size(); ++i) {
    SearchResponse& r = responses[i];
    r.query_code = to_hex(codes[i].data(), codes[i].size());
    r.stats = stats[i];
    r.hits.reserve(hits[i].size());
    for (index::Hit& h : hits[i]) {
      ids.push_back(h.id);
      r.hits.push_back(take_hit(&h, h.distance));
    }
  }
  if (request.with_metadata && !ids.empty()) {
    // Every hit's metadata in one MultiGet.
    IMSAT_ASSIGN_OR_RETURN(std::vector<std::string> meta, metadata_of(ids));
    size_t at = 0;
    for (SearchResponse& r : responses) {
      for (SearchHit& h : r.hits) h.metadata = std::move(meta[at++]);
    }
  }
  return responses;
}

Result<std::vector<std::string>> QueryEngine::metadata_of(const std::vector<uint64_t>& ids) const {
  std::vector<std::string> out(ids.size());
  std::vector<uint64_t> missing;
  std::vector<size_t> missing_at;
  for (size_t j = 0; j < ids.size(); ++j) {
    const uint32_t row = cached_row(ids[j]);
    if (row == kNotCached || !cache_meta_.get(row, &out[j])) {
      missing.push_back(ids[j]);
      missing_at.push_back(j);
    }
  }
  if (!missing.empty()) {
    IMSAT_ASSIGN_OR_RETURN(std::vector<std::string> read, store_->metadata(missing));
    for (size_t m = 0; m < missing.size(); ++m) out[missing_at[m]] = std::move(read[m]);
  }
  return out;
}

Status QueryEngine::name_reranked(std::vector<index::Hit>* hits, std::vector<size_t>* order) const {
  // Keys of cached rows from memory; the rest in one MultiGet.
  std::vector<uint64_t> missing;
  std::vector<size_t> missing_at;
  for (size_t j = 0; j < order->size(); ++j) {
    index::Hit& h = (*hits)[(*order)[j]];
    const uint32_t row = cached_row(h.id);
    if (row == kNotCached || !cache_keys_.get(row, &h.key) || h.key.empty()) {
      missing.push_back(h.id);
      missing_at.push_back(j);
    }
  }
  if (!missing.empty()) {
    IMSAT_ASSIGN_OR_RETURN(std::vector<std::string> keys, store_->keys(missing));
    for (size_t m = 0; m < missing.size(); ++m) {
      (*hits)[(*order)[missing_at[m]]].key = std::move(keys[m]);
    }
  }
  // A hit whose item was deleted before its key was read drops out.
  size_t kept = 0;
  for (size_t j = 0; j < order->size(); ++j) {
    if (!(*hits)[(*order)[j]].key.empty()) (*order)[kept++] = (*order)[j];
  }
  order->resize(kept);
  return Status::ok();
}

Status QueryEngine::exact_scores(const float* vector, size_t dim, std::vector<index::Hit>& hits,
                                 std::vector<double>* score, SearchResponse* response) const {
  // Cached vectors from memory (float32 or float16 rows); the rest in one MultiGet.
  const bool half = cache_precision_ == VectorPrecision::kFloat16;
  std::vector<const float*> rows(hits.size(), nullptr);
  std::vector<const uint16_t*> half_rows(half ? hits.size() : 0, nullptr);
  std::vector<uint64_t> missing;
  std::vector<size_t> missing_at;
  for (size_t i = 0; i < hits.size(); ++i) {
    const uint64_t id = hits[i].id;
    const uint32_t row = cache_dim_ == dim ? cached_row(id) : kNotCached;
    if (row != kNotCached && half) {
      half_rows[i] = cache16_.data() + size_t{row} * dim;
    } else if (row != kNotCached) {
      rows[i] = cache_.data() + size_t{row} * dim;
    } else {
      missing.push_back(hits[i].id);
      missing_at.push_back(i);
    }
  }
  std::vector<float> fetched;
  if (!missing.empty()) {
    IMSAT_ASSIGN_OR_RETURN(std::vector<std::optional<size_t>> at,
                           store_->vectors_if_present(missing, dim, &fetched));
    for (size_t j = 0; j < missing.size(); ++j) {
      if (at[j]) rows[missing_at[j]] = fetched.data() + *at[j] * dim;
    }
  }
  // Candidates without a stored vector rank after every one that has one, by Hamming distance
  // (their hits arrive in Hamming order, so a stable sort keeps it).
  const double beyond = std::numeric_limits<double>::max() / 2;
  constexpr size_t kAhead = 2;  // rows whose first cache lines are fetched ahead of use
  auto row_at = [&](size_t i) -> const void* {
    return half && half_rows[i] != nullptr ? static_cast<const void*>(half_rows[i]) : rows[i];
  };
  for (size_t i = 0; i < hits.size(); ++i) {
    const void* ahead = i + kAhead < hits.size() ? row_at(i + kAhead) : nullptr;
    if (ahead != nullptr) {
      const size_t row_bytes =
          dim * (half && half_rows[i + kAhead] != nullptr ? sizeof(uint16_t) : sizeof(float));
      for (size_t line = 0; line < 8 && line * 64 < row_bytes; ++line) {
        __builtin_prefetch(static_cast<const char*>(ahead) + line * 64);
      }
    }
    float squared;
    if (half && half_rows[i] != nullptr) {
      squared = index::squared_l2_half(vector, half_rows[i], dim);
    } else if (rows[i] != nullptr) {
      squared = index::squared_l2(vector, rows[i], dim);
    } else {
      ++response->candidates_without_vector;
      (*score)[i] = beyond + hits[i].distance;
      continue;
    }
    (*score)[i] = reported_distance(metric_, static_cast<double>(squared));
  }
  return Status::ok();
}

Result<SearchResponse> QueryEngine::run(const std::vector<uint8_t>& code, const float* vector,
                                        size_t dim, const std::vector<float>* probabilities,
                                        const SearchRequest& request) const {
  const bool rerank = request.rerank != Rerank::kNone;
  if (rerank && request.radius >= 0) {
    return Status::invalid_argument("re-ranking applies to kNN searches, not radius searches");
  }
  if (request.rerank == Rerank::kExact && vector == nullptr) {
    return Status::invalid_argument("exact re-ranking needs a vector query (or a stored item)");
  }
  if (request.rerank == Rerank::kAsymmetric && probabilities == nullptr) {
    return Status::invalid_argument(
        "asymmetric re-ranking needs a vector query and a model (bit probabilities)");
  }
  if (request.radius < 0 && (request.k < 1 || request.k > index::kMaxK)) {
    return Status::invalid_argument("k must be from 1 to " + std::to_string(index::kMaxK) +
                                    ", got " + std::to_string(request.k));
  }
  index::CodeStore::SearchOptions o = store_options(request);
  if (rerank) {
    const size_t wanted =
        request.candidates > 0 ? request.candidates : std::max<size_t>(10 * request.k, 100);
    o.k = std::min(index::kMaxK, std::max(wanted, request.k));
  }
  if (request.rerank == Rerank::kExact && request.shortlist > 0 && probabilities == nullptr) {
    return Status::invalid_argument(
        "a shortlist needs the query's bit probabilities: a vector query (or a stored item's "
        "vector) and the store's model");
  }
  const bool shortlist = request.rerank == Rerank::kExact && request.shortlist > 0;
  o.with_codes = request.rerank == Rerank::kAsymmetric;
  // Re-ranking reads candidates by id; keys are read only for the hits it returns.
  o.with_keys = !rerank;
  SearchResponse response;
  if (!request.filter.empty()) {
    IMSAT_ASSIGN_OR_RETURN(response.selection,
                           store_->select(*request.filter.get(), /*for_search=*/true));
    o.selection = response.selection;
  }
  response.query_code = to_hex(code.data(), code.size());
  std::vector<index::Hit> hits;
  if (shortlist) {
    index::CodeStore::Candidates candidates;
    IMSAT_RETURN_IF_ERROR(store_->candidates(code, o, &candidates, &response.stats));
    response.shortlisted_from = candidates.ids.size();
    hits = shortlist_hits(candidates, *probabilities, model_->bits(),
                          std::max(request.shortlist, request.k));
  } else {
    IMSAT_ASSIGN_OR_RETURN(hits, store_->search(code, o, &response.stats, &response.truncated));
  }

  std::vector<double> score(hits.size());
  for (size_t i = 0; i < hits.size(); ++i) score[i] = hits[i].distance;
  if (request.rerank == Rerank::kExact && !hits.empty()) {
    IMSAT_RETURN_IF_ERROR(exact_scores(vector, dim, hits, &score, &response));
  } else if (request.rerank == Rerank::kAsymmetric) {
    const AsymmetricScorer scorer(probabilities->data(), model_->bits());
    for (size_t i = 0; i < hits.size(); ++i) score[i] = scorer.score(hits[i].code.data());
  }
  // Hits arrive sorted by (Hamming distance, id); a stable sort by score keeps that order among
  // equal scores.
  std::vector<size_t> order(hits.size());
  std::iota(order.begin(), order.end(), size_t{0});
  if (rerank) {
    // The k best by score, equal scores in arrival order: a stable sort's first k, without
    // sorting the rest.
    const size_t kept = std::min(order.size(), request.k);
    std::partial_sort(
        order.begin(), order.begin() + static_cast<std::ptrdiff_t>(kept), order.end(),
        [&](size_t a, size_t b) { return score[a] != score[b] ? score[a] < score[b] : a < b; });
    order.resize(kept);
    response.candidates_reranked = hits.size();
    IMSAT_RETURN_IF_ERROR(name_reranked(&hits, &order));
  }
  response.hits.reserve(order.size());
  std::vector<uint64_t> ids;
  ids.reserve(order.size());
  for (size_t i : order) {
    ids.push_back(hits[i].id);
    response.hits.push_back(take_hit(&hits[i], score[i]));
  }
  if (request.with_metadata && !ids.empty()) {
    IMSAT_ASSIGN_OR_RETURN(std::vector<std::string> meta, metadata_of(ids));
    for (size_t i = 0; i < ids.size(); ++i) response.hits[i].metadata = std::move(meta[i]);
  }
  return response;
}

}  // namespace imsat::query
