// DenseKernel: y = act(x·W + b) on prepacked tiles (packed Highway GEMM or oneDNN) scheduled by TBB (see
// dense_kernel.hpp).
#include "ops/dense/dense_kernel.hpp"

#include <algorithm>
#include <cstdint>
#include <optional>
#include <string>

#include <tbb/blocked_range.h>
#include <tbb/parallel_for.h>
#include <tbb/partitioner.h>

#include "ops/activation/activation_kernels.hpp"
#include "ops/dense/dense_simd.hpp"
#include "ops/dense/dnnl_support.hpp"
#include "ops/dense/epilogue.hpp"
#include "ops/dense/packed_gemm.hpp"
#include "ops/dense/tiled_matmul.hpp"
#include "quarks/error.hpp"

namespace quarks::ops {
namespace {

using dense_detail::align64;

// oneDNN path. Rows per primitive call. As many as possible: where oneDNN 2.6 has no brgemm (CPUs without
// AVX-512) its gemm re-packs the weight tile on every call, so per-call cost falls with more rows —
// measured for 768→3072 at m = 1024, 1 thread: 73 ms per run in blocks of 1024 rows against 105 ms
// in blocks of 256 and 118 ms in blocks of 128. The limit only bounds the bf16 copy of x per task.
constexpr std::int64_t kMaxBlockRows = 1024;
// Columns per N-tile at most for few rows: the weight tile (k × cols) should stay in cache. Measured
// for 768→3072 at m = 128, 1 thread: 9.3 ms per run with tiles of 768 columns against 12.9 ms with
// tiles of 1536 and 13.9 ms with one full-width tile.
constexpr std::int64_t kMaxTileCols = 768;
// From this many rows on, each N-tile's call re-packing its block of x costs more than the cache
// misses of a wide weight tile, so the width is bounded only by the threads' need for tasks, and
// each thread gets one task (fewer re-packs of x) instead of two. Measured at m = 1024: 1 thread,
// 67.0 ms with one full-width tile, 68.7 ms with 1536-column tiles, 72.5 ms with 768 (a bare oneDNN
// matmul of the whole product: 66.4 ms in the same run); 2 threads, 38.2 ms with two 1536-column
// tasks against 40.5-42.5 ms with four 768-column ones (bare oneDNN: 40.2 ms).
constexpr std::int64_t kWideTileRows = 512;

// Columns per N-tile at most for the packed GEMM, so that a task's row block of c (kGemmMc rows × cols)
// is not evicted from L2 between its k-blocks. Measured at 1 thread, m = 128 and 512, BERT shapes: 768
// beat 384 by 3-5%.
constexpr std::int64_t kGemmMaxTileCols = 768;

// The packed GEMM's tasks: one per thread would do for the work, but two balance better when a thread
// is late (on this shared machine, often). Columns are split first, as for oneDNN; splitting rows into
// 2 or 4 ranges instead (each task then copies fewer rows of x) measured no faster at 2 threads on the
// BERT shapes, m = 128 and 512.
dense_detail::TileGrid gemm_grid(const DenseConfig& c) {
  const int tasks = c.max_threads == 1 ? 1 : 2 * c.max_threads;
  return dense_detail::plan_tile_grid(c.m, c.n, tasks, kGemmMaxTileCols, std::max<std::int64_t>(c.m, 1));
}

dense_detail::PackedTiledMatmul make_product(const DenseConfig& c, const float* w, const float* bias,
                                             bool& activation_fused) {
  dense_detail::PackedTiledMatmul::Spec spec;
  const std::int64_t max_cols = c.m >= kWideTileRows ? c.n : kMaxTileCols;
  const int tasks = c.m >= kWideTileRows ? c.max_threads : 2 * c.max_threads;  // see kWideTileRows
  spec.grid = dense_detail::plan_tile_grid(c.m, c.n, tasks, max_cols, kMaxBlockRows);
  spec.k = c.k;
  spec.bf16 = c.bf16_weights;
  spec.w = w;
  spec.ldw = c.n;
  spec.bias = bias;
  activation_fused = dense_detail::append_exact_post_op(c.activation, spec.post_ops);
  spec.ldd = c.n;
  spec.what = "dense kernel";
  spec.cache = c.weights_cache;
  spec.sources = {w};
  return dense_detail::PackedTiledMatmul(spec);
}

}  // namespace

bool use_packed_gemm(DenseBackend backend, bool bf16_weights) {
  if (bf16_weights) return false;
  switch (backend) {
    case DenseBackend::kOneDnn: return false;
    case DenseBackend::kPackedGemm: return true;
    case DenseBackend::kAuto: break;
  }
  return dense_detail::prefer_packed_gemm();
}

struct DenseKernel::Impl {
  Impl(const DenseConfig& c, const float* w, const float* bias) : config(c) {
    dense_detail::validate_product("dense", c.m, c.k, c.n, c.max_threads, w != nullptr);
    validate_activation(c.activation, "dense");
    if (use_packed_gemm(c.backend, c.bf16_weights)) {
      grid = gemm_grid(c);
      const auto pack = [&] { return dense_detail::PackedWeights(grid, c.k, w, c.n, bias); };
      packed = c.weights_cache != nullptr
                   ? c.weights_cache->get({.w1 = w, .b1 = bias, .k = c.k, .n = c.n, .cols = grid.cols}, pack)
                   : std::make_shared<const dense_detail::PackedWeights>(pack());
      task_bytes = dense_detail::gemm_pack_bytes(c.k);
      return;
    }
    product.emplace(make_product(c, w, bias, activation_fused));
    grid = product->grid();
    src_buffer_bytes = config.bf16_weights ? align64(static_cast<std::size_t>(grid.block_rows * c.k) * 2) : 0;
    task_bytes = src_buffer_bytes + product->scratchpad_bytes();
  }

