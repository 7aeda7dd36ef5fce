// Highway-vectorised activation, multiplex and output_gate kernels (see activation_kernels.hpp), compiled
// once per target through HWY_TARGET_INCLUDE. The activation kind is resolved once per call
// (VisitActivation), so each loop below is instantiated per kind with the math inlined.
#include "ops/activation/activation_kernels.hpp"

#include <algorithm>
#include <string>

#include "quarks/error.hpp"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "ops/activation/activation_kernels.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep

#include "hwy/highway.h"
#include "ops/activation/activation_math-inl.h"
#include "ops/elementwise/elementwise_loop-inl.h"

HWY_BEFORE_NAMESPACE();
namespace quarks::ops::HWY_NAMESPACE {
namespace {

// output_gate with two non-identity functions works through a stack buffer of g(s2) this long: 4 KiB,
// so it stays in L1 between the two passes and the memory traffic is that of one fused pass, while
// only 2×12 loops are instantiated instead of one per (f, g) pair.
constexpr std::size_t kGateChunk = 1024;

// y[i] = act(x[i]) · m[i].
template <class Act>
void ScaledLoop(const Act& act, const float* x, const float* m, float* y, std::size_t n) {
  ForEachVector(
      y, n, [&](auto d, auto xv, auto mv) { return hn::Mul(act(d, xv), mv); }, Run{x}, Run{m});
}

}  // namespace

void ActivationImpl(const Activation& f, const float* x, float* y, std::size_t n) {
  VisitActivation(f, [&](const auto& act) { ForEachVector(y, n, act, Run{x}); });
}

void MultiplexImpl(const Activation& f, const float* s, const float* a, std::size_t a_stride, float lambda, float* y,
                   std::size_t n) {
  // The broadcast attention value is read only when n > 0: with n == 0 the pointer may be null.
  if (n == 0) return;
  VisitActivation(f, [&](const auto& act) {
    const auto multiplexed = [&](auto d, auto sv, auto av) { return act(d, hn::MulAdd(hn::Set(d, lambda), av, sv)); };
    if (a_stride == 1) {
      ForEachVector(y, n, multiplexed, Run{s}, Run{a});
    } else {
      ForEachVector(y, n, multiplexed, Run{s}, Broadcast{*a});
    }
  });
}

void OutputGateImpl(const Activation& f, const Activation& g, const float* s1, const float* s2, float* y,
                    std::size_t n) {
  // The GLU family (f or g identity) runs as one fused pass; f(s1)·g(s2) = g(s2)·f(s1) exactly.
  if (f.kind == ActivationKind::kIdentity) {
    VisitActivation(g, [&](const auto& act) { ScaledLoop(act, s2, s1, y, n); });
    return;
  }
  if (g.kind == ActivationKind::kIdentity) {
    VisitActivation(f, [&](const auto& act) { ScaledLoop(act, s1, s2, y, n); });
    return;
  }
  // Chunk by chunk: g(s2) into the buffer, then y = f(s1)·buffer. s2's chunk is consumed before y's
  // chunk is written, so y may alias s1 or s2.
  HWY_ALIGN float gate[kGateChunk];
  for (std::size_t begin = 0; begin < n; begin += kGateChunk) {
    const std::size_t len = std::min(kGateChunk, n - begin);
    VisitActivation(g, [&](const auto& act) { ForEachVector(gate, len, act, Run{s2 + begin}); });
    VisitActivation(f, [&](const auto& act) { ScaledLoop(act, s1 + begin, gate, y + begin, len); });
  }
}

}  // namespace quarks::ops::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace quarks::ops {

HWY_EXPORT(ActivationImpl);
HWY_EXPORT(MultiplexImpl);
HWY_EXPORT(OutputGateImpl);

void validate_activation(const Activation& f, const char* op) {
  const int kind = static_cast<int>(f.kind);
  if (kind < 0 || kind >= kActivationKindCount) {
    throw Error(ErrorCode::kInvalidArgument, std::string(op) + ": unknown activation kind " + std::to_string(kind));
  }
  if (f.kind == ActivationKind::kPolynomial && f.coeffs.size() > 16) {
    throw Error(ErrorCode::kInvalidArgument, std::string(op) + ": polynomial activation has " +
                                                 std::to_string(f.coeffs.size()) +
                                                 " coefficients, at most 16 are supported");
  }
}

void activation(const Activation& f, const float* x, float* y, std::size_t n) {
  validate_activation(f, "activation");
  HWY_DYNAMIC_DISPATCH(ActivationImpl)(f, x, y, n);
}

void multiplex(const Activation& f, const float* s, const float* a, std::size_t a_stride, float lambda, float* y,
               std::size_t n) {
  validate_activation(f, "multiplex");
  if (a_stride > 1) {
    throw Error(ErrorCode::kInvalidArgument,
                "multiplex: attention stride must be 0 (broadcast) or 1, got " + std::to_string(a_stride));
  }
  HWY_DYNAMIC_DISPATCH(MultiplexImpl)(f, s, a, a_stride, lambda, y, n);
}

void output_gate(const Activation& f, const Activation& g, const float* s1, const float* s2, float* y, std::size_t n) {
  validate_activation(f, "output_gate (f)");
  validate_activation(g, "output_gate (g)");
  HWY_DYNAMIC_DISPATCH(OutputGateImpl)(f, g, s1, s2, y, n);
}

}  // namespace quarks::ops
#endif  // HWY_ONCE
