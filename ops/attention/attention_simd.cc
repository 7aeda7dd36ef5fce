// Highway kernels of the attention family (see attention_simd.hpp and attention_kernel.hpp). Compiled
// once per target through foreach_target; attend_tile dispatches to the best target at run time.
//
// Layout of a task's scratch (qp = rows rounded up to the vector width; padded columns are zero queries
// whose results are never read; rows of qt and s are ld = qp + 16 floats apart):
//   qt    [D, qp]   the query tile, transposed and multiplied by scale·log2(e)
//   s     [kb, qp]  scores of one key block in base 2, transposed: s[j, i] = (q_i·k_j·scale + mask)·log2(e);
//                   then P = 2^(s - max) in place
//   ot    [D, qp]   the context tile transposed, O^T, for tiles of 2·kTileRows queries or more
//   m, l, alpha, bad [qp] each: running max, running sum, this block's rescale factor, poisoned flag
// Keeping the scores transposed makes the online softmax vertical (one vector = lanes queries, no
// horizontal reductions) and lets the score product read K in place, with any row stride, against the
// query tile packed once per task. The context of a wide tile is accumulated transposed as well,
// O^T[D, qp] += V^T·P: P is then read in place, row after row of s, and V element by element, again in
// place with any row stride, so nothing is copied per key block.
#include "ops/attention/attention_simd.hpp"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "ops/attention/attention_simd.cc"
#include <hwy/foreach_target.h>  // IWYU pragma: keep

#include <hwy/highway.h>

#include "ops/attention/attention_transpose-inl.h"

HWY_BEFORE_NAMESPACE();
namespace quarks::ops::attention_detail {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

using DF = hn::ScalableTag<float>;
using D1 = hn::CappedTag<float, 1>;
using i64 = std::int64_t;

constexpr float kInf = std::numeric_limits<float>::infinity();
// Scores are kept in base 2 (q is packed times scale·log2(e), the mask added times log2(e)), so the
// softmax needs exp2, which is cheaper than exp: no range reduction by ln 2.
constexpr float kLog2e = 1.44269504088896340736f;

// Rows of one register tile. With two vectors of columns that is 12 accumulators, 2 loaded vectors of b
// and one broadcast of a: 15 of AVX2's 16 registers (BLIS uses the same 6x16 shape on AVX2).
constexpr int kTileRows = 6;

// How a register tile starts: from zero, or from c rescaled per row (c[r, :]·alpha[r]) or per column
// (c[:, j]·alpha[j]).
enum class Start { kZero, kRowScaled, kColumnScaled };

// c[R, NV vectors] = a[R, k]·b[k, NV vectors] + the start. a is read through element strides (a_row,
// a_col), one broadcast per element; b and c are row-major.
template <int R, int NV, Start kStart, class D>
HWY_INLINE void MicroTile(D d, const float* HWY_RESTRICT a, i64 a_row, i64 a_col, const float* HWY_RESTRICT b, i64 ldb,
                          float* HWY_RESTRICT c, i64 ldc, i64 k, const float* HWY_RESTRICT alpha) {
  using V = hn::Vec<D>;
  const i64 lanes = static_cast<i64>(hn::Lanes(d));
  V acc[R][NV];
  const float* rows[R];
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) {
    rows[r] = a + r * a_row;
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) {
      if constexpr (kStart == Start::kRowScaled) {
        acc[r][v] = hn::Mul(hn::LoadU(d, c + r * ldc + v * lanes), hn::Set(d, alpha[r]));
      } else if constexpr (kStart == Start::kColumnScaled) {
        acc[r][v] = hn::Mul(hn::LoadU(d, c + r * ldc + v * lanes), hn::LoadU(d, alpha + v * lanes));
      } else {
        acc[r][v] = hn::Zero(d);
      }
    }
  }
  for (i64 p = 0; p < k; ++p) {
    V bv[NV];
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) bv[v] = hn::LoadU(d, b + p * ldb + v * lanes);
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      const V av = hn::Set(d, rows[r][p * a_col]);
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) acc[r][v] = hn::MulAdd(av, bv[v], acc[r][v]);
    }
  }
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) {
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) hn::StoreU(acc[r][v], d, c + r * ldc + v * lanes);
  }
}

