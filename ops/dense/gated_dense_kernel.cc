// GatedDenseKernel (see gated_dense_kernel.hpp).
#include "ops/dense/gated_dense_kernel.hpp"

#include <algorithm>
#include <array>
#include <optional>
#include <string>
#include <vector>

#include <tbb/blocked_range.h>
#include <tbb/parallel_for.h>
#include <tbb/partitioner.h>

#include "ops/activation/activation_kernels.hpp"
#include "ops/dense/dense_simd.hpp"
#include "ops/dense/dnnl_support.hpp"
#include "ops/dense/packed_gemm.hpp"
#include "ops/dense/tiled_matmul.hpp"
#include "quarks/error.hpp"

namespace quarks::ops {
namespace {

using dense_detail::align64;

// oneDNN path. Rows per primitive call. The block's product, [rows, 2·cols] f32, should stay in cache until
// output_gate() reads it, which favours few rows; but without brgemm (no AVX-512) oneDNN's gemm
// re-packs the weight tile on every call, which favours many. Measured for 768→2×3072 at m = 128,
// 1 thread: 37.4 ms per run in blocks of 128 rows, 39.2 ms for 64, 42.5 ms for 32.
constexpr std::int64_t kMaxBlockRows = 128;
// Output columns per N-tile at most: the product tile [W1 tile | W2 tile] is then as wide as
// DenseKernel's widest tile (dense_kernel.cc).
constexpr std::int64_t kMaxTileCols = 384;

// The product's weights [k, 2n]: N-tile j of the output (columns col0..col0+cols) becomes columns
// 2·col0.. of the product, W1's columns followed by W2's. The same for the bias ([2n], zeros for a
// missing b1 or b2; no bias at all when both are missing).
struct Interleaved {
  std::vector<float> w, bias;
};

Interleaved interleave(const dense_detail::TileGrid& grid, std::int64_t k, const float* w1, const float* b1,
                       const float* w2, const float* b2) {
  const std::int64_t n = grid.n;
  Interleaved out;
  out.w.resize(static_cast<std::size_t>(k * 2 * n));
  if (b1 != nullptr || b2 != nullptr) out.bias.assign(static_cast<std::size_t>(2 * n), 0.0f);
  for (int j = 0; j < grid.n_tiles; ++j) {
    const std::int64_t col0 = j * grid.cols;
    const std::int64_t cols = std::min(grid.cols, n - col0);
    for (std::int64_t r = 0; r < k; ++r) {
      float* dst = out.w.data() + r * 2 * n + 2 * col0;
      std::copy_n(w1 + r * n + col0, cols, dst);
      std::copy_n(w2 + r * n + col0, cols, dst + cols);
    }
    if (b1 != nullptr) std::copy_n(b1 + col0, cols, out.bias.data() + 2 * col0);
    if (b2 != nullptr) std::copy_n(b2 + col0, cols, out.bias.data() + 2 * col0 + cols);
  }
  return out;
}

// The packed GEMM's grid: output columns per N-tile at most (the product tile is twice as wide), with
// blocks of up to kGemmMc rows. Measured for 768→2×3072 SwiGLU at m = 128 and 512, 1 thread: 384
// columns and 132-row blocks as fast as 768 columns and 3-7% faster than 192 columns or 64-row blocks.
constexpr std::int64_t kGemmMaxTileCols = 384;

dense_detail::PackedTiledMatmul make_product(const GatedDenseConfig& c, const dense_detail::TileGrid& grid,
                                             const Interleaved& weights, std::array<const float*, 4> sources) {
  dense_detail::PackedTiledMatmul::Spec spec;
  spec.grid = dense_detail::doubled_columns(grid);
  spec.k = c.k;
  spec.bf16 = c.bf16_weights;
  spec.w = weights.w.data();
  spec.ldw = 2 * c.n;
  spec.bias = weights.bias.empty() ? nullptr : weights.bias.data();
  spec.ldd = spec.grid.cols;  // blocks go to a per-task buffer [block_rows, 2·cols]
  spec.what = "gated dense kernel";
  spec.cache = c.weights_cache;
  spec.sources = sources;  // the interleaved copy is a temporary
  return dense_detail::PackedTiledMatmul(spec);
}

}  // namespace

struct GatedDenseKernel::Impl {
  Impl(const GatedDenseConfig& c, const float* w1, const float* b1, const float* w2, const float* b2) : config(c) {
    dense_detail::validate_product("gated dense", c.m, c.k, c.n, c.max_threads, w1 != nullptr && w2 != nullptr);
    validate_activation(c.f, "gated dense");
    validate_activation(c.g, "gated dense");
    const bool packed_gemm = use_packed_gemm(c.backend, c.bf16_weights);
    const int tasks = packed_gemm && c.max_threads == 1 ? 1 : 2 * c.max_threads;
    const dense_detail::TileGrid out_grid =
        packed_gemm ? dense_detail::plan_tile_grid(c.m, c.n, tasks, kGemmMaxTileCols, dense_detail::kGemmMc)
                    : dense_detail::plan_tile_grid(c.m, c.n, tasks, kMaxTileCols, kMaxBlockRows);
    grid = dense_detail::doubled_columns(out_grid);
    std::size_t pack_bytes = 0;
    if (packed_gemm) {
      const auto pack = [&] {
        const Interleaved weights = interleave(out_grid, c.k, w1, b1, w2, b2);
        return dense_detail::PackedWeights(grid, c.k, weights.w.data(), 2 * c.n,
                                           weights.bias.empty() ? nullptr : weights.bias.data());
      };
      packed = c.weights_cache != nullptr ? c.weights_cache->get({w1, b1, w2, b2, c.k, c.n, out_grid.cols}, pack)
                                          : std::make_shared<const dense_detail::PackedWeights>(pack());
      pack_bytes = dense_detail::gemm_pack_bytes(c.k);
    } else {
      product.emplace(make_product(c, out_grid, interleave(out_grid, c.k, w1, b1, w2, b2), {w1, b1, w2, b2}));
      pack_bytes = product->scratchpad_bytes();
    }
    src_buffer_bytes = config.bf16_weights ? align64(static_cast<std::size_t>(grid.block_rows * c.k) * 2) : 0;
    block_buffer_bytes = align64(static_cast<std::size_t>(grid.block_rows * grid.cols) * sizeof(float));
    task_bytes = src_buffer_bytes + block_buffer_bytes + pack_bytes;
  }

