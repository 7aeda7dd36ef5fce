// The one decoder builder behind every supported architecture: a DecoderConfig and a checkpoint's
// weights (Hugging Face names and layouts) become a quarks Graph of public builder calls — embedding
// gather, per layer norm → fused QKV dense → (per-head q/k norm) → rope at the cache position → KV cache
// append → causal GQA attention → output dense → residual → norm → gated (SwiGLU / GeGLU: the
// output-gating quark) or plain MLP → residual, then the final norm and the LM head.
//
// Graph interface (names as Hugging Face's where there is one):
//   inputs   input_ids        i64 [batch, seq]
//            position_ids     i64 [batch, seq]   (learned positions only: GPT-2)
//            logit_positions  i64 [rows]         which positions of the run get logits (e.g. the last)
//   output   logits           f32 [batch, rows, vocab]
// Every layer keeps a KV cache of max_context positions in the Session, so a Session is one
// conversation (or a batch advancing together): run the prompt, then one token at a time.
#pragma once

#include <cstdint>

#include "engine/models/hf_config.hpp"
#include "engine/models/safetensors.hpp"
#include "quarks/graph.hpp"

namespace quarks::models {

inline constexpr const char* kInputIds = "input_ids";
inline constexpr const char* kPositionIds = "position_ids";
inline constexpr const char* kLogitPositions = "logit_positions";
inline constexpr const char* kLogits = "logits";

/// Builds the graph. Throws Error naming the checkpoint tensor that is missing or has the wrong shape.
/// A sliding window (Mistral) becomes the window of every layer's attention; the KV caches hold the
/// whole max_context.
Graph build_decoder_graph(const DecoderConfig& config, const Checkpoint& weights, std::int64_t max_context);

}  // namespace quarks::models
