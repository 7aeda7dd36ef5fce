// Prepacked f32 GEMM of the dense kernels (see packed_gemm.hpp). Compiled once per Highway target
// through foreach_target; gemm_tile dispatches to the best target at run time.
//
// Blocking of one tile c[rows, cols] = x[rows, k]·W_tile (BLIS's loop order; W is packed already):
//   for each block of <= kGemmMc rows:               the block's rows of c (mc × cols) stay in L2
//     for each k-block of kc <= kGemmKc:             x's block [mc, kc] is copied (L2, ~200 KiB)
//       for each panel q of 16 columns:              W's panel block [kc, 16] (24 KiB) stays in L1 ...
//         for each register tile of kRows rows:      ... while every row tile of the block passes over it
//           microkernel: kRows × 16 accumulators over kc steps, then c = acc + (c or bias)
// and on the last k-block the activation runs on the register tile just stored (still in L1).
#include "ops/dense/packed_gemm.hpp"

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <type_traits>
#include <utility>

#include <oneapi/dnnl/dnnl.hpp>

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "ops/dense/packed_gemm.cc"
#include <hwy/foreach_target.h>  // IWYU pragma: keep

#include <hwy/cache_control.h>
#include <hwy/highway.h>

#include "ops/activation/activation_math-inl.h"

HWY_BEFORE_NAMESPACE();
namespace quarks::ops::dense_detail {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;
using quarks::ops::HWY_NAMESPACE::IdentityActivation;
using quarks::ops::HWY_NAMESPACE::VisitActivation;

using i64 = std::int64_t;
// At most one panel wide, so that every target (and SVE-like ones, were they compiled) reads whole
// vectors of a panel row.
using DF = hn::CappedTag<float, kGemmPanel>;
using V = hn::Vec<DF>;

constexpr i64 kLanes = static_cast<i64>(hn::MaxLanes(DF()));
constexpr int kVectors = static_cast<int>(kGemmPanel / kLanes);  // vectors per panel row
// Register-tile height: kRows × kVectors accumulators plus kVectors panel vectors and one broadcast must
// fit the register file. AVX2 (16 registers): 6 × 2 = 12 accumulators (BLIS's 6x16 tile for AVX2);
// SSE4 (16): 3 × 4; AVX-512 (32): 12 × 1; scalar: 1 × 16.
constexpr int kRows = kVectors == 1 ? 12 : kVectors == 2 ? 6 : kVectors == 4 ? 3 : 1;
static_assert(kGemmPanel % kLanes == 0);

// Independent accumulator sets of an R-row tile: a short tile (decode steps: 1-3 rows) would have
// fewer than 8 accumulators, too few to cover the FMA latency (4 cycles on 2 pipes); it splits the
// k steps round-robin over several sets instead, summed at the end.
template <int R>
constexpr int kSplits = std::min(4, (8 + R * kVectors - 1) / (R * kVectors));

// c[R, 16] = a[R, kc]·b[kc, 16] + (c if accumulate, else bias broadcast over the rows, else 0).
// a: rows of x with row stride lda, one broadcast per element; b: one panel block, b[p·16 + j], 64-byte
// aligned; c: row stride ldc. The product is accumulated from zero and c is read only at the end (its
// lines prefetched at the start), so c's latency overlaps the loop instead of delaying it.
template <int R>
void MicroKernel(const float* HWY_RESTRICT a, i64 lda, const float* HWY_RESTRICT b, i64 kc, float* HWY_RESTRICT c,
                 i64 ldc, const float* HWY_RESTRICT bias, bool accumulate) {
  constexpr int S = kSplits<R>;
  const DF d;
  V acc[S][R][kVectors];
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r) {
    if (accumulate) {
      hwy::Prefetch(c + r * ldc);
      hwy::Prefetch(c + r * ldc + kGemmPanel - 1);
    }
  }
#pragma GCC unroll 4
  for (int s = 0; s < S; ++s) {
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r) {
#pragma GCC unroll 16
      for (int v = 0; v < kVectors; ++v) acc[s][r][v] = hn::Zero(d);
    }
  }
  // One k step into accumulator set s.
  const auto step = [&](i64 p, int s) HWY_ATTR {
    V bv[kVectors];
#pragma GCC unroll 16
    for (int v = 0; v < kVectors; ++v) bv[v] = hn::Load(d, b + p * kGemmPanel + v * kLanes);
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r) {
      const V av = hn::Set(d, a[r * lda + p]);
#pragma GCC unroll 16
      for (int v = 0; v < kVectors; ++v) acc[s][r][v] = hn::MulAdd(av, bv[v], acc[s][r][v]);
    }
  };
  i64 p = 0;
  for (; p + S <= kc; p += S) {
#pragma GCC unroll 4
    for (int s = 0; s < S; ++s) step(p + s, s);
  }
  for (; p < kc; ++p) step(p, 0);
