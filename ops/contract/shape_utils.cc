// Shape-inference helpers shared by the op schemas (declared in ops/contract/shape_utils.hpp).
#include "ops/contract/shape_utils.hpp"

#include <algorithm>
#include <cstdint>

#include "quarks/error.hpp"

namespace quarks::detail {

[[noreturn]] void shape_error(const Node& node, const std::string& message) {
  throw Error(ErrorCode::kShapeMismatch, GraphIR::where(node) + message);
}

[[noreturn]] void attr_error(const Node& node, const std::string& message) {
  throw Error(ErrorCode::kInvalidArgument, GraphIR::where(node) + message);
}

bool may_equal(const SymDim& a, const SymDim& b) noexcept { return !(a.known() && b.known() && a.value != b.value); }

const std::string& input_name(const Node& node, const GraphIR& g, std::size_t i) {
  return g.values[node.inputs[i]].name;
}

SymShape broadcast_shapes(const Node& node, const GraphIR& g, const SymShape& a, const SymShape& b) {
  const std::size_t rank = std::max(a.size(), b.size());
  SymShape out(rank);
  for (std::size_t i = 0; i < rank; ++i) {
    const SymDim one{1, {}};
    const SymDim& da = i < rank - a.size() ? one : a[i - (rank - a.size())];
    const SymDim& db = i < rank - b.size() ? one : b[i - (rank - b.size())];
    if (da.known() && da.value == 1) {
      out[i] = db;
    } else if (db.known() && db.value == 1) {
      out[i] = da;
    } else if (da.known() && db.known()) {
      if (da.value != db.value) {
        shape_error(node, "inputs '" + input_name(node, g, 0) + "' " + to_string(a) + " and '" +
                              input_name(node, g, 1) + "' " + to_string(b) + " do not broadcast (dim " +
                              std::to_string(i) + ": " + std::to_string(da.value) + " vs " + std::to_string(db.value) +
                              ")");
      }
      out[i] = da;
    } else {
      // At least one symbolic: a known dim (!= 1) wins; equal symbols stay; otherwise run time decides.
      out[i] = da.known() ? da : db.known() ? db : (da == db ? da : SymDim{});
    }
  }
  return out;
}

int normalize_axis(const Node& node, int axis, int rank) {
  if (axis < -rank || axis >= rank) {
    attr_error(node, "axis " + std::to_string(axis) + " is out of range for rank " + std::to_string(rank));
  }
  return axis < 0 ? axis + rank : axis;
}

std::int64_t known_numel(const SymShape& s) noexcept {
  std::int64_t n = 1;
  for (const SymDim& d : s) {
    if (!d.known()) return -1;
    n = saturating_mul(n, d.value);
  }
  return n;
}

std::int64_t saturating_mul(std::int64_t a, std::int64_t b) noexcept {
  std::int64_t p;
  return __builtin_mul_overflow(a, b, &p) ? INT64_MAX : p;
}

void check_shape_size(const SymShape& s, const std::string& where) {
  std::int64_t n = 1;
  for (const SymDim& d : s) {
    if (d.known() && d.value > 1) n = saturating_mul(n, d.value);
  }
  if (n > kMaxElements) {
    throw Error(ErrorCode::kInvalidArgument, where + "shape " + to_string(s) +
                                                 " is too large: a tensor may have at most 2^48 elements (zero "
                                                 "dims counted as 1)");
  }
}

void row_major_strides(const Shape& s, std::int64_t* strides) {
  std::int64_t st = 1;
  for (int i = s.rank() - 1; i >= 0; --i) {
    strides[i] = st;
    st *= s[i];
  }
}

}  // namespace quarks::detail