// All column panels of R rows: two vectors at a time, then one, then single lanes. One or two rows take
// eight or four vectors at a time (still <= 8 accumulators), so that a decode step reads each row of V
// once, front to back, instead of in strips.
template <int R, bool kAccumulate>
HWY_INLINE void PanelRow(const float* HWY_RESTRICT a, i64 a_row, i64 a_col, const float* HWY_RESTRICT b, i64 ldb,
                         float* HWY_RESTRICT c, i64 ldc, i64 n, i64 k, const float* HWY_RESTRICT alpha) {
  constexpr Start kStart = kAccumulate ? Start::kRowScaled : Start::kZero;
  const DF d;
  const i64 lanes = static_cast<i64>(hn::Lanes(d));
  i64 j = 0;
  if constexpr (R == 1) {
    for (; j + 8 * lanes <= n; j += 8 * lanes) {
      MicroTile<1, 8, kStart>(d, a, a_row, a_col, b + j, ldb, c + j, ldc, k, alpha);
    }
  }
  if constexpr (R <= 2) {
    for (; j + 4 * lanes <= n; j += 4 * lanes) {
      MicroTile<R, 4, kStart>(d, a, a_row, a_col, b + j, ldb, c + j, ldc, k, alpha);
    }
  }
  for (; j + 2 * lanes <= n; j += 2 * lanes) {
    MicroTile<R, 2, kStart>(d, a, a_row, a_col, b + j, ldb, c + j, ldc, k, alpha);
  }
  for (; j + lanes <= n; j += lanes) MicroTile<R, 1, kStart>(d, a, a_row, a_col, b + j, ldb, c + j, ldc, k, alpha);
  for (; j < n; ++j) MicroTile<R, 1, kStart>(D1(), a, a_row, a_col, b + j, ldb, c + j, ldc, k, alpha);
}

// c[m, n] (=|+=) a[m, k]·b[k, n] in register tiles of kTileRows rows × two vectors, row blocks outside
// column panels, b read in place: the scores (a = K read in place, b = the query tile, kept in L1 while K
// streams by) and the context of a few query rows (a = P, b = V, each row of V read once).
//
// `triangle` trims the causal triangle of a diagonal key block: query i sees block keys p <= i + triangle
// (kNoTriangle: all). For kScores (rows = keys, columns = queries) the row block starting at row r needs
// only the columns from r - triangle on (rounded down to a vector; the rest is hidden, and overwritten
// with -inf by MaskScores). For the context (rows = queries, inner steps = keys) row i takes exactly its
// first i + 1 + triangle inner steps: the register block runs the steps of its first row, then each later
// row adds its few remaining ones. (Running the whole block over the last row's steps would multiply
// hidden keys' weights of 0 into V, and 0 · inf or 0 · NaN is NaN: a non-finite value at a later position
// would reach earlier ones.)
//
// `lower` trims the band's edge (sliding window): query i sees block keys p >= i + lower (kNoBand: all).
// The scores leave it to MaskScores; in the context each row also takes exactly its own steps: the
// register block runs the steps all its rows see, then each row the ones before and after them.
constexpr i64 kNoTriangle = std::numeric_limits<i64>::max() / 4;
constexpr i64 kNoBand = -kNoTriangle;

