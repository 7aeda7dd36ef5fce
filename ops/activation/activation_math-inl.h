// Per-target vector math of the activation functions, for every kernel that applies an Activation:
// the activation family itself and, e.g., the dense kernels on their output tiles.
//
// Usage (inside a file compiled once per Highway target via HWY_TARGET_INCLUDE + hwy/foreach_target.h):
//   #include "ops/activation/activation_math-inl.h"
//   ... in namespace quarks::ops::HWY_NAMESPACE:
//   VisitActivation(f, [&](const auto& act) { /* loop calling act(d, v) */ });   // or
//   ActivationInPlace(f, tile_row, n);
// VisitActivation resolves the kind once and hands a functor to a generic lambda, so the loop that the
// lambda contains is instantiated once per kind with the math inlined: no per-element switch.
//
// Accuracy (f32, measured against a double reference by tests/ops/activation): sigmoid, tanh, silu,
// gelu (erf and tanh forms) are within 1e-6 absolute on [-20, 20]. sigmoid, silu and both gelus are
// computed from their lower tail Q (e.g. σ(-|x|)) as x·Q for x < 0 and x - x·Q for x >= 0, so they are
// also accurate *relative* to the result in the tails (no 1 - Q cancellation), reach exactly x for large
// positive x and ±0 for large negative x, and give the right limits at ±inf. NaN in -> NaN out.

#if defined(QUARKS_OPS_ACTIVATION_ACTIVATION_MATH_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef QUARKS_OPS_ACTIVATION_ACTIVATION_MATH_INL_H_
#undef QUARKS_OPS_ACTIVATION_ACTIVATION_MATH_INL_H_
#else
#define QUARKS_OPS_ACTIVATION_ACTIVATION_MATH_INL_H_
#endif

#include <cfloat>
#include <cstddef>

#include "hwy/contrib/math/math-inl.h"
#include "hwy/highway.h"
#include "ops/elementwise/elementwise_loop-inl.h"
#include "quarks/activation.hpp"

HWY_BEFORE_NAMESPACE();
namespace quarks::ops::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

/// e^a for a <= 88 (including -inf), with results below 1.18e-38 (a < -87.33, just above the smallest
/// normal float FLT_MIN = e^-87.337) flushed to 0; NaN is not
/// preserved (callers that need it restore it). Relative error about 2 ulp.
///
/// Written here rather than taken from hwy/contrib/math's Exp because the activations are evaluated
/// in memory-bound kernels and Exp costs about twice the instructions (a two-step subnormal-capable
/// scaling and a float-to-int conversion): n = round(a/ln 2) by the 1.5·2^23 "magic number" addition,
/// which leaves n in the low mantissa bits; r = a - n·ln 2 in two parts (|r| <= ln2/2); e^r by its
/// Taylor polynomial of degree 7 (truncation < 6e-9 relative); 2^n added to the exponent field. The
/// argument is clamped to [-87.33, ...] first, so that 2^n·e^r is always a normal float and -inf or
/// huge magnitudes never reach the integer arithmetic; the flush then zeroes what lies below.
template <class D, class V>
HWY_INLINE V ExpFlushToZero(D d, V a) {
  const hn::RebindToSigned<D> di;
  const V lowest = hn::Set(d, -87.33f);
  const V magic = hn::Set(d, 12582912.0f);  // 1.5·2^23
  const V clamped = hn::Max(a, lowest);
  const V shifted = hn::MulAdd(clamped, hn::Set(d, 1.44269504088896341f), magic);
  const V n = hn::Sub(shifted, magic);
  // ln 2 = 0.693145751953125 (exact in few bits, so n·part0 is exact) + 1.428606765330187e-6.
  V r = hn::MulAdd(n, hn::Set(d, -0.693145751953125f), clamped);
  r = hn::MulAdd(n, hn::Set(d, -1.428606765330187045e-6f), r);
  V p = hn::Set(d, 1.0f / 5040.0f);
  p = hn::MulAdd(p, r, hn::Set(d, 1.0f / 720.0f));
  p = hn::MulAdd(p, r, hn::Set(d, 1.0f / 120.0f));
  p = hn::MulAdd(p, r, hn::Set(d, 1.0f / 24.0f));
  p = hn::MulAdd(p, r, hn::Set(d, 1.0f / 6.0f));
  p = hn::MulAdd(p, r, hn::Set(d, 0.5f));
  p = hn::MulAdd(p, r, hn::Set(d, 1.0f));
  p = hn::MulAdd(p, r, hn::Set(d, 1.0f));
  // The low bits of `shifted` hold 2^22 + n; shifted left by 23 that is n in the exponent field (the
  // 2^22 term leaves the 32-bit lane).
  const auto scaled = hn::Add(hn::BitCast(di, p), hn::ShiftLeft<23>(hn::BitCast(di, shifted)));
  return hn::IfThenZeroElse(hn::Lt(a, lowest), hn::BitCast(d, scaled));
}

