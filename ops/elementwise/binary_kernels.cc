// Highway-vectorised binary elementwise ops (see binary_kernels.hpp). Compiled once per target through
// HWY_TARGET_INCLUDE; the op and the operand strides are resolved once per call into one loop
// instantiation per (op, stride pair), so the inner loop holds just the loads, the arithmetic and the
// store. Pow is the exception (see PowLoop).
#include "ops/elementwise/binary_kernels.hpp"

#include <cmath>
#include <limits>
#include <string>

#include "quarks/error.hpp"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "ops/elementwise/binary_kernels.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep

#include "hwy/highway.h"
#include "ops/elementwise/elementwise_loop-inl.h"

HWY_BEFORE_NAMESPACE();
namespace quarks::ops::HWY_NAMESPACE {
namespace {

// IEEE arithmetic as the hardware does it: division by ±0 gives ±inf or NaN, NaN propagates.
struct AddOp {
  template <class D, class V>
  HWY_INLINE V operator()(D /*d*/, V a, V b) const {
    return hn::Add(a, b);
  }
};
struct SubOp {
  template <class D, class V>
  HWY_INLINE V operator()(D /*d*/, V a, V b) const {
    return hn::Sub(a, b);
  }
};
struct MulOp {
  template <class D, class V>
  HWY_INLINE V operator()(D /*d*/, V a, V b) const {
    return hn::Mul(a, b);
  }
};
struct DivOp {
  template <class D, class V>
  HWY_INLINE V operator()(D /*d*/, V a, V b) const {
    return hn::Div(a, b);
  }
};

// IEEE 754-2019 maximum: NaN if either is NaN; of +0 and -0, +0 (the AND of two equal values' bits
// clears the sign unless both are negative). Max() alone leaves both choices to the target.
struct MaxOp {
  template <class D, class V>
  HWY_INLINE V operator()(D /*d*/, V a, V b) const {
    const V larger = hn::IfThenElse(hn::Gt(a, b), a, b);  // b when equal or unordered
    const V r = hn::IfThenElse(hn::Eq(a, b), hn::And(a, b), larger);
    return hn::IfThenElse(hn::IsNaN(a), a, r);
  }
};
// IEEE 754-2019 minimum: NaN if either is NaN; of +0 and -0, -0 (the OR of the bits).
struct MinOp {
  template <class D, class V>
  HWY_INLINE V operator()(D /*d*/, V a, V b) const {
    const V smaller = hn::IfThenElse(hn::Lt(a, b), a, b);  // b when equal or unordered
    const V r = hn::IfThenElse(hn::Eq(a, b), hn::Or(a, b), smaller);
    return hn::IfThenElse(hn::IsNaN(a), a, r);
  }
};
// a^2 = a·a, which is the correctly rounded std::pow(a, 2) for every a (±0, ±inf and NaN included).
struct SquareOp {
  template <class D, class V>
  HWY_INLINE V operator()(D /*d*/, V a, V /*b*/) const {
    return hn::Mul(a, a);
  }
};
// a^0.5: the correctly rounded square root, except that pow gives +0 for -0 and +inf for -inf.
struct SqrtPowOp {
  template <class D, class V>
  HWY_INLINE V operator()(D d, V a, V /*b*/) const {
    const V root = hn::Abs(hn::Sqrt(a));  // Abs turns sqrt(-0) = -0 into +0; NaN stays NaN
    return hn::IfThenElse(hn::Eq(a, hn::Set(d, -std::numeric_limits<float>::infinity())), hn::Neg(a), root);
  }
};

template <class Op>
void BinaryLoop(const Op& op, const float* a, std::size_t a_stride, const float* b, std::size_t b_stride, float* y,
                std::size_t n) {
  // Broadcast operands are read only when n > 0: with n == 0 the pointers may be null or dangling.
  if (n == 0) return;
  if (a_stride == 1 && b_stride == 1) {
    ForEachVector(y, n, op, Run{a}, Run{b});
  } else if (a_stride == 1) {
    ForEachVector(y, n, op, Run{a}, Broadcast{*b});
  } else if (b_stride == 1) {
    ForEachVector(y, n, op, Broadcast{*a}, Run{b});
  } else {
    ForEachVector(y, n, op, Broadcast{*a}, Broadcast{*b});
  }
}

// Pow is a scalar std::pow loop: a vector pow with pow's accuracy (exp(b·log a) in f32 loses
// |b·log a| ulps, so it needs an extended-precision log) and all its special cases is not worth it
// for how rarely pow is on a hot path. The two exponents models use most, 2 and 0.5 as a broadcast
// constant, take vector paths that are exact (correctly rounded).
void PowLoop(const float* a, std::size_t a_stride, const float* b, std::size_t b_stride, float* y, std::size_t n) {
  if (n == 0) return;
  if (b_stride == 0 && a_stride == 1 && *b == 2.0f) return ForEachVector(y, n, SquareOp(), Run{a}, Broadcast{*b});
  if (b_stride == 0 && a_stride == 1 && *b == 0.5f) return ForEachVector(y, n, SqrtPowOp(), Run{a}, Broadcast{*b});
  // Element i is read before it is written, so y may alias a or b.
  for (std::size_t i = 0; i < n; ++i) y[i] = std::pow(a[i * a_stride], b[i * b_stride]);
}

}  // namespace

void BinaryImpl(BinaryOp op, const float* a, std::size_t a_stride, const float* b, std::size_t b_stride, float* y,
                std::size_t n) {
  switch (op) {
    case BinaryOp::kAdd: return BinaryLoop(AddOp(), a, a_stride, b, b_stride, y, n);
    case BinaryOp::kSub: return BinaryLoop(SubOp(), a, a_stride, b, b_stride, y, n);
    case BinaryOp::kMul: return BinaryLoop(MulOp(), a, a_stride, b, b_stride, y, n);
    case BinaryOp::kDiv: return BinaryLoop(DivOp(), a, a_stride, b, b_stride, y, n);
    case BinaryOp::kPow: return PowLoop(a, a_stride, b, b_stride, y, n);
    case BinaryOp::kMax: return BinaryLoop(MaxOp(), a, a_stride, b, b_stride, y, n);
    case BinaryOp::kMin: return BinaryLoop(MinOp(), a, a_stride, b, b_stride, y, n);
  }
}

}  // namespace quarks::ops::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace quarks::ops {

HWY_EXPORT(BinaryImpl);

void binary(BinaryOp op, const float* a, std::size_t a_stride, const float* b, std::size_t b_stride, float* y,
            std::size_t n) {
  if (a_stride > 1 || b_stride > 1) {
    throw Error(ErrorCode::kInvalidArgument, "elementwise binary op: operand strides must be 0 or 1, got a_stride " +
                                                 std::to_string(a_stride) + " and b_stride " +
                                                 std::to_string(b_stride));
  }
  if (static_cast<int>(op) < static_cast<int>(BinaryOp::kAdd) ||
      static_cast<int>(op) > static_cast<int>(BinaryOp::kMin)) {
    throw Error(ErrorCode::kInvalidArgument,
                "elementwise binary op: unknown BinaryOp value " + std::to_string(static_cast<int>(op)));
  }
  HWY_DYNAMIC_DISPATCH(BinaryImpl)(op, a, a_stride, b, b_stride, y, n);
}

}  // namespace quarks::ops
#endif  // HWY_ONCE
