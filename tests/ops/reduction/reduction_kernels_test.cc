// Tests of ops/reduction/reduction_kernels.hpp against a scalar double reference that visits every input
// element once, over awkward sizes (0, 1, 7, 17, 1000+), every mode (rows, columns, copy, fill), every
// subset of axes of small ranks, special values (±0, ±inf, NaN) and split work ranges.
#include "ops/reduction/reduction_kernels.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "quarks/error.hpp"

namespace quarks::ops {
namespace {

using Dims = std::vector<std::int64_t>;
using Axes = std::vector<int>;

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr ReduceOp kOps[] = {ReduceOp::kSum, ReduceOp::kMean, ReduceOp::kMax, ReduceOp::kMin};

std::int64_t numel(const Dims& shape) {
  return std::accumulate(shape.begin(), shape.end(), std::int64_t{1}, std::multiplies<>());
}

std::string to_string(const Dims& d) {
  std::string s = "[";
  for (std::size_t i = 0; i < d.size(); ++i) s += (i ? "," : "") + std::to_string(d[i]);
  return s + "]";
}

std::string to_string(const Axes& a) { return to_string(Dims(a.begin(), a.end())); }

// The reference: the output element of every input element (kept dims in order), then per output element
// the double sum, the sum of |x| (for the tolerance), the count, NaN and the extreme values.
struct Reference {
  std::vector<double> sum, abs_sum, max, min;
  std::vector<bool> nan;
  std::int64_t count = 0;

