// MatMulKernel (see matmul_kernel.hpp).
#include "ops/dense/matmul_kernel.hpp"

#include <algorithm>
#include <array>
#include <string>

#include <tbb/blocked_range.h>
#include <tbb/parallel_for.h>
#include <tbb/partitioner.h>

#include "ops/dense/dnnl_support.hpp"
#include "ops/dense/tiled_matmul.hpp"
#include "quarks/error.hpp"

namespace quarks::ops {
namespace {

using dense_detail::align64;
using dnnl::memory;

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
  // One primitive for tiles of one shape (full / short rows × full / narrow columns).
  struct Variant {
    dnnl::matmul primitive;
    dense_detail::RuntimeMemory a, b, y, scratchpad;
    bool has_scratchpad = false;
  };

  explicit Impl(const MatMulConfig& c) : config(c) {
    validate(c);
    if (c.batch == 0) return;
    // Two tasks per thread over the whole batch: small per-head products stay whole (a tile call
    // costs a few microseconds of oneDNN overhead), a batch of 1 is split into row and column tiles.
    const std::int64_t per_matrix = (2 * c.max_threads + c.batch - 1) / c.batch;
    grid = dense_detail::plan_tile_grid(c.m, c.n, static_cast<int>(per_matrix), std::max<std::int64_t>(c.n, 64), c.m);
    if (grid.task_count() == 0) return;
    const std::int64_t short_rows = c.m % grid.task_rows, narrow_cols = c.n % grid.cols;
    create_variant(grid.task_rows, grid.cols, false, false);
    if (narrow_cols != 0) create_variant(grid.task_rows, narrow_cols, false, true);
    if (short_rows != 0) create_variant(short_rows, grid.cols, true, false);
    if (short_rows != 0 && narrow_cols != 0) create_variant(short_rows, narrow_cols, true, true);
    tasks = c.batch * grid.task_count();
    // Tasks are run in at most two chunks per thread, each with its own scratchpad: bounded scratch
    // however large the batch.
    chunks = static_cast<int>(std::min<std::int64_t>(tasks, 2 * c.max_threads));
  }

  void create_variant(std::int64_t rows, std::int64_t cols, bool short_rows, bool narrow_cols) {
    const MatMulConfig& c = config;
    // The transposes are strides: A[b] stored [k, m] is the [m, k] matrix with strides {1, m}.
    const memory::desc a({rows, c.k}, memory::data_type::f32, c.trans_a ? memory::dims{1, c.m} : memory::dims{c.k, 1});
    const memory::desc b({c.k, cols}, memory::data_type::f32, c.trans_b ? memory::dims{1, c.k} : memory::dims{c.n, 1});
    const memory::desc y({rows, cols}, memory::data_type::f32, {c.n, 1});
    dnnl::primitive_attr attr;
    attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
    dnnl::matmul::primitive_desc pd;
    try {
      pd = dnnl::matmul::primitive_desc(dnnl::matmul::desc(a, b, y), attr, dense_detail::cpu_engine());
    } catch (const dnnl::error& e) {
      throw Error(ErrorCode::kUnsupported, describe(c) + ": oneDNN has no matmul for this tile: " + e.what());
    }
    Variant& v = variants[2 * short_rows + narrow_cols];
    v.primitive = dnnl::matmul(pd);
    v.a = dense_detail::RuntimeMemory(a);
    v.b = dense_detail::RuntimeMemory(b);
    v.y = dense_detail::RuntimeMemory(y);
    const memory::desc scratch = pd.scratchpad_desc();
    v.has_scratchpad = scratch.get_size() != 0;
    if (v.has_scratchpad) v.scratchpad = dense_detail::RuntimeMemory(scratch);
    scratchpad_bytes = std::max(scratchpad_bytes, align64(scratch.get_size()));
  }

  void run_task(std::int64_t task, const float* a, const float* b, float* y, std::byte* scratchpad) const {
    const MatMulConfig& c = config;
    const std::int64_t batch = task / grid.task_count();
    const dense_detail::TileTask t = grid.task(static_cast<int>(task % grid.task_count()));
    const Variant& v = variants[2 * (t.rows != grid.task_rows) + (t.cols != grid.cols)];
    const float* a_tile = a + batch * c.a_batch_stride + (c.trans_a ? t.row0 : t.row0 * c.k);
    const float* b_tile = b + batch * c.b_batch_stride + (c.trans_b ? t.col0 * c.k : t.col0);
    float* y_tile = y + (batch * c.m + t.row0) * c.n + t.col0;
    dense_detail::execute(v.primitive, {},
                          {{DNNL_ARG_SRC, &v.a, a_tile},
                           {DNNL_ARG_WEIGHTS, &v.b, b_tile},
                           {DNNL_ARG_DST, &v.y, y_tile},
                           {DNNL_ARG_SCRATCHPAD, v.has_scratchpad ? &v.scratchpad : nullptr, scratchpad}},
                          "matmul kernel");
  }

  MatMulConfig config;
  dense_detail::TileGrid grid;
  std::array<Variant, 4> variants;
  std::int64_t tasks = 0;
  int chunks = 0;
  std::size_t scratchpad_bytes = 0;
};

MatMulKernel::MatMulKernel(const MatMulConfig& config) {
  dense_detail::OmpSingleThreadScope single_threaded;  // primitives are created for 1-thread execution
  impl_ = std::make_unique<Impl>(config);
}

MatMulKernel::~MatMulKernel() = default;

const MatMulConfig& MatMulKernel::config() const noexcept { return impl_->config; }

std::size_t MatMulKernel::scratch_bytes() const noexcept {
  return static_cast<std::size_t>(impl_->chunks) * impl_->scratchpad_bytes;
}

void MatMulKernel::run(const float* a, const float* b, float* y, std::byte* scratch) const {
  const Impl& impl = *impl_;
  if (impl.tasks == 0) return;
  dense_detail::parallel_tasks(impl.chunks, [&](std::int64_t chunk) {
    std::byte* scratchpad = scratch + static_cast<std::size_t>(chunk) * impl.scratchpad_bytes;
    const std::int64_t begin = impl.tasks * chunk / impl.chunks, end = impl.tasks * (chunk + 1) / impl.chunks;
    for (std::int64_t task = begin; task < end; ++task) impl.run_task(task, a, b, y, scratchpad);
  });
}

}  // namespace quarks::ops
