// quarks — attention blocks: multi-head attention and transformer encoder layers built from quarks ops.
//
//   quarks::GraphBuilder g;
//   auto x = g.input("x", {"batch", "seq", 768});
//   auto lengths = g.input("lengths", {"batch"}, quarks::DType::kI64);
//   quarks::EncoderLayerOptions o;
//   o.num_heads = 12;
//   o.activation = quarks::Activation::gelu();  // BERT: post-LN (norm_first = false), GELU (erf)
//   auto y = quarks::transformer_encoder_layer(g, "layer0", x, weights, o, std::nullopt, lengths);
//
// The blocks are free functions that add ordinary ops to a GraphBuilder: every node is named
// "<name>.<part>" ("layer0.attn.qkv", "layer0.ffn.up", ...) and weights become constants named after their
// node ("layer0.attn.qkv.w"), so names must be unique per builder. Model::describe() shows what they
// compiled to.
//
// Weight layout: dense weights are [in, out] row-major, as GraphBuilder::dense takes them; PyTorch's
// nn.Linear stores weight [out, in] (transpose it), and nn.MultiheadAttention's in_proj_weight [3·d, d]
// is the transpose of w_qkv (its rows are q, then k, then v, head after head, which is the packed order).
// Tensors are shared with the graph, not copied: don't modify them afterwards.
#pragma once

#include <optional>
#include <string>

#include "quarks/activation.hpp"
#include "quarks/graph.hpp"
#include "quarks/tensor.hpp"

namespace quarks {

/// Weights of multi_head_attention, with d the model width (x's last dim), H query heads, Hkv key/value
/// heads and D the head dim.
struct MhaWeights {
  /// [d, (H + 2·Hkv)·D]: the fused q, k, v projection; columns are the H query heads, then the Hkv key
  /// heads, then the Hkv value heads, D columns each.
  Tensor w_qkv;
  std::optional<Tensor> b_qkv;  ///< [(H + 2·Hkv)·D]
  Tensor w_out;                 ///< [H·D, d_out]: the output projection
  std::optional<Tensor> b_out;  ///< [d_out]
  /// Gated attention only (MhaOptions::gated): [d, H], one gate logit per head, and its bias [H].
  std::optional<Tensor> w_gate;
  std::optional<Tensor> b_gate;
};

struct MhaOptions {
  int num_heads = 0;     ///< H, required
  int num_kv_heads = 0;  ///< Hkv (grouped-query attention); 0 = num_heads
  bool causal = false;   ///< query i sees keys j <= i
  /// Gated attention: each head's output is multiplied by σ(x·w_gate + b_gate) of its head (one gate per
  /// head and token, broadcast over the head's D values) before the output projection.
  bool gated = false;
  std::optional<float> scale;  ///< multiplies Q·Kᵀ; default 1/sqrt(D)
};

/// Multi-head self-attention of x [B, S, d] (the batch and sequence dims may be symbolic):
///   qkv = x·w_qkv + b_qkv;  a = attention_qkv(qkv, mask, key_lengths);
///   a ⊙= σ(x·w_gate + b_gate) per head (gated);  y = a·w_out + b_out  -> [B, S, d_out].
/// mask: additive f32 broadcastable to [B, H, S, S] (-inf hides a key); key_lengths: i64 [B], keys at
/// positions >= key_lengths[b] are ignored (PyTorch's key_padding_mask when the padding is at the end).
/// See GraphBuilder::attention for the semantics. Nodes: <name>.qkv, <name>.core (the attention),
/// <name>.gate (gated), <name>.out. x's rank, the head counts and the shapes of w_qkv, w_out and w_gate are
/// checked here (Error kShapeMismatch / kInvalidArgument naming the block and the weight); the dense ops
/// check the biases (naming their node).
Value multi_head_attention(GraphBuilder& b, const std::string& name, Value x, const MhaWeights& w, const MhaOptions& o,
                           std::optional<Value> mask = std::nullopt, std::optional<Value> key_lengths = std::nullopt);

/// Weights of transformer_encoder_layer (d the model width, F the feed-forward width).
struct EncoderLayerWeights {
  MhaWeights attention;          ///< w_out [d, d]
  Tensor ln1_scale, ln1_bias;    ///< [d]: the norm of the attention sublayer (PyTorch norm1)
  Tensor w_ffn1;                 ///< [d, F]  (PyTorch linear1.weight is [F, d])
  std::optional<Tensor> b_ffn1;  ///< [F]
  Tensor w_ffn2;                 ///< [F, d]
  std::optional<Tensor> b_ffn2;  ///< [d]
  Tensor ln2_scale, ln2_bias;    ///< [d]: the norm of the feed-forward sublayer (PyTorch norm2)
};

struct EncoderLayerOptions {
  int num_heads = 0;     ///< required
  int num_kv_heads = 0;  ///< 0 = num_heads
  /// Of the first feed-forward product: relu (PyTorch's default), gelu (erf; BERT), gelu_tanh (GPT-2), ...
  Activation activation = Activation::relu();
  /// false: post-LN (BERT, PyTorch's default): h = LN1(x + MHA(x)), y = LN2(h + FFN(h)).
  /// true: pre-LN: h = x + MHA(LN1(x)), y = h + FFN(LN2(h)).
  bool norm_first = false;
  float ln_eps = 1e-5f;
  /// Causal self-attention: with norm_first and gelu_tanh this is a GPT-style decoder-only block.
  bool causal = false;
  bool gated = false;  ///< gated attention (MhaOptions::gated; needs attention.w_gate)
};

/// A transformer encoder layer on x [B, S, d], as PyTorch's nn.TransformerEncoderLayer (batch_first,
/// eval mode) computes it: FFN(h) = act(h·w_ffn1 + b_ffn1)·w_ffn2 + b_ffn2, the norms are LayerNorm over
/// d with eps ln_eps. mask and key_lengths as for multi_head_attention. The products carry their bias
/// and activation in their epilogue (dense+bias+act), the norms are single layer_norm ops.
Value transformer_encoder_layer(GraphBuilder& b, const std::string& name, Value x, const EncoderLayerWeights& w,
                                const EncoderLayerOptions& o, std::optional<Value> mask = std::nullopt,
                                std::optional<Value> key_lengths = std::nullopt);

}  // namespace quarks
