// Tests of the elementwise binary kernels. The reference is the operation in double rounded to f32:
// for +, -, ×, ÷ of two floats that equals the correctly rounded f32 result (double has more than
// 2·24 + 2 significand bits), so every kernel result must match it exactly, special values included.
#include "ops/elementwise/binary_kernels.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
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
constexpr BinaryOp kOps[] = {BinaryOp::kAdd, BinaryOp::kSub, BinaryOp::kMul, BinaryOp::kDiv};

const char* name(BinaryOp op) {
  switch (op) {
    case BinaryOp::kAdd: return "add";
    case BinaryOp::kSub: return "sub";
    case BinaryOp::kMul: return "mul";
    case BinaryOp::kDiv: return "div";
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
  }
  return kNaN;
}

// Bitwise equality, except that any NaN matches any NaN (payloads are not part of the contract).
bool same(float a, float b) {
  if (std::isnan(a) || std::isnan(b)) return std::isnan(a) && std::isnan(b);
  return std::signbit(a) == std::signbit(b) && a == b;
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
    ASSERT_TRUE(same(y[i], reference(op, ai, bi)))
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

TEST(Binary, InPlaceOnEitherOperand) {
  const std::size_t n = 1001;
  const std::vector<float> a = mixed_values(n, 3), b = mixed_values(n, 4);
  for (BinaryOp op : kOps) {
    std::vector<float> y = a;
    binary(op, y.data(), 1, b.data(), 1, y.data(), n);
    for (std::size_t i = 0; i < n; ++i) ASSERT_TRUE(same(y[i], reference(op, a[i], b[i]))) << "y == a, i=" << i;
    y = b;
    binary(op, a.data(), 1, y.data(), 1, y.data(), n);
    for (std::size_t i = 0; i < n; ++i) ASSERT_TRUE(same(y[i], reference(op, a[i], b[i]))) << "y == b, i=" << i;
    y = a;
    binary(op, y.data(), 1, y.data(), 1, y.data(), n);
    for (std::size_t i = 0; i < n; ++i) ASSERT_TRUE(same(y[i], reference(op, a[i], a[i]))) << "y == a == b, i=" << i;
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
  EXPECT_THROW(binary(static_cast<BinaryOp>(4), &v, 1, &v, 1, &v, 1), Error);
}

}  // namespace
}  // namespace quarks::ops
