// Activation epilogues of the dense kernels: fused into the oneDNN primitive where that is exact,
// applied by quarks::ops::activation to the hot output tile otherwise.
#pragma once

#include <cstdint>

#include <oneapi/dnnl/dnnl.hpp>

#include "quarks/activation.hpp"

namespace quarks::ops::dense_detail {

/// Appends f as a oneDNN eltwise post-op and returns true when oneDNN 2.6 computes f as
/// quarks::ops::activation specifies, special values included: tanh, sigmoid, square and leaky_relu
/// with a non-zero slope. Returns false (appending nothing) for the rest, measured on this oneDNN:
/// relu is a vmaxps that maps NaN to 0; gelu, gelu_tanh and silu give NaN instead of 0 at -inf;
/// polynomial, sign and heaviside have no post-op. Identity needs nothing and returns true.
bool append_exact_post_op(const Activation& f, dnnl::post_ops& ops);

/// Applies f in place to `rows` rows of `cols` values with row stride `ld` (a tile just written).
void apply_activation(const Activation& f, float* y, std::int64_t rows, std::int64_t cols, std::int64_t ld);

}  // namespace quarks::ops::dense_detail
