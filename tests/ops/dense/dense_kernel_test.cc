// DenseKernel against a scalar double reference.
#include "ops/dense/dense_kernel.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "ops/dense/dense_test_util.hpp"
#include "quarks/error.hpp"

namespace quarks::ops {
namespace {

using dense_test::Scratch;

struct Shape3 {
  std::int64_t m, k, n;
};

// Runs the kernel on (x, w, b) and checks every element against the double reference. Returns false
// (after GTEST_SKIP) when the CPU cannot run the bf16 mode.
bool check_dense(const DenseConfig& c, const std::vector<float>& x, const std::vector<float>& w, const float* bias) {
  std::unique_ptr<DenseKernel> kernel;
  try {
    kernel = std::make_unique<DenseKernel>(c, w.data(), bias);
  } catch (const Error& e) {
    if (c.bf16_weights && e.code() == ErrorCode::kUnsupported) return false;
    throw;
  }
  std::vector<float> y(static_cast<std::size_t>(c.m * c.n), -12345.0f);
  Scratch scratch(kernel->scratch_bytes());
  kernel->run(x.data(), y.data(), scratch.data());
  const std::string what = "m=" + std::to_string(c.m) + " k=" + std::to_string(c.k) + " n=" + std::to_string(c.n) +
                           " act=" + c.activation.to_string() + (bias ? " bias" : "") +
                           (c.bf16_weights ? " bf16" : "") + " threads=" + std::to_string(c.max_threads);
  int failures = 0;
  for (std::int64_t i = 0; i < c.m && failures < 5; ++i) {
    for (std::int64_t j = 0; j < c.n && failures < 5; ++j) {
      double s = bias ? bias[j] : 0.0, abs_sum = bias ? std::abs(bias[j]) : 0.0;
      for (std::int64_t p = 0; p < c.k; ++p) {
        const double t = static_cast<double>(x[i * c.k + p]) * w[p * c.n + j];
        s += t;
        abs_sum += std::abs(t);
      }
      const double got = y[i * c.n + j];
      const double ref = dense_test::reference_activation(c.activation, s);
      if (std::isnan(ref) || std::isinf(ref)) {
        const bool same = std::isnan(ref) ? std::isnan(got) : got == ref;
        if (!same) ++failures;
        EXPECT_TRUE(same) << what << " at [" << i << "," << j << "]: got " << got << ", want " << ref;
        continue;
      }
      const double pre =
          c.bf16_weights ? dense_test::bf16_dot_tolerance(c.k, abs_sum) : dense_test::f32_dot_tolerance(c.k, abs_sum);
      if (dense_test::near_jump(c.activation, s, pre)) continue;
      const double tol = dense_test::activation_slope(c.activation, s, pre) * pre + 1e-5 * std::abs(ref) + 1e-6;
      if (!(std::abs(got - ref) <= tol)) ++failures;
      EXPECT_NEAR(got, ref, tol) << what << " at [" << i << "," << j << "]";
    }
  }
  return true;
}

void check_shapes(const std::vector<Shape3>& shapes, const Activation& f, bool with_bias, bool bf16) {
  dense_test::for_each_arena([&](int threads) {
    for (const Shape3& s : shapes) {
      DenseConfig c;
      c.m = s.m;
      c.k = s.k;
      c.n = s.n;
      c.activation = f;
      c.bf16_weights = bf16;
      c.max_threads = threads;
      const auto x = dense_test::random_values(s.m * s.k, 1);
      const auto w = dense_test::random_values(s.k * s.n, 2);
      const auto b = dense_test::random_values(s.n, 3);
      if (!check_dense(c, x, w, with_bias ? b.data() : nullptr)) GTEST_SKIP() << "no bf16 matmul on this CPU";
    }
  });
}

// A covering set: m ∈ {0,1,3,17,128,1000}, k ∈ {1,7,64,768}, n ∈ {1,5,64,65,3072}, each value at least
// once, with tiles that split rows, columns, or both, and narrow last tiles.
const std::vector<Shape3> kShapes = {{0, 7, 5},     {1, 1, 1},    {3, 7, 65},    {17, 64, 64},  {1, 768, 3072},
                                     {128, 64, 65}, {1000, 7, 5}, {17, 768, 65}, {3, 64, 3072}, {1000, 1, 64}};

TEST(DenseKernel, ShapesIdentityWithBias) { check_shapes(kShapes, Activation::identity(), true, false); }

TEST(DenseKernel, ShapesReluWithoutBias) { check_shapes(kShapes, Activation::relu(), false, false); }

TEST(DenseKernel, LargeGelu) { check_shapes({{32, 768, 3072}}, Activation::gelu(), true, false); }

TEST(DenseKernel, EveryActivation) {
  for (const Activation& f : dense_test::all_activations()) {
    SCOPED_TRACE(f.to_string());
    check_shapes({{17, 64, 130}, {3, 7, 5}}, f, true, false);
  }
}

TEST(DenseKernel, Bf16) {
  for (const Activation& f : {Activation::identity(), Activation::gelu(), Activation::tanh()}) {
    check_shapes({{17, 64, 130}, {128, 768, 65}, {0, 7, 5}}, f, true, true);
  }
}

TEST(DenseKernel, ZeroRowsIsANoOp) {
  DenseConfig c;
  c.m = 0;
  c.k = 7;
  c.n = 5;
  const auto w = dense_test::random_values(35, 1);
  const DenseKernel kernel(c, w.data(), nullptr);
  kernel.run(nullptr, nullptr, nullptr);
}

TEST(DenseKernel, RejectsBadConfig) {
  DenseConfig c;
  c.m = 3;
  c.k = 0;
  c.n = 5;
  const float w = 1.0f;
  EXPECT_THROW(DenseKernel(c, &w, nullptr), Error);
  c.k = 1;
  c.max_threads = 0;
  EXPECT_THROW(DenseKernel(c, &w, nullptr), Error);
}

// Rows of x holding NaN, +inf or -inf (with zeros elsewhere, so each pre-activation is NaN or ±inf):
// every activation must give NaN or its limit, fused into oneDNN or not.
TEST(DenseKernel, SpecialValuesPropagate) {
  const float inf = std::numeric_limits<float>::infinity();
  for (const Activation& f : dense_test::all_activations()) {
    SCOPED_TRACE(f.to_string());
    dense_test::for_each_arena([&](int threads) {
      DenseConfig c;
      c.m = 5;
      c.k = 64;
      c.n = 130;
      c.activation = f;
      c.max_threads = threads;
      auto x = dense_test::random_values(c.m * c.k, 1);
      for (std::int64_t p = 0; p < c.k; ++p) x[1 * c.k + p] = x[2 * c.k + p] = x[3 * c.k + p] = 0.0f;
      x[1 * c.k + 5] = std::numeric_limits<float>::quiet_NaN();
      x[2 * c.k + 9] = inf;
      x[3 * c.k + 9] = -inf;
      auto w = dense_test::random_values(c.k * c.n, 2);
      for (float& v : w) v = v == 0.0f ? 0.5f : v;  // inf·0 would be NaN
      const auto b = dense_test::random_values(c.n, 3);
      check_dense(c, x, w, b.data());
    });
  }
}

// Two threads calling run() on one kernel at once, each with its own scratch, give the single-call
// result bit for bit.
TEST(DenseKernel, ConcurrentRunsAgree) {
  for (bool bf16 : {false, true}) {
    DenseConfig c;
    c.m = 100;
    c.k = 64;
    c.n = 300;
    c.activation = Activation::gelu();
    c.bf16_weights = bf16;
    c.max_threads = 2;
    const auto x = dense_test::random_values(c.m * c.k, 1);
    const auto w = dense_test::random_values(c.k * c.n, 2);
    const auto b = dense_test::random_values(c.n, 3);
    std::unique_ptr<DenseKernel> kernel;
    try {
      kernel = std::make_unique<DenseKernel>(c, w.data(), b.data());
    } catch (const Error& e) {
      ASSERT_TRUE(bf16 && e.code() == ErrorCode::kUnsupported) << e.what();
      continue;
    }
    std::vector<float> expected(static_cast<std::size_t>(c.m * c.n));
    Scratch scratch(kernel->scratch_bytes());
    kernel->run(x.data(), expected.data(), scratch.data());
    std::vector<float> y1(expected.size()), y2(expected.size());
    bool same1 = true, same2 = true;
    auto worker = [&](std::vector<float>& y, bool& same) {
      Scratch own(kernel->scratch_bytes());
      for (int iter = 0; iter < 30; ++iter) {
        std::fill(y.begin(), y.end(), 0.0f);
        kernel->run(x.data(), y.data(), own.data());
        same = same && y == expected;
      }
    };
    std::thread t1(worker, std::ref(y1), std::ref(same1));
    std::thread t2(worker, std::ref(y2), std::ref(same2));
    t1.join();
    t2.join();
    EXPECT_TRUE(same1 && same2);
  }
}

}  // namespace
}  // namespace quarks::ops
