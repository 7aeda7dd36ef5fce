// Tests of ops/positional/rope_kernels.hpp against a double-precision reference (angles p·theta^(-2d/D)
// formed in double and passed to std::cos / std::sin, which reduce large arguments exactly), on every
// Highway target this binary was built for and this CPU supports, in arenas of 1 and 2 threads.
//
// Error measure: max |y - y_ref| with x in [-1, 1] (|y| <= sqrt(2)). The tables are f32 roundings of
// double-accurate values, so each y carries ~3 f32 roundings: measured on this machine at most 1.4e-7 over
// the sweep and at positions up to 2^31 - 1; kTol = 5e-7. (An f32 angle would be off by up to 4e-3 rad at
// position 10^5, an output error of the same size.)
#include "common/highway_target_test.hpp"
#include "ops/positional/rope_kernels.hpp"

#include <gtest/gtest.h>
#include <hwy/targets.h>
#include <tbb/task_arena.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "quarks/error.hpp"

namespace quarks::ops {
namespace {

constexpr double kTol = 5e-7;

std::vector<float> uniform(std::size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

// The whole op in double, with its own indexing of the two layouts: token (b, s) at offset + s, or at
// positions[b·S + s] when positions are given.
std::vector<double> reference(const RopeConfig& c, const std::vector<float>& x, std::int64_t offset,
                              const std::vector<std::int64_t>& positions = {}) {
  std::vector<double> y(x.size());
  const std::int64_t dim = c.head_dim, half = dim / 2;
  for (std::int64_t b = 0; b < c.batch; ++b) {
    for (std::int64_t h = 0; h < c.heads; ++h) {
      for (std::int64_t s = 0; s < c.seq; ++s) {
        const std::int64_t row = c.head_major ? ((b * c.heads + h) * c.seq + s) : ((b * c.seq + s) * c.heads + h);
        const double p = static_cast<double>(positions.empty() ? offset + s : positions[b * c.seq + s]);
        for (std::int64_t d = 0; d < half; ++d) {
          const double f = c.inv_freq.empty()
                               ? std::pow(c.theta, -2.0 * static_cast<double>(d) / static_cast<double>(dim))
                               : c.inv_freq[static_cast<std::size_t>(d)];
          const double a = p * f;
          const double lo = x[row * dim + d], hi = x[row * dim + half + d];
          y[row * dim + d] = lo * std::cos(a) - hi * std::sin(a);
          y[row * dim + half + d] = hi * std::cos(a) + lo * std::sin(a);
        }
      }
    }
  }
  return y;
}

double max_error(const std::vector<float>& got, const std::vector<double>& want) {
  double worst = 0.0;
  for (std::size_t i = 0; i < got.size(); ++i) worst = std::max(worst, std::fabs(got[i] - want[i]));
  return worst;
}

// Runs the kernel out of place (or in place) in an arena of `threads`.
std::vector<float> run(const RopeConfig& c, const std::vector<float>& x, std::int64_t offset, int threads,
                       bool in_place = false) {
  const RopeKernel kernel(c);
  std::vector<float> table(static_cast<std::size_t>(kernel.table_floats()) + 1, -777.0f);
  std::vector<float> y = in_place ? x : std::vector<float>(x.size(), -777.0f);
  tbb::task_arena arena(threads);
  arena.execute([&] {
    kernel.fill_table(offset, table.data());
    kernel.run(in_place ? y.data() : x.data(), y.data(), table.data());
  });
  EXPECT_EQ(table.back(), -777.0f) << "the table overran";
  return y;
}

// Per-token positions ([B, S]) in an arena of `threads`.
std::vector<float> run_positions(const RopeConfig& c, const std::vector<float>& x,
                                 const std::vector<std::int64_t>& positions, int threads) {
  const RopeKernel kernel(c);
  std::vector<float> table(static_cast<std::size_t>(kernel.positions_table_floats()) + 1, -777.0f);
  std::vector<float> y(x.size(), -777.0f);
  tbb::task_arena arena(threads);
  arena.execute([&] {
    kernel.fill_positions_table(positions.data(), table.data());
    kernel.run(x.data(), y.data(), table.data(), true);
  });
  EXPECT_EQ(table.back(), -777.0f) << "the table overran";
  return y;
}

class RopeKernelTest : public test::HighwayTargetTest {};
QUARKS_INSTANTIATE_ON_HIGHWAY_TARGETS(RopeKernelTest);

TEST_P(RopeKernelTest, SizeSweepBothLayouts) {
  // D = 2 (one pair), D/2 not a multiple of any vector width, and wide heads; S = 0 and 1 included.
  double largest = 0.0;
  unsigned seed = 1;
  for (std::int64_t dim : {2, 4, 6, 10, 16, 18, 34, 64, 128, 130}) {
    for (std::int64_t seq : {0, 1, 3, 17}) {
      for (int variant = 0; variant < 4; ++variant) {
        RopeConfig c;
        c.batch = 1 + variant / 2;
        c.heads = 3;
        c.seq = seq;
        c.head_dim = dim;
        c.head_major = variant & 1;
        c.theta = variant == 3 ? 500000.0 : 10000.0;
        const std::vector<float> x = uniform(static_cast<std::size_t>(c.batch * c.heads * seq * dim), seed++);
        const std::int64_t offset = (seed % 3) * 7;
        const double err = max_error(run(c, x, offset, 1 + seed % 2), reference(c, x, offset));
        largest = std::max(largest, err);
        ASSERT_LT(err, kTol) << "D " << dim << " S " << seq << " variant " << variant;
      }
    }
  }
  std::printf("[ %s ] size sweep: largest error %.3g\n", hwy::TargetName(GetParam()), largest);
}

TEST_P(RopeKernelTest, PerTokenPositionsBothLayouts) {
  // Each batch row its own positions (left-padded prompts: zeros, then 0, 1, ...; a decode step; large
  // and repeated positions), so a table row is per token, not per s.
  double largest = 0.0;
  unsigned seed = 40;
  for (std::int64_t dim : {2, 10, 64, 130}) {
    for (std::int64_t seq : {1, 6, 17}) {
      for (int variant = 0; variant < 4; ++variant) {
        RopeConfig c;
        c.batch = 3;
        c.heads = 1 + variant;
        c.seq = seq;
        c.head_dim = dim;
        c.head_major = variant & 1;
        std::vector<std::int64_t> positions(static_cast<std::size_t>(3 * seq));
        for (std::int64_t s = 0; s < seq; ++s) {
          positions[s] = std::max<std::int64_t>(0, s - seq / 2);  // left padding of seq / 2
          positions[seq + s] = 1000 + s;
          positions[2 * seq + s] = s % 2 == 0 ? kRopeMaxPosition - 1 : 7;
        }
        const std::vector<float> x = uniform(static_cast<std::size_t>(3 * c.heads * seq * dim), seed++);
        const double err = max_error(run_positions(c, x, positions, 1 + seed % 2), reference(c, x, 0, positions));
        largest = std::max(largest, err);
        ASSERT_LT(err, kTol) << "D " << dim << " S " << seq << " variant " << variant;
      }
    }
  }
  std::printf("[ %s ] per-token positions: largest error %.3g\n", hwy::TargetName(GetParam()), largest);
}

TEST_P(RopeKernelTest, LargePositionsStayAccurate) {
  double largest = 0.0;
  for (std::int64_t offset : {std::int64_t{100000}, std::int64_t{1234567}, kRopeMaxPosition - 5}) {
    RopeConfig c;
    c.batch = 1;
    c.heads = 2;
    c.seq = 5;
    c.head_dim = 128;
    const std::vector<float> x = uniform(static_cast<std::size_t>(2 * 5 * 128), 7);
    const double err = max_error(run(c, x, offset, 2), reference(c, x, offset));
    largest = std::max(largest, err);
    ASSERT_LT(err, kTol) << "offset " << offset;
  }
  std::printf("[ %s ] positions up to 2^31 - 1: largest error %.3g\n", hwy::TargetName(GetParam()), largest);
}

// Each entry is the f32 rounding (<= 2^-25 = 3e-8 for values below 1) of a double-accurate cos or sin, on
// targets with and without FMA (the angle reduction must not depend on it).
TEST_P(RopeKernelTest, TablesMatchDoubleCosAndSin) {
  for (std::int64_t half : {1, 3, 8, 64}) {
    const std::vector<double> f = rope_inverse_frequencies(2 * half, 10000.0);
    for (std::int64_t first : {std::int64_t{0}, std::int64_t{99998}, kRopeMaxPosition - 3}) {
      std::vector<float> cos(static_cast<std::size_t>(3 * half)), sin(cos.size());
      rope_tables(f.data(), half, first, 3, cos.data(), sin.data());
      for (std::int64_t i = 0; i < 3; ++i) {
        for (std::int64_t d = 0; d < half; ++d) {
          const double a = static_cast<double>(first + i) * std::pow(10000.0, -2.0 * d / (2.0 * half));
          ASSERT_NEAR(cos[i * half + d], std::cos(a), 4e-8) << first + i << " " << d;
          ASSERT_NEAR(sin[i * half + d], std::sin(a), 4e-8) << first + i << " " << d;
        }
      }
    }
  }
}

TEST_P(RopeKernelTest, InPlaceEqualsOutOfPlace) {
  for (bool head_major : {false, true}) {
    RopeConfig c;
    c.batch = 2;
    c.heads = 4;
    c.seq = 9;
    c.head_dim = 38;
    c.head_major = head_major;
    const std::vector<float> x = uniform(static_cast<std::size_t>(2 * 4 * 9 * 38), 11);
    EXPECT_EQ(run(c, x, 3, 2, true), run(c, x, 3, 2, false));
  }
}

TEST(RopeKernel, PositionZeroIsTheIdentityAndRotationsPreserveNorms) {
  RopeConfig c;
  c.batch = 1;
  c.heads = 1;
  c.seq = 2;
  c.head_dim = 8;
  const std::vector<float> x = uniform(16, 13);
  const std::vector<float> y = run(c, x, 0, 1);
  for (std::int64_t d = 0; d < 8; ++d) EXPECT_EQ(y[d], x[d]);  // position 0: cos 1, sin 0
  for (std::int64_t d = 0; d < 4; ++d) {                       // position 1: each pair keeps its length
    EXPECT_NEAR(std::hypot(y[8 + d], y[12 + d]), std::hypot(x[8 + d], x[12 + d]), 1e-6);
  }
}

// Rescaled rotary embeddings (Llama 3's rope_scaling) give the inverse frequencies themselves.
TEST(RopeKernel, GivenInverseFrequenciesReplaceTheta) {
  for (const bool head_major : {false, true}) {
    RopeConfig c;
    c.batch = 2;
    c.heads = 3;
    c.seq = 7;
    c.head_dim = 12;
    c.head_major = head_major;
    c.inv_freq = {1.0, 0.5, 0.25, 0.0, 1e-4, 0.3};  // 0: that pair is not rotated
    const std::vector<float> x = uniform(static_cast<std::size_t>(2 * 3 * 7 * 12), 17);
    for (const std::int64_t offset : {std::int64_t{0}, std::int64_t{5000}}) {
      EXPECT_LT(max_error(run(c, x, offset, 2), reference(c, x, offset)), kTol) << head_major << " " << offset;
    }
    RopeConfig from_theta = c;
    from_theta.inv_freq.clear();
    RopeConfig same = from_theta;
    for (std::int64_t d = 0; d < 6; ++d) same.inv_freq.push_back(std::pow(10000.0, -2.0 * d / 12.0));
    EXPECT_EQ(run(same, x, 9, 1), run(from_theta, x, 9, 1));
  }
}

TEST(RopeKernel, ValidatesConfigAndPositions) {
  const auto expect_invalid = [](RopeConfig c, const char* what) {
    try {
      RopeKernel kernel(c);
      ADD_FAILURE() << "no error: " << what;
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
      EXPECT_NE(std::string(e.what()).find(what), std::string::npos) << e.what();
    }
  };
  RopeConfig c;
  c.head_dim = 3;
  expect_invalid(c, "D must be even and >= 2");
  c.head_dim = 0;
  expect_invalid(c, "D must be even and >= 2");
  c = RopeConfig{};
  c.theta = -1.0;
  expect_invalid(c, "theta must be finite and > 0");
  c = RopeConfig{};
  c.heads = 0;
  expect_invalid(c, "H >= 1");
  c = RopeConfig{};
  c.head_dim = 4;
  c.inv_freq = {1.0};
  expect_invalid(c, "1 inverse frequencies given, D/2 needed");
  c.inv_freq = {1.0, -0.5};
  expect_invalid(c, "the inverse frequencies must be finite and >= 0");

  c = RopeConfig{};
  c.seq = 10;
  const RopeKernel k(c);
  EXPECT_TRUE(k.positions_valid(0));
  EXPECT_TRUE(k.positions_valid(kRopeMaxPosition - 10));
  EXPECT_FALSE(k.positions_valid(kRopeMaxPosition - 9));
  EXPECT_FALSE(k.positions_valid(-1));
  c.batch = 2;
  c.seq = 2;
  const RopeKernel per_token(c);
  EXPECT_EQ(per_token.first_bad_position(std::vector<std::int64_t>{0, 5, kRopeMaxPosition - 1, 1}.data()), -1);
  EXPECT_EQ(per_token.first_bad_position(std::vector<std::int64_t>{0, 5, -1, 1}.data()), 2);
  EXPECT_EQ(per_token.first_bad_position(std::vector<std::int64_t>{0, 5, 1, kRopeMaxPosition}.data()), 3);
}

}  // namespace
}  // namespace quarks::ops
