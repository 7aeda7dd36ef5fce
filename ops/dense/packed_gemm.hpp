// The f32 GEMM of the dense kernels on CPUs where oneDNN 2.6 has no brgemm (no AVX-512): weights
// prepacked once into column panels, a Highway register-tile microkernel (packed_gemm.cc), no heap
// allocation and no per-call setup when it runs.
//
// Why not oneDNN there: without brgemm its gemm-based matmul re-packs the weight tile on every call and
// allocates per execution; this GEMM keeps W packed the way the microkernel reads it, so a call only
// copies the rows of x it works on.
//
// Measured on this machine (2-core AMD EPYC, Zen 3, AVX2 + FMA, no AVX-512; shared and noisy), f32,
// bench/dense_bench BM_EncoderDense (DenseKernel with either backend, bias, GELU on the FFN up step),
// medians of 5 randomly interleaved repetitions, two runs, GFLOP/s packed vs oneDNN:
//   microkernel alone (6x16 tile, L1-resident, BM_GemmMicrokernel): 96-97 = the FMA peak of one core
//   1 thread, m = 128: QKV 768x2304 82-83 vs 76-80; 768x768 86-88 vs 86; FFN up 768x3072 74-77 vs
//     73; FFN down 3072x768 69-70 vs 68-79;   m = 512: 82-87 vs 79; 78-87 vs 79-80; 76-78 vs 69-75;
//     78-80 vs 75-81. Geometric mean of the 16 ratios 1.03 (0.88-1.13); the best repetitions reach
//     88-92 (92-96% of the peak) on QKV and attention-out, against 80-89 for oneDNN.
//   2 threads: the same within the noise (ratios 0.66-1.14 between runs, parity on the medians of a
//     2-thread-only run: 0.89-1.12); both backends reach 155-175 at best, near the 2-core peak (~190).
//   Few rows (decode steps), [m, 768]·[768, 3072], best of 120 calls: 1 thread, m = 1: 27 vs 23;
//     m = 2: 46 vs 27; m = 4: 82 vs 50; m = 16: 90 vs 77. 2 threads, m = 1: 48 vs 38; m = 4: 132 vs 83;
//     m = 16: 146 vs 122.
#pragma once

#include <array>
#include <compare>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include <hwy/aligned_allocator.h>

#include "ops/dense/tiled_matmul.hpp"
#include "quarks/activation.hpp"

namespace quarks::ops::dense_detail {

/// Columns of one weight panel: two AVX2 vectors (one AVX-512 vector, four SSE4 vectors).
inline constexpr std::int64_t kGemmPanel = 16;
/// Inner-dimension block at most: one panel block (kc·16 floats, 24 KiB) stays in L1 while every row
/// tile of the row block passes over it. Measured against 256 (1 thread, BERT shapes): a few percent
/// faster, since c is read and written once per k-block.
inline constexpr std::int64_t kGemmKc = 384;

/// The k-block of inner dimension k: equal blocks of at most kGemmKc (300 = 150 + 150, not 256 + 44).
constexpr std::int64_t gemm_k_block(std::int64_t k) noexcept {
  const std::int64_t blocks = (k + kGemmKc - 1) / kGemmKc;
  return (k + blocks - 1) / blocks;
}
/// Rows of x per block at most: one block [mc, kc] is copied once and then read from L2 by every panel.
inline constexpr std::int64_t kGemmMc = 132;

/// W [k, n] (row-major, row stride ldw) and its bias, packed per N-tile of `grid` (64-byte aligned): an
/// N-tile is cut into k-blocks (gemm_k_block) and each k-block into panels of 16 columns, [kb][16]
/// floats each, zero-padded past the tile. A tile's panels of one k-block follow each other, so a pass
/// over them reads one contiguous stream; k-block p0 starts p0·16·panels floats into the tile, where
/// panels = ceil(tile columns / 16) (fewer in a narrow last tile). The bias is padded the same way (16
/// values per panel).
class PackedWeights {
 public:
  PackedWeights() = default;
  PackedWeights(const TileGrid& grid, std::int64_t k, const float* w, std::int64_t ldw, const float* bias);

  /// The packed N-tile j (see above).
  const float* panels(int n_tile) const noexcept { return data_.get() + n_tile * tile_floats_; }
  /// Padded bias of N-tile j (16 floats per panel), or null if there is no bias.
  const float* bias(int n_tile) const noexcept {
    return bias_ ? bias_.get() + n_tile * panels_per_tile_ * kGemmPanel : nullptr;
  }

