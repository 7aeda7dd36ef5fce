// The two forms of the bf16 matrix-vector kernel (gemv_bf16_simd.hpp) against a double reference on
// the same weights: widening (x in f32) on every CPU, dot (x rounded to bf16 to nearest even) where the
// CPU has AVX512_BF16. Weights start at every offset within a vector, over NaN neighbours, so that a
// lane let in from outside a row shows; rows of x 1..8. And with read_before / read_after false, a
// matrix flush against inaccessible pages on both sides is read without a fault.
#include "ops/dense/gemv_bf16_simd.hpp"

#include <gtest/gtest.h>

#include <sys/mman.h>
#include <unistd.h>

#include <cmath>
#include <string>
#include <vector>

#include "common/bf16_bits.hpp"
#include "ops/dense/dense_test_util.hpp"

namespace quarks::ops {
namespace {

using test::bf16_bits;
using test::bf16_nearest;
using test::bf16_value;

struct Case {
  std::size_t m, k, rows, ld, offset;
};

using Form = void (*)(const float*, std::size_t, std::size_t, const std::uint16_t*, std::size_t, std::size_t, float*,
                      std::size_t, float*, bool, bool);

void check(Form form, bool rounds_x, const Case& t, const std::string& name) {
  const auto x = dense_test::random_values(static_cast<std::int64_t>(t.m * t.k), 1);
  const auto v = dense_test::random_values(static_cast<std::int64_t>(t.rows * t.k), 2);
  std::vector<std::uint16_t> w(t.offset + t.rows * t.ld + 64, 0x7FC0);  // NaN everywhere outside W
  for (std::size_t j = 0; j < t.rows; ++j)
    for (std::size_t p = 0; p < t.k; ++p) w[t.offset + j * t.ld + p] = bf16_bits(v[j * t.k + p]);
  const std::size_t ldy = t.rows + 3;
  std::vector<float> y(t.m * ldy, -12345.0f);
  std::vector<float> scratch(dense_detail::gemv_bf16_scratch_floats(t.m, t.k));
  form(x.data(), t.m, t.k, w.data() + t.offset, t.ld, t.rows, y.data(), ldy, scratch.data(), false, false);
  const std::string what = name + " m=" + std::to_string(t.m) + " k=" + std::to_string(t.k) +
                           " rows=" + std::to_string(t.rows) + " ld=" + std::to_string(t.ld) +
                           " offset=" + std::to_string(t.offset);
  int failures = 0;
  for (std::size_t r = 0; r < t.m && failures < 5; ++r) {
    for (std::size_t j = 0; j < t.rows && failures < 5; ++j) {
      double s = 0, abs_sum = 0;
      for (std::size_t p = 0; p < t.k; ++p) {
        const float xv = x[r * t.k + p];
        const double term = (rounds_x ? bf16_nearest(xv) : xv) * bf16_value(w[t.offset + j * t.ld + p]);
        s += term;
        abs_sum += std::abs(term);
      }
      const double tol = dense_test::f32_dot_tolerance(static_cast<std::int64_t>(t.k), abs_sum);
      const double got = y[r * ldy + j];
      if (!(std::abs(got - s) <= tol)) ++failures;
      EXPECT_NEAR(got, s, tol) << what << " at [" << r << "," << j << "]";
    }
    for (std::size_t j = t.rows; j < ldy; ++j) EXPECT_EQ(y[r * ldy + j], -12345.0f) << what << ": wrote past rows";
  }
}

const std::vector<Case>& cases() {
  static const std::vector<Case> all = {
      {1, 2048, 67, 2048, 0}, {1, 2048, 9, 2048, 4}, {1, 17, 5, 17, 3},    {1, 5, 1, 32, 30},     {2, 64, 63, 64, 31},
      {2, 64, 13, 80, 1},     {3, 300, 20, 320, 13}, {3, 300, 20, 301, 0}, {4, 1, 9, 1, 0},       {4, 40, 9, 64, 24},
      {5, 96, 33, 96, 7},     {6, 77, 11, 96, 2},    {7, 33, 10, 64, 31},  {8, 130, 25, 160, 16}, {8, 4096, 3, 4096, 1},
      {1, 32, 4, 32, 0},      {1, 31, 4, 32, 1},     {2, 96, 4, 96, 5},
  };
  return all;
}

TEST(GemvBf16, WideningFormMatchesDoubleReference) {
  for (const Case& t : cases()) check(dense_detail::gemv_bf16_widen, false, t, "widen");
}

TEST(GemvBf16, DotFormMatchesDoubleReferenceWithXRoundedToBf16) {
  if (!dense_detail::cpu_has_avx512_bf16()) GTEST_SKIP() << "this CPU has no AVX512_BF16: the dot form cannot run";
  for (const Case& t : cases()) check(dense_detail::gemv_bf16_dot, true, t, "dot");
}

TEST(GemvBf16, DotRoundsXToNearestEven) {
  if (!dense_detail::cpu_has_avx512_bf16()) GTEST_SKIP() << "this CPU has no AVX512_BF16: the dot form cannot run";
  // Rows of x each one value repeated: halfway between two bf16 values (ties go to the even one), just
  // above and just below halfway; against weights of 1, each sum is k times the rounded value, exactly.
  const std::vector<float> values = {1.0f + 0x1p-8f, 1.0f + 3 * 0x1p-8f, 1.0f + 0x1p-8f + 0x1p-20f,
                                     1.0f + 0x1p-8f - 0x1p-20f};
  const std::vector<float> rounded = {1.0f, 1.0f + 4 * 0x1p-8f, 1.0f + 2 * 0x1p-8f, 1.0f};
  constexpr std::size_t k = 96, rows = 3;  // the middle row runs the vector loop whatever the alignment
  std::vector<float> x;
  for (float v : values) x.insert(x.end(), k, v);
  const std::vector<std::uint16_t> w(rows * k + 64, 0x3F80);  // 1.0
  std::vector<float> y(values.size() * rows);
  std::vector<float> scratch(dense_detail::gemv_bf16_scratch_floats(values.size(), k));
  dense_detail::gemv_bf16_dot(x.data(), values.size(), k, w.data(), k, rows, y.data(), rows, scratch.data(), false,
                              false);
  for (std::size_t r = 0; r < values.size(); ++r)
    for (std::size_t j = 0; j < rows; ++j)
      EXPECT_EQ(y[r * rows + j], k * rounded[r]) << "x row " << r << ", w row " << j;
}

// y = W x for one row of x on w[0 .. (n-1)·ld + k), checked against a double reference.
void check_one_row(Form form, bool rounds_x, const std::uint16_t* w, std::size_t k, std::size_t ld, std::size_t n,
                   const std::string& what) {
  std::vector<float> x(k);
  for (std::size_t p = 0; p < k; ++p) x[p] = 0.25f * static_cast<float>(p % 3);
  std::vector<float> y(n), scratch(dense_detail::gemv_bf16_scratch_floats(1, k));
  form(x.data(), 1, k, w, ld, n, y.data(), n, scratch.data(), false, false);
  for (std::size_t j = 0; j < n; ++j) {
    double s = 0;
    for (std::size_t p = 0; p < k; ++p) s += (rounds_x ? bf16_nearest(x[p]) : x[p]) * bf16_value(w[j * ld + p]);
    EXPECT_NEAR(y[j], s, 1e-5) << what << " row " << j;
  }
}

// With read_before / read_after false neither form may read outside the matrix:
//  - rows of a stride that is no multiple of a vector (unaligned loads) whose last row ends where an
//    inaccessible page starts — a load past it faults in any build;
//  - rows of an aligned stride in a heap block of exactly the matrix's size, at each start offset —
//    a read around it shows under AddressSanitizer (aligned loads never cross a page).
void check_reads_within_matrix(Form form, bool rounds_x, const char* name) {
  const std::size_t page = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
  const std::size_t k = 37;
  {
    void* region = mmap(nullptr, 2 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    ASSERT_NE(region, MAP_FAILED);
    ASSERT_EQ(mprotect(static_cast<char*>(region) + page, page, PROT_NONE), 0);
    const std::size_t n = 20, used = n * k;  // ld = k
    auto* w = reinterpret_cast<std::uint16_t*>(static_cast<char*>(region) + page) - used;
    for (std::size_t i = 0; i < used; ++i) w[i] = bf16_bits(static_cast<float>((i * 7) % 5) - 2.0f);
    check_one_row(form, rounds_x, w, k, k, n, std::string(name) + " against a guard page");
    munmap(region, 2 * page);
  }
  const std::size_t ld = 64, n = 5, used = (n - 1) * ld + k;
  for (std::size_t offset = 0; offset < 32; offset += 3) {
    std::vector<std::uint16_t> block(offset + used);  // the matrix fills the block's end exactly
    std::uint16_t* w = block.data() + offset;
    for (std::size_t i = 0; i < used; ++i) w[i] = bf16_bits(static_cast<float>((i * 3) % 7) - 3.0f);
    std::vector<std::uint16_t> exact(w, w + used);  // and a block of only the matrix
    check_one_row(form, rounds_x, exact.data(), k, ld, n, std::string(name) + " in an exact block");
    check_one_row(form, rounds_x, w, k, ld, n, std::string(name) + " at offset " + std::to_string(offset));
  }
}

TEST(GemvBf16, WideningFormReadsNothingOutsideTheMatrix) {
  check_reads_within_matrix(dense_detail::gemv_bf16_widen, false, "widen");
}

TEST(GemvBf16, DotFormReadsNothingOutsideTheMatrix) {
  if (!dense_detail::cpu_has_avx512_bf16()) GTEST_SKIP() << "this CPU has no AVX512_BF16: the dot form cannot run";
  check_reads_within_matrix(dense_detail::gemv_bf16_dot, true, "dot");
}

}  // namespace
}  // namespace quarks::ops
