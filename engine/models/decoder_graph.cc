// build_decoder_graph (decoder_graph.hpp): checkpoint tensors by Hugging Face name -> GraphBuilder calls.
#include "engine/models/decoder_graph.hpp"

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "quarks/error.hpp"

namespace quarks::models {
namespace {

// [rows, cols] -> [cols, rows], in tiles so that both sides stay in cache.
Tensor transposed(const Tensor& t) {
  const std::int64_t rows = t.shape()[0], cols = t.shape()[1];
  Tensor out(DType::kF32, {cols, rows});
  const float* src = t.f32();
  float* dst = out.f32();
  constexpr std::int64_t kTile = 64;
  for (std::int64_t r0 = 0; r0 < rows; r0 += kTile) {
    for (std::int64_t c0 = 0; c0 < cols; c0 += kTile) {
      const std::int64_t r1 = std::min(rows, r0 + kTile), c1 = std::min(cols, c0 + kTile);
      for (std::int64_t c = c0; c < c1; ++c)  // rows of dst: contiguous writes, reads within the tile
        for (std::int64_t r = r0; r < r1; ++r) dst[c * rows + r] = src[r * cols + c];
    }
  }
  return out;
}

// [k, a] | [k, b] | ... -> [k, a + b + ...] (one dense for q, k and v).
Tensor concat_columns(const std::vector<Tensor>& parts) {
  const std::int64_t rows = parts.front().shape()[0];
  std::int64_t cols = 0;
  for (const Tensor& p : parts) cols += p.shape()[1];
  Tensor out(DType::kF32, {rows, cols});
  for (std::int64_t r = 0; r < rows; ++r) {
    float* dst = out.f32() + r * cols;
    for (const Tensor& p : parts) {
      const std::int64_t n = p.shape()[1];
      std::memcpy(dst, p.f32() + r * n, sizeof(float) * static_cast<std::size_t>(n));
      dst += n;
    }
  }
  return out;
}

Tensor concat_vectors(const std::vector<Tensor>& parts) {
  std::int64_t n = 0;
  for (const Tensor& p : parts) n += p.numel();
  Tensor out(DType::kF32, {n});
  float* dst = out.f32();
  for (const Tensor& p : parts) {
    std::memcpy(dst, p.f32(), p.bytes());
    dst += p.numel();
  }
  return out;
}

Tensor plus_one(Tensor t) {
  for (std::int64_t i = 0; i < t.numel(); ++i) t.f32()[i] += 1.0f;
  return t;
}

// The checkpoint's tensors under the architecture's names, converted to what GraphBuilder takes.
class Weights {
 public:
  Weights(std::shared_ptr<const Checkpoint> ckpt, const DecoderConfig& c, bool in_place)
      : owner_(std::move(ckpt)), ckpt_(*owner_), c_(c), in_place_(in_place && c.architecture != "GPT2LMHeadModel") {
    if (c.architecture == "GPT2LMHeadModel") {
      prefix_ = ckpt_.find("transformer.wte.weight") != nullptr ? "transformer." : "";
    } else {
      prefix_ = "model.";
    }
  }
  bool gpt2() const { return c_.architecture == "GPT2LMHeadModel"; }
  /// Whether nn.Linear weights are read in place ([out, in], bf16 or f32: GraphBuilder::linear) instead
  /// of converted to f32 [in, out] for dense. GPT-2's Conv1D weights are [in, out] already: converted.
  bool in_place() const { return in_place_; }
  /// An nn.Linear weight [out, in] or the embedding table, in place over the checkpoint's mapping.
  Tensor rows(const std::string& name, std::int64_t rows, std::int64_t cols) const {
    return Checkpoint::in_place(owner_, name, Shape{rows, cols});
  }
  const std::string& prefix() const { return prefix_; }
  std::string layer(int i, const std::string& part) const {
    return prefix_ + (gpt2() ? "h." : "layers.") + std::to_string(i) + "." + part;
  }
  /// An nn.Linear weight [out, in] as the [in, out] matrix dense takes.
  Tensor linear(const std::string& name, std::int64_t in, std::int64_t out) const {
    return transposed(ckpt_.to_f32(name, Shape{out, in}));
  }
  /// A GPT-2 Conv1D weight, already [in, out].
  Tensor conv1d(const std::string& name, std::int64_t in, std::int64_t out) const {
    return ckpt_.to_f32(name, Shape{in, out});
  }
  Tensor vector(const std::string& name, std::int64_t n) const { return ckpt_.to_f32(name, Shape{n}); }
  Tensor matrix(const std::string& name, std::int64_t rows, std::int64_t cols) const {
    return ckpt_.to_f32(name, Shape{rows, cols});
  }
  bool has(const std::string& name) const { return ckpt_.find(name) != nullptr; }

