// Latency statistics of repeated runs.
#pragma once

#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

namespace quarks::bench {

struct LatencyStats {
  double p50_ms = 0, p90_ms = 0, p99_ms = 0, mean_ms = 0, min_ms = 0, max_ms = 0;
};

/// Nearest-rank percentiles of the samples (milliseconds).
inline LatencyStats summarize(std::vector<double> samples_ms) {
  LatencyStats s;
  if (samples_ms.empty()) return s;
  std::sort(samples_ms.begin(), samples_ms.end());
  auto pct = [&](double p) {
    const auto rank = static_cast<std::size_t>(std::ceil(p / 100.0 * static_cast<double>(samples_ms.size())));
    return samples_ms[std::clamp<std::size_t>(rank, 1, samples_ms.size()) - 1];
  };
  s.p50_ms = pct(50);
  s.p90_ms = pct(90);
  s.p99_ms = pct(99);
  s.mean_ms = std::accumulate(samples_ms.begin(), samples_ms.end(), 0.0) / static_cast<double>(samples_ms.size());
  s.min_ms = samples_ms.front();
  s.max_ms = samples_ms.back();
  return s;
}

}  // namespace quarks::bench