template <bool kAccumulate, bool kScores>
void Product(const float* HWY_RESTRICT a, i64 a_row, i64 a_col, const float* HWY_RESTRICT b, i64 ldb,
             float* HWY_RESTRICT c, i64 ldc, i64 m, i64 n, i64 k, const float* HWY_RESTRICT alpha, i64 triangle,
             i64 lower = kNoBand) {
  const i64 lanes = static_cast<i64>(hn::Lanes(DF()));
  for (i64 i = 0; i < m; i += kTileRows) {
    const i64 r = std::min<i64>(kTileRows, m - i);
    const float* bj = b;
    i64 j0 = 0, cols = n, steps = k, from = 0;  // the block's common steps: [from, steps)
    if constexpr (kScores) {
      const i64 skip = std::clamp<i64>(i - triangle, 0, cols) / lanes * lanes;
      bj += skip;
      j0 += skip;
      cols -= skip;
      if (cols == 0) continue;
    } else {
      if (triangle != kNoTriangle) steps = std::clamp<i64>(i + 1 + triangle, 0, k);            // the first row's end
      if (lower != kNoBand) from = std::min(std::clamp<i64>(i + r - 1 + lower, 0, k), steps);  // the last's start
    }
    const float* ai = a + i * a_row + from * a_col;
    bj += kScores ? 0 : from * ldb;
    float* ci = c + i * ldc + j0;
    const float* al = kAccumulate ? alpha + i : nullptr;
    switch (r) {
      case 6: PanelRow<6, kAccumulate>(ai, a_row, a_col, bj, ldb, ci, ldc, cols, steps - from, al); break;
      case 5: PanelRow<5, kAccumulate>(ai, a_row, a_col, bj, ldb, ci, ldc, cols, steps - from, al); break;
      case 4: PanelRow<4, kAccumulate>(ai, a_row, a_col, bj, ldb, ci, ldc, cols, steps - from, al); break;
      case 3: PanelRow<3, kAccumulate>(ai, a_row, a_col, bj, ldb, ci, ldc, cols, steps - from, al); break;
      case 2: PanelRow<2, kAccumulate>(ai, a_row, a_col, bj, ldb, ci, ldc, cols, steps - from, al); break;
      default: PanelRow<1, kAccumulate>(ai, a_row, a_col, bj, ldb, ci, ldc, cols, steps - from, al); break;
    }
    if constexpr (!kScores) {
      // Diagonal block: each later row of the block continues its own sum over the keys it alone sees
      // (at most kTileRows - 1), so a row never multiplies its hidden keys' weights of exactly 0 into V:
      // 0 · inf or 0 · NaN in V would make it NaN. The FMA chain continues in the same order, so
      // finite results are the bits of one chain over the keys the row sees. On a band's edge the common
      // steps start at the last row's first key (`from`), and each row also adds the steps before them
      // that it sees (its own keys only, summed in another order).
      static constexpr float kOne = 1.0f;
      const auto add = [&](i64 row, i64 first, i64 end) {
        if (end <= first) return;
        PanelRow<1, true>(ai + row * a_row + (first - from) * a_col, a_row, a_col, bj + (first - from) * ldb, ldb,
                          ci + row * ldc, ldc, cols, end - first, &kOne);
      };
      if (triangle != kNoTriangle || lower != kNoBand) {
        for (i64 row = 0; row < r; ++row) {
          const i64 row_begin = lower != kNoBand ? std::clamp<i64>(i + row + lower, 0, k) : 0;
          const i64 row_end = triangle != kNoTriangle ? std::clamp<i64>(i + row + 1 + triangle, 0, k) : k;
          add(row, row_begin, std::min(from, row_end));   // before the common steps (the band's edge)
          add(row, std::max(steps, row_begin), row_end);  // after them (the causal triangle)
        }
      }
    }
  }
}

void TileProduct(const float* a, i64 a_row, i64 a_col, const float* b, i64 ldb, float* c, i64 ldc, i64 m, i64 n, i64 k,
                 const float* alpha) {
  if (alpha != nullptr) {
    Product<true, true>(a, a_row, a_col, b, ldb, c, ldc, m, n, k, alpha, kNoTriangle);
  } else {
    Product<false, true>(a, a_row, a_col, b, ldb, c, ldc, m, n, k, alpha, kNoTriangle);
  }
}

// Adds keys [from, to) of a diagonal block to ot (R rows of D × NV vectors of queries from column c0),
// each key only in the lanes of the queries that see it: c + lower <= p <= c + triangle.
template <int R, int NV, class D>
HWY_INLINE void ContextMaskedSteps(D d, const float* HWY_RESTRICT v, i64 v_row, const float* HWY_RESTRICT s, i64 ld,
                                   float* HWY_RESTRICT ot, i64 ldo, i64 from, i64 to, i64 c0, i64 triangle, i64 lower) {
  using V = hn::Vec<D>;
  const i64 lanes = static_cast<i64>(hn::Lanes(d));
  V acc[R][NV], column[NV];
#pragma GCC unroll 4
  for (int c = 0; c < NV; ++c) column[c] = hn::Iota(d, static_cast<float>(c0 + c * lanes));
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) {
#pragma GCC unroll 4
    for (int c = 0; c < NV; ++c) acc[r][c] = hn::LoadU(d, ot + r * ldo + c * lanes);
  }
  for (i64 p = from; p < to; ++p) {
    const V first_seeing = hn::Set(d, static_cast<float>(p - triangle));  // queries c >= p - triangle see p
    const V last_seeing = hn::Set(d, static_cast<float>(p - lower));      // ... and c <= p - lower
    const float* vp = v + p * v_row;
#pragma GCC unroll 4
    for (int c = 0; c < NV; ++c) {
      const auto sees = hn::And(hn::Ge(column[c], first_seeing), hn::Le(column[c], last_seeing));
      const V pv = hn::LoadU(d, s + p * ld + c * lanes);
#pragma GCC unroll 8
      for (int r = 0; r < R; ++r) acc[r][c] = hn::MulAdd(hn::IfThenElseZero(sees, hn::Set(d, vp[r])), pv, acc[r][c]);
    }
  }
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) {
#pragma GCC unroll 4
    for (int c = 0; c < NV; ++c) hn::StoreU(acc[r][c], d, ot + r * ldo + c * lanes);
  }
}

