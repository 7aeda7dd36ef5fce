// Tests of the elementwise binary kernels. The reference is the operation in double rounded to f32:
// for +, -, ×, ÷ of two floats that equals the correctly rounded f32 result (double has more than
// 2·24 + 2 significand bits), so every kernel result must match it exactly, special values included.
// max and min are exact too (IEEE 754-2019 maximum/minimum, written out below). pow is std::pow in f32
// (glibc's powf, documented below 1 ulp), so it must be within 1 ulp of the double pow, and exactly
// equal to it in the special cases of C99 Annex F and on the exact vector paths (exponent 2 and 0.5).
#include "ops/elementwise/binary_kernels.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
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
const std::size_t kSizes[] = {0, 1, 3, 15, 16, 17, 31, 33, 1000, 100003};
constexpr std::size_t kGuard = 17;
constexpr float kSentinel = 12345.0f;
constexpr BinaryOp kOps[] = {BinaryOp::kAdd, BinaryOp::kSub, BinaryOp::kMul, BinaryOp::kDiv,
                             BinaryOp::kPow, BinaryOp::kMax, BinaryOp::kMin};

const char* name(BinaryOp op) {
  switch (op) {
    case BinaryOp::kAdd: return "add";
    case BinaryOp::kSub: return "sub";
    case BinaryOp::kMul: return "mul";
    case BinaryOp::kDiv: return "div";
    case BinaryOp::kPow: return "pow";
    case BinaryOp::kMax: return "max";
    case BinaryOp::kMin: return "min";
  }
  return "?";
}

float reference(BinaryOp op, float a, float b) {
  const double x = a, y = b;
  switch (op) {
    case BinaryOp::kAdd: return static_cast<float>(x + y);
    case BinaryOp::kSub: return static_cast<float>(x - y);
    case BinaryOp::kMul: return static_cast<float>(x * y);
    case BinaryOp::kDiv: return static_cast<float>(x / y);
    case BinaryOp::kPow: return static_cast<float>(std::pow(x, y));
    case BinaryOp::kMax:
      if (std::isnan(a) || std::isnan(b)) return kNaN;
      if (a == b) return std::signbit(a) ? b : a;  // +0 if either zero is +0
      return a > b ? a : b;
    case BinaryOp::kMin:
      if (std::isnan(a) || std::isnan(b)) return kNaN;
      if (a == b) return std::signbit(a) ? a : b;  // -0 if either zero is -0
      return a < b ? a : b;
  }
  return kNaN;
}

// Bitwise equality, except that any NaN matches any NaN (payloads are not part of the contract).
bool same(float a, float b) {
  if (std::isnan(a) || std::isnan(b)) return std::isnan(a) && std::isnan(b);
  return std::signbit(a) == std::signbit(b) && a == b;
}

// Distance in representable floats (0 for equal values, 1 for neighbours; +0 and -0 are 0 apart).
std::int64_t ulp_distance(float a, float b) {
  const auto ordered = [](float v) {
    std::int32_t i;
    std::memcpy(&i, &v, sizeof(i));
    return i < 0 ? -static_cast<std::int64_t>(i & 0x7fffffff) : static_cast<std::int64_t>(i);
  };
  return std::llabs(ordered(a) - ordered(b));
}

// The kernel result `got` for op(a, b) is right: exact, except pow within 1 ulp off its special cases
// (an infinite, zero or NaN operand or result must match exactly).
bool correct(BinaryOp op, float got, float a, float b) {
  const float want = reference(op, a, b);
  if (op != BinaryOp::kPow || !std::isfinite(a) || !std::isfinite(b) || !std::isfinite(want) || want == 0.0f ||
      a == 0.0f) {
    return same(got, want);
  }
  return !std::isnan(got) && std::signbit(got) == std::signbit(want) && ulp_distance(got, want) <= 1;
}

