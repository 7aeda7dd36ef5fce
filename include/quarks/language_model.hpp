// quarks — whole language models: a Hugging Face decoder checkpoint directory (config.json,
// model.safetensors or its shards with model.safetensors.index.json, generation_config.json) loaded
// into a compiled Model, and generation from it.
//
//   quarks::LanguageModel lm = quarks::LanguageModel::load("path/to/model", {.threads = 2});  // share it
//   quarks::Generator gen(lm);                                   // one per calling thread / conversation
//   quarks::GenerationResult r = gen.generate(prompt_ids, {.max_new_tokens = 64, .temperature = 0.7,
//                                             .top_k = 40, .top_p = 0.9, .seed = 1},
//                                             [](std::int64_t token) { return true; });  // false stops
//   std::vector<quarks::GenerationResult> rs = gen.generate_batch(prompts, options,   // several prompts
//                                             [](std::size_t row, std::int64_t token) { return true; });
//
// Architectures: LlamaForCausalLM (GQA, rope_theta, rope_scaling "llama3", attention_bias, mlp_bias,
// head_dim, tied embeddings), MistralForCausalLM (sliding_window as banded attention), Qwen2ForCausalLM
// (q/k/v biases), Qwen3ForCausalLM (per-head q/k RMSNorm), GemmaForCausalLM (√d embeddings, 1 + w
// RMSNorm, GeGLU) and GPT2LMHeadModel (learned positions, LayerNorm, Conv1D weights). Anything else,
// or a config field that changes the maths in a way quarks does not implement, is an Error naming the
// file and the field. Weights may be f32, bf16 or f16. A bf16 checkpoint loaded at Precision::kBF16
// is read in place: the products run on the file's bytes as read (nothing is converted or repacked, so the
// weights are in memory once and load is quick; decode steps stream them through a bf16
// matrix-vector kernel, prompts run oneDNN's bf16 matmuls, which need AVX-512). Otherwise the weights
// are converted to f32 at load and the plan runs in LoadOptions::precision.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "quarks/model.hpp"
#include "quarks/tensor.hpp"

namespace quarks {

struct LoadOptions {
  int threads = 0;  ///< threads of each Generator's arena; 0 = all hardware threads
  Precision precision = Precision::kF32;
  /// Positions each Generator's KV cache holds (prompt + generated tokens); 0 = the model's
  /// max_position_embeddings, at most 4096.
  std::int64_t max_context = 0;
};

/// Sampling and stopping. Unset fields take generation_config.json's values (do_sample false there
/// means greedy), else Hugging Face's defaults; temperature 0 is greedy whatever the rest says.
struct GenerateOptions {
  std::optional<std::int64_t> max_new_tokens;  ///< default: generation_config's, else 64
  std::optional<double> temperature;           ///< >= 0
  std::optional<int> top_k;                    ///< >= 0; 0 = off
  std::optional<double> top_p;                 ///< in (0, 1]; 1 = off
  std::optional<double> repetition_penalty;    ///< > 0; 1 = off
  std::uint64_t seed = 0;                      ///< the same seed, prompt and options give the same ids
  std::vector<std::int64_t> stop_ids;          ///< tokens that end generation besides eos_token_id
  bool ignore_eos = false;                     ///< do not stop at the model's eos_token_id
};

struct GenerationResult {
  std::vector<std::int64_t> ids;  ///< the new tokens, the stop token included when one ended it
  /// "eos", "stop_id", "max_new_tokens" or "callback" (the callback returned false).
  std::string stop_reason;
  double prefill_ms = 0;  ///< the prompt's run up to its logits
  double decode_ms = 0;   ///< the runs of the tokens after the first
  std::int64_t decode_tokens = 0;
};

class Generator;

/// A loaded, compiled decoder LM. Immutable and shareable between threads (each uses its own Generator).
class LanguageModel {
 public:
  /// An empty handle, to be assigned from load(); only assignment and Generator (which throws) take it.
  LanguageModel() = default;
  /// Reads and checks the directory, maps the weights, builds and compiles the graph. Throws Error
  /// naming the file, tensor or field that is missing or wrong.
  static LanguageModel load(const std::filesystem::path& model_dir, const LoadOptions& options = {});