// All row blocks of D for one panel of NV vectors of queries starting at column c0.
template <int NV, bool kAccumulate>
HWY_INLINE void ContextPanel(const float* HWY_RESTRICT v, i64 v_row, const float* HWY_RESTRICT s, i64 ld,
                             float* HWY_RESTRICT ot, i64 ldo, i64 dim, i64 kv, const float* HWY_RESTRICT alpha, i64 c0,
                             i64 triangle, i64 lower) {
  constexpr Start kStart = kAccumulate ? Start::kColumnScaled : Start::kZero;
  const DF d;
  const i64 lanes = static_cast<i64>(hn::Lanes(d));
  // Keys every query of the panel sees, [from, steps), and keys some see: from the first's band start
  // (lower edge) to the last one's end.
  const i64 steps = triangle == kNoTriangle ? kv : std::clamp<i64>(c0 + 1 + triangle, 0, kv);
  const i64 masked_end = triangle == kNoTriangle ? kv : std::clamp<i64>(c0 + NV * lanes + triangle, 0, kv);
  const i64 masked_begin = lower == kNoBand ? 0 : std::clamp<i64>(c0 + lower, 0, kv);
  const i64 from = lower == kNoBand ? 0 : std::min(std::clamp<i64>(c0 + NV * lanes - 1 + lower, 0, kv), steps);
  s += c0;
  ot += c0;
  const float* al = kAccumulate ? alpha + c0 : nullptr;
  const auto block = [&]<int R>(i64 r0) {
    MicroTile<R, NV, kStart>(d, v + r0 + from * v_row, 1, v_row, s + from * ld, ld, ot + r0 * ldo, ldo, steps - from,
                             al);
    if (from > masked_begin) {
      ContextMaskedSteps<R, NV>(d, v + r0, v_row, s, ld, ot + r0 * ldo, ldo, masked_begin, from, c0, triangle, lower);
    }
    if (masked_end > steps) {
      ContextMaskedSteps<R, NV>(d, v + r0, v_row, s, ld, ot + r0 * ldo, ldo, steps, masked_end, c0, triangle, lower);
    }
  };
  i64 r0 = 0;
  for (; r0 + kTileRows <= dim; r0 += kTileRows) block.template operator()<kTileRows>(r0);
  switch (dim - r0) {
    case 5: block.template operator()<5>(r0); break;
    case 4: block.template operator()<4>(r0); break;
    case 3: block.template operator()<3>(r0); break;
    case 2: block.template operator()<2>(r0); break;
    case 1: block.template operator()<1>(r0); break;
    default: break;
  }
}

