// Schema of the attention family: attention(q, k, v [, mask] [, key_lengths] [, key_starts]) in the 4-D
// layout [B, H, S, D] or the 3-D layout [B, S, H·D] (heads read with strides), and attention_qkv(qkv
// [, mask] [, key_lengths] [, key_starts]) on one packed [B, S, (Hq + 2·Hkv)·D] tensor (q, k and v read
// in place at offsets).
#include <cmath>

#include "ops/attention/attention_kernel.hpp"
#include "ops/contract/shape_utils.hpp"
#include "ops/op_schemas.hpp"

namespace quarks::detail {
namespace {

int no_in_place(const Node&) { return -1; }

std::string dim_text(const SymDim& d) {
  return d.known() ? std::to_string(d.value) : d.symbol.empty() ? "?" : d.symbol;
}

// Tensor inputs before the optional ones: q, k, v, or the one packed qkv.
int tensor_inputs(const AttentionAttrs& a) { return a.packed_qkv ? 1 : 3; }
// Input positions of the optional inputs (-1 when absent).
int mask_index(const AttentionAttrs& a) { return a.has_mask ? tensor_inputs(a) : -1; }
int lengths_index(const AttentionAttrs& a) { return a.has_key_lengths ? tensor_inputs(a) + (a.has_mask ? 1 : 0) : -1; }
int starts_index(const AttentionAttrs& a) {
  return a.has_key_starts ? tensor_inputs(a) + (a.has_mask ? 1 : 0) + (a.has_key_lengths ? 1 : 0) : -1;
}

void check_arity(const Node& node) {
  const AttentionAttrs& a = node.attr<AttentionAttrs>();
  const std::size_t expected =
      tensor_inputs(a) + (a.has_mask ? 1 : 0) + (a.has_key_lengths ? 1 : 0) + (a.has_key_starts ? 1 : 0);
  if (node.inputs.size() != expected) {
    attr_error(node, "expects " + std::to_string(expected) + " inputs, got " + std::to_string(node.inputs.size()));
  }
}

// The dims of one attention: what every check and the compile step need.
struct Dims {
  bool three_d = false;
  SymDim batch, q_heads, kv_heads, q_len, kv_len, head_dim;
};

SymDim known(std::int64_t v) { return SymDim{v, {}}; }

// The role of tensor input i: "q", "k", "v" or "qkv".
const char* role(const AttentionAttrs& a, std::size_t i) {
  static const char* const kRoles[] = {"q", "k", "v"};
  return a.packed_qkv ? "qkv" : kRoles[i];
}

// "q 'x' [2,8,17,64]"
std::string describe_input(const Node& node, const GraphIR& g, std::span<const SymShape> in, std::size_t i) {
  return std::string(role(node.attr<AttentionAttrs>(), i)) + " '" + input_name(node, g, i) + "' " + to_string(in[i]);
}

// Packed qkv [B, S, (Hq + 2·Hkv)·D]: the heads come from the options, D from the width.
Dims infer_packed_dims(const Node& node, const GraphIR& g, std::span<const SymShape> in) {
  const AttentionAttrs& a = node.attr<AttentionAttrs>();
  const SymShape& qkv = in[0];
  if (qkv.size() != 3) {
    shape_error(node, describe_input(node, g, in, 0) + ": attention_qkv takes qkv as [B, S, (Hq + 2*Hkv)*D]");
  }
  if (a.num_heads == 0) {
    attr_error(node,
               describe_input(node, g, in, 0) + " is packed [B, S, (Hq + 2*Hkv)*D]: options.num_heads must give Hq");
  }
  const int kv_heads = a.num_kv_heads != 0 ? a.num_kv_heads : a.num_heads;
  if (a.num_heads % kv_heads != 0) {
    attr_error(node, "num_heads " + std::to_string(a.num_heads) + " is not a multiple of num_kv_heads " +
                         std::to_string(kv_heads));
  }
  Dims d;
  d.three_d = true;
  d.batch = qkv[0];
  d.q_len = d.kv_len = qkv[1];
  d.q_heads = known(a.num_heads);
  d.kv_heads = known(kv_heads);
  if (qkv[2].known()) {
    const std::int64_t heads = a.num_heads + 2 * std::int64_t{kv_heads};
    if (qkv[2].value % heads != 0) {
      shape_error(node, "hidden size " + std::to_string(qkv[2].value) + " of " + describe_input(node, g, in, 0) +
                            " is not divisible by num_heads + 2 * num_kv_heads = " + std::to_string(heads));
    }
    d.head_dim = known(qkv[2].value / heads);
  }
  return d;
}

// q [B, Sq, Hq·D] (num_heads given) with k and v [B, Hkv, Sk, D].
Dims infer_mixed_dims(const Node& node, const GraphIR& g, std::span<const SymShape> in) {
  const AttentionAttrs& a = node.attr<AttentionAttrs>();
  const SymShape &q = in[0], &k = in[1], &v = in[2];
  if (a.num_heads == 0) {
    attr_error(node,
               describe_input(node, g, in, 0) + " is in the 3-D layout [B, Sq, Hq*D]: options.num_heads must give Hq");
  }
  Dims d;
  d.three_d = true;
  d.batch = q[0];
  d.q_heads = known(a.num_heads);
  d.q_len = q[1];
  d.kv_heads = k[1];
  d.kv_len = k[2];
  d.head_dim = k[3];
  for (std::size_t i = 1; i < 3; ++i) {
    if (!may_equal(in[i][0], q[0])) {
      shape_error(node,
                  "batch sizes differ: " + describe_input(node, g, in, 0) + " and " + describe_input(node, g, in, i));
    }
  }
  if (!may_equal(k[1], v[1]) || !may_equal(k[2], v[2]) || !may_equal(k[3], v[3])) {
    shape_error(node, describe_input(node, g, in, 1) + " and " + describe_input(node, g, in, 2) +
                          " must have the same heads, length and head dim");
  }
  if (a.num_kv_heads != 0 && !may_equal(d.kv_heads, known(a.num_kv_heads))) {
    attr_error(node, "num_kv_heads " + std::to_string(a.num_kv_heads) + " does not match " +
                         describe_input(node, g, in, 1) + " (Hkv=" + dim_text(d.kv_heads) + ")");
  }
  if (d.kv_heads.known() && (d.kv_heads.value == 0 || a.num_heads % d.kv_heads.value != 0)) {
    shape_error(node, "num_heads " + std::to_string(a.num_heads) + " is not a multiple of the kv heads Hkv=" +
                          dim_text(d.kv_heads) + " of " + describe_input(node, g, in, 1));
  }
  if (q[2].known() && q[2].value % a.num_heads != 0) {
    shape_error(node, "hidden size " + std::to_string(q[2].value) + " of " + describe_input(node, g, in, 0) +
                          " is not divisible by num_heads " + std::to_string(a.num_heads));
  }
  const SymDim q_hidden = d.head_dim.known() ? known(d.head_dim.value * a.num_heads) : SymDim{};
  if (!may_equal(q[2], q_hidden)) {
    shape_error(node, describe_input(node, g, in, 0) + " has hidden size " + dim_text(q[2]) + " but " +
                          std::to_string(a.num_heads) + " heads of D=" + dim_text(d.head_dim) + " (from " +
                          describe_input(node, g, in, 1) + ") need " + dim_text(q_hidden));
  }
  if (d.head_dim.known() && d.head_dim.value == 0) {
    shape_error(node, describe_input(node, g, in, 1) + " has head_dim 0; attention needs D >= 1");
  }
  return d;
}

Dims infer_dims(const Node& node, const GraphIR& g, std::span<const SymShape> in) {
  const AttentionAttrs& a = node.attr<AttentionAttrs>();
  if (a.num_heads < 0 || a.num_kv_heads < 0) {
    attr_error(node, "num_heads (" + std::to_string(a.num_heads) + ") and num_kv_heads (" +
                         std::to_string(a.num_kv_heads) + ") must be >= 0");
  }
  if (a.has_scale && !std::isfinite(a.scale)) attr_error(node, "scale must be finite, got " + std::to_string(a.scale));
  if (a.causal_from_key_lengths && !(a.causal && a.has_key_lengths)) {
    attr_error(node, "causal_from_key_lengths needs causal and key_lengths");
  }
  if (a.window < 0) attr_error(node, "window must be >= 1 (0 = no window), got " + std::to_string(a.window));
  if (a.window > 0 && !a.causal) attr_error(node, "window " + std::to_string(a.window) + " needs causal");
  if (a.packed_qkv) {
    const Dims d = infer_packed_dims(node, g, in);
    if (d.head_dim.known() && d.head_dim.value == 0) {
      shape_error(node, describe_input(node, g, in, 0) + " has head_dim 0; attention needs D >= 1");
    }
    return d;
  }
  const SymShape &q = in[0], &k = in[1], &v = in[2];
  if (q.size() != 3 && q.size() != 4) {
    shape_error(node, describe_input(node, g, in, 0) +
                          ": attention takes q as [B, Hq, Sq, D] or [B, Sq, Hq*D] (with num_heads)");
  }
  // k and v share a rank: q's, or 4-D under a 3-D q (a KV cache [B, Hkv, Sk, D] read in place).
  const bool mixed = q.size() == 3 && k.size() == 4 && v.size() == 4;
  for (std::size_t i = 1; i < 3 && !mixed; ++i) {
    if (in[i].size() != q.size()) {
      shape_error(node, describe_input(node, g, in, i) + " must have the rank of " + describe_input(node, g, in, 0));
    }
  }
  Dims d;
  d.three_d = q.size() == 3;
  if (mixed) return infer_mixed_dims(node, g, in);
  d.batch = q[0];
  for (std::size_t i = 1; i < 3; ++i) {
    if (!may_equal(in[i][0], q[0])) {
      shape_error(node,
                  "batch sizes differ: " + describe_input(node, g, in, 0) + " and " + describe_input(node, g, in, i));
    }
  }
  if (!d.three_d) {
    d.q_heads = q[1];
    d.q_len = q[2];
    d.head_dim = q[3];
    d.kv_heads = k[1];
    d.kv_len = k[2];
    for (std::size_t i = 1; i < 3; ++i) {
      if (!may_equal(in[i][3], d.head_dim)) {
        shape_error(node, "head dims differ: " + describe_input(node, g, in, 0) + " has D=" + dim_text(d.head_dim) +
                              " but " + describe_input(node, g, in, i) + " has D=" + dim_text(in[i][3]));
      }
    }
    if (!may_equal(k[1], v[1]) || !may_equal(k[2], v[2])) {
      shape_error(node, describe_input(node, g, in, 1) + " and " + describe_input(node, g, in, 2) +
                            " must have the same heads and length");
    }
    if (a.num_heads != 0 && !may_equal(d.q_heads, known(a.num_heads))) {
      attr_error(node, "num_heads " + std::to_string(a.num_heads) + " does not match " +
                           describe_input(node, g, in, 0) + " (Hq=" + dim_text(d.q_heads) + ")");
    }
    if (a.num_kv_heads != 0 && !may_equal(d.kv_heads, known(a.num_kv_heads))) {
      attr_error(node, "num_kv_heads " + std::to_string(a.num_kv_heads) + " does not match " +
                           describe_input(node, g, in, 1) + " (Hkv=" + dim_text(d.kv_heads) + ")");
    }
    if (d.kv_heads.known() && d.kv_heads.value == 0) shape_error(node, describe_input(node, g, in, 1) + " has 0 heads");
    if (d.q_heads.known() && d.kv_heads.known() && d.q_heads.value % d.kv_heads.value != 0) {
      shape_error(node, "query heads Hq=" + dim_text(d.q_heads) + " of " + describe_input(node, g, in, 0) +
                            " are not a multiple of the kv heads Hkv=" + dim_text(d.kv_heads) + " of " +
                            describe_input(node, g, in, 1));
    }
  } else {
    if (a.num_heads == 0) {
      attr_error(
          node, describe_input(node, g, in, 0) + " is in the 3-D layout [B, Sq, Hq*D]: options.num_heads must give Hq");
    }
    const int kv_heads = a.num_kv_heads != 0 ? a.num_kv_heads : a.num_heads;
    if (a.num_heads % kv_heads != 0) {
      attr_error(node, "num_heads " + std::to_string(a.num_heads) + " is not a multiple of num_kv_heads " +
                           std::to_string(kv_heads));
    }
    d.q_heads = known(a.num_heads);
    d.kv_heads = known(kv_heads);
    d.q_len = q[1];
    d.kv_len = k[1];
    if (q[2].known()) {
      if (q[2].value % a.num_heads != 0) {
        shape_error(node, "hidden size " + std::to_string(q[2].value) + " of " + describe_input(node, g, in, 0) +
                              " is not divisible by num_heads " + std::to_string(a.num_heads));
      }
      d.head_dim = known(q[2].value / a.num_heads);
    }
    const SymDim kv_hidden = d.head_dim.known() ? known(d.head_dim.value * kv_heads) : SymDim{};
    for (std::size_t i = 1; i < 3; ++i) {
      if (!may_equal(in[i][2], kv_hidden)) {
        shape_error(node, describe_input(node, g, in, i) + " has hidden size " + dim_text(in[i][2]) + " but " +
                              std::to_string(kv_heads) + " kv heads of D=" + dim_text(d.head_dim) + " need " +
                              dim_text(kv_hidden));
      }
      if (!d.head_dim.known() && in[i][2].known() && in[i][2].value % kv_heads != 0) {
        shape_error(node, "hidden size " + std::to_string(in[i][2].value) + " of " + describe_input(node, g, in, i) +
                              " is not divisible by num_kv_heads " + std::to_string(kv_heads));
      }
    }
    if (!may_equal(k[1], v[1])) {
      shape_error(node, describe_input(node, g, in, 1) + " and " + describe_input(node, g, in, 2) +
                            " must have the same length");
    }
  }
  if (d.head_dim.known() && d.head_dim.value == 0) {
    shape_error(node, describe_input(node, g, in, 0) + " has head_dim 0; attention needs D >= 1");
  }
  return d;
}

std::vector<SymShape> infer_attention(const Node& node, const GraphIR& g, std::span<const SymShape> in) {
  check_arity(node);
  const AttentionAttrs& a = node.attr<AttentionAttrs>();
  const Dims d = infer_dims(node, g, in);
  if (const int mi = mask_index(a); mi >= 0) {
    const SymShape& mask = in[mi];
    const SymShape target{d.batch, d.q_heads, d.q_len, d.kv_len};
    if (mask.size() > 4) {
      shape_error(node, "mask '" + input_name(node, g, mi) + "' " + to_string(mask) +
                            " has more than 4 dims; it must broadcast to [B, Hq, Sq, Sk] = " + to_string(target));
    }
    for (std::size_t j = 0; j < mask.size(); ++j) {
      const SymDim& t = target[4 - mask.size() + j];
      const bool one = mask[j].known() && mask[j].value == 1;
      if (!one && !may_equal(mask[j], t)) {
        shape_error(node, "mask '" + input_name(node, g, mi) + "' " + to_string(mask) +
                              " does not broadcast to [B, Hq, Sq, Sk] = " + to_string(target) + " (dim " +
                              std::to_string(4 - mask.size() + j) + ": " + dim_text(mask[j]) + " vs " + dim_text(t) +
                              ")");
      }
    }
  }
  for (const auto& [index, what] : {std::pair{lengths_index(a), "key_lengths"}, {starts_index(a), "key_starts"}}) {
    if (index < 0) continue;
    const SymShape& per_row = in[index];
    if (per_row.size() != 1 || !may_equal(per_row[0], d.batch)) {
      shape_error(node, std::string(what) + " '" + input_name(node, g, index) + "' has shape " + to_string(per_row) +
                            " but must be [B] = [" + dim_text(d.batch) + "]");
    }
  }
  if (a.packed_qkv) {
    const SymDim hidden = d.head_dim.known() ? known(d.q_heads.value * d.head_dim.value) : SymDim{};
    return {SymShape{d.batch, d.q_len, hidden}};
  }
  return {in[0]};
}

std::vector<DType> attention_dtypes(const Node& node, const GraphIR& g, std::span<const DType> in) {
  check_arity(node);
  const AttentionAttrs& a = node.attr<AttentionAttrs>();
  const int li = lengths_index(a), si = starts_index(a);
  for (std::size_t i = 0; i < in.size(); ++i) {
    const int at = static_cast<int>(i);
    const DType want = at == li || at == si ? DType::kI64 : DType::kF32;
    if (in[i] != want) {
      const std::string what = at < tensor_inputs(a) ? role(a, i)
                               : at == li            ? "key_lengths"
                               : at == si            ? "key_starts"
                                                     : "mask";
      throw Error(ErrorCode::kTypeMismatch, GraphIR::where(node) + what + " '" + input_name(node, g, i) + "' is " +
                                                to_string(in[i]) + " but must be " + to_string(want));
    }
  }
  return {DType::kF32};
}

// Where k and v are read: inputs 1 and 2, or input 0 (packed qkv) at element offsets.
struct KvSource {
  int k_input = 1, v_input = 2;
  std::int64_t k_offset = 0, v_offset = 0;
};

class AttentionOp final : public CompiledOp {
 public:
  AttentionOp(const CompileContext& ctx, const ops::AttentionConfig& cfg, const KvSource& kv)
      : kernel_(cfg),
        kv_(kv),
        mask_index_(mask_index(ctx.node.attr<AttentionAttrs>())),
        lengths_index_(lengths_index(ctx.node.attr<AttentionAttrs>())),
        starts_index_(starts_index(ctx.node.attr<AttentionAttrs>())) {
    range_ = " is outside [0, " + std::to_string(cfg.kv_len) + "] (Sk of " + role(ctx.node.attr<AttentionAttrs>(), 1) +
             " '" + input_name(ctx.node, ctx.graph, kv.k_input) + "' " + ctx.in[kv.k_input].to_string() + ")";
    if (lengths_index_ >= 0) {
      lengths_where_ =
          GraphIR::where(ctx.node) + "key_lengths '" + input_name(ctx.node, ctx.graph, lengths_index_) + "'";
    }
    if (starts_index_ >= 0) {
      starts_where_ = GraphIR::where(ctx.node) + "key_starts '" + input_name(ctx.node, ctx.graph, starts_index_) + "'";
    }
  }
  std::size_t scratch_bytes() const override { return kernel_.scratch_bytes(); }
  void run(const OpIO& io) const override {
    const std::int64_t* lengths = lengths_index_ >= 0 ? io.in_as<std::int64_t>(lengths_index_) : nullptr;
    const std::int64_t* starts = starts_index_ >= 0 ? io.in_as<std::int64_t>(starts_index_) : nullptr;
    check_range(lengths, lengths_where_);
    check_range(starts, starts_where_);
    // An empty tensor may have no buffer: no offset is applied to null.
    const auto at = [](const float* p, std::int64_t offset) { return p != nullptr ? p + offset : p; };
    kernel_.run(io.in_f32(0), at(io.in_f32(kv_.k_input), kv_.k_offset), at(io.in_f32(kv_.v_input), kv_.v_offset),
                mask_index_ >= 0 ? io.in_f32(mask_index_) : nullptr, lengths, io.out_f32(0), io.scratch, starts);
  }