// Every Highway target this CPU supports and the kernels were compiled for: all vector widths, so
// every tail path.
void on_every_target(const std::function<void()>& body) {
  for (const std::int64_t target : hwy::SupportedAndGeneratedTargets()) {
    hwy::SetSupportedTargetsForTest(target);
    SCOPED_TRACE(std::string("Highway target ") + hwy::TargetName(target));
    body();
  }
  hwy::SetSupportedTargetsForTest(0);
}

// Random values with special ones mixed in: ±0, ±inf, NaN, subnormals, huge magnitudes.
std::vector<float> mixed_values(std::size_t n, unsigned seed) {
  static const float kSpecials[] = {0.0f,    -0.0f, kInf,   -kInf,  kNaN, 1e-40f,
                                    -1e-40f, 3e38f, -3e38f, 1e-30f, 1.0f, -1.0f};
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> value(-100.0f, 100.0f);
  std::uniform_int_distribution<int> pick(0, 7);
  std::vector<float> v(n);
  for (std::size_t i = 0; i < n; ++i) {
    v[i] = pick(rng) == 0 ? kSpecials[rng() % std::size(kSpecials)] : value(rng);
  }
  return v;
}

void check(BinaryOp op, const std::vector<float>& a, std::size_t a_stride, const std::vector<float>& b,
           std::size_t b_stride, std::size_t n) {
  std::vector<float> y(n + kGuard, kSentinel);
  binary(op, a.data(), a_stride, b.data(), b_stride, y.data(), n);
  for (std::size_t i = 0; i < n; ++i) {
    const float ai = a[i * a_stride], bi = b[i * b_stride];
    ASSERT_TRUE(correct(op, y[i], ai, bi))
        << name(op) << " strides " << a_stride << "," << b_stride << " n=" << n << " i=" << i << ": " << ai << ", "
        << bi << " -> " << y[i] << ", want " << reference(op, ai, bi);
  }
  for (std::size_t i = n; i < y.size(); ++i) ASSERT_EQ(y[i], kSentinel) << name(op) << ": wrote past n at " << i;
}

TEST(Binary, AllOpsAllStrideCombinationsAwkwardSizes) {
  on_every_target([] {
    for (BinaryOp op : kOps) {
      for (std::size_t n : kSizes) {
        const std::vector<float> a = mixed_values(std::max<std::size_t>(n, 1), 1 + static_cast<unsigned>(n));
        const std::vector<float> b = mixed_values(std::max<std::size_t>(n, 1), 2 + static_cast<unsigned>(n));
        for (std::size_t a_stride : {0, 1}) {
          for (std::size_t b_stride : {0, 1}) check(op, a, a_stride, b, b_stride, n);
        }
      }
    }
  });
}

TEST(Binary, BroadcastOfEverySpecialValue) {
  on_every_target([] {
    const std::vector<float> run = mixed_values(37, 9);
    for (float s : {0.0f, -0.0f, kInf, -kInf, kNaN, 1e-40f, 2.0f}) {
      const std::vector<float> scalar = {s};
      for (BinaryOp op : kOps) {
        check(op, run, 1, scalar, 0, run.size());
        check(op, scalar, 0, run, 1, run.size());
        check(op, scalar, 0, scalar, 0, 19);
      }
    }
  });
}

TEST(Binary, DivisionBySignedZero) {
  const float a[] = {1.0f, -1.0f, 1.0f, -1.0f, 0.0f, -0.0f, kInf, kNaN};
  const float b[] = {0.0f, 0.0f, -0.0f, -0.0f, 0.0f, 0.0f, -0.0f, 0.0f};
  const float want[] = {kInf, -kInf, -kInf, kInf, kNaN, kNaN, -kInf, kNaN};
  float y[8];
  binary(BinaryOp::kDiv, a, 1, b, 1, y, 8);
  for (int i = 0; i < 8; ++i) EXPECT_TRUE(same(y[i], want[i])) << i << ": " << y[i];
  const float neg_zero = -0.0f;
  binary(BinaryOp::kDiv, a, 1, &neg_zero, 0, y, 4);
  EXPECT_TRUE(same(y[0], -kInf));
  EXPECT_TRUE(same(y[1], kInf));
}