// The context of a wide tile, transposed: ot[D, qp] = V^T·P over the key block, or with kAccumulate
// ot[:, c] = alpha[c]·ot[:, c] + V^T·P. P is s [kv, qp] (row stride ld), V [kv, D] is read in place
// (row stride v_row), one broadcast per element. Register tiles of kTileRows rows of D × two vectors of
// queries (MicroTile, rescaled per column); column panels go outside, so that one panel of P
// ([kv, 2 vectors], 8 KiB for 128 keys) stays in L1 while the row blocks of D pass over it.
//
// `triangle` (causal diagonal block): query c sees block keys p <= c + triangle. A panel runs the steps
// its first column sees over all its lanes, then the few steps only later columns see with V zeroed in
// the lanes that must not see them: a hidden key's weight is exactly 0, and 0 · inf or 0 · NaN in V
// would make the query NaN. Each query's FMA chain is the one over the keys it sees, in order. `lower`
// (a band's edge): query c also sees only p >= c + lower; the steps before those all lanes see are
// masked the same way (and added after them).
template <bool kAccumulate>
void ContextTransposed(const float* HWY_RESTRICT v, i64 v_row, const float* HWY_RESTRICT s, i64 ld,
                       float* HWY_RESTRICT ot, i64 ldo, i64 dim, i64 qp, i64 kv, const float* HWY_RESTRICT alpha,
                       i64 triangle, i64 lower = kNoBand) {
  const i64 lanes = static_cast<i64>(hn::Lanes(DF()));
  i64 c0 = 0;
  for (; c0 + 2 * lanes <= qp; c0 += 2 * lanes) {
    ContextPanel<2, kAccumulate>(v, v_row, s, ld, ot, ldo, dim, kv, alpha, c0, triangle, lower);
  }
  if (c0 < qp) ContextPanel<1, kAccumulate>(v, v_row, s, ld, ot, ldo, dim, kv, alpha, c0, triangle, lower);
}

void ContextProduct(const float* v, i64 v_row, const float* p, i64 ldp, float* ot, i64 ldo, i64 dim, i64 qp, i64 kv,
                    const float* alpha) {
  if (alpha != nullptr) {
    ContextTransposed<true>(v, v_row, p, ldp, ot, ldo, dim, qp, kv, alpha, kNoTriangle);
  } else {
    ContextTransposed<false>(v, v_row, p, ldp, ot, ldo, dim, qp, kv, alpha, kNoTriangle);
  }
}

// Scores of a tile of at most kNarrowRows queries (decode): s[j, r] = k_j·q_r as dot products along D,
// reading each key row once, front to back, with whole vectors (the register-tiled product would
// broadcast K element by element into mostly idle lanes). q: [rows, D] row-major, already scaled. The
// padded columns r in [rows, qp) are set to 0.
constexpr i64 kNarrowRows = 4;

HWY_INLINE void DotScores(const float* HWY_RESTRICT k, i64 k_row, const float* HWY_RESTRICT q, i64 rows, i64 dim,
                          i64 kv, float* HWY_RESTRICT s, i64 ld, i64 qp) {
  const DF d;
  const i64 lanes = static_cast<i64>(hn::Lanes(d));
  for (i64 j = 0; j < kv; ++j) {
    const float* kj = k + j * k_row;
    float* sj = s + j * ld;
    for (i64 r = 0; r < rows; ++r) {
      const float* qr = q + r * dim;
      auto acc0 = hn::Zero(d), acc1 = hn::Zero(d);
      i64 x = 0;
      for (; x + 2 * lanes <= dim; x += 2 * lanes) {
        acc0 = hn::MulAdd(hn::LoadU(d, kj + x), hn::LoadU(d, qr + x), acc0);
        acc1 = hn::MulAdd(hn::LoadU(d, kj + x + lanes), hn::LoadU(d, qr + x + lanes), acc1);
      }
      for (; x + lanes <= dim; x += lanes) acc0 = hn::MulAdd(hn::LoadU(d, kj + x), hn::LoadU(d, qr + x), acc0);
      float sum = hn::GetLane(hn::SumOfLanes(d, hn::Add(acc0, acc1)));
      for (; x < dim; ++x) sum += kj[x] * qr[x];
      sj[r] = sum;
    }
    std::fill(sj + rows, sj + qp, 0.0f);
  }
}

