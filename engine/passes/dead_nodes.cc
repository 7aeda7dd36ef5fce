// Dead-node elimination: walk back from the graph outputs, keep what they need.
#include "engine/passes/graph_edit.hpp"
#include "engine/passes/passes.hpp"

namespace quarks::detail {

void eliminate_dead_nodes(GraphIR& g) {
  std::vector<bool> needed_value(g.values.size(), false);
  for (const auto& [name, v] : g.outputs) needed_value[v] = true;
  std::vector<bool> dead(g.nodes.size(), true);
  for (std::size_t i = g.nodes.size(); i-- > 0;) {
    const Node& n = g.nodes[i];
    bool needed = false;
    for (ValueId v : n.outputs) needed = needed || needed_value[v];
    if (!needed) continue;
    dead[i] = false;
    for (ValueId v : n.inputs) needed_value[v] = true;
  }
  remove_nodes(g, dead);
}

void optimize(GraphIR& g) {
  eliminate_dead_nodes(g);
  fuse_attention(g);
  fuse_elementwise_patterns(g);
  fuse_output_gates(g);
  fuse_dense_bias(g);
  fuse_qkv_projections(g);
  fuse_dense_activation(g);
  fuse_gated_dense(g);
}

}  // namespace quarks::detail
