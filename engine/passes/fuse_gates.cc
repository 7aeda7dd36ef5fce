// Elementwise products recognised as attention quarks (what ONNX exports and hand-built graphs
// spell out with plain multiplications):
//   x · sigmoid(x)           -> activation silu(x)
//   f(a) · g(b), a · g(b)    -> output_gate(a, b, f, g)   (GLU, SwiGLU, GEGLU, LSTM/GRU-style gates)
//   (x·A) · (x·B)            -> output_gate(identity, identity) of the two products (bilinear)
// An output_gate whose operands are dense products of one x then becomes a gated dense
// (fuse_gated_dense), so the whole gated feed-forward runs in the dense tiles' epilogue.
#include "engine/passes/graph_edit.hpp"
#include "engine/passes/passes.hpp"

namespace quarks::detail {
namespace {

const Node* sole_activation_producer(const GraphIR& g, const std::vector<int>& uses, ValueId v) {
  return sole_producer(g, uses, v, OpKind::kActivation);
}

const Node* sole_dense_of(const GraphIR& g, const std::vector<int>& uses, ValueId v) {
  return sole_producer(g, uses, v, OpKind::kDense);
}

bool is_mul(const Node& n) { return n.op == OpKind::kBinary && n.attr<BinaryAttrs>().op == BinaryOpKind::kMul; }

}  // namespace

void fuse_output_gates(GraphIR& g) {
  const std::vector<int> uses = count_uses(g);
  std::vector<bool> dead(g.nodes.size(), false);
  for (std::size_t i = 0; i < g.nodes.size(); ++i) {
    Node& mul = g.nodes[i];
    if (!is_mul(mul)) continue;
    const ValueId p = mul.inputs[0], q = mul.inputs[1];
    const Node* a = sole_activation_producer(g, uses, p);
    const Node* b = sole_activation_producer(g, uses, q);
    if (!a && !b) {
      // (x·A) ⊙ (x·B): a bilinear gate of two dense products of one input (quadratic neurons).
      const Node* da = sole_dense_of(g, uses, p);
      const Node* db = sole_dense_of(g, uses, q);
      if (da && db && da != db && da->inputs[0] == db->inputs[0] && g.values[p].shape == g.values[q].shape) {
        mul.op = OpKind::kOutputGate;
        mul.attrs = OutputGateAttrs{Activation::identity(), Activation::identity()};
      }
      continue;
    }
    // x · sigmoid(x) is silu(x).
    for (int side = 0; side < 2; ++side) {
      const Node* s = side == 0 ? a : b;
      const ValueId other = side == 0 ? q : p;
      if (s && s->attr<ActivationAttrs>().f.kind == ActivationKind::kSigmoid && s->inputs[0] == other) {
        dead[static_cast<std::size_t>(g.values[side == 0 ? p : q].producer)] = true;
        mul.op = OpKind::kActivation;
        mul.inputs = {other};
        mul.attrs = ActivationAttrs{Activation::silu()};
        break;
      }
    }
    if (mul.op != OpKind::kBinary) continue;
    const ValueId s1 = a ? a->inputs[0] : p, s2 = b ? b->inputs[0] : q;
    const SymShape& out = g.values[mul.outputs[0]].shape;
    if (!(g.values[s1].shape == out) || !(g.values[s2].shape == out)) continue;  // output_gate does not broadcast
    const Activation f = a ? a->attr<ActivationAttrs>().f : Activation::identity();
    const Activation gf = b ? b->attr<ActivationAttrs>().f : Activation::identity();
    if (a) dead[static_cast<std::size_t>(g.values[p].producer)] = true;
    if (b) dead[static_cast<std::size_t>(g.values[q].producer)] = true;
    mul.op = OpKind::kOutputGate;
    mul.inputs = {s1, s2};
    mul.attrs = OutputGateAttrs{f, gf};
  }
  remove_nodes(g, dead);
}

}  // namespace quarks::detail