#pragma GCC unroll 4
  for (int s = 1; s < S; ++s) {
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r) {
#pragma GCC unroll 16
      for (int v = 0; v < kVectors; ++v) acc[0][r][v] = hn::Add(acc[0][r][v], acc[s][r][v]);
    }
  }
  if (accumulate) {
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r) {
#pragma GCC unroll 16
      for (int v = 0; v < kVectors; ++v) {
        hn::StoreU(hn::Add(acc[0][r][v], hn::LoadU(d, c + r * ldc + v * kLanes)), d, c + r * ldc + v * kLanes);
      }
    }
    return;
  }
  if (bias != nullptr) {
#pragma GCC unroll 16
    for (int v = 0; v < kVectors; ++v) {
      const V bb = hn::Load(d, bias + v * kLanes);
#pragma GCC unroll 16
      for (int r = 0; r < R; ++r) acc[0][r][v] = hn::Add(acc[0][r][v], bb);
    }
  }
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r) {
#pragma GCC unroll 16
    for (int v = 0; v < kVectors; ++v) hn::StoreU(acc[0][r][v], d, c + r * ldc + v * kLanes);
  }
}

using KernelFn = void (*)(const float*, i64, const float*, i64, float*, i64, const float*, bool);

template <std::size_t... I>
constexpr std::array<KernelFn, sizeof...(I)> MakeKernels(std::index_sequence<I...> /*rows - 1*/) {
  return {&MicroKernel<static_cast<int>(I) + 1>...};
}
// kKernels[r - 1] computes r rows.
constexpr std::array<KernelFn, kRows> kKernels = MakeKernels(std::make_index_sequence<kRows>());

// Row tiles of a block of `rows` rows: as few as kRows allows, their heights differing by at most one
// (128 = 18·6 + 4·5 rather than 21·6 + 2: a 2-row tile runs at a third of the FMA rate).
struct RowTiles {
  i64 count, base, extra;  // tiles i < extra have base + 1 rows
  explicit RowTiles(i64 rows) : count((rows + kRows - 1) / kRows), base(rows / count), extra(rows % count) {}
  i64 start(i64 i) const { return i * base + std::min(i, extra); }
  i64 rows(i64 i) const { return base + (i < extra ? 1 : 0); }
};

// Copies rows [0, rows) × columns [0, kb) of x into pack with row stride lda. The copy is contiguous
// and its stride is never a multiple of 4 KiB, whereas x's rows may be (k = 1024, 3072: every row of
// a tile would fall into the same L1 set).
void CopyRows(const float* HWY_RESTRICT x, i64 ldx, i64 rows, i64 kb, float* HWY_RESTRICT pack, i64 lda) {
  const DF d;
  for (i64 r = 0; r < rows; ++r) {
    const float* HWY_RESTRICT src = x + r * ldx;
    float* HWY_RESTRICT dst = pack + r * lda;
    i64 p = 0;
    for (; p + kLanes <= kb; p += kLanes) hn::StoreU(hn::LoadU(d, src + p), d, dst + p);
    for (; p < kb; ++p) dst[p] = src[p];
  }
}

// act on rows × 16 floats (row stride ld) that were just stored.
template <class Act>
HWY_INLINE void ActivateTile(const Act& act, float* HWY_RESTRICT c, i64 ld, i64 rows) {
  const DF d;
  for (i64 r = 0; r < rows; ++r) {
#pragma GCC unroll 16
    for (int v = 0; v < kVectors; ++v) {
      float* p = c + r * ld + v * kLanes;
      hn::StoreU(act(d, hn::LoadU(d, p)), d, p);
    }
  }
}

// Row tiles per block from which the next panel block is prefetched (see Tile).
constexpr i64 kPrefetchMinTiles = 8;