/// 1/v to about 1 ulp: the hardware estimate (12 bits on AVX2, 14 on AVX-512) refined by one Newton
/// step, which is cheaper than a division in the memory-bound kernels.
template <class D, class V>
HWY_INLINE V Reciprocal(D d, V v) {
  const V estimate = hn::ApproximateReciprocal(v);
  return hn::MulAdd(hn::NegMulAdd(v, estimate, hn::Set(d, 1.0f)), estimate, estimate);
}

/// σ(-|x|) = e/(1+e) with e = e^-|x|: the lower tail of the logistic function, accurate relative to
/// its value (a few ulp) down to 1.18e-38, 0 below.
template <class D, class V>
HWY_INLINE V LogisticLowerTail(D d, V x) {
  const V e = ExpFlushToZero(d, hn::Neg(hn::Abs(x)));
  return hn::Mul(e, Reciprocal(d, hn::Add(hn::Set(d, 1.0f), e)));
}

/// erfc(z) for z >= 0 (including +inf; 0 where erfc(z) < FLT_MIN), relative error about 1e-7 in double
/// arithmetic and a few 1e-7 in f32 for moderate z; for deep tails the f32 rounding of the exponent -z² + P(t) (about
/// 80 at the edge of the f32 range) dominates, giving relative errors up to ~1e-5 where erfc < 1e-30. Approximation:
/// erfc(z) ≈ t·exp(-z² + P(t)), t = 1/(1 + z/2), P a degree-9 Chebyshev-fitted polynomial (W. H. Press et al.,
/// Numerical Recipes in C, 2nd ed., §6.2, "erfcc"; fractional error below 1.2e-7 for all z >= 0).
template <class D, class V>
HWY_INLINE V ErfcNonNegative(D d, V z) {
  const V t = hn::Div(hn::Set(d, 2.0f), hn::Add(hn::Set(d, 2.0f), z));
  V p = hn::Set(d, 0.17087277f);
  p = hn::MulAdd(p, t, hn::Set(d, -0.82215223f));
  p = hn::MulAdd(p, t, hn::Set(d, 1.48851587f));
  p = hn::MulAdd(p, t, hn::Set(d, -1.13520398f));
  p = hn::MulAdd(p, t, hn::Set(d, 0.27886807f));
  p = hn::MulAdd(p, t, hn::Set(d, -0.18628806f));
  p = hn::MulAdd(p, t, hn::Set(d, 0.09678418f));
  p = hn::MulAdd(p, t, hn::Set(d, 0.37409196f));
  p = hn::MulAdd(p, t, hn::Set(d, 1.00002368f));
  p = hn::MulAdd(p, t, hn::Set(d, -1.26551223f));
  return hn::Mul(t, ExpFlushToZero(d, hn::NegMulAdd(z, z, p)));
}

/// erf(x), relative error a few 1e-7. |x| < 1/2 uses the Taylor series of erf up to x^11 (truncation
/// below 3e-8 relative there), which avoids the cancellation of 1 - erfc(x) for small x; elsewhere
/// erf(x) = sign(x)·(1 - erfc(|x|)).
template <class D, class V>
HWY_INLINE V Erf(D d, V x) {
  const V z = hn::Abs(x);
  const V z2 = hn::Mul(x, x);
  // 2/√π · Σ_k (-1)^k x^(2k+1) / (k!·(2k+1)), k = 0..5.
  V series = hn::Set(d, static_cast<float>(1.1283791670955126 * -1.0 / 1320.0));
  series = hn::MulAdd(series, z2, hn::Set(d, static_cast<float>(1.1283791670955126 / 216.0)));
  series = hn::MulAdd(series, z2, hn::Set(d, static_cast<float>(1.1283791670955126 * -1.0 / 42.0)));
  series = hn::MulAdd(series, z2, hn::Set(d, static_cast<float>(1.1283791670955126 / 10.0)));
  series = hn::MulAdd(series, z2, hn::Set(d, static_cast<float>(1.1283791670955126 * -1.0 / 3.0)));
  series = hn::MulAdd(series, z2, hn::Set(d, 1.1283791670955126f));
  series = hn::Mul(series, x);
  const V tail = hn::CopySign(hn::Sub(hn::Set(d, 1.0f), ErfcNonNegative(d, z)), x);
  // NaN fails the comparison and goes to the tail branch, where it propagates through ErfcNonNegative's
  // t and CopySign.
  return hn::IfThenElse(hn::Lt(z, hn::Set(d, 0.5f)), series, tail);
}

