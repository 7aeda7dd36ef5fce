// Comparison helpers shared by the ONNX tests.
#pragma once

#include <cmath>
#include <string>

#include "quarks/tensor.hpp"

namespace quarks::testing {

/// Element i of an f32, i64 or bool tensor as a double.
inline double element(const Tensor& t, std::int64_t i) {
  switch (t.dtype()) {
    case DType::kF32: return t.f32()[i];
    case DType::kI64: return static_cast<double>(t.i64()[i]);
    case DType::kBool: return t.boolean()[i];
    case DType::kBF16: break;
  }
  return NAN;
}

struct Mismatch {
  bool ok = true;
  std::string message;
};

/// numpy.testing.assert_allclose semantics: |actual - expected| <= atol + rtol·|expected|, NaN
/// matching NaN, infinities matching exactly; shapes must be equal.
inline Mismatch all_close(const Tensor& actual, const Tensor& expected, double rtol, double atol) {
  if (!(actual.shape() == expected.shape())) {
    return {false, "shape " + actual.shape().to_string() + " != expected " + expected.shape().to_string()};
  }
  for (std::int64_t i = 0; i < expected.numel(); ++i) {
    const double a = element(actual, i), e = element(expected, i);
    if (std::isnan(e) && std::isnan(a)) continue;
    if (std::isinf(e) && a == e) continue;
    if (!(std::abs(a - e) <= atol + rtol * std::abs(e))) {
      return {false, "element " + std::to_string(i) + ": " + std::to_string(a) + " != expected " + std::to_string(e) +
                         " (rtol " + std::to_string(rtol) + ", atol " + std::to_string(atol) + ")"};
    }
  }
  return {};
}

/// Largest |actual - expected| divided by max |expected| (the "error relative to the output's scale").
inline double scaled_error(const Tensor& actual, const Tensor& expected) {
  double scale = 0, err = 0;
  for (std::int64_t i = 0; i < expected.numel(); ++i) scale = std::max(scale, std::abs(element(expected, i)));
  for (std::int64_t i = 0; i < expected.numel(); ++i)
    err = std::max(err, std::abs(element(actual, i) - element(expected, i)));
  return scale > 0 ? err / scale : err;
}

}  // namespace quarks::testing
