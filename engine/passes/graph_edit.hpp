// Small editing helpers shared by the passes.
#pragma once

#include <vector>

#include "ops/contract/graph_ir.hpp"

namespace quarks::detail {

/// Number of node inputs that read each value, plus one per graph output naming it.
std::vector<int> count_uses(const GraphIR& g);
/// True if `v` is named by a graph output.
bool is_graph_output(const GraphIR& g, ValueId v);
/// The node of kind `op` producing `v` when `v` is an intermediate read by exactly one node input and
/// not a graph output (so a fusion may absorb that node), else null.
const Node* sole_producer(const GraphIR& g, const std::vector<int>& uses, ValueId v, OpKind op);
/// Removes the nodes marked in `dead` and renumbers producers.
void remove_nodes(GraphIR& g, const std::vector<bool>& dead);

}  // namespace quarks::detail
