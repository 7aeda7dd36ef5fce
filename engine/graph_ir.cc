// Small helpers of the graph IR and shape utilities.
#include "engine/graph_ir.hpp"

#include <cstdint>

#include "engine/shape_utils.hpp"
#include "quarks/error.hpp"

namespace quarks::detail {

std::string to_string(const SymShape& s) {
  std::string out = "[";
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (i) out += ",";
    if (s[i].known()) {
      out += std::to_string(s[i].value);
    } else {
      out += s[i].symbol.empty() ? "?" : s[i].symbol;
    }
  }
  return out + "]";
}

SymShape to_sym(const Shape& s) {
  SymShape out;
  for (std::int64_t d : s) out.push_back({d, {}});
  return out;
}

Shape to_concrete(const SymShape& s) {
  Shape out;
  for (const SymDim& d : s) {
    if (!d.known()) throw Error(ErrorCode::kInternal, "shape " + to_string(s) + " is not concrete");
    out.push_back(d.value);
  }
  return out;
}

std::string describe(const GraphIR& g) {
  std::string out;
  for (const Node& n : g.nodes) {
    std::string op = op_name(n.op);
    if (const auto* d = std::get_if<DenseAttrs>(&n.attrs)) {
      if (d->has_bias) op += "+bias";
      if (d->f.kind != ActivationKind::kIdentity) op += "+" + d->f.to_string();
    } else if (const auto* gd = std::get_if<GatedDenseAttrs>(&n.attrs)) {
      op += "[" + gd->f.to_string() + "*" + gd->g.to_string() + "]";
    } else if (const auto* a = std::get_if<ActivationAttrs>(&n.attrs)) {
      op += "[" + a->f.to_string() + "]";
    } else if (const auto* og = std::get_if<OutputGateAttrs>(&n.attrs)) {
      op += "[" + og->f.to_string() + "*" + og->g.to_string() + "]";
    } else if (const auto* at = std::get_if<AttentionAttrs>(&n.attrs)) {
      std::vector<std::string> flags;
      if (at->packed_qkv) flags.push_back("qkv");
      if (at->causal) flags.push_back(at->causal_from_key_lengths ? "causal to key_lengths" : "causal");
      if (!flags.empty()) {
        op += "[" + flags[0];
        for (std::size_t f = 1; f < flags.size(); ++f) op += "," + flags[f];
        op += "]";
      }
    } else if (const auto* kv = std::get_if<KvCacheAttrs>(&n.attrs)) {
      if (kv->cache < g.caches.size()) op += "[" + g.caches[kv->cache].name + "]";
    }
    out += n.name + " = " + op + "(";
    for (std::size_t i = 0; i < n.inputs.size(); ++i) out += (i ? ", " : "") + g.values[n.inputs[i]].name;
    out += ") -> ";
    for (std::size_t i = 0; i < n.outputs.size(); ++i) {
      const ValueInfo& v = g.values[n.outputs[i]];
      out += (i ? ", " : "") + to_string(v.shape);
      if (v.dtype != DType::kF32) out += std::string(" ") + quarks::to_string(v.dtype);
    }
    out += "\n";
  }
  for (const auto& [name, v] : g.outputs) out += "output " + name + " = " + g.values[v].name + "\n";
  return out;
}

std::string GraphIR::where(const Node& n) { return "node '" + n.name + "' (" + op_name(n.op) + "): "; }

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