  // The packed GEMM: the whole task in one call (it blocks rows and k itself).
  void run_gemm_task(const dense_detail::TileTask& t, const float* x, float* y, std::byte* task_scratch) const {
    dense_detail::GemmTile tile;
    tile.x = x + t.row0 * config.k;
    tile.ldx = config.k;
    tile.rows = t.rows;
    tile.k = config.k;
    tile.cols = t.cols;
    tile.panels = packed->panels(t.n_tile);
    tile.bias = packed->bias(t.n_tile);
    tile.c = y + t.row0 * config.n + t.col0;
    tile.ldc = config.n;
    tile.act = config.activation.kind == ActivationKind::kIdentity ? nullptr : &config.activation;
    tile.pack = reinterpret_cast<float*>(task_scratch);
    dense_detail::gemm_tile(tile);
  }

  // oneDNN: rows [t.row0, t.row0 + t.rows) of one N-tile, block by block: (convert x to bf16,)
  // multiply, then the activation oneDNN could not fuse, on the block while it is in cache.
  void run_onednn_task(const dense_detail::TileTask& t, const float* x, float* y, std::byte* task_scratch) const {
    auto* src_buffer = reinterpret_cast<std::uint16_t*>(task_scratch);
    std::byte* scratchpad = task_scratch + src_buffer_bytes;
    for (std::int64_t r = t.row0; r < t.row0 + t.rows; r += grid.block_rows) {
      const std::int64_t rows = std::min(grid.block_rows, t.row0 + t.rows - r);
      const float* x_block = x + r * config.k;
      const void* src = x_block;
      if (config.bf16_weights) {
        dense_detail::convert_to_bf16(x_block, src_buffer, static_cast<std::size_t>(rows * config.k));
        src = src_buffer;
      }
      float* y_block = y + r * config.n + t.col0;
      product->execute_block(t.n_tile, rows, src, y_block, scratchpad);
      if (!activation_fused) dense_detail::apply_activation(config.activation, y_block, rows, t.cols, config.n);
    }
  }

  DenseConfig config;
  dense_detail::TileGrid grid;
  std::shared_ptr<const dense_detail::PackedWeights> packed;  // packed-GEMM path
  std::optional<dense_detail::PackedTiledMatmul> product;     // oneDNN path
  bool activation_fused = false;
  std::size_t src_buffer_bytes = 0;  // per task: the bf16 copy of one block of x
  std::size_t task_bytes = 0;        // per task: packed block of x, or src buffer + oneDNN scratchpad
};

DenseKernel::DenseKernel(const DenseConfig& config, const float* w, const float* bias) {
  dense_detail::OmpSingleThreadScope single_threaded;  // primitives are created for 1-thread execution
  impl_ = std::make_unique<Impl>(config, w, bias);
}

DenseKernel::~DenseKernel() = default;

const DenseConfig& DenseKernel::config() const noexcept { return impl_->config; }

std::size_t DenseKernel::scratch_bytes() const noexcept {
  return static_cast<std::size_t>(impl_->grid.task_count()) * impl_->task_bytes;
}

void DenseKernel::run(const float* x, float* y, std::byte* scratch) const {
  const Impl& impl = *impl_;
  dense_detail::parallel_tasks(impl.grid.task_count(), [&](std::int64_t i) {
    const dense_detail::TileTask t = impl.grid.task(static_cast<int>(i));
    std::byte* task_scratch = scratch + static_cast<std::size_t>(i) * impl.task_bytes;
    if (impl.product) {
      impl.run_onednn_task(t, x, y, task_scratch);
    } else {
      impl.run_gemm_task(t, x, y, task_scratch);
    }
  });
}

}  // namespace quarks::ops
