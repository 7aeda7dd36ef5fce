// Tests of ops/normalization/normalization_kernels.hpp against scalar double-precision references, on
// every Highway target this binary was built for and this CPU supports (so the SSE4, AVX2, AVX3 and scalar
// tail paths are all exercised).
//
// Measured maximum errors (this machine: AVX2 is the best target; SSE4, SSSE3 and SCALAR also run), all sizes
// below; each test states the bound it asserts:
//   softmax      relative error 3.3e-7 (SCALAR 3.9e-7) for inputs in [-10, 10];
//   log_softmax  error 2.3e-7 relative to max(1, |y|);
//   layer_norm   absolute error 8.5e-7 (offset 0) and 6.1e-7 (offset 1e4, noise sd 1), up to 1.8e-6 on SCALAR;
//   rms_norm     absolute error 4.6e-7, up to 1.3e-6 on SCALAR;
//   outputs reach |y| ~ 8 (scale up to 1.5, bias up to 1), where an f32 ulp is 9.5e-7.
#include "ops/normalization/normalization_kernels.hpp"
#include "common/highway_target_test.hpp"

#include <gtest/gtest.h>
#include <hwy/targets.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "quarks/error.hpp"

namespace quarks::ops {
namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();
constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
constexpr float kMax = std::numeric_limits<float>::max();

// Row lengths that hit every tail: below, at and above the vector widths (4, 8, 16 lanes), a long row
// that spans several 1024-element accumulation blocks, and one beyond 100k.
const std::vector<std::int64_t> kLengths = {1, 2, 3, 15, 16, 17, 31, 33, 1000, 4099, 100003};

std::vector<float> uniform(std::size_t n, float lo, float hi, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

std::vector<float> normal(std::size_t n, float mean, float sd, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(mean, sd);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

// ----- references ------------------------------------------------------------------------------------

// Softmax or log-softmax along the axis in double, with the special-value rules of the header: a slice
// with a NaN, a +inf, or only -inf is NaN.
std::vector<double> ref_softmax(const std::vector<float>& x, std::int64_t outer, std::int64_t axis, std::int64_t inner,
                                bool log) {
  std::vector<double> y(x.size());
  for (std::int64_t o = 0; o < outer; ++o) {
    for (std::int64_t i = 0; i < inner; ++i) {
      auto at = [&](std::int64_t a) { return static_cast<std::size_t>((o * axis + a) * inner + i); };
      double m = -std::numeric_limits<double>::infinity();
      bool bad = false;
      for (std::int64_t a = 0; a < axis; ++a) {
        const double v = x[at(a)];
        bad = bad || std::isnan(v) || v == std::numeric_limits<double>::infinity();
        m = std::max(m, v);
      }
      bad = bad || m == -std::numeric_limits<double>::infinity();
      double sum = 0.0;
      for (std::int64_t a = 0; a < axis; ++a) sum += std::exp(x[at(a)] - m);
      for (std::int64_t a = 0; a < axis; ++a) {
        const double d = x[at(a)] - m;
        y[at(a)] = bad ? std::nan("") : log ? d - std::log(sum) : std::exp(d) / sum;
      }
    }
  }
  return y;
}

// Layer norm (center) or RMS norm (!center) over rows in double, two-pass.
std::vector<double> ref_norm(const std::vector<float>& x, const float* scale, const float* bias, float eps,
                             std::int64_t rows, std::int64_t cols, bool center) {
  std::vector<double> y(x.size());
  for (std::int64_t r = 0; r < rows; ++r) {
    const float* row = x.data() + r * cols;
    double mean = 0.0;
    if (center) {
      for (std::int64_t c = 0; c < cols; ++c) mean += row[c];
      mean /= static_cast<double>(cols);
    }
    double ss = 0.0;
    for (std::int64_t c = 0; c < cols; ++c) ss += (row[c] - mean) * (row[c] - mean);
    const double rstd = 1.0 / std::sqrt(ss / static_cast<double>(cols) + eps);
    for (std::int64_t c = 0; c < cols; ++c) {
      double v = (row[c] - mean) * rstd;
      if (scale != nullptr) v *= scale[c];
      if (bias != nullptr) v += bias[c];
      y[static_cast<std::size_t>(r * cols + c)] = v;
    }
  }
  return y;
}

// Largest |got - ref| / denominator(ref) over all elements. A NaN must be matched by a NaN and an infinity
// by the same infinity (a reference beyond the f32 range counts as infinite); a mismatch returns +inf, a
// certain failure.
template <class Denominator>
double largest_error(const std::vector<float>& got, const std::vector<double>& ref, Denominator denominator) {
  double worst = 0.0;
  for (std::size_t i = 0; i < got.size(); ++i) {
    if (std::isnan(ref[i]) || std::isnan(got[i])) {
      if (std::isnan(ref[i]) != std::isnan(got[i])) return std::numeric_limits<double>::infinity();
      continue;
    }
    const auto ref_f32 = static_cast<float>(ref[i]);
    if (std::isinf(ref_f32) || std::isinf(got[i])) {
      if (got[i] != ref_f32) return std::numeric_limits<double>::infinity();
      continue;
    }
    worst = std::max(worst, std::abs(got[i] - ref[i]) / denominator(ref[i]));
  }
  return worst;
}

// Relative error, |ref| floored at `floor` (1e-30: plain relative error; 1: absolute error below 1).
double max_error(const std::vector<float>& got, const std::vector<double>& ref, double floor) {
  return largest_error(got, ref, [floor](double r) { return std::max(std::abs(r), floor); });
}

double max_abs_error(const std::vector<float>& got, const std::vector<double>& ref) {
  return largest_error(got, ref, [](double) { return 1.0; });
}

// ----- fixture: run each test on every compiled-and-supported Highway target ----------------------------

class NormalizationTest : public test::HighwayTargetTest {};
QUARKS_INSTANTIATE_ON_HIGHWAY_TARGETS(NormalizationTest);

// ----- softmax ---------------------------------------------------------------------------------------

struct SoftmaxShape {
  std::int64_t outer, axis, inner;
};

std::vector<SoftmaxShape> softmax_shapes() {
  std::vector<SoftmaxShape> shapes;
  for (const std::int64_t n : kLengths) shapes.push_back({n > 5000 ? 1 : 3, n, 1});  // last axis
  // Middle axis: inner widths below, at and above the vector width, axes short and long.
  for (const std::int64_t inner : {2, 3, 15, 16, 17, 33, 100}) {
    for (const std::int64_t axis : {1, 3, 17, 1000}) shapes.push_back({2, axis, inner});
  }
  shapes.push_back({1, 3000, 5});  // an axis spanning several accumulation blocks per column
  shapes.push_back({0, 7, 1});
  shapes.push_back({3, 0, 1});
  shapes.push_back({3, 7, 0});
  return shapes;
}

TEST_P(NormalizationTest, SoftmaxMatchesDoubleReference) {
  unsigned seed = 1;
  double worst = 0.0;
  double worst_log = 0.0;
  for (const SoftmaxShape& s : softmax_shapes()) {
    SCOPED_TRACE("outer " + std::to_string(s.outer) + " axis " + std::to_string(s.axis) + " inner " +
                 std::to_string(s.inner));
    const auto n = static_cast<std::size_t>(s.outer * s.axis * s.inner);
    // x - max reaches -40; beyond -32 the f32 rounding of x - max alone costs up to 1.9e-6 relative unless
    // compensated (2^-24 |x - max|).
    const std::vector<float> x = uniform(n, -20.0f, 20.0f, seed++);
    std::vector<float> y(n, -1.0f);
    softmax(x.data(), y.data(), s.outer, s.axis, s.inner);
    worst = std::max(worst, max_error(y, ref_softmax(x, s.outer, s.axis, s.inner, false), 1e-30));

    std::vector<float> ly(n, 1.0f);
    log_softmax(x.data(), ly.data(), s.outer, s.axis, s.inner);
    worst_log = std::max(worst_log, max_error(ly, ref_softmax(x, s.outer, s.axis, s.inner, true), 1.0));
  }
  // Measured: softmax 3.3e-7 relative (3.9e-7 on SCALAR); log_softmax 2.3e-7.
  EXPECT_LE(worst, 1e-6);
  EXPECT_LE(worst_log, 1e-6);
}

TEST_P(NormalizationTest, SoftmaxSpecialValuesPerSlice) {
  // One slice (a row, then a column) per case.
  struct Case {
    std::vector<float> values;
    const char* what;
  };
  const std::vector<Case> cases = {
      {{1.0f, kNaN, 2.0f, 3.0f, 0.5f, -1.0f, 4.0f, 2.5f, 1.0f, 0.0f, 7.0f, -3.0f, 2.0f, 1.0f, 0.0f, 1.0f, 9.0f},
       "a NaN makes the slice NaN"},
      {{1.0f, 2.0f, kInf, 3.0f, 0.5f}, "+inf makes the slice NaN"},
      {{-kInf, -kInf, -kInf}, "all -inf is NaN"},
      {{-kInf, 0.0f, -kInf, 1.0f, -kInf}, "-inf entries give 0 (log: -inf)"},
      {{1e30f, -1e30f, 1e30f, 3.0f, -kMax, kMax}, "huge magnitudes"},
      {{-0.0f, 0.0f, -0.0f}, "signed zeros are equal"},
      {{-1e30f, -1e30f, -1e30f, -1e30f}, "all equal and huge"},
      {{-3e38f, 3e38f}, "x - max overflows to -inf"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    const auto len = static_cast<std::int64_t>(c.values.size());
    for (const bool log : {false, true}) {
      const auto ref = ref_softmax(c.values, 1, len, 1, log);
      std::vector<float> y(c.values.size());
      (log ? log_softmax : softmax)(c.values.data(), y.data(), 1, len, 1);
      EXPECT_LE(max_error(y, ref, log ? 1.0 : 1e-30), 1e-6) << "row, log " << log;

      // The same values along a middle axis, in column 1 of 19 (a full vector plus a tail on any target);
      // the other columns hold ordinary values and must not be affected.
      constexpr std::int64_t kInner = 19;
      std::vector<float> x = uniform(c.values.size() * kInner, -3.0f, 3.0f, 99);
      for (std::int64_t a = 0; a < len; ++a) x[static_cast<std::size_t>(a * kInner + 1)] = c.values[a];
      x[static_cast<std::size_t>(kInner - 1)] = c.values[0];  // and in the tail column
      std::vector<float> yc(x.size());
      (log ? log_softmax : softmax)(x.data(), yc.data(), 1, len, kInner);
      EXPECT_LE(max_error(yc, ref_softmax(x, 1, len, kInner, log), log ? 1.0 : 1e-30), 1e-6) << "column, log " << log;
    }
  }
}

TEST_P(NormalizationTest, SoftmaxInPlace) {
  for (const SoftmaxShape& s : {SoftmaxShape{3, 1000, 1}, SoftmaxShape{2, 17, 33}}) {
    const auto n = static_cast<std::size_t>(s.outer * s.axis * s.inner);
    for (const bool log : {false, true}) {
      const std::vector<float> x = uniform(n, -5.0f, 5.0f, 7);
      std::vector<float> expected(n);
      (log ? log_softmax : softmax)(x.data(), expected.data(), s.outer, s.axis, s.inner);
      std::vector<float> y = x;
      (log ? log_softmax : softmax)(y.data(), y.data(), s.outer, s.axis, s.inner);
      EXPECT_EQ(y, expected) << "log " << log << " inner " << s.inner;
    }
  }
}

TEST_P(NormalizationTest, SoftmaxRejectsNegativeSizes) {
  float v = 0.0f;
  EXPECT_THROW(softmax(&v, &v, -1, 1, 1), Error);
  EXPECT_THROW(log_softmax(&v, &v, 1, 1, -2), Error);
}

// ----- layer_norm / rms_norm ------------------------------------------------------------------------

using NormFn = void (*)(const float*, const float*, const float*, float, float*, std::int64_t, std::int64_t);

struct NormKind {
  NormFn fn;
  bool center;
  const char* name;
};
const NormKind kLayerNorm{layer_norm, true, "layer_norm"};
const NormKind kRmsNorm{rms_norm, false, "rms_norm"};

// Runs `kind` on [rows, cols] data with each combination of null/non-null scale (in [0.5, 1.5]) and bias (in
// [-1, 1]); returns the largest absolute error against the double reference.
double norm_error(const NormKind& kind, const std::vector<float>& x, std::int64_t rows, std::int64_t cols, float eps) {
  const auto n = static_cast<std::size_t>(cols);
  const std::vector<float> scale = uniform(n, 0.5f, 1.5f, 11);
  const std::vector<float> bias = uniform(n, -1.0f, 1.0f, 12);
  double worst = 0.0;
  for (const bool with_scale : {false, true}) {
    for (const bool with_bias : {false, true}) {
      const float* s = with_scale ? scale.data() : nullptr;
      const float* b = with_bias ? bias.data() : nullptr;
      std::vector<float> y(x.size(), -7.0f);
      kind.fn(x.data(), s, b, eps, y.data(), rows, cols);
      worst = std::max(worst, max_abs_error(y, ref_norm(x, s, b, eps, rows, cols, kind.center)));
    }
  }
  return worst;
}

TEST_P(NormalizationTest, NormsMatchDoubleReference) {
  unsigned seed = 20;
  for (const NormKind& kind : {kLayerNorm, kRmsNorm}) {
    SCOPED_TRACE(kind.name);
    double worst = 0.0;
    double worst_offset = 0.0;
    for (const std::int64_t cols : kLengths) {
      SCOPED_TRACE("cols " + std::to_string(cols));
      const std::int64_t rows = cols > 5000 ? 1 : 3;
      const auto n = static_cast<std::size_t>(rows * cols);
      worst = std::max(worst, norm_error(kind, normal(n, 0.5f, 2.0f, seed++), rows, cols, 1e-5f));
      // A large common offset: a naive one-pass E[x^2] - E[x]^2, or a mean rounded to f32, fails here.
      if (kind.center) {
        worst_offset = std::max(worst_offset, norm_error(kind, normal(n, 1e4f, 1.0f, seed++), rows, cols, 1e-5f));
      }
    }
    // Measured (AVX2 / SSE4 / SCALAR): layer_norm 8.5e-7 / 1.0e-6 / 1.0e-6, with offset 1e4
    // 6.1e-7 / 7.0e-7 / 1.8e-6; rms_norm 4.6e-7 / 6.8e-7 / 1.3e-6.
    EXPECT_LE(worst, 1e-5);
    EXPECT_LE(worst_offset, 1e-5);
    EXPECT_EQ(norm_error(kind, {}, 0, 5, 1e-5f), 0.0);  // no rows
  }
}

TEST_P(NormalizationTest, NormsExtremeMagnitudesUseTheDoublePath) {
  unsigned seed = 40;
  for (const NormKind& kind : {kLayerNorm, kRmsNorm}) {
    SCOPED_TRACE(kind.name);
    for (const std::int64_t cols : {3, 17, 1000}) {
      SCOPED_TRACE("cols " + std::to_string(cols));
      const auto n = static_cast<std::size_t>(cols);
      // Squares of 1e30 overflow f32, squares of 1e-30 underflow it (eps = 0 so they matter).
      // Measured: at most 9.5e-7 over all cases here.
      EXPECT_LE(norm_error(kind, normal(n, 0.0f, 1e30f, seed++), 1, cols, 1e-5f), 1e-5);
      EXPECT_LE(norm_error(kind, normal(n, 0.0f, 1e-30f, seed++), 1, cols, 0.0f), 1e-5);
      EXPECT_LE(norm_error(kind, normal(n, 1e30f, 1e27f, seed++), 1, cols, 1e-5f), 1e-5);
      // Values up to FLT_MAX: the double path also avoids x - mean overflowing.
      EXPECT_LE(norm_error(kind, uniform(n, -kMax, kMax, seed++), 1, cols, 1e-5f), 1e-5);
      // One huge outlier among ordinary values.
      std::vector<float> x = normal(n, 0.0f, 1.0f, seed++);
      x[n / 2] = 1e30f;
      EXPECT_LE(norm_error(kind, x, 1, cols, 1e-5f), 1e-5);
    }
  }
}

TEST_P(NormalizationTest, NormsSpecialValues) {
  const std::int64_t cols = 19;
  std::vector<float> x = normal(3 * cols, 0.0f, 1.0f, 50);
  x[2] = kNaN;          // row 0
  x[cols + 18] = kInf;  // row 1, in the tail
  // row 2: ordinary
  for (const NormKind& kind : {kLayerNorm, kRmsNorm}) {
    SCOPED_TRACE(kind.name);
    std::vector<float> y(x.size());
    kind.fn(x.data(), nullptr, nullptr, 1e-5f, y.data(), 3, cols);
    for (std::int64_t c = 0; c < cols; ++c) EXPECT_TRUE(std::isnan(y[c])) << "NaN row, col " << c;
    for (std::int64_t c = 0; c < cols; ++c) {
      const float v = y[cols + c];
      if (kind.center || c == 18) {
        EXPECT_TRUE(std::isnan(v)) << "inf row, col " << c;  // layer_norm: x - inf; rms_norm: inf / inf
      } else {
        EXPECT_EQ(v, 0.0f) << "inf row, col " << c;  // rms_norm: finite / inf
      }
    }
    const auto ref = ref_norm(x, nullptr, nullptr, 1e-5f, 3, cols, kind.center);
    for (std::int64_t c = 2 * cols; c < 3 * cols; ++c) EXPECT_NEAR(y[c], ref[c], 1e-5) << "ordinary row";
  }
}

TEST_P(NormalizationTest, NormsConstantAndSingleColumnRows) {
  const std::vector<float> bias = {0.25f, -0.5f, 2.0f};
  const std::vector<float> x = {5.0f, 5.0f, 5.0f, -0.0f, 0.0f, 0.0f};
  std::vector<float> y(x.size());
  layer_norm(x.data(), nullptr, bias.data(), 1e-5f, y.data(), 2, 3);
  EXPECT_EQ(y, (std::vector<float>{0.25f, -0.5f, 2.0f, 0.25f, -0.5f, 2.0f}));  // zero variance: just the bias
  layer_norm(x.data(), nullptr, nullptr, 1e-5f, y.data(), 6, 1);
  for (const float v : y) EXPECT_EQ(v, 0.0f);
  rms_norm(x.data(), nullptr, nullptr, 0.0f, y.data(), 6, 1);  // x / |x|
  EXPECT_EQ(y[0], 1.0f);
  EXPECT_TRUE(std::isnan(y[4]));  // 0 / sqrt(0 + 0)
}

TEST_P(NormalizationTest, NormsInPlace) {
  const std::int64_t rows = 3;
  const std::int64_t cols = 1000;
  const std::vector<float> x = normal(static_cast<std::size_t>(rows * cols), 1.0f, 3.0f, 60);
  const std::vector<float> scale = uniform(cols, 0.5f, 1.5f, 61);
  const std::vector<float> bias = uniform(cols, -1.0f, 1.0f, 62);
  for (const NormKind& kind : {kLayerNorm, kRmsNorm}) {
    std::vector<float> expected(x.size());
    kind.fn(x.data(), scale.data(), bias.data(), 1e-5f, expected.data(), rows, cols);
    std::vector<float> y = x;
    kind.fn(y.data(), scale.data(), bias.data(), 1e-5f, y.data(), rows, cols);
    EXPECT_EQ(y, expected) << kind.name;
  }
}

TEST_P(NormalizationTest, NormsRejectNegativeSizes) {
  float v = 0.0f;
  EXPECT_THROW(layer_norm(&v, nullptr, nullptr, 1e-5f, &v, -1, 1), Error);
  EXPECT_THROW(rms_norm(&v, nullptr, nullptr, 1e-5f, &v, 1, -1), Error);
}

}  // namespace
}  // namespace quarks::ops