template <class Act>
void Tile(const GemmTile& t, const Act& act) {
  constexpr bool kActivate = !std::is_same_v<Act, IdentityActivation>;
  const i64 k = t.k;
  const i64 panels = (t.cols + kGemmPanel - 1) / kGemmPanel;
  const i64 kc = gemm_k_block(k);
  // Equal row blocks of at most kGemmMc rows (140 = 70 + 70, not 132 + 8).
  const i64 row_blocks = (t.rows + kGemmMc - 1) / kGemmMc;
  const i64 mc = (t.rows + row_blocks - 1) / row_blocks;
  for (i64 i0 = 0; i0 < t.rows; i0 += mc) {
    const i64 mr = std::min(mc, t.rows - i0);
    const RowTiles tiles(mr);
    for (i64 p0 = 0; p0 < k; p0 += kc) {
      const i64 kb = std::min(kc, k - p0);
      const i64 lda = kb + kGemmPanel;
      const bool first = p0 == 0, last = p0 + kb == k;
      CopyRows(t.x + i0 * t.ldx + p0, t.ldx, mr, kb, t.pack, lda);
      for (i64 q = 0; q < panels; ++q) {
        const float* b = t.panels + (p0 * panels + q * kb) * kGemmPanel;
        const float* bias = first && t.bias != nullptr ? t.bias + q * kGemmPanel : nullptr;
        const i64 width = std::min(kGemmPanel, t.cols - q * kGemmPanel);
        // The next panel block (it follows this one in memory) is first read by the next panel's first
        // row tile. With many row tiles, it is fetched ahead, a share per row tile of this panel, so that
        // it arrives in time when W comes from L3 or memory; hint 1 (prefetcht2) asks for L2, not L1,
        // where this panel block stays. With few row tiles the hardware prefetcher does better alone.
        // Measured, 1 thread, [m, 768]·[768, 3072] and [m, 3072]·[3072, 768]: m = 128 and 512, 3-6%
        // faster with the prefetch; m = 1, 4 and 16: 35%, 30% and 12% slower with it.
        const float* next = b + kb * kGemmPanel;
        const bool prefetch = tiles.count >= kPrefetchMinTiles;
        for (i64 i = 0; i < tiles.count; ++i) {
          if (prefetch) {
            for (i64 line = i * kb / tiles.count; line < (i + 1) * kb / tiles.count; ++line) {
              __builtin_prefetch(next + line * kGemmPanel, 0, 1);
            }
          }
          const i64 r0 = tiles.start(i), r = tiles.rows(i);
          const KernelFn kernel = kKernels[static_cast<std::size_t>(r - 1)];
          const float* a = t.pack + r0 * lda;
          float* c = t.c + (i0 + r0) * t.ldc + q * kGemmPanel;
          if (width == kGemmPanel) {
            kernel(a, lda, b, kb, c, t.ldc, bias, !first);
            if constexpr (kActivate) {
              if (last) ActivateTile(act, c, t.ldc, r);
            }
            continue;
          }
          // A narrow last panel: the padded columns (zero weights) go to a full-width tile on the stack.
          HWY_ALIGN float tile[kRows * kGemmPanel] = {};
          if (!first) {
            for (i64 rr = 0; rr < r; ++rr) std::copy_n(c + rr * t.ldc, width, tile + rr * kGemmPanel);
          }
          kernel(a, lda, b, kb, tile, kGemmPanel, bias, !first);
          if constexpr (kActivate) {
            if (last) ActivateTile(act, tile, kGemmPanel, r);
          }
          for (i64 rr = 0; rr < r; ++rr) std::copy_n(tile + rr * kGemmPanel, width, c + rr * t.ldc);
        }
      }
    }
  }
}

void GemmTileImpl(const GemmTile& t) {
  if (t.rows <= 0 || t.cols <= 0) return;
  if (t.act == nullptr) {
    Tile(t, IdentityActivation());
  } else {
    VisitActivation(*t.act, [&](const auto& act) { Tile(t, act); });
  }
}

int TileRows() { return kRows; }

