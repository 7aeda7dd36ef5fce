// Implementation of ops/layout/layout_kernels.hpp: plain C++ (the work is moving bytes; memcpy and the
// compiler's fixed-size copies do it well).
#include "ops/layout/layout_kernels.hpp"

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <type_traits>

#include "quarks/error.hpp"
#include "quarks/tensor.hpp"

namespace quarks::ops {
namespace {

constexpr int kMaxRank = Shape::kMaxRank;

// Side of a square 2-D tile in bytes along the contiguous dimension: one 64-byte cache line, so a tile of
// 16 x 16 floats touches 16 source lines and 16 destination lines (2 KiB in all, well inside L1) and every
// line is used whole before it leaves.
constexpr std::int64_t kTileBytes = 64;

// A copy problem after simplification. Strides are in bytes.
struct Dims {
  int rank = 0;
  std::int64_t size[kMaxRank] = {};
  std::int64_t src[kMaxRank] = {};
  std::int64_t dst[kMaxRank] = {};
};

[[noreturn]] void fail(const char* op, const std::string& what) {
  throw Error(ErrorCode::kInvalidArgument, std::string(op) + " kernel: " + what);
}

void check_elem_size(const char* op, std::size_t elem_size) {
  if (elem_size != 1 && elem_size != 2 && elem_size != 4 && elem_size != 8) {
    fail(op, "element size " + std::to_string(elem_size) + " is not supported (1, 2, 4 or 8 bytes)");
  }
}

// Drops dimensions of size 1 (their strides never matter) and merges each dimension into its outer
// neighbour when that neighbour steps over it exactly in both src and dst. Returns false if some
// dimension has size 0 (nothing to copy).
bool simplify(std::span<const std::int64_t> shape, std::span<const std::int64_t> src_strides,
              std::span<const std::int64_t> dst_strides, std::int64_t elem_size, Dims* dims) {
  dims->rank = 0;
  for (std::size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] == 0) return false;
    if (shape[i] == 1) continue;
    const std::int64_t src = src_strides[i] * elem_size;
    const std::int64_t dst = dst_strides[i] * elem_size;
    const int last = dims->rank - 1;
    if (last >= 0 && dims->src[last] == src * shape[i] && dims->dst[last] == dst * shape[i]) {
      dims->size[last] *= shape[i];
      dims->src[last] = src;
      dims->dst[last] = dst;
    } else {
      dims->size[dims->rank] = shape[i];
      dims->src[dims->rank] = src;
      dims->dst[dims->rank] = dst;
      ++dims->rank;
    }
  }
  return true;
}

// Moves dimension `from` to position `to` (to >= from), shifting the ones in between outwards.
void move_dim(Dims* dims, int from, int to) {
  std::rotate(dims->size + from, dims->size + from + 1, dims->size + to + 1);
  std::rotate(dims->src + from, dims->src + from + 1, dims->src + to + 1);
  std::rotate(dims->dst + from, dims->dst + from + 1, dims->dst + to + 1);
}

// Index of the dimension with the smallest nonzero |stride|, the innermost one on ties (or if all are 0).
// A zero stride (a broadcast source) is skipped: rereading one element costs nothing to cache.
int innermost(const std::int64_t* strides, int rank) {
  int best = rank - 1;
  for (int i = rank - 2; i >= 0; --i) {
    if (strides[i] != 0 && (strides[best] == 0 || std::abs(strides[i]) < std::abs(strides[best]))) best = i;
  }
  return best;
}

// Copies a run of n elements with the given byte strides.
template <std::size_t kElem>
void copy_run(const char* src, std::int64_t src_stride, char* dst, std::int64_t dst_stride, std::int64_t n) {
  if (src_stride == static_cast<std::int64_t>(kElem) && dst_stride == static_cast<std::int64_t>(kElem)) {
    std::memcpy(dst, src, static_cast<std::size_t>(n) * kElem);
    return;
  }
  for (std::int64_t i = 0; i < n; ++i) {
    std::memcpy(dst, src, kElem);  // a fixed-size copy: one load and one store
    src += src_stride;
    dst += dst_stride;
  }
}

template <std::size_t kElem>
using Word = std::conditional_t<
    kElem == 1, std::uint8_t,
    std::conditional_t<kElem == 2, std::uint16_t, std::conditional_t<kElem == 4, std::uint32_t, std::uint64_t>>>;

