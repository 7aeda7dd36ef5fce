// LinearBf16Kernel (bf16 [N, K] weights read in place) against a scalar double reference on the same
// bf16 weights: the matrix-vector path (few rows; x rounded to bf16 where the CPU has AVX512_BF16, else
// kept in f32) and the oneDNN path (x in bf16).
#include "ops/dense/linear_bf16_kernel.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/bf16_bits.hpp"
#include "ops/dense/dense_test_util.hpp"
#include "ops/dense/gemv_bf16_simd.hpp"
#include "quarks/error.hpp"

namespace quarks::ops {
namespace {

using dense_test::Scratch;

using test::bf16_bits;
using test::bf16_value;

// [n, ld] bf16 rows starting `offset` elements into the buffer; everything else (the padding past k,
// the elements before and after the matrix) is NaN, so that a kernel that lets it in shows.
std::vector<std::uint16_t> random_rows(std::int64_t n, std::int64_t k, std::int64_t ld, std::int64_t offset,
                                       std::uint32_t seed) {
  const auto v = dense_test::random_values(n * k, seed);
  std::vector<std::uint16_t> w(static_cast<std::size_t>(offset + n * ld + 64), 0x7FC0);
  for (std::int64_t j = 0; j < n; ++j)
    for (std::int64_t p = 0; p < k; ++p) w[offset + j * ld + p] = bf16_bits(v[j * k + p]);
  return w;
}

struct Case {
  std::int64_t m, k, n, ld;
  std::int64_t offset;  // elements between the buffer's (16-byte aligned) start and W's
  Activation f;
  std::optional<Activation> g;
  bool bias;
};

std::string describe(const Case& t, int threads) {
  return "m=" + std::to_string(t.m) + " k=" + std::to_string(t.k) + " n=" + std::to_string(t.n) +
         " ld=" + std::to_string(t.ld) + " offset=" + std::to_string(t.offset) + " f=" + t.f.to_string() +
         (t.g ? " g=" + t.g->to_string() : "") + (t.bias ? " bias" : "") + " threads=" + std::to_string(threads);
}

// Returns false when the CPU cannot run the case (oneDNN without a bf16 matmul).
bool check(const Case& t, int threads) {
  LinearBf16Config c;
  c.m = t.m;
  c.k = t.k;
  c.n = t.n;
  c.f = t.f;
  c.g = t.g;
  c.max_threads = threads;
  const auto x = dense_test::random_values(t.m * t.k, 1);
  const auto w1 = random_rows(t.n, t.k, t.ld, t.offset, 2), w2 = random_rows(t.n, t.k, t.ld, t.offset, 3);
  const auto b1 = dense_test::random_values(t.n, 4), b2 = dense_test::random_values(t.n, 5);
  const LinearBf16Kernel::Weights a{w1.data() + t.offset, t.ld, t.bias ? b1.data() : nullptr};
  const LinearBf16Kernel::Weights b{w2.data() + t.offset, t.ld, t.bias ? b2.data() : nullptr};
  std::unique_ptr<LinearBf16Kernel> kernel;
  try {
    kernel = t.g ? std::make_unique<LinearBf16Kernel>(c, a, b) : std::make_unique<LinearBf16Kernel>(c, a);
  } catch (const Error& e) {
    if (e.code() == ErrorCode::kUnsupported && t.m > static_cast<std::int64_t>(dense_detail::kGemvMaxRows)) {
      return false;
    }
    throw;
  }
  std::vector<float> y(static_cast<std::size_t>(t.m * t.n), -12345.0f);
  Scratch scratch(kernel->scratch_bytes());
  kernel->run(x.data(), y.data(), scratch.data());
  const bool x_in_bf16 =
      t.m > static_cast<std::int64_t>(dense_detail::kGemvMaxRows) || dense_detail::gemv_bf16_rounds_x();
  const std::string what = describe(t, threads);
  int failures = 0;
  for (std::int64_t i = 0; i < t.m && failures < 5; ++i) {
    for (std::int64_t j = 0; j < t.n && failures < 5; ++j) {
      const auto dot = [&](const std::vector<std::uint16_t>& w, const std::vector<float>& bias, double& abs_sum) {
        double s = t.bias ? bias[j] : 0.0;
        abs_sum = std::abs(s);
        for (std::int64_t p = 0; p < t.k; ++p) {
          const double term = x[i * t.k + p] * bf16_value(w[t.offset + j * t.ld + p]);
          s += term;
          abs_sum += std::abs(term);
        }
        return s;
      };
      double a1 = 0, a2 = 0;
      const double s1 = dot(w1, b1, a1);
      const double s2 = t.g ? dot(w2, b2, a2) : 0.0;
      const double e1 = x_in_bf16 ? dense_test::bf16_dot_tolerance(t.k, a1) : dense_test::f32_dot_tolerance(t.k, a1);
      const double e2 = x_in_bf16 ? dense_test::bf16_dot_tolerance(t.k, a2) : dense_test::f32_dot_tolerance(t.k, a2);
      const double f1 = dense_test::reference_activation(t.f, s1);
      const double g2 = t.g ? dense_test::reference_activation(*t.g, s2) : 1.0;
      const double ref = f1 * g2;
      double tol = dense_test::activation_slope(t.f, s1, e1) * e1 * std::abs(g2) + 1e-5 * std::abs(ref) + 1e-6;
      if (t.g) tol += dense_test::activation_slope(*t.g, s2, e2) * e2 * std::abs(f1);
      const double got = y[i * t.n + j];
      if (!(std::abs(got - ref) <= tol)) ++failures;
      EXPECT_NEAR(got, ref, tol) << what << " at [" << i << "," << j << "]";
    }
  }
  return true;
}

TEST(LinearBf16Kernel, MatchesDoubleReferenceOnEveryPath) {
  const std::vector<Case> cases = {
      // Highway matrix-vector path: every row count, k with and without a partial vector, narrow n,
      // weights at every offset within a vector (aligned loads over NaN neighbours) and unaligned rows.
      {1, 2048, 130, 2048, 0, Activation::identity(), std::nullopt, false},
      {1, 2048, 70, 2048, 4, Activation::identity(), std::nullopt, false},
      {1, 17, 5, 17, 3, Activation::identity(), std::nullopt, true},
      {2, 64, 63, 64, 31, Activation::silu(), std::nullopt, true},
      {2, 64, 63, 80, 1, Activation::silu(), std::nullopt, true},
      {3, 300, 70, 320, 13, Activation::gelu_tanh(), std::nullopt, false},
      {3, 300, 70, 301, 0, Activation::gelu_tanh(), std::nullopt, false},
      {4, 1, 9, 1, 0, Activation::relu(), std::nullopt, true},
      {4, 40, 9, 64, 24, Activation::relu(), std::nullopt, true},
      {5, 96, 33, 96, 7, Activation::identity(), std::nullopt, false},
      {8, 130, 257, 160, 16, Activation::tanh(), std::nullopt, true},
      {1, 256, 200, 256, 8, Activation::silu(), Activation::identity(), false},
      {6, 77, 41, 96, 2, Activation::gelu_tanh(), Activation::identity(), true},
      {1, 5, 1, 32, 30, Activation::identity(), std::nullopt, false},
      {0, 16, 8, 16, 0, Activation::identity(), std::nullopt, false},
      // oneDNN path: short blocks, narrow tiles, gated, wide tiles.
      {9, 64, 100, 64, 0, Activation::identity(), std::nullopt, true},
      {33, 300, 800, 320, 4, Activation::silu(), std::nullopt, false},
      {40, 128, 600, 128, 0, Activation::silu(), Activation::identity(), true},
      {300, 96, 520, 96, 0, Activation::gelu_tanh(), Activation::identity(), false},
      {600, 64, 130, 64, 0, Activation::relu(), std::nullopt, true},
  };
  bool skipped = false;
  dense_test::for_each_arena([&](int threads) {
    for (const Case& t : cases) skipped |= !check(t, threads);
  });
  if (skipped) GTEST_SKIP() << "oneDNN 2.6 has no bf16 matmul on this CPU (no AVX-512): the rows-> 8 cases did not run";
}

TEST(LinearBf16Kernel, RejectsBadWeights) {
  LinearBf16Config c;
  c.m = 1;
  c.k = 8;
  c.n = 4;
  std::vector<std::uint16_t> w(64, 0);
  try {
    LinearBf16Kernel kernel(c, {w.data(), 7, nullptr});
    FAIL() << "a row stride below k was accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
    EXPECT_NE(std::string(e.what()).find("row stride 7 < k = 8"), std::string::npos) << e.what();
  }
  c.g = Activation::identity();
  EXPECT_THROW(LinearBf16Kernel(c, {w.data(), 8, nullptr}, {nullptr, 8, nullptr}), Error);
}

}  // namespace
}  // namespace quarks::ops
