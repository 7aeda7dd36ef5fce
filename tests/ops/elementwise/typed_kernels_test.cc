// Tests of the dtype-generic elementwise kernels (equal, where, broadcast_copy, cast) against scalar
// references over awkward sizes, every stride case and the special values of each dtype.
#include "ops/elementwise/typed_kernels.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <iterator>
#include <limits>
#include <random>
#include <string>
#include <type_traits>
#include <vector>

#include "quarks/error.hpp"

namespace quarks::ops {
namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();
constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
constexpr std::int64_t kI64Max = std::numeric_limits<std::int64_t>::max();
constexpr std::int64_t kI64Min = std::numeric_limits<std::int64_t>::min();
const std::size_t kSizes[] = {0, 1, 7, 17, 64, 1000, 4099};
constexpr std::size_t kGuard = 9;
constexpr std::uint8_t kByteSentinel = 0xAB;

// Random f32 values drawn from a small set, so that equal values are common, with specials mixed in.
std::vector<float> f32_values(std::size_t n, unsigned seed) {
  static const float kPool[] = {0.0f, -0.0f, 1.0f, -1.0f, 2.5f, kInf, -kInf, kNaN, 1e-40f, 3e38f};
  std::mt19937 rng(seed);
  std::vector<float> v(n);
  for (float& x : v) x = kPool[rng() % std::size(kPool)];
  return v;
}
std::vector<std::int64_t> i64_values(std::size_t n, unsigned seed) {
  static const std::int64_t kPool[] = {0, 1, -1, 7, kI64Max, kI64Min, std::int64_t{1} << 40};
  std::mt19937 rng(seed);
  std::vector<std::int64_t> v(n);
  for (auto& x : v) x = kPool[rng() % std::size(kPool)];
  return v;
}
// Bool bytes, including nonzero bytes other than 1 (any nonzero byte is true).
std::vector<std::uint8_t> bool_values(std::size_t n, unsigned seed) {
  static const std::uint8_t kPool[] = {0, 1, 1, 0, 2, 255};
  std::mt19937 rng(seed);
  std::vector<std::uint8_t> v(n);
  for (auto& x : v) x = kPool[rng() % std::size(kPool)];
  return v;
}

// --- equal ---------------------------------------------------------------------------------------

template <class T>
bool equal_ref(T a, T b) {
  if constexpr (std::is_same_v<T, std::uint8_t>) {
    return (a != 0) == (b != 0);
  } else if constexpr (std::is_same_v<T, float>) {
    return !std::isnan(a) && !std::isnan(b) && static_cast<double>(a) == static_cast<double>(b);
  } else {
    return a == b;
  }
}

template <class T>
void check_equal(DType t, const std::vector<T>& a, const std::vector<T>& b) {
  for (std::size_t n : kSizes) {
    for (std::size_t as : {0, 1}) {
      for (std::size_t bs : {0, 1}) {
        std::vector<std::uint8_t> y(n + kGuard, kByteSentinel);
        equal(t, a.data(), as, b.data(), bs, y.data(), n);
        for (std::size_t i = 0; i < n; ++i) {
          ASSERT_EQ(y[i], equal_ref(a[i * as], b[i * bs]) ? 1 : 0)
              << to_string(t) << " strides " << as << bs << " n=" << n << " i=" << i;
        }
        for (std::size_t i = n; i < y.size(); ++i) ASSERT_EQ(y[i], kByteSentinel) << "wrote past n";
      }
    }
  }
}

TEST(Equal, EveryDtypeAndStrideCase) {
  const std::size_t max_n = 4099;
  check_equal(DType::kF32, f32_values(max_n, 1), f32_values(max_n, 2));
  check_equal(DType::kI64, i64_values(max_n, 3), i64_values(max_n, 4));
  check_equal(DType::kBool, bool_values(max_n, 5), bool_values(max_n, 6));
}

TEST(Equal, IeeeSpecialValues) {
  const float a[] = {kNaN, 0.0f, kInf, -kInf, 1.0f, kNaN};
  const float b[] = {kNaN, -0.0f, kInf, kInf, std::nextafter(1.0f, 2.0f), 1.0f};
  const std::uint8_t want[] = {0, 1, 1, 0, 0, 0};
  std::uint8_t y[6];
  equal(DType::kF32, a, 1, b, 1, y, 6);
  for (int i = 0; i < 6; ++i) EXPECT_EQ(y[i], want[i]) << a[i] << " == " << b[i];
}

TEST(Equal, BoolInPlace) {
  std::vector<std::uint8_t> a = bool_values(1001, 7);
  const std::vector<std::uint8_t> b = bool_values(1001, 8), a0 = a;
  equal(DType::kBool, a.data(), 1, b.data(), 1, a.data(), a.size());
  for (std::size_t i = 0; i < a.size(); ++i) ASSERT_EQ(a[i], equal_ref(a0[i], b[i]) ? 1 : 0) << i;
}

// --- where ---------------------------------------------------------------------------------------

template <class T>
void check_where(const std::vector<T>& x, const std::vector<T>& z) {
  const std::vector<std::uint8_t> c = bool_values(x.size(), 11);
  for (std::size_t n : kSizes) {
    for (int strides = 0; strides < 8; ++strides) {
      const std::size_t cs = strides >> 2 & 1, xs = strides >> 1 & 1, zs = strides & 1;
      std::vector<T> y(n + kGuard);
      std::memset(y.data(), kByteSentinel, y.size() * sizeof(T));
      where(sizeof(T), c.data(), cs, x.data(), xs, z.data(), zs, y.data(), n);
      for (std::size_t i = 0; i < n; ++i) {
        const T& want = c[i * cs] ? x[i * xs] : z[i * zs];
        ASSERT_EQ(std::memcmp(&y[i], &want, sizeof(T)), 0)
            << "elem size " << sizeof(T) << " strides " << cs << xs << zs << " n=" << n << " i=" << i;
      }
      for (std::size_t i = n; i < y.size(); ++i) {
        for (std::size_t k = 0; k < sizeof(T); ++k)
          ASSERT_EQ(reinterpret_cast<const std::uint8_t*>(&y[i])[k], kByteSentinel) << "wrote past n";
      }
    }
  }
}

TEST(Where, EveryElementSizeAndStrideCase) {
  const std::size_t max_n = 4099;
  check_where(f32_values(max_n, 1), f32_values(max_n, 2));  // NaN payloads and -0 are copied bit for bit
  check_where(i64_values(max_n, 3), i64_values(max_n, 4));
  check_where(bool_values(max_n, 5), bool_values(max_n, 6));
}

TEST(Where, InPlaceOnEitherValueOperand) {
  const std::vector<std::uint8_t> c = bool_values(1001, 12);
  const std::vector<std::int64_t> x0 = i64_values(1001, 13), z0 = i64_values(1001, 14);
  std::vector<std::int64_t> x = x0, z = z0;
  where(8, c.data(), 1, x.data(), 1, z0.data(), 1, x.data(), x.size());
  for (std::size_t i = 0; i < x.size(); ++i) ASSERT_EQ(x[i], c[i] ? x0[i] : z0[i]) << "y == x, i=" << i;
  where(8, c.data(), 1, x0.data(), 1, z.data(), 1, z.data(), z.size());
  for (std::size_t i = 0; i < z.size(); ++i) ASSERT_EQ(z[i], c[i] ? x0[i] : z0[i]) << "y == z, i=" << i;
}

// --- broadcast_copy ------------------------------------------------------------------------------

TEST(BroadcastCopy, EveryElementSizeAndBothStrides) {
  for (std::size_t size : {1, 3, 4, 8, 16}) {
    std::vector<std::uint8_t> x(4099 * size);
    std::mt19937 rng(static_cast<unsigned>(size));
    for (auto& b : x) b = static_cast<std::uint8_t>(rng());
    for (std::size_t n : kSizes) {
      for (std::size_t stride : {0, 1}) {
        std::vector<std::uint8_t> y((n + kGuard) * size, kByteSentinel);
        broadcast_copy(size, x.data(), stride, y.data(), n);
        for (std::size_t i = 0; i < n; ++i) {
          ASSERT_EQ(std::memcmp(&y[i * size], &x[i * stride * size], size), 0)
              << "size " << size << " stride " << stride << " n=" << n << " i=" << i;
        }
        for (std::size_t i = n * size; i < y.size(); ++i) ASSERT_EQ(y[i], kByteSentinel) << "wrote past n";
      }
    }
    broadcast_copy(size, x.data(), 1, x.data(), 4099);  // y == x: nothing to do, nothing overwritten
  }
  broadcast_copy(4, nullptr, 0, nullptr, 0);
}

// --- cast ----------------------------------------------------------------------------------------

// f32 -> i64 per the documented rule, computed in long double (exact for every f32 and i64).
std::int64_t f32_to_i64_ref(float v) {
  if (std::isnan(v)) return 0;
  const long double t = std::trunc(static_cast<long double>(v));
  if (t >= 9223372036854775807.0L) return kI64Max;
  if (t <= -9223372036854775808.0L) return kI64Min;
  return static_cast<std::int64_t>(t);
}

TEST(Cast, F32ToI64TruncatesSaturatesAndMapsNaNToZero) {
  std::vector<float> x = {0.0f,
                          -0.0f,
                          0.9f,
                          -0.9f,
                          1.5f,
                          -1.5f,
                          2.5f,
                          -2.5f,
                          1e-40f,
                          1e10f,
                          -1e10f,
                          0x1p62f,
                          -0x1p63f,
                          0x1p63f,
                          -0x1p64f,
                          1e30f,
                          -1e30f,
                          kInf,
                          -kInf,
                          kNaN,
                          -kNaN,
                          16777217.0f,
                          std::nextafter(0x1p63f, 0.0f),
                          std::nextafter(-0x1p63f, 0.0f)};
  std::mt19937 rng(21);
  std::uniform_real_distribution<float> wide(-1e6f, 1e6f);
  for (int i = 0; i < 2000; ++i) x.push_back(wide(rng));
  for (std::size_t n : {x.size(), std::size_t{1}, std::size_t{7}, std::size_t{17}}) {
    std::vector<std::int64_t> y(n);
    cast(DType::kF32, DType::kI64, x.data(), y.data(), n);
    for (std::size_t i = 0; i < n; ++i) ASSERT_EQ(y[i], f32_to_i64_ref(x[i])) << "x = " << x[i];
  }
  // The rule stated in graph.hpp, value by value.
  std::int64_t y[6];
  const float special[] = {kNaN, kInf, -kInf, 0x1p63f, -0x1p63f, -2.9f};
  cast(DType::kF32, DType::kI64, special, y, 6);
  EXPECT_EQ(y[0], 0);
  EXPECT_EQ(y[1], kI64Max);
  EXPECT_EQ(y[2], kI64Min);
  EXPECT_EQ(y[3], kI64Max);
  EXPECT_EQ(y[4], kI64Min);  // exactly -2^63, representable
  EXPECT_EQ(y[5], -2);
}

TEST(Cast, I64ToF32RoundsToNearestOnce) {
  // 2^60 + 2^36 + 1 is just above a halfway point between floats: rounded once it goes up, but
  // rounding through double first would lose the +1 and then round the tie to even (down).
  std::vector<std::int64_t> x = {
      0, 1, -1, kI64Max, kI64Min, (std::int64_t{1} << 24) + 1, (std::int64_t{1} << 60) + (std::int64_t{1} << 36) + 1};
  std::mt19937_64 rng(22);
  for (int i = 0; i < 2000; ++i) x.push_back(static_cast<std::int64_t>(rng()) >> (rng() % 63));
  std::vector<float> y(x.size());
  cast(DType::kI64, DType::kF32, x.data(), y.data(), x.size());
  for (std::size_t i = 0; i < x.size(); ++i) {
    ASSERT_EQ(y[i], static_cast<float>(static_cast<long double>(x[i]))) << "x = " << x[i];
  }
  EXPECT_EQ(y[6], 0x1p60f + 0x1p37f);
}

TEST(Cast, ToAndFromBool) {
  const std::vector<float> f = {0.0f, -0.0f, 1.0f, -3.0f, 1e-40f, kInf, -kInf, kNaN};
  std::vector<std::uint8_t> b(f.size(), kByteSentinel);
  cast(DType::kF32, DType::kBool, f.data(), b.data(), f.size());
  for (std::size_t i = 0; i < f.size(); ++i) EXPECT_EQ(b[i], f[i] != 0.0f ? 1 : 0) << f[i];  // NaN != 0: true
  EXPECT_EQ(b[7], 1);

  const std::vector<std::int64_t> i64 = {0, 1, -1, kI64Min, kI64Max, 256};
  std::vector<std::uint8_t> bi(i64.size(), kByteSentinel);
  cast(DType::kI64, DType::kBool, i64.data(), bi.data(), i64.size());
  for (std::size_t i = 0; i < i64.size(); ++i) EXPECT_EQ(bi[i], i64[i] != 0 ? 1 : 0) << i64[i];

  const std::vector<std::uint8_t> bools = {0, 1, 2, 255, 0};
  std::vector<float> bf(bools.size());
  std::vector<std::int64_t> bl(bools.size());
  cast(DType::kBool, DType::kF32, bools.data(), bf.data(), bools.size());
  cast(DType::kBool, DType::kI64, bools.data(), bl.data(), bools.size());
  for (std::size_t i = 0; i < bools.size(); ++i) {
    EXPECT_EQ(bf[i], bools[i] ? 1.0f : 0.0f);
    EXPECT_EQ(bl[i], bools[i] ? 1 : 0);
  }
}

TEST(Cast, SameDtypeCopiesBits) {
  const std::vector<float> x = f32_values(1000, 31);
  std::vector<float> y(x.size());
  cast(DType::kF32, DType::kF32, x.data(), y.data(), x.size());
  EXPECT_EQ(std::memcmp(x.data(), y.data(), x.size() * sizeof(float)), 0);
  cast(DType::kF32, DType::kF32, y.data(), y.data(), y.size());  // in place: a no-op
  EXPECT_EQ(std::memcmp(x.data(), y.data(), x.size() * sizeof(float)), 0);
  const std::vector<std::uint8_t> b = bool_values(100, 32);
  std::vector<std::uint8_t> bc(b.size());
  cast(DType::kBool, DType::kBool, b.data(), bc.data(), b.size());
  EXPECT_EQ(b, bc);
  cast(DType::kI64, DType::kF32, nullptr, nullptr, 0);
}

TEST(TypedKernels, RejectBadArguments) {
  float v = 1.0f;
  std::uint8_t c = 1;
  EXPECT_THROW(equal(DType::kF32, &v, 2, &v, 1, &c, 1), Error);
  EXPECT_THROW(equal(DType::kBF16, &v, 1, &v, 1, &c, 1), Error);
  EXPECT_THROW(where(4, &c, 1, &v, 1, &v, 3, &v, 1), Error);
  EXPECT_THROW(where(2, &c, 1, &v, 1, &v, 1, &v, 1), Error);
  EXPECT_THROW(broadcast_copy(4, &v, 2, &v, 1), Error);
  EXPECT_THROW(cast(DType::kF32, DType::kBF16, &v, &v, 1), Error);
  EXPECT_THROW(cast(DType::kBF16, DType::kI64, &v, &v, 1), Error);
}

// bf16 -> f32 is exact: the bits become the high half of the float's (normals, subnormals, ±0, ±inf,
// NaN payloads).
TEST(TypedKernels, CastBf16ToF32IsExact) {
  const std::vector<std::uint16_t> x = {0x3F80, 0xBF80, 0x0000, 0x8000, 0x0001, 0x7F80, 0xFF80, 0x7FC1, 0x4049};
  std::vector<float> y(x.size(), -7.0f);
  cast(DType::kBF16, DType::kF32, x.data(), y.data(), x.size());
  for (std::size_t i = 0; i < x.size(); ++i) {
    std::uint32_t bits;
    std::memcpy(&bits, &y[i], sizeof bits);
    EXPECT_EQ(bits, static_cast<std::uint32_t>(x[i]) << 16) << "element " << i;
  }
}

}  // namespace
}  // namespace quarks::ops
