// llama_decoder_layer (include/quarks/decoder_block.hpp): a Llama decoder layer as GraphBuilder calls.
#include <cstring>

#include "quarks/decoder_block.hpp"

namespace quarks {
namespace {

[[noreturn]] void layer_error(ErrorCode code, const std::string& name, const std::string& message) {
  throw Error(code, "llama_decoder_layer '" + name + "': " + message);
}

void check_weight(const std::string& layer, const char* what, const Tensor& t, const Shape& want) {
  if (t.empty_storage() && want.numel() > 0)
    layer_error(ErrorCode::kInvalidArgument, layer, std::string(what) + " is empty");
  if (t.dtype() != DType::kF32) {
    layer_error(ErrorCode::kTypeMismatch, layer,
                std::string(what) + " is " + to_string(t.dtype()) + " but must be f32");
  }
  if (!(t.shape() == want)) {
    layer_error(ErrorCode::kShapeMismatch, layer,
                std::string(what) + " is " + t.shape().to_string() + " but must be " + want.to_string());
  }
}

// [d, a] | [d, b] | [d, c] -> [d, a + b + c]: one dense for q, k and v.
Tensor concat_columns(const Tensor& a, const Tensor& b, const Tensor& c) {
  const std::int64_t rows = a.shape()[0];
  const std::int64_t na = a.shape()[1], nb = b.shape()[1], nc = c.shape()[1], n = na + nb + nc;
  Tensor out(DType::kF32, {rows, n});
  for (std::int64_t r = 0; r < rows; ++r) {
    float* dst = out.f32() + r * n;
    std::memcpy(dst, a.f32() + r * na, sizeof(float) * static_cast<std::size_t>(na));
    std::memcpy(dst + na, b.f32() + r * nb, sizeof(float) * static_cast<std::size_t>(nb));
    std::memcpy(dst + na + nb, c.f32() + r * nc, sizeof(float) * static_cast<std::size_t>(nc));
  }
  return out;
}

}  // namespace

Value llama_decoder_layer(GraphBuilder& b, const std::string& name, Value x, const LlamaLayerWeights& w,
                          const LlamaLayerOptions& o) {
  const std::vector<Dim> dims = b.dims(x);
  if (dims.size() != 3 || dims[2].is_symbolic() || b.dtype(x) != DType::kF32) {
    layer_error(ErrorCode::kShapeMismatch, name,
                "x is " + b.shape_string(x) + " " + to_string(b.dtype(x)) + " but must be f32 [B, S, d] with d fixed");
  }
  const std::int64_t d = dims[2].value;
  const int heads = o.num_heads;
  const int kv_heads = o.num_kv_heads != 0 ? o.num_kv_heads : o.num_heads;
  if (heads < 1 || kv_heads < 1 || heads % kv_heads != 0) {
    layer_error(ErrorCode::kInvalidArgument, name,
                "num_heads " + std::to_string(heads) + " must be >= 1 and a multiple of num_kv_heads " +
                    std::to_string(kv_heads));
  }
  if (o.head_dim == 0 && d % heads != 0) {
    layer_error(ErrorCode::kInvalidArgument, name,
                "head_dim 0 means d / num_heads, but d = " + std::to_string(d) + " is not divisible by " +
                    std::to_string(heads));
  }
  const std::int64_t head_dim = o.head_dim != 0 ? o.head_dim : d / heads;
  if (head_dim < 2 || head_dim % 2 != 0) {
    layer_error(ErrorCode::kInvalidArgument, name, "head_dim " + std::to_string(head_dim) + " must be even and >= 2");
  }
  if (o.max_cache_len < 0) {
    layer_error(ErrorCode::kInvalidArgument, name, "max_cache_len " + std::to_string(o.max_cache_len) + " is < 0");
  }
  const std::int64_t q_width = heads * head_dim, kv_width = kv_heads * head_dim;
  const std::int64_t ffn = w.w_gate.shape().rank() == 2 ? w.w_gate.shape()[1] : -1;
  check_weight(name, "attn_norm", w.attn_norm, {d});
  check_weight(name, "wq", w.wq, {d, q_width});
  check_weight(name, "wk", w.wk, {d, kv_width});
  check_weight(name, "wv", w.wv, {d, kv_width});
  check_weight(name, "wo", w.wo, {q_width, d});
  check_weight(name, "mlp_norm", w.mlp_norm, {d});
  if (ffn < 1)
    layer_error(ErrorCode::kShapeMismatch, name, "w_gate is " + w.w_gate.shape().to_string() + " but must be [d, ffn]");
  check_weight(name, "w_gate", w.w_gate, {d, ffn});
  check_weight(name, "w_up", w.w_up, {d, ffn});
  check_weight(name, "w_down", w.w_down, {ffn, d});

  const std::string p = name + ".";
  // Attention half.
  const Value h = b.rms_norm(p + "attn_norm", x, b.constant(p + "attn_norm.w", w.attn_norm), std::nullopt, o.rms_eps);
  const Value qkv = b.dense(p + "qkv", h, b.constant(p + "qkv.w", concat_columns(w.wq, w.wk, w.wv)));
  const std::vector<Value> parts = b.split(p + "qkv_split", qkv, -1, {q_width, kv_width, kv_width});
  RopeOptions q_rope{heads, static_cast<int>(head_dim), o.rope_theta, HeadLayout::kTokenMajor};
  RopeOptions k_rope{kv_heads, static_cast<int>(head_dim), o.rope_theta, HeadLayout::kTokenMajor};
  AttentionOptions attn;
  attn.causal = true;
  attn.num_heads = heads;
  attn.num_kv_heads = kv_heads;
  Value context;
  if (o.max_cache_len > 0) {
    const KvCache cache = b.kv_cache(p + "kv_cache", {kv_heads, static_cast<int>(head_dim), o.max_cache_len});
    const Value past = b.kv_cache_length(cache);  // position of this run's first token
    const Value q = b.rope(p + "q_rope", parts[0], past, q_rope);
    const Value k = b.rope(p + "k_rope", parts[1], past, k_rope);
    const KvCacheView kv = b.kv_cache_append(p + "kv_append", cache, k, parts[2]);
    attn.causal_from_key_lengths = true;  // query i is at position past + i and sees keys 0 .. past + i
    context = b.attention(p + "attn", q, kv.keys, kv.values, std::nullopt, kv.key_lengths, attn);
  } else {
    const Value q = b.rope(p + "q_rope", parts[0], std::int64_t{0}, q_rope);
    const Value k = b.rope(p + "k_rope", parts[1], std::int64_t{0}, k_rope);
    context = b.attention(p + "attn", q, k, parts[2], std::nullopt, std::nullopt, attn);
  }
  const Value attn_out = b.dense(p + "o_proj", context, b.constant(p + "o_proj.w", w.wo));
  const Value x1 = b.add(p + "attn_residual", x, attn_out);

  // MLP half: SwiGLU (the two products become one gated_dense at compile time).
  const Value h2 = b.rms_norm(p + "mlp_norm", x1, b.constant(p + "mlp_norm.w", w.mlp_norm), std::nullopt, o.rms_eps);
  const Value gate = b.dense(p + "gate", h2, b.constant(p + "gate.w", w.w_gate));
  const Value up = b.dense(p + "up", h2, b.constant(p + "up.w", w.w_up));
  const Value act = b.output_gate(p + "swiglu", gate, up, Activation::silu(), Activation::identity());
  const Value down = b.dense(p + "down", act, b.constant(p + "down.w", w.w_down));
  return b.add(p + "out", x1, down);
}

}  // namespace quarks
