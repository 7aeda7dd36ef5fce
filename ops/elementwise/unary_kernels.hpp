// Highway-vectorised elementwise f32 functions. Same contract as binary_kernels.hpp: single-threaded
// over the given range, in place allowed (y == x), any n including 0.
//
// Special values follow C's <math.h>: exp(-inf) = 0, exp(+inf) = +inf, exp overflows to +inf above
// 88.72; log(±0) = -inf, log(x < 0) = NaN, log(+inf) = +inf; sqrt(-0) = -0, sqrt(x < 0) = NaN;
// reciprocal(±0) = ±inf; erf(±inf) = ±1; neg and abs only change the sign bit. NaN in -> NaN out for
// every op (clip and hard_sigmoid included).
//
// Accuracy against a double reference, asserted by tests/ops/elementwise/unary_kernels_test.cc: neg,
// abs, sqrt, reciprocal and clip are exact (correctly rounded); exp and log within 2 ulp (Highway's Exp
// and Log; measured 1.01 and 0.92 ulp), subnormal exp results within 2 units of the subnormal
// spacing; erf within 3e-7 absolute and 1e-6 relative (the erf of ops/activation/activation_math-inl.h;
// measured 1.4e-7); hard_sigmoid within the rounding of alpha·x + beta (one rounding with FMA, two
// without).
#pragma once

#include <cstddef>

namespace quarks::ops {

enum class UnaryOp { kNeg, kAbs, kExp, kLog, kSqrt, kReciprocal, kErf, kClip, kHardSigmoid };

/// y[i] = op(x[i]). `a` and `b` are the parameters of kClip (lo, hi: y = min(max(x, lo), hi), with
/// lo <= hi) and of kHardSigmoid (alpha, beta: y = max(0, min(1, alpha·x + beta))); other ops
/// ignore them. Throws Error(kInvalidArgument) for an unknown op.
void unary(UnaryOp op, float a, float b, const float* x, float* y, std::size_t n);

}  // namespace quarks::ops