 private:
  // Key lengths and starts must lie in [0, Sk]: an error naming the node, the input and the row.
  void check_range(const std::int64_t* values, const std::string& where) const {
    if (values == nullptr) return;
    const ops::AttentionConfig& c = kernel_.config();
    const std::int64_t b = ops::first_bad_key_length(values, c.batch, c.kv_len);
    if (b >= 0) {
      throw Error(ErrorCode::kInvalidArgument,
                  where + "[" + std::to_string(b) + "] = " + std::to_string(values[b]) + range_);
    }
  }

  ops::AttentionKernel kernel_;
  KvSource kv_;
  int mask_index_, lengths_index_, starts_index_;
  std::string lengths_where_, starts_where_, range_;
};

std::unique_ptr<CompiledOp> compile_attention(const CompileContext& ctx) {
  const AttentionAttrs& a = ctx.node.attr<AttentionAttrs>();
  const Shape& q = ctx.in[0];
  ops::AttentionConfig c;
  KvSource kv;
  c.batch = q[0];
  if (a.packed_qkv) {
    // [B, S, W] with W = (Hq + 2·Hkv)·D: query head h of row s starts at s·W + h·D, key head g at
    // s·W + (Hq + g)·D, value head g at s·W + (Hq + Hkv + g)·D. The output is [B, S, Hq·D].
    c.q_heads = a.num_heads;
    c.kv_heads = a.num_kv_heads != 0 ? a.num_kv_heads : a.num_heads;
    c.q_len = c.kv_len = q[1];
    const std::int64_t width = q[2];
    c.head_dim = width / (c.q_heads + 2 * c.kv_heads);
    c.q = c.k = c.v = ops::AttentionStrides{c.q_len * width, c.head_dim, width};
    c.out = ops::AttentionStrides{c.q_len * c.q_heads * c.head_dim, c.head_dim, c.q_heads * c.head_dim};
    kv = KvSource{0, 0, c.q_heads * c.head_dim, (c.q_heads + c.kv_heads) * c.head_dim};
  } else if (q.rank() == 3 && ctx.in[1].rank() == 4) {  // q [B, Sq, Hq·D] over a cache [B, Hkv, Sk, D]
    const Shape& k = ctx.in[1];
    c.q_heads = a.num_heads;
    c.kv_heads = k[1];
    c.q_len = q[1];
    c.kv_len = k[2];
    c.head_dim = k[3];
    c.q = c.out = ops::AttentionStrides{c.q_len * c.q_heads * c.head_dim, c.head_dim, c.q_heads * c.head_dim};
    c.k = c.v = ops::AttentionStrides{c.kv_heads * c.kv_len * c.head_dim, c.kv_len * c.head_dim, c.head_dim};
  } else if (q.rank() == 3) {
    const Shape& k = ctx.in[1];
    c.q_heads = a.num_heads;
    c.kv_heads = a.num_kv_heads != 0 ? a.num_kv_heads : a.num_heads;
    c.q_len = q[1];
    c.kv_len = k[1];
    c.head_dim = q[2] / c.q_heads;
    // [B, S, H·D]: head h of row s starts at s·H·D + h·D.
    const auto layout = [&](std::int64_t heads, std::int64_t len) {
      return ops::AttentionStrides{len * heads * c.head_dim, c.head_dim, heads * c.head_dim};
    };
    c.q = c.out = layout(c.q_heads, c.q_len);
    c.k = c.v = layout(c.kv_heads, c.kv_len);
  } else {
    const Shape& k = ctx.in[1];
    c.q_heads = q[1];
    c.kv_heads = k[1];
    c.q_len = q[2];
    c.kv_len = k[2];
    c.head_dim = q[3];
    const auto layout = [&](std::int64_t heads, std::int64_t len) {
      return ops::AttentionStrides{heads * len * c.head_dim, len * c.head_dim, c.head_dim};
    };
    c.q = c.out = layout(c.q_heads, c.q_len);
    c.k = c.v = layout(c.kv_heads, c.kv_len);
  }
  c.scale = a.has_scale ? a.scale : static_cast<float>(1.0 / std::sqrt(static_cast<double>(c.head_dim)));
  c.causal = a.causal;
  c.causal_from_key_lengths = a.causal_from_key_lengths;
  c.window = a.window;
  if (const int mi = mask_index(a); mi >= 0) {
    // Right-align the mask against [B, Hq, Sq, Sk]; its dims of size 1 broadcast (stride 0).
    const Shape& m = ctx.in[mi];
    std::int64_t strides[Shape::kMaxRank] = {};
    row_major_strides(m, strides);
    c.has_mask = true;
    for (int j = 0; j < m.rank(); ++j) {
      c.mask_strides[4 - m.rank() + j] = m[j] == 1 ? 0 : strides[j];
    }
  }
  c.has_key_lengths = a.has_key_lengths;
  c.has_key_starts = a.has_key_starts;
  c.max_threads = ctx.threads;
  return std::make_unique<AttentionOp>(ctx, c, kv);
}

}  // namespace

const OpSchema kAttentionSchema{infer_attention, no_in_place, false, compile_attention, attention_dtypes};

}  // namespace quarks::detail
