// GatedDenseKernel against a scalar double reference.
#include "ops/dense/gated_dense_kernel.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "ops/dense/dense_test_util.hpp"
#include "quarks/error.hpp"

namespace quarks::ops {
namespace {

using dense_test::Scratch;

struct Case {
  std::int64_t m, k, n;
  Activation f, g;
  bool bias1, bias2;
};

// Returns false when the CPU cannot run the bf16 mode.
bool check_gated(const Case& t, int threads, bool bf16, const std::vector<float>* x_override = nullptr) {
  GatedDenseConfig c;
  c.m = t.m;
  c.k = t.k;
  c.n = t.n;
  c.f = t.f;
  c.g = t.g;
  c.bf16_weights = bf16;
  c.max_threads = threads;
  const auto x = x_override ? *x_override : dense_test::random_values(t.m * t.k, 1);
  const auto w1 = dense_test::random_values(t.k * t.n, 2);
  const auto w2 = dense_test::random_values(t.k * t.n, 3);
  const auto b1 = dense_test::random_values(t.n, 4);
  const auto b2 = dense_test::random_values(t.n, 5);
  const float* pb1 = t.bias1 ? b1.data() : nullptr;
  const float* pb2 = t.bias2 ? b2.data() : nullptr;
  std::unique_ptr<GatedDenseKernel> kernel;
  try {
    kernel = std::make_unique<GatedDenseKernel>(c, w1.data(), pb1, w2.data(), pb2);
  } catch (const Error& e) {
    if (bf16 && e.code() == ErrorCode::kUnsupported) return false;
    throw;
  }
  std::vector<float> y(static_cast<std::size_t>(t.m * t.n), -12345.0f);
  Scratch scratch(kernel->scratch_bytes());
  kernel->run(x.data(), y.data(), scratch.data());
  const std::string what = "m=" + std::to_string(t.m) + " k=" + std::to_string(t.k) + " n=" + std::to_string(t.n) +
                           " f=" + t.f.to_string() + " g=" + t.g.to_string() + " threads=" + std::to_string(threads);
  int failures = 0;
  for (std::int64_t i = 0; i < t.m && failures < 5; ++i) {
    for (std::int64_t j = 0; j < t.n && failures < 5; ++j) {
      double s1 = pb1 ? pb1[j] : 0.0, s2 = pb2 ? pb2[j] : 0.0;
      double a1 = std::abs(s1), a2 = std::abs(s2);
      for (std::int64_t p = 0; p < t.k; ++p) {
        const double xv = x[i * t.k + p];
        s1 += xv * w1[p * t.n + j];
        s2 += xv * w2[p * t.n + j];
        a1 += std::abs(xv * w1[p * t.n + j]);
        a2 += std::abs(xv * w2[p * t.n + j]);
      }
      const double f1 = dense_test::reference_activation(t.f, s1), g2 = dense_test::reference_activation(t.g, s2);
      const double ref = f1 * g2;
      const double got = y[i * t.n + j];
      if (std::isnan(ref) || std::isinf(ref)) {
        const bool same = std::isnan(ref) ? std::isnan(got) : got == ref;
        if (!same) ++failures;
        EXPECT_TRUE(same) << what << " at [" << i << "," << j << "]: got " << got << ", want " << ref;
        continue;
      }
      const double e1 = bf16 ? dense_test::bf16_dot_tolerance(t.k, a1) : dense_test::f32_dot_tolerance(t.k, a1);
      const double e2 = bf16 ? dense_test::bf16_dot_tolerance(t.k, a2) : dense_test::f32_dot_tolerance(t.k, a2);
      if (dense_test::near_jump(t.f, s1, e1) || dense_test::near_jump(t.g, s2, e2)) continue;
      const double d1 = dense_test::activation_slope(t.f, s1, e1) * e1 + 1e-5 * std::abs(f1) + 1e-6;
      const double d2 = dense_test::activation_slope(t.g, s2, e2) * e2 + 1e-5 * std::abs(g2) + 1e-6;
      const double tol = d1 * std::abs(g2) + d2 * std::abs(f1) + d1 * d2 + 1e-6;
      if (!(std::abs(got - ref) <= tol)) ++failures;
      EXPECT_NEAR(got, ref, tol) << what << " at [" << i << "," << j << "]";
    }
  }
  return true;
}

const std::vector<Case> kCases = {
    {0, 7, 5, Activation::silu(), Activation::identity(), true, true},
    {1, 1, 1, Activation::silu(), Activation::identity(), true, true},
    {3, 7, 65, Activation::gelu(), Activation::identity(), true, false},
    {17, 64, 64, Activation::sigmoid(), Activation::tanh(), false, true},
    {128, 64, 65, Activation::relu(), Activation::identity(), false, false},
    {1000, 7, 5, Activation::identity(), Activation::identity(), true, true},
    {17, 768, 130, Activation::sign(), Activation::heaviside(), true, true},
    {3, 64, 3072, Activation::polynomial({0.0f, 1.0f, 0.5f}), Activation::square(), true, true},
    {100, 768, 300, Activation::silu(), Activation::identity(), true, true},
};

TEST(GatedDenseKernel, Shapes) {
  dense_test::for_each_arena([&](int threads) {
    for (const Case& t : kCases) check_gated(t, threads, false);
  });
}

TEST(GatedDenseKernel, Bf16) {
  dense_test::for_each_arena([&](int threads) {
    for (const Case& t : {kCases[2], kCases[3], kCases[8]}) {
      if (!check_gated(t, threads, true)) GTEST_SKIP() << "no bf16 matmul on this CPU";
    }
  });
}

TEST(GatedDenseKernel, SpecialValuesPropagate) {
  const Case t{4, 64, 130, Activation::silu(), Activation::identity(), true, true};
  auto x = dense_test::random_values(t.m * t.k, 1);
  for (std::int64_t p = 0; p < t.k; ++p) x[1 * t.k + p] = x[2 * t.k + p] = 0.0f;
  x[1 * t.k + 3] = std::numeric_limits<float>::quiet_NaN();
  x[2 * t.k + 3] = std::numeric_limits<float>::infinity();
  dense_test::for_each_arena([&](int threads) { check_gated(t, threads, false, &x); });
}

TEST(GatedDenseKernel, ConcurrentRunsAgree) {
  GatedDenseConfig c;
  c.m = 100;
  c.k = 64;
  c.n = 300;
  c.f = Activation::silu();
  c.max_threads = 2;
  const auto x = dense_test::random_values(c.m * c.k, 1);
  const auto w1 = dense_test::random_values(c.k * c.n, 2);
  const auto w2 = dense_test::random_values(c.k * c.n, 3);
  const GatedDenseKernel kernel(c, w1.data(), nullptr, w2.data(), nullptr);
  std::vector<float> expected(static_cast<std::size_t>(c.m * c.n));
  Scratch scratch(kernel.scratch_bytes());
  kernel.run(x.data(), expected.data(), scratch.data());
  bool same[2] = {true, true};
  auto worker = [&](int id) {
    Scratch own(kernel.scratch_bytes());
    std::vector<float> y(expected.size());
    for (int iter = 0; iter < 30; ++iter) {
      kernel.run(x.data(), y.data(), own.data());
      same[id] = same[id] && y == expected;
    }
  };
  std::thread t1(worker, 0), t2(worker, 1);
  t1.join();
  t2.join();
  EXPECT_TRUE(same[0] && same[1]);
}

}  // namespace
}  // namespace quarks::ops