/// x·P(x) where P(x) = Q(|x|) for x < 0 and 1 - Q(|x|) for x >= 0, given the lower tail q = Q(|x|) in
/// [0, 1/2] (Q = σ(-|x|) gives silu, Φ(-|x|) gives gelu). In x - x·q the correction x·q is rounded at
/// its own (small) scale, so the result is close to correctly rounded where it is ≈ x, and x·q keeps
/// the relative accuracy of q in the negative tail. ±inf are clamped to ±FLT_MAX inside the product: q is exactly 0
/// there and inf·0 would give NaN instead of the limits inf (x → +inf) and 0 (x → -inf). NaN x propagates through the x
/// >= 0 branch.
template <class D, class V>
HWY_INLINE V TimesUpperProbability(D d, V x, V q) {
  const V finite_x = hn::Min(hn::Max(x, hn::Set(d, -FLT_MAX)), hn::Set(d, FLT_MAX));
  return hn::IfThenElse(hn::Lt(x, hn::Zero(d)), hn::Mul(finite_x, q), hn::NegMulAdd(finite_x, q, x));
}

/// σ(x) = 1/(1 + e^-x).
template <class D, class V>
HWY_INLINE V Sigmoid(D d, V x) {
  const V q = LogisticLowerTail(d, x);
  const V upper = hn::Sub(hn::Set(d, 1.0f), q);
  // The exponential loses NaN, so it is restored explicitly.
  return hn::IfThenElse(hn::IsNaN(x), x, hn::IfThenElse(hn::Lt(x, hn::Zero(d)), q, upper));
}

/// silu(x) = x·σ(x).
template <class D, class V>
HWY_INLINE V Silu(D d, V x) {
  return TimesUpperProbability(d, x, LogisticLowerTail(d, x));
}

/// gelu(x) = x·Φ(x) = x/2·(1 + erf(x/√2)), with Φ(-|x|) = erfc(|x|/√2)/2.
template <class D, class V>
HWY_INLINE V GeluErf(D d, V x) {
  const V z = hn::Mul(hn::Abs(x), hn::Set(d, 0.70710678118654752f));
  return TimesUpperProbability(d, x, hn::Mul(hn::Set(d, 0.5f), ErfcNonNegative(d, z)));
}

/// gelu_tanh(x) = x/2·(1 + tanh(u)), u = √(2/π)·(x + 0.044715x³). Since (1 + tanh(u))/2 = σ(2u), this is
/// x·σ(v) with v = 2u = x·(√(8/π) + √(8/π)·0.044715·x²), evaluated like silu.
template <class D, class V>
HWY_INLINE V GeluTanh(D d, V x) {
  const V x2 = hn::Mul(x, x);
  const V v = hn::Mul(x, hn::MulAdd(hn::Set(d, 0.071354816272600f), x2, hn::Set(d, 1.5957691216057308f)));
  return TimesUpperProbability(d, x, LogisticLowerTail(d, v));
}

// One functor per ActivationKind: `act(d, v)` applies it to a vector. Parameters (alpha, coefficients)
// are members, so the loop sees them as invariants.

struct IdentityActivation {
  template <class D, class V>
  HWY_INLINE V operator()(D /*d*/, V x) const {
    return x;
  }
};

/// max(x, 0), written as a select so that NaN stays NaN on every target.
struct ReluActivation {
  template <class D, class V>
  HWY_INLINE V operator()(D d, V x) const {
    return hn::IfThenZeroElse(hn::Lt(x, hn::Zero(d)), x);
  }
};

struct LeakyReluActivation {
  float alpha;
  template <class D, class V>
  HWY_INLINE V operator()(D d, V x) const {
    return hn::IfThenElse(hn::Lt(x, hn::Zero(d)), hn::Mul(hn::Set(d, alpha), x), x);
  }
};

