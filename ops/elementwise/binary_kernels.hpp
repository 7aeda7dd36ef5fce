// Highway-vectorised elementwise arithmetic (add, sub, mul, div). Same contract as
// ops/activation/activation_kernels.hpp: single-threaded over the given range, in-place allowed,
// any n including 0, IEEE special values.
#pragma once

#include <cstddef>

namespace quarks::ops {

enum class BinaryOp { kAdd, kSub, kMul, kDiv };

/// y[i] = a[i * a_stride] (op) b[i * b_stride]; each stride is 1 or 0 (broadcast one value).
void binary(BinaryOp op, const float* a, std::size_t a_stride, const float* b, std::size_t b_stride, float* y,
            std::size_t n);

}  // namespace quarks::ops
