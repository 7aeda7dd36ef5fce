// MatMulKernel against a scalar double reference.
#include "ops/dense/matmul_kernel.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>
#include <thread>
#include <vector>

#include "ops/dense/dense_test_util.hpp"
#include "quarks/error.hpp"

namespace quarks::ops {
namespace {

using dense_test::Scratch;

// Checks y = op(A)·op(B) for the config; a and b hold the batch as the strides describe.
void check_matmul(const MatMulConfig& c, const std::vector<float>& a, const std::vector<float>& b) {
  const MatMulKernel kernel(c);
  std::vector<float> y(static_cast<std::size_t>(c.batch * c.m * c.n), -12345.0f);
  Scratch scratch(kernel.scratch_bytes());
  kernel.run(a.data(), b.data(), y.data(), scratch.data());
  const std::string what = "batch=" + std::to_string(c.batch) + " m=" + std::to_string(c.m) +
                           " k=" + std::to_string(c.k) + " n=" + std::to_string(c.n) +
                           " ta=" + std::to_string(c.trans_a) + " tb=" + std::to_string(c.trans_b) +
                           " threads=" + std::to_string(c.max_threads);
  int failures = 0;
  for (std::int64_t bi = 0; bi < c.batch; ++bi) {
    const float* ab = a.data() + bi * c.a_batch_stride;
    const float* bb = b.data() + bi * c.b_batch_stride;
    for (std::int64_t i = 0; i < c.m && failures < 5; ++i) {
      for (std::int64_t j = 0; j < c.n && failures < 5; ++j) {
        double s = 0.0, abs_sum = 0.0;
        for (std::int64_t p = 0; p < c.k; ++p) {
          const double av = c.trans_a ? ab[p * c.m + i] : ab[i * c.k + p];
          const double bv = c.trans_b ? bb[j * c.k + p] : bb[p * c.n + j];
          s += av * bv;
          abs_sum += std::abs(av * bv);
        }
        const double got = y[(bi * c.m + i) * c.n + j];
        if (std::isnan(s)) {
          if (!std::isnan(got)) ++failures;
          EXPECT_TRUE(std::isnan(got)) << what << " at [" << bi << "," << i << "," << j << "]";
          continue;
        }
        const double tol = dense_test::f32_dot_tolerance(c.k, abs_sum) + 1e-6;
        if (!(std::abs(got - s) <= tol)) ++failures;
        EXPECT_NEAR(got, s, tol) << what << " at [" << bi << "," << i << "," << j << "]";
      }
    }
  }
}

struct Case {
  std::int64_t batch, m, k, n;
  bool ta, tb;
  bool broadcast_a, broadcast_b;
};

TEST(MatMulKernel, Shapes) {
  const std::vector<Case> cases = {
      {12, 128, 64, 128, false, true, false, false},   // attention scores Q·Kᵀ
      {12, 128, 128, 64, false, false, false, false},  // P·V
      {3, 17, 7, 5, true, false, false, false},       {2, 1, 1, 1, true, true, false, false},
      {4, 3, 64, 65, false, false, false, true},      {5, 17, 768, 3, false, true, true, false},
      {1, 1000, 64, 5, false, false, false, false},   {1, 3, 7, 3072, true, true, false, false},
      {0, 5, 5, 5, false, false, false, false},       {2, 0, 5, 5, false, false, false, false},
      {2, 5, 5, 0, false, false, false, false},
  };
  dense_test::for_each_arena([&](int threads) {
    for (const Case& t : cases) {
      MatMulConfig c;
      c.batch = t.batch;
      c.m = t.m;
      c.k = t.k;
      c.n = t.n;
      c.trans_a = t.ta;
      c.trans_b = t.tb;
      c.a_batch_stride = t.broadcast_a ? 0 : t.m * t.k;
      c.b_batch_stride = t.broadcast_b ? 0 : t.k * t.n;
      c.max_threads = threads;
      const auto a = dense_test::random_values(std::max<std::int64_t>(t.batch, 1) * t.m * t.k, 1);
      const auto b = dense_test::random_values(std::max<std::int64_t>(t.batch, 1) * t.k * t.n, 2);
      check_matmul(c, a, b);
    }
  });
}

TEST(MatMulKernel, NaNPropagates) {
  MatMulConfig c;
  c.batch = 2;
  c.m = 5;
  c.k = 16;
  c.n = 7;
  c.a_batch_stride = c.m * c.k;
  c.b_batch_stride = c.k * c.n;
  auto a = dense_test::random_values(c.batch * c.m * c.k, 1);
  a[c.m * c.k + 2 * c.k + 3] = std::numeric_limits<float>::quiet_NaN();
  const auto b = dense_test::random_values(c.batch * c.k * c.n, 2);
  dense_test::for_each_arena([&](int threads) {
    c.max_threads = threads;
    check_matmul(c, a, b);
  });
}

TEST(MatMulKernel, ConcurrentRunsAgree) {
  MatMulConfig c;
  c.batch = 6;
  c.m = 64;
  c.k = 32;
  c.n = 64;
  c.trans_b = true;
  c.a_batch_stride = c.m * c.k;
  c.b_batch_stride = c.k * c.n;
  c.max_threads = 2;
  const auto a = dense_test::random_values(c.batch * c.m * c.k, 1);
  const auto b = dense_test::random_values(c.batch * c.k * c.n, 2);
  const MatMulKernel kernel(c);
  std::vector<float> expected(static_cast<std::size_t>(c.batch * c.m * c.n));
  Scratch scratch(kernel.scratch_bytes());
  kernel.run(a.data(), b.data(), expected.data(), scratch.data());
  bool same[2] = {true, true};
  auto worker = [&](int id) {
    Scratch own(kernel.scratch_bytes());
    std::vector<float> y(expected.size());
    for (int iter = 0; iter < 30; ++iter) {
      kernel.run(a.data(), b.data(), y.data(), own.data());
      same[id] = same[id] && y == expected;
    }
  };
  std::thread t1(worker, 0), t2(worker, 1);
  t1.join();
  t2.join();
  EXPECT_TRUE(same[0] && same[1]);
}

TEST(MatMulKernel, RejectsBadConfig) {
  MatMulConfig c;
  c.m = 2;
  c.k = 0;
  c.n = 2;
  EXPECT_THROW(MatMulKernel{c}, Error);
  c.k = 2;
  c.a_batch_stride = -1;
  EXPECT_THROW(MatMulKernel{c}, Error);
}

}  // namespace
}  // namespace quarks::ops
