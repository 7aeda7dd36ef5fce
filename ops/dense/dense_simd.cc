// Highway kernels of the dense family (see dense_simd.hpp). Compiled once per target through
// foreach_target; the exported functions dispatch to the best target at run time (AVX3 on Zen 4).
#include "ops/dense/dense_simd.hpp"

#include <cmath>

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "ops/dense/dense_simd.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"

HWY_BEFORE_NAMESPACE();
namespace quarks::ops::dense_detail {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// bf16 bits of one vector of floats, rounded to nearest even. Highway 1.0.3's DemoteTo(bf16)
// truncates, which biases every product towards zero, so the rounding is done here: add 0x7FFF plus
// the lowest kept bit, then keep the high half. NaNs skip the rounding (it could carry into the
// exponent) and get the quiet bit so that truncation cannot turn them into infinities.
template <class D>
HWY_INLINE hn::Vec<hn::Rebind<std::uint16_t, D>> RoundToBf16(D /*d*/, hn::Vec<D> v) {
  const hn::RebindToUnsigned<D> du;
  const hn::RebindToSigned<D> di;
  const auto bits = hn::BitCast(du, v);
  const auto lsb = hn::And(hn::ShiftRight<16>(bits), hn::Set(du, 1u));
  const auto rounded = hn::Add(bits, hn::Add(hn::Set(du, 0x7FFFu), lsb));
  const auto quiet_nan = hn::Or(bits, hn::Set(du, 0x00400000u));
  // Not(Eq), not Ne: x86 Ne is the ordered compare, false for NaN.
  const auto is_nan = hn::RebindMask(du, hn::Not(hn::Eq(v, v)));
  const auto high = hn::ShiftRight<16>(hn::IfThenElse(is_nan, quiet_nan, rounded));
  // high <= 0xFFFF, so the saturating i32 -> u16 demotion is exact.
  return hn::DemoteTo(hn::Rebind<std::uint16_t, D>(), hn::BitCast(di, high));
}

void ConvertToBf16(const float* HWY_RESTRICT x, std::uint16_t* HWY_RESTRICT y, std::size_t n) {
  const hn::ScalableTag<float> d;
  const std::size_t lanes = hn::Lanes(d);
  std::size_t i = 0;
  for (; i + lanes <= n; i += lanes) {
    hn::StoreU(RoundToBf16(d, hn::LoadU(d, x + i)), hn::Rebind<std::uint16_t, decltype(d)>(), y + i);
  }
  const hn::CappedTag<float, 1> d1;
  for (; i < n; ++i) {
    hn::StoreU(RoundToBf16(d1, hn::LoadU(d1, x + i)), hn::Rebind<std::uint16_t, decltype(d1)>(), y + i);
  }
}

void Multiply(const float* HWY_RESTRICT a, const float* HWY_RESTRICT b, float* HWY_RESTRICT y, std::size_t n) {
  const hn::ScalableTag<float> d;
  const std::size_t lanes = hn::Lanes(d);
  std::size_t i = 0;
  for (; i + lanes <= n; i += lanes) hn::StoreU(hn::Mul(hn::LoadU(d, a + i), hn::LoadU(d, b + i)), d, y + i);
  for (; i < n; ++i) y[i] = a[i] * b[i];
}

// The accumulators are the y rows themselves: a column block of up to 4 rows stays in L1 while W and
// G stream through sequentially, which is what the hardware prefetchers handle best — this kernel is
// bound by reading G (rows·k·n floats) from memory.
void SynapticFullRows(const float* HWY_RESTRICT x, const float* HWY_RESTRICT w, const float* HWY_RESTRICT g,
                      float* HWY_RESTRICT y, std::size_t rows, std::size_t k, std::size_t n, std::size_t col0,
                      std::size_t col1) {
  const hn::ScalableTag<float> d;
  const std::size_t lanes = hn::Lanes(d);
  for (std::size_t r = 0; r < rows; ++r) {
    for (std::size_t c = col0; c < col1; ++c) y[r * n + c] = 0.0f;
  }
  for (std::size_t j = 0; j < k; ++j) {
    const float* w_row = w + j * n;
    for (std::size_t r = 0; r < rows; ++r) {
      const float xv = x[r * k + j];
      const auto xs = hn::Set(d, xv);
      const float* g_row = g + (r * k + j) * n;
      float* y_row = y + r * n;
      std::size_t c = col0;
      for (; c + lanes <= col1; c += lanes) {
        const auto xw = hn::Mul(xs, hn::LoadU(d, w_row + c));
        hn::StoreU(hn::MulAdd(xw, hn::LoadU(d, g_row + c), hn::LoadU(d, y_row + c)), d, y_row + c);
      }
      for (; c < col1; ++c) y_row[c] = std::fma(xv * w_row[c], g_row[c], y_row[c]);
    }
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace quarks::ops::dense_detail
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace quarks::ops::dense_detail {

HWY_EXPORT(ConvertToBf16);
HWY_EXPORT(Multiply);
HWY_EXPORT(SynapticFullRows);

void convert_to_bf16(const float* x, std::uint16_t* y, std::size_t n) { HWY_DYNAMIC_DISPATCH(ConvertToBf16)(x, y, n); }

void multiply(const float* a, const float* b, float* y, std::size_t n) { HWY_DYNAMIC_DISPATCH(Multiply)(a, b, y, n); }

void synaptic_full_rows(const float* x, const float* w, const float* g, float* y, std::size_t rows, std::size_t k,
                        std::size_t n, std::size_t col0, std::size_t col1) {
  HWY_DYNAMIC_DISPATCH(SynapticFullRows)(x, w, g, y, rows, k, n, col0, col1);
}

}  // namespace quarks::ops::dense_detail
#endif  // HWY_ONCE
