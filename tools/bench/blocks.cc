#include "tools/bench/blocks.hpp"

#include <algorithm>
#include <cmath>
#include <random>

namespace quarks::bench {
namespace {

Tensor random_tensor(const Shape& shape, float scale, std::uint32_t seed) {
  Tensor t(DType::kF32, shape);
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(-scale, scale);
  float* p = t.f32();
  for (std::int64_t i = 0; i < t.numel(); ++i) p[i] = dist(rng);
  return t;
}

// The width of a block: --dmodel (or the block's default) split into --heads heads (default: heads of 64).
struct Width {
  std::int64_t d, heads, head_dim;
  float weight_scale;  // ~1/sqrt(d) for weights reading d inputs: keeps activations O(1)
};

Width block_width(const char* block, const BlockSize& size, std::int64_t default_d) {
  const std::int64_t d = size.dmodel > 0 ? size.dmodel : default_d;
  const std::int64_t heads = size.heads > 0 ? size.heads : std::max<std::int64_t>(1, d / 64);
  if (d % heads != 0) {
    throw Error(ErrorCode::kInvalidArgument, std::string("block ") + block + ": --dmodel " + std::to_string(d) +
                                                 " is not a multiple of --heads " + std::to_string(heads));
  }
  return {d, heads, d / heads, 1.0f / std::sqrt(static_cast<float>(d))};
}

// The token input of the dense blocks: [rows, d], or [batch, rows, d] for --batch above 1.
Shape rows_shape(const BlockSize& size, std::int64_t d) {
  return size.batch > 1 ? Shape{size.batch, size.rows, d} : Shape{size.rows, d};
}

std::vector<Dim> rows_dims(const BlockSize& size, std::int64_t d) {
  const Shape shape = rows_shape(size, d);
  return {shape.begin(), shape.end()};
}

std::string rows_text(const BlockSize& size) {
  return (size.batch > 1 ? std::to_string(size.batch) + "x" : "") + std::to_string(size.rows);
}

// SwiGLU feed-forward: down(silu(x·Wg) ⊙ (x·Wu)). The engine fuses the gate and up products into one
// gated dense whose output tiles are gated in cache.
BuiltBlock gated_mlp(const BlockSize& size) {
  const Width w = block_width("gated-mlp", size, 768);
  const std::int64_t d = w.d, h = 4 * d, m = size.batch * size.rows;
  GraphBuilder g;
  auto x = g.input("x", rows_dims(size, d));
  auto gate = g.dense("ffn.gate", x, g.constant("ffn.gate.w", random_tensor({d, h}, w.weight_scale, 1)));
  auto up = g.dense("ffn.up", x, g.constant("ffn.up.w", random_tensor({d, h}, w.weight_scale, 2)));
  auto hidden = g.output_gate("ffn.swiglu", gate, up, Activation::silu(), Activation::identity());
  const float ws_down = 1.0f / std::sqrt(static_cast<float>(h));
  g.output("y", g.dense("ffn.down", hidden, g.constant("ffn.down.w", random_tensor({h, d}, ws_down, 3))));
  BuiltBlock b{g.build(), {{"x", random_tensor(rows_shape(size, d), 1.0f, 4)}}};
  b.flops = 2.0 * m * d * h * 3;
  b.rows = static_cast<double>(m);
  b.shape = rows_text(size) + "x" + std::to_string(d) + "->2x" + std::to_string(h) + "->" + std::to_string(d);
  return b;
}

BuiltBlock dense_block(const BlockSize& size) {
  const Width w = block_width("dense", size, 768);
  const std::int64_t k = w.d, n = 4 * k, m = size.batch * size.rows;
  GraphBuilder g;
  auto x = g.input("x", rows_dims(size, k));
  g.output("y", g.dense("dense", x, g.constant("w", random_tensor({k, n}, w.weight_scale, 1)),
                        g.constant("b", random_tensor({n}, 0.1f, 2))));
  BuiltBlock b{g.build(), {{"x", random_tensor(rows_shape(size, k), 1.0f, 3)}}};
  b.flops = 2.0 * m * k * n;
  b.rows = static_cast<double>(m);
  b.shape = rows_text(size) + "x" + std::to_string(k) + "->" + std::to_string(n);
  return b;
}

// Memory-bound quark kernels on `elements` floats (the plan counts their bytes: streams × 4 × elements).
BuiltBlock output_gate_block(const BlockSize& size) {
  const std::int64_t n = size.elements;
  GraphBuilder g;
  auto s1 = g.input("s1", {n});
  auto s2 = g.input("s2", {n});
  g.output("y", g.output_gate("gate", s1, s2, Activation::identity(), Activation::sigmoid()));
  BuiltBlock b{g.build(), {{"s1", random_tensor({n}, 4.0f, 1)}, {"s2", random_tensor({n}, 4.0f, 2)}}};
  b.shape = std::to_string(n) + " floats";
  return b;
}

BuiltBlock square_block(const BlockSize& size) {
  const std::int64_t n = size.elements;
  GraphBuilder g;
  auto x = g.input("x", {n});
  g.output("y", g.activation("square", x, Activation::square()));
  BuiltBlock b{g.build(), {{"x", random_tensor({n}, 4.0f, 1)}}};
  b.shape = std::to_string(n) + " floats";
  return b;
}

BuiltBlock multiplex_block(const BlockSize& size) {
  const std::int64_t n = size.elements;
  GraphBuilder g;
  auto s = g.input("s", {n});
  auto a = g.input("a", {n});
  g.output("y", g.multiplex("multiplex", s, a, 0.5f, Activation::relu()));
  BuiltBlock b{g.build(), {{"s", random_tensor({n}, 4.0f, 1)}, {"a", random_tensor({n}, 4.0f, 2)}}};
  b.shape = std::to_string(n) + " floats";
  return b;
}

// Synaptic gating with one gate per input and row: (x ⊙ G)·W, W prepacked.
BuiltBlock synaptic_gate_block(const BlockSize& size) {
  const Width w = block_width("synaptic-gate", size, 768);
  const std::int64_t k = w.d, n = 4 * k, m = size.batch * size.rows;
  GraphBuilder g;
  auto x = g.input("x", {m, k});
  auto gate = g.input("gate", {m, k, 1});
  g.output("y", g.synaptic_gate("synaptic", x, g.constant("w", random_tensor({k, n}, w.weight_scale, 1)), gate));
  BuiltBlock b{g.build(), {{"x", random_tensor({m, k}, 1.0f, 2)}, {"gate", random_tensor({m, k, 1}, 1.0f, 3)}}};
  b.flops = 2.0 * m * k * n;
  b.rows = static_cast<double>(m);
  b.shape = std::to_string(m) + "x" + std::to_string(k) + "->" + std::to_string(n);
  return b;
}

// Flops of a dense product [m, k]·[k, n] and of one attention (Q·Kᵀ and P·V).
double dense_flops(std::int64_t m, std::int64_t k, std::int64_t n) { return 2.0 * m * k * n; }
double attention_flops(std::int64_t b, std::int64_t h, std::int64_t sq, std::int64_t sk, std::int64_t d, bool causal) {
  return 4.0 * b * h * sq * sk * d * (causal ? 0.5 : 1.0);
}

// BERT-base encoder layer (post-LN, GELU erf) on one sequence, built with the public blocks API: a fused
// QKV product read in place by the attention, epilogue-fused biases and GELU, layer_norm ops.
BuiltBlock encoder_block(const BlockSize& size) {
  const Width width = block_width("encoder", size, 768);
  const std::int64_t d = width.d, heads = width.heads, ffn = 4 * d, batch = size.batch;
  const std::int64_t seq = size.seq > 0 ? size.seq : 128;
  const float ws = width.weight_scale, ws_ffn = 1.0f / std::sqrt(static_cast<float>(ffn));  // activations stay O(1)
  EncoderLayerWeights w;
  w.attention.w_qkv = random_tensor({d, 3 * d}, ws, 1);
  w.attention.b_qkv = random_tensor({3 * d}, 0.1f, 2);
  w.attention.w_out = random_tensor({d, d}, ws, 3);
  w.attention.b_out = random_tensor({d}, 0.1f, 4);
  w.ln1_scale = random_tensor({d}, 1.0f, 5);
  w.ln1_bias = random_tensor({d}, 0.1f, 6);
  w.w_ffn1 = random_tensor({d, ffn}, ws, 7);
  w.b_ffn1 = random_tensor({ffn}, 0.1f, 8);
  w.w_ffn2 = random_tensor({ffn, d}, ws_ffn, 9);
  w.b_ffn2 = random_tensor({d}, 0.1f, 10);
  w.ln2_scale = random_tensor({d}, 1.0f, 11);
  w.ln2_bias = random_tensor({d}, 0.1f, 12);
  EncoderLayerOptions o;
  o.num_heads = static_cast<int>(heads);
  o.activation = Activation::gelu();
  o.norm_first = false;
  o.ln_eps = 1e-12f;  // BERT's
  GraphBuilder g;
  auto x = g.input("x", {batch, seq, d});
  g.output("y", transformer_encoder_layer(g, "layer", x, w, o));
  BuiltBlock b{g.build(), {{"x", random_tensor({batch, seq, d}, 1.0f, 13)}}};
  const std::int64_t m = batch * seq;
  b.rows = static_cast<double>(m);
  b.flops = dense_flops(m, d, 3 * d) + attention_flops(batch, heads, seq, seq, d / heads, false) +
            dense_flops(m, d, d) + dense_flops(m, d, ffn) + dense_flops(m, ffn, d);
  b.shape = std::to_string(batch) + "x" + std::to_string(seq) + "x" + std::to_string(d) + ", " + std::to_string(heads) +
            " heads, FFN " + std::to_string(ffn);
  return b;
}

// The attention core alone: softmax(Q·Kᵀ/8)·V on q, k, v [1, 12, seq, 64] (4-D layout).
BuiltBlock attention_block(const BlockSize& size) {
  const Width width = block_width("attention", size, 768);
  const std::int64_t batch = size.batch, heads = width.heads, dim = width.head_dim;
  const std::int64_t seq = size.seq > 0 ? size.seq : 512;
  GraphBuilder g;
  const Shape shape{batch, heads, seq, dim};
  AttentionOptions o;
  o.scale = 1.0f / std::sqrt(static_cast<float>(dim));
  g.output("y", g.attention("attention", g.input("q", {batch, heads, seq, dim}), g.input("k", {batch, heads, seq, dim}),
                            g.input("v", {batch, heads, seq, dim}), std::nullopt, std::nullopt, o));
  BuiltBlock b{g.build(),
               {{"q", random_tensor(shape, 1.0f, 1)},
                {"k", random_tensor(shape, 1.0f, 2)},
                {"v", random_tensor(shape, 1.0f, 3)}}};
  b.flops = attention_flops(batch, heads, seq, seq, dim, o.causal);
  b.rows = static_cast<double>(batch * seq);  // query rows
  b.shape = std::to_string(batch) + "x" + std::to_string(heads) + "x" + std::to_string(seq) + "x" + std::to_string(dim);
  return b;
}

// One Llama-style decoder layer in the shape of TinyLlama-1.1B (d 2048, 32 heads, 4 KV heads of 64, SwiGLU
// FFN 5632). prefill: a whole --seq prompt per run (causal, no cache). decode: one token per run against a
// KV cache that prepare() fills with a --seq prompt; each run appends its token, so the context grows
// from seq to seq + runs over the measurement.
BuiltBlock decoder_block(const BlockSize& size) {
  const Width width = block_width("decoder", size, 2048);
  // TinyLlama's proportions: 8 query heads per KV head (plain multi-head when heads is not a multiple of
  // 8) and an FFN of 2.75·d, rounded up to a multiple of 64.
  const std::int64_t d = width.d, heads = width.heads, kv_heads = heads % 8 == 0 ? heads / 8 : heads;
  const std::int64_t dim = width.head_dim, ffn = (d * 11 / 4 + 63) / 64 * 64, batch = size.batch;
  const std::int64_t seq = size.seq > 0 ? size.seq : 128;
  if (size.mode != "prefill" && size.mode != "decode") {
    throw Error(ErrorCode::kInvalidArgument,
                "block decoder: --mode must be prefill or decode, got '" + size.mode + "'");
  }
  const bool decode = size.mode == "decode";
  const float ws = width.weight_scale, ws_ffn = 1.0f / std::sqrt(static_cast<float>(ffn));  // ~1/sqrt(fan_in)
  LlamaLayerWeights w;
  w.attn_norm = random_tensor({d}, 1.0f, 1);
  w.wq = random_tensor({d, heads * dim}, ws, 2);
  w.wk = random_tensor({d, kv_heads * dim}, ws, 3);
  w.wv = random_tensor({d, kv_heads * dim}, ws, 4);
  w.wo = random_tensor({heads * dim, d}, ws, 5);
  w.mlp_norm = random_tensor({d}, 1.0f, 6);
  w.w_gate = random_tensor({d, ffn}, ws, 7);
  w.w_up = random_tensor({d, ffn}, ws, 8);
  w.w_down = random_tensor({ffn, d}, ws_ffn, 9);
  LlamaLayerOptions o;
  o.num_heads = static_cast<int>(heads);
  o.num_kv_heads = static_cast<int>(kv_heads);
  o.head_dim = static_cast<int>(dim);
  o.max_cache_len = decode ? seq + std::max<std::int64_t>(size.runs, 1) : 0;
  GraphBuilder g;
  auto x = g.input("x", {batch, "seq", d});
  g.output("y", llama_decoder_layer(g, "layer", x, w, o));
  const std::int64_t m = decode ? 1 : seq;
  BuiltBlock b{g.build(), {{"x", random_tensor({batch, m, d}, 1.0f, 10)}}};
  b.rows = static_cast<double>(batch * m);  // tokens
  const double dense = dense_flops(m, d, (heads + 2 * kv_heads) * dim) + dense_flops(m, heads * dim, d) +
                       dense_flops(m, d, 2 * ffn) + dense_flops(m, ffn, d);
  if (decode) {
    // The context a decode run sees, on average over the measurement.
    const std::int64_t ctx = seq + std::max<std::int64_t>(size.runs, 1) / 2;
    b.flops = dense + attention_flops(batch, heads, 1, ctx, dim, false);
    const Tensor prompt = random_tensor({batch, seq, d}, 1.0f, 11);
    b.prepare = [prompt](Session& s) {
      s.reset_state();
      s.run({{"x", prompt}});
    };
    b.shape = "decode 1 token at context " + std::to_string(seq) + ".." + std::to_string(seq + size.runs) + ", d " +
              std::to_string(d) + ", " + std::to_string(heads) + "/" + std::to_string(kv_heads) + " heads, FFN " +
              std::to_string(ffn);
  } else {
    b.flops = dense + attention_flops(batch, heads, seq, seq, dim, true);
    b.shape = "prefill " + std::to_string(batch) + "x" + std::to_string(seq) + ", d " + std::to_string(d) + ", " +
              std::to_string(heads) + "/" + std::to_string(kv_heads) + " heads, FFN " + std::to_string(ffn);
  }
  return b;
}

}  // namespace

const std::vector<BlockInfo>& builtin_blocks() {
  static const std::vector<std::string> dense = {"--rows", "--batch", "--dmodel"}, elementwise = {"--elements"},
                                        transformer = {"--seq", "--batch", "--dmodel", "--heads"},
                                        decoder = {"--seq", "--batch", "--dmodel", "--heads", "--mode"};
  static const std::vector<BlockInfo> blocks = {
      {"gated-mlp", "SwiGLU feed-forward 768->3072->768 (output gating fused into the up/gate product)", gated_mlp,
       dense},
      {"dense", "dense 768->3072 with bias (prepacked, TBB-tiled)", dense_block, dense},
      {"output-gate", "output gating y = s1 * sigmoid(s2) on 16M floats (memory-bound)", output_gate_block,
       elementwise},
      {"square", "quadratic activation y = x*x on 16M floats (memory-bound)", square_block, elementwise},
      {"multiplex", "multiplexing y = relu(s + 0.5*a) on 16M floats (memory-bound)", multiplex_block, elementwise},
      {"synaptic-gate", "synaptic gating (x*G)·W with per-input gates, 768->3072", synaptic_gate_block, dense},
      {"encoder", "BERT-base encoder layer (d 768, 12 heads, FFN 3072, GELU, post-LN), batch 1, --seq tokens (128)",
       encoder_block, transformer},
      {"attention", "fused attention softmax(Q·Kᵀ/8)·V, q/k/v [1,12,seq,64], --seq (512)", attention_block,
       transformer},
      {"decoder",
       "Llama-style decoder layer (TinyLlama shape: d 2048, GQA 32/4 heads, RoPE, SwiGLU 5632); --mode prefill "
       "(--seq prompt, 128) or decode (one token per run over a KV cache of --seq)",
       decoder_block, decoder},
  };
  return blocks;
}

const BlockInfo& find_block(const std::string& name) {
  std::string names;
  for (const BlockInfo& b : builtin_blocks()) {
    if (b.name == name) return b;
    names += (names.empty() ? "" : ", ") + b.name;
  }
  throw Error(ErrorCode::kNotFound, "unknown block '" + name + "' (built-in blocks: " + names + ")");
}

}  // namespace quarks::bench