  // Block by block of rows: the product [rows, 2·cols] of the N-tile into the task's buffer, then the
  // gate into y while the buffer is in cache.
  void run_task(int i, const float* x, float* y, std::byte* task_scratch) const {
    const dense_detail::TileTask t = grid.task(i);  // in product columns: twice the output's
    const std::int64_t col0 = t.col0 / 2, cols = t.cols / 2;
    auto* src_buffer = reinterpret_cast<std::uint16_t*>(task_scratch);
    auto* block = reinterpret_cast<float*>(task_scratch + src_buffer_bytes);
    std::byte* scratchpad = task_scratch + src_buffer_bytes + block_buffer_bytes;
    for (std::int64_t r = t.row0; r < t.row0 + t.rows; r += grid.block_rows) {
      const std::int64_t rows = std::min(grid.block_rows, t.row0 + t.rows - r);
      const float* x_block = x + r * config.k;
      if (product) {
        const void* src = x_block;
        if (config.bf16_weights) {
          dense_detail::convert_to_bf16(x_block, src_buffer, static_cast<std::size_t>(rows * config.k));
          src = src_buffer;
        }
        product->execute_block(t.n_tile, rows, src, block, scratchpad);
      } else {
        dense_detail::GemmTile tile;
        tile.x = x_block;
        tile.ldx = config.k;
        tile.rows = rows;
        tile.k = config.k;
        tile.cols = t.cols;
        tile.panels = packed->panels(t.n_tile);
        tile.bias = packed->bias(t.n_tile);
        tile.c = block;
        tile.ldc = grid.cols;
        tile.pack = reinterpret_cast<float*>(scratchpad);
        dense_detail::gemm_tile(tile);
      }
      for (std::int64_t rr = 0; rr < rows; ++rr) {
        const float* s = block + rr * grid.cols;
        output_gate(config.f, config.g, s, s + cols, y + (r + rr) * config.n + col0, static_cast<std::size_t>(cols));
      }
    }
  }

  GatedDenseConfig config;
  dense_detail::TileGrid grid;                                // product grid: N-tile j is [W1 tile j | W2 tile j]
  std::shared_ptr<const dense_detail::PackedWeights> packed;  // packed-GEMM path
  std::optional<dense_detail::PackedTiledMatmul> product;     // oneDNN path
  std::size_t src_buffer_bytes = 0;                           // per task: the bf16 copy of one block of x
  std::size_t block_buffer_bytes = 0;  // per task: one block of the product, [block_rows, 2·cols]
  std::size_t task_bytes = 0;          // ... plus the packed block of x or the oneDNN scratchpad
};

GatedDenseKernel::GatedDenseKernel(const GatedDenseConfig& config, const float* w1, const float* b1, const float* w2,
                                   const float* b2) {
  dense_detail::OmpSingleThreadScope single_threaded;  // primitives are created for 1-thread execution
  impl_ = std::make_unique<Impl>(config, w1, b1, w2, b2);
}

GatedDenseKernel::~GatedDenseKernel() = default;

const GatedDenseConfig& GatedDenseKernel::config() const noexcept { return impl_->config; }

std::size_t GatedDenseKernel::scratch_bytes() const noexcept {
  return static_cast<std::size_t>(impl_->grid.task_count()) * impl_->task_bytes;
}

void GatedDenseKernel::run(const float* x, float* y, std::byte* scratch) const {
  const Impl& impl = *impl_;
  dense_detail::parallel_tasks(impl.grid.task_count(), [&](std::int64_t i) {
    impl.run_task(static_cast<int>(i), x, y, scratch + static_cast<std::size_t>(i) * impl.task_bytes);
  });
}

}  // namespace quarks::ops
