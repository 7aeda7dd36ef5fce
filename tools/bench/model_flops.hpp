// Work of a compiled Model's products, for quarks-bench --model's GFLOP/s.
#pragma once

#include "quarks/model.hpp"

namespace quarks::bench {

/// Floating-point operations of one run of `model`'s products, counting 2 per multiply-add: dense and
/// synaptic_gate 2·M·K·N, gated_dense twice that, matmul 2·(output elements)·K, attention
/// 2·Sk·(elements of q + elements of the output) (Q·Kᵀ and P·V in full, also when causal). Everything
/// else (elementwise, norms, softmax, layout) is not counted. 0 if a product's shape is not known
/// (symbolic input dims).
///
/// Reads the graph after fusion from the Model's internal IR (engine/graph_ir.hpp): the public API has
/// no per-node shapes. The only place a tool looks inside the engine.
double product_flops(const Model& model);

}  // namespace quarks::bench
