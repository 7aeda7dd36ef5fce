// MatMulKernel (see matmul_kernel.hpp).
#include "ops/dense/matmul_kernel.hpp"

#include <algorithm>
#include <string>

#include "ops/contract/parallel.hpp"
#include "ops/dense/packed_gemm.hpp"
#include "ops/dense/tiled_matmul.hpp"
#include "quarks/error.hpp"

namespace quarks::ops {
namespace {

constexpr std::size_t align64(std::size_t bytes) noexcept { return (bytes + 63) / 64 * 64; }

std::string describe(const MatMulConfig& c) {
  return "matmul kernel " + std::to_string(c.batch) + "×[" + std::to_string(c.m) + "," + std::to_string(c.k) + "]·[" +
         std::to_string(c.k) + "," + std::to_string(c.n) + "]";
}

void validate(const MatMulConfig& c) {
  if (c.batch < 0 || c.m < 0 || c.k < 1 || c.n < 0) {
    throw Error(ErrorCode::kInvalidArgument, describe(c) + ": batch, m and n must be >= 0 and k >= 1");
  }
  if (c.a_batch_stride < 0 || c.b_batch_stride < 0) {
    throw Error(ErrorCode::kInvalidArgument, describe(c) + ": batch strides must be >= 0");
  }
  if (c.max_threads < 1) throw Error(ErrorCode::kInvalidArgument, describe(c) + ": max_threads must be >= 1");
}

}  // namespace

struct MatMulKernel::Impl {
  explicit Impl(const MatMulConfig& c) : config(c) {
    validate(c);
    if (c.batch == 0) return;
    // Two tasks per thread over the whole batch: small per-head products stay whole, a batch of 1 is
    // split into row and column tiles. Columns per tile as the dense kernels' packed GEMM takes them.
    const std::int64_t per_matrix = (2 * c.max_threads + c.batch - 1) / c.batch;
    grid = dense_detail::plan_tile_grid(c.m, c.n, static_cast<int>(per_matrix), std::max<std::int64_t>(c.n, 64), c.m);
    if (grid.task_count() == 0) return;
    tasks = c.batch * grid.task_count();
    // Tasks run in at most two chunks per thread, each with its own scratch: bounded however large the
    // batch. A chunk's scratch: the packed tile of op(B), op(A)'s rows when A is transposed, the GEMM's
    // block of A.
    chunks = static_cast<int>(std::min<std::int64_t>(tasks, 2 * c.max_threads));
    panel_bytes = align64(static_cast<std::size_t>(dense_detail::gemm_panel_floats(c.k, grid.cols)) * sizeof(float));
    a_rows_bytes = c.trans_a ? align64(static_cast<std::size_t>(grid.task_rows * c.k) * sizeof(float)) : 0;
    chunk_bytes = panel_bytes + a_rows_bytes + dense_detail::gemm_pack_bytes(c.k);
  }

  void run_task(std::int64_t task, const float* a, const float* b, float* y, std::byte* scratch) const {
    const MatMulConfig& c = config;
    const std::int64_t batch = task / grid.task_count();
    const dense_detail::TileTask t = grid.task(static_cast<int>(task % grid.task_count()));
    auto* panels = reinterpret_cast<float*>(scratch);
    auto* a_rows = reinterpret_cast<float*>(scratch + panel_bytes);
    // op(B)'s [k, cols] tile: B[k, n] rows, or the transposed B[n, k] gathered.
    const float* b_batch = b + batch * c.b_batch_stride;
    if (c.trans_b) {
      dense_detail::pack_gemm_panels(b_batch + t.col0 * c.k, 1, c.k, c.k, t.cols, panels);
    } else {
      dense_detail::pack_gemm_panels(b_batch + t.col0, c.n, 1, c.k, t.cols, panels);
    }
    const float* a_batch = a + batch * c.a_batch_stride;
    dense_detail::GemmTile tile;
    if (c.trans_a) {
      // A[k, m] used transposed: its rows of op(A) copied out first (the GEMM reads rows of x).
      for (std::int64_t i = 0; i < t.rows; ++i) {
        for (std::int64_t p = 0; p < c.k; ++p) a_rows[i * c.k + p] = a_batch[p * c.m + t.row0 + i];
      }
      tile.x = a_rows;
    } else {
      tile.x = a_batch + t.row0 * c.k;
    }
    tile.ldx = c.k;
    tile.rows = t.rows;
    tile.k = c.k;
    tile.cols = t.cols;
    tile.panels = panels;
    tile.c = y + (batch * c.m + t.row0) * c.n + t.col0;
    tile.ldc = c.n;
    tile.pack = reinterpret_cast<float*>(scratch + panel_bytes + a_rows_bytes);
    dense_detail::gemm_tile(tile);
  }

  MatMulConfig config;
  dense_detail::TileGrid grid;
  std::int64_t tasks = 0;
  int chunks = 0;
  std::size_t panel_bytes = 0, a_rows_bytes = 0, chunk_bytes = 0;
};

MatMulKernel::MatMulKernel(const MatMulConfig& config) : impl_(std::make_unique<Impl>(config)) {}

MatMulKernel::~MatMulKernel() = default;

const MatMulConfig& MatMulKernel::config() const noexcept { return impl_->config; }

std::size_t MatMulKernel::scratch_bytes() const noexcept {
  return static_cast<std::size_t>(impl_->chunks) * impl_->chunk_bytes;
}

void MatMulKernel::run(const float* a, const float* b, float* y, std::byte* scratch) const {
  const Impl& impl = *impl_;
  if (impl.tasks == 0) return;
  quarks::detail::parallel_tasks(impl.chunks, [&](std::int64_t chunk) {
    std::byte* chunk_scratch = scratch + static_cast<std::size_t>(chunk) * impl.chunk_bytes;
    const std::int64_t begin = impl.tasks * chunk / impl.chunks, end = impl.tasks * (chunk + 1) / impl.chunks;
    for (std::int64_t task = begin; task < end; ++task) impl.run_task(task, a, b, y, chunk_scratch);
  });
}

}  // namespace quarks::ops
