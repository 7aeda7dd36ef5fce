// Fusions into dense products: bias, activation epilogue, and output gating of two products.
//
// All three move work into the dense kernel's tile epilogue, where the tile is still in cache,
// instead of another pass over a [rows, N] tensor in memory.
#include "engine/passes/graph_edit.hpp"
#include "engine/passes/passes.hpp"

namespace quarks::detail {
namespace {

// The dense node producing `v`, if `v` is read only by one node and is not a graph output.
Node* sole_dense_producer(GraphIR& g, const std::vector<int>& uses, ValueId v) {
  return const_cast<Node*>(sole_producer(g, uses, v, OpKind::kDense));
}

// Makes `into` produce the output of `consumer` (which is then removed).
void take_output(GraphIR& g, Node& into, const Node& consumer) {
  into.outputs[0] = consumer.outputs[0];
  g.values[consumer.outputs[0]].producer = -1;  // fixed by remove_nodes
}

}  // namespace

void fuse_dense_bias(GraphIR& g) {
  std::vector<int> uses = count_uses(g);
  std::vector<bool> dead(g.nodes.size(), false);
  for (std::size_t i = 0; i < g.nodes.size(); ++i) {
    Node& add = g.nodes[i];
    if (add.op != OpKind::kBinary || add.attr<BinaryAttrs>().op != BinaryOpKind::kAdd) continue;
    for (int side = 0; side < 2; ++side) {
      Node* dense = sole_dense_producer(g, uses, add.inputs[side]);
      const ValueInfo& other = g.values[add.inputs[1 - side]];
      if (!dense) continue;
      const DenseAttrs& attrs = dense->attr<DenseAttrs>();
      const SymShape& y = g.values[dense->outputs[0]].shape;
      if (attrs.has_bias || attrs.f.kind != ActivationKind::kIdentity || other.kind != ValueKind::kConstant ||
          other.shape.size() != 1 || !(other.shape[0] == y.back())) {
        continue;
      }
      dense->inputs.push_back(add.inputs[1 - side]);
      DenseAttrs with_bias = attrs;
      with_bias.has_bias = true;
      dense->attrs = with_bias;
      take_output(g, *dense, add);
      dead[i] = true;
      break;
    }
  }
  remove_nodes(g, dead);
}

void fuse_dense_activation(GraphIR& g) {
  std::vector<int> uses = count_uses(g);
  std::vector<bool> dead(g.nodes.size(), false);
  for (std::size_t i = 0; i < g.nodes.size(); ++i) {
    Node& act = g.nodes[i];
    if (act.op != OpKind::kActivation) continue;
    Node* dense = sole_dense_producer(g, uses, act.inputs[0]);
    if (!dense || dense->attr<DenseAttrs>().f.kind != ActivationKind::kIdentity) continue;
    DenseAttrs with_activation = dense->attr<DenseAttrs>();
    with_activation.f = act.attr<ActivationAttrs>().f;
    dense->attrs = with_activation;
    take_output(g, *dense, act);
    dead[i] = true;
  }
  remove_nodes(g, dead);
}

void fuse_gated_dense(GraphIR& g) {
  std::vector<int> uses = count_uses(g);
  std::vector<bool> dead(g.nodes.size(), false);
  for (std::size_t i = 0; i < g.nodes.size(); ++i) {
    Node& gate = g.nodes[i];
    if (gate.op != OpKind::kOutputGate) continue;
    Node* d1 = sole_dense_producer(g, uses, gate.inputs[0]);
    Node* d2 = sole_dense_producer(g, uses, gate.inputs[1]);
    if (!d1 || !d2 || d1 == d2 || d1->inputs[0] != d2->inputs[0]) continue;
    // The dense epilogue activation and the gate's activation compose only if one is the identity.
    auto compose = [](const Activation& dense_f, const Activation& gate_f, Activation& out) {
      if (dense_f.kind == ActivationKind::kIdentity) return out = gate_f, true;
      if (gate_f.kind == ActivationKind::kIdentity) return out = dense_f, true;
      return false;
    };
    const DenseAttrs& a1 = d1->attr<DenseAttrs>();
    const DenseAttrs& a2 = d2->attr<DenseAttrs>();
    const OutputGateAttrs& ga = gate.attr<OutputGateAttrs>();
    // Both weights in one layout and one dtype (the kernels take a pair of one kind).
    if (a1.w_transposed != a2.w_transposed || g.values[d1->inputs[1]].dtype != g.values[d2->inputs[1]].dtype) continue;
    GatedDenseAttrs fused;
    if (!compose(a1.f, ga.f, fused.f) || !compose(a2.f, ga.g, fused.g)) continue;
    fused.w_transposed = a1.w_transposed;
    fused.has_bias1 = a1.has_bias;
    fused.has_bias2 = a2.has_bias;

    Node n;
    n.op = OpKind::kGatedDense;
    n.name = gate.name;
    n.inputs = {d1->inputs[0], d1->inputs[1], d2->inputs[1]};
    if (a1.has_bias) n.inputs.push_back(d1->inputs[2]);
    if (a2.has_bias) n.inputs.push_back(d2->inputs[2]);
    n.outputs = gate.outputs;
    n.attrs = fused;
    dead[d1 - g.nodes.data()] = true;
    dead[d2 - g.nodes.data()] = true;
    gate = std::move(n);
  }
  remove_nodes(g, dead);
}

}  // namespace quarks::detail
