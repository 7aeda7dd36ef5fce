// Highway-vectorised kernels of the normalization family: softmax, log_softmax, layer_norm and rms_norm.
//
// Contract for every function here:
//   - single-threaded over the rows it is given. To split work across threads, call a function once per
//     range of rows with offset pointers: rows [r0, r1) of softmax are
//     `softmax(x + r0 * axis_len * inner, y + r0 * axis_len * inner, r1 - r0, axis_len, inner)`, and rows
//     [r0, r1) of the norms are `layer_norm(x + r0 * cols, scale, bias, eps, y + r0 * cols, r1 - r0, cols)`;
//   - `y` may alias `x` exactly (in place), but must not partially overlap it;
//   - any size may be 0 (nothing is written); no alignment is required;
//   - negative sizes throw Error(kInvalidArgument);
//   - no heap allocation.
//
// Accuracy: reductions accumulate in f32 vectors over bounded blocks of elements and add the block
// results in double, so row length does not degrade the sums. Measured maxima against double references
// are stated in tests/ops/normalization/normalization_kernels_test.cc.
#pragma once

#include <cstdint>

namespace quarks::ops {

/// Numerically stable softmax along the middle dimension of a row-major [outer, axis_len, inner] tensor:
/// y[o, a, i] = exp(x[o, a, i] - m) / sum_a' exp(x[o, a', i] - m), m = max_a x[o, a, i].
/// inner == 1 is softmax over the last axis. Special values, per (o, i) slice along the axis:
///   - any NaN -> the whole slice is NaN;
///   - any +inf -> the whole slice is NaN (IEEE: inf - inf), as in PyTorch;
///   - all -inf -> the whole slice is NaN (0 / 0), as in PyTorch; some -inf -> those entries are 0.
void softmax(const float* x, float* y, std::int64_t outer, std::int64_t axis_len, std::int64_t inner);

/// log(softmax(x)) along the same axis, computed as (x - m) - log(sum exp(x - m)) so that it stays finite
/// where softmax underflows to 0. Same special values as softmax, except that a -inf entry of an
/// otherwise finite slice gives -inf.
void log_softmax(const float* x, float* y, std::int64_t outer, std::int64_t axis_len, std::int64_t inner);

/// Layer normalisation over the last axis of a [rows, cols] tensor:
/// y = (x - mean) / sqrt(var + eps) * scale + bias, var the biased (population) variance.
/// `scale` and `bias` have `cols` elements and may each be null (meaning 1 and 0).
/// The mean is taken around the row's first element as a shift, so rows with a large common offset
/// (1e4 + noise) keep full accuracy. A non-finite input makes its row NaN. Rows whose spread is
/// beyond 2^54 or below 2^-40 (where f32 squares would overflow or underflow) are computed in double.
void layer_norm(const float* x, const float* scale, const float* bias, float eps, float* y, std::int64_t rows,
                std::int64_t cols);

/// RMS normalisation over the last axis: y = x / sqrt(mean(x^2) + eps) * scale + bias, with `scale` and
/// `bias` nullable as in layer_norm. NaN inputs make their row NaN; an inf input makes its own output
/// NaN and the rest of its row 0 (IEEE: x / inf), as the formula gives. Rows with max |x| beyond 2^54 or
/// below 2^-40 are computed in double.
void rms_norm(const float* x, const float* scale, const float* bias, float eps, float* y, std::int64_t rows,
              std::int64_t cols);

}  // namespace quarks::ops
