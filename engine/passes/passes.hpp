// Graph passes. Each takes a valid IR in topological order and leaves it valid and in order.
#pragma once

#include "ops/contract/graph_ir.hpp"

namespace quarks::detail {

/// Drops nodes whose outputs no graph output needs.
void eliminate_dead_nodes(GraphIR& g);
/// dense (no bias) followed by add of a constant [N] vector -> dense with bias.
void fuse_dense_bias(GraphIR& g);
/// dense (identity) followed by an activation -> dense with that activation in its epilogue.
void fuse_dense_activation(GraphIR& g);
/// output_gate(dense(x, W1), dense(x, W2)) on one x -> one gated dense whose output tiles are gated
/// while in cache (GLU, SwiGLU, GEGLU, ... feed-forward layers).
void fuse_gated_dense(GraphIR& g);

/// x·sigmoid(x) -> silu(x); f(a)·g(b) and a·g(b) on equal shapes -> output_gate(a, b, f, g).
void fuse_output_gates(GraphIR& g);

/// Spelled-out GELU (erf and tanh forms), RMSNorm and LayerNorm chains -> the one quarks op.
void fuse_elementwise_patterns(GraphIR& g);

/// Spelled-out softmax(q·kᵀ·c + mask)·v -> the fused attention op, reading [B, S, H·D] tensors in
/// place when q, k, v are head views of them (fuse_attention.cc).
void fuse_attention(GraphIR& g);
/// attention(dense(x, Wq), dense(x, Wk), dense(x, Wv)) in the [B, S, H·D] layout -> one dense of x with
/// [Wq | Wk | Wv] feeding the packed-QKV attention (run after fuse_dense_bias).
void fuse_qkv_projections(GraphIR& g);

/// Runs the passes above in order.
void optimize(GraphIR& g);

}  // namespace quarks::detail