// One full kTile x kTile tile of a transpose whose src runs (along the tile's rows) and dst runs (along its
// columns) are both contiguous: kTile cache lines are loaded whole into a local tile, and each dst line
// is assembled from it and stored whole. Fixed trip counts let the compiler unroll it completely.
template <std::size_t kElem>
void transpose_full_tile(const char* src, std::int64_t src_col_stride, char* dst, std::int64_t dst_row_stride) {
  constexpr std::int64_t kTile = kTileBytes / static_cast<std::int64_t>(kElem);
  using T = Word<kElem>;
  T in[kTile][kTile];  // in[j][i]: column j of the tile, contiguous in src
  for (std::int64_t j = 0; j < kTile; ++j) std::memcpy(in[j], src + j * src_col_stride, kTileBytes);
  for (std::int64_t i = 0; i < kTile; ++i) {
    T out[kTile];
    for (std::int64_t j = 0; j < kTile; ++j) out[j] = in[j][i];
    std::memcpy(dst + i * dst_row_stride, out, kTileBytes);
  }
}

// A 2-D copy over (rows, cols) = the last two dims, where src is densest along rows and dst along cols: a
// transpose. It goes through square tiles of one cache line a side, staged in a local buffer: each tile
// is read from src one run per column and written to dst one run per row, so every cache line is touched
// once. Copying a tile directly would revisit each line once per element, and with a power-of-two stride
// the tile's 16 lines share one 8-way L1 set and are evicted in between. Measured on f32 (noisy shared
// machine, best of 21): 256 x 256 transpose 7-10 GB/s direct vs ~20 GB/s staged; 1024 x 1024 ~3 vs
// 6-12 GB/s; [2,128,64,64] with the last two axes swapped 6-8 vs 15-19 GB/s.
template <std::size_t kElem>
void copy_tiled(const char* src, char* dst, const Dims& dims) {
  constexpr auto kElemBytes = static_cast<std::int64_t>(kElem);
  constexpr std::int64_t kTile = kTileBytes / kElemBytes;
  const int r = dims.rank - 2;
  const int c = dims.rank - 1;
  const std::int64_t rows = dims.size[r];
  const std::int64_t cols = dims.size[c];
  const bool dense = dims.src[r] == kElemBytes && dims.dst[c] == kElemBytes;
  alignas(64) char tile[kTile * kTileBytes];  // [kTile rows][kTile cols] elements
  for (std::int64_t r0 = 0; r0 < rows; r0 += kTile) {
    const std::int64_t nr = std::min(kTile, rows - r0);
    for (std::int64_t c0 = 0; c0 < cols; c0 += kTile) {
      const std::int64_t nc = std::min(kTile, cols - c0);
      const char* s = src + r0 * dims.src[r] + c0 * dims.src[c];
      char* d = dst + r0 * dims.dst[r] + c0 * dims.dst[c];
      if (dense && nr == kTile && nc == kTile) {
        transpose_full_tile<kElem>(s, dims.src[c], d, dims.dst[r]);
        continue;
      }
      for (std::int64_t j = 0; j < nc; ++j) {
        copy_run<kElem>(s + j * dims.src[c], dims.src[r], tile + j * kElemBytes, kTileBytes, nr);
      }
      for (std::int64_t i = 0; i < nr; ++i) {
        copy_run<kElem>(tile + i * kTileBytes, kElemBytes, d + i * dims.dst[r], dims.dst[c], nc);
      }
    }
  }
}

template <std::size_t kElem>
void copy_dims(const char* src, char* dst, Dims dims) {
  if (dims.rank == 0) {
    std::memcpy(dst, src, kElem);
    return;
  }
  // The inner loop runs along the dimension where dst is densest (writes stream); if src is densest along
  // another one, that one becomes the tile's second axis.
  const int dst_inner = innermost(dims.dst, dims.rank);
  const int src_inner = innermost(dims.src, dims.rank);
  const bool tiled = dst_inner != src_inner;
  if (tiled) {
    // Order the two as [..., src_inner, dst_inner]; move the outer of the two first so the other's index holds.
    if (src_inner < dst_inner) {
      move_dim(&dims, src_inner, dims.rank - 1);
      move_dim(&dims, dst_inner - 1, dims.rank - 1);
    } else {
      move_dim(&dims, dst_inner, dims.rank - 1);
      move_dim(&dims, src_inner - 1, dims.rank - 1);
      move_dim(&dims, dims.rank - 2, dims.rank - 1);
    }
  } else {
    move_dim(&dims, dst_inner, dims.rank - 1);
  }
  const int inner_rank = tiled ? 2 : 1;
  const int outer_rank = dims.rank - inner_rank;

  // Odometer over the outer dimensions, outermost first (the caller's order, usually dst's).
  std::int64_t index[kMaxRank] = {};
  for (;;) {
    if (tiled) {
      copy_tiled<kElem>(src, dst, dims);
    } else {
      const int c = dims.rank - 1;
      copy_run<kElem>(src, dims.src[c], dst, dims.dst[c], dims.size[c]);
    }
    int k = outer_rank - 1;
    for (; k >= 0; --k) {
      if (++index[k] < dims.size[k]) {
        src += dims.src[k];
        dst += dims.dst[k];
        break;
      }
      index[k] = 0;
      src -= dims.src[k] * (dims.size[k] - 1);
      dst -= dims.dst[k] * (dims.size[k] - 1);
    }
    if (k < 0) return;
  }
}

