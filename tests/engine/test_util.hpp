// Helpers for engine tests: random tensors, double-precision reference buffers, comparisons.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "quarks/quarks.hpp"

namespace quarks::test {

/// f32 tensor of normal values: offset + N(0, scale²), reproducible from the seed.
inline Tensor normal_tensor(const Shape& shape, std::uint32_t seed, float scale, float offset = 0.0f) {
  Tensor t(DType::kF32, shape);
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, scale);
  for (std::int64_t i = 0; i < t.numel(); ++i) t.f32()[i] = offset + dist(rng);
  return t;
}

inline Tensor random_tensor(const Shape& shape, std::uint32_t seed, float lo = -1.0f, float hi = 1.0f) {
  Tensor t(DType::kF32, shape);
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  for (std::int64_t i = 0; i < t.numel(); ++i) t.f32()[i] = dist(rng);
  return t;
}

inline std::vector<double> to_double(const Tensor& t) { return std::vector<double>(t.f32(), t.f32() + t.numel()); }

/// max |a - b| over all elements, with NaN == NaN treated as equal (and NaN vs number as infinite).
inline double max_abs_diff(const Tensor& got, const std::vector<double>& want) {
  double worst = 0;
  for (std::int64_t i = 0; i < got.numel(); ++i) {
    const double g = got.f32()[i], w = want[static_cast<std::size_t>(i)];
    if (std::isnan(g) && std::isnan(w)) continue;
    if (std::isnan(g) || std::isnan(w)) return INFINITY;
    if (g == w) continue;  // equal infinities
    worst = std::max(worst, std::fabs(g - w));
  }
  return worst;
}

/// Compiles and runs `graph` once; returns the output `name`.
/// A scalar f32 constant (shape []).
inline Value scalar_constant(GraphBuilder& g, const std::string& name, float v) {
  return g.constant(name, Tensor::from_f32(Shape{}, {v}));
}

inline Tensor run_once(const Graph& graph, std::initializer_list<NamedInput> inputs, const std::string& name = "y",
                       const CompileOptions& options = {}) {
  Model model = compile(graph, options);
  Session session(model);
  auto out = session.run(inputs);
  return out.at(name);
}

/// Row-major [m,k]·[k,n] in double.
inline std::vector<double> matmul_ref(const float* a, const float* b, std::int64_t m, std::int64_t k, std::int64_t n) {
  std::vector<double> y(static_cast<std::size_t>(m * n), 0.0);
  for (std::int64_t i = 0; i < m; ++i)
    for (std::int64_t p = 0; p < k; ++p)
      for (std::int64_t j = 0; j < n; ++j) y[i * n + j] += static_cast<double>(a[i * k + p]) * b[p * n + j];
  return y;
}

/// Runs build(g) on a fresh GraphBuilder and expects it to throw quarks::Error with `code` and a message
/// containing `what`.
inline void expect_build_error(const std::function<void(GraphBuilder&)>& build, ErrorCode code,
                               const std::string& what) {
  GraphBuilder g;
  try {
    build(g);
    ADD_FAILURE() << "no error, expected: " << what;
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), code) << e.what();
    EXPECT_NE(std::string(e.what()).find(what), std::string::npos) << e.what();
  }
}

}  // namespace quarks::test
