// Scalar double-precision reference of the activation functions, independent of the Highway kernels:
// textbook formulas evaluated with <cmath> in double (about 1e-16 relative), so the f32 kernels'
// errors can be measured against it.
#pragma once

#include <cmath>
#include <cstddef>
#include <numbers>

#include "quarks/activation.hpp"

namespace quarks::test {

/// f(x) in double. Valid for finite x; the limits at ±inf and NaN are tested with explicit values.
inline double reference_activation(const Activation& f, double x) {
  switch (f.kind) {
    case ActivationKind::kIdentity: return x;
    case ActivationKind::kRelu: return x < 0 ? 0.0 : x;
    case ActivationKind::kLeakyRelu: return x < 0 ? static_cast<double>(f.alpha) * x : x;
    case ActivationKind::kSigmoid: return x >= 0 ? 1.0 / (1.0 + std::exp(-x)) : std::exp(x) / (1.0 + std::exp(x));
    case ActivationKind::kTanh: return std::tanh(x);
    // x·Φ(x) with Φ(x) = erfc(-x/√2)/2, which keeps full relative accuracy in the negative tail.
    case ActivationKind::kGeluErf: return 0.5 * x * std::erfc(-x / std::numbers::sqrt2);
    case ActivationKind::kGeluTanh: {
      const double u = std::sqrt(2.0 / std::numbers::pi) * (x + 0.044715 * x * x * x);
      // For x < 0, (1 + tanh(u))/2 = 1/(1 + e^(-2u)) avoids the cancellation of 1 + tanh(u) ≈ 0.
      return x >= 0 ? 0.5 * x * (1.0 + std::tanh(u)) : x / (1.0 + std::exp(-2.0 * u));
    }
    case ActivationKind::kSilu: return x / (1.0 + std::exp(-x));
    case ActivationKind::kSquare: return x * x;
    case ActivationKind::kPolynomial: {
      double sum = 0.0;
      double power = 1.0;
      for (float c : f.coeffs) {
        sum += static_cast<double>(c) * power;
        power *= x;
      }
      return sum;
    }
    case ActivationKind::kSign: return x >= 0 ? 1.0 : -1.0;
    case ActivationKind::kHeaviside: return x >= 0 ? 1.0 : 0.0;
  }
  return std::nan("");
}

/// An upper bound of |f'| on [x - h, x + h] for small h (used to bound how an f32 rounding of the
/// argument moves f). 0 for the step functions: rounding never changes the sign of a nonzero value.
inline double reference_slope_bound(const Activation& f, double x) {
  switch (f.kind) {
    case ActivationKind::kIdentity:
    case ActivationKind::kRelu:
    case ActivationKind::kTanh: return 1.0;
    case ActivationKind::kLeakyRelu: return std::fmax(1.0, std::fabs(f.alpha));
    case ActivationKind::kSigmoid: return 0.25;
    case ActivationKind::kGeluErf:
    case ActivationKind::kGeluTanh:
    case ActivationKind::kSilu: return 1.2;
    case ActivationKind::kSquare: return 2.0 * std::fabs(x) + 1e-30;
    case ActivationKind::kPolynomial: {
      double slope = 0.0;
      for (std::size_t i = 1; i < f.coeffs.size(); ++i) {
        slope += static_cast<double>(i) * std::fabs(f.coeffs[i]) * std::pow(std::fabs(x) + 1e-3, i - 1);
      }
      return slope;
    }
    case ActivationKind::kSign:
    case ActivationKind::kHeaviside: return 0.0;
  }
  return 0.0;
}

}  // namespace quarks::test
