#include "query/encode_batcher.h"

#include <algorithm>
#include <cstring>

namespace imsat::query {

EncodeBatcher::EncodeBatcher(const learn::Model& model, std::mutex& model_mutex,
                             EncodeBatchOptions options)
    : model_(model), model_mutex_(model_mutex), options_(options) {
  if (options_.max_batch == 0) options_.max_batch = 1;
}

Status EncodeBatcher::encode(const float* vector, size_t dim, uint8_t* code, float* probabilities) {
  if (options_.max_batch == 1 && model_.encodes_concurrently(1)) {
    // No batching, and the model encodes one input without LibTorch: every caller encodes at
    // once on its own thread, without the model's lock (Model::encode checks the input).
    IMSAT_RETURN_IF_ERROR(encode_one(vector, dim, code, probabilities));
    std::lock_guard lock(mu_);
    ++stats_.batches;
    ++stats_.requests;
    stats_.largest = 1;
    return Status::ok();
  }
  IMSAT_RETURN_IF_ERROR(model_.check_input(vector, 1, dim));
  Request request{vector, code, probabilities};
  std::unique_lock lock(mu_);
  queue_.push_back(&request);
  if (busy_) arrived_.notify_one();  // only the gathering caller waits on it
  queued_.notify_all();
  while (!request.done) {
    if (busy_) {
      finished_.wait(lock);
      continue;
    }
    // This caller encodes the next batch: what is waiting now, and, while requests arrive
    // together, what joins within max_wait.
    busy_ = true;
    if (options_.max_wait.count() > 0 && last_batch_ > 1 && queue_.size() < options_.max_batch) {
      ++stats_.waits;
      arrived_.wait_for(lock, options_.max_wait,
                        [&] { return queue_.size() >= options_.max_batch; });
    }
    std::vector<Request*> batch;
    while (!queue_.empty() && batch.size() < options_.max_batch) {
      batch.push_back(queue_.front());
      queue_.pop_front();
    }
    last_batch_ = batch.size();
    ++stats_.batches;
    stats_.requests += batch.size();
    stats_.largest = std::max(stats_.largest, batch.size());
    lock.unlock();
    run(batch);
    lock.lock();
    for (Request* r : batch) r->done = true;
    busy_ = false;
    finished_.notify_all();
  }
  return request.status;
}

void EncodeBatcher::run(const std::vector<Request*>& batch) {
  const size_t dim = model_.input_dim();
  const size_t rows = batch.size();
  const size_t cb = static_cast<size_t>(model_.code_bytes());
  const size_t bits = static_cast<size_t>(model_.bits());
  // Only the encoding caller touches rows_ (busy_ keeps the others out).
  rows_.resize(rows * dim);
  bool want_probabilities = false;
  for (size_t i = 0; i < rows; ++i) {
    std::memcpy(rows_.data() + i * dim, batch[i]->vector, dim * sizeof(float));
    want_probabilities = want_probabilities || batch[i]->probabilities != nullptr;
  }
  // One batch is encoded at a time anyway (busy_); the lock keeps out the engine's other model
  // calls (writes encode through it too).
  std::lock_guard model_lock(model_mutex_);
  Result<std::vector<uint8_t>> codes = model_.encode(rows_.data(), rows, dim);
  if (!codes.is_ok()) {
    for (Request* r : batch) r->status = codes.status();
    return;
  }
  for (size_t i = 0; i < rows; ++i) std::memcpy(batch[i]->code, codes->data() + i * cb, cb);
  if (!want_probabilities) return;
  Result<std::vector<float>> p = model_.bit_probabilities(rows_.data(), rows, dim);
  for (size_t i = 0; i < rows; ++i) {
    if (batch[i]->probabilities == nullptr) continue;
    if (!p.is_ok()) {
      batch[i]->status = p.status();
      continue;
    }
    std::memcpy(batch[i]->probabilities, p->data() + i * bits, bits * sizeof(float));
  }
}

Status EncodeBatcher::encode_one(const float* vector, size_t dim, uint8_t* code,
                                 float* probabilities) const {
  IMSAT_ASSIGN_OR_RETURN(std::vector<uint8_t> c, model_.encode(vector, 1, dim));
  std::memcpy(code, c.data(), c.size());
  if (probabilities == nullptr) return Status::ok();
  IMSAT_ASSIGN_OR_RETURN(std::vector<float> p, model_.bit_probabilities(vector, 1, dim));
  std::memcpy(probabilities, p.data(), p.size() * sizeof(float));
  return Status::ok();
}

void EncodeBatcher::wait_until_queued(size_t n) const {
  std::unique_lock lock(mu_);
  queued_.wait(lock, [&] { return queue_.size() >= n; });
}

EncodeBatcher::Stats EncodeBatcher::stats() const {
  std::lock_guard lock(mu_);
  return stats_;
}

}  // namespace imsat::query
