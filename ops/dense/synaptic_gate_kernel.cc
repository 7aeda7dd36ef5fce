// SynapticGateKernel (see synaptic_gate_kernel.hpp).
#include "ops/dense/synaptic_gate_kernel.hpp"

#include <algorithm>
#include <optional>
#include <string>
#include <vector>

#include <tbb/blocked_range.h>
#include <tbb/parallel_for.h>
#include <tbb/partitioner.h>

#include "ops/dense/dense_simd.hpp"
#include "ops/dense/dnnl_support.hpp"
#include "ops/dense/matmul_kernel.hpp"
#include "ops/dense/packed_gemm.hpp"
#include "ops/dense/tiled_matmul.hpp"
#include "quarks/error.hpp"

namespace quarks::ops {
namespace {

using dense_detail::align64;

// kPerInput: columns per task at most, as the dense kernels' packed GEMM (dense_kernel.cc).
constexpr std::int64_t kMaxTileCols = 768;
// kFull: each task takes one row of x (and of G, a contiguous k·n run) and, when there are fewer
// rows than tasks wanted, a column range of at least this many floats. G then streams sequentially;
// the accumulated row of y (n floats) stays in cache while W and G pass. (Blocks of 4 rows × 512
// columns, which jump n floats through G at every step, ran at 2.2 GB/s for m = 16, 768→3072.)
constexpr std::int64_t kFullMinCols = 256;

}  // namespace

struct SynapticGateKernel::Impl {
  Impl(const SynapticGateConfig& c, const float* w) : config(c) {
    dense_detail::validate_product("synaptic gate", c.m, c.k, c.n, c.max_threads, w != nullptr);
    if (c.m == 0 || c.n == 0) return;
    switch (c.mode) {
      case SynapticGateMode::kSynapseMask: {
        weights.assign(w, w + c.k * c.n);
        MatMulConfig mc;
        mc.m = c.m;
        mc.k = c.k;
        mc.n = c.n;
        mc.max_threads = c.max_threads;
        masked_product.emplace(mc);
        gated_weights_bytes = align64(static_cast<std::size_t>(c.k * c.n) * sizeof(float));
        break;
      }
      case SynapticGateMode::kPerInput: {
        grid = dense_detail::plan_tile_grid(c.m, c.n, 2 * c.max_threads, kMaxTileCols, dense_detail::kGemmMc);
        packed_weights = dense_detail::PackedWeights(grid, c.k, w, c.n, nullptr);
        // Per task: one block of x⊙G, then the GEMM's packed block of it.
        src_buffer_bytes = align64(static_cast<std::size_t>(grid.block_rows * c.k) * sizeof(float));
        task_bytes = src_buffer_bytes + dense_detail::gemm_pack_bytes(c.k);
        break;
      }
      case SynapticGateMode::kFull: weights.assign(w, w + c.k * c.n); break;
    }
  }

  std::size_t scratch_bytes() const {
    switch (config.mode) {
      case SynapticGateMode::kSynapseMask:
        return masked_product ? gated_weights_bytes + masked_product->scratch_bytes() : 0;
      case SynapticGateMode::kPerInput: return static_cast<std::size_t>(grid.task_count()) * task_bytes;
      case SynapticGateMode::kFull: return 0;
    }
    return 0;
  }

  // W⊙G, k rows split across the arena, then the product with those runtime weights.
  void run_synapse_mask(const float* x, const float* g, float* y, std::byte* scratch) const {
    const SynapticGateConfig& c = config;
    auto* gated_weights = reinterpret_cast<float*>(scratch);
    const std::int64_t chunks = std::min<std::int64_t>(c.k, 2 * c.max_threads);
    dense_detail::parallel_tasks(chunks, [&](std::int64_t chunk) {
      const std::int64_t begin = c.k * chunk / chunks * c.n, end = c.k * (chunk + 1) / chunks * c.n;
      dense_detail::multiply(weights.data() + begin, g + begin, gated_weights + begin,
                             static_cast<std::size_t>(end - begin));
    });
    masked_product->run(x, gated_weights, y, scratch + gated_weights_bytes);
  }

