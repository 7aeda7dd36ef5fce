// The Highway matrix-vector product of LinearBf16Kernel (linear_bf16_kernel.hpp): a few rows of f32
// activations times weights stored as bf16 rows [N, K] — nn.Linear's layout, read in place from a
// checkpoint. Decode is bound by reading those weights, so the kernel streams each weight row once for
// all the rows of x, widens bf16 to f32 in registers (exact) and accumulates in f32.
#pragma once

#include <cstddef>
#include <cstdint>

namespace quarks::ops::dense_detail {

/// Rows of x one gemv_bf16 call handles at most.
inline constexpr std::size_t kGemvMaxRows = 8;

/// Floats of gemv_bf16's scratch for m rows of inner dimension k (x in vector blocks, padded).
constexpr std::size_t gemv_bf16_scratch_floats(std::size_t m, std::size_t k) noexcept { return m * (k + 128); }

/// y[r·ldy + j] = Σ_p x[r·k + p] · w[j·ldw + p] for r < m (1..kGemvMaxRows), j < rows; w holds bf16
/// bits, ldw >= k. Sums are f32 (products exact, the order is the kernel's). scratch:
/// gemv_bf16_scratch_floats(m, k) floats (any alignment). Single-threaded; best Highway target.
/// The kernel aligns its loads by reading (and ignoring) the bytes of the vector before a row and after
/// it — never outside the row's cache lines. read_before / read_after: whether that is allowed for the
/// first / last row (false when it may leave the caller's buffer: the matrix's own first / last row;
/// those rows then run a scalar loop).
void gemv_bf16(const float* x, std::size_t m, std::size_t k, const std::uint16_t* w, std::size_t ldw, std::size_t rows,
               float* y, std::size_t ldy, float* scratch, bool read_before, bool read_after);

}  // namespace quarks::ops::dense_detail