// strided_copy after validation; strides in elements.
void copy_impl(const void* src, std::span<const std::int64_t> shape, std::span<const std::int64_t> src_strides,
               void* dst, std::span<const std::int64_t> dst_strides, std::size_t elem_size) {
  Dims dims;
  if (!simplify(shape, src_strides, dst_strides, static_cast<std::int64_t>(elem_size), &dims)) return;
  const auto* s = static_cast<const char*>(src);
  auto* d = static_cast<char*>(dst);
  switch (elem_size) {
    case 1: copy_dims<1>(s, d, dims); break;
    case 2: copy_dims<2>(s, d, dims); break;
    case 4: copy_dims<4>(s, d, dims); break;
    default: copy_dims<8>(s, d, dims); break;
  }
}

void check_shape(const char* op, std::span<const std::int64_t> shape) {
  if (shape.size() > static_cast<std::size_t>(kMaxRank)) {
    fail(op, "rank " + std::to_string(shape.size()) + " exceeds the maximum of " + std::to_string(kMaxRank));
  }
  for (std::size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] < 0) fail(op, "dimension " + std::to_string(i) + " has negative size " + std::to_string(shape[i]));
  }
}

// The transpose as a strided copy: output shape, and the input strides seen in output axis order.
struct TransposeView {
  std::int64_t shape[kMaxRank] = {};
  std::int64_t src_strides[kMaxRank] = {};
  std::int64_t dst_strides[kMaxRank] = {};
};

TransposeView transpose_view(const char* op, std::span<const std::int64_t> shape, std::span<const int> perm,
                             std::size_t elem_size) {
  check_elem_size(op, elem_size);
  check_shape(op, shape);
  const int rank = static_cast<int>(shape.size());
  if (perm.size() != shape.size()) {
    fail(op, "perm has " + std::to_string(perm.size()) + " entries for rank " + std::to_string(rank));
  }
  bool seen[kMaxRank] = {};
  for (const int p : perm) {
    if (p < 0 || p >= rank || seen[p]) fail(op, "perm is not a permutation of 0.." + std::to_string(rank - 1));
    seen[p] = true;
  }
  std::int64_t in_strides[kMaxRank] = {};
  std::int64_t stride = 1;
  for (int i = rank - 1; i >= 0; --i) {
    in_strides[i] = stride;
    stride *= shape[static_cast<std::size_t>(i)];
  }
  TransposeView view;
  stride = 1;
  for (int i = rank - 1; i >= 0; --i) {
    const auto axis = static_cast<std::size_t>(perm[static_cast<std::size_t>(i)]);
    view.shape[i] = shape[axis];
    view.src_strides[i] = in_strides[axis];
    view.dst_strides[i] = stride;
    stride *= view.shape[i];
  }
  return view;
}

[[noreturn]] void fail_index(std::int64_t position, std::int64_t value, std::int64_t axis_len) {
  fail("gather", "index " + std::to_string(value) + " at position " + std::to_string(position) + " is out of range [" +
                     std::to_string(-axis_len) + ", " + std::to_string(axis_len) + ")");
}

// Copies output rows [row, row_end) of a gather, `row_bytes` bytes each; kElem > 0 is a row of one element of
// that size, copied with a fixed-size copy instead of a memcpy call. Each index is checked before its row is read.
template <std::size_t kElem>
void gather_impl(const char* data, std::int64_t axis_len, std::int64_t row_bytes, const std::int64_t* indices,
                 std::int64_t count, char* dst, std::int64_t row, std::int64_t row_end) {
  std::int64_t o = row / count;
  std::int64_t i = row % count;
  const char* slab = data + o * axis_len * row_bytes;  // data[o, 0, 0]
  dst += row * row_bytes;
  for (; row < row_end; ++row, dst += row_bytes) {
    std::int64_t k = indices[i];
    if (k < -axis_len || k >= axis_len) fail_index(i, k, axis_len);
    if (k < 0) k += axis_len;
    if constexpr (kElem > 0) {
      std::memcpy(dst, slab + k * row_bytes, kElem);
    } else {
      std::memcpy(dst, slab + k * row_bytes, static_cast<std::size_t>(row_bytes));
    }
    if (++i == count) {
      i = 0;
      slab += axis_len * row_bytes;
    }
  }
}

}  // namespace

