// Tiled prepacked product (see tiled_matmul.hpp).
#include "ops/dense/tiled_matmul.hpp"

#include "ops/dense/packed_gemm.hpp"

#include <algorithm>
#include <string>

#include "quarks/error.hpp"

namespace quarks::ops::dense_detail {
namespace {

using dnnl::memory;
using tag = memory::format_tag;
using dt = memory::data_type;

std::int64_t ceil_div(std::int64_t a, std::int64_t b) { return (a + b - 1) / b; }
std::int64_t round_up(std::int64_t a, std::int64_t b) { return ceil_div(a, b) * b; }

}  // namespace

TileTask TileGrid::task(int i) const noexcept {
  const int n_tile = i / m_ranges;
  const int range = i % m_ranges;
  TileTask t;
  t.n_tile = n_tile;
  t.col0 = n_tile * cols;
  t.cols = std::min(cols, n - t.col0);
  t.row0 = range * task_rows;
  t.rows = std::min(task_rows, m - t.row0);
  return t;
}

TileGrid plan_tile_grid(std::int64_t m, std::int64_t n, int target_tasks, std::int64_t max_cols,
                        std::int64_t max_block_rows) {
  TileGrid g;
  g.m = m;
  g.n = n;
  if (m <= 0 || n <= 0) return g;
  g.cols = std::min({n, round_up(ceil_div(n, std::max(target_tasks, 1)), 64), max_cols});
  g.n_tiles = static_cast<int>(ceil_div(n, g.cols));
  const std::int64_t wanted_ranges = ceil_div(target_tasks, g.n_tiles);
  const std::int64_t range_rows = ceil_div(m, wanted_ranges);
  g.block_rows = std::min(range_rows, max_block_rows);
  g.task_rows = round_up(range_rows, g.block_rows);
  g.m_ranges = static_cast<int>(ceil_div(m, g.task_rows));
  return g;
}

void validate_product(const char* what, std::int64_t m, std::int64_t k, std::int64_t n, int max_threads,
                      bool weights_given) {
  const std::string where = std::string(what) + " kernel [" + std::to_string(m) + "," + std::to_string(k) + "]·[" +
                            std::to_string(k) + "," + std::to_string(n) + "]";
  if (m < 0 || k < 1 || n < 0) throw Error(ErrorCode::kInvalidArgument, where + ": m and n must be >= 0 and k >= 1");
  if (max_threads < 1) throw Error(ErrorCode::kInvalidArgument, where + ": max_threads must be >= 1");
  if (!weights_given && n > 0) throw Error(ErrorCode::kInvalidArgument, where + ": a weight pointer is null");
}

TileGrid doubled_columns(const TileGrid& grid) {
  TileGrid g = grid;
  g.n *= 2;
  g.cols *= 2;
  return g;
}

PackedTiledMatmul::PackedTiledMatmul(const Spec& spec)
    : grid_(spec.grid), k_(spec.k), bf16_(spec.bf16), what_(spec.what) {
  const TileGrid& g = grid_;
  if (g.task_count() == 0) return;
  const std::int64_t short_rows = g.m % g.block_rows;
  const std::int64_t narrow_cols = g.n % g.cols;
  // Full-row variants first: they fix each column width's packed weights layout (format_tag::any),
  // which the short-row variants must then accept as is. (Fixing one layout for every row count, so
  // that all plans could share one packed copy, made oneDNN 2.6 fall back to slow kernels: a
  // Llama-3.2-1B-shape prefill of 8 tokens took 77 s instead of 0.2 s; so the layout stays oneDNN's
  // choice per row count, and plans share a packed copy when their choices agree.)
  create_variant(spec, g.block_rows, g.cols, false, false);
  if (narrow_cols != 0) create_variant(spec, g.block_rows, narrow_cols, false, true);
  if (short_rows != 0) {
    create_variant(spec, short_rows, g.cols, true, false);
    if (narrow_cols != 0) create_variant(spec, short_rows, narrow_cols, true, true);
  }

  // Pack each N-tile of W: a strided view of the user's row-major matrix reordered once.
  const auto pack = [&] {
    const dnnl::engine& eng = cpu_engine();
    dnnl::stream stream(eng);
    PackedTiles packed;
    packed.tiles.reserve(static_cast<std::size_t>(g.n_tiles));
    for (int j = 0; j < g.n_tiles; ++j) {
      const std::int64_t col0 = j * g.cols;
      const std::int64_t cols = std::min(g.cols, g.n - col0);
      const memory::desc plain({k_, cols}, dt::f32, {spec.ldw, 1});
      memory user(plain, eng, const_cast<float*>(spec.w + col0));
      const memory::desc& layout = packed_desc_[cols != g.cols];
      const auto floats = static_cast<std::int64_t>((layout.get_size() + sizeof(float) - 1) / sizeof(float));
      packed.storage.emplace_back(DType::kF32, Shape{std::max<std::int64_t>(floats, 1)});
      memory tile(layout, eng, packed.storage.back().f32());
      dnnl::reorder(user, tile).execute(stream, user, tile);
      packed.tiles.push_back(std::move(tile));
    }
    stream.wait();
    return packed;
  };
  if (spec.cache != nullptr && spec.sources[0] != nullptr) {
    PackedWeightsCache::TilesKey key{spec.sources, k_, spec.ldw, g.n, g.cols, bf16_, {}};
    for (const memory::desc& d : packed_desc_) {
      key.layouts.append(reinterpret_cast<const char*>(&d.data), sizeof d.data);
    }
    weights_ = spec.cache->get_tiles(key, pack);
  } else {
    weights_ = std::make_shared<const PackedTiles>(pack());
  }
  const dnnl::engine& eng = cpu_engine();
  if (spec.bias != nullptr) {
    bias_values_.assign(spec.bias, spec.bias + g.n);
    for (int j = 0; j < g.n_tiles; ++j) {
      const std::int64_t col0 = j * g.cols;
      const std::int64_t cols = std::min(g.cols, g.n - col0);
      bias_.emplace_back(memory::desc({1, cols}, dt::f32, tag::ab), eng, bias_values_.data() + col0);
    }
  }
}

void PackedTiledMatmul::create_variant(const Spec& spec, std::int64_t rows, std::int64_t cols, bool short_rows,
                                       bool narrow_cols) {
  const dt in_type = spec.bf16 ? dt::bf16 : dt::f32;
  const memory::desc src({rows, k_}, in_type, {k_, 1});
  const memory::desc weights = short_rows ? packed_desc_[narrow_cols] : memory::desc({k_, cols}, in_type, tag::any);
  const memory::desc dst({rows, cols}, dt::f32, {spec.ldd, 1});
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  attr.set_post_ops(spec.post_ops);
  dnnl::matmul::primitive_desc pd;
  try {
    pd = spec.bias != nullptr
             ? dnnl::matmul::primitive_desc(
                   dnnl::matmul::desc(src, weights, memory::desc({1, cols}, dt::f32, tag::ab), dst), attr, cpu_engine())
             : dnnl::matmul::primitive_desc(dnnl::matmul::desc(src, weights, dst), attr, cpu_engine());
  } catch (const dnnl::error& e) {
    if (spec.bf16) {
      throw Error(ErrorCode::kUnsupported, std::string(what_) +
                                               ": bf16 precision is not available on this CPU (oneDNN 2.6 runs bf16 "
                                               "matmuls only with AVX-512); compile with precision f32");
    }
    throw Error(ErrorCode::kUnsupported, std::string(what_) + ": oneDNN has no matmul for a [" + std::to_string(rows) +
                                             "," + std::to_string(k_) + "]·[" + std::to_string(k_) + "," +
                                             std::to_string(cols) + "] " + (spec.bf16 ? "bf16" : "f32") +
                                             " tile: " + e.what());
  }
  if (!short_rows) packed_desc_[narrow_cols] = pd.weights_desc();
  Variant& v = variant(short_rows, narrow_cols);
  v.primitive = dnnl::matmul(pd);
  v.src = RuntimeMemory(src);
  v.dst = RuntimeMemory(dst);
  const memory::desc scratch = pd.scratchpad_desc();
  v.has_scratchpad = scratch.get_size() != 0;
  if (v.has_scratchpad) v.scratchpad = RuntimeMemory(scratch);
  scratchpad_bytes_ = std::max(scratchpad_bytes_, align64(scratch.get_size()));
}

void PackedTiledMatmul::execute_block(int n_tile, std::int64_t rows, const void* src, float* dst,
                                      std::byte* scratchpad) const {
  const bool narrow = n_tile == grid_.n_tiles - 1 && grid_.n % grid_.cols != 0;
  const Variant& v = variant(rows != grid_.block_rows, narrow);
  const auto j = static_cast<std::size_t>(n_tile);
  execute(v.primitive, {{DNNL_ARG_WEIGHTS, &weights_->tiles[j]}, {DNNL_ARG_BIAS, bias_.empty() ? nullptr : &bias_[j]}},
          {{DNNL_ARG_SRC, &v.src, src},
           {DNNL_ARG_DST, &v.dst, dst},
           {DNNL_ARG_SCRATCHPAD, v.has_scratchpad ? &v.scratchpad : nullptr, scratchpad}},
          what_);
}

}  // namespace quarks::ops::dense_detail