struct SigmoidActivation {
  template <class D, class V>
  HWY_INLINE V operator()(D d, V x) const {
    return Sigmoid(d, x);
  }
};

/// Highway's Tanh (expm1-based; exactly ±1 beyond |x| ≈ 18.7, NaN propagates).
struct TanhActivation {
  template <class D, class V>
  HWY_INLINE V operator()(D d, V x) const {
    return hn::Tanh(d, x);
  }
};

struct GeluErfActivation {
  template <class D, class V>
  HWY_INLINE V operator()(D d, V x) const {
    return GeluErf(d, x);
  }
};

struct GeluTanhActivation {
  template <class D, class V>
  HWY_INLINE V operator()(D d, V x) const {
    return GeluTanh(d, x);
  }
};

struct SiluActivation {
  template <class D, class V>
  HWY_INLINE V operator()(D d, V x) const {
    return Silu(d, x);
  }
};

struct SquareActivation {
  template <class D, class V>
  HWY_INLINE V operator()(D /*d*/, V x) const {
    return hn::Mul(x, x);
  }
};

/// Σ_i coeffs[i]·x^i by Horner's rule (one FMA per coefficient). An empty polynomial is 0, a
/// constant one ignores x (IEEE: NaN^0 = 1).
struct PolynomialActivation {
  const float* coeffs;
  std::size_t count;
  template <class D, class V>
  HWY_INLINE V operator()(D d, V x) const {
    if (count == 0) return hn::Zero(d);
    V acc = hn::Set(d, coeffs[count - 1]);
    for (std::size_t i = count - 1; i-- > 0;) acc = hn::MulAdd(acc, x, hn::Set(d, coeffs[i]));
    return acc;
  }
};

/// +1 for x >= 0 (including -0), -1 for x < 0, NaN for NaN.
struct SignActivation {
  template <class D, class V>
  HWY_INLINE V operator()(D d, V x) const {
    const V sign = hn::IfThenElse(hn::Lt(x, hn::Zero(d)), hn::Set(d, -1.0f), hn::Set(d, 1.0f));
    return hn::IfThenElse(hn::IsNaN(x), x, sign);
  }
};

/// 1 for x >= 0 (including -0), 0 for x < 0, NaN for NaN.
struct HeavisideActivation {
  template <class D, class V>
  HWY_INLINE V operator()(D d, V x) const {
    const V step = hn::IfThenZeroElse(hn::Lt(x, hn::Zero(d)), hn::Set(d, 1.0f));
    return hn::IfThenElse(hn::IsNaN(x), x, step);
  }
};

/// Calls visit(act) with the functor of f.kind. Precondition: f passed validate_activation()
/// (ops/activation/activation_kernels.hpp), so the kind is known and a polynomial has at most 16
/// coefficients; for any other value nothing is called.
template <class Visitor>
HWY_INLINE void VisitActivation(const Activation& f, const Visitor& visit) {
  switch (f.kind) {
    case ActivationKind::kIdentity: return visit(IdentityActivation());
    case ActivationKind::kRelu: return visit(ReluActivation());
    case ActivationKind::kLeakyRelu: return visit(LeakyReluActivation{f.alpha});
    case ActivationKind::kSigmoid: return visit(SigmoidActivation());
    case ActivationKind::kTanh: return visit(TanhActivation());
    case ActivationKind::kGeluErf: return visit(GeluErfActivation());
    case ActivationKind::kGeluTanh: return visit(GeluTanhActivation());
    case ActivationKind::kSilu: return visit(SiluActivation());
    case ActivationKind::kSquare: return visit(SquareActivation());
    case ActivationKind::kPolynomial: return visit(PolynomialActivation{f.coeffs.data(), f.coeffs.size()});
    case ActivationKind::kSign: return visit(SignActivation());
    case ActivationKind::kHeaviside: return visit(HeavisideActivation());
  }
}

/// y[i] = f(y[i]) for i in [0, n): e.g. the activation epilogue of an output tile row that is still
/// in cache. Same precondition as VisitActivation.
HWY_INLINE void ActivationInPlace(const Activation& f, float* y, std::size_t n) {
  VisitActivation(f, [&](const auto& act) { ForEachVector(y, n, act, Run{y}); });
}

}  // namespace quarks::ops::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#endif  // QUARKS_OPS_ACTIVATION_ACTIVATION_MATH_INL_H_ toggle
