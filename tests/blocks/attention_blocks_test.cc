// The attention blocks against the same computation built op by op from unfused quarks ops (separate q, k,
// v products, reshape/transpose to [B, H, S, D], repeated kv heads for GQA, matmul for the scores, an
// additive mask that spells out key lengths and causality, softmax, matmul, the gate as its own
// sigmoid and broadcast multiply), at awkward sizes; plus what the blocks compile to and their errors.
//
// Both graphs run in f32, so the bound is the same as against PyTorch: max |block - reference| <=
// 1e-4 · max |reference|. Measured (this machine, AVX2): below 1e-6 (printed per case).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <functional>
#include <limits>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "engine/test_util.hpp"
#include "quarks/attention_blocks.hpp"
#include "quarks/quarks.hpp"

namespace quarks {
namespace {

constexpr double kRelTol = 1e-4;
constexpr float kInf = std::numeric_limits<float>::infinity();

using test::random_tensor;

// Columns [begin, begin + count) of a [rows, cols] matrix, or elements of a vector.
Tensor columns(const Tensor& t, std::int64_t begin, std::int64_t count) {
  const bool vector = t.shape().rank() == 1;
  const std::int64_t rows = vector ? 1 : t.shape()[0], cols = t.shape()[t.shape().rank() - 1];
  Tensor out(DType::kF32, vector ? Shape{count} : Shape{rows, count});
  for (std::int64_t i = 0; i < rows; ++i)
    for (std::int64_t j = 0; j < count; ++j) out.f32()[i * count + j] = t.f32()[i * cols + begin + j];
  return out;
}

double relative_error(const Tensor& got, const Tensor& want) {
  EXPECT_EQ(got.shape(), want.shape());
  double scale = 0.0, worst = 0.0;
  for (std::int64_t i = 0; i < want.numel(); ++i) scale = std::max(scale, std::fabs(double(want.f32()[i])));
  for (std::int64_t i = 0; i < want.numel(); ++i) {
    const double g = got.f32()[i], w = want.f32()[i];
    if (std::isnan(g) || std::isnan(w)) return INFINITY;
    worst = std::max(worst, std::fabs(g - w));
  }
  return worst / scale;
}

struct MhaCase {
  std::int64_t batch, seq, d, heads, kv_heads, head_dim, d_out;
  bool causal = false, gated = false, user_mask = false, lengths = false, biases = true;
  std::string describe() const {
    return "B" + std::to_string(batch) + " S" + std::to_string(seq) + " d" + std::to_string(d) + " H" +
           std::to_string(heads) + "/" + std::to_string(kv_heads) + " D" + std::to_string(head_dim) + " out" +
           std::to_string(d_out) + (causal ? " causal" : "") + (gated ? " gated" : "") + (user_mask ? " mask" : "") +
           (lengths ? " lengths" : "") + (biases ? "" : " no-bias");
  }
};

MhaWeights random_mha(const MhaCase& c, std::uint32_t seed) {
  MhaWeights w;
  const float ws = 1.0f / std::sqrt(float(c.d));
  w.w_qkv = random_tensor({c.d, (c.heads + 2 * c.kv_heads) * c.head_dim}, seed, -ws, ws);
  w.w_out = random_tensor({c.heads * c.head_dim, c.d_out}, seed + 1, -0.5f, 0.5f);
  if (c.biases) {
    w.b_qkv = random_tensor({(c.heads + 2 * c.kv_heads) * c.head_dim}, seed + 2, -0.2f, 0.2f);
    w.b_out = random_tensor({c.d_out}, seed + 3, -0.2f, 0.2f);
  }
  if (c.gated) {
    w.w_gate = random_tensor({c.d, c.heads}, seed + 4, -ws * 2, ws * 2);
    if (c.biases) w.b_gate = random_tensor({c.heads}, seed + 5, -0.5f, 0.5f);
  }
  return w;
}

// x·W (+ b) as a dense without bias and a separate add.
Value linear(GraphBuilder& g, const std::string& n, Value x, const Tensor& w, const std::optional<Tensor>& b) {
  Value y = g.dense(n, x, g.constant(n + ".w", w));
  return b ? g.add(n + ".bias", y, g.constant(n + ".b", *b)) : y;
}

// Multi-head attention op by op; `mask` is the whole additive mask [B, 1, S, S] (user mask, key lengths
// and causality already in it).
Value reference_mha(GraphBuilder& g, const std::string& n, Value x, const MhaWeights& w, const MhaCase& c,
                    std::optional<Value> mask) {
  const std::int64_t b = c.batch, s = c.seq, h = c.heads, dh = c.head_dim;
  const auto heads_of = [&](const std::string& part, std::int64_t first, std::int64_t count) {
    const std::optional<Tensor> bias =
        w.b_qkv ? std::optional(columns(*w.b_qkv, first * dh, count * dh)) : std::nullopt;
    Value y = linear(g, n + "." + part, x, columns(w.w_qkv, first * dh, count * dh), bias);
    y = g.transpose(n + "." + part + ".t", g.reshape(n + "." + part + ".r", y, {b, s, count, dh}), {0, 2, 1, 3});
    if (count != h) {  // GQA: query head i reads kv head i / (H / Hkv), so each kv head repeats H / Hkv times
      y = g.reshape(n + "." + part + ".r5", y, {b, count, 1, s, dh});
      y = g.expand(n + "." + part + ".repeat", y, {b, count, h / count, s, dh});
      y = g.reshape(n + "." + part + ".r4", y, {b, h, s, dh});
    }
    return y;
  };
  const Value q = heads_of("q", 0, h), k = heads_of("k", h, c.kv_heads), v = heads_of("v", h + c.kv_heads, c.kv_heads);
  Value scores = g.matmul(n + ".scores", q, k, false, true);
  scores = g.mul(n + ".scaled", scores,
                 g.constant(n + ".scale", Tensor::from_f32({1}, {static_cast<float>(1.0 / std::sqrt(double(dh)))})));
  if (mask) scores = g.add(n + ".masked", scores, *mask);
  Value a = g.matmul(n + ".context", g.softmax(n + ".softmax", scores, -1), v);  // [B, H, S, D]
  if (c.gated) {
    Value gate =
        g.activation(n + ".gate.sigmoid", linear(g, n + ".gate", x, *w.w_gate, w.b_gate), Activation::sigmoid());
    gate = g.reshape(n + ".gate.r", g.transpose(n + ".gate.t", gate, {0, 2, 1}), {b, h, s, 1});
    a = g.mul(n + ".gated", a, gate);
  }
  a = g.reshape(n + ".merge", g.transpose(n + ".merge.t", a, {0, 2, 1, 3}), {b, s, h * dh});
  return linear(g, n + ".out", a, w.w_out, w.b_out);
}

// The user mask the block gets ([S, S], -inf only at keys >= 1 so that no row is fully hidden), the key
// lengths (>= 1), and the whole additive mask [B, 1, S, S] the reference gets.
struct Masks {
  Tensor user, lengths, whole;
};

Masks make_masks(const MhaCase& c, std::uint32_t seed) {
  Masks m;
  m.user = random_tensor({c.seq, c.seq}, seed, -2.0f, 1.0f);
  for (std::int64_t i = 0; i < m.user.numel(); ++i) {
    if (i % c.seq != 0 && m.user.f32()[i] < -1.6f) m.user.f32()[i] = -kInf;
  }
  std::vector<std::int64_t> lengths(static_cast<std::size_t>(c.batch));
  for (std::int64_t b = 0; b < c.batch; ++b) lengths[b] = b == 0 ? c.seq : 1 + (b * 7919) % c.seq;
  m.lengths = Tensor::from_i64({c.batch}, lengths);
  m.whole = Tensor(DType::kF32, {c.batch, 1, c.seq, c.seq});
  for (std::int64_t b = 0; b < c.batch; ++b) {
    for (std::int64_t i = 0; i < c.seq; ++i) {
      for (std::int64_t j = 0; j < c.seq; ++j) {
        float v = c.user_mask ? m.user.f32()[i * c.seq + j] : 0.0f;
        if ((c.lengths && j >= lengths[b]) || (c.causal && j > i)) v = -kInf;
        m.whole.f32()[(b * c.seq + i) * c.seq + j] = v;
      }
    }
  }
  return m;
}

// Builds the block (output "y") and its op-by-op reference (output "ref") in one graph, runs them on x
// at 1 and 2 threads and returns the largest relative error.
double compare(const MhaCase& c, const Shape& x_shape, std::uint32_t seed,
               const std::function<Value(GraphBuilder&, Value, std::optional<Value>, std::optional<Value>)>& block,
               const std::function<Value(GraphBuilder&, Value, std::optional<Value>)>& reference) {
  const Masks m = make_masks(c, seed);
  const Tensor x = random_tensor(x_shape, seed + 1, -2.0f, 2.0f);
  double worst = 0.0;
  for (int threads : {1, 2}) {
    GraphBuilder g;
    const Value xv = g.input("x", {"batch", "seq", x_shape[2]});
    std::optional<Value> user, lengths, whole;
    if (c.user_mask) user = g.input("mask", {"seq", "seq"});
    if (c.lengths) lengths = g.input("lengths", {"batch"}, DType::kI64);
    if (c.user_mask || c.lengths || c.causal) whole = g.input("whole_mask", {"batch", 1, "seq", "seq"});
    g.output("y", block(g, xv, user, lengths));
    g.output("ref", reference(g, xv, whole));
    CompileOptions co;
    co.threads = threads;
    Model model = compile(g.build(), co);
    std::vector<NamedInput> in{{"x", x}};
    if (c.user_mask) in.push_back({"mask", m.user});
    if (c.lengths) in.push_back({"lengths", m.lengths});
    if (whole) in.push_back({"whole_mask", m.whole});
    const auto out = Session(model).run(in);
    const double err = relative_error(out.at("y"), out.at("ref"));
    EXPECT_LE(err, kRelTol) << c.describe() << " threads " << threads;
    worst = std::max(worst, err);
  }
  return worst;
}

const std::vector<MhaCase>& mha_cases() {
  static const std::vector<MhaCase> cases = {
      // GQA 6/2 with head dim 6, output width 20, every feature at once
      {3, 13, 36, 6, 2, 6, 20, true, true, true, true, true},
      // one head of 5 (H·D != d), one token, no biases
      {2, 1, 8, 1, 1, 5, 3, false, false, false, false, false},
      // key lengths and a mask over more than one query tile; gate without its bias
      {1, 70, 48, 3, 3, 16, 48, false, true, true, true, false},
      // multi-query attention (one kv head), causal across key blocks
      {2, 130, 64, 4, 1, 16, 64, true, false, false, false, true},
  };
  return cases;
}

TEST(AttentionBlocks, MultiHeadAttentionMatchesTheOpByOpGraph) {
  std::uint32_t seed = 100;
  for (const MhaCase& c : mha_cases()) {
    const MhaWeights w = random_mha(c, seed);
    MhaOptions o;
    o.num_heads = static_cast<int>(c.heads);
    o.num_kv_heads = c.kv_heads == c.heads ? 0 : static_cast<int>(c.kv_heads);
    o.causal = c.causal;
    o.gated = c.gated;
    const double err = compare(
        c, {c.batch, c.seq, c.d}, seed + 10,
        [&](GraphBuilder& g, Value x, std::optional<Value> mask, std::optional<Value> lengths) {
          return multi_head_attention(g, "mha", x, w, o, mask, lengths);
        },
        [&](GraphBuilder& g, Value x, std::optional<Value> mask) { return reference_mha(g, "ref", x, w, c, mask); });
    std::printf("mha %-50s relative error %.3g\n", c.describe().c_str(), err);
    seed += 100;
  }
}

TEST(AttentionBlocks, EncoderLayerMatchesTheOpByOpGraph) {
  std::uint32_t seed = 900;
  for (int variant = 0; variant < 4; ++variant) {
    // post-LN GELU with key lengths; pre-LN ReLU with GQA, causal, gate and mask; post-LN gelu_tanh with
    // everything; pre-LN with one head and no biases.
    MhaCase c{3, 13, 36, 6, 6, 6, 36};
    c.lengths = variant != 3;
    c.causal = c.gated = c.user_mask = variant == 1 || variant == 2;
    c.biases = variant != 3;
    if (variant == 1) c.kv_heads = 3;
    if (variant == 3) c = MhaCase{2, 9, 20, 1, 1, 20, 20, false, false, false, false, false};
    const std::int64_t ffn = variant == 3 ? 7 : 50;
    EncoderLayerOptions o;
    o.num_heads = static_cast<int>(c.heads);
    o.num_kv_heads = static_cast<int>(c.kv_heads);
    o.causal = c.causal;
    o.gated = c.gated;
    o.norm_first = variant % 2 == 1;
    o.activation = variant == 0 ? Activation::gelu() : variant == 2 ? Activation::gelu_tanh() : Activation::relu();
    o.ln_eps = variant == 2 ? 1e-3f : 1e-5f;
    EncoderLayerWeights w;
    w.attention = random_mha(c, seed);
    w.ln1_scale = random_tensor({c.d}, seed + 20, 0.5f, 1.5f);
    w.ln1_bias = random_tensor({c.d}, seed + 21, -0.3f, 0.3f);
    w.ln2_scale = random_tensor({c.d}, seed + 22, 0.5f, 1.5f);
    w.ln2_bias = random_tensor({c.d}, seed + 23, -0.3f, 0.3f);
    const float ws = 1.0f / std::sqrt(float(c.d));
    w.w_ffn1 = random_tensor({c.d, ffn}, seed + 24, -ws, ws);
    w.w_ffn2 = random_tensor({ffn, c.d}, seed + 25, -0.3f, 0.3f);
    if (c.biases) {
      w.b_ffn1 = random_tensor({ffn}, seed + 26, -0.2f, 0.2f);
      w.b_ffn2 = random_tensor({c.d}, seed + 27, -0.2f, 0.2f);
    }
    const auto reference = [&](GraphBuilder& g, Value x, std::optional<Value> mask) {
      const auto norm = [&](const std::string& n, Value v, const Tensor& scale, const Tensor& bias) {
        return g.layer_norm(n, v, g.constant(n + ".s", scale), g.constant(n + ".b", bias), o.ln_eps);
      };
      const auto ffn_of = [&](Value h) {
        const Value up = g.activation("ref.act", linear(g, "ref.up", h, w.w_ffn1, w.b_ffn1), o.activation);
        return linear(g, "ref.down", up, w.w_ffn2, w.b_ffn2);
      };
      if (o.norm_first) {
        const Value h =
            g.add("ref.res1", x,
                  reference_mha(g, "ref.mha", norm("ref.ln1", x, w.ln1_scale, w.ln1_bias), w.attention, c, mask));
        return g.add("ref.res2", h, ffn_of(norm("ref.ln2", h, w.ln2_scale, w.ln2_bias)));
      }
      const Value h = norm("ref.ln1", g.add("ref.res1", x, reference_mha(g, "ref.mha", x, w.attention, c, mask)),
                           w.ln1_scale, w.ln1_bias);
      return norm("ref.ln2", g.add("ref.res2", h, ffn_of(h)), w.ln2_scale, w.ln2_bias);
    };
    const double err = compare(
        c, {c.batch, c.seq, c.d}, seed + 30,
        [&](GraphBuilder& g, Value x, std::optional<Value> mask, std::optional<Value> lengths) {
          return transformer_encoder_layer(g, "layer", x, w, o, mask, lengths);
        },
        reference);
    std::printf("encoder %s %s %-40s relative error %.3g\n", o.norm_first ? "pre-LN " : "post-LN",
                o.activation.to_string().c_str(), c.describe().c_str(), err);
    seed += 100;
  }
}

// ----- what the blocks compile to -------------------------------------------------------------------------

EncoderLayerWeights bert_like_weights(std::int64_t d, std::int64_t ffn) {
  EncoderLayerWeights w;
  w.attention.w_qkv = random_tensor({d, 3 * d}, 1);
  w.attention.b_qkv = random_tensor({3 * d}, 2);
  w.attention.w_out = random_tensor({d, d}, 3);
  w.attention.b_out = random_tensor({d}, 4);
  w.ln1_scale = w.ln2_scale = random_tensor({d}, 5);
  w.ln1_bias = w.ln2_bias = random_tensor({d}, 6);
  w.w_ffn1 = random_tensor({d, ffn}, 7);
  w.b_ffn1 = random_tensor({ffn}, 8);
  w.w_ffn2 = random_tensor({ffn, d}, 9);
  w.b_ffn2 = random_tensor({d}, 10);
  return w;
}

TEST(AttentionBlocks, EncoderLayerCompilesToFusedOpsOnly) {
  // BERT-style post-LN GELU layer: one fused QKV product read in place by attention, products with their
  // bias (and activation) in the epilogue, single layer_norm ops; nothing else but the residual adds.
  GraphBuilder g;
  auto x = g.input("x", {"batch", "seq", 64});
  auto lengths = g.input("lengths", {"batch"}, DType::kI64);
  EncoderLayerOptions o;
  o.num_heads = 4;
  o.activation = Activation::gelu();
  g.output("y", transformer_encoder_layer(g, "layer", x, bert_like_weights(64, 128), o, std::nullopt, lengths));
  const Model model = compile(g.build());
  EXPECT_EQ(model.describe(),
            "layer.attn.qkv = dense+bias(x, layer.attn.qkv.w, layer.attn.qkv.b) -> [batch,seq,192]\n"
            "layer.attn.core = attention[qkv](layer.attn.qkv, lengths) -> [batch,seq,64]\n"
            "layer.attn.out = dense+bias(layer.attn.core, layer.attn.out.w, layer.attn.out.b) -> [batch,seq,64]\n"
            "layer.res1 = binary(x, layer.attn.out) -> [batch,seq,64]\n"
            "layer.ln1 = layer_norm(layer.res1, layer.ln1.scale, layer.ln1.bias) -> [batch,seq,64]\n"
            "layer.ffn.up = dense+bias+gelu(layer.ln1, layer.ffn.up.w, layer.ffn.up.b) -> [batch,seq,128]\n"
            "layer.ffn.down = dense+bias(layer.ffn.up, layer.ffn.down.w, layer.ffn.down.b) -> [batch,seq,64]\n"
            "layer.res2 = binary(layer.ln1, layer.ffn.down) -> [batch,seq,64]\n"
            "layer.ln2 = layer_norm(layer.res2, layer.ln2.scale, layer.ln2.bias) -> [batch,seq,64]\n"
            "output y = layer.ln2\n");
}

TEST(AttentionBlocks, GatedAttentionAddsOneGateProductAndOneMultiply) {
  MhaCase c{1, 4, 16, 2, 1, 8, 16};
  c.gated = true;
  MhaOptions o;
  o.num_heads = 2;
  o.num_kv_heads = 1;
  o.causal = true;
  o.gated = true;
  GraphBuilder g;
  g.output("y", multi_head_attention(g, "attn", g.input("x", {2, 5, 16}), random_mha(c, 1), o));
  const Model model = compile(g.build());
  EXPECT_EQ(model.describe(),
            "attn.qkv = dense+bias(x, attn.qkv.w, attn.qkv.b) -> [2,5,32]\n"
            "attn.core = attention[qkv,causal](attn.qkv) -> [2,5,16]\n"
            "attn.gate = dense+bias+sigmoid(x, attn.gate.w, attn.gate.b) -> [2,5,2]\n"
            "attn.heads = reshape(attn.core) -> [2,5,2,8]\n"
            "attn.gate.heads = reshape(attn.gate) -> [2,5,2,1]\n"
            "attn.gated = binary(attn.heads, attn.gate.heads) -> [2,5,2,8]\n"
            "attn.gated.merge = reshape(attn.gated) -> [2,5,16]\n"
            "attn.out = dense+bias(attn.gated.merge, attn.out.w, attn.out.b) -> [2,5,16]\n"
            "output y = attn.out\n");
}

// ----- errors ----------------------------------------------------------------------------------------------

TEST(AttentionBlocks, ErrorsNameTheBlockAndTheWeight) {
  const auto expect_error = test::expect_build_error;
  const MhaCase c{1, 4, 16, 2, 2, 8, 16};
  const MhaWeights w = random_mha(c, 1);
  MhaOptions o;
  o.num_heads = 2;
  expect_error(
      [&](GraphBuilder& g) {
        multi_head_attention(g, "attn", g.input("x", {5, 16}), w, o);
      },
      ErrorCode::kShapeMismatch, "attention block 'attn': x '[5,16]' must be [B, S, d]");
  expect_error(
      [&](GraphBuilder& g) {
        MhaOptions bad = o;
        bad.num_heads = 0;
        multi_head_attention(g, "attn", g.input("x", {1, 5, 16}), w, bad);
      },
      ErrorCode::kInvalidArgument, "attention block 'attn': num_heads (0) must be >= 1");
  expect_error(
      [&](GraphBuilder& g) {
        multi_head_attention(g, "attn", g.input("x", {1, 5, 12}), w, o);
      },
      ErrorCode::kShapeMismatch, "attention block 'attn': w_qkv is f32 [16,48] but must be f32 [12, out]");
  expect_error(
      [&](GraphBuilder& g) {
        MhaOptions bad = o;
        bad.num_heads = 5;
        multi_head_attention(g, "attn", g.input("x", {1, 5, 16}), w, bad);
      },
      ErrorCode::kShapeMismatch,
      "w_qkv [16,48] has 48 columns, which is not (num_heads + 2 * num_kv_heads) * head_dim");
  expect_error(
      [&](GraphBuilder& g) {
        MhaOptions gated = o;
        gated.gated = true;
        multi_head_attention(g, "attn", g.input("x", {1, 5, 16}), w, gated);
      },
      ErrorCode::kInvalidArgument, "options.gated needs the gate weight w_gate [d, num_heads]");
  expect_error(
      [&](GraphBuilder& g) {
        MhaWeights bad = w;
        bad.w_out = random_tensor({12, 16}, 2);
        multi_head_attention(g, "attn", g.input("x", {1, 5, 16}), bad, o);
      },
      ErrorCode::kShapeMismatch, "w_out is f32 [12,16] but must be f32 [16, out]");
  expect_error(
      [&](GraphBuilder& g) {
        MhaWeights bad = w;
        bad.w_gate = random_tensor({16, 3}, 2);
        MhaOptions gated = o;
        gated.gated = true;
        multi_head_attention(g, "attn", g.input("x", {1, 5, 16}), bad, gated);
      },
      ErrorCode::kShapeMismatch, "w_gate [16,3] must have one column per head (2)");
}

}  // namespace
}  // namespace quarks