 private:
  std::shared_ptr<const Checkpoint> owner_;
  const Checkpoint& ckpt_;
  const DecoderConfig& c_;
  bool in_place_;
  std::string prefix_;
};

class DecoderBuilder {
 public:
  DecoderBuilder(const DecoderConfig& c, std::shared_ptr<const Checkpoint> ckpt, std::int64_t max_context,
                 bool in_place)
      : c_(c), w_(std::move(ckpt), c, in_place), max_context_(max_context) {}

  Graph build() {
    const std::int64_t d = c_.hidden_size, vocab = c_.vocab_size;
    const Value ids = b_.input(kInputIds, {"batch", "seq"}, DType::kI64);
    const std::string embed_name = w_.gpt2() ? w_.prefix() + "wte.weight" : w_.prefix() + "embed_tokens.weight";
    const Tensor embed = w_.in_place() ? w_.rows(embed_name, vocab, d) : w_.matrix(embed_name, vocab, d);
    Value x = embedding(embed, ids);
    positions_ = b_.input(kPositionIds, {"batch", "seq"}, DType::kI64);
    left_padding_ = b_.input(kLeftPadding, {"batch"}, DType::kI64);
    if (c_.positions == PositionKind::kLearned) {
      const Value pos = positions_;
      const Tensor wpe = w_.matrix(w_.prefix() + "wpe.weight", c_.max_position_embeddings, d);
      x = b_.add("embed.positions", x, b_.gather("embed.position", b_.constant("embed.position.table", wpe), pos, 0));
    }
    for (int i = 0; i < c_.num_layers; ++i) x = layer(i, x);

    const Value rows = b_.input(kLogitPositions, {"rows"}, DType::kI64);
    const Value hidden = norm("head.norm", x, w_.gpt2() ? w_.prefix() + "ln_f" : w_.prefix() + "norm");
    b_.output(kLastHiddenState, hidden);
    const Value h = b_.gather("head.rows", hidden, rows, 1);
    Tensor head;
    if (c_.tie_word_embeddings || !w_.has("lm_head.weight")) {
      if (!c_.tie_word_embeddings) {
        throw Error(ErrorCode::kInvalidArgument,
                    "the checkpoint has no 'lm_head.weight' and the config does not tie it to the embeddings");
      }
      head = w_.in_place() ? embed : transposed(embed);  // in place: the table is the head's [vocab, d]
    } else {
      head = w_.in_place() ? w_.rows("lm_head.weight", vocab, d) : w_.linear("lm_head.weight", d, vocab);
    }
    const Value head_w = b_.constant("head.w", head);
    b_.output(kLogits, w_.in_place() ? b_.linear("head", h, head_w) : b_.dense("head", h, head_w));
    return b_.build();
  }

 private:
  // Rows of the embedding table picked by ids, as f32 (a bf16 table read in place is widened after the
  // gather); Gemma scales them by √d (one rounding, as scaling the table would).
  Value embedding(const Tensor& table, Value ids) {
    Value x = b_.gather("embed", b_.constant("embed.table", table), ids, 0);
    if (table.dtype() != DType::kF32) x = b_.cast("embed.f32", x, DType::kF32);
    if (!c_.embed_scale) return x;
    const float scale = static_cast<float>(std::sqrt(static_cast<double>(c_.hidden_size)));
    return b_.mul("embed.scale", x, b_.constant("embed.scale.value", Tensor::from_f32({1}, {scale})));
  }

  // x·Wᵀ (+ b) of the nn.Linear weight `tensor` [out, in]: in place (linear) or converted (dense).
  Value projection(const std::string& name, Value x, const std::string& tensor, std::int64_t in, std::int64_t out,
                   std::optional<Value> bias) {
    if (w_.in_place()) return b_.linear(name, x, b_.constant(name + ".w", w_.rows(tensor, out, in)), bias);
    return b_.dense(name, x, b_.constant(name + ".w", w_.linear(tensor, in, out)), bias);
  }

  // The config's norm over the last axis of x, its weights named `base` + ".weight" (+ ".bias").
  Value norm(const std::string& name, Value x, const std::string& base) {
    const std::int64_t d = c_.hidden_size;
    const auto eps = static_cast<float>(c_.norm_eps);
    switch (c_.norm) {
      case NormKind::kRms:
        return b_.rms_norm(name, x, b_.constant(name + ".w", w_.vector(base + ".weight", d)), std::nullopt, eps);
      case NormKind::kRmsOnePlus:
        return b_.rms_norm(name, x, b_.constant(name + ".w", plus_one(w_.vector(base + ".weight", d))), std::nullopt,
                           eps);
      case NormKind::kLayer:
        return b_.layer_norm(name, x, b_.constant(name + ".w", w_.vector(base + ".weight", d)),
                             b_.constant(name + ".b", w_.vector(base + ".bias", d)), eps);
    }
    throw Error(ErrorCode::kInternal, "unknown norm kind");
  }

