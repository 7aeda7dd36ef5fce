#include "engine/passes/graph_edit.hpp"

namespace quarks::detail {

std::vector<int> count_uses(const GraphIR& g) {
  std::vector<int> uses(g.values.size(), 0);
  for (const Node& n : g.nodes)
    for (ValueId v : n.inputs) ++uses[v];
  for (const auto& [name, v] : g.outputs) ++uses[v];
  return uses;
}

bool is_graph_output(const GraphIR& g, ValueId v) {
  for (const auto& [name, out] : g.outputs)
    if (out == v) return true;
  return false;
}

const Node* sole_producer(const GraphIR& g, const std::vector<int>& uses, ValueId v, OpKind op) {
  const ValueInfo& info = g.values[v];
  if (info.kind != ValueKind::kIntermediate || info.producer < 0) return nullptr;
  const Node& p = g.nodes[static_cast<std::size_t>(info.producer)];
  if (p.op != op || uses[v] != 1 || is_graph_output(g, v)) return nullptr;
  return &p;
}

void remove_nodes(GraphIR& g, const std::vector<bool>& dead) {
  std::vector<Node> kept;
  kept.reserve(g.nodes.size());
  for (std::size_t i = 0; i < g.nodes.size(); ++i) {
    if (!dead[i]) kept.push_back(std::move(g.nodes[i]));
  }
  g.nodes = std::move(kept);
  for (ValueInfo& v : g.values)
    if (v.kind == ValueKind::kIntermediate) v.producer = -1;
  for (std::size_t i = 0; i < g.nodes.size(); ++i)
    for (ValueId v : g.nodes[i].outputs) g.values[v].producer = static_cast<int>(i);
}

}  // namespace quarks::detail
