// The graph IR's helpers: shapes as text, symbolic <-> concrete shapes, one line per node, error prefixes.
#include "ops/contract/graph_ir.hpp"

#include <cstdint>

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
      if (at->window > 0) flags.push_back("window " + std::to_string(at->window));
      if (at->has_key_starts) flags.push_back("key starts");
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

}  // namespace quarks::detail