  std::optional<Value> bias(const std::string& name, const std::string& tensor, std::int64_t n, bool present) {
    if (!present) return std::nullopt;
    return b_.constant(name, w_.vector(tensor, n));
  }

  // Per-head RMSNorm of q or k [B, S, heads·D] (Qwen3), weight [D].
  Value head_norm(const std::string& name, Value t, int heads, const std::string& tensor) {
    const std::int64_t dim = c_.head_dim;
    const Value split = b_.reshape(name + ".heads", t, {0, 0, heads, dim});
    const Value n = b_.rms_norm(name, split, b_.constant(name + ".w", w_.vector(tensor, dim)), std::nullopt,
                                static_cast<float>(c_.norm_eps));
    return b_.reshape(name + ".rows", n, {0, 0, heads * dim});
  }

  Value layer(int i, Value x) {
    const std::string p = "layer" + std::to_string(i) + ".";
    const std::int64_t d = c_.hidden_size, dim = c_.head_dim, ffn = c_.intermediate_size;
    const int heads = c_.num_heads, kv_heads = c_.num_kv_heads;
    const std::int64_t q_width = heads * dim, kv_width = kv_heads * dim;
    const bool gpt2 = w_.gpt2();
    const auto hf = [&](const std::string& part) { return w_.layer(i, part); };

    // Attention half.
    const Value h = norm(p + "attn_norm", x, hf(gpt2 ? "ln_1" : "input_layernorm"));
    Value q, k, v;
    if (w_.in_place()) {  // three products on the checkpoint's own tensors (a fused one would be a copy)
      q = projection(p + "q", h, hf("self_attn.q_proj.weight"), d, q_width,
                     bias(p + "q.b", hf("self_attn.q_proj.bias"), q_width, c_.qkv_bias));
      k = projection(p + "k", h, hf("self_attn.k_proj.weight"), d, kv_width,
                     bias(p + "k.b", hf("self_attn.k_proj.bias"), kv_width, c_.qkv_bias));
      v = projection(p + "v", h, hf("self_attn.v_proj.weight"), d, kv_width,
                     bias(p + "v.b", hf("self_attn.v_proj.bias"), kv_width, c_.qkv_bias));
    } else {
      Tensor w_qkv, b_qkv;
      if (gpt2) {
        w_qkv = w_.conv1d(hf("attn.c_attn.weight"), d, 3 * d);
        if (c_.qkv_bias) b_qkv = w_.vector(hf("attn.c_attn.bias"), 3 * d);
      } else {
        w_qkv = concat_columns({w_.linear(hf("self_attn.q_proj.weight"), d, q_width),
                                w_.linear(hf("self_attn.k_proj.weight"), d, kv_width),
                                w_.linear(hf("self_attn.v_proj.weight"), d, kv_width)});
        if (c_.qkv_bias) {
          b_qkv = concat_vectors({w_.vector(hf("self_attn.q_proj.bias"), q_width),
                                  w_.vector(hf("self_attn.k_proj.bias"), kv_width),
                                  w_.vector(hf("self_attn.v_proj.bias"), kv_width)});
        }
      }
      const std::optional<Value> qkv_b =
          c_.qkv_bias ? std::optional<Value>(b_.constant(p + "qkv.b", b_qkv)) : std::nullopt;
      const Value qkv = b_.dense(p + "qkv", h, b_.constant(p + "qkv.w", w_qkv), qkv_b);
      std::vector<Value> parts = b_.split(p + "qkv_split", qkv, -1, {q_width, kv_width, kv_width});
      q = parts[0];
      k = parts[1];
      v = parts[2];
    }
    if (c_.qk_norm) {
      q = head_norm(p + "q_norm", q, heads, hf("self_attn.q_norm.weight"));
      k = head_norm(p + "k_norm", k, kv_heads, hf("self_attn.k_norm.weight"));
    }
    const KvCache cache = b_.kv_cache(p + "kv_cache", {kv_heads, static_cast<int>(dim), max_context_});
    if (c_.positions == PositionKind::kRope) {  // at each token's own position (padding shifts a row's)
      RopeOptions q_rope{heads, static_cast<int>(dim), c_.rope_theta, HeadLayout::kTokenMajor, inv_freq_};
      RopeOptions k_rope{kv_heads, static_cast<int>(dim), c_.rope_theta, HeadLayout::kTokenMajor, inv_freq_};
      q = b_.rope(p + "q_rope", q, positions_, q_rope);
      k = b_.rope(p + "k_rope", k, positions_, k_rope);
    }
    const KvCacheView kv = b_.kv_cache_append(p + "kv_append", cache, k, v);
    AttentionOptions attn;
    attn.causal = true;
    attn.causal_from_key_lengths = true;  // query i is at position past + i and sees keys 0 .. past + i
    attn.num_heads = heads;
    attn.num_kv_heads = kv_heads;
    // Mistral's sliding window (Hugging Face: causal and kv_idx > q_idx - sliding_window): at most
    // sliding_window keys, its own included. The cache still holds the whole context. Padding shifts a
    // row's cache rows and positions alike, so the band over cache rows is the band over positions.
    attn.window = c_.sliding_window;
    const Value context =
        b_.attention(p + "attn", q, kv.keys, kv.values, std::nullopt, kv.key_lengths, attn, left_padding_);
    const Value attn_out =
        gpt2 ? b_.dense(p + "o_proj", context, b_.constant(p + "o_proj.w", w_.conv1d(hf("attn.c_proj.weight"), d, d)),
                        bias(p + "o_proj.b", hf("attn.c_proj.bias"), d, c_.o_bias))
             : projection(p + "o_proj", context, hf("self_attn.o_proj.weight"), q_width, d,
                          bias(p + "o_proj.b", hf("self_attn.o_proj.bias"), d, c_.o_bias));
    const Value x1 = b_.add(p + "attn_residual", x, attn_out);

    // MLP half.
    const Value h2 = norm(p + "mlp_norm", x1, hf(gpt2 ? "ln_2" : "post_attention_layernorm"));
    Value down;
    if (c_.gated_mlp) {  // act(h·W_gate) ⊙ (h·W_up): the output-gating quark (fused into one gated_dense)
      const Value gate = projection(p + "gate", h2, hf("mlp.gate_proj.weight"), d, ffn,
                                    bias(p + "gate.b", hf("mlp.gate_proj.bias"), ffn, c_.mlp_bias));
      const Value up = projection(p + "up", h2, hf("mlp.up_proj.weight"), d, ffn,
                                  bias(p + "up.b", hf("mlp.up_proj.bias"), ffn, c_.mlp_bias));
      const Value act = b_.output_gate(p + "glu", gate, up, c_.activation, Activation::identity());
      down = projection(p + "down", act, hf("mlp.down_proj.weight"), ffn, d,
                        bias(p + "down.b", hf("mlp.down_proj.bias"), d, c_.mlp_bias));
    } else {  // GPT-2: act(h·W_fc + b)·W_proj + b
      const Value fc = b_.dense(p + "fc", h2, b_.constant(p + "fc.w", w_.conv1d(hf("mlp.c_fc.weight"), d, ffn)),
                                bias(p + "fc.b", hf("mlp.c_fc.bias"), ffn, c_.mlp_bias), c_.activation);
      down = b_.dense(p + "down", fc, b_.constant(p + "down.w", w_.conv1d(hf("mlp.c_proj.weight"), ffn, d)),
                      bias(p + "down.b", hf("mlp.c_proj.bias"), d, c_.mlp_bias));
    }
    return b_.add(p + "out", x1, down);
  }

