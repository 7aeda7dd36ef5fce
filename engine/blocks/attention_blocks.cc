// Attention blocks (include/quarks/attention_blocks.hpp): multi-head attention and transformer encoder
// layers as compositions of public GraphBuilder ops.
//
// What they compile to (Model::describe()): the fused QKV projection is one dense+bias whose output
// attention_qkv reads in place; the feed-forward up product carries its activation in the epilogue
// (dense+bias+act); the norms are layer_norm ops. Left as separate passes: the residual adds, and for
// gated attention the gate product (dense+sigmoid, [B, S, H]) and its broadcast multiply.
#include "quarks/attention_blocks.hpp"

#include <string>
#include <vector>

#include "quarks/error.hpp"

namespace quarks {
namespace {

[[noreturn]] void fail(ErrorCode code, const std::string& block, const std::string& what) {
  throw Error(code, "attention block '" + block + "': " + what);
}

std::optional<Value> optional_constant(GraphBuilder& b, const std::string& name, const std::optional<Tensor>& t) {
  if (!t) return std::nullopt;
  return b.constant(name, *t);
}

// A [rows, cols] f32 weight; rows < 0 = not checked.
void check_matrix(const std::string& block, const char* what, const Tensor& t, std::int64_t rows) {
  if (t.dtype() != DType::kF32 || t.shape().rank() != 2 || (rows >= 0 && t.shape()[0] != rows)) {
    fail(ErrorCode::kShapeMismatch, block,
         std::string(what) + " is " + to_string(t.dtype()) + " " + t.shape().to_string() + " but must be f32 [" +
             (rows >= 0 ? std::to_string(rows) : std::string("in")) + ", out]");
  }
}

}  // namespace

Value multi_head_attention(GraphBuilder& b, const std::string& name, Value x, const MhaWeights& w, const MhaOptions& o,
                           std::optional<Value> mask, std::optional<Value> key_lengths) {
  const std::vector<Dim> xd = b.dims(x);
  if (xd.size() != 3) {
    fail(ErrorCode::kShapeMismatch, name, "x '" + b.shape_string(x) + "' must be [B, S, d]");
  }
  if (o.num_heads < 1 || o.num_kv_heads < 0) {
    fail(ErrorCode::kInvalidArgument, name,
         "num_heads (" + std::to_string(o.num_heads) + ") must be >= 1 and num_kv_heads (" +
             std::to_string(o.num_kv_heads) + ") >= 0");
  }
  const std::int64_t heads = o.num_heads, kv_heads = o.num_kv_heads != 0 ? o.num_kv_heads : o.num_heads;
  const std::int64_t d_model = xd[2].is_symbolic() ? -1 : xd[2].value;
  check_matrix(name, "w_qkv", w.w_qkv, d_model);
  const std::int64_t packed = w.w_qkv.shape()[1];
  if (packed % (heads + 2 * kv_heads) != 0 || packed == 0) {
    fail(ErrorCode::kShapeMismatch, name,
         "w_qkv " + w.w_qkv.shape().to_string() + " has " + std::to_string(packed) +
             " columns, which is not (num_heads + 2 * num_kv_heads) * head_dim with num_heads " +
             std::to_string(heads) + ", num_kv_heads " + std::to_string(kv_heads));
  }
  const std::int64_t head_dim = packed / (heads + 2 * kv_heads);
  check_matrix(name, "w_out", w.w_out, heads * head_dim);
  if (o.gated != w.w_gate.has_value()) {
    fail(ErrorCode::kInvalidArgument, name,
         o.gated ? "options.gated needs the gate weight w_gate [d, num_heads]"
                 : "w_gate is given but options.gated is false");
  }

  AttentionOptions ao;
  ao.causal = o.causal;
  ao.scale = o.scale;
  ao.num_heads = o.num_heads;
  ao.num_kv_heads = o.num_kv_heads;
  const Value qkv =
      b.dense(name + ".qkv", x, b.constant(name + ".qkv.w", w.w_qkv), optional_constant(b, name + ".qkv.b", w.b_qkv));
  Value a = b.attention_qkv(name + ".core", qkv, mask, key_lengths, ao);
  if (o.gated) {
    check_matrix(name, "w_gate", *w.w_gate, d_model);
    if (w.w_gate->shape()[1] != heads) {
      fail(
          ErrorCode::kShapeMismatch, name,
          "w_gate " + w.w_gate->shape().to_string() + " must have one column per head (" + std::to_string(heads) + ")");
    }
    // σ(x·W_g + b_g): [B, S, H], one gate per head and token, broadcast over the head's D values.
    const Value gate = b.dense(name + ".gate", x, b.constant(name + ".gate.w", *w.w_gate),
                               optional_constant(b, name + ".gate.b", w.b_gate), Activation::sigmoid());
    const Value per_head = b.reshape(name + ".heads", a, {0, 0, heads, head_dim});
    const Value gate_heads = b.reshape(name + ".gate.heads", gate, {0, 0, heads, 1});
    a = b.reshape(name + ".gated.merge", b.mul(name + ".gated", per_head, gate_heads), {0, 0, heads * head_dim});
  }
  return b.dense(name + ".out", a, b.constant(name + ".out.w", w.w_out),
                 optional_constant(b, name + ".out.b", w.b_out));
}

Value transformer_encoder_layer(GraphBuilder& b, const std::string& name, Value x, const EncoderLayerWeights& w,
                                const EncoderLayerOptions& o, std::optional<Value> mask,
                                std::optional<Value> key_lengths) {
  MhaOptions mo;
  mo.num_heads = o.num_heads;
  mo.num_kv_heads = o.num_kv_heads;
  mo.causal = o.causal;
  mo.gated = o.gated;
  const auto norm = [&](const std::string& part, Value v, const Tensor& scale, const Tensor& bias) {
    return b.layer_norm(name + "." + part, v, b.constant(name + "." + part + ".scale", scale),
                        b.constant(name + "." + part + ".bias", bias), o.ln_eps);
  };
  // FFN(h) = act(h·W1 + b1)·W2 + b2: bias and activation in the up product's epilogue.
  const auto ffn = [&](Value h) {
    const Value up = b.dense(name + ".ffn.up", h, b.constant(name + ".ffn.up.w", w.w_ffn1),
                             optional_constant(b, name + ".ffn.up.b", w.b_ffn1), o.activation);
    return b.dense(name + ".ffn.down", up, b.constant(name + ".ffn.down.w", w.w_ffn2),
                   optional_constant(b, name + ".ffn.down.b", w.b_ffn2));
  };
  if (o.norm_first) {
    const Value attn_in = norm("ln1", x, w.ln1_scale, w.ln1_bias);
    const Value h =
        b.add(name + ".res1", x, multi_head_attention(b, name + ".attn", attn_in, w.attention, mo, mask, key_lengths));
    return b.add(name + ".res2", h, ffn(norm("ln2", h, w.ln2_scale, w.ln2_bias)));
  }
  const Value h = norm(
      "ln1", b.add(name + ".res1", x, multi_head_attention(b, name + ".attn", x, w.attention, mo, mask, key_lengths)),
      w.ln1_scale, w.ln1_bias);
  return norm("ln2", b.add(name + ".res2", h, ffn(h)), w.ln2_scale, w.ln2_bias);
}

}  // namespace quarks
