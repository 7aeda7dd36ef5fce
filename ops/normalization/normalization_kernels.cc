// Highway implementation of ops/normalization/normalization_kernels.hpp, compiled once per target and
// dispatched at run time (HWY_DYNAMIC_DISPATCH).
//
// Every kernel makes a small number of passes over a row that is expected to sit in L1/L2 (a row of a
// few thousand floats): reduce, then transform. Vector loops stop at the last full vector; the tail is
// handled one lane at a time (CappedTag<float, 1> where a vector op such as Exp is needed, plain scalar
// code otherwise), because Highway 1.0.3 has no LoadN/StoreN and its MaskedLoad is not tail-safe on SSE.

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "ops/normalization/normalization_kernels.cc"
#include <hwy/foreach_target.h>  // IWYU pragma: keep

#include <hwy/contrib/math/math-inl.h>
#include <hwy/highway.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <limits>
#include <string>

#include "ops/normalization/normalization_kernels.hpp"
#include "quarks/error.hpp"

HWY_BEFORE_NAMESPACE();
namespace quarks::ops {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

using DF = hn::ScalableTag<float>;
using D1 = hn::CappedTag<float, 1>;

constexpr float kInf = std::numeric_limits<float>::infinity();
constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

// Sums accumulate in f32 vectors over a bounded block and then add the block's partial sum in double, so
// that sums over 100k-element rows stay as accurate as over short ones. Each lane sees at most
// block / lanes additions (relative error <= that times 2^-24, far less on average); the blocks are sized
// so the horizontal reduction per block costs a few percent of the block's work.
constexpr std::size_t kExpBlock = 256;    // row softmax: elements per block (<= 64 additions per lane on SSE4)
constexpr std::size_t kColumnBlock = 32;  // column softmax: axis steps per block (one addition per column)
constexpr std::size_t kNormBlock = 1024;  // norm sums: elements per block; cheap passes, looser bound needed

// Rows whose largest deviation lies outside [2^-40, 2^54] are normalised in double: beyond 2^54 the f32
// squares summed over a block can overflow (2^108 * 1024 < FLT_MAX = 2^128), and below 2^-40 the squares
// (< 2^-80) lose precision to f32 subnormals, which matters when eps is 0.
constexpr float kMaxSafeDeviation = 0x1p54f;
constexpr float kMinSafeDeviation = 0x1p-40f;

// ---------------------------------------------------------------------------------------------------
// softmax / log_softmax over contiguous rows (inner == 1)

// Max of x[0, n) and whether any element is NaN (Max alone may drop a NaN, depending on the target).
HWY_INLINE float RowMax(const float* x, std::size_t n, bool* has_nan) {
  const DF d;
  const std::size_t lanes = hn::Lanes(d);
  auto vmax = hn::Set(d, -kInf);
  auto nan = hn::Ne(vmax, vmax);  // all false
  std::size_t i = 0;
  for (; i + lanes <= n; i += lanes) {
    const auto v = hn::LoadU(d, x + i);
    vmax = hn::Max(vmax, v);
    nan = hn::Or(nan, hn::IsNaN(v));
  }
  float m = hn::GetLane(hn::MaxOfLanes(d, vmax));
  bool any_nan = !hn::AllFalse(d, nan);
  for (; i < n; ++i) {
    any_nan = any_nan || std::isnan(x[i]);
    m = std::max(m, x[i]);
  }
  *has_nan = any_nan;
  return m;
}

// exp(x - m) for x <= m. Rounding x - m to f32 costs up to half an ulp of x - m (9.5e-7 for x - m in
// [-32, -16], 1.9e-6 below), which exp turns into a relative error of the same size: more than softmax's
// 1e-6 budget. With kCompensated, TwoSum recovers that rounding error exactly and it is applied to first
// order, exp(diff + err) = exp(diff) * (1 + err), leaving ~2 ulp; this costs ~15% of softmax's time.
// log_softmax does not need it: there the error only enters through the sum, weighted by exp(x - m), which
// keeps it below 3e-8. Highway's Exp returns 0 below -104, so -inf needs no clamp; there the correction is
// skipped, as err may be NaN (-inf - -inf).
template <bool kCompensated, class D, class V>
HWY_INLINE V ExpOfDifference(D d, V x, V m) {
  const V diff = hn::Sub(x, m);
  const V e = hn::Exp(d, diff);
  if constexpr (!kCompensated) return e;
  // TwoSum(x, -m): diff + err == x - m exactly (Knuth), with x_part + neg_m_part == diff.
  const V x_part = hn::Add(diff, m);
  const V neg_m_part = hn::Sub(diff, x_part);
  const V err = hn::Sub(hn::Sub(x, x_part), hn::Add(m, neg_m_part));
  return hn::IfThenElse(hn::Ge(diff, hn::Set(d, -104.0f)), hn::MulAdd(e, err, e), e);
}

// sum_i exp(x[i] - m) for i in [0, n); when kStore, also writes the exponentials to y.
// Requires x[i] <= m (no NaN), so Exp's argument is <= 0 and needs no upper clamp; Highway's Exp returns
// 0 below -104, which also covers -inf.
template <bool kStore>
HWY_INLINE double RowSumExp(const float* x, float m, float* y, std::size_t n) {
  const DF d;
  const D1 d1;
  const std::size_t lanes = hn::Lanes(d);
  const std::size_t vec_end = n - n % lanes;
  const auto vm = hn::Set(d, m);
  double total = 0.0;
  std::size_t i = 0;
  while (i < vec_end) {
    const std::size_t stop = std::min(vec_end, i + kExpBlock);
    auto sum = hn::Zero(d);
    for (; i < stop; i += lanes) {
      const auto e = ExpOfDifference<kStore>(d, hn::LoadU(d, x + i), vm);
      if constexpr (kStore) hn::StoreU(e, d, y + i);
      sum = hn::Add(sum, e);
    }
    total += hn::GetLane(hn::SumOfLanes(d, sum));
  }
  const auto vm1 = hn::Set(d1, m);
  for (; i < n; ++i) {
    const auto e = ExpOfDifference<kStore>(d1, hn::LoadU(d1, x + i), vm1);
    if constexpr (kStore) hn::StoreU(e, d1, y + i);
    total += hn::GetLane(e);
  }
  return total;
}

// y[i] = x[i] * f for i in [0, n).
HWY_INLINE void RowScale(const float* x, float f, float* y, std::size_t n) {
  const DF d;
  const std::size_t lanes = hn::Lanes(d);
  const auto vf = hn::Set(d, f);
  std::size_t i = 0;
  for (; i + lanes <= n; i += lanes) hn::StoreU(hn::Mul(hn::LoadU(d, x + i), vf), d, y + i);
  for (; i < n; ++i) y[i] = x[i] * f;
}

// y[i] = (x[i] - m) - log_sum for i in [0, n). Subtracting m first keeps the entries near the max exact
// to an ulp; folding m + log_sum into one f32 would cost half an ulp of m (3e-5 at m = 1000).
HWY_INLINE void RowShiftLog(const float* x, float m, float log_sum, float* y, std::size_t n) {
  const DF d;
  const std::size_t lanes = hn::Lanes(d);
  const auto vm = hn::Set(d, m);
  const auto vl = hn::Set(d, log_sum);
  std::size_t i = 0;
  for (; i + lanes <= n; i += lanes) hn::StoreU(hn::Sub(hn::Sub(hn::LoadU(d, x + i), vm), vl), d, y + i);
  for (; i < n; ++i) y[i] = (x[i] - m) - log_sum;
}

template <bool kLog>
HWY_INLINE void SoftmaxRow(const float* x, float* y, std::size_t n) {
  bool has_nan = false;
  const float m = RowMax(x, n, &has_nan);
  if (has_nan || std::isinf(m)) {  // NaN, +inf (inf - inf) or all -inf (0 / 0): the row is NaN
    std::fill(y, y + n, kNaN);
    return;
  }
  if constexpr (kLog) {
    // (x - m) - log(sum): the sum is >= 1 (the max contributes exp(0)), so the log is well conditioned.
    const double sum = RowSumExp<false>(x, m, nullptr, n);
    RowShiftLog(x, m, static_cast<float>(std::log(sum)), y, n);
  } else {
    const double sum = RowSumExp<true>(x, m, y, n);
    RowScale(y, static_cast<float>(1.0 / sum), y, n);
  }
}

// ---------------------------------------------------------------------------------------------------
// softmax / log_softmax across columns (inner > 1). The slab [axis_len, inner] is processed in chunks of
// at most kColumnChunk columns whose per-column state (running max, partial and total sums) lives in stack
// arrays; each axis step then reads one contiguous run of the chunk. Walking down the axis one vector of
// columns at a time would instead stride by `inner` floats, and with a power-of-two stride every step maps
// to the same few cache sets (measured 3-4x slower at inner = 512).

// Max that keeps a NaN once seen (Max may drop a NaN, depending on the target and operand order).
template <class V>
HWY_INLINE V StickyMax(V m, V v) {
  return hn::IfThenElse(hn::Or(hn::Lt(m, v), hn::IsNaN(v)), v, m);
}

template <class D>
HWY_INLINE void ColumnMaxStep(D d, const float* x, float* m, std::size_t begin, std::size_t end) {
  for (std::size_t j = begin; j < end; j += hn::Lanes(d)) {
    hn::StoreU(StickyMax(hn::LoadU(d, m + j), hn::LoadU(d, x + j)), d, m + j);
  }
}

template <bool kStore, class D>
HWY_INLINE void ColumnExpStep(D d, const float* x, const float* m, float* y, float* sum, std::size_t begin,
                              std::size_t end) {
  for (std::size_t j = begin; j < end; j += hn::Lanes(d)) {
    const auto e = ExpOfDifference<kStore>(d, hn::LoadU(d, x + j), hn::LoadU(d, m + j));
    if constexpr (kStore) hn::StoreU(e, d, y + j);
    hn::StoreU(hn::Add(hn::LoadU(d, sum + j), e), d, sum + j);
  }
}

// Columns whose max is NaN (a NaN was seen), +inf, or -inf (all -inf) come out NaN, as in the row case.
template <bool kLog, class D>
HWY_INLINE void ColumnFinishStep(D d, const float* x, const float* m, const float* factor, float* y, std::size_t begin,
                                 std::size_t end) {
  const auto nan = hn::Set(d, kNaN);
  for (std::size_t j = begin; j < end; j += hn::Lanes(d)) {
    const auto mj = hn::LoadU(d, m + j);
    const auto bad = hn::Or(hn::IsNaN(mj), hn::IsInf(mj));
    const auto f = hn::LoadU(d, factor + j);
    const auto v = kLog ? hn::Sub(hn::Sub(hn::LoadU(d, x + j), mj), f) : hn::Mul(hn::LoadU(d, y + j), f);
    hn::StoreU(hn::IfThenElse(bad, nan, v), d, y + j);
  }
}

constexpr std::size_t kColumnChunk = 512;

// Softmax of columns [0, width) of a slab whose rows are `stride` floats apart.
template <bool kLog>
void SoftmaxColumnChunk(const float* x, float* y, std::size_t axis_len, std::size_t stride, std::size_t width) {
  const DF d;
  const D1 d1;
  const std::size_t vec_width = width - width % hn::Lanes(d);
  float max[kColumnChunk];
  float partial[kColumnChunk];
  double total[kColumnChunk];

  std::fill_n(max, width, -kInf);
  for (std::size_t a = 0; a < axis_len; ++a) {
    ColumnMaxStep(d, x + a * stride, max, 0, vec_width);
    ColumnMaxStep(d1, x + a * stride, max, vec_width, width);
  }

  std::fill_n(total, width, 0.0);
  for (std::size_t a0 = 0; a0 < axis_len; a0 += kColumnBlock) {
    std::fill_n(partial, width, 0.0f);
    for (std::size_t a = a0; a < std::min(axis_len, a0 + kColumnBlock); ++a) {
      ColumnExpStep<!kLog>(d, x + a * stride, max, y + a * stride, partial, 0, vec_width);
      ColumnExpStep<!kLog>(d1, x + a * stride, max, y + a * stride, partial, vec_width, width);
    }
    for (std::size_t j = 0; j < width; ++j) total[j] += partial[j];
  }

  float* factor = partial;  // reused: log of the sum (log_softmax) or its reciprocal (softmax)
  for (std::size_t j = 0; j < width; ++j) {
    factor[j] = static_cast<float>(kLog ? std::log(total[j]) : 1.0 / total[j]);
  }
  for (std::size_t a = 0; a < axis_len; ++a) {
    ColumnFinishStep<kLog>(d, x + a * stride, max, factor, y + a * stride, 0, vec_width);
    ColumnFinishStep<kLog>(d1, x + a * stride, max, factor, y + a * stride, vec_width, width);
  }
}

template <bool kLog>
void SoftmaxImpl(const float* x, float* y, std::size_t outer, std::size_t axis_len, std::size_t inner) {
  const std::size_t slab = axis_len * inner;
  if (inner == 1) {
    for (std::size_t o = 0; o < outer; ++o) SoftmaxRow<kLog>(x + o * slab, y + o * slab, axis_len);
    return;
  }
  for (std::size_t o = 0; o < outer; ++o) {
    for (std::size_t i = 0; i < inner; i += kColumnChunk) {
      const std::size_t width = std::min(kColumnChunk, inner - i);
      SoftmaxColumnChunk<kLog>(x + o * slab + i, y + o * slab + i, axis_len, inner, width);
    }
  }
}

void Softmax(const float* x, float* y, std::size_t outer, std::size_t axis_len, std::size_t inner) {
  SoftmaxImpl<false>(x, y, outer, axis_len, inner);
}

void LogSoftmax(const float* x, float* y, std::size_t outer, std::size_t axis_len, std::size_t inner) {
  SoftmaxImpl<true>(x, y, outer, axis_len, inner);
}

// ---------------------------------------------------------------------------------------------------
// layer_norm / rms_norm

// y[i] = ((x[i] - shift_hi) - shift_lo) * factor * scale[i] + bias[i], scale/bias present per kScale/kBias.
// layer_norm passes the row mean as the unrounded pair shift_hi + shift_lo (see LayerNormRow); rms_norm
// passes 0, 0.
template <bool kScale, bool kBias>
HWY_INLINE void NormAffine(const float* x, float shift_hi, float shift_lo, float factor, const float* scale,
                           const float* bias, float* y, std::size_t n) {
  const DF d;
  const std::size_t lanes = hn::Lanes(d);
  const auto hi = hn::Set(d, shift_hi);
  const auto lo = hn::Set(d, shift_lo);
  const auto f = hn::Set(d, factor);
  std::size_t i = 0;
  for (; i + lanes <= n; i += lanes) {
    auto v = hn::Mul(hn::Sub(hn::Sub(hn::LoadU(d, x + i), hi), lo), f);
    if constexpr (kScale) v = hn::Mul(v, hn::LoadU(d, scale + i));
    if constexpr (kBias) v = hn::Add(v, hn::LoadU(d, bias + i));
    hn::StoreU(v, d, y + i);
  }
  for (; i < n; ++i) {
    float v = ((x[i] - shift_hi) - shift_lo) * factor;
    if constexpr (kScale) v *= scale[i];
    if constexpr (kBias) v += bias[i];
    y[i] = v;
  }
}

HWY_INLINE void NormAffineDispatch(const float* x, float shift_hi, float shift_lo, float factor, const float* scale,
                                   const float* bias, float* y, std::size_t n) {
  if (scale != nullptr && bias != nullptr) {
    NormAffine<true, true>(x, shift_hi, shift_lo, factor, scale, bias, y, n);
  } else if (scale != nullptr) {
    NormAffine<true, false>(x, shift_hi, shift_lo, factor, scale, bias, y, n);
  } else if (bias != nullptr) {
    NormAffine<false, true>(x, shift_hi, shift_lo, factor, scale, bias, y, n);
  } else {
    NormAffine<false, false>(x, shift_hi, shift_lo, factor, scale, bias, y, n);
  }
}

// The slow path for rows of extreme magnitude: everything in double, one element at a time.
// `center` subtracts the mean (layer_norm) or not (rms_norm).
void NormRowInDouble(const float* x, const float* scale, const float* bias, float eps, float* y, std::size_t n,
                     bool center) {
  double mean = 0.0;
  if (center) {
    for (std::size_t i = 0; i < n; ++i) mean += x[i];
    mean /= static_cast<double>(n);
  }
  double sum_sq = 0.0;
  for (std::size_t i = 0; i < n; ++i) {
    const double dev = x[i] - mean;
    sum_sq += dev * dev;
  }
  const double rstd = 1.0 / std::sqrt(sum_sq / static_cast<double>(n) + eps);
  for (std::size_t i = 0; i < n; ++i) {
    double v = (x[i] - mean) * rstd;
    if (scale != nullptr) v *= scale[i];
    if (bias != nullptr) v += bias[i];
    y[i] = static_cast<float>(v);
  }
}

// Sum of (x[i] - shift) and max |x[i] - shift| over [0, n); see kNormBlock for the accumulation.
HWY_INLINE double RowSumShifted(const float* x, float shift, std::size_t n, float* max_abs) {
  const DF d;
  const std::size_t lanes = hn::Lanes(d);
  const std::size_t vec_end = n - n % lanes;
  const auto vs = hn::Set(d, shift);
  auto amax = hn::Zero(d);
  double total = 0.0;
  std::size_t i = 0;
  while (i < vec_end) {
    const std::size_t stop = std::min(vec_end, i + kNormBlock);
    auto sum = hn::Zero(d);
    for (; i < stop; i += lanes) {
      const auto v = hn::Sub(hn::LoadU(d, x + i), vs);
      sum = hn::Add(sum, v);
      amax = hn::Max(amax, hn::Abs(v));
    }
    total += hn::GetLane(hn::SumOfLanes(d, sum));
  }
  float m = hn::GetLane(hn::MaxOfLanes(d, amax));
  for (; i < n; ++i) {
    const float v = x[i] - shift;
    total += v;
    m = std::max(m, std::abs(v));
  }
  *max_abs = m;
  return total;
}

// Sum of ((x[i] - hi) - lo)^2 over [0, n).
HWY_INLINE double RowSumSquares(const float* x, float hi, float lo, std::size_t n) {
  const DF d;
  const std::size_t lanes = hn::Lanes(d);
  const std::size_t vec_end = n - n % lanes;
  const auto vhi = hn::Set(d, hi);
  const auto vlo = hn::Set(d, lo);
  double total = 0.0;
  std::size_t i = 0;
  while (i < vec_end) {
    const std::size_t stop = std::min(vec_end, i + kNormBlock);
    auto sum = hn::Zero(d);
    for (; i < stop; i += lanes) {
      const auto v = hn::Sub(hn::Sub(hn::LoadU(d, x + i), vhi), vlo);
      sum = hn::MulAdd(v, v, sum);
    }
    total += hn::GetLane(hn::SumOfLanes(d, sum));
  }
  for (; i < n; ++i) {
    const float v = (x[i] - hi) - lo;
    total += static_cast<double>(v) * v;
  }
  return total;
}

HWY_INLINE bool SafeDeviation(float max_abs) {
  // Written so that NaN is unsafe; 0 (a constant row) is exact in f32.
  return max_abs == 0.0f || (max_abs >= kMinSafeDeviation && max_abs <= kMaxSafeDeviation);
}

void LayerNormRow(const float* x, const float* scale, const float* bias, float eps, float* y, std::size_t n) {
  // Shifted-data algorithm: deviations from the row's first element are small when the row has a large
  // common offset, and x - shift is exact for x within a factor 2 of the shift (Sterbenz). The mean is then
  // shift + offset with offset a small f32, so x - mean is evaluated as (x - shift) - offset without ever
  // rounding the mean itself to f32 (which would cost up to half an ulp of the offset, 5e-4 at 1e4).
  const float shift = x[0];
  float max_abs = 0.0f;
  const double sum = RowSumShifted(x, shift, n, &max_abs);
  if (!SafeDeviation(max_abs)) {
    NormRowInDouble(x, scale, bias, eps, y, n, /*center=*/true);
    return;
  }
  const float offset = static_cast<float>(sum / static_cast<double>(n));
  // Two-pass variance around the mean: no cancellation, unlike E[x^2] - E[x]^2.
  const double var = RowSumSquares(x, shift, offset, n) / static_cast<double>(n);
  const auto rstd = static_cast<float>(1.0 / std::sqrt(var + eps));
  NormAffineDispatch(x, shift, offset, rstd, scale, bias, y, n);
}

// Sum of x[i]^2 and max |x[i]| over [0, n).
HWY_INLINE double RowSumSquaresAndMax(const float* x, std::size_t n, float* max_abs) {
  const DF d;
  const std::size_t lanes = hn::Lanes(d);
  const std::size_t vec_end = n - n % lanes;
  auto amax = hn::Zero(d);
  double total = 0.0;
  std::size_t i = 0;
  while (i < vec_end) {
    const std::size_t stop = std::min(vec_end, i + kNormBlock);
    auto sum = hn::Zero(d);
    for (; i < stop; i += lanes) {
      const auto v = hn::LoadU(d, x + i);
      sum = hn::MulAdd(v, v, sum);
      amax = hn::Max(amax, hn::Abs(v));
    }
    total += hn::GetLane(hn::SumOfLanes(d, sum));
  }
  float m = hn::GetLane(hn::MaxOfLanes(d, amax));
  for (; i < n; ++i) {
    total += static_cast<double>(x[i]) * x[i];
    m = std::max(m, std::abs(x[i]));
  }
  *max_abs = m;
  return total;
}

void RmsNormRow(const float* x, const float* scale, const float* bias, float eps, float* y, std::size_t n) {
  float max_abs = 0.0f;
  const double sum_sq = RowSumSquaresAndMax(x, n, &max_abs);
  // A NaN can hide from Max (target dependent), but not from the sum.
  if (std::isnan(sum_sq) || !SafeDeviation(max_abs)) {
    NormRowInDouble(x, scale, bias, eps, y, n, /*center=*/false);
    return;
  }
  const auto rstd = static_cast<float>(1.0 / std::sqrt(sum_sq / static_cast<double>(n) + eps));
  NormAffineDispatch(x, 0.0f, 0.0f, rstd, scale, bias, y, n);
}

void LayerNorm(const float* x, const float* scale, const float* bias, float eps, float* y, std::size_t rows,
               std::size_t cols) {
  for (std::size_t r = 0; r < rows; ++r) LayerNormRow(x + r * cols, scale, bias, eps, y + r * cols, cols);
}

void RmsNorm(const float* x, const float* scale, const float* bias, float eps, float* y, std::size_t rows,
             std::size_t cols) {
  for (std::size_t r = 0; r < rows; ++r) RmsNormRow(x + r * cols, scale, bias, eps, y + r * cols, cols);
}

}  // namespace HWY_NAMESPACE
}  // namespace quarks::ops
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace quarks::ops {

HWY_EXPORT(Softmax);
HWY_EXPORT(LogSoftmax);
HWY_EXPORT(LayerNorm);
HWY_EXPORT(RmsNorm);

namespace {

void check_sizes(const char* op, std::initializer_list<std::int64_t> sizes) {
  for (const std::int64_t s : sizes) {
    if (s < 0) {
      throw Error(ErrorCode::kInvalidArgument,
                  std::string(op) + " kernel: negative size " + std::to_string(s) + " (sizes must be >= 0)");
    }
  }
}

std::size_t to_size(std::int64_t s) { return static_cast<std::size_t>(s); }

}  // namespace

void softmax(const float* x, float* y, std::int64_t outer, std::int64_t axis_len, std::int64_t inner) {
  check_sizes("softmax", {outer, axis_len, inner});
  if (outer == 0 || axis_len == 0 || inner == 0) return;
  HWY_DYNAMIC_DISPATCH(Softmax)(x, y, to_size(outer), to_size(axis_len), to_size(inner));
}

void log_softmax(const float* x, float* y, std::int64_t outer, std::int64_t axis_len, std::int64_t inner) {
  check_sizes("log_softmax", {outer, axis_len, inner});
  if (outer == 0 || axis_len == 0 || inner == 0) return;
  HWY_DYNAMIC_DISPATCH(LogSoftmax)(x, y, to_size(outer), to_size(axis_len), to_size(inner));
}

void layer_norm(const float* x, const float* scale, const float* bias, float eps, float* y, std::int64_t rows,
                std::int64_t cols) {
  check_sizes("layer_norm", {rows, cols});
  if (rows == 0 || cols == 0) return;
  HWY_DYNAMIC_DISPATCH(LayerNorm)(x, scale, bias, eps, y, to_size(rows), to_size(cols));
}

void rms_norm(const float* x, const float* scale, const float* bias, float eps, float* y, std::int64_t rows,
              std::int64_t cols) {
  check_sizes("rms_norm", {rows, cols});
  if (rows == 0 || cols == 0) return;
  HWY_DYNAMIC_DISPATCH(RmsNorm)(x, scale, bias, eps, y, to_size(rows), to_size(cols));
}

}  // namespace quarks::ops
#endif  // HWY_ONCE
