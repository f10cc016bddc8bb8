// imsat::query::EncodeBatcher — dynamic batching of one-vector encodes. A search by vector or
// image spends almost all its time in one forward pass of the model, and a model encodes on one
// thread at a time; a pass over 64 rows costs little more than a pass over one (the network's
// weights are read once either way). So the vectors of concurrent searches that wait while the
// model is busy are encoded together in one call when it becomes free, the way inference servers
// batch dynamically. A lone request never waits for company: it is encoded at once, as before.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <mutex>
#include <vector>

#include "common/status.h"
#include "learn/learn.h"

namespace imsat::query {

struct EncodeBatchOptions {
  // Vectors per model call. 1 (the default): every search encodes its own vector, one at a time.
  // On the 2-core machine, with the 400-400 network, the model is about a quarter of a search by
  // vector's time and batching did not pay (bench/README.md, "Search by vector"); it is for
  // larger networks and machines with more cores (--encode-batch 64 --model-threads 64).
  size_t max_batch = 1;
  // While requests are arriving together (the previous batch held more than one), the caller
  // that encodes next waits up to this long for more to join before it calls the model. Zero
  // (the default): encode what is waiting at that moment, never wait. Waiting pays only when more
  // callers can still arrive: with two worker threads both were often already in the batch, and
  // a 200 us wait cut throughput by a sixth (bench/README.md, "Search by vector").
  std::chrono::microseconds max_wait{0};
};

class EncodeBatcher {
 public:
  // `model_mutex` serialises every call into `model` through LibTorch (the engine's writes encode
  // through it too). Without batching (max_batch 1), a model that encodes one input without
  // LibTorch (Model::encodes_concurrently) is called by every caller at once instead.
  EncodeBatcher(const learn::Model& model, std::mutex& model_mutex, EncodeBatchOptions options);

  // The packed code (model.code_bytes() bytes at `code`) of one vector and, when
  // `probabilities` is not null, its bit probabilities (model.bits() floats). Errors:
  // InvalidArgument for a wrong dimension or a NaN (checked before the vector joins a batch, so
  // a bad vector fails alone), or the model's error.
  Status encode(const float* vector, size_t dim, uint8_t* code, float* probabilities);

  struct Stats {
    uint64_t requests = 0;  // vectors encoded
    uint64_t batches = 0;   // model calls
    size_t largest = 0;     // vectors in the largest batch
    uint64_t waits = 0;     // batches whose caller waited (up to max_wait) for more to join
  };
  Stats stats() const;
  // Blocks until at least `n` callers wait in the queue for a batch (tests: to start a check once
  // callers have queued up, instead of sleeping and hoping they did).
  void wait_until_queued(size_t n) const;

 private:
  struct Request {
    const float* vector;
    uint8_t* code;
    float* probabilities;
    Status status = Status::ok();
    bool done = false;
  };
  void run(const std::vector<Request*>& batch);
  // One vector without batching or the model's lock (Model::encodes_concurrently).
  Status encode_one(const float* vector, size_t dim, uint8_t* code, float* probabilities) const;

  const learn::Model& model_;
  std::mutex& model_mutex_;
  EncodeBatchOptions options_;
  mutable std::mutex mu_;
  std::condition_variable arrived_;         // the caller gathering a batch waits here for more
  std::condition_variable finished_;        // callers wait here for their batch or their turn
  mutable std::condition_variable queued_;  // wait_until_queued waits here
  std::deque<Request*> queue_;
  bool busy_ = false;  // a caller is gathering or encoding a batch
  size_t last_batch_ = 0;
  Stats stats_;
  std::vector<float> rows_;  // the batch's vectors side by side (used by the encoding caller)
};

}  // namespace imsat::query
