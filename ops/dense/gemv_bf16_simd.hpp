// The Highway matrix-vector product of LinearBf16Kernel (linear_bf16_kernel.hpp): a few rows of f32
// activations times weights stored as bf16 rows [N, K] — nn.Linear's layout, read in place from a
// checkpoint. Decode is bound by reading those weights, so the kernel streams each weight row once for
// all the rows of x and accumulates in f32. Two forms, chosen at run time from the CPU:
//   - dot (CPUs with AVX512_BF16: Zen 4/5, Sapphire Rapids): x rounded to bf16 once, then vdpbf16ps —
//     the same rounding of x as oneDNN's bf16 products for more rows, at far fewer instructions per
//     weight byte, which is what lets one core stream at memory speed (gemv_bf16_dot.cc);
//   - widen (every other CPU; Highway): bf16 widened to f32 in registers (exact), x kept in f32.
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
/// those rows then run a scalar loop in the widening form; the dot form's masked loads never touch them).
/// The dot form where the CPU has AVX512_BF16, else the widening form.
void gemv_bf16(const float* x, std::size_t m, std::size_t k, const std::uint16_t* w, std::size_t ldw, std::size_t rows,
               float* y, std::size_t ldy, float* scratch, bool read_before, bool read_after);

}  // namespace quarks::ops::dense_detail

namespace quarks::ops::dense_detail {

/// Whether gemv_bf16 rounds x to bf16 on this CPU (the dot form), for callers stating their error.
bool gemv_bf16_rounds_x() noexcept;

/// Whether the CPU has AVX-512 F/BW/VL and AVX512_BF16 (the dot form's instructions).
bool cpu_has_avx512_bf16() noexcept;

/// The two forms, as gemv_bf16 (same arguments and contract); tests call both. gemv_bf16_dot only where
/// cpu_has_avx512_bf16(); x rounded to bf16 (to nearest even) before the products.
void gemv_bf16_widen(const float* x, std::size_t m, std::size_t k, const std::uint16_t* w, std::size_t ldw,
                     std::size_t rows, float* y, std::size_t ldy, float* scratch, bool read_before, bool read_after);
void gemv_bf16_dot(const float* x, std::size_t m, std::size_t k, const std::uint16_t* w, std::size_t ldw,
                   std::size_t rows, float* y, std::size_t ldy, float* scratch, bool read_before, bool read_after);

}  // namespace quarks::ops::dense_detail
