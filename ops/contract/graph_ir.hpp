// The graph intermediate representation shared by the builder, the passes and the planner.
//
// Nodes are kept in topological order (a node's inputs are produced by earlier nodes or are graph
// inputs / constants); every pass preserves that order.
#pragma once

#include <cstdint>
#include <string>
#include <variant>
#include <vector>

#include "ops/contract/op_kind.hpp"
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
  bool w_transposed = false;  ///< W is [N, K] (nn.Linear's layout: GraphBuilder::linear), used as Wᵀ
};
struct GatedDenseAttrs {  // produced by fusion: f(x·W1 + b1) ⊙ g(x·W2 + b2)
  Activation f, g;
  bool has_bias1 = false, has_bias2 = false;
  bool w_transposed = false;  ///< both W are [N, K] (see DenseAttrs)
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
struct AttentionAttrs {     // inputs: q, k, v (or one packed qkv), then mask, key_lengths, key_starts when present
  bool packed_qkv = false;  ///< one input [B, S, (Hq + 2·Hkv)·D] holds q, k and v (attention_qkv)
  bool causal = false;
  bool has_scale = false;  ///< false: 1/sqrt(head_dim)
  float scale = 1.0f;
  int num_heads = 0, num_kv_heads = 0;  ///< 0: from the shapes (4-D layout) / num_heads (num_kv_heads)
  bool has_mask = false, has_key_lengths = false;
  bool has_key_starts = false;           ///< i64 [B]: keys before key_starts[b] are ignored (a batch's left padding)
  bool causal_from_key_lengths = false;  ///< causal diagonal ends at key_lengths[b] instead of Sk
  std::int64_t window = 0;               ///< causal band: a query sees at most `window` keys (0 = no band)
};
struct RopeAttrs {                  // inputs: x, then the runtime offset (i64 [] or [1]) when has_offset_input
  int num_heads = 0, head_dim = 0;  ///< 0 (head-major layout only): from x's shape
  double theta = 10000.0;
  std::vector<double> inv_freq;  ///< D/2 inverse frequencies replacing theta^(-2d/D); empty: from theta
  bool head_major = false;       ///< x is [B, H, S, D]; else [B, S, H·D]
  std::int64_t offset = 0;       ///< position of token 0 when there is no offset input
  bool has_offset_input = false;
};
struct KvCacheAttrs {       // kv_cache_length (no inputs) and kv_cache_append (k, v, length)
  std::uint32_t cache = 0;  ///< index into GraphIR::caches
};
using OpAttrs =
    std::variant<NoAttrs, DenseAttrs, GatedDenseAttrs, ActivationAttrs, MultiplexAttrs, OutputGateAttrs, MatMulAttrs,
                 BinaryAttrs, AxisAttrs, NormAttrs, ReshapeAttrs, TransposeAttrs, SplitAttrs, SliceAttrs, ReduceAttrs,
                 GatherAttrs, UnaryAttrs, CastAttrs, ExpandAttrs, AttentionAttrs, RopeAttrs, KvCacheAttrs>;

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

/// An intermediate kept in a Session's state between runs instead of the arena: one part of a KV cache.
/// The planner gives such values ValueLocation::kState; nothing else may write them in place.
struct StateRef {
  enum class Part : std::uint8_t { kLength, kKeys, kValues };
  int cache = -1;  ///< index into GraphIR::caches, -1 for an ordinary value
  Part part = Part::kLength;
  bool valid() const noexcept { return cache >= 0; }
};

struct ValueInfo {
  std::string name;
  ValueKind kind = ValueKind::kIntermediate;
  SymShape shape;
  DType dtype = DType::kF32;
  int producer = -1;  ///< node index for intermediates
  Tensor data;        ///< constants only
  StateRef state;     ///< intermediates in the Session's state (KV caches)
};

/// A KV cache declared with GraphBuilder::kv_cache. Its state in a Session: the length (i64), keys and
/// values (f32 [B, num_kv_heads, max_len, head_dim] each).
struct KvCacheInfo {
  std::string name;
  int num_kv_heads = 0, head_dim = 0;
  std::int64_t max_len = 0;
  ValueId length = 0;  ///< output of the kv_cache_length node named after the cache
};

struct GraphIR {
  std::vector<ValueInfo> values;
  std::vector<Node> nodes;
  std::vector<ValueId> inputs;
  std::vector<std::pair<std::string, ValueId>> outputs;
  std::vector<KvCacheInfo> caches;

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
