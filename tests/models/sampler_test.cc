// The sampler (engine/models/sampler.hpp): Hugging Face's processing order and rules, checked on logits
// whose filtered distributions are worked out by hand, and the frequencies of many seeded draws against
// the distribution they are drawn from.
#include "engine/models/sampler.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "quarks/error.hpp"

namespace quarks::models {
namespace {

std::vector<float> log_probs(const std::vector<double>& p) {
  std::vector<float> l;
  for (double v : p) l.push_back(static_cast<float>(std::log(v)));
  return l;
}

TEST(Sampler, GreedyTakesTheFirstLargestAndSkipsNaN) {
  Sampler s({}, 1);
  const float nan = std::numeric_limits<float>::quiet_NaN();
  EXPECT_EQ(s.next(std::vector<float>{0.5f, 2.0f, 2.0f, -1.0f}, {}), 1);
  EXPECT_EQ(s.next(std::vector<float>{nan, -3.0f, -2.0f}, {}), 2);
}

TEST(Sampler, RepetitionPenaltyDividesPositiveAndMultipliesNegativeLogitsOnce) {
  Sampler s({.temperature = 0.0, .repetition_penalty = 2.0}, 1);
  // Token 0 (3.0 -> 1.5) loses to token 1 (2.0); token 2 (-1 -> -2) stays below token 3 (-1.5).
  EXPECT_EQ(s.next(std::vector<float>{3.0f, 2.0f}, std::vector<std::int64_t>{0, 0}), 1);
  EXPECT_EQ(s.next(std::vector<float>{-9.0f, -9.0f, -1.0f, -1.5f}, std::vector<std::int64_t>{2}), 3);
}

TEST(Sampler, TopKKeepsTiesAtTheKthLogit) {
  const Sampler s({.temperature = 1.0, .top_k = 2}, 1);
  const std::vector<double> p = s.distribution(std::vector<float>{1.0f, 3.0f, 1.0f, 2.0f}, {});
  const double z = std::exp(3.0) + std::exp(2.0);
  EXPECT_NEAR(p[1], std::exp(3.0) / z, 1e-12);
  EXPECT_NEAR(p[3], std::exp(2.0) / z, 1e-12);
  EXPECT_EQ(p[0], 0.0);
  EXPECT_EQ(p[2], 0.0);
  // k = 2 with the 2nd and 3rd largest tied: both stay.
  const std::vector<double> tied = s.distribution(std::vector<float>{2.0f, 3.0f, 2.0f, 0.0f}, {});
  EXPECT_GT(tied[0], 0.0);
  EXPECT_GT(tied[2], 0.0);
  EXPECT_EQ(tied[3], 0.0);
}

TEST(Sampler, TopPDropsTheTailWhoseCumulativeProbabilityIsAtMostOneMinusP) {
  // Probabilities 0.5, 0.3, 0.15, 0.05. Ascending cumulative sums 0.05, 0.2, 0.5, 1: with top_p 0.8
  // the tokens at 0.05 and 0.2 (<= 0.2) go, and 0.3, 0.5 are renormalised to 0.375, 0.625.
  const Sampler s({.temperature = 1.0, .top_p = 0.8}, 1);
  const std::vector<double> p = s.distribution(log_probs({0.5, 0.3, 0.15, 0.05}), {});
  EXPECT_NEAR(p[0], 0.625, 1e-6);
  EXPECT_NEAR(p[1], 0.375, 1e-6);
  EXPECT_EQ(p[2], 0.0);
  EXPECT_EQ(p[3], 0.0);
  // A tiny top_p keeps the most likely token only.
  const Sampler one({.temperature = 1.0, .top_p = 0.01}, 1);
  EXPECT_EQ(one.distribution(log_probs({0.5, 0.3, 0.15, 0.05}), {})[0], 1.0);
}

TEST(Sampler, TemperatureDividesTheLogits) {
  const Sampler s({.temperature = 0.5}, 1);
  const std::vector<double> p = s.distribution(std::vector<float>{0.0f, 1.0f}, {});
  EXPECT_NEAR(p[1], std::exp(2.0) / (1 + std::exp(2.0)), 1e-12);
}

// 200000 draws from temperature 0.8, top-k 6, top-p 0.9 over 10 logits: each token's frequency is within
// 5 standard deviations (sqrt(p(1-p)/N)) of its probability — a false failure has odds of about 6e-7
// per token — and filtered tokens are never drawn.
TEST(Sampler, FrequenciesOfSeededDrawsMatchTheFilteredDistribution) {
  const std::vector<float> logits{0.1f, 1.3f, -0.4f, 2.2f, 0.7f, 1.9f, -1.0f, 0.9f, 1.1f, 0.0f};
  Sampler s({.temperature = 0.8, .top_k = 6, .top_p = 0.9}, 12345);
  const std::vector<double> p = s.distribution(logits, {});
  int kept = 0;
  for (double v : p) kept += v > 0;
  EXPECT_EQ(kept, 5);  // top-k leaves 6; top-p then drops the least likely of them
  constexpr int kDraws = 200000;
  std::vector<int> count(logits.size(), 0);
  for (int i = 0; i < kDraws; ++i) ++count[static_cast<std::size_t>(s.next(logits, {}))];
  for (std::size_t t = 0; t < logits.size(); ++t) {
    const double f = static_cast<double>(count[t]) / kDraws;
    if (p[t] == 0) {
      EXPECT_EQ(count[t], 0) << t;
    } else {
      EXPECT_NEAR(f, p[t], 5 * std::sqrt(p[t] * (1 - p[t]) / kDraws)) << t;
    }
  }
}

TEST(Sampler, TheSameSeedGivesTheSameDraws) {
  const std::vector<float> logits{0.1f, 1.3f, -0.4f, 2.2f, 0.7f};
  Sampler a({.temperature = 1.0}, 99), b({.temperature = 1.0}, 99), c({.temperature = 1.0}, 100);
  std::vector<std::int64_t> da, db, dc;
  for (int i = 0; i < 64; ++i) {
    da.push_back(a.next(logits, {}));
    db.push_back(b.next(logits, {}));
    dc.push_back(c.next(logits, {}));
  }
  EXPECT_EQ(da, db);
  EXPECT_NE(da, dc);
}

TEST(Sampler, BadSettingsAreClearErrors) {
  EXPECT_THROW(Sampler({.temperature = -1.0}, 1), Error);
  EXPECT_THROW(Sampler({.temperature = 1.0, .top_p = 0.0}, 1), Error);
  EXPECT_THROW(Sampler({.temperature = 1.0, .top_k = -1}, 1), Error);
  EXPECT_THROW(Sampler({.repetition_penalty = 0.0}, 1), Error);
  Sampler s({.temperature = 1.0}, 1);
  const float ninf = -std::numeric_limits<float>::infinity();
  EXPECT_THROW(s.next(std::vector<float>{ninf, ninf}, {}), Error);
}

}  // namespace
}  // namespace quarks::models
