// Kernels of the layout family: N-d strided copy (slice with steps, concat into an offset view of the output,
// split from offset views of the input, reversal with negative strides), transpose and gather.
//
// Contract for every function here:
//   - single-threaded. To split work across threads, split the outermost dimension: a strided_copy of
//     shape [n, ...] is the union of copies of shape [r1 - r0, ...] from src + r0 * src_strides[0] to
//     dst + r0 * dst_strides[0]; transpose_rows does the same for a transpose;
//   - element-type generic: elem_size is 1, 2, 4 or 8 bytes (bool, bf16, f32, i64); float overloads are given;
//   - strides are counted in elements, may be negative (src points at element [0, ..., 0]) and need not
//     be ordered; src and dst must not overlap; a dimension of size 0 copies nothing; rank 0 copies one
//     element; no heap allocation;
//   - bad arguments (rank above Shape::kMaxRank, mismatched span lengths, negative sizes, a perm that is
//     not a permutation, an unsupported elem_size) throw Error(kInvalidArgument).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

namespace quarks::ops {

/// dst[i0 * dst_strides[0] + ...] = src[i0 * src_strides[0] + ...] for every index of `shape`.
/// Dimensions of size 1 are dropped and neighbours contiguous in both src and dst are merged first; then
/// runs that are contiguous in both are copied with memcpy, and when src and dst are contiguous along
/// different dimensions (a transpose) the copy goes through cache-sized 2-D tiles.
void strided_copy(const void* src, std::span<const std::int64_t> shape, std::span<const std::int64_t> src_strides,
                  void* dst, std::span<const std::int64_t> dst_strides, std::size_t elem_size);

inline void strided_copy(const float* src, std::span<const std::int64_t> shape,
                         std::span<const std::int64_t> src_strides, float* dst,
                         std::span<const std::int64_t> dst_strides) {
  strided_copy(static_cast<const void*>(src), shape, src_strides, static_cast<void*>(dst), dst_strides, sizeof(float));
}

/// Permutes the axes of a contiguous row-major tensor of shape `shape` into contiguous `dst`:
/// output axis i is input axis perm[i] (ONNX Transpose / numpy.transpose), output shape[i] = shape[perm[i]].
/// Axes that stay adjacent under perm are merged, so [b,s,h,d] -> [b,h,s,d] copies runs of d with memcpy.
void transpose(const void* src, std::span<const std::int64_t> shape, std::span<const int> perm, void* dst,
               std::size_t elem_size);

inline void transpose(const float* src, std::span<const std::int64_t> shape, std::span<const int> perm, float* dst) {
  transpose(static_cast<const void*>(src), shape, perm, static_cast<void*>(dst), sizeof(float));
}

/// Rows [row_begin, row_end) of the outermost output axis of transpose(src, shape, perm, dst, elem_size),
/// written to their place in the full output `dst`: the unit of work when the engine splits a transpose
/// across threads. Requires rank >= 1 and 0 <= row_begin <= row_end <= shape[perm[0]].
void transpose_rows(const void* src, std::span<const std::int64_t> shape, std::span<const int> perm, void* dst,
                    std::size_t elem_size, std::int64_t row_begin, std::int64_t row_end);

/// Position of the first index outside [-axis_len, axis_len) among indices[0, count), or -1 if all are valid.
std::int64_t first_bad_index(const std::int64_t* indices, std::int64_t count, std::int64_t axis_len);

/// ONNX Gather along the middle axis of a row-major [outer, axis_len, inner] tensor `data`: writes the
/// [outer, count, inner] tensor dst[o, i, :] = data[o, k, :] with k = indices[i], plus axis_len if negative.
/// Only output rows [row_begin, row_end) of the flattened [outer * count] rows are written (the unit of work
/// when the engine splits a gather across threads), each with one copy of inner * elem_size bytes.
/// An index outside [-axis_len, axis_len) throws Error(kInvalidArgument) naming its position and value,
/// before that row is read; nothing is read or written out of bounds. Requires
/// 0 <= row_begin <= row_end <= outer * count.
void gather_rows(const void* data, std::int64_t outer, std::int64_t axis_len, std::int64_t inner,
                 const std::int64_t* indices, std::int64_t count, void* dst, std::size_t elem_size,
                 std::int64_t row_begin, std::int64_t row_end);

/// All rows of gather_rows.
inline void gather(const void* data, std::int64_t outer, std::int64_t axis_len, std::int64_t inner,
                   const std::int64_t* indices, std::int64_t count, void* dst, std::size_t elem_size) {
  gather_rows(data, outer, axis_len, inner, indices, count, dst, elem_size, 0, outer * count);
}

}  // namespace quarks::ops