  const DecoderConfig& c_;
  Weights w_;
  std::int64_t max_context_;
  Value positions_, left_padding_;  // graph inputs every layer reads
  std::vector<double> inv_freq_ =
      c_.positions == PositionKind::kRope ? rope_inverse_frequencies(c_) : std::vector<double>{};
  GraphBuilder b_;
};

}  // namespace

bool linear_weights_are_bf16(const DecoderConfig& config, const Checkpoint& weights) {
  const std::shared_ptr<const Checkpoint> unowned(&weights, [](const Checkpoint*) {});
  const Weights w(unowned, config, true);
  if (!w.in_place()) return false;
  const StoredTensor* embed = weights.find(w.prefix() + "embed_tokens.weight");
  const StoredTensor* q = weights.find(w.layer(0, "self_attn.q_proj.weight"));
  return embed != nullptr && embed->dtype == "BF16" && (q == nullptr || q->dtype == "BF16");
}

Graph build_decoder_graph(const DecoderConfig& config, std::shared_ptr<const Checkpoint> weights,
                          std::int64_t max_context, bool weights_in_place) {
  if (max_context < 1) {
    throw Error(ErrorCode::kInvalidArgument, "max_context " + std::to_string(max_context) + " must be >= 1");
  }
  if (config.positions == PositionKind::kLearned && max_context > config.max_position_embeddings) {
    throw Error(ErrorCode::kInvalidArgument, "max_context " + std::to_string(max_context) + " exceeds the " +
                                                 std::to_string(config.max_position_embeddings) +
                                                 " learned positions of this " + config.architecture);
  }
  return DecoderBuilder(config, std::move(weights), max_context, weights_in_place).build();
}

}  // namespace quarks::models