void strided_copy(const void* src, std::span<const std::int64_t> shape, std::span<const std::int64_t> src_strides,
                  void* dst, std::span<const std::int64_t> dst_strides, std::size_t elem_size) {
  constexpr const char* kOp = "strided_copy";
  check_elem_size(kOp, elem_size);
  check_shape(kOp, shape);
  if (src_strides.size() != shape.size() || dst_strides.size() != shape.size()) {
    fail(kOp, "shape has rank " + std::to_string(shape.size()) + " but src/dst strides have " +
                  std::to_string(src_strides.size()) + "/" + std::to_string(dst_strides.size()) + " entries");
  }
  copy_impl(src, shape, src_strides, dst, dst_strides, elem_size);
}

void transpose(const void* src, std::span<const std::int64_t> shape, std::span<const int> perm, void* dst,
               std::size_t elem_size) {
  const TransposeView view = transpose_view("transpose", shape, perm, elem_size);
  const std::size_t rank = shape.size();
  copy_impl(src, {view.shape, rank}, {view.src_strides, rank}, dst, {view.dst_strides, rank}, elem_size);
}

void transpose_rows(const void* src, std::span<const std::int64_t> shape, std::span<const int> perm, void* dst,
                    std::size_t elem_size, std::int64_t row_begin, std::int64_t row_end) {
  constexpr const char* kOp = "transpose_rows";
  TransposeView view = transpose_view(kOp, shape, perm, elem_size);
  const std::size_t rank = shape.size();
  if (rank == 0) fail(kOp, "a rank-0 tensor has no rows");
  if (row_begin < 0 || row_begin > row_end || row_end > view.shape[0]) {
    fail(kOp, "row range [" + std::to_string(row_begin) + ", " + std::to_string(row_end) + ") is not within [0, " +
                  std::to_string(view.shape[0]) + ")");
  }
  const auto elem = static_cast<std::int64_t>(elem_size);
  const auto* s = static_cast<const char*>(src) + row_begin * view.src_strides[0] * elem;
  auto* d = static_cast<char*>(dst) + row_begin * view.dst_strides[0] * elem;
  view.shape[0] = row_end - row_begin;
  copy_impl(s, {view.shape, rank}, {view.src_strides, rank}, d, {view.dst_strides, rank}, elem_size);
}

std::int64_t first_bad_index(const std::int64_t* indices, std::int64_t count, std::int64_t axis_len) {
  for (std::int64_t i = 0; i < count; ++i) {
    if (indices[i] < -axis_len || indices[i] >= axis_len) return i;
  }
  return -1;
}

void gather_rows(const void* data, std::int64_t outer, std::int64_t axis_len, std::int64_t inner,
                 const std::int64_t* indices, std::int64_t count, void* dst, std::size_t elem_size,
                 std::int64_t row_begin, std::int64_t row_end) {
  constexpr const char* kOp = "gather";
  check_elem_size(kOp, elem_size);
  if (outer < 0 || axis_len < 0 || inner < 0 || count < 0) {
    fail(kOp, "negative size (outer " + std::to_string(outer) + ", axis " + std::to_string(axis_len) + ", inner " +
                  std::to_string(inner) + ", indices " + std::to_string(count) + ")");
  }
  if (row_begin < 0 || row_begin > row_end || row_end > outer * count) {
    fail(kOp, "row range [" + std::to_string(row_begin) + ", " + std::to_string(row_end) + ") is not within [0, " +
                  std::to_string(outer * count) + ")");
  }
  if (row_begin == row_end) return;
  if (inner == 0) {  // nothing to copy, but the indices must still be valid
    for (std::int64_t row = row_begin; row < row_end; ++row) {
      const std::int64_t k = indices[row % count];
      if (k < -axis_len || k >= axis_len) fail_index(row % count, k, axis_len);
    }
    return;
  }
  const auto* s = static_cast<const char*>(data);
  auto* d = static_cast<char*>(dst);
  const std::int64_t row_bytes = inner * static_cast<std::int64_t>(elem_size);
  if (inner != 1) {
    gather_impl<0>(s, axis_len, row_bytes, indices, count, d, row_begin, row_end);
    return;
  }
  switch (elem_size) {
    case 1: gather_impl<1>(s, axis_len, row_bytes, indices, count, d, row_begin, row_end); break;
    case 2: gather_impl<2>(s, axis_len, row_bytes, indices, count, d, row_begin, row_end); break;
    case 4: gather_impl<4>(s, axis_len, row_bytes, indices, count, d, row_begin, row_end); break;
    default: gather_impl<8>(s, axis_len, row_bytes, indices, count, d, row_begin, row_end); break;
  }
}

}  // namespace quarks::ops