 private:
  std::int64_t panels_per_tile_ = 0, tile_floats_ = 0;
  hwy::AlignedFreeUniquePtr<float[]> data_, bias_;
};

/// Packed weights shared by the kernels of one owner — a Model, whose plans for different input shapes
/// pack the same constants the same way: one copy instead of one per plan. Entries are keyed by the
/// source pointers and the layout, and live while a kernel holds them. The owner guarantees that the
/// sources stay alive and unchanged while the cache is in use (a Model's constants do). Thread-safe.
class PackedWeightsCache {
 public:
  struct Key {
    const float *w1 = nullptr, *b1 = nullptr, *w2 = nullptr, *b2 = nullptr;  ///< sources (2: gated dense)
    std::int64_t k = 0, n = 0, cols = 0;                                     ///< layout: k, n, N-tile width
    auto operator<=>(const Key&) const = default;
  };
  /// The entry for `key`, or make() stored as it.
  std::shared_ptr<const PackedWeights> get(const Key& key, const std::function<PackedWeights()>& make);
  /// The oneDNN path's weights (PackedTiledMatmul): W packed per N-tile in the layouts its primitives
  /// chose, shared by every plan whose primitives chose the same ones — a model compiled for several
  /// input shapes (a prompt, then one token at a time) keeps one packed copy, not one per plan.
  struct TilesKey {
    std::array<const float*, 4> sources{};  ///< the constants W was made from (Spec::sources)
    std::int64_t k = 0, ldw = 0, n = 0, cols = 0;
    bool bf16 = false;
    std::string layouts;  ///< the packed memory descriptors' bytes (full and narrow N-tile)
    auto operator<=>(const TilesKey&) const = default;
  };
  std::shared_ptr<const PackedTiles> get_tiles(const TilesKey& key, const std::function<PackedTiles()>& make);
  /// Entries some kernel still holds.
  std::size_t live_entries() const;

 private:
  mutable std::mutex mutex_;
  std::map<Key, std::weak_ptr<const PackedWeights>> entries_;
  std::map<TilesKey, std::weak_ptr<const PackedTiles>> tiles_;
};

/// One product tile: c[rows, cols] = act(x[rows, k]·W_tile + bias).
struct GemmTile {
  const float* x = nullptr;         ///< row 0 of the tile's rows of x
  std::int64_t ldx = 0;             ///< row stride of x (>= k)
  std::int64_t rows = 0;            ///< any number >= 0
  std::int64_t k = 0;               ///< >= 1
  std::int64_t cols = 0;            ///< columns of the N-tile, <= 16 · its panel count
  const float* panels = nullptr;    ///< PackedWeights::panels(tile)
  const float* bias = nullptr;      ///< PackedWeights::bias(tile), or null
  float* c = nullptr;               ///< row 0, column 0 of the tile in the destination
  std::int64_t ldc = 0;             ///< row stride of c
  const Activation* act = nullptr;  ///< applied to each finished register tile; null = identity
  float* pack = nullptr;            ///< gemm_pack_bytes(k) bytes, 64-byte aligned
};

/// Floats of one N-tile of `cols` columns packed as PackedWeights lays it out (panels zero-padded to 16).
constexpr std::int64_t gemm_panel_floats(std::int64_t k, std::int64_t cols) noexcept {
  return (cols + kGemmPanel - 1) / kGemmPanel * kGemmPanel * k;
}

/// Packs the [k, cols] matrix whose element (p, j) is w[p·row_stride + j·col_stride] into `out`
/// (gemm_panel_floats(k, cols) floats, 64-byte aligned) in PackedWeights' layout of one N-tile: what
/// GemmTile::panels reads. With col_stride = 1 rows are copied, otherwise (a transposed matrix) gathered.
void pack_gemm_panels(const float* w, std::int64_t row_stride, std::int64_t col_stride, std::int64_t k,
                      std::int64_t cols, float* out) noexcept;

/// Scratch bytes of GemmTile::pack for inner dimension k (one packed block of x), a multiple of 64.
std::size_t gemm_pack_bytes(std::int64_t k) noexcept;

/// Runs one tile on the calling thread (best Highway target). f must have passed validate_activation().
void gemm_tile(const GemmTile& tile);

/// True when DenseKernel and GatedDenseKernel should use this GEMM for f32 weights: oneDNN has no
/// brgemm matmul on this CPU (it lacks AVX-512), so its f32 matmul re-packs weights per call.
bool prefer_packed_gemm() noexcept;

/// For benchmarks: the register-tile height of the dispatched target (rows of one microkernel call).
int gemm_tile_rows() noexcept;
/// For benchmarks: calls the microkernel `reps` times on one L1-resident register tile (a packed
/// [kc, tile rows] block of x from `a`, one [kc, 16] panel from `b`, 64-byte aligned), accumulating
/// into c [tile rows, 16]. 2·tile_rows·16·kc·reps flops.
void gemm_microkernel_loop(const float* a, const float* b, float* c, std::int64_t kc, std::int64_t reps);

}  // namespace quarks::ops::dense_detail
