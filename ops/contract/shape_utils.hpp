// Helpers for shape inference over symbolic and concrete dims, shared by the op schemas.
#pragma once

#include <cstdint>
#include <span>
#include <string>

#include "ops/contract/graph_ir.hpp"
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
/// Product of known dims (saturating at INT64_MAX), or -1 if any is unknown.
std::int64_t known_numel(const SymShape& s) noexcept;
/// a·b for a, b >= 0, saturating at INT64_MAX instead of overflowing.
std::int64_t saturating_mul(std::int64_t a, std::int64_t b) noexcept;

/// Most elements any value may have: 2^48 (256 Ti), more than any machine holds, and few enough that
/// element, byte and stride arithmetic on such a shape cannot overflow 64 bits.
inline constexpr std::int64_t kMaxElements = std::int64_t{1} << 48;
/// Throws Error(kInvalidArgument) starting with `where` when the product of the known dims of `s`,
/// zero dims counted as 1 (so that strides stay in range too), exceeds kMaxElements.
void check_shape_size(const SymShape& s, const std::string& where);
/// Name of input i of node (the value's name), for messages.
const std::string& input_name(const Node& node, const GraphIR& g, std::size_t i);

/// Concrete strides of a row-major shape.
void row_major_strides(const Shape& s, std::int64_t* strides);

}  // namespace quarks::detail
