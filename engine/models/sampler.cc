// Sampler (sampler.hpp).
#include "engine/models/sampler.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <string>

#include "quarks/error.hpp"

namespace quarks::models {

Sampler::Sampler(const SamplerSettings& settings, std::uint64_t seed) : s_(settings), rng_(seed) {
  if (!(s_.temperature >= 0) || !std::isfinite(s_.temperature) || s_.top_k < 0 || !(s_.top_p > 0 && s_.top_p <= 1) ||
      !(s_.repetition_penalty > 0) || !std::isfinite(s_.repetition_penalty)) {
    throw Error(ErrorCode::kInvalidArgument,
                "sampling needs temperature >= 0, top_k >= 0, 0 < top_p <= 1 and repetition_penalty > 0 (got " +
                    std::to_string(s_.temperature) + ", " + std::to_string(s_.top_k) + ", " + std::to_string(s_.top_p) +
                    ", " + std::to_string(s_.repetition_penalty) + ")");
  }
}

double Sampler::uniform() { return static_cast<double>(rng_() >> 11) * 0x1.0p-53; }

std::vector<double> Sampler::penalised(std::span<const float> logits, std::span<const std::int64_t> seen) const {
  std::vector<double> l(logits.begin(), logits.end());
  if (s_.repetition_penalty != 1.0) {
    std::vector<bool> done(l.size(), false);  // a token seen twice is penalised once, as in HF
    for (const std::int64_t t : seen) {
      if (t < 0 || static_cast<std::size_t>(t) >= l.size() || done[static_cast<std::size_t>(t)]) continue;
      done[static_cast<std::size_t>(t)] = true;
      double& v = l[static_cast<std::size_t>(t)];
      v = v > 0 ? v / s_.repetition_penalty : v * s_.repetition_penalty;
    }
  }
  return l;
}

std::vector<double> Sampler::distribution(std::span<const float> logits, std::span<const std::int64_t> seen) const {
  const std::size_t n = logits.size();
  if (n == 0) throw Error(ErrorCode::kInvalidArgument, "sampling from an empty row of logits");
  std::vector<double> l = penalised(logits, seen);
  std::vector<double> p(n, 0.0);
  if (s_.temperature == 0) {  // greedy: the first largest (NaN never wins)
    std::size_t best = 0;
    for (std::size_t i = 1; i < n; ++i)
      if (l[i] > l[best] || std::isnan(l[best])) best = i;
    p[best] = 1.0;
    return p;
  }
  constexpr double kOut = -std::numeric_limits<double>::infinity();
  for (double& v : l) v = std::isnan(v) ? kOut : v / s_.temperature;
  if (s_.top_k > 0 && static_cast<std::size_t>(s_.top_k) < n) {
    std::vector<double> sorted = l;
    std::nth_element(sorted.begin(), sorted.begin() + (s_.top_k - 1), sorted.end(), std::greater<>());
    const double kth = sorted[static_cast<std::size_t>(s_.top_k - 1)];
    for (double& v : l)
      if (v < kth) v = kOut;
  }
  const double top = *std::max_element(l.begin(), l.end());
  if (top == kOut) throw Error(ErrorCode::kInvalidArgument, "sampling: every logit is NaN or -inf");
  double sum = 0;
  for (std::size_t i = 0; i < n; ++i) sum += p[i] = l[i] == kOut ? 0.0 : std::exp(l[i] - top);
  for (double& v : p) v /= sum;
  if (s_.top_p < 1.0) {
    // HF's rule: sort ascending, drop the tokens whose cumulative probability is <= 1 - top_p, keep the
    // most likely one whatever.
    std::vector<std::size_t> order(n);
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return l[a] < l[b]; });
    double cumulative = 0;
    for (std::size_t r = 0; r + 1 < n; ++r) {
      cumulative += p[order[r]];
      if (cumulative <= 1.0 - s_.top_p) p[order[r]] = 0.0;
    }
    sum = std::accumulate(p.begin(), p.end(), 0.0);
    for (double& v : p) v /= sum;
  }
  return p;
}

std::int64_t Sampler::next(std::span<const float> logits, std::span<const std::int64_t> seen) {
  const std::vector<double> p = distribution(logits, seen);
  if (s_.temperature == 0) return std::max_element(p.begin(), p.end()) - p.begin();
  const double u = uniform();
  double cumulative = 0;
  std::int64_t last = 0;
  for (std::size_t i = 0; i < p.size(); ++i) {
    if (p[i] == 0) continue;
    cumulative += p[i];
    last = static_cast<std::int64_t>(i);
    if (u < cumulative) return last;
  }
  return last;  // rounding left u above the last partial sum
}

}  // namespace quarks::models
