// The widening form of gemv_bf16 (gemv_bf16_simd.hpp), a Highway kernel compiled once per target through
// foreach_target.
//
// A vector of 2L bf16 weights loaded as L u32 lanes holds element 2i in the low and 2i+1 in the high
// half of lane i; shifting the low half up (and masking the high half) gives two f32 vectors exactly.
// x is therefore first copied into that order — per block of 2L: the even elements, then the odd — so
// that each weight vector meets its x values with plain loads.
//
// Alignment: checkpoint data is rarely aligned to cache lines (safetensors data starts 8 bytes past
// one after the usual header padding), and a vector load that straddles two lines streams at about
// three quarters of the speed (measured on Zen 5 with decode_bench: 15.7 against 21.0 GB/s, 1 thread).
// When every row starts at the same offset within a vector (the row stride is a multiple of 2L), the
// loads are aligned instead: blocks start `a` elements before each row, and the lanes outside the row
// (the neighbouring rows' bytes, in the same cache line, so never across a page) are zeroed before
// widening. The first and last rows of the matrix, whose neighbours may lie outside the buffer, run
// the scalar loop when the caller says so.
#include "ops/dense/gemv_bf16_simd.hpp"

#include <cstring>

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "ops/dense/gemv_bf16_simd.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"

HWY_BEFORE_NAMESPACE();
namespace quarks::ops::dense_detail {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

inline float Bf16ToF32(std::uint16_t bits) {
  const std::uint32_t u = static_cast<std::uint32_t>(bits) << 16;
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

void ScalarRow(const float* x, std::size_t m, std::size_t k, const std::uint16_t* w, float* y, std::size_t ldy) {
  for (std::size_t r = 0; r < m; ++r) {
    float s = 0.0f;
    for (std::size_t p = 0; p < k; ++p) s += x[r * k + p] * Bf16ToF32(w[p]);
    y[r * ldy] = s;
  }
}

#if HWY_TARGET == HWY_SCALAR
void GemvBf16(const float* x, std::size_t m, std::size_t k, const std::uint16_t* w, std::size_t ldw, std::size_t rows,
              float* y, std::size_t ldy, float*, bool, bool) {
  for (std::size_t j = 0; j < rows; ++j) ScalarRow(x, m, k, w + j * ldw, y + j, ldy);
}
#else
using DF = hn::ScalableTag<float>;
using DH = hn::Repartition<std::uint16_t, DF>;
using MaskH = hn::Mask<DH>;

// The blocks of x: block b covers row positions [b·2L - a, (b+1)·2L - a), evens then odds, zero
// outside [0, k).
void PrepareX(const float* x, std::size_t m, std::size_t k, std::size_t a, std::size_t blocks, float* xs) {
  const std::size_t lanes = hn::Lanes(DF());
  const auto at = [&](std::size_t r, std::ptrdiff_t p) {
    return p >= 0 && static_cast<std::size_t>(p) < k ? x[r * k + static_cast<std::size_t>(p)] : 0.0f;
  };
  for (std::size_t r = 0; r < m; ++r) {
    float* out = xs + r * blocks * 2 * lanes;
    for (std::size_t b = 0; b < blocks; ++b) {
      const std::ptrdiff_t p0 = static_cast<std::ptrdiff_t>(b * 2 * lanes) - static_cast<std::ptrdiff_t>(a);
      for (std::size_t i = 0; i < lanes; ++i) {
        out[b * 2 * lanes + i] = at(r, p0 + static_cast<std::ptrdiff_t>(2 * i));
        out[b * 2 * lanes + lanes + i] = at(r, p0 + static_cast<std::ptrdiff_t>(2 * i + 1));
      }
    }
  }
}

// R weight rows (each starting `blocks`·2L-element span at w + j·ldw) against M rows of x: R·M
// independent accumulators keep the FMA units fed while the rows stream in.
template <std::size_t M, std::size_t R>
HWY_INLINE void GemvBlock(const float* HWY_RESTRICT xs, std::size_t blocks, const std::uint16_t* HWY_RESTRICT w,
                          std::size_t ldw, float* HWY_RESTRICT y, std::size_t ldy, MaskH head, MaskH tail) {
  const DF df;
  const DH dh;
  const hn::RebindToUnsigned<DF> du;
  const std::size_t lanes = hn::Lanes(df), span = blocks * 2 * lanes;
  const auto high_mask = hn::Set(du, 0xFFFF0000u);
  hn::Vec<DF> acc[R][M];
  for (std::size_t j = 0; j < R; ++j)
    for (std::size_t r = 0; r < M; ++r) acc[j][r] = hn::Zero(df);
  for (std::size_t b = 0; b < blocks; ++b) {
    for (std::size_t j = 0; j < R; ++j) {
      auto v = hn::LoadU(dh, w + j * ldw + b * 2 * lanes);
      if (b == 0) v = hn::IfThenElseZero(head, v);
      if (b + 1 == blocks) v = hn::IfThenElseZero(tail, v);
      const auto u = hn::BitCast(du, v);
      const auto lo = hn::BitCast(df, hn::ShiftLeft<16>(u));
      const auto hi = hn::BitCast(df, hn::And(u, high_mask));
      for (std::size_t r = 0; r < M; ++r) {
        const float* xr = xs + r * span + b * 2 * lanes;
        acc[j][r] = hn::MulAdd(lo, hn::LoadU(df, xr), acc[j][r]);
        acc[j][r] = hn::MulAdd(hi, hn::LoadU(df, xr + lanes), acc[j][r]);
      }
    }
  }
  for (std::size_t j = 0; j < R; ++j)
    for (std::size_t r = 0; r < M; ++r) y[r * ldy + j] = hn::GetLane(hn::SumOfLanes(df, acc[j][r]));
}

template <std::size_t M>
void GemvRows(const float* xs, std::size_t blocks, const std::uint16_t* w, std::size_t ldw, std::size_t rows, float* y,
              std::size_t ldy, MaskH head, MaskH tail) {
  constexpr std::size_t R = M <= 2 ? 4 : M <= 4 ? 2 : 1;
  std::size_t j = 0;
  for (; j + R <= rows; j += R) GemvBlock<M, R>(xs, blocks, w + j * ldw, ldw, y + j, ldy, head, tail);
  for (; j < rows; ++j) GemvBlock<M, 1>(xs, blocks, w + j * ldw, ldw, y + j, ldy, head, tail);
}

void GemvBf16(const float* HWY_RESTRICT x, std::size_t m, std::size_t k, const std::uint16_t* HWY_RESTRICT w,
              std::size_t ldw, std::size_t rows, float* HWY_RESTRICT y, std::size_t ldy, float* HWY_RESTRICT xs,
              bool read_before, bool read_after) {
  const DH dh;
  const std::size_t block = hn::Lanes(dh);  // bf16 elements per vector
  // Elements of each row before its vector-aligned block start; 0 (unaligned loads) when rows differ.
  const std::size_t a =
      ldw % block == 0 ? (reinterpret_cast<std::uintptr_t>(w) % (block * sizeof(std::uint16_t))) / sizeof(std::uint16_t)
                       : 0;
  if (a != 0 && !read_before) {  // the block before row 0 may lie outside the buffer
    ScalarRow(x, m, k, w, y, ldy);
    if (--rows == 0) return;
    w += ldw;
    y += 1;
  }
  const std::size_t blocks = (k + a + block - 1) / block;
  const std::size_t past = blocks * block - a - k;  // elements after each row in its last block
  if (past != 0 && !read_after) {                   // the block after the last row may lie outside the buffer
    ScalarRow(x, m, k, w + (rows - 1) * ldw, y + rows - 1, ldy);
    if (--rows == 0) return;
  }
  const MaskH head = hn::Not(hn::FirstN(dh, a));
  const MaskH tail = hn::FirstN(dh, block - past);
  PrepareX(x, m, k, a, blocks, xs);
  w -= a;
  switch (m) {
    case 1: return GemvRows<1>(xs, blocks, w, ldw, rows, y, ldy, head, tail);
    case 2: return GemvRows<2>(xs, blocks, w, ldw, rows, y, ldy, head, tail);
    case 3: return GemvRows<3>(xs, blocks, w, ldw, rows, y, ldy, head, tail);
    case 4: return GemvRows<4>(xs, blocks, w, ldw, rows, y, ldy, head, tail);
    case 5: return GemvRows<5>(xs, blocks, w, ldw, rows, y, ldy, head, tail);
    case 6: return GemvRows<6>(xs, blocks, w, ldw, rows, y, ldy, head, tail);
    case 7: return GemvRows<7>(xs, blocks, w, ldw, rows, y, ldy, head, tail);
    case 8: return GemvRows<8>(xs, blocks, w, ldw, rows, y, ldy, head, tail);
    default: return;
  }
}
#endif  // HWY_TARGET == HWY_SCALAR

}  // namespace HWY_NAMESPACE
}  // namespace quarks::ops::dense_detail
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace quarks::ops::dense_detail {

HWY_EXPORT(GemvBf16);

void gemv_bf16_widen(const float* x, std::size_t m, std::size_t k, const std::uint16_t* w, std::size_t ldw,
                     std::size_t rows, float* y, std::size_t ldy, float* scratch, bool read_before, bool read_after) {
  if (m == 0 || m > kGemvMaxRows || rows == 0) return;
  HWY_DYNAMIC_DISPATCH(GemvBf16)(x, m, k, w, ldw, rows, y, ldy, scratch, read_before, read_after);
}

bool gemv_bf16_rounds_x() noexcept { return cpu_has_avx512_bf16(); }

void gemv_bf16(const float* x, std::size_t m, std::size_t k, const std::uint16_t* w, std::size_t ldw, std::size_t rows,
               float* y, std::size_t ldy, float* scratch, bool read_before, bool read_after) {
  if (gemv_bf16_rounds_x()) return gemv_bf16_dot(x, m, k, w, ldw, rows, y, ldy, scratch, read_before, read_after);
  gemv_bf16_widen(x, m, k, w, ldw, rows, y, ldy, scratch, read_before, read_after);
}

}  // namespace quarks::ops::dense_detail
#endif  // HWY_ONCE
