// Per-target transpose of the attention kernels (attention_simd.cc, compiled once per Highway target
// via HWY_TARGET_INCLUDE + hwy/foreach_target.h): the query tile into the scratch, the transposed context
// back into the output.

#if defined(QUARKS_OPS_ATTENTION_ATTENTION_TRANSPOSE_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef QUARKS_OPS_ATTENTION_ATTENTION_TRANSPOSE_INL_H_
#undef QUARKS_OPS_ATTENTION_ATTENTION_TRANSPOSE_INL_H_
#else
#define QUARKS_OPS_ATTENTION_ATTENTION_TRANSPOSE_INL_H_
#endif

#include <cstdint>

#include "hwy/highway.h"

HWY_BEFORE_NAMESPACE();
namespace quarks::ops::attention_detail {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// dst[c * dst_row + r] = finish(src[r * src_row + c], c) for r < rows, c < cols: a transpose with a
// per-column finishing step (finish(d, v, c) on a vector of destination row c). Blocks of 8 × 8 by
// shuffles where 8 floats fit a vector, single elements elsewhere and at the edges.
template <class Finish>
HWY_INLINE void Transpose(const float* HWY_RESTRICT src, std::int64_t src_row, float* HWY_RESTRICT dst,
                          std::int64_t dst_row, std::int64_t rows, std::int64_t cols, const Finish& finish) {
  using i64 = std::int64_t;
  const hn::CappedTag<float, 1> d1;
  i64 r0 = 0;
#if HWY_MAX_BYTES >= 32  // 8 floats fit a vector
  {
    using D8 = hn::CappedTag<float, 8>;
    const D8 d;
    const hn::Repartition<double, D8> dd;
    const auto pairs_lower = [&](auto a, auto b) {
      return hn::BitCast(d, hn::InterleaveLower(dd, hn::BitCast(dd, a), hn::BitCast(dd, b)));
    };
    const auto pairs_upper = [&](auto a, auto b) {
      return hn::BitCast(d, hn::InterleaveUpper(dd, hn::BitCast(dd, a), hn::BitCast(dd, b)));
    };
    for (; r0 + 8 <= rows; r0 += 8) {
      i64 c0 = 0;
      for (; c0 + 8 <= cols; c0 += 8) {
        const float* in = src + r0 * src_row + c0;
        hn::Vec<D8> t[8], u[8];
        for (int k = 0; k < 8; k += 2) {  // t: pairs of rows interleaved within 128-bit halves
          const auto a = hn::LoadU(d, in + k * src_row), b = hn::LoadU(d, in + (k + 1) * src_row);
          t[k] = hn::InterleaveLower(d, a, b);
          t[k + 1] = hn::InterleaveUpper(d, a, b);
        }
        for (int k = 0; k < 8; k += 4) {  // u[k + j]: columns j and j + 4 of rows k..k+3
          u[k] = pairs_lower(t[k], t[k + 2]);
          u[k + 1] = pairs_upper(t[k], t[k + 2]);
          u[k + 2] = pairs_lower(t[k + 1], t[k + 3]);
          u[k + 3] = pairs_upper(t[k + 1], t[k + 3]);
        }
        for (int j = 0; j < 4; ++j) {
          hn::StoreU(finish(d, hn::ConcatLowerLower(d, u[4 + j], u[j]), c0 + j), d, dst + (c0 + j) * dst_row + r0);
          hn::StoreU(finish(d, hn::ConcatUpperUpper(d, u[4 + j], u[j]), c0 + j + 4), d,
                     dst + (c0 + j + 4) * dst_row + r0);
        }
      }
      for (i64 c = c0; c < cols; ++c) {
        for (i64 r = r0; r < r0 + 8; ++r) {
          hn::StoreU(finish(d1, hn::Set(d1, src[r * src_row + c]), c), d1, dst + c * dst_row + r);
        }
      }
    }
  }
#endif
  for (i64 c = 0; c < cols; ++c) {
    for (i64 r = r0; r < rows; ++r) {
      hn::StoreU(finish(d1, hn::Set(d1, src[r * src_row + c]), c), d1, dst + c * dst_row + r);
    }
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace quarks::ops::attention_detail
HWY_AFTER_NAMESPACE();

#endif  // include guard toggled per target
