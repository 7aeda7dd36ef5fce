// SynapticGateKernel against a scalar double reference, in its three gate modes.
#include "ops/dense/synaptic_gate_kernel.hpp"

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

double gate_at(SynapticGateMode mode, const std::vector<float>& g, std::int64_t i, std::int64_t p, std::int64_t j,
               std::int64_t k, std::int64_t n) {
  switch (mode) {
    case SynapticGateMode::kSynapseMask: return g[p * n + j];
    case SynapticGateMode::kPerInput: return g[i * k + p];
    case SynapticGateMode::kFull: return g[(i * k + p) * n + j];
  }
  return 0.0;
}

std::int64_t gate_size(SynapticGateMode mode, std::int64_t m, std::int64_t k, std::int64_t n) {
  switch (mode) {
    case SynapticGateMode::kSynapseMask: return k * n;
    case SynapticGateMode::kPerInput: return m * k;
    case SynapticGateMode::kFull: return m * k * n;
  }
  return 0;
}

void check_synaptic(const SynapticGateConfig& c, const std::vector<float>& x, const std::vector<float>& w,
                    const std::vector<float>& g) {
  const SynapticGateKernel kernel(c, w.data());
  std::vector<float> y(static_cast<std::size_t>(c.m * c.n), -12345.0f);
  Scratch scratch(kernel.scratch_bytes());
  kernel.run(x.data(), g.data(), y.data(), scratch.data());
  const std::string what = "mode=" + std::to_string(static_cast<int>(c.mode)) + " m=" + std::to_string(c.m) +
                           " k=" + std::to_string(c.k) + " n=" + std::to_string(c.n) +
                           " threads=" + std::to_string(c.max_threads);
  int failures = 0;
  for (std::int64_t i = 0; i < c.m && failures < 5; ++i) {
    for (std::int64_t j = 0; j < c.n && failures < 5; ++j) {
      double s = 0.0, abs_sum = 0.0;
      for (std::int64_t p = 0; p < c.k; ++p) {
        const double t = static_cast<double>(x[i * c.k + p]) * w[p * c.n + j] * gate_at(c.mode, g, i, p, j, c.k, c.n);
        s += t;
        abs_sum += std::abs(t);
      }
      const double got = y[i * c.n + j];
      if (std::isnan(s) || std::isinf(s)) {
        const bool same = std::isnan(s) ? std::isnan(got) : got == s;
        if (!same) ++failures;
        EXPECT_TRUE(same) << what << " at [" << i << "," << j << "]: got " << got << ", want " << s;
        continue;
      }
      // One more rounding per term than a plain product (the gate multiply).
      const double tol = dense_test::f32_dot_tolerance(c.k, abs_sum) + 2.0 * 0x1p-24 * abs_sum + 1e-6;
      if (!(std::abs(got - s) <= tol)) ++failures;
      EXPECT_NEAR(got, s, tol) << what << " at [" << i << "," << j << "]";
    }
  }
}

struct Shape3 {
  std::int64_t m, k, n;
};

void check_mode(SynapticGateMode mode, const std::vector<Shape3>& shapes) {
  dense_test::for_each_arena([&](int threads) {
    for (const Shape3& s : shapes) {
      SynapticGateConfig c;
      c.m = s.m;
      c.k = s.k;
      c.n = s.n;
      c.mode = mode;
      c.max_threads = threads;
      check_synaptic(c, dense_test::random_values(s.m * s.k, 1), dense_test::random_values(s.k * s.n, 2),
                     dense_test::random_values(gate_size(mode, s.m, s.k, s.n), 3, 0.0f, 2.0f));
    }
  });
}

const std::vector<Shape3> kShapes = {{0, 7, 5},    {1, 1, 1},    {3, 7, 65},    {17, 64, 130},
                                     {1000, 7, 5}, {5, 768, 64}, {1, 64, 3072}, {128, 64, 65}};

TEST(SynapticGateKernel, SynapseMask) { check_mode(SynapticGateMode::kSynapseMask, kShapes); }

TEST(SynapticGateKernel, PerInput) { check_mode(SynapticGateMode::kPerInput, kShapes); }

TEST(SynapticGateKernel, Full) { check_mode(SynapticGateMode::kFull, kShapes); }

TEST(SynapticGateKernel, SpecialValuesPropagate) {
  for (SynapticGateMode mode : {SynapticGateMode::kSynapseMask, SynapticGateMode::kPerInput, SynapticGateMode::kFull}) {
    SynapticGateConfig c;
    c.m = 3;
    c.k = 16;
    c.n = 20;
    c.mode = mode;
    auto x = dense_test::random_values(c.m * c.k, 1);
    for (std::int64_t p = 0; p < c.k; ++p) x[c.k + p] = x[2 * c.k + p] = 0.0f;
    x[c.k + 4] = std::numeric_limits<float>::quiet_NaN();
    x[2 * c.k + 4] = std::numeric_limits<float>::infinity();
    const auto w = dense_test::random_values(c.k * c.n, 2, 0.5f, 1.0f);
    const auto g = dense_test::random_values(gate_size(mode, c.m, c.k, c.n), 3, 0.5f, 2.0f);
    dense_test::for_each_arena([&](int threads) {
      c.max_threads = threads;
      check_synaptic(c, x, w, g);
    });
  }
}

TEST(SynapticGateKernel, ConcurrentRunsAgree) {
  for (SynapticGateMode mode : {SynapticGateMode::kSynapseMask, SynapticGateMode::kPerInput, SynapticGateMode::kFull}) {
    SynapticGateConfig c;
    c.m = 40;
    c.k = 32;
    c.n = 200;
    c.mode = mode;
    c.max_threads = 2;
    const auto x = dense_test::random_values(c.m * c.k, 1);
    const auto w = dense_test::random_values(c.k * c.n, 2);
    const auto g = dense_test::random_values(gate_size(mode, c.m, c.k, c.n), 3);
    const SynapticGateKernel kernel(c, w.data());
    std::vector<float> expected(static_cast<std::size_t>(c.m * c.n));
    Scratch scratch(kernel.scratch_bytes());
    kernel.run(x.data(), g.data(), expected.data(), scratch.data());
    bool same[2] = {true, true};
    auto worker = [&](int id) {
      Scratch own(kernel.scratch_bytes());
      std::vector<float> y(expected.size());
      for (int iter = 0; iter < 20; ++iter) {
        kernel.run(x.data(), g.data(), y.data(), own.data());
        same[id] = same[id] && y == expected;
      }
    };
    std::thread t1(worker, 0), t2(worker, 1);
    t1.join();
    t2.join();
    EXPECT_TRUE(same[0] && same[1]) << "mode " << static_cast<int>(mode);
  }
}

}  // namespace
}  // namespace quarks::ops
