// The one decoder builder behind every supported architecture: a DecoderConfig and a checkpoint's
// weights (Hugging Face names and layouts) become a quarks Graph of public builder calls — embedding
// gather, per layer norm → QKV projections (one fused dense, or three in-place linears) → (per-head q/k norm) → rope at
// the cache position → KV cache append → causal GQA attention → output dense → residual → norm → gated (SwiGLU / GeGLU:
// the output-gating quark) or plain MLP → residual, then the final norm and the LM head.
//
// Graph interface (names as Hugging Face's where there is one):
//   inputs   input_ids          i64 [batch, seq]
//            position_ids       i64 [batch, seq]   each token's position (rotary or learned)
//            left_padding       i64 [batch]        cache rows before it are padding: no query sees them
//            logit_positions    i64 [rows]         which positions of the run get logits (e.g. the last)
//   outputs  logits             f32 [batch, rows, vocab]
//            last_hidden_state  f32 [batch, seq, hidden]   after the final norm
// Every layer keeps a KV cache of max_context positions in the Session, so a Session is one
// conversation (or a batch advancing together): run the prompt, then one token at a time. A batch of
// prompts of different lengths is left-padded to one length: row b's first left_padding[b] cache rows
// are padding (attention's key_starts skips them), and its real tokens have positions 0, 1, ...
#pragma once

#include <cstdint>
#include <memory>

#include "engine/models/hf_config.hpp"
#include "engine/models/safetensors.hpp"
#include "quarks/graph.hpp"

namespace quarks::models {

inline constexpr const char* kInputIds = "input_ids";
inline constexpr const char* kPositionIds = "position_ids";
inline constexpr const char* kLeftPadding = "left_padding";
inline constexpr const char* kLogitPositions = "logit_positions";
inline constexpr const char* kLogits = "logits";
inline constexpr const char* kLastHiddenState = "last_hidden_state";

/// Builds the graph. Throws Error naming the checkpoint tensor that is missing or has the wrong shape.
/// A sliding window (Mistral) becomes the window of every layer's attention; the KV caches hold the
/// whole max_context.
///
/// weights_in_place: the nn.Linear weights and the embedding table stay the checkpoint's own tensors
/// (Tensor::external over its memory; linear products, the q, k and v projections separate), so a
/// bf16 checkpoint compiled at precision bf16 keeps its weights in memory once; the graph then holds
/// `weights` alive. Otherwise they are converted to f32 [in, out] for dense products (q, k, v fused
/// into one) and the checkpoint may be closed after the call. GPT-2 (Conv1D weights) is always converted.
/// Whether the checkpoint stores its projection weights in BF16 (those of layer 0 and the embedding),
/// the case where reading them in place pays.
bool linear_weights_are_bf16(const DecoderConfig& config, const Checkpoint& weights);

Graph build_decoder_graph(const DecoderConfig& config, std::shared_ptr<const Checkpoint> weights,
                          std::int64_t max_context, bool weights_in_place = false);

}  // namespace quarks::models
