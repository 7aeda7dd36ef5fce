// The attention blocks against PyTorch: nn.MultiheadAttention, nn.TransformerEncoderLayer and a causal
// GPT-style block written in plain torch, with fixed-seed parameters and float64 references made by
// make_block_fixtures.py (data/). Parameters are stored in PyTorch's layout and converted here the way
// a user would: nn.Linear weights [out, in] and in_proj_weight [3d, d] are transposed to [in, out].
//
// Bound: max |quarks - torch| <= 1e-4 · max |torch| per output. Measured (this machine, AVX2): at most
// about 1e-6 relative over every case (printed by each test).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "quarks/attention_blocks.hpp"
#include "quarks/quarks.hpp"
#include "tools/common/npy.hpp"

namespace quarks {
namespace {

constexpr double kRelTol = 1e-4;
const std::string kData = QUARKS_BLOCK_FIXTURES;

Tensor load(const std::string& folder, const std::string& name) {
  const std::string path = kData + "/" + folder + "/" + name + ".npy";
  return tools::to_tensor(tools::read_npy(path), path);
}

// A float64 reference output.
std::vector<double> load_reference(const std::string& folder, const std::string& name) {
  const tools::NpyArray a = tools::read_npy(kData + "/" + folder + "/" + name + ".npy");
  EXPECT_EQ(a.dtype, tools::NpyDType::kFloat64);
  std::vector<double> out(static_cast<std::size_t>(a.shape.numel()));
  std::memcpy(out.data(), a.data.data(), out.size() * sizeof(double));
  return out;
}

// PyTorch's [out, in] -> quarks' [in, out].
Tensor transposed(const Tensor& t) {
  const std::int64_t rows = t.shape()[0], cols = t.shape()[1];
  Tensor out(DType::kF32, {cols, rows});
  for (std::int64_t i = 0; i < rows; ++i)
    for (std::int64_t j = 0; j < cols; ++j) out.f32()[j * rows + i] = t.f32()[i * cols + j];
  return out;
}

// max |got - want| / max |want|.
double relative_error(const Tensor& got, const std::vector<double>& want) {
  EXPECT_EQ(static_cast<std::size_t>(got.numel()), want.size());
  double scale = 0.0, worst = 0.0;
  for (double w : want) scale = std::max(scale, std::fabs(w));
  for (std::size_t i = 0; i < want.size(); ++i) {
    const double g = got.f32()[i];
    if (std::isnan(g)) return INFINITY;
    worst = std::max(worst, std::fabs(g - want[i]));
  }
  return worst / scale;
}

// Compiles and runs a block on x (and the optional mask / key lengths), at 1 and 2 threads.
struct Inputs {
  Tensor x;
  std::optional<Tensor> mask, key_lengths;
};

using BlockFn = std::function<Value(GraphBuilder&, Value x, std::optional<Value> mask, std::optional<Value> lengths)>;

double run_and_compare(const BlockFn& block, const Inputs& in, const std::vector<double>& want,
                       const std::string& what) {
  double worst = 0.0;
  for (int threads : {1, 2}) {
    GraphBuilder g;
    auto x = g.input("x", {"batch", "seq", in.x.shape()[2]});  // symbolic batch and sequence
    std::optional<Value> mask, lengths;
    if (in.mask) mask = g.input("mask", {"seq", "seq"});
    if (in.key_lengths) lengths = g.input("key_lengths", {"batch"}, DType::kI64);
    g.output("y", block(g, x, mask, lengths));
    CompileOptions co;
    co.threads = threads;
    Model model = compile(g.build(), co);
    std::vector<NamedInput> inputs{{"x", in.x}};
    if (in.mask) inputs.push_back({"mask", *in.mask});
    if (in.key_lengths) inputs.push_back({"key_lengths", *in.key_lengths});
    const Tensor y = Session(model).run(inputs).at("y");
    EXPECT_EQ(y.shape(), in.x.shape()) << what;
    const double err = relative_error(y, want);
    EXPECT_LE(err, kRelTol) << what << " threads " << threads << "\n" << model.describe();
    worst = std::max(worst, err);
  }
  std::printf("%-48s relative error %.3g\n", what.c_str(), worst);
  return worst;
}

MhaWeights mha_weights(const std::string& folder, const std::string& prefix) {
  MhaWeights w;
  w.w_qkv = transposed(load(folder, prefix + "in_proj_weight"));  // [3d, d] -> [d, 3d]: q | k | v columns
  w.b_qkv = load(folder, prefix + "in_proj_bias");
  w.w_out = transposed(load(folder, prefix + "out_proj.weight"));
  w.b_out = load(folder, prefix + "out_proj.bias");
  return w;
}

TEST(AttentionBlocksTorch, MultiheadAttentionWithKeyPaddingAndAttnMask) {
  const MhaWeights w = mha_weights("mha", "");
  MhaOptions o;
  o.num_heads = 4;
  const BlockFn block = [&](GraphBuilder& g, Value x, std::optional<Value> mask, std::optional<Value> lengths) {
    return multi_head_attention(g, "mha", x, w, o, mask, lengths);
  };
  const Tensor x = load("mha", "x"), mask = load("mha", "attn_mask"), lengths = load("mha", "key_lengths");
  ASSERT_EQ(lengths.dtype(), DType::kI64);
  run_and_compare(block, {x}, load_reference("mha", "y"), "MultiheadAttention");
  run_and_compare(block, {x, std::nullopt, lengths}, load_reference("mha", "y_key_padding"),
                  "MultiheadAttention key_padding_mask");
  run_and_compare(block, {x, mask}, load_reference("mha", "y_attn_mask"), "MultiheadAttention attn_mask");
  run_and_compare(block, {x, mask, lengths}, load_reference("mha", "y_attn_mask_key_padding"),
                  "MultiheadAttention attn_mask + key_padding_mask");
}

TEST(AttentionBlocksTorch, TransformerEncoderLayerPostAndPreLnReluAndGelu) {
  EncoderLayerWeights w;
  w.attention = mha_weights("encoder", "self_attn.");
  w.ln1_scale = load("encoder", "norm1.weight");
  w.ln1_bias = load("encoder", "norm1.bias");
  w.w_ffn1 = transposed(load("encoder", "linear1.weight"));
  w.b_ffn1 = load("encoder", "linear1.bias");
  w.w_ffn2 = transposed(load("encoder", "linear2.weight"));
  w.b_ffn2 = load("encoder", "linear2.bias");
  w.ln2_scale = load("encoder", "norm2.weight");
  w.ln2_bias = load("encoder", "norm2.bias");
  const Tensor x = load("encoder", "x"), lengths = load("encoder", "key_lengths");
  for (bool norm_first : {false, true}) {
    for (bool gelu : {false, true}) {
      EncoderLayerOptions o;
      o.num_heads = 4;
      o.norm_first = norm_first;
      o.activation = gelu ? Activation::gelu() : Activation::relu();
      const BlockFn block = [&](GraphBuilder& g, Value xv, std::optional<Value> mask, std::optional<Value> len) {
        return transformer_encoder_layer(g, "layer", xv, w, o, mask, len);
      };
      const std::string tag = std::string(norm_first ? "pre" : "post") + "_" + (gelu ? "gelu" : "relu");
      run_and_compare(block, {x}, load_reference("encoder", "y_" + tag), "TransformerEncoderLayer " + tag);
      run_and_compare(block, {x, std::nullopt, lengths}, load_reference("encoder", "y_" + tag + "_key_padding"),
                      "TransformerEncoderLayer " + tag + " key_padding");
    }
  }
}

EncoderLayerWeights gpt_weights(const std::string& folder, bool gated) {
  EncoderLayerWeights w;
  w.attention.w_qkv = transposed(load(folder, "qkv.weight"));
  w.attention.b_qkv = load(folder, "qkv.bias");
  w.attention.w_out = transposed(load(folder, "proj.weight"));
  w.attention.b_out = load(folder, "proj.bias");
  if (gated) {
    w.attention.w_gate = transposed(load(folder, "gate.weight"));  // [H, d] -> [d, H]
    w.attention.b_gate = load(folder, "gate.bias");
  }
  w.ln1_scale = load(folder, "ln1.weight");
  w.ln1_bias = load(folder, "ln1.bias");
  w.w_ffn1 = transposed(load(folder, "fc1.weight"));
  w.b_ffn1 = load(folder, "fc1.bias");
  w.w_ffn2 = transposed(load(folder, "fc2.weight"));
  w.b_ffn2 = load(folder, "fc2.bias");
  w.ln2_scale = load(folder, "ln2.weight");
  w.ln2_bias = load(folder, "ln2.bias");
  return w;
}

TEST(AttentionBlocksTorch, CausalGptBlockAndItsGqaGatedVariant) {
  for (bool variant : {false, true}) {
    const std::string folder = variant ? "gpt_gqa_gated" : "gpt";
    const EncoderLayerWeights w = gpt_weights(folder, variant);
    EncoderLayerOptions o;
    o.num_heads = 4;
    o.num_kv_heads = variant ? 2 : 0;
    o.gated = variant;
    o.causal = true;
    o.norm_first = true;
    o.activation = Activation::gelu_tanh();
    const BlockFn block = [&](GraphBuilder& g, Value x, std::optional<Value> mask, std::optional<Value> len) {
      return transformer_encoder_layer(g, "block", x, w, o, mask, len);
    };
    run_and_compare(block, {load(folder, "x")}, load_reference(folder, "y"), "GPT block " + folder);
  }
}

}  // namespace
}  // namespace quarks
