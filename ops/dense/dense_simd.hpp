// Highway kernels of the dense family: the elementwise work around the oneDNN products (bf16
// conversion, gate products) and the memory-bound full synaptic gate. Single-threaded over the
// range given; no alignment required; n may be 0.
#pragma once

#include <cstddef>
#include <cstdint>

namespace quarks::ops::dense_detail {

/// y[i] = bf16(x[i]) with round-to-nearest-even (the rounding oneDNN's own reorders use); NaN stays
/// (quiet) NaN, ±inf stays ±inf, values past the bf16 range round to ±inf.
void convert_to_bf16(const float* x, std::uint16_t* y, std::size_t n);

/// y[i] = a[i] * b[i].
void multiply(const float* a, const float* b, float* y, std::size_t n);

/// Full synaptic gate on `rows` (1..4) rows and columns [col0, col1):
///   y[r, c] = Σ_j x[r, j] · W[j, c] · G[r, j, c]
/// x: [rows, k] row-major, W: [k, n], G: [rows, k, n], y: [rows, n]. Each step multiplies x·W first,
/// then fuses ·G into the accumulation (one rounding fewer than three separate products).
void synaptic_full_rows(const float* x, const float* w, const float* g, float* y, std::size_t rows, std::size_t k,
                        std::size_t n, std::size_t col0, std::size_t col1);

}  // namespace quarks::ops::dense_detail