  // Per task and block of rows: x⊙G into the task's buffer, then the prepacked product.
  void run_per_input(const float* x, const float* g, float* y, std::byte* scratch) const {
    const SynapticGateConfig& c = config;
    dense_detail::parallel_tasks(grid.task_count(), [&](std::int64_t i) {
      const dense_detail::TileTask t = grid.task(static_cast<int>(i));
      std::byte* task_scratch = scratch + static_cast<std::size_t>(i) * task_bytes;
      auto* gated_x = reinterpret_cast<float*>(task_scratch);
      dense_detail::GemmTile tile;
      tile.x = gated_x;
      tile.ldx = c.k;
      tile.k = c.k;
      tile.cols = t.cols;
      tile.panels = packed_weights.panels(t.n_tile);
      tile.ldc = c.n;
      tile.pack = reinterpret_cast<float*>(task_scratch + src_buffer_bytes);
      for (std::int64_t r = t.row0; r < t.row0 + t.rows; r += grid.block_rows) {
        const std::int64_t rows = std::min(grid.block_rows, t.row0 + t.rows - r);
        dense_detail::multiply(x + r * c.k, g + r * c.k, gated_x, static_cast<std::size_t>(rows * c.k));
        tile.rows = rows;
        tile.c = y + r * c.n + t.col0;
        dense_detail::gemm_tile(tile);
      }
    });
  }

  // Row groups × column blocks, each streamed through synaptic_full_rows.
  void run_full(const float* x, const float* g, float* y) const {
    const SynapticGateConfig& c = config;
    const std::int64_t wanted_tasks = 2 * c.max_threads;
    std::int64_t col_blocks = 1;
    if (c.m < wanted_tasks) {
      col_blocks = std::clamp<std::int64_t>((wanted_tasks + c.m - 1) / std::max<std::int64_t>(c.m, 1), 1,
                                            std::max<std::int64_t>(c.n / kFullMinCols, 1));
    }
    const std::int64_t block_cols = (c.n + col_blocks - 1) / col_blocks;
    dense_detail::parallel_tasks(c.m * col_blocks, [&](std::int64_t i) {
      const std::int64_t row = i / col_blocks, c0 = i % col_blocks * block_cols;
      const std::int64_t c1 = std::min(c0 + block_cols, c.n);
      if (c0 >= c1) return;
      dense_detail::synaptic_full_rows(x + row * c.k, weights.data(), g + row * c.k * c.n, y + row * c.n, 1,
                                       static_cast<std::size_t>(c.k), static_cast<std::size_t>(c.n),
                                       static_cast<std::size_t>(c0), static_cast<std::size_t>(c1));
    });
  }

  SynapticGateConfig config;
  std::vector<float> weights;                        // kSynapseMask, kFull: W as given
  std::optional<MatMulKernel> masked_product;        // kSynapseMask
  std::size_t gated_weights_bytes = 0;               // kSynapseMask: W⊙G in scratch
  dense_detail::TileGrid grid;                       // kPerInput: tasks
  dense_detail::PackedWeights packed_weights;        // kPerInput: W in GEMM panels
  std::size_t src_buffer_bytes = 0, task_bytes = 0;  // kPerInput, per task
};

SynapticGateKernel::SynapticGateKernel(const SynapticGateConfig& config, const float* w)
    : impl_(std::make_unique<Impl>(config, w)) {}

SynapticGateKernel::~SynapticGateKernel() = default;

const SynapticGateConfig& SynapticGateKernel::config() const noexcept { return impl_->config; }

std::size_t SynapticGateKernel::scratch_bytes() const noexcept { return impl_->scratch_bytes(); }

void SynapticGateKernel::run(const float* x, const float* g, float* y, std::byte* scratch) const {
  const Impl& impl = *impl_;
  if (impl.config.m == 0 || impl.config.n == 0) return;
  switch (impl.config.mode) {
    case SynapticGateMode::kSynapseMask: impl.run_synapse_mask(x, g, y, scratch); break;
    case SynapticGateMode::kPerInput: impl.run_per_input(x, g, y, scratch); break;
    case SynapticGateMode::kFull: impl.run_full(x, g, y); break;
  }
}

}  // namespace quarks::ops
