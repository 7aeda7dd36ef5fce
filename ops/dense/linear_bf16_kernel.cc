// LinearBf16Kernel: dense and gated dense products on bf16 [N, K] weights read in place (see
// linear_bf16_kernel.hpp).
#include "ops/dense/linear_bf16_kernel.hpp"

#include <algorithm>
#include <array>
#include <string>
#include <vector>

#include <oneapi/dnnl/dnnl.hpp>

#include "ops/activation/activation_kernels.hpp"
#include "ops/dense/dense_simd.hpp"
#include "ops/dense/dnnl_support.hpp"
#include "ops/dense/epilogue.hpp"
#include "ops/dense/gemv_bf16_simd.hpp"
#include "ops/dense/tiled_matmul.hpp"
#include "quarks/error.hpp"

namespace quarks::ops {
namespace {

using dense_detail::align64;
using dnnl::memory;
using dt = memory::data_type;

// oneDNN path, as DenseKernel's (measured there): rows per primitive call, columns per N-tile for
// fewer than kWideTileRows rows. A gated product writes both halves to per-task buffers, so its blocks
// are smaller: [256, 512] twice is 1 MiB per task.
constexpr std::int64_t kMaxBlockRows = 1024;
constexpr std::int64_t kMaxTileCols = 768;
constexpr std::int64_t kWideTileRows = 512;
constexpr std::int64_t kGatedBlockRows = 256;
constexpr std::int64_t kGatedTileCols = 512;

// Highway path: tasks are ranges of output columns (weight rows), each for all rows of x — the point of
// the kernel is to stream each weight row once. Four per thread (one for a single thread), multiples
// of 64 columns, so that a thread delayed on this shared machine does not hold up the step.
dense_detail::TileGrid gemv_grid(const LinearBf16Config& c) {
  dense_detail::TileGrid g;
  g.m = c.m;
  g.n = c.n;
  if (c.m <= 0 || c.n <= 0) return g;
  const std::int64_t tasks = c.max_threads == 1 ? 1 : 4 * c.max_threads;
  g.cols = std::min(c.n, (c.n + 64 * tasks - 1) / (64 * tasks) * 64);
  g.n_tiles = static_cast<int>((c.n + g.cols - 1) / g.cols);
  g.task_rows = g.block_rows = c.m;
  g.m_ranges = 1;
  return g;
}

dense_detail::TileGrid onednn_grid(const LinearBf16Config& c) {
  if (c.g) return dense_detail::plan_tile_grid(c.m, c.n, 2 * c.max_threads, kGatedTileCols, kGatedBlockRows);
  const bool wide = c.m >= kWideTileRows;
  return dense_detail::plan_tile_grid(c.m, c.n, wide ? c.max_threads : 2 * c.max_threads, wide ? c.n : kMaxTileCols,
                                      kMaxBlockRows);
}

void add_bias(float* y, std::int64_t rows, std::int64_t cols, std::int64_t ld, const float* bias) {
  if (bias == nullptr) return;
  for (std::int64_t r = 0; r < rows; ++r)
    for (std::int64_t j = 0; j < cols; ++j) y[r * ld + j] += bias[j];
}

}  // namespace

struct LinearBf16Kernel::Impl {
  // One oneDNN primitive for blocks of one shape and one weight's stride.
  struct Variant {
    dnnl::matmul primitive;
    dense_detail::RuntimeMemory src, weights, dst, scratchpad;
    bool has_scratchpad = false;
  };