// 2^x for x <= 0 (and -inf, giving 0): x = n + r with n an integer and |r| <= 1/2, 2^r by Cephes' degree-6
// polynomial (1.6 ulp), 2^n added to the exponent bits. Below -124 the result is 0 (instead of a value
// under 5e-38), which keeps 2^n normal. About 14 operations against 22 for hn::Exp; NaN gives garbage
// (callers track NaN themselves).
template <class D, class V>
HWY_INLINE V Exp2NonPositive(D d, V x) {
  const hn::RebindToSigned<D> di;
  const V magic = hn::Set(d, 12582912.0f);  // 1.5·2^23: adding it rounds to an integer in the low bits
  const V xc = hn::Max(x, hn::Set(d, -125.0f));
  const V k = hn::Add(xc, magic);
  const V r = hn::Sub(xc, hn::Sub(k, magic));
  V p = hn::Set(d, 1.535336188319500e-4f);
  p = hn::MulAdd(p, r, hn::Set(d, 1.339887440266574e-3f));
  p = hn::MulAdd(p, r, hn::Set(d, 9.618437357674640e-3f));
  p = hn::MulAdd(p, r, hn::Set(d, 5.550332471162809e-2f));
  p = hn::MulAdd(p, r, hn::Set(d, 2.402264791363012e-1f));
  p = hn::MulAdd(p, r, hn::Set(d, 6.931472028550421e-1f));
  p = hn::MulAdd(p, r, hn::Set(d, 1.0f));
  const auto scaled = hn::Add(hn::BitCast(di, p), hn::ShiftLeft<23>(hn::BitCast(di, k)));
  return hn::IfThenZeroElse(hn::Lt(x, hn::Set(d, -124.0f)), hn::BitCast(d, scaled));
}

// Adds the mask to the scores of keys [j0, j0 + kv) and hides the keys causal masking forbids.
HWY_INLINE void MaskScores(const TileArgs& t, float* HWY_RESTRICT s, i64 ld, i64 qp, i64 j0, i64 kv) {
  const DF d;
  const i64 lanes = static_cast<i64>(hn::Lanes(d));
  if (t.mask != nullptr) {
    if (t.mask_row == 0) {  // one value per key for the whole tile (a padding mask [B, 1, 1, Sk])
      for (i64 j = 0; j < kv; ++j) {
        const auto mv = hn::Set(d, t.mask[(j0 + j) * t.mask_col] * kLog2e);
        float* row = s + j * ld;
        for (i64 i = 0; i < qp; i += lanes) hn::StoreU(hn::Add(hn::LoadU(d, row + i), mv), d, row + i);
      }
    } else {
      for (i64 j = 0; j < kv; ++j) {
        const float* mj = t.mask + (j0 + j) * t.mask_col;
        float* row = s + j * ld;
        for (i64 i = 0; i < t.rows; ++i) row[i] += mj[i * t.mask_row] * kLog2e;
      }
    }
  }
  // Row i sees keys <= causal_first + i, so key j is hidden from the first j - causal_first rows.
  if (j0 + kv - 1 - t.causal_first > 0) {
    for (i64 j = 0; j < kv; ++j) {
      const i64 hidden = std::min(j0 + j - t.causal_first, qp);
      if (hidden > 0) std::fill(s + j * ld, s + j * ld + hidden, -kInf);
    }
  }
  // The band: row i sees keys >= band_first + i, so key j is hidden from rows j - band_first + 1 on.
  for (i64 j = 0; j < kv && j0 + j - t.band_first + 1 < qp; ++j) {
    std::fill(s + j * ld + std::max<i64>(j0 + j - t.band_first + 1, 0), s + j * ld + qp, -kInf);
  }
}

// One block of the online softmax, down the columns of s[kv, qp] (base-2 scores): updates each query's
// running max m and sum l, sets alpha to the factor that rescales what was accumulated before, flags
// poisoned queries, and replaces the scores by P = 2^(s - m).
HWY_INLINE void OnlineSoftmax(float* HWY_RESTRICT s, i64 ld, i64 qp, i64 kv, float* HWY_RESTRICT m,
                              float* HWY_RESTRICT l, float* HWY_RESTRICT alpha, float* HWY_RESTRICT bad) {
  const DF d;
  const i64 lanes = static_cast<i64>(hn::Lanes(d));
  const auto neg_inf = hn::Set(d, -kInf), pos_inf = hn::Set(d, kInf), one = hn::Set(d, 1.0f);
  for (i64 c = 0; c < qp; c += lanes) {
    auto vmax = neg_inf;
    auto nan = hn::Ne(vmax, vmax);  // all false
    for (i64 j = 0; j < kv; ++j) {
      const auto v = hn::LoadU(d, s + j * ld + c);
      vmax = hn::Max(vmax, v);
      nan = hn::Or(nan, hn::IsNaN(v));
    }
    const auto m_old = hn::LoadU(d, m + c);
    const auto m_new = hn::Max(m_old, vmax);
    // NaN or +inf anywhere makes the query NaN at the end (IEEE softmax gives NaN for both).
    const auto poisoned = hn::Or(nan, hn::Eq(m_new, pos_inf));
    hn::StoreU(hn::IfThenElse(poisoned, one, hn::LoadU(d, bad + c)), d, bad + c);
    // A query that has seen only -inf so far keeps m = -inf; subtracting 0 instead of -inf makes its
    // weights 2^-inf = 0 rather than NaN.
    const auto m_use = hn::IfThenZeroElse(hn::Eq(m_new, neg_inf), m_new);
    const auto a = Exp2NonPositive(d, hn::Sub(m_old, m_use));  // m_old <= m_use; 0 on the first block
    auto sum = hn::Zero(d);
    for (i64 j = 0; j < kv; ++j) {
      const auto p = Exp2NonPositive(d, hn::Sub(hn::LoadU(d, s + j * ld + c), m_use));
      hn::StoreU(p, d, s + j * ld + c);
      sum = hn::Add(sum, p);
    }
    hn::StoreU(hn::MulAdd(hn::LoadU(d, l + c), a, sum), d, l + c);
    hn::StoreU(m_new, d, m + c);
    hn::StoreU(a, d, alpha + c);
  }
}

