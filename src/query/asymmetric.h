// Asymmetric distance: a stored binary code against a query's bit probabilities, the
// one implementation behind `eval --rank asymmetric` and the engine's asymmetric re-ranking.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace imsat::query {

// Bit probabilities are clamped to [kMinBitProbability, 1 - kMinBitProbability] before their
// logarithm: about a float's resolution near 1 (a sigmoid in float rounds to exactly 1 beyond a
// logit of about 16.6), so both values of a bit are treated alike and one bit that contradicts a
// sure query costs at most -log(1e-7), about 16.1.
inline constexpr double kMinBitProbability = 1e-7;

// Scores stored codes against one query's bit probabilities p_d: the negative log-likelihood of
// the code under independent bits with those probabilities, sum_d -log(b_d ? p_d : 1 - p_d);
// lower is nearer. Up to a constant per query it is the Hamming distance to the query's most
// likely code with each differing bit weighted by the model's confidence |log(p_d / (1 - p_d))|:
// a bit the model is unsure of counts for little, and probabilities of 0 and 1 give Hamming
// order. (The expected Hamming distance sum_d |b_d - p_d|, the other candidate, caps every bit's
// weight at 1 and ranked Satellite's codes 7 mAP points worse; bench/README.md.)
class AsymmetricScorer {
 public:
  // `p` holds `bits` probabilities (bits a multiple of 8; the caller checks it).
  AsymmetricScorer(const float* p, int bits);
  // `code` holds bits / 8 bytes, bit d in byte d / 8, bit d % 8.
  double score(const uint8_t* code) const {
    double s = base_;
    for (size_t b = 0; b < bytes_; ++b) s += table_[b * 256 + code[b]];
    return s;
  }

 private:
  size_t bytes_;
  double base_ = 0;            // the score of the all-zero code
  std::vector<double> table_;  // per code byte and value: what its set bits add to base_
};

}  // namespace imsat::query