  Impl(const LinearBf16Config& c, const Weights& a, const Weights& b) : config(c), w{a, b} {
    const bool gated = c.g.has_value();
    dense_detail::validate_product(gated ? "gated linear bf16" : "linear bf16", c.m, c.k, c.n, c.max_threads,
                                   a.w != nullptr && (!gated || b.w != nullptr));
    for (int i = 0; i < (gated ? 2 : 1); ++i) {
      if (w[i].ld < c.k) {
        throw Error(ErrorCode::kInvalidArgument, "linear bf16 kernel: weight " + std::to_string(i + 1) +
                                                     " has row stride " + std::to_string(w[i].ld) +
                                                     " < k = " + std::to_string(c.k));
      }
      if (w[i].bias != nullptr) bias[i].assign(w[i].bias, w[i].bias + c.n);
      w[i].bias = w[i].bias != nullptr ? bias[i].data() : nullptr;
    }
    validate_activation(c.f, "linear bf16");
    if (gated) validate_activation(*c.g, "linear bf16");
    gemv = c.m <= static_cast<std::int64_t>(dense_detail::kGemvMaxRows);
    if (gemv) {
      grid = gemv_grid(c);
      const std::size_t x_bytes =
          align64(dense_detail::gemv_bf16_scratch_floats(static_cast<std::size_t>(c.m), static_cast<std::size_t>(c.k)) *
                  sizeof(float));
      gate_buffer_bytes = gated ? align64(static_cast<std::size_t>(c.m * grid.cols) * sizeof(float)) : 0;
      task_bytes = x_bytes + 2 * gate_buffer_bytes;
      return;
    }
    grid = onednn_grid(c);
    if (!gated) activation_fused = dense_detail::append_exact_post_op(c.f, post_ops);
    const std::int64_t short_rows = grid.m % grid.block_rows, narrow_cols = grid.n % grid.cols;
    for (int i = 0; i < (gated ? 2 : 1); ++i) {
      create_variant(i, grid.block_rows, grid.cols, false, false);
      if (narrow_cols != 0) create_variant(i, grid.block_rows, narrow_cols, false, true);
      if (short_rows != 0) {
        create_variant(i, short_rows, grid.cols, true, false);
        if (narrow_cols != 0) create_variant(i, short_rows, narrow_cols, true, true);
      }
      if (w[i].bias != nullptr) {
        for (int j = 0; j < grid.n_tiles; ++j) {
          const std::int64_t col0 = j * grid.cols, cols = std::min(grid.cols, grid.n - col0);
          bias_tiles[i].emplace_back(memory::desc({1, cols}, dt::f32, memory::format_tag::ab),
                                     dense_detail::cpu_engine(), const_cast<float*>(w[i].bias + col0));
        }
      }
    }
    src_buffer_bytes = align64(static_cast<std::size_t>(grid.block_rows * c.k) * 2);
    gate_buffer_bytes = gated ? align64(static_cast<std::size_t>(grid.block_rows * grid.cols) * sizeof(float)) : 0;
    task_bytes = src_buffer_bytes + 2 * gate_buffer_bytes + scratchpad_bytes;
  }

  Variant& variant(int i, bool short_rows, bool narrow) { return variants[i][2 * short_rows + narrow]; }
  const Variant& variant(int i, bool short_rows, bool narrow) const { return variants[i][2 * short_rows + narrow]; }

  void create_variant(int i, std::int64_t rows, std::int64_t cols, bool short_rows, bool narrow) {
    const std::int64_t k = config.k;
    const memory::desc src({rows, k}, dt::bf16, {k, 1});
    const memory::desc weights({k, cols}, dt::bf16, {1, w[i].ld});  // [cols, k] rows seen as [k, cols]
    const std::int64_t ldd = config.g ? grid.cols : config.n;
    const memory::desc dst({rows, cols}, dt::f32, {ldd, 1});
    dnnl::primitive_attr attr;
    attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
    attr.set_post_ops(post_ops);
    dnnl::matmul::primitive_desc pd;
    try {
      pd = w[i].bias != nullptr
               ? dnnl::matmul::primitive_desc(
                     dnnl::matmul::desc(src, weights, memory::desc({1, cols}, dt::f32, memory::format_tag::ab), dst),
                     attr, dense_detail::cpu_engine())
               : dnnl::matmul::primitive_desc(dnnl::matmul::desc(src, weights, dst), attr, dense_detail::cpu_engine());
    } catch (const dnnl::error& e) {
      throw Error(ErrorCode::kUnsupported, "linear bf16 kernel: oneDNN 2.6 has no bf16 matmul for [" +
                                               std::to_string(rows) + "," + std::to_string(k) + "]·[" +
                                               std::to_string(k) + "," + std::to_string(cols) +
                                               "] on this CPU (it needs AVX-512), so products of more than " +
                                               std::to_string(dense_detail::kGemvMaxRows) +
                                               " rows on bf16 weights cannot run here: " + e.what());
    }
    Variant& v = variant(i, short_rows, narrow);
    v.primitive = dnnl::matmul(pd);
    v.src = dense_detail::RuntimeMemory(src);
    v.weights = dense_detail::RuntimeMemory(weights);
    v.dst = dense_detail::RuntimeMemory(dst);
    const memory::desc scratch = pd.scratchpad_desc();
    v.has_scratchpad = scratch.get_size() != 0;
    if (v.has_scratchpad) v.scratchpad = dense_detail::RuntimeMemory(scratch);
    scratchpad_bytes = std::max(scratchpad_bytes, align64(scratch.get_size()));
  }

  void run_gemv_task(const dense_detail::TileTask& t, const float* x, float* y, std::byte* scratch) const {
    const std::int64_t m = config.m, k = config.k, n = config.n;
    auto* xs = reinterpret_cast<float*>(scratch + 2 * gate_buffer_bytes);
    const auto product = [&](int i, float* out, std::int64_t ld) {
      dense_detail::gemv_bf16(x, static_cast<std::size_t>(m), static_cast<std::size_t>(k), w[i].w + t.col0 * w[i].ld,
                              static_cast<std::size_t>(w[i].ld), static_cast<std::size_t>(t.cols), out,
                              static_cast<std::size_t>(ld), xs, t.col0 > 0, t.col0 + t.cols < n);
      add_bias(out, m, t.cols, ld, w[i].bias != nullptr ? w[i].bias + t.col0 : nullptr);
    };
    if (!config.g) {
      product(0, y + t.col0, n);
      dense_detail::apply_activation(config.f, y + t.col0, m, t.cols, n);
      return;
    }
    auto* a = reinterpret_cast<float*>(scratch);
    auto* b = reinterpret_cast<float*>(scratch + gate_buffer_bytes);
    product(0, a, t.cols);
    product(1, b, t.cols);
    for (std::int64_t r = 0; r < m; ++r) {
      output_gate(config.f, *config.g, a + r * t.cols, b + r * t.cols, y + r * n + t.col0,
                  static_cast<std::size_t>(t.cols));
    }
  }

