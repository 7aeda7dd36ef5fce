#include "tools/bench/model_flops.hpp"

#include "engine/model_impl.hpp"

namespace quarks::bench {

using detail::GraphIR;
using detail::MatMulAttrs;
using detail::Node;
using detail::OpKind;
using detail::SymShape;

namespace {

// Product of the dims as a double, or -1 if one is not known.
double elements(const SymShape& s) {
  double n = 1;
  for (const auto& d : s) {
    if (!d.known()) return -1;
    n *= static_cast<double>(d.value);
  }
  return n;
}

// Dim `i` from the end (1 = last), or -1 if not known or absent.
double dim_from_end(const SymShape& s, std::size_t i) {
  if (s.size() < i || !s[s.size() - i].known()) return -1;
  return static_cast<double>(s[s.size() - i].value);
}

// Flops of one node, 0 for nodes that are not products, -1 if a shape it needs is not known.
double node_flops(const GraphIR& g, const Node& n) {
  const auto in = [&](std::size_t i) -> const SymShape& { return g.values[n.inputs[i]].shape; };
  const SymShape& out = g.values[n.outputs[0]].shape;
  double count = 0, k = 0;
  switch (n.op) {
    case OpKind::kDense:
    case OpKind::kSynapticGate:
    case OpKind::kGatedDense: {
      count = elements(out);
      k = dim_from_end(in(0), 1);  // x [.., K]
      const double products = n.op == OpKind::kGatedDense ? 2 : 1;
      return count < 0 || k < 0 ? -1 : 2 * products * count * k;
    }
    case OpKind::kMatMul: {
      const SymShape& a = in(0);
      count = elements(out);
      k = a.size() == 1 ? dim_from_end(a, 1) : dim_from_end(a, n.attr<MatMulAttrs>().trans_a ? 2 : 1);
      return count < 0 || k < 0 ? -1 : 2 * count * k;
    }
    case OpKind::kAttention: {
      // Q·Kᵀ and P·V: 2·Sk multiply-adds per output element (q and v share the head dim). k is
      // [B,Hkv,Sk,D] or [B,Sk,Hkv·D], or inside the packed qkv [B,S,(Hq+2·Hkv)·D]: Sk is the second dim
      // from the end in every layout.
      const bool packed = n.attr<detail::AttentionAttrs>().packed_qkv;
      const double o = elements(out), sk = dim_from_end(in(packed ? 0 : 1), 2);
      return o < 0 || sk < 0 ? -1 : 4 * sk * o;
    }
    default: return 0;
  }
}

}  // namespace

double product_flops(const Model& model) {
  const GraphIR& g = model.impl().graph;
  double total = 0;
  for (const Node& n : g.nodes) {
    const double f = node_flops(g, n);
    if (f < 0) return 0;
    total += f;
  }
  return total;
}

}  // namespace quarks::bench
