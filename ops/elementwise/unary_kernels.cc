// Highway-vectorised unary elementwise ops (see unary_kernels.hpp), compiled once per target through
// HWY_TARGET_INCLUDE. The op is resolved once per call into one ForEachVector instantiation with the
// math inlined. exp and log are hwy/contrib/math's Exp and Log with the special values they leave out
// of range restored; erf is the one the GELU activation uses (ops/activation/activation_math-inl.h).
#include "ops/elementwise/unary_kernels.hpp"

#include <limits>
#include <string>

#include "quarks/error.hpp"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "ops/elementwise/unary_kernels.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep

#include "hwy/contrib/math/math-inl.h"
#include "hwy/highway.h"
#include "ops/activation/activation_math-inl.h"
#include "ops/elementwise/elementwise_loop-inl.h"

HWY_BEFORE_NAMESPACE();
namespace quarks::ops::HWY_NAMESPACE {
namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();

struct NegOp {
  template <class D, class V>
  HWY_INLINE V operator()(D /*d*/, V x) const {
    return hn::Neg(x);
  }
};

struct AbsOp {
  template <class D, class V>
  HWY_INLINE V operator()(D /*d*/, V x) const {
    return hn::Abs(x);
  }
};

// Highway's Exp is valid on [-FLT_MAX, 104] and its float-to-int step must not see NaN or huge values,
// so the argument is clamped to [-105, 89] first (e^-105 is 0 in f32 and Exp returns 0 below -104;
// e^89 overflows to +inf inside Exp as e^88.73 already does) and NaN is restored afterwards.
struct ExpOp {
  template <class D, class V>
  HWY_INLINE V operator()(D d, V x) const {
    const auto nan = hn::IsNaN(x);
    const V safe = hn::Min(hn::Max(hn::IfThenZeroElse(nan, x), hn::Set(d, -105.0f)), hn::Set(d, 89.0f));
    return hn::IfThenElse(nan, x, hn::Exp(d, safe));
  }
};

// Highway's Log is valid on (0, FLT_MAX] (subnormals included); the rest is set explicitly.
struct LogOp {
  template <class D, class V>
  HWY_INLINE V operator()(D d, V x) const {
    const V zero = hn::Zero(d);
    V r = hn::Log(d, x);
    r = hn::IfThenElse(hn::Eq(x, hn::Set(d, kInf)), x, r);
    r = hn::IfThenElse(hn::Eq(x, zero), hn::Set(d, -kInf), r);  // both zeros
    r = hn::IfThenElse(hn::Lt(x, zero), hn::Set(d, std::numeric_limits<float>::quiet_NaN()), r);
    return hn::IfThenElse(hn::IsNaN(x), x, r);
  }
};

// IEEE square root: correctly rounded, sqrt(-0) = -0, negative -> NaN.
struct SqrtOp {
  template <class D, class V>
  HWY_INLINE V operator()(D /*d*/, V x) const {
    return hn::Sqrt(x);
  }
};

// A true division (correctly rounded), not the refined hardware estimate of activation_math-inl.h,
// which is not correctly rounded and whose Newton step turns the estimate ±inf of 1/±0 into NaN.
struct ReciprocalOp {
  template <class D, class V>
  HWY_INLINE V operator()(D d, V x) const {
    return hn::Div(hn::Set(d, 1.0f), x);
  }
};

struct ErfOp {
  template <class D, class V>
  HWY_INLINE V operator()(D d, V x) const {
    return Erf(d, x);
  }
};

// min(max(x, lo), hi) as selects on comparisons, which are false for NaN: NaN stays NaN on every target
// (Min/Max would return either operand depending on the target).
template <class D, class V>
HWY_INLINE V ClampKeepNaN(D d, V x, float lo, float hi) {
  const V low = hn::Set(d, lo), high = hn::Set(d, hi);
  const V raised = hn::IfThenElse(hn::Lt(x, low), low, x);
  return hn::IfThenElse(hn::Gt(raised, high), high, raised);
}

struct ClipOp {
  float lo, hi;
  template <class D, class V>
  HWY_INLINE V operator()(D d, V x) const {
    return ClampKeepNaN(d, x, lo, hi);
  }
};

struct HardSigmoidOp {
  float alpha, beta;
  template <class D, class V>
  HWY_INLINE V operator()(D d, V x) const {
    return ClampKeepNaN(d, hn::MulAdd(hn::Set(d, alpha), x, hn::Set(d, beta)), 0.0f, 1.0f);
  }
};

}  // namespace

void UnaryImpl(UnaryOp op, float a, float b, const float* x, float* y, std::size_t n) {
  switch (op) {
    case UnaryOp::kNeg: return ForEachVector(y, n, NegOp(), Run{x});
    case UnaryOp::kAbs: return ForEachVector(y, n, AbsOp(), Run{x});
    case UnaryOp::kExp: return ForEachVector(y, n, ExpOp(), Run{x});
    case UnaryOp::kLog: return ForEachVector(y, n, LogOp(), Run{x});
    case UnaryOp::kSqrt: return ForEachVector(y, n, SqrtOp(), Run{x});
    case UnaryOp::kReciprocal: return ForEachVector(y, n, ReciprocalOp(), Run{x});
    case UnaryOp::kErf: return ForEachVector(y, n, ErfOp(), Run{x});
    case UnaryOp::kClip: return ForEachVector(y, n, ClipOp{a, b}, Run{x});
    case UnaryOp::kHardSigmoid: return ForEachVector(y, n, HardSigmoidOp{a, b}, Run{x});
  }
}

}  // namespace quarks::ops::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace quarks::ops {

HWY_EXPORT(UnaryImpl);

void unary(UnaryOp op, float a, float b, const float* x, float* y, std::size_t n) {
  if (static_cast<int>(op) < static_cast<int>(UnaryOp::kNeg) ||
      static_cast<int>(op) > static_cast<int>(UnaryOp::kHardSigmoid)) {
    throw Error(ErrorCode::kInvalidArgument,
                "elementwise unary op: unknown UnaryOp value " + std::to_string(static_cast<int>(op)));
  }
  HWY_DYNAMIC_DISPATCH(UnaryImpl)(op, a, b, x, y, n);
}

}  // namespace quarks::ops
#endif  // HWY_ONCE