  const std::string& architecture() const;
  std::int64_t vocab_size() const;
  std::int64_t max_context() const;
  int num_layers() const;
  /// config.json's eos_token_id, overridden by generation_config.json's (may be empty).
  const std::vector<std::int64_t>& eos_token_ids() const;
  /// The compiled graph: inputs input_ids i64 [batch, seq], position_ids i64 [batch, seq] (each token's
  /// position), left_padding i64 [batch] (cache rows before it are padding no query sees),
  /// logit_positions i64 [rows]; outputs logits f32 [batch, rows, vocab] and last_hidden_state f32
  /// [batch, seq, hidden] (after the final norm); a KV cache per layer in each Session.
  const Model& model() const;

  struct Impl;

 private:
  friend class Generator;
  std::shared_ptr<const Impl> impl_;
};

/// One conversation with a LanguageModel (or one batch of them, generate_batch): its KV caches and
/// sampling state. Not thread-safe; make one per calling thread.
class Generator {
 public:
  explicit Generator(const LanguageModel& model);
  ~Generator();
  Generator(Generator&&) noexcept;
  Generator& operator=(Generator&&) noexcept;

  /// Starts a new conversation with `prompt` (>= 1 token ids in [0, vocab)) and generates up to
  /// max_new_tokens tokens, calling `on_token` with each as it comes (return false to stop). Throws
  /// Error(kResourceExhausted) before any work when prompt + max_new_tokens exceeds max_context.
  GenerationResult generate(std::span<const std::int64_t> prompt, const GenerateOptions& options = {},
                            const std::function<bool(std::int64_t)>& on_token = {});

  /// generate() for several prompts of different lengths at once: one prefill of the prompts
  /// left-padded to the longest (the padding is skipped by attention, each row's tokens keep positions
  /// 0, 1, ...), then one decode step per token for every row still going. Each row samples from its
  /// own copy of the seeded sampler and stops on its own (eos, stop id, its callback returning false,
  /// max_new_tokens), so a row gives what it gives alone (up to f32 rounding of the batched products).
  /// `on_token(row, token)` streams row `row`'s tokens. Results in prompt order; every row's prefill_ms
  /// is the batch's prefill and its decode_ms the steps it took part in. Throws before any work when a
  /// prompt is empty or holds an id outside the vocabulary (naming the prompt), or when the longest
  /// prompt plus max_new_tokens exceeds max_context. The Session's KV caches then hold this batch:
  /// append() needs reset() first.
  std::vector<GenerationResult> generate_batch(
      std::span<const std::vector<std::int64_t>> prompts, const GenerateOptions& options = {},
      const std::function<bool(std::size_t row, std::int64_t token)>& on_token = {});

  /// Logits of every position of `ids` (f32 [ids.size(), vocab]), scoring instead of generating.
  /// Starts a new conversation.
  Tensor logits(std::span<const std::int64_t> ids);
  /// The last hidden states (after the final norm, what the LM head reads) of every position of `ids`:
  /// f32 [ids.size(), hidden_size], for callers that pool or score them. Starts a new conversation.
  Tensor hidden_states(std::span<const std::int64_t> ids);

  /// The lower-level steps generate() is made of. reset() empties the KV caches; append() runs `ids`
  /// after what the conversation holds and returns the logits of its last token (f32 [vocab]); it
  /// throws on a conversation that generate_batch made of several prompts.
  void reset();
  Tensor append(std::span<const std::int64_t> ids);
  /// The steps of the plan of the last run, with the flops and bytes of its next run at the caches'
  /// current lengths (Session::plan_steps), for benchmarks and profiles; empty before the first run.
  std::vector<PlanStep> plan_steps() const;
  /// Tokens the conversation holds (cache rows; for a batch, the longest prompt's tokens and the steps).
  std::int64_t length() const;

 private:
  struct State;
  std::unique_ptr<State> s_;
};

}  // namespace quarks
