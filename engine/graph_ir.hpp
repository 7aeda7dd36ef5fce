// The graph intermediate representation shared by the builder, the passes and the planner.
//
// Nodes are kept in topological order (a node's inputs are produced by earlier nodes or are graph
// inputs / constants); every pass preserves that order.
#pragma once

#include <cstdint>
#include <string>
#include <variant>
#include <vector>

#include "engine/op_kind.hpp"
#include "quarks/activation.hpp"
#include "quarks/graph.hpp"
#include "quarks/tensor.hpp"

namespace quarks::detail {

using ValueId = std::uint32_t;

/// A dimension known at build time: a size (value >= 0) or a symbol (value < 0). An empty symbol
/// means "known only at run time" (e.g. the -1 of a reshape of a symbolic shape).
struct SymDim {
  std::int64_t value = -1;
  std::string symbol;

  bool known() const noexcept { return value >= 0; }
  friend bool operator==(const SymDim&, const SymDim&) = default;
};
using SymShape = std::vector<SymDim>;

std::string to_string(const SymShape& s);
SymShape to_sym(const Shape& s);
/// Throws Error(kInternal) if a dim is not known.
Shape to_concrete(const SymShape& s);

// --- per-op attributes ----------------------------------------------------------------------------
struct NoAttrs {};
struct DenseAttrs {
  Activation f;
  bool has_bias = false;
};
struct GatedDenseAttrs {  // produced by fusion: f(x·W1 + b1) ⊙ g(x·W2 + b2)
  Activation f, g;
  bool has_bias1 = false, has_bias2 = false;
};
struct ActivationAttrs {
  Activation f;
};
struct MultiplexAttrs {
  Activation f;
  float lambda = 1.0f;
};
struct OutputGateAttrs {
  Activation f, g;
};
struct MatMulAttrs {
  bool trans_a = false, trans_b = false;
};
struct BinaryAttrs {
  BinaryOpKind op = BinaryOpKind::kAdd;
};
struct AxisAttrs {  // softmax, concat
  int axis = -1;
};
struct NormAttrs {
  float epsilon = 1e-5f;
  bool has_scale = false, has_bias = false;
};
struct ReshapeAttrs {
  std::vector<std::int64_t> shape;
};
struct TransposeAttrs {
  std::vector<int> perm;
};
struct SplitAttrs {
  int axis = 0;
  std::vector<std::int64_t> sizes;
};
struct SliceAttrs {
  std::vector<std::int64_t> starts, ends, steps;
  std::vector<int> axes;
};
struct ReduceAttrs {
  ReduceOpKind op = ReduceOpKind::kSum;
  std::vector<int> axes;  ///< as given: may be negative; empty = all axes
  bool keepdims = false;
};
struct GatherAttrs {
  int axis = 0;
};
struct UnaryAttrs {
  UnaryOpKind op = UnaryOpKind::kNeg;
  float a = 0.0f, b = 0.0f;  ///< clip: lo, hi; hard_sigmoid: alpha, beta
};
struct CastAttrs {
  DType to = DType::kF32;
};
struct ExpandAttrs {
  std::vector<std::int64_t> shape;
};
struct AttentionAttrs {     // inputs: q, k, v (or one packed qkv), then mask and key_lengths when present
  bool packed_qkv = false;  ///< one input [B, S, (Hq + 2·Hkv)·D] holds q, k and v (attention_qkv)
  bool causal = false;
  bool has_scale = false;  ///< false: 1/sqrt(head_dim)
  float scale = 1.0f;
  int num_heads = 0, num_kv_heads = 0;  ///< 0: from the shapes (4-D layout) / num_heads (num_kv_heads)
  bool has_mask = false, has_key_lengths = false;
};
using OpAttrs = std::variant<NoAttrs, DenseAttrs, GatedDenseAttrs, ActivationAttrs, MultiplexAttrs, OutputGateAttrs,
                             MatMulAttrs, BinaryAttrs, AxisAttrs, NormAttrs, ReshapeAttrs, TransposeAttrs, SplitAttrs,
                             SliceAttrs, ReduceAttrs, GatherAttrs, UnaryAttrs, CastAttrs, ExpandAttrs, AttentionAttrs>;

struct Node {
  OpKind op = OpKind::kActivation;
  std::string name;
  std::vector<ValueId> inputs;  ///< optional inputs (bias, scale) are present only when given
  std::vector<ValueId> outputs;
  OpAttrs attrs;

  template <class T>
  const T& attr() const {
    return std::get<T>(attrs);
  }
};

enum class ValueKind { kInput, kConstant, kIntermediate };

struct ValueInfo {
  std::string name;
  ValueKind kind = ValueKind::kIntermediate;
  SymShape shape;
  DType dtype = DType::kF32;
  int producer = -1;  ///< node index for intermediates
  Tensor data;        ///< constants only
};

struct GraphIR {
  std::vector<ValueInfo> values;
  std::vector<Node> nodes;
  std::vector<ValueId> inputs;
  std::vector<std::pair<std::string, ValueId>> outputs;

  ValueId add_value(ValueInfo v) {
    values.push_back(std::move(v));
    return static_cast<ValueId>(values.size() - 1);
  }
  /// "node 'ffn.up' (dense): " — the prefix of every error about a node.
  static std::string where(const Node& n);
};

/// One line per node: "name = op(inputs) -> shape", with fused epilogues shown ("dense+gelu").
std::string describe(const GraphIR& g);

}  // namespace quarks::detail
