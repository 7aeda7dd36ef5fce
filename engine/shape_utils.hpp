// Helpers for shape inference over symbolic and concrete dims, shared by the op schemas.
#pragma once

#include <cstdint>
#include <span>
#include <string>

#include "engine/graph_ir.hpp"
#include "quarks/error.hpp"

namespace quarks::detail {

/// Throws Error(kShapeMismatch) prefixed with where(node).
[[noreturn]] void shape_error(const Node& node, const std::string& message);
/// Throws Error(kInvalidArgument) prefixed with where(node).
[[noreturn]] void attr_error(const Node& node, const std::string& message);

/// Whether two dims may be equal (both known and different -> false).
bool may_equal(const SymDim& a, const SymDim& b) noexcept;
/// NumPy broadcasting of two shapes; throws a shape error naming both inputs when impossible.
SymShape broadcast_shapes(const Node& node, const GraphIR& g, const SymShape& a, const SymShape& b);
/// Normalises a possibly negative axis for a tensor of rank `rank`; throws naming the node.
int normalize_axis(const Node& node, int axis, int rank);
/// Product of known dims, or -1 if any is unknown.
std::int64_t known_numel(const SymShape& s) noexcept;
/// Name of input i of node (the value's name), for messages.
const std::string& input_name(const Node& node, const GraphIR& g, std::size_t i);

/// Concrete strides of a row-major shape.
void row_major_strides(const Shape& s, std::int64_t* strides);

}  // namespace quarks::detail
