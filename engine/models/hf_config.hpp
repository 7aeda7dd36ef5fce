// A Hugging Face decoder LM's config.json (and generation_config.json) as the one description every
// supported architecture maps onto: LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM,
// Qwen3ForCausalLM, GemmaForCausalLM and GPT2LMHeadModel differ only in the fields below. A field that
// changes the maths and that quarks does not implement is an error naming the file and the field,
// never a silently different model.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "quarks/activation.hpp"

namespace quarks::models {

enum class NormKind {
  kRms,         ///< x / rms(x) · w (Llama, Mistral, Qwen)
  kRmsOnePlus,  ///< x / rms(x) · (1 + w) (Gemma)
  kLayer,       ///< LayerNorm with weight and bias (GPT-2)
};

enum class PositionKind {
  kRope,     ///< rotary embeddings on q and k, rotate-half form
  kLearned,  ///< a learned position embedding added to the token embedding (GPT-2)
};

/// Llama 3's rewrite of the rotary inverse frequencies by wavelength (rope_scaling.rope_type "llama3").
struct Llama3RopeScaling {
  double factor = 8.0;
  double low_freq_factor = 1.0;
  double high_freq_factor = 4.0;
  double original_max_position_embeddings = 8192.0;
};

/// Everything about a decoder LM's shape and maths that building its graph needs.
struct DecoderConfig {
  std::string architecture;  ///< e.g. "LlamaForCausalLM"
  std::int64_t vocab_size = 0;
  std::int64_t hidden_size = 0;        ///< d
  std::int64_t intermediate_size = 0;  ///< the MLP's width
  int num_layers = 0;
  int num_heads = 0;
  int num_kv_heads = 0;
  int head_dim = 0;  ///< D; H·D need not equal d (Gemma, Qwen3)
  std::int64_t max_position_embeddings = 0;
  NormKind norm = NormKind::kRms;
  double norm_eps = 1e-6;
  PositionKind positions = PositionKind::kRope;
  double rope_theta = 10000.0;
  std::optional<Llama3RopeScaling> llama3_scaling;
  bool qkv_bias = false;  ///< q, k and v projections have biases (Qwen2, attention_bias, GPT-2)
  bool o_bias = false;    ///< the output projection has a bias (attention_bias, GPT-2)
  bool mlp_bias = false;  ///< the MLP's projections have biases (mlp_bias, GPT-2)
  bool qk_norm = false;   ///< per-head RMSNorm of q and k before RoPE (Qwen3)
  bool gated_mlp = true;  ///< act(x·W_gate) ⊙ (x·W_up), then W_down; else act(x·W_fc)·W_proj (GPT-2)
  Activation activation = Activation::silu();
  bool embed_scale = false;  ///< the embeddings are multiplied by √d (Gemma)
  bool tie_word_embeddings = false;
  /// Mistral's sliding window: query i sees keys j with i − W < j ≤ i (the attention window of every
  /// layer). 0: none (config.json's sliding_window absent or null).
  std::int64_t sliding_window = 0;
  /// Tokens that end generation (config.json's eos_token_id, overridden by generation_config.json's).
  std::vector<std::int64_t> eos_token_ids;
  std::optional<std::int64_t> bos_token_id;
};

/// Sampling defaults from generation_config.json (absent fields keep these).
struct GenerationDefaults {
  bool do_sample = false;
  double temperature = 1.0;
  int top_k = 50;
  double top_p = 1.0;
  double repetition_penalty = 1.0;
  std::int64_t max_new_tokens = 0;  ///< 0: not given
};

/// Reads model_dir/config.json. Throws Error(kInvalidArgument) for a missing or malformed file or
/// field, Error(kUnsupported) for an architecture, activation or rope scaling quarks does not run;
/// every message starts with the file and names the field (its JSON path).
DecoderConfig read_decoder_config(const std::filesystem::path& model_dir);
/// The same from a JSON text; `where` names it in messages.
DecoderConfig parse_decoder_config(const std::string& json_text, const std::string& where);

/// Reads model_dir/generation_config.json into `defaults` and, when it gives eos_token_id, into
/// `config.eos_token_ids`. A missing file changes nothing; a malformed one throws as above.
void read_generation_config(const std::filesystem::path& model_dir, DecoderConfig& config,
                            GenerationDefaults& defaults);

/// Inverse rotary frequencies f_d (d < D/2) of the config: θ^(−2d/D), rewritten by Llama 3's scaling
/// when the config has one.
std::vector<double> rope_inverse_frequencies(const DecoderConfig& c);

}  // namespace quarks::models
