// Tests of the unary elementwise kernels against <cmath> in double, on every Highway target.
//
// Bounds (see unary_kernels.hpp): neg, abs, sqrt, reciprocal and clip must equal the correctly rounded
// result; exp and log within 2 ulp of the exact value (ulp measured at the result, in the subnormal
// spacing below FLT_MIN); erf within 3e-7 absolute and 1e-6 relative; hard_sigmoid within the rounding
// of alpha·x + beta (one rounding with FMA, two without). Measured on AVX2, SSE4, SSSE3 and scalar:
// exp 1.01 ulp, log 0.92 ulp, erf 1.4e-7, hard_sigmoid 4.4e-8 (DenseSweepsStayWithinTheStatedBounds).
#include "ops/elementwise/unary_kernels.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <iterator>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "hwy/targets.h"
#include "quarks/error.hpp"

namespace quarks::ops {
namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();
constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
const std::size_t kSizes[] = {0, 1, 3, 7, 15, 16, 17, 31, 33, 1000, 100003};
constexpr std::size_t kGuard = 17;
constexpr float kSentinel = 12345.0f;

constexpr double kExpUlps = 2.0;
constexpr double kLogUlps = 2.0;
constexpr double kErfAbs = 3e-7;
constexpr double kErfRel = 1e-6;

struct Params {
  UnaryOp op;
  float a = 0.0f, b = 0.0f;
};

const char* name(UnaryOp op) {
  switch (op) {
    case UnaryOp::kNeg: return "neg";
    case UnaryOp::kAbs: return "abs";
    case UnaryOp::kExp: return "exp";
    case UnaryOp::kLog: return "log";
    case UnaryOp::kSqrt: return "sqrt";
    case UnaryOp::kReciprocal: return "reciprocal";
    case UnaryOp::kErf: return "erf";
    case UnaryOp::kClip: return "clip";
    case UnaryOp::kHardSigmoid: return "hard_sigmoid";
  }
  return "?";
}

std::vector<Params> all_ops() {
  return {{UnaryOp::kNeg},
          {UnaryOp::kAbs},
          {UnaryOp::kExp},
          {UnaryOp::kLog},
          {UnaryOp::kSqrt},
          {UnaryOp::kReciprocal},
          {UnaryOp::kErf},
          {UnaryOp::kClip, -0.5f, 2.0f},
          {UnaryOp::kHardSigmoid, 0.2f, 0.5f}};
}

// The exact function value in double (for clip and hard_sigmoid with the f32 parameters).
double reference(const Params& p, double x) {
  switch (p.op) {
    case UnaryOp::kNeg: return -x;
    case UnaryOp::kAbs: return std::fabs(x);
    case UnaryOp::kExp: return std::exp(x);
    case UnaryOp::kLog: return std::log(x);
    case UnaryOp::kSqrt: return std::sqrt(x);
    case UnaryOp::kReciprocal: return 1.0 / x;
    case UnaryOp::kErf: return std::erf(x);
    case UnaryOp::kClip: return x < p.a ? p.a : x > p.b ? p.b : x;
    case UnaryOp::kHardSigmoid: {
      const double t = static_cast<double>(p.a) * x + p.b;
      return t < 0 ? 0.0 : t > 1 ? 1.0 : t;
    }
  }
  return std::nan("");
}

// Size of one f32 ulp at |v| (the subnormal spacing below FLT_MIN).
double ulp_at(double v) {
  const double m = std::fabs(v);
  const int e = m < FLT_MIN ? -126 : std::ilogb(m);
  return std::ldexp(1.0, std::max(e, -126) - 23);
}

bool same(float a, float b) {
  if (std::isnan(a) || std::isnan(b)) return std::isnan(a) && std::isnan(b);
  return std::signbit(a) == std::signbit(b) && a == b;
}

// Whether got is an acceptable f32 result for x; fills `error` (in the op's unit) for reporting.
bool acceptable(const Params& p, float x, float got, double* error = nullptr) {
  const double want = reference(p, x);
  if (std::isnan(want) || std::isinf(want) || std::isinf(got) || std::isnan(got)) {
    // Special values, and results beyond the f32 range (exp overflow) which must be +inf exactly.
    const float w = static_cast<float>(want);
    return std::isnan(w) ? std::isnan(got) : got == w;
  }
  if (std::fabs(want) > FLT_MAX) return false;  // got is finite here
  const double err = std::fabs(got - want);
  switch (p.op) {
    case UnaryOp::kExp:
    case UnaryOp::kLog: {
      const double ulps = err / ulp_at(want);
      if (error) *error = ulps;
      return ulps <= (p.op == UnaryOp::kExp ? kExpUlps : kLogUlps);
    }
    case UnaryOp::kErf:
      if (error) *error = err;
      return err <= kErfAbs && err <= kErfRel * std::fabs(want) + 1e-45;
    case UnaryOp::kHardSigmoid: {
      // Two roundings at most: of alpha·x and of the sum (clamping to [0, 1] never adds error).
      const double ax = static_cast<double>(p.a) * x;
      const double bound = 0x1p-24 * (std::fabs(ax) + std::fabs(ax + p.b)) + 1e-45;
      if (error) *error = err;
      return err <= bound;
    }
    default:  // correctly rounded, including the sign of zero
      return same(got, static_cast<float>(want));
  }
}

const char* current_target = "";  // for the measured-error printouts

void on_every_target(const std::function<void()>& body) {
  for (const std::int64_t target : hwy::SupportedAndGeneratedTargets()) {
    hwy::SetSupportedTargetsForTest(target);
    current_target = hwy::TargetName(target);
    SCOPED_TRACE(std::string("Highway target ") + hwy::TargetName(target));
    body();
  }
  hwy::SetSupportedTargetsForTest(0);
}

// Inputs in the op's interesting range: log/sqrt mostly positive (with some negatives), exp within
// [-110, 95] (underflow to subnormals and zero, overflow to inf), the rest in [-6, 6].
std::vector<float> inputs_for(UnaryOp op, std::size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> wide(-6.0f, 6.0f), exp_range(-110.0f, 95.0f), log_exponent(-140.0f, 127.0f);
  std::vector<float> v(n);
  for (std::size_t i = 0; i < n; ++i) {
    switch (op) {
      case UnaryOp::kExp: v[i] = exp_range(rng); break;
      case UnaryOp::kLog:
      case UnaryOp::kSqrt:
      case UnaryOp::kReciprocal:  // magnitudes over the whole range, a quarter negative
        v[i] = std::exp2(log_exponent(rng)) * (rng() % 4 == 0 ? -1.0f : 1.0f);
        break;
      default: v[i] = wide(rng);
    }
  }
  return v;
}

TEST(Unary, EveryOpMatchesReferenceAtAwkwardSizes) {
  on_every_target([] {
    for (const Params& p : all_ops()) {
      for (std::size_t n : kSizes) {
        const std::vector<float> x = inputs_for(p.op, n, static_cast<unsigned>(n) + 3);
        std::vector<float> y(n + kGuard, kSentinel);
        unary(p.op, p.a, p.b, x.data(), y.data(), n);
        for (std::size_t i = 0; i < n; ++i) {
          ASSERT_TRUE(acceptable(p, x[i], y[i]))
              << name(p.op) << " n=" << n << " x=" << x[i] << " got " << y[i] << " want " << reference(p, x[i]);
        }
        for (std::size_t i = n; i < y.size(); ++i) ASSERT_EQ(y[i], kSentinel) << name(p.op) << " wrote past n";
      }
    }
  });
}

// Dense sweeps over each function's whole interesting range; prints the worst error per target.
TEST(Unary, DenseSweepsStayWithinTheStatedBounds) {
  struct Sweep {
    Params p;
    float lo, hi;
  };
  const Sweep sweeps[] = {{{UnaryOp::kExp}, -104.0f, 88.72f},
                          {{UnaryOp::kLog}, 1e-3f, 1e3f},
                          {{UnaryOp::kLog}, 0.5f, 2.0f},  // results near 0, where relative accuracy is hardest
                          {{UnaryOp::kErf}, -6.0f, 6.0f},
                          {{UnaryOp::kErf}, -1e-3f, 1e-3f},
                          {{UnaryOp::kHardSigmoid, 0.2f, 0.5f}, -4.0f, 4.0f},
                          {{UnaryOp::kHardSigmoid, 1.0f / 6.0f, 0.5f}, -4.0f, 4.0f}};
  on_every_target([&] {
    for (const Sweep& s : sweeps) {
      const std::size_t n = 1000001;
      std::vector<float> x(n), y(n);
      for (std::size_t i = 0; i < n; ++i) x[i] = s.lo + (s.hi - s.lo) * static_cast<float>(i) / (n - 1);
      unary(s.p.op, s.p.a, s.p.b, x.data(), y.data(), n);
      double worst = 0.0;
      for (std::size_t i = 0; i < n; ++i) {
        double error = 0.0;
        ASSERT_TRUE(acceptable(s.p, x[i], y[i], &error))
            << name(s.p.op) << " x=" << x[i] << " got " << y[i] << " want " << reference(s.p, x[i]);
        worst = std::max(worst, error);
      }
      std::printf("  %-7s %-12s on [%g, %g]: worst error %.3g %s\n", current_target, name(s.p.op), s.lo, s.hi, worst,
                  s.p.op == UnaryOp::kExp || s.p.op == UnaryOp::kLog ? "ulp" : "absolute");
    }
  });
}

// Log and exp over every float exponent, including subnormal inputs and results.
TEST(Unary, ExpAndLogAcrossTheWholeRange) {
  on_every_target([] {
    std::vector<float> x;
    for (int e = -149; e <= 127; ++e) {
      for (float m : {1.0f, 1.2345f, 1.5f, 1.9999999f}) x.push_back(std::ldexp(m, e));
    }
    x.push_back(FLT_MAX);
    std::vector<float> y(x.size());
    unary(UnaryOp::kLog, 0, 0, x.data(), y.data(), x.size());
    for (std::size_t i = 0; i < x.size(); ++i)
      ASSERT_TRUE(acceptable({UnaryOp::kLog}, x[i], y[i])) << "log " << x[i] << " = " << y[i];
    // exp: the whole [-104, 89] range in steps of 1/64, and just around the overflow threshold.
    x.clear();
    for (int i = -104 * 64; i <= 89 * 64; ++i) x.push_back(static_cast<float>(i) / 64.0f);
    for (float v = 88.70f; v < 88.75f; v = std::nextafter(v, kInf)) x.push_back(v);
    y.resize(x.size());
    unary(UnaryOp::kExp, 0, 0, x.data(), y.data(), x.size());
    for (std::size_t i = 0; i < x.size(); ++i)
      ASSERT_TRUE(acceptable({UnaryOp::kExp}, x[i], y[i])) << "exp " << x[i] << " = " << y[i];
  });
}

TEST(Unary, SpecialValues) {
  struct Case {
    Params p;
    float x, want;
  };
  const float smallest = std::numeric_limits<float>::denorm_min();
  const Case cases[] = {
      {{UnaryOp::kNeg}, 0.0f, -0.0f},
      {{UnaryOp::kNeg}, -kInf, kInf},
      {{UnaryOp::kNeg}, kNaN, kNaN},
      {{UnaryOp::kAbs}, -0.0f, 0.0f},
      {{UnaryOp::kAbs}, -kInf, kInf},
      {{UnaryOp::kAbs}, kNaN, kNaN},
      {{UnaryOp::kExp}, -kInf, 0.0f},
      {{UnaryOp::kExp}, kInf, kInf},
      {{UnaryOp::kExp}, kNaN, kNaN},
      {{UnaryOp::kExp}, 0.0f, 1.0f},
      {{UnaryOp::kExp}, -0.0f, 1.0f},
      {{UnaryOp::kExp}, 89.0f, kInf},
      {{UnaryOp::kExp}, 1e30f, kInf},
      {{UnaryOp::kExp}, FLT_MAX, kInf},
      {{UnaryOp::kExp}, -FLT_MAX, 0.0f},
      {{UnaryOp::kExp}, -200.0f, 0.0f},
      {{UnaryOp::kLog}, 0.0f, -kInf},
      {{UnaryOp::kLog}, -0.0f, -kInf},
      {{UnaryOp::kLog}, -1.0f, kNaN},
      {{UnaryOp::kLog}, -smallest, kNaN},
      {{UnaryOp::kLog}, -kInf, kNaN},
      {{UnaryOp::kLog}, kInf, kInf},
      {{UnaryOp::kLog}, kNaN, kNaN},
      {{UnaryOp::kLog}, 1.0f, 0.0f},
      {{UnaryOp::kSqrt}, -0.0f, -0.0f},
      {{UnaryOp::kSqrt}, 0.0f, 0.0f},
      {{UnaryOp::kSqrt}, -1.0f, kNaN},
      {{UnaryOp::kSqrt}, -kInf, kNaN},
      {{UnaryOp::kSqrt}, kInf, kInf},
      {{UnaryOp::kSqrt}, kNaN, kNaN},
      {{UnaryOp::kReciprocal}, 0.0f, kInf},
      {{UnaryOp::kReciprocal}, -0.0f, -kInf},
      {{UnaryOp::kReciprocal}, kInf, 0.0f},
      {{UnaryOp::kReciprocal}, -kInf, -0.0f},
      {{UnaryOp::kReciprocal}, smallest, kInf},
      {{UnaryOp::kReciprocal}, kNaN, kNaN},
      {{UnaryOp::kErf}, 0.0f, 0.0f},
      {{UnaryOp::kErf}, -0.0f, -0.0f},
      {{UnaryOp::kErf}, kInf, 1.0f},
      {{UnaryOp::kErf}, -kInf, -1.0f},
      {{UnaryOp::kErf}, 10.0f, 1.0f},
      {{UnaryOp::kErf}, kNaN, kNaN},
      {{UnaryOp::kClip, -1.0f, 1.0f}, kNaN, kNaN},
      {{UnaryOp::kClip, -1.0f, 1.0f}, kInf, 1.0f},
      {{UnaryOp::kClip, -1.0f, 1.0f}, -kInf, -1.0f},
      {{UnaryOp::kClip, -1.0f, 1.0f}, -0.0f, -0.0f},
      {{UnaryOp::kClip, -kInf, 0.0f}, -kInf, -kInf},
      {{UnaryOp::kClip, -kInf, 0.0f}, 3.0f, 0.0f},
      {{UnaryOp::kClip, 2.0f, 2.0f}, -3.0f, 2.0f},
      {{UnaryOp::kHardSigmoid, 0.2f, 0.5f}, kNaN, kNaN},
      {{UnaryOp::kHardSigmoid, 0.2f, 0.5f}, kInf, 1.0f},
      {{UnaryOp::kHardSigmoid, 0.2f, 0.5f}, -kInf, 0.0f},
      {{UnaryOp::kHardSigmoid, 0.2f, 0.5f}, 0.0f, 0.5f},
      {{UnaryOp::kHardSigmoid, 0.2f, 0.5f}, 10.0f, 1.0f},
      {{UnaryOp::kHardSigmoid, 0.2f, 0.5f}, -10.0f, 0.0f},
  };
  on_every_target([&] {
    for (const Case& c : cases) {
      // Alone (the padded tail path) and inside a longer run (the full-vector path).
      float y = kSentinel;
      unary(c.p.op, c.p.a, c.p.b, &c.x, &y, 1);
      EXPECT_TRUE(same(y, c.want)) << name(c.p.op) << "(" << c.x << ") = " << y << ", want " << c.want;
      std::vector<float> x(37, 0.75f), out(37);
      x[20] = c.x;
      unary(c.p.op, c.p.a, c.p.b, x.data(), out.data(), x.size());
      EXPECT_TRUE(same(out[20], c.want)) << name(c.p.op) << "(" << c.x << ") in a run = " << out[20];
      EXPECT_TRUE(acceptable(c.p, 0.75f, out[0])) << name(c.p.op) << " neighbour";
    }
  });
}

TEST(Unary, InPlaceEqualsOutOfPlace) {
  on_every_target([] {
    for (const Params& p : all_ops()) {
      const std::vector<float> x = inputs_for(p.op, 1001, 11);
      std::vector<float> expected(x.size());
      unary(p.op, p.a, p.b, x.data(), expected.data(), x.size());
      std::vector<float> y = x;
      unary(p.op, p.a, p.b, y.data(), y.data(), y.size());
      for (std::size_t i = 0; i < x.size(); ++i) ASSERT_TRUE(same(y[i], expected[i])) << name(p.op) << " i=" << i;
    }
  });
}

TEST(Unary, ZeroLengthTouchesNothing) {
  for (const Params& p : all_ops()) unary(p.op, p.a, p.b, nullptr, nullptr, 0);
}

TEST(Unary, RejectsUnknownOp) {
  float v = 1.0f;
  EXPECT_THROW(unary(static_cast<UnaryOp>(9), 0, 0, &v, &v, 1), Error);
  EXPECT_THROW(unary(static_cast<UnaryOp>(-1), 0, 0, &v, &v, 1), Error);
}

}  // namespace
}  // namespace quarks::ops
