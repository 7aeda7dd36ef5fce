// Highway-vectorised elementwise arithmetic (add, sub, mul, div, pow, max, min). Same contract as
// ops/activation/activation_kernels.hpp: single-threaded over the given range, in-place allowed,
// any n including 0, IEEE special values.
//
// kPow is std::pow (C99 pow semantics: (-2)^2 = 4, (-2)^0.5 = NaN, x^0 = 1 even for NaN x). kMax and
// kMin are IEEE 754-2019 maximum and minimum: NaN if either operand is NaN, and -0 < +0.
#pragma once

#include <cstddef>

namespace quarks::ops {

enum class BinaryOp { kAdd, kSub, kMul, kDiv, kPow, kMax, kMin };

/// y[i] = a[i * a_stride] (op) b[i * b_stride]; each stride is 1 or 0 (broadcast one value).
void binary(BinaryOp op, const float* a, std::size_t a_stride, const float* b, std::size_t b_stride, float* y,
            std::size_t n);

}  // namespace quarks::ops
