// Shared helpers of the dense-family tests: data, aligned scratch, arenas, and the scalar double
// reference of the activations with their slopes (for error propagation).
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

#include <tbb/task_arena.h>

#include "quarks/activation.hpp"

namespace quarks::ops::dense_test {

inline std::vector<float> random_values(std::int64_t count, std::uint32_t seed, float lo = -1.0f, float hi = 1.0f) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(static_cast<std::size_t>(count));
  for (float& x : v) x = dist(rng);
  return v;
}

/// 64-byte-aligned scratch of at least `bytes` bytes (never empty, so data() is a valid pointer).
class Scratch {
 public:
  explicit Scratch(std::size_t bytes) : lines_(bytes / 64 + 1) {}
  std::byte* data() { return reinterpret_cast<std::byte*>(lines_.data()); }

 private:
  struct alignas(64) Line {
    std::byte bytes[64];
  };
  std::vector<Line> lines_;
};

/// Runs body(threads) inside a tbb::task_arena of 2 threads and of 1 (kernels are built for the arena).
template <class Body>
void for_each_arena(const Body& body) {
  for (int threads : {2, 1}) {
    tbb::task_arena arena(threads);
    arena.execute([&] { body(threads); });
  }
}

/// f(s) in double with the mathematical limits at ±inf and NaN propagation.
inline double reference_activation(const Activation& f, double s) {
  const double inf = std::numeric_limits<double>::infinity();
  if (std::isnan(s)) return s;
  switch (f.kind) {
    case ActivationKind::kIdentity: return s;
    case ActivationKind::kRelu: return s > 0 ? s : 0.0;
    case ActivationKind::kLeakyRelu: return s >= 0 ? s : f.alpha * s;
    case ActivationKind::kSigmoid: return 1.0 / (1.0 + std::exp(-s));
    case ActivationKind::kTanh: return std::tanh(s);
    case ActivationKind::kGeluErf:
      if (std::isinf(s)) return s > 0 ? inf : 0.0;
      return 0.5 * s * (1.0 + std::erf(s / std::sqrt(2.0)));
    case ActivationKind::kGeluTanh:
      if (std::isinf(s)) return s > 0 ? inf : 0.0;
      return 0.5 * s * (1.0 + std::tanh(std::sqrt(2.0 / M_PI) * (s + 0.044715 * s * s * s)));
    case ActivationKind::kSilu:
      if (std::isinf(s)) return s > 0 ? inf : 0.0;
      return s / (1.0 + std::exp(-s));
    case ActivationKind::kSquare: return s * s;
    case ActivationKind::kPolynomial: {
      if (std::isinf(s)) {  // the leading non-zero term decides the limit
        for (std::size_t i = f.coeffs.size(); i-- > 0;) {
          if (f.coeffs[i] != 0.0f) return i == 0 ? f.coeffs[0] : f.coeffs[i] * std::pow(s, static_cast<double>(i));
        }
        return 0.0;
      }
      double r = 0.0;
      for (std::size_t i = f.coeffs.size(); i-- > 0;) r = r * s + f.coeffs[i];
      return r;
    }
    case ActivationKind::kSign: return s >= 0 ? 1.0 : -1.0;
    case ActivationKind::kHeaviside: return s >= 0 ? 1.0 : 0.0;
  }
  return s;
}

/// An upper bound of |f'| on [s - d, s + d] (0 for the step functions, whose jumps the tests avoid).
inline double activation_slope(const Activation& f, double s, double d) {
  const double a = std::abs(s) + d;
  switch (f.kind) {
    case ActivationKind::kSquare: return 2.0 * a;
    case ActivationKind::kPolynomial: {
      double r = 0.0, p = 1.0;
      for (std::size_t i = 1; i < f.coeffs.size(); ++i, p *= a) r += static_cast<double>(i) * std::abs(f.coeffs[i]) * p;
      return r;
    }
    case ActivationKind::kSign:
    case ActivationKind::kHeaviside: return 0.0;
    case ActivationKind::kLeakyRelu: return std::max(1.0, static_cast<double>(std::abs(f.alpha)));
    default: return 1.2;  // relu, sigmoid, tanh, the GELUs and SiLU are 1.13-Lipschitz or less
  }
}

/// True if f jumps within d of s (sign and heaviside at 0): the tests skip such elements.
inline bool near_jump(const Activation& f, double s, double d) {
  return (f.kind == ActivationKind::kSign || f.kind == ActivationKind::kHeaviside) && std::abs(s) <= d;
}

/// Every activation kind, with parameters.
inline std::vector<Activation> all_activations() {
  return {Activation::identity(),       Activation::relu(),
          Activation::leaky_relu(0.1f), Activation::sigmoid(),
          Activation::tanh(),           Activation::gelu(),
          Activation::gelu_tanh(),      Activation::silu(),
          Activation::square(),         Activation::polynomial({0.5f, -1.0f, 0.25f, 0.125f}),
          Activation::sign(),           Activation::heaviside()};
}

/// f32 accumulation error bound of a k-term dot product whose |terms| sum to `abs_sum`, with margin.
inline double f32_dot_tolerance(std::int64_t k, double abs_sum) {
  return (4.0 * std::sqrt(static_cast<double>(k)) + 8.0) * 0x1p-24 * abs_sum + 1e-30;
}

/// Worst-case error of the bf16 mode: x and W each rounded to bf16 (relative 2^-9 each, RNE) make
/// every term off by at most (2·2^-9 + 2^-18)·|x·w|, so the sum is off by at most ~2^-8·Σ|x·w|,
/// plus the f32 accumulation error.
inline double bf16_dot_tolerance(std::int64_t k, double abs_sum) {
  return 1.01 * 0x1p-8 * abs_sum + f32_dot_tolerance(k, abs_sum);
}

}  // namespace quarks::ops::dense_test
