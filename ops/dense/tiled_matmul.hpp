// The tiled, prepacked oneDNN product behind DenseKernel and GatedDenseKernel (bf16, or AVX-512 CPUs; f32
// elsewhere runs ops/dense/packed_gemm.hpp on the same TileGrid) and SynapticGateKernel(kPerInput):
// dst[m, n] = src[m, k]·W[k, n] (+ bias, + oneDNN post-ops) computed tile by tile, each tile one
// single-threaded oneDNN matmul on weights prepacked for that N-tile (DESIGN.md §2).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include <oneapi/dnnl/dnnl.hpp>

#include "ops/dense/dnnl_support.hpp"
#include "quarks/tensor.hpp"

namespace quarks::ops::dense_detail {

class PackedWeightsCache;

/// W packed per N-tile in the layout a PackedTiledMatmul's primitives chose (format_tag::any), each
/// tile a oneDNN memory over a buffer of `storage` (Tensor's allocation: huge pages for large ones).
struct PackedTiles {
  std::vector<Tensor> storage;
  std::vector<dnnl::memory> tiles;
};

/// One unit of parallel work: rows [row0, row0 + rows) × columns [col0, col0 + cols) of the output.
struct TileTask {
  std::int64_t row0 = 0, rows = 0, col0 = 0, cols = 0;
  int n_tile = 0;  ///< index of the N-tile (selects the prepacked weights)
};

/// How an [m, n] output is cut into tasks. A task covers one N-tile and a range of rows; it runs its
/// rows as consecutive primitive calls of `block_rows` rows each (the last call may be shorter), so
/// the N-tile's weights stay in cache across the calls.
struct TileGrid {
  std::int64_t m = 0, n = 0;
  std::int64_t cols = 1;        ///< columns per N-tile (the last N-tile may be narrower)
  std::int64_t task_rows = 1;   ///< rows per task, a multiple of block_rows (the last task may be shorter)
  std::int64_t block_rows = 1;  ///< rows per primitive call
  int n_tiles = 0, m_ranges = 0;

  int task_count() const noexcept { return n_tiles * m_ranges; }
  /// Tasks of one N-tile are adjacent, so a thread that takes a run of tasks reuses the weights.
  TileTask task(int i) const noexcept;
};

/// Tiling of an [m, n] product into at least `target_tasks` tasks (two per thread of the arena balance
/// well and let a thread that finishes early take over work): N-tiles of a multiple of 64 columns and
/// at most `max_cols` (a multiple of 64) columns; rows are split too when the N-tiles alone are too
/// few; primitive calls are limited to `max_block_rows` rows.
TileGrid plan_tile_grid(std::int64_t m, std::int64_t n, int target_tasks, std::int64_t max_cols,
                        std::int64_t max_block_rows);

/// Checks a product kernel's configuration: m, n >= 0, k >= 1, max_threads >= 1, and weights given
/// when n > 0. Throws Error(kInvalidArgument) naming `what` and the shape.
void validate_product(const char* what, std::int64_t m, std::int64_t k, std::int64_t n, int max_threads,
                      bool weights_given);

/// The same grid with every column count doubled: the product grid of a gated kernel, whose N-tile j
/// holds [W1 tile j | W2 tile j].
TileGrid doubled_columns(const TileGrid& grid);

/// A prepacked tiled product. Construction (with OpenMP pinned to one thread by the caller) packs W
/// per N-tile and creates one primitive per distinct block shape (at most 4: full/short rows ×
/// full/narrow columns). execute_block() is const and thread-safe.
class PackedTiledMatmul {
 public:
  struct Spec {
    TileGrid grid;  ///< the product's grid (dst columns)
    std::int64_t k = 0;
    bool bf16 = false;         ///< bf16 src and weights, f32 accumulation, bias and dst
    const float* w = nullptr;  ///< row-major [k, grid.n], row stride ldw
    std::int64_t ldw = 0;
    const float* bias = nullptr;  ///< [grid.n] or null
    dnnl::post_ops post_ops;      ///< fused epilogue after the bias
    std::int64_t ldd = 0;         ///< row stride of the destination blocks are written into
    const char* what = "dense";   ///< kernel name for error messages
    /// Shares the packed W with other products of the same weights and layouts (may be null: then
    /// this product packs its own). `sources` name the constants W was made from, for the cache's key:
    /// W itself, or the weights and biases an interleaved W was built from (w may be a temporary).
    PackedWeightsCache* cache = nullptr;
    std::array<const float*, 4> sources{};
  };

  explicit PackedTiledMatmul(const Spec& spec);

  const TileGrid& grid() const noexcept { return grid_; }
  std::int64_t k() const noexcept { return k_; }
  bool bf16() const noexcept { return bf16_; }
  /// Largest oneDNN scratchpad any block call needs (64-aligned).
  std::size_t scratchpad_bytes() const noexcept { return scratchpad_bytes_; }

  /// dst[rows, cols of N-tile n_tile] = src[rows, k]·W_tile (+ bias + post-ops). src: row-major with
  /// row stride k, f32 or (bf16 mode) bf16; rows is block_rows or the grid's final remainder; dst has
  /// row stride ldd. scratchpad: scratchpad_bytes() bytes private to this call.
  void execute_block(int n_tile, std::int64_t rows, const void* src, float* dst, std::byte* scratchpad) const;

 private:
  // One primitive for blocks of one shape, with the descriptors of its per-call pointers.
  struct Variant {
    dnnl::matmul primitive;
    RuntimeMemory src, dst, scratchpad;
    bool has_scratchpad = false;
  };
  Variant& variant(bool short_rows, bool narrow_cols) { return variants_[2 * short_rows + narrow_cols]; }
  const Variant& variant(bool short_rows, bool narrow_cols) const { return variants_[2 * short_rows + narrow_cols]; }
  void create_variant(const Spec& spec, std::int64_t rows, std::int64_t cols, bool short_rows, bool narrow_cols);

  TileGrid grid_;
  std::int64_t k_ = 0;
  bool bf16_ = false;
  const char* what_;
  std::array<Variant, 4> variants_;
  std::array<dnnl::memory::desc, 2> packed_desc_;  // packed weights layout of a full / narrow N-tile
  std::shared_ptr<const PackedTiles> weights_;     // prepacked, one per N-tile
  std::vector<float> bias_values_;
  std::vector<dnnl::memory> bias_;  // views into bias_values_, one per N-tile
  std::size_t scratchpad_bytes_ = 0;
};

}  // namespace quarks::ops::dense_detail