TEST(Binary, PowOverModerateRanges) {
  // Bases in [-4, 4] with integer exponents in [-12, 12] (negative bases defined), positive bases in
  // (0, 20] with real exponents in [-6, 6], and bases near 1 with large exponents.
  on_every_target([] {
    std::mt19937 rng(5);
    std::uniform_real_distribution<float> any_base(-4.0f, 4.0f), positive_base(1e-3f, 20.0f), real_exp(-6.0f, 6.0f),
        near_one(0.99f, 1.01f), large_exp(-2000.0f, 2000.0f);
    std::uniform_int_distribution<int> int_exp(-12, 12);
    for (std::size_t n : kSizes) {
      std::vector<float> a(n), b(n);
      for (std::size_t i = 0; i < n; ++i) {
        switch (i % 3) {
          case 0: a[i] = any_base(rng), b[i] = static_cast<float>(int_exp(rng)); break;
          case 1: a[i] = positive_base(rng), b[i] = real_exp(rng); break;
          default: a[i] = near_one(rng), b[i] = large_exp(rng); break;
        }
      }
      check(BinaryOp::kPow, a, 1, b, 1, n);
      for (float e : {2.0f, 0.5f, 3.0f, -1.0f, 0.0f}) check(BinaryOp::kPow, a, 1, std::vector<float>{e}, 0, n);
      if (n) check(BinaryOp::kPow, std::vector<float>{2.5f}, 0, b, 1, n);
    }
  });
}

TEST(Binary, PowSpecialCases) {
  // C99 Annex F values, on the scalar path (exponent as a run) and on the vector paths for 2 and 0.5.
  struct Case {
    float a, b, want;
  };
  const Case cases[] = {{-2.0f, 2.0f, 4.0f},
                        {-2.0f, 3.0f, -8.0f},
                        {-2.0f, 0.5f, kNaN},
                        {-8.0f, 1.0f / 3.0f, kNaN},
                        {kNaN, 0.0f, 1.0f},
                        {1.0f, kNaN, 1.0f},
                        {-1.0f, kInf, 1.0f},
                        {-1.0f, -kInf, 1.0f},
                        {0.0f, -1.0f, kInf},
                        {-0.0f, -1.0f, -kInf},
                        {-0.0f, -2.0f, kInf},
                        {-0.0f, 3.0f, -0.0f},
                        {-0.0f, 2.0f, 0.0f},
                        {-0.0f, 0.5f, 0.0f},
                        {0.0f, 0.5f, 0.0f},
                        {-kInf, 0.5f, kInf},
                        {-kInf, 2.0f, kInf},
                        {-kInf, 3.0f, -kInf},
                        {-kInf, -1.0f, -0.0f},
                        {kInf, -0.5f, 0.0f},
                        {0.5f, kInf, 0.0f},
                        {2.0f, -kInf, 0.0f},
                        {kNaN, 2.0f, kNaN},
                        {kNaN, 0.5f, kNaN},
                        {-1.0f, 0.5f, kNaN},
                        {4.0f, 0.5f, 2.0f},
                        {3e38f, 2.0f, kInf},
                        {1e-30f, 2.0f, 0.0f},
                        {1e-40f, 0.5f, static_cast<float>(std::sqrt(static_cast<double>(1e-40f)))},
                        {2.0f, 128.0f, kInf},
                        {2.0f, -149.0f, 1e-45f}};
  on_every_target([&] {
    for (const Case& c : cases) {
      float y = 0.0f;
      binary(BinaryOp::kPow, &c.a, 1, &c.b, 1, &y, 1);
      EXPECT_TRUE(same(y, c.want)) << c.a << " ^ " << c.b << " = " << y << ", want " << c.want;
      // The same case among others, exponent broadcast (vector paths for 2 and 0.5).
      std::vector<float> a(21, 1.5f), out(21);
      a[13] = c.a;
      binary(BinaryOp::kPow, a.data(), 1, &c.b, 0, out.data(), a.size());
      EXPECT_TRUE(same(out[13], c.want)) << c.a << " ^ " << c.b << " (broadcast exponent) = " << out[13];
      EXPECT_TRUE(correct(BinaryOp::kPow, out[0], 1.5f, c.b)) << "1.5 ^ " << c.b << " = " << out[0];
    }
  });
}

