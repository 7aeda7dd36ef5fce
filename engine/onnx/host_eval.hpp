// Small host-side helpers for folding integer tensors at import time: NumPy broadcasting over flat
// element lists, and conversions between SymInt lists and Tensors.
#pragma once

#include <functional>
#include <limits>
#include <span>
#include <vector>

#include "engine/onnx/import_context.hpp"

namespace quarks::onnx_import {

/// Product of `dims` (all >= 0), or -1 when it exceeds `limit`. Zero dims don't hide the others:
/// [0, 2^62, 2^62] exceeds any limit, as its strides would overflow.
std::int64_t checked_numel(std::span<const std::int64_t> dims,
                           std::int64_t limit = std::numeric_limits<std::int64_t>::max());

/// Output shape of broadcasting a and b; throws Error(kShapeMismatch) when they don't.
Shape broadcast_shape(const Shape& a, const Shape& b);
/// For each element of `out`, the flat index into a tensor of shape `in` broadcast to it.
std::vector<std::int64_t> broadcast_index(const Shape& in, const Shape& out);

/// An i64 tensor of `shape` from SymInts; unknown elements are stored as -1 (kept in the symbols).
Tensor ints_tensor(const Shape& shape, const std::vector<SymInt>& values);
Tensor ints_tensor(const Shape& shape, const std::vector<std::int64_t>& values);

/// Turns a reshape target (possibly symbolic) for an input of shape `in` into GraphBuilder::reshape
/// form: known sizes, 0 = "same as input dim i" (a symbol in the same place), -1 (at most one).
/// Throws Error(kUnsupported) if the target cannot be expressed that way.
std::vector<std::int64_t> reshape_spec(const SymShape& in, const std::vector<SymInt>& target);

}  // namespace quarks::onnx_import