  void run_onednn_task(const dense_detail::TileTask& t, const float* x, float* y, std::byte* scratch) const {
    auto* src_buffer = reinterpret_cast<std::uint16_t*>(scratch);
    auto* a = reinterpret_cast<float*>(scratch + src_buffer_bytes);
    auto* b = reinterpret_cast<float*>(scratch + src_buffer_bytes + gate_buffer_bytes);
    std::byte* scratchpad = scratch + src_buffer_bytes + 2 * gate_buffer_bytes;
    const bool narrow = t.n_tile == grid.n_tiles - 1 && grid.n % grid.cols != 0;
    const auto j = static_cast<std::size_t>(t.n_tile);
    for (std::int64_t r = t.row0; r < t.row0 + t.rows; r += grid.block_rows) {
      const std::int64_t rows = std::min(grid.block_rows, t.row0 + t.rows - r);
      dense_detail::convert_to_bf16(x + r * config.k, src_buffer, static_cast<std::size_t>(rows * config.k));
      const auto product = [&](int i, float* out) {
        const Variant& v = variant(i, rows != grid.block_rows, narrow);
        dense_detail::execute(v.primitive, {{DNNL_ARG_BIAS, bias_tiles[i].empty() ? nullptr : &bias_tiles[i][j]}},
                              {{DNNL_ARG_SRC, &v.src, src_buffer},
                               {DNNL_ARG_WEIGHTS, &v.weights, w[i].w + t.col0 * w[i].ld},
                               {DNNL_ARG_DST, &v.dst, out},
                               {DNNL_ARG_SCRATCHPAD, v.has_scratchpad ? &v.scratchpad : nullptr, scratchpad}},
                              "linear bf16 kernel");
      };
      float* y_block = y + r * config.n + t.col0;
      if (!config.g) {
        product(0, y_block);
        if (!activation_fused) dense_detail::apply_activation(config.f, y_block, rows, t.cols, config.n);
        continue;
      }
      product(0, a);
      product(1, b);
      for (std::int64_t rr = 0; rr < rows; ++rr) {
        output_gate(config.f, *config.g, a + rr * grid.cols, b + rr * grid.cols, y_block + rr * config.n,
                    static_cast<std::size_t>(t.cols));
      }
    }
  }

  LinearBf16Config config;
  std::array<Weights, 2> w;
  std::array<std::vector<float>, 2> bias;  // the kernel's copies
  bool gemv = false;
  dense_detail::TileGrid grid;
  dnnl::post_ops post_ops;
  bool activation_fused = false;
  std::array<std::array<Variant, 4>, 2> variants;  // oneDNN path, per weight
  std::array<std::vector<memory>, 2> bias_tiles;   // oneDNN path: views of bias, one per N-tile
  std::size_t scratchpad_bytes = 0;                // largest oneDNN scratchpad, 64-aligned
  std::size_t src_buffer_bytes = 0;                // per task: one block of x in bf16
  std::size_t gate_buffer_bytes = 0;               // per task, gated: each product's block
  std::size_t task_bytes = 0;
};

LinearBf16Kernel::LinearBf16Kernel(const LinearBf16Config& config, const Weights& w1, const Weights& w2) {
  dense_detail::OmpSingleThreadScope single_threaded;  // primitives are created for 1-thread execution
  impl_ = std::make_unique<Impl>(config, w1, w2);
}

LinearBf16Kernel::LinearBf16Kernel(const LinearBf16Config& config, const Weights& w1)
    : LinearBf16Kernel(config, w1, Weights{}) {}

LinearBf16Kernel::~LinearBf16Kernel() = default;

const LinearBf16Config& LinearBf16Kernel::config() const noexcept { return impl_->config; }

std::size_t LinearBf16Kernel::scratch_bytes() const noexcept {
  return static_cast<std::size_t>(impl_->grid.task_count()) * impl_->task_bytes;
}

void LinearBf16Kernel::run(const float* x, float* y, std::byte* scratch) const {
  const Impl& impl = *impl_;
  dense_detail::parallel_tasks(impl.grid.task_count(), [&](std::int64_t i) {
    const dense_detail::TileTask t = impl.grid.task(static_cast<int>(i));
    std::byte* task_scratch = scratch + static_cast<std::size_t>(i) * impl.task_bytes;
    if (impl.gemv) {
      impl.run_gemv_task(t, x, y, task_scratch);
    } else {
      impl.run_onednn_task(t, x, y, task_scratch);
    }
  });
}

}  // namespace quarks::ops
