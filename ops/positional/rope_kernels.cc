// Highway implementation of ops/positional/rope_kernels.hpp, compiled once per target and dispatched at
// run time (HWY_DYNAMIC_DISPATCH). Vector loops stop at the last full vector; tails are scalar.

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "ops/positional/rope_kernels.cc"
#include <hwy/foreach_target.h>  // IWYU pragma: keep

#include <hwy/contrib/math/math-inl.h>
#include <hwy/highway.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>

#include "ops/contract/parallel.hpp"
#include "ops/positional/rope_kernels.hpp"
#include "quarks/error.hpp"

HWY_BEFORE_NAMESPACE();
namespace quarks::ops {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

using i64 = std::int64_t;

// 2π in three parts (Cody-Waite): hi and mid have 24 significant bits, so k·hi and k·mid are exact for
// k < 2^29 (positions < 2^31 and f_d <= 1 give k < 2^29) with or without FMA, and a - k·hi is exact too.
// hi + mid + lo is 2π to 3e-31.
constexpr double kTwoPiHi = 6.2831854820251465;
constexpr double kTwoPiMid = -1.7484555314695172e-07;
constexpr double kTwoPiLo = -6.8604979977715316e-15;
constexpr double kInvTwoPi = 0.15915494309189535;

// a reduced into about [-π, π].
inline double Reduce(double a) {
  const double k = std::nearbyint(a * kInvTwoPi);
  return ((a - k * kTwoPiHi) - k * kTwoPiMid) - k * kTwoPiLo;
}

void RopeTables(const double* HWY_RESTRICT f, i64 half, i64 first, i64 count, float* HWY_RESTRICT cos,
                float* HWY_RESTRICT sin) {
#if HWY_HAVE_FLOAT64
  const hn::ScalableTag<double> dd;
  const hn::Rebind<float, decltype(dd)> df;
  const i64 lanes = static_cast<i64>(hn::Lanes(dd));
  const auto inv_two_pi = hn::Set(dd, kInvTwoPi), two_pi_hi = hn::Set(dd, kTwoPiHi);
  const auto two_pi_mid = hn::Set(dd, kTwoPiMid), two_pi_lo = hn::Set(dd, kTwoPiLo);
#endif
  for (i64 i = 0; i < count; ++i) {
    const double p = static_cast<double>(first + i);
    float* c = cos + i * half;
    float* s = sin + i * half;
    i64 d = 0;
#if HWY_HAVE_FLOAT64
    const auto vp = hn::Set(dd, p);
    for (; d + lanes <= half; d += lanes) {
      const auto a = hn::Mul(vp, hn::LoadU(dd, f + d));  // exact to 2^-53 relative
      const auto k = hn::Round(hn::Mul(a, inv_two_pi));
      const auto r = hn::NegMulAdd(k, two_pi_lo, hn::NegMulAdd(k, two_pi_mid, hn::NegMulAdd(k, two_pi_hi, a)));
      hn::StoreU(hn::DemoteTo(df, hn::Cos(dd, r)), df, c + d);
      hn::StoreU(hn::DemoteTo(df, hn::Sin(dd, r)), df, s + d);
    }
#endif
    for (; d < half; ++d) {
      const double r = Reduce(p * f[d]);
      c[d] = static_cast<float>(std::cos(r));
      s[d] = static_cast<float>(std::sin(r));
    }
  }
}

void RopeRotate(const float* x, i64 x_row, float* y, i64 y_row, i64 rows, i64 half, const float* cos, const float* sin,
                i64 cs_row) {
  const hn::ScalableTag<float> d;
  const i64 lanes = static_cast<i64>(hn::Lanes(d));
  for (i64 r = 0; r < rows; ++r) {
    // Not HWY_RESTRICT: y may be x. Each step loads both halves before storing them, and steps touch
    // disjoint elements, so the rotation is safe in place.
    const float* xr = x + r * x_row;
    float* yr = y + r * y_row;
    const float* c = cos + r * cs_row;
    const float* s = sin + r * cs_row;
    i64 i = 0;
    for (; i + lanes <= half; i += lanes) {
      const auto lo = hn::LoadU(d, xr + i), hi = hn::LoadU(d, xr + half + i);
      const auto vc = hn::LoadU(d, c + i), vs = hn::LoadU(d, s + i);
      hn::StoreU(hn::NegMulAdd(hi, vs, hn::Mul(lo, vc)), d, yr + i);
      hn::StoreU(hn::MulAdd(lo, vs, hn::Mul(hi, vc)), d, yr + half + i);
    }
    for (; i < half; ++i) {
      const float lo = xr[i], hi = xr[half + i];
      yr[i] = lo * c[i] - hi * s[i];
      yr[half + i] = hi * c[i] + lo * s[i];
    }
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace quarks::ops
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace quarks::ops {

HWY_EXPORT(RopeTables);
HWY_EXPORT(RopeRotate);

std::vector<double> rope_inverse_frequencies(std::int64_t head_dim, double theta) {
  std::vector<double> f(static_cast<std::size_t>(head_dim / 2));
  for (std::size_t d = 0; d < f.size(); ++d) {
    f[d] = std::pow(theta, -2.0 * static_cast<double>(d) / static_cast<double>(head_dim));
  }
  return f;
}

void rope_tables(const double* inv_freq, std::int64_t half, std::int64_t first, std::int64_t count, float* cos,
                 float* sin) {
  HWY_DYNAMIC_DISPATCH(RopeTables)(inv_freq, half, first, count, cos, sin);
}

void rope_rotate(const float* x, std::int64_t x_row, float* y, std::int64_t y_row, std::int64_t rows, std::int64_t half,
                 const float* cos, const float* sin, std::int64_t cs_row) {
  HWY_DYNAMIC_DISPATCH(RopeRotate)(x, x_row, y, y_row, rows, half, cos, sin, cs_row);
}

RopeKernel::RopeKernel(const RopeConfig& config) : config_(config) {
  const RopeConfig& c = config_;
  const auto invalid = [&](const std::string& what) {
    throw Error(ErrorCode::kInvalidArgument, "rope kernel B=" + std::to_string(c.batch) +
                                                 " H=" + std::to_string(c.heads) + " S=" + std::to_string(c.seq) +
                                                 " D=" + std::to_string(c.head_dim) + ": " + what);
  };
  if (c.batch < 0 || c.seq < 0 || c.heads < 1) invalid("B and S must be >= 0 and H >= 1");
  if (c.head_dim < 2 || c.head_dim % 2 != 0) invalid("D must be even and >= 2");
  if (!(c.theta > 0.0) || !std::isfinite(c.theta)) invalid("theta must be finite and > 0");
  if (c.inv_freq.empty()) {
    inv_freq_ = rope_inverse_frequencies(c.head_dim, c.theta);
  } else {
    if (static_cast<std::int64_t>(c.inv_freq.size()) != c.head_dim / 2)
      invalid(std::to_string(c.inv_freq.size()) + " inverse frequencies given, D/2 needed");
    for (double f : c.inv_freq)
      if (!(f >= 0.0) || !std::isfinite(f)) invalid("the inverse frequencies must be finite and >= 0");
    inv_freq_ = c.inv_freq;
  }
}

void RopeKernel::fill_table(std::int64_t first, float* table) const {
  const std::int64_t half = config_.head_dim / 2, seq = config_.seq;
  float* cos = table;
  float* sin = table + seq * half;
  // About 2048 angles per task: a table row costs a few ns per angle.
  const std::int64_t grain = std::max<std::int64_t>(1, 2048 / half);
  detail::parallel_blocks(seq, grain, [&](std::int64_t begin, std::int64_t end) {
    rope_tables(inv_freq_.data(), half, first + begin, end - begin, cos + begin * half, sin + begin * half);
  });
}

std::int64_t RopeKernel::first_bad_position(const std::int64_t* positions) const noexcept {
  const std::int64_t n = config_.batch * config_.seq;
  for (std::int64_t i = 0; i < n; ++i) {
    if (positions[i] < 0 || positions[i] >= kRopeMaxPosition) return i;
  }
  return -1;
}

void RopeKernel::fill_positions_table(const std::int64_t* positions, float* table) const {
  const std::int64_t half = config_.head_dim / 2, tokens = config_.batch * config_.seq;
  float* cos = table;
  float* sin = table + tokens * half;
  const std::int64_t grain = std::max<std::int64_t>(1, 2048 / half);
  detail::parallel_blocks(tokens, grain, [&](std::int64_t begin, std::int64_t end) {
    for (std::int64_t t = begin; t < end; ++t) {
      rope_tables(inv_freq_.data(), half, positions[t], 1, cos + t * half, sin + t * half);
    }
  });
}

void RopeKernel::run(const float* x, float* y, const float* table, bool per_token) const {
  const RopeConfig& c = config_;
  const std::int64_t dim = c.head_dim, half = dim / 2, seq = c.seq, heads = c.heads;
  const float* cos = table;
  const float* sin = table + (per_token ? c.batch * seq : seq) * half;
  // Both layouts are rows of D contiguous floats: row r is head r % H of token r / H ([B, S, H·D]) or
  // position r % S of head r / S ([B, H, S, D]). Runs of rows sharing a position (token-major) or with
  // consecutive positions (head-major) go to the kernel in one call. The table row of token (b, s) is
  // s, or b·S + s with per-token positions.
  const std::int64_t rows = c.batch * heads * seq;
  detail::parallel_blocks(rows, detail::row_grain(dim), [&](std::int64_t begin, std::int64_t end) {
    for (std::int64_t r = begin; r < end;) {
      std::int64_t s, n, cs_row, row;
      if (c.head_major) {
        s = r % seq;
        n = std::min(end, r - s + seq) - r;
        cs_row = half;
        row = per_token ? r / (heads * seq) * seq + s : s;
      } else {
        s = (r / heads) % seq;
        n = std::min(end, (r / heads + 1) * heads) - r;
        cs_row = 0;
        row = per_token ? r / heads : s;
      }
      rope_rotate(x + r * dim, dim, y + r * dim, dim, n, half, cos + row * half, sin + row * half, cs_row);
      r += n;
    }
  });
}

}  // namespace quarks::ops
#endif  // HWY_ONCE