TEST(Binary, MaxMinPropagateNaNAndOrderSignedZeros) {
  const float a[] = {kNaN, 1.0f, kNaN, 0.0f, -0.0f, 0.0f, -0.0f, -kInf, kInf, 3.0f, -3.0f};
  const float b[] = {1.0f, kNaN, kNaN, -0.0f, 0.0f, 0.0f, -0.0f, 5.0f, 5.0f, -3.0f, 3.0f};
  const float want_max[] = {kNaN, kNaN, kNaN, 0.0f, 0.0f, 0.0f, -0.0f, 5.0f, kInf, 3.0f, 3.0f};
  const float want_min[] = {kNaN, kNaN, kNaN, -0.0f, -0.0f, 0.0f, -0.0f, -kInf, 5.0f, -3.0f, -3.0f};
  on_every_target([&] {
    float y[11];
    binary(BinaryOp::kMax, a, 1, b, 1, y, 11);
    for (int i = 0; i < 11; ++i) EXPECT_TRUE(same(y[i], want_max[i])) << "max " << i << ": " << y[i];
    binary(BinaryOp::kMin, a, 1, b, 1, y, 11);
    for (int i = 0; i < 11; ++i) EXPECT_TRUE(same(y[i], want_min[i])) << "min " << i << ": " << y[i];
  });
}

TEST(Binary, InPlaceOnEitherOperand) {
  const std::size_t n = 1001;
  const std::vector<float> a = mixed_values(n, 3), b = mixed_values(n, 4);
  for (BinaryOp op : kOps) {
    std::vector<float> y = a;
    binary(op, y.data(), 1, b.data(), 1, y.data(), n);
    for (std::size_t i = 0; i < n; ++i) ASSERT_TRUE(correct(op, y[i], a[i], b[i])) << "y == a, i=" << i;
    y = b;
    binary(op, a.data(), 1, y.data(), 1, y.data(), n);
    for (std::size_t i = 0; i < n; ++i) ASSERT_TRUE(correct(op, y[i], a[i], b[i])) << "y == b, i=" << i;
    y = a;
    binary(op, y.data(), 1, y.data(), 1, y.data(), n);
    for (std::size_t i = 0; i < n; ++i) ASSERT_TRUE(correct(op, y[i], a[i], a[i])) << "y == a == b, i=" << i;
  }
}

TEST(Binary, ZeroLengthReadsNothing) {
  for (BinaryOp op : kOps) binary(op, nullptr, 0, nullptr, 0, nullptr, 0);
}

TEST(Binary, RejectsBadArguments) {
  float v = 1.0f;
  try {
    binary(BinaryOp::kAdd, &v, 2, &v, 1, &v, 1);
    ADD_FAILURE() << "no error for stride 2";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
    EXPECT_NE(std::string(e.what()).find("a_stride 2"), std::string::npos) << e.what();
  }
  EXPECT_THROW(binary(BinaryOp::kMul, &v, 1, &v, 5, &v, 1), Error);
  EXPECT_THROW(binary(static_cast<BinaryOp>(7), &v, 1, &v, 1, &v, 1), Error);
  EXPECT_THROW(binary(static_cast<BinaryOp>(-1), &v, 1, &v, 1, &v, 1), Error);
}

}  // namespace
}  // namespace quarks::ops