  double value(ReduceOp op, std::size_t o) const {
    switch (op) {
      case ReduceOp::kSum: return sum[o];
      case ReduceOp::kMean: return sum[o] / static_cast<double>(count);  // 0 / 0 = NaN for no elements
      case ReduceOp::kMax: return nan[o] ? kNaN : max[o];
      case ReduceOp::kMin: return nan[o] ? kNaN : min[o];
    }
    return kNaN;
  }
};

Reference reference(const std::vector<float>& x, const Dims& shape, const Axes& axes) {
  std::vector<bool> reduced(shape.size(), false);
  for (const int a : axes) reduced[static_cast<std::size_t>(a)] = true;
  std::int64_t out_n = 1;
  Reference r;
  r.count = 1;
  for (std::size_t d = 0; d < shape.size(); ++d) (reduced[d] ? r.count : out_n) *= shape[d];
  const auto n_out = static_cast<std::size_t>(out_n);
  r.sum.assign(n_out, 0.0);
  r.abs_sum.assign(n_out, 0.0);
  r.max.assign(n_out, -kInf);
  r.min.assign(n_out, kInf);
  r.nan.assign(n_out, false);
  for (std::int64_t flat = 0; flat < numel(shape); ++flat) {
    std::int64_t rest = flat, o = 0, o_stride = 1;
    for (std::size_t k = shape.size(); k-- > 0;) {
      const std::int64_t i = rest % shape[k];
      rest /= shape[k];
      if (!reduced[k]) {
        o += i * o_stride;
        o_stride *= shape[k];
      }
    }
    const double v = x[static_cast<std::size_t>(flat)];
    const auto u = static_cast<std::size_t>(o);
    r.sum[u] += v;
    r.abs_sum[u] += std::fabs(v);
    r.max[u] = std::max(r.max[u], v);
    r.min[u] = std::min(r.min[u], v);
    if (std::isnan(v)) r.nan[u] = true;
  }
  return r;
}

// Expects `got` to match the reference: NaN where it is NaN, equal infinities, max/min exactly, sums and
// means within the blocked-f32 bound (a few 2^-24 of sum |x| per block partial, plus the final rounding).
void expect_matches(ReduceOp op, const std::vector<float>& got, const Reference& r, const std::string& what) {
  ASSERT_EQ(got.size(), r.sum.size()) << what;
  for (std::size_t o = 0; o < got.size(); ++o) {
    const double want = r.value(op, o);
    const double g = got[o];
    if (std::isnan(want)) {
      ASSERT_TRUE(std::isnan(g)) << what << " output " << o << ": got " << g << ", want NaN";
      continue;
    }
    if (std::isinf(want) || op == ReduceOp::kMax || op == ReduceOp::kMin) {
      ASSERT_EQ(g, static_cast<double>(static_cast<float>(want))) << what << " output " << o;
      continue;
    }
    const double scale = op == ReduceOp::kMean ? 1.0 / static_cast<double>(r.count) : 1.0;
    const double tol = 2e-6 * r.abs_sum[o] * scale + std::ldexp(std::fabs(want), -23) + 1e-30;
    ASSERT_NEAR(g, want, tol) << what << " output " << o;
  }
}

std::vector<float> random_values(std::int64_t n, std::mt19937& rng, bool specials) {
  std::uniform_real_distribution<float> dist(-2.0f, 3.0f);
  std::vector<float> x(static_cast<std::size_t>(n));
  for (float& v : x) v = dist(rng);
  if (specials && n > 0) {
    const float pick[] = {0.0f, -0.0f, std::numeric_limits<float>::infinity(), -std::numeric_limits<float>::infinity(),
                          std::numeric_limits<float>::quiet_NaN()};
    std::uniform_int_distribution<std::int64_t> at(0, n - 1);
    const std::int64_t count = std::max<std::int64_t>(1, n / 50);
    for (std::int64_t i = 0; i < count; ++i) x[static_cast<std::size_t>(at(rng))] = pick[at(rng) % 5];
  }
  return x;
}

// Runs the reduction whole and in three uneven item ranges, and checks both against the reference.
void check(ReduceOp op, const Dims& shape, const Axes& axes, const std::vector<float>& x) {
  const std::string what = std::string(reduce_op_name(op)) + " of " + to_string(shape) + " over " + to_string(axes);
  const Reduction red(op, shape, axes);
  const Reference ref = reference(x, shape, axes);
  ASSERT_EQ(red.output_size(), static_cast<std::int64_t>(ref.sum.size())) << what;
  ASSERT_EQ(red.reduced_count(), ref.count) << what;
  ASSERT_GE(red.item_size(), 1) << what;
  std::vector<float> y(ref.sum.size(), 12345.0f);
  red.run(x.data(), y.data());
  expect_matches(op, y, ref, what);

  std::vector<float> pieces(ref.sum.size(), 12345.0f);
  const std::int64_t items = red.items();
  const std::int64_t a = items / 3, b = items - items / 5;
  red.run(x.data(), pieces.data(), 0, a);
  red.run(x.data(), pieces.data(), a, b);
  red.run(x.data(), pieces.data(), b, items);
  for (std::size_t i = 0; i < y.size(); ++i) {
    // Bitwise: the same work in other ranges must give the same bits.
    ASSERT_EQ(std::memcmp(&y[i], &pieces[i], sizeof(float)), 0) << what << " split at " << a << ", " << b;
  }
}

// Every subset of the axes of shapes of rank 1..4 built from awkward sizes.
TEST(Reduction, EverySubsetOfAxesOfAwkwardShapes) {
  const Dims shapes[] = {{1000},        {7},          {1},      {17, 7},   {7, 1000},
                         {1000, 7},     {1, 17},      {17, 1},  {3, 1, 5}, {5, 17, 3},
                         {2, 7, 1, 17}, {3, 4, 5, 6}, {600, 3}, {2, 1030}, {4, 2, 3, 1, 2}};
  std::mt19937 rng(1);
  for (const Dims& shape : shapes) {
    const int rank = static_cast<int>(shape.size());
    const std::vector<float> x = random_values(numel(shape), rng, false);
    for (unsigned mask = 0; mask < (1u << rank); ++mask) {
      Axes axes;
      for (int a = 0; a < rank; ++a)
        if (mask & (1u << a)) axes.push_back(a);
      for (const ReduceOp op : kOps) check(op, shape, axes, x);
    }
  }
}

TEST(Reduction, AxesInAnyOrderGiveTheSameResult) {
  std::mt19937 rng(2);
  const Dims shape = {4, 5, 6};
  const std::vector<float> x = random_values(numel(shape), rng, false);
  for (const ReduceOp op : kOps) {
    check(op, shape, {2, 0}, x);
    check(op, shape, {1, 2, 0}, x);
  }
}

TEST(Reduction, SpecialValuesPropagate) {
  std::mt19937 rng(3);
  const Dims shapes[] = {{64, 33}, {33, 64}, {5, 17, 9}, {1, 1037}, {1037, 2}};
  for (const Dims& shape : shapes) {
    const std::vector<float> x = random_values(numel(shape), rng, true);
    const int rank = static_cast<int>(shape.size());
    for (unsigned mask = 1; mask < (1u << rank); ++mask) {
      Axes axes;
      for (int a = 0; a < rank; ++a)
        if (mask & (1u << a)) axes.push_back(a);
      for (const ReduceOp op : kOps) check(op, shape, axes, x);
    }
  }
}

TEST(Reduction, HandPickedSpecialValues) {
  const float inf = std::numeric_limits<float>::infinity();
  const float nan = std::numeric_limits<float>::quiet_NaN();
  // Each row reduced on its own (rows mode), and the transposed layout reduced down the columns.
  const std::vector<std::vector<float>> rows = {
      {1.0f, inf, 2.0f},     {1.0f, -inf, 2.0f}, {inf, -inf, 0.0f},  {nan, 1.0f, 2.0f}, {1.0f, 2.0f, nan},
      {-0.0f, -0.0f, -0.0f}, {0.0f, 0.0f, 0.0f}, {-inf, -inf, -inf}, {3.0f, nan, -inf}, {inf, inf, inf}};
  for (const ReduceOp op : kOps) {
    for (int width : {3, 35, 64}) {  // 35: vectors and a scalar tail; 64: vectors only
      std::vector<float> x, xt(static_cast<std::size_t>(width) * rows.size());
      for (const auto& row : rows)
        for (int j = 0; j < width; ++j) x.push_back(row[static_cast<std::size_t>(j % 3)]);
      for (std::size_t r = 0; r < rows.size(); ++r)
        for (int j = 0; j < width; ++j) xt[static_cast<std::size_t>(j) * rows.size() + r] = x[r * width + j];
      const auto n_rows = static_cast<std::int64_t>(rows.size());
      check(op, {n_rows, width}, {1}, x);
      check(op, {width, n_rows}, {0}, xt);
    }
  }
  // The sign of zero survives max and min of all-negative-zero rows, in both layouts.
  const std::vector<float> zeros(40, -0.0f);
  for (const ReduceOp op : {ReduceOp::kMax, ReduceOp::kMin}) {
    std::vector<float> y(4, 1.0f);
    reduce(op, zeros.data(), Dims{4, 10}, Axes{1}, y.data());
    for (const float v : y) EXPECT_TRUE(v == 0.0f && std::signbit(v)) << reduce_op_name(op);
    std::vector<float> yc(10, 1.0f);
    reduce(op, zeros.data(), Dims{4, 10}, Axes{0}, yc.data());
    for (const float v : yc) EXPECT_TRUE(v == 0.0f && std::signbit(v)) << reduce_op_name(op);
  }
}

TEST(Reduction, LongAxesKeepTheirAccuracy) {
  // 0.1f summed a million times: a running f32 sum drifts by ~1% (it stalls as the total grows); the
  // blocked sum stays within a few ulp of the double reference.
  const std::int64_t n = 1 << 20;
  const std::vector<float> x(static_cast<std::size_t>(n), 0.1f);
  const double want = static_cast<double>(n) * static_cast<double>(0.1f);
  std::vector<float> y(1);
  reduce(ReduceOp::kSum, x.data(), Dims{n}, Axes{0}, y.data());
  EXPECT_NEAR(y[0], want, want * 1e-6);
  reduce(ReduceOp::kMean, x.data(), Dims{n}, Axes{0}, y.data());
  EXPECT_NEAR(y[0], static_cast<double>(0.1f), 1e-7);
  // The same down columns: [n / 4, 4] reduced over axis 0.
  std::vector<float> yc(4);
  reduce(ReduceOp::kSum, x.data(), Dims{n / 4, 4}, Axes{0}, yc.data());
  for (const float v : yc) EXPECT_NEAR(v, want / 4, want / 4 * 1e-6);
}

TEST(Reduction, ColumnChunksAndOddWidths) {
  // Widths around the column chunk (512) and the vector width; several outer rows and reduced groups.
  std::mt19937 rng(4);
  for (const std::int64_t width : {2, 7, 17, 511, 512, 513, 1100}) {
    const Dims shape = {3, 40, width};  // 40 and 120 reduced rows: past one column block (32)
    const std::vector<float> x = random_values(numel(shape), rng, false);
    for (const ReduceOp op : kOps) {
      check(op, shape, {1}, x);
      check(op, shape, {0, 1}, x);
    }
    const Dims shape4 = {2, 3, 4, width};
    const std::vector<float> x4 = random_values(numel(shape4), rng, false);
    for (const ReduceOp op : kOps) check(op, shape4, {0, 2}, x4);
  }
}

TEST(Reduction, Modes) {
  EXPECT_EQ(Reduction(ReduceOp::kSum, Dims{4, 5}, Axes{1}).mode(), Reduction::Mode::kRows);
  EXPECT_EQ(Reduction(ReduceOp::kSum, Dims{4, 5}, Axes{0}).mode(), Reduction::Mode::kColumns);
  EXPECT_EQ(Reduction(ReduceOp::kSum, Dims{4, 1, 5}, Axes{1}).mode(), Reduction::Mode::kCopy);
  EXPECT_EQ(Reduction(ReduceOp::kSum, Dims{4, 0, 5}, Axes{1}).mode(), Reduction::Mode::kFill);
  EXPECT_EQ(Reduction(ReduceOp::kSum, Dims{4, 5, 6}, Axes{0, 2}).mode(), Reduction::Mode::kRows);
  EXPECT_EQ(Reduction(ReduceOp::kSum, Dims{4, 5, 6}, Axes{1}).mode(), Reduction::Mode::kColumns);
}

TEST(Reduction, EmptyTensorsAndRankZero) {
  // Reducing an empty axis: sum 0, mean NaN, max/min have no value.
  const std::vector<float> none;
  std::vector<float> y(3, 7.0f);
  reduce(ReduceOp::kSum, none.data(), Dims{3, 0}, Axes{1}, y.data());
  EXPECT_EQ(y, std::vector<float>(3, 0.0f));
  reduce(ReduceOp::kMean, none.data(), Dims{3, 0}, Axes{1}, y.data());
  for (const float v : y) EXPECT_TRUE(std::isnan(v));
  EXPECT_THROW(Reduction(ReduceOp::kMax, Dims{3, 0}, Axes{1}), Error);
  EXPECT_THROW(Reduction(ReduceOp::kMin, Dims{0}, Axes{0}), Error);
  EXPECT_THROW(Reduction(ReduceOp::kMax, Dims{0, 3}, Axes{0, 1}), Error);  // empty output, still no value
  // Reducing a non-empty axis of an empty tensor: nothing to write.
  const Reduction empty_out(ReduceOp::kMax, Dims{0, 5}, Axes{1});
  EXPECT_EQ(empty_out.output_size(), 0);
  EXPECT_EQ(empty_out.items(), 0);
  empty_out.run(nullptr, nullptr);
  // All axes of [0, 5] for sum: one output, 0.
  float s = 7.0f;
  reduce(ReduceOp::kSum, none.data(), Dims{0, 5}, Axes{0, 1}, &s);
  EXPECT_EQ(s, 0.0f);
  // Rank 0: one element, nothing reduced.
  const float v = -0.0f;
  for (const ReduceOp op : kOps) {
    float out = 1.0f;
    reduce(op, &v, Dims{}, Axes{}, &out);
    EXPECT_TRUE(out == 0.0f && std::signbit(out)) << reduce_op_name(op);
  }
  // Only size-1 axes reduced: a copy, NaN included.
  const std::vector<float> x = {1.0f, std::numeric_limits<float>::quiet_NaN(), -3.0f};
  std::vector<float> c(3);
  reduce(ReduceOp::kMean, x.data(), Dims{3, 1}, Axes{1}, c.data());
  EXPECT_EQ(c[0], 1.0f);
  EXPECT_TRUE(std::isnan(c[1]));
  EXPECT_EQ(c[2], -3.0f);
}

TEST(Reduction, RejectsBadArguments) {
  EXPECT_THROW(Reduction(ReduceOp::kSum, Dims{2, 3}, Axes{2}), Error);
  EXPECT_THROW(Reduction(ReduceOp::kSum, Dims{2, 3}, Axes{-1}), Error);
  EXPECT_THROW(Reduction(ReduceOp::kSum, Dims{2, 3}, Axes{1, 1}), Error);
  EXPECT_THROW(Reduction(ReduceOp::kSum, Dims{2, -3}, Axes{1}), Error);
  EXPECT_THROW(Reduction(ReduceOp::kSum, Dims(9, 1), Axes{0}), Error);
  const Reduction r(ReduceOp::kSum, Dims{2, 3}, Axes{1});
  float x[6] = {}, y[2] = {};
  EXPECT_THROW(r.run(x, y, 1, 3), Error);
  EXPECT_THROW(r.run(x, y, 2, 1), Error);
  EXPECT_THROW(r.run(x, y, -1, 1), Error);
}

}  // namespace
}  // namespace quarks::ops
