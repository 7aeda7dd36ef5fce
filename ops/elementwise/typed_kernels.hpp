// Kernels of the elementwise ops that work on any dtype (f32, i64, bool): equal, where, cast and the
// broadcast copy of expand. Plain C++ loops, one instantiation per element type and stride case, which
// the compiler vectorises where the operands are contiguous. Same contract as binary_kernels.hpp:
// single-threaded over the given range, any n including 0, operand strides 0 (one broadcast value) or
// 1, and nothing is read when n == 0.
//
// bool elements are one byte; any nonzero byte reads as true and the kernels write 0 or 1.
#pragma once

#include <cstddef>
#include <cstdint>

#include "quarks/tensor.hpp"

namespace quarks::ops {

/// y[i] = (a[i * a_stride] == b[i * b_stride]) for elements of dtype t (f32: IEEE, so NaN != NaN
/// and -0 == +0; i64; bool). y may alias a or b exactly when t is bool.
void equal(DType t, const void* a, std::size_t a_stride, const void* b, std::size_t b_stride, std::uint8_t* y,
           std::size_t n);

/// y[i] = cond[i * c_stride] ? x[i * x_stride] : z[i * z_stride] for elements of elem_size bytes
/// (1, 4 or 8: the bits are copied). y may alias x or z exactly.
void where(std::size_t elem_size, const std::uint8_t* cond, std::size_t c_stride, const void* x, std::size_t x_stride,
           const void* z, std::size_t z_stride, void* y, std::size_t n);

/// y[i] = x[i * x_stride] for elements of elem_size bytes (any size). With stride 1, y may be x (then
/// nothing is copied) but must not otherwise overlap it.
void broadcast_copy(std::size_t elem_size, const void* x, std::size_t x_stride, void* y, std::size_t n);

/// y[i] = x[i] converted from `from` to `to` (each f32, i64 or bool; bf16 as a source, to f32):
///   f32 -> i64: truncation toward zero; NaN -> 0; values beyond the i64 range (±inf included)
///               saturate to INT64_MIN / INT64_MAX;
///   i64 -> f32: rounded to nearest;
///   -> bool:    x != 0 (NaN is true, ±0 false);
///   bool -> f32 / i64: 1 or 0;
///   bf16 -> f32: exact (weights stored in bf16, such as a checkpoint's embedding table);
///   same dtype: a copy (nothing is copied when y == x).
/// Apart from y == x with from == to, y must not overlap x. Throws Error(kInvalidArgument) for other bf16 pairs.
void cast(DType from, DType to, const void* x, void* y, std::size_t n);

}  // namespace quarks::ops
