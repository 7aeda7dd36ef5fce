// quarks — a Llama-style decoder layer, built onto a GraphBuilder in one call, with an optional KV cache
// for token-by-token generation.
//
//   x ─ RMSNorm ─ x·[Wq|Wk|Wv] ─ split ─ rope(q), rope(k) at the cache position ─ append k, v to the cache
//     ─ causal GQA attention over the cache ─ ·Wo ─ + x ─ RMSNorm ─ silu(·W_gate) ⊙ (·W_up) ─ ·W_down ─ + ─ y
//
// The graph stays fused: one rms_norm op per norm, one dense for q, k and v together, one gated_dense for
// the SwiGLU gate and up projections (made by compile()'s fusion; Model::describe() shows it), the fused
// attention op reading the cache in place, and rope in place on q and k.
//
// Generation with a cache (LlamaLayerOptions::max_cache_len > 0): the caches live in the Session, so one
// Session is one conversation (or one batch of conversations advancing together: every sequence of the
// batch is at the same position). A service builds the model once, shares the Model between threads and
// gives each conversation its own Session:
//
//   quarks::GraphBuilder b;
//   quarks::Value h = b.input("x", {"batch", "seq", d_model});           // embeddings of this run's tokens
//   for (int l = 0; l < n_layers; ++l)
//     h = quarks::llama_decoder_layer(b, "layer" + std::to_string(l), h, weights[l], {.num_heads = 32,
//                                     .num_kv_heads = 8, .head_dim = 128, .max_cache_len = 4096});
//   b.output("h", h);
//   quarks::Model model = quarks::compile(b.build());
//
//   quarks::Session s(model);                       // one per conversation
//   s.run({{"x", prompt_embeddings}});              // prefill [B, S_prompt, d]: positions 0 .. S_prompt-1
//   while (generating) {
//     s.run({{"x", next_token_embedding}});         // [B, 1, d] at position s.cache_length()
//   }
//   s.reset_state();                                // next conversation (the cache memory is reused)
//
// Each run appends its S tokens to every layer's cache (the lengths advance after the run succeeds); a run
// that would go past max_cache_len throws quarks::Error(kResourceExhausted) and changes nothing. The
// prompt and the single-token steps have different input shapes, hence different plans (built once per
// shape and shared by all Sessions), but the same cache memory: a step writes only its new rows.
#pragma once

#include <cstdint>
#include <string>

#include "quarks/graph.hpp"
#include "quarks/tensor.hpp"

namespace quarks {

/// Weights of one Llama decoder layer, f32. Matrices are [in, out] row-major, as GraphBuilder::dense takes
/// them (a PyTorch nn.Linear weight is [out, in]: pass its transpose). d is the model width, H·D the
/// query width (num_heads·head_dim), Hkv·D the key/value width.
struct LlamaLayerWeights {
  Tensor attn_norm;  ///< [d]: RMSNorm scale before attention (HF input_layernorm)
  Tensor wq;         ///< [d, H·D]
  Tensor wk;         ///< [d, Hkv·D]
  Tensor wv;         ///< [d, Hkv·D]
  Tensor wo;         ///< [H·D, d]
  Tensor mlp_norm;   ///< [d]: RMSNorm scale before the MLP (HF post_attention_layernorm)
  Tensor w_gate;     ///< [d, ffn]
  Tensor w_up;       ///< [d, ffn]
  Tensor w_down;     ///< [ffn, d]
};

struct LlamaLayerOptions {
  int num_heads = 0;     ///< H, >= 1
  int num_kv_heads = 0;  ///< Hkv, divides H; 0 = num_heads
  int head_dim = 0;      ///< D, even; 0 = d / num_heads
  double rope_theta = 10000.0;
  float rms_eps = 1e-6f;
  /// 0: no cache; every run is a whole sequence (positions 0 .. S-1, plain causal attention over the
  /// input). > 0: a KV cache of this many positions named "<name>.kv_cache" (see the note above).
  std::int64_t max_cache_len = 0;
};

/// Adds one Llama-style decoder layer to `b`: x [B, S, d] (f32, d fixed; B and S may be symbolic) ->
/// [B, S, d]. Node and constant names start with `name` + "."; the result is the node `name` + ".out".
/// Throws Error(kInvalidArgument / kShapeMismatch) naming the layer and the weight whose shape is wrong.
Value llama_decoder_layer(GraphBuilder& b, const std::string& name, Value x, const LlamaLayerWeights& w,
                          const LlamaLayerOptions& o);

}  // namespace quarks