// o[0, n) = o / den, or 0 when den is 0, or NaN when the query is poisoned.
HWY_INLINE void Normalise(float* HWY_RESTRICT o, i64 n, float den, bool poisoned) {
  if (poisoned || den == 0.0f) {
    std::fill(o, o + n, poisoned ? std::numeric_limits<float>::quiet_NaN() : 0.0f);
    return;
  }
  const DF d;
  const i64 lanes = static_cast<i64>(hn::Lanes(d));
  const auto vd = hn::Set(d, den);
  i64 i = 0;
  for (; i + lanes <= n; i += lanes) hn::StoreU(hn::Div(hn::LoadU(d, o + i), vd), d, o + i);
  for (; i < n; ++i) o[i] /= den;
}

void AttendTile(const TileArgs& t) {
  const DF d;
  const i64 lanes = static_cast<i64>(hn::Lanes(d));
  const i64 qp = (t.rows + lanes - 1) / lanes * lanes;
  const i64 ld = qp + kColumnPad;  // row stride of qt and s: not a power of two (see Product)
  const i64 dim = t.head_dim;
  float* HWY_RESTRICT qt = t.scratch;
  float* HWY_RESTRICT s = qt + dim * ld;
  float* HWY_RESTRICT ot = s + t.k_block * ld;
  float* HWY_RESTRICT m = ot + dim * ld;
  float* HWY_RESTRICT l = m + qp;
  float* HWY_RESTRICT alpha = l + qp;
  float* HWY_RESTRICT bad = alpha + qp;
  // Wide tiles accumulate the context transposed in ot; a few rows (decode, the last rows of a short
  // sequence) accumulate in o directly, reading each row of V once.
  const bool transposed_context = t.rows >= 2 * kTileRows;

  // The causal limit of the last row bounds the keys of the whole tile.
  const i64 key_end = std::min(t.key_end, t.causal_first + t.rows);
  // ...and the band of the first row where the tile's keys start.
  const i64 key_begin = std::max(t.key_begin, t.band_first);
  const bool any_key = key_end > key_begin;
  const bool narrow = t.rows <= kNarrowRows;
  if (any_key) {
    // The query tile times scale·log2(e): transposed [D, qp] for the register-tiled score product, or
    // row-major [rows, D] for the dot products of a narrow tile.
    const float q_scale = t.scale * kLog2e;
    if (narrow) {
      for (i64 i = 0; i < t.rows; ++i) {
        for (i64 c = 0; c < dim; ++c) qt[i * dim + c] = t.q[i * t.q_row + c] * q_scale;
      }
    } else {
      Transpose(t.q, t.q_row, qt, ld, t.rows, dim,
                [q_scale](auto d, auto v, i64) { return hn::Mul(v, hn::Set(d, q_scale)); });
      for (i64 c = 0; c < dim; ++c) std::fill(qt + c * ld + t.rows, qt + c * ld + qp, 0.0f);
    }
    std::fill(m, m + qp, -kInf);
    std::fill(l, l + qp, 0.0f);
    std::fill(bad, bad + qp, 0.0f);
    for (i64 j0 = key_begin; j0 < key_end; j0 += t.k_block) {
      const i64 kv = std::min(t.k_block, key_end - j0);
      // On a diagonal block (causal), skip what the triangle hides: query i sees keys j0 + p for
      // p <= i + causal_first - j0.
      const i64 triangle = j0 + kv - 1 - t.causal_first > 0 ? t.causal_first - j0 : kNoTriangle;
      // On the band's edge, what it hides from later rows: query i sees keys j0 + p for p >= i + lower.
      const i64 lower = t.rows - 1 + t.band_first - j0 > 0 ? t.band_first - j0 : kNoBand;
      if (narrow) {
        DotScores(t.k + j0 * t.k_row, t.k_row, qt, t.rows, dim, kv, s, ld, qp);
      } else {
        Product<false, true>(t.k + j0 * t.k_row, t.k_row, 1, qt, ld, s, ld, kv, qp, dim, nullptr, triangle);
      }
      MaskScores(t, s, ld, qp, j0, kv);
      OnlineSoftmax(s, ld, qp, kv, m, l, alpha, bad);
      // o = alpha·o + P·V_block, P read transposed from s; the first block starts from zero.
      const float* v = t.v + j0 * t.v_row;
      const bool first = j0 == key_begin;
      if (transposed_context) {
        if (first) {
          ContextTransposed<false>(v, t.v_row, s, ld, ot, ld, dim, qp, kv, nullptr, triangle, lower);
        } else {
          ContextTransposed<true>(v, t.v_row, s, ld, ot, ld, dim, qp, kv, alpha, triangle, lower);
        }
      } else if (first) {
        Product<false, false>(s, 1, ld, v, t.v_row, t.o, t.o_row, t.rows, dim, kv, nullptr, triangle, lower);
      } else {
        Product<true, false>(s, 1, ld, v, t.v_row, t.o, t.o_row, t.rows, dim, kv, alpha, triangle, lower);
      }
    }
    if (transposed_context) {
      // Back to [rows, D], divided by each query's sum unless a partial result is wanted (rows that are
      // poisoned or saw only hidden keys are overwritten below).
      if (t.state != nullptr) {
        Transpose(ot, ld, t.o, t.o_row, dim, t.rows, [](auto, auto v, i64) { return v; });
      } else {
        Transpose(ot, ld, t.o, t.o_row, dim, t.rows,
                  [l](auto d, auto v, i64 i) { return hn::Div(v, hn::Set(d, l[i])); });
      }
    }
  }
  for (i64 i = 0; i < t.rows; ++i) {
    float* o = t.o + i * t.o_row;
    if (t.state != nullptr) {
      if (!any_key) std::fill(o, o + dim, 0.0f);
      t.state[i] = any_key ? m[i] : -kInf;
      t.state[t.rows + i] = any_key ? l[i] : 0.0f;
      t.state[2 * t.rows + i] = any_key ? bad[i] : 0.0f;
    } else if (!(transposed_context && any_key && bad[i] == 0.0f && l[i] != 0.0f)) {
      Normalise(o, dim, any_key ? l[i] : 0.0f, any_key && bad[i] != 0.0f);
    }
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace quarks::ops::attention_detail
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace quarks::ops::attention_detail {

HWY_EXPORT(AttendTile);
HWY_EXPORT(TileProduct);
HWY_EXPORT(ContextProduct);

void attend_tile(const TileArgs& args) { HWY_DYNAMIC_DISPATCH(AttendTile)(args); }

void tile_product(const float* a, std::int64_t a_row, std::int64_t a_col, const float* b, std::int64_t ldb, float* c,
                  std::int64_t ldc, std::int64_t m, std::int64_t n, std::int64_t k, const float* alpha) {
  HWY_DYNAMIC_DISPATCH(TileProduct)(a, a_row, a_col, b, ldb, c, ldc, m, n, k, alpha);
}

void context_product(const float* v, std::int64_t v_row, const float* p, std::int64_t ldp, float* ot, std::int64_t ldo,
                     std::int64_t dim, std::int64_t qp, std::int64_t kv, const float* alpha) {
  HWY_DYNAMIC_DISPATCH(ContextProduct)(v, v_row, p, ldp, ot, ldo, dim, qp, kv, alpha);
}

}  // namespace quarks::ops::attention_detail
#endif  // HWY_ONCE
