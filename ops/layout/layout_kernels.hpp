// Kernels of the layout family: N-d strided copy (slice with steps, concat into an offset view of the output,
// split from offset views of the input, reversal with negative strides) and transpose.
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

}  // namespace quarks::ops
