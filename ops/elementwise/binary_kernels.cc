// Highway-vectorised binary elementwise ops (see binary_kernels.hpp). Compiled once per target through
// HWY_TARGET_INCLUDE; the op and the operand strides are resolved once per call into one of 16 loop
// instantiations, so the inner loop holds just the loads, the arithmetic and the store.
#include "ops/elementwise/binary_kernels.hpp"

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

}  // namespace

void BinaryImpl(BinaryOp op, const float* a, std::size_t a_stride, const float* b, std::size_t b_stride, float* y,
                std::size_t n) {
  switch (op) {
    case BinaryOp::kAdd: return BinaryLoop(AddOp(), a, a_stride, b, b_stride, y, n);
    case BinaryOp::kSub: return BinaryLoop(SubOp(), a, a_stride, b, b_stride, y, n);
    case BinaryOp::kMul: return BinaryLoop(MulOp(), a, a_stride, b, b_stride, y, n);
    case BinaryOp::kDiv: return BinaryLoop(DivOp(), a, a_stride, b, b_stride, y, n);
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
  if (op != BinaryOp::kAdd && op != BinaryOp::kSub && op != BinaryOp::kMul && op != BinaryOp::kDiv) {
    throw Error(ErrorCode::kInvalidArgument,
                "elementwise binary op: unknown BinaryOp value " + std::to_string(static_cast<int>(op)));
  }
  HWY_DYNAMIC_DISPATCH(BinaryImpl)(op, a, a_stride, b, b_stride, y, n);
}

}  // namespace quarks::ops
#endif  // HWY_ONCE
