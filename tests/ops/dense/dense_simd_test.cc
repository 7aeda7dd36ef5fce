// The Highway helpers of the dense family: bf16 rounding (the bf16 mode's only own arithmetic).
#include "ops/dense/dense_simd.hpp"

#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "ops/dense/dense_test_util.hpp"

namespace quarks::ops {
namespace {

// Round-to-nearest-even f32 -> bf16, written independently of the kernel: exact arithmetic on the
// discarded 16 bits.
std::uint16_t reference_bf16(float f) {
  const std::uint32_t u = std::bit_cast<std::uint32_t>(f);
  if (std::isnan(f)) return static_cast<std::uint16_t>((u >> 16) | 0x40);
  std::uint32_t high = u >> 16;
  const std::uint32_t low = u & 0xFFFF;
  if (low > 0x8000 || (low == 0x8000 && (high & 1) != 0)) ++high;
  return static_cast<std::uint16_t>(high);
}

TEST(DenseSimd, ConvertToBf16RoundsToNearestEven) {
  const float inf = std::numeric_limits<float>::infinity();
  std::vector<float> x = {0.0f,
                          -0.0f,
                          1.0f,
                          std::bit_cast<float>(0x3F808000u),  // tie, even below: stays 0x3F80
                          std::bit_cast<float>(0x3F818000u),  // tie, odd below: rounds up to 0x3F82
                          std::bit_cast<float>(0x3F808001u),  // just above the tie
                          std::numeric_limits<float>::max(),  // rounds to inf
                          -std::numeric_limits<float>::max(),
                          std::numeric_limits<float>::denorm_min(),
                          inf,
                          -inf,
                          std::numeric_limits<float>::quiet_NaN(),
                          std::bit_cast<float>(0x7F800001u)};  // NaN whose payload sits in the low bits
  const auto random = dense_test::random_values(1000, 7, -1e6f, 1e6f);
  x.insert(x.end(), random.begin(), random.end());
  for (std::size_t n : {std::size_t{0}, std::size_t{1}, std::size_t{3}, std::size_t{15}, std::size_t{16},
                        std::size_t{17}, std::size_t{31}, std::size_t{33}, x.size()}) {
    std::vector<std::uint16_t> y(n + 1, 0xABCD);
    dense_detail::convert_to_bf16(x.data(), y.data(), n);
    for (std::size_t i = 0; i < n; ++i) {
      if (std::isnan(x[i])) {
        EXPECT_EQ(y[i] & 0x7F80, 0x7F80) << i;
        EXPECT_NE(y[i] & 0x7F, 0) << "NaN became inf at " << i;
      } else {
        EXPECT_EQ(y[i], reference_bf16(x[i])) << "x[" << i << "] = " << x[i];
      }
    }
    EXPECT_EQ(y[n], 0xABCD) << "wrote past n = " << n;
  }
}

}  // namespace
}  // namespace quarks::ops
