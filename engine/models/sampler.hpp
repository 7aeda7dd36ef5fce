// Picking the next token from a row of logits as Hugging Face's generate() does: repetition penalty,
// then temperature, top-k and top-p, then a draw from the softmax of what is left; temperature 0 is
// greedy (the first largest logit, as torch.argmax). The draws come from a seeded 64-bit Mersenne
// Twister turned into doubles by this file, not by the standard library's distributions (whose
// algorithms differ between libraries), so a seed gives the same tokens everywhere.
#pragma once

#include <cstdint>
#include <random>
#include <span>
#include <vector>

namespace quarks::models {

struct SamplerSettings {
  double temperature = 0.0;         ///< 0: greedy; > 0: divide the logits by it
  int top_k = 0;                    ///< 0: off; else keep the tokens whose logit is >= the k-th largest
  double top_p = 1.0;               ///< 1: off; else keep the smallest top set of probability >= top_p
  double repetition_penalty = 1.0;  ///< 1: off; a seen token's logit l becomes l / p (l > 0) or l · p
};

class Sampler {
 public:
  Sampler(const SamplerSettings& settings, std::uint64_t seed);
  /// The next token for `logits` (one row, vocab entries) after the tokens `seen` (the prompt and what
  /// was generated, for the repetition penalty). Does not modify `logits`.
  std::int64_t next(std::span<const float> logits, std::span<const std::int64_t> seen);
  /// The probabilities the next draw would use (0 for filtered tokens), for tests of the filters.
  std::vector<double> distribution(std::span<const float> logits, std::span<const std::int64_t> seen) const;

 private:
  std::vector<double> penalised(std::span<const float> logits, std::span<const std::int64_t> seen) const;
  double uniform();  ///< in [0, 1) from the top 53 bits of one draw

  SamplerSettings s_;
  std::mt19937_64 rng_;
};

}  // namespace quarks::models