void MicroKernelLoop(const float* a, const float* b, float* c, i64 kc, i64 reps) {
  for (i64 i = 0; i < reps; ++i) MicroKernel<kRows>(a, kc, b, kc, c, kGemmPanel, nullptr, true);
}

}  // namespace HWY_NAMESPACE
}  // namespace quarks::ops::dense_detail
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace quarks::ops::dense_detail {

HWY_EXPORT(GemmTileImpl);
HWY_EXPORT(TileRows);
HWY_EXPORT(MicroKernelLoop);

void pack_gemm_panels(const float* w, std::int64_t row_stride, std::int64_t col_stride, std::int64_t k,
                      std::int64_t cols, float* out) noexcept {
  // A tile with fewer panels has its k-blocks closer together: k-block p0 starts p0·16·panels floats in.
  const std::int64_t panels = (cols + kGemmPanel - 1) / kGemmPanel;
  const std::int64_t kc = gemm_k_block(k);
  for (std::int64_t q = 0; q < panels; ++q) {
    const std::int64_t c0 = q * kGemmPanel;
    const std::int64_t width = std::min(cols - c0, kGemmPanel);
    for (std::int64_t p0 = 0; p0 < k; p0 += kc) {
      const std::int64_t kb = std::min(kc, k - p0);
      float* dst = out + (p0 * panels + q * kb) * kGemmPanel;
      for (std::int64_t p = 0; p < kb; ++p) {
        float* row = dst + p * kGemmPanel;
        const float* from = w + (p0 + p) * row_stride + c0 * col_stride;
        if (col_stride == 1) {
          std::copy_n(from, width, row);
        } else {
          for (std::int64_t j = 0; j < width; ++j) row[j] = from[j * col_stride];
        }
        std::fill(row + width, row + kGemmPanel, 0.0f);
      }
    }
  }
}

PackedWeights::PackedWeights(const TileGrid& grid, std::int64_t k, const float* w, std::int64_t ldw,
                             const float* bias) {
  if (grid.n_tiles == 0) return;
  panels_per_tile_ = (grid.cols + kGemmPanel - 1) / kGemmPanel;
  tile_floats_ = gemm_panel_floats(k, grid.cols);
  data_ = hwy::AllocateAligned<float>(static_cast<std::size_t>(grid.n_tiles * tile_floats_));
  if (bias != nullptr) {
    bias_ = hwy::AllocateAligned<float>(static_cast<std::size_t>(grid.n_tiles * panels_per_tile_ * kGemmPanel));
  }
  for (int j = 0; j < grid.n_tiles; ++j) {
    const std::int64_t col0 = j * grid.cols;
    const std::int64_t cols = std::min(grid.cols, grid.n - col0);
    pack_gemm_panels(w + col0, ldw, 1, k, cols, data_.get() + j * tile_floats_);
    if (bias_) {
      float* b = bias_.get() + j * panels_per_tile_ * kGemmPanel;
      const std::int64_t padded = (cols + kGemmPanel - 1) / kGemmPanel * kGemmPanel;
      std::copy_n(bias + col0, cols, b);
      std::fill(b + cols, b + padded, 0.0f);
    }
  }
}

std::shared_ptr<const PackedWeights> PackedWeightsCache::get(const Key& key,
                                                             const std::function<PackedWeights()>& make) {
  // Packing happens under the lock: two plans compiled at once pack a shared layout once.
  const std::lock_guard<std::mutex> lock(mutex_);
  if (auto entry = entries_[key].lock()) return entry;
  std::erase_if(entries_, [](const auto& e) { return e.second.expired(); });
  auto entry = std::make_shared<const PackedWeights>(make());
  entries_[key] = entry;
  return entry;
}

std::shared_ptr<const PackedTiles> PackedWeightsCache::get_tiles(const TilesKey& key,
                                                                 const std::function<PackedTiles()>& make) {
  const std::lock_guard<std::mutex> lock(mutex_);
  if (auto entry = tiles_[key].lock()) return entry;
  std::erase_if(tiles_, [](const auto& e) { return e.second.expired(); });
  auto entry = std::make_shared<const PackedTiles>(make());
  tiles_[key] = entry;
  return entry;
}

std::size_t PackedWeightsCache::live_entries() const {
  const std::lock_guard<std::mutex> lock(mutex_);
  const auto live = [](const auto& e) { return !e.second.expired(); };
  return static_cast<std::size_t>(std::count_if(entries_.begin(), entries_.end(), live) +
                                  std::count_if(tiles_.begin(), tiles_.end(), live));
}

std::size_t gemm_pack_bytes(std::int64_t k) noexcept {
  const std::int64_t lda = std::min(k, kGemmKc) + kGemmPanel;
  return static_cast<std::size_t>(kGemmMc * lda) * sizeof(float) / 64 * 64 + 64;
}

void gemm_tile(const GemmTile& tile) { HWY_DYNAMIC_DISPATCH(GemmTileImpl)(tile); }

bool prefer_packed_gemm() noexcept {
  const auto isa = static_cast<unsigned>(dnnl::get_effective_cpu_isa());
  const auto avx512_core = static_cast<unsigned>(dnnl::cpu_isa::avx512_core);
  return (isa & avx512_core) != avx512_core;
}

int gemm_tile_rows() noexcept { return HWY_DYNAMIC_DISPATCH(TileRows)(); }

void gemm_microkernel_loop(const float* a, const float* b, float* c, std::int64_t kc, std::int64_t reps) {
  HWY_DYNAMIC_DISPATCH(MicroKernelLoop)(a, b, c, kc, reps);
}

}  // namespace quarks::ops::dense_detail
#endif  // HWY_ONCE
