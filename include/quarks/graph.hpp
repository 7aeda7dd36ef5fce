// quarks — building a graph of attention quarks and the ops around them.
//
//   quarks::GraphBuilder g;
//   auto x  = g.input("x", {"batch", 768});                       // symbolic batch dim
//   auto w1 = g.constant("ffn.gate.w", w_gate);                   // Tensor [768, 3072]
//   auto w2 = g.constant("ffn.up.w", w_up);
//   auto h  = g.output_gate("ffn.swiglu", g.dense("ffn.gate", x, w1), g.dense("ffn.up", x, w2),
//                           quarks::Activation::silu(), quarks::Activation::identity());
//   g.output("y", g.dense("ffn.down", h, g.constant("ffn.down.w", w_down)));
//   quarks::Graph graph = g.build();
//
// Every op method validates its inputs and infers the output shape immediately; a problem throws
// quarks::Error naming the node, the op and the reason. Node and value names must be unique. A value
// may have at most 2^48 elements, zero dims counted as 1 (checked at build time for fixed dims, at run
// time for symbolic ones).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "quarks/activation.hpp"
#include "quarks/tensor.hpp"

namespace quarks {

namespace detail {
struct GraphIR;
}

/// One dimension of a graph input: a fixed size, or a named symbol ("batch", "seq") whose size is
/// given by the tensors passed to Session::run. Inputs that share a symbol must agree at run time.
struct Dim {
  std::int64_t value = -1;  ///< >= 0 for a fixed size, -1 for a symbol
  std::string symbol;

  Dim(std::int64_t v) : value(v) {}             // NOLINT: implicit by design
  Dim(int v) : value(v) {}                      // NOLINT
  Dim(const char* s) : symbol(s) {}             // NOLINT
  Dim(std::string s) : symbol(std::move(s)) {}  // NOLINT
  bool is_symbolic() const noexcept { return value < 0; }
};

/// A handle to a value (tensor) inside the GraphBuilder that made it.
struct Value {
  std::uint32_t id = UINT32_MAX;
  bool valid() const noexcept { return id != UINT32_MAX; }
};

/// Elementwise arithmetic with NumPy broadcasting (f32). kPow: a^b as std::pow ((-2)^2 = 4, (-2)^0.5 =
/// NaN, x^0 = 1). kMax/kMin are IEEE 754-2019 maximum/minimum: NaN if either input is NaN, -0 < +0.
enum class BinaryOpKind { kAdd, kSub, kMul, kDiv, kPow, kMax, kMin };

/// Elementwise f32 functions, with C's special values (log(0) = -inf, log(x < 0) = NaN, sqrt(-0) = -0,
/// reciprocal(±0) = ±inf, exp overflows to +inf; NaN stays NaN). kClip and kHardSigmoid take
/// parameters: use GraphBuilder::clip and GraphBuilder::hard_sigmoid.
enum class UnaryOpKind { kNeg, kAbs, kExp, kLog, kSqrt, kReciprocal, kErf, kClip, kHardSigmoid };

/// Reductions over a set of axes (f32).
enum class ReduceOpKind { kSum, kMean, kMax, kMin };

/// Options of GraphBuilder::attention.
struct AttentionOptions {
  /// Query i sees keys j <= i + (Sk - Sq): aligned to the end, so Sq < Sk is a decode step over a KV
  /// cache (and with Sq > Sk the first Sq - Sk queries see no key).
  bool causal = false;
  /// Multiplies Q·Kᵀ; default 1/sqrt(head_dim). Must be finite.
  std::optional<float> scale;
  /// Query heads. Needed for the 3-D layout; with the 4-D layout 0 (taken from q) or equal to q's dim 1.
  int num_heads = 0;
  /// K/V heads (grouped-query attention: query head h reads kv head h / (num_heads / num_kv_heads)).
  /// 0 = num_heads in the 3-D layout, k's dim 1 in the 4-D layout.
  int num_kv_heads = 0;
  /// With causal and key_lengths: align the causal diagonal to the end of each batch's valid keys
  /// instead of Sk, so query i sees keys j <= i + (key_lengths[b] - Sq). This is a step over a KV cache
  /// (GraphBuilder::kv_cache_append) whose first key_lengths[b] rows are valid: the run's Sq queries are
  /// the last Sq positions. Keys past key_lengths[b] cost nothing.
  bool causal_from_key_lengths = false;
  /// Sliding-window (banded) causal attention, needs causal: a query at absolute position i (its causal
  /// diagonal) sees keys j with i - window < j <= i, i.e. at most `window` keys including its own, as
  /// Hugging Face's sliding_window_causal_mask_function (causal and kv_idx > q_idx - sliding_window,
  /// Mistral's sliding_window). Key blocks outside the band are skipped: a query costs O(window), not
  /// O(Sk). 0 = no window; otherwise >= 1.
  std::int64_t window = 0;
};

/// How the heads of a [.., H·D] activation are laid out.
enum class HeadLayout {
  kTokenMajor,  ///< [B, S, H·D]: the heads of one token are adjacent (what dense projections produce)
  kHeadMajor,   ///< [B, H, S, D]
};

/// Options of GraphBuilder::rope.
struct RopeOptions {
  int num_heads = 0;  ///< H; with kHeadMajor 0 takes it from x's dim 1
  int head_dim = 0;   ///< D, even; with kHeadMajor 0 takes it from x's dim 3
  double theta = 10000.0;
  HeadLayout layout = HeadLayout::kTokenMajor;
  /// The D/2 inverse frequencies f_d themselves, finite and >= 0, instead of theta^(-2d/D) — for
  /// rescaled rotary embeddings such as Llama 3's rope_scaling. Empty: from theta.
  std::vector<double> inverse_frequencies;
};

/// Options of GraphBuilder::kv_cache: the cache holds keys and values [B, num_kv_heads, max_len, head_dim].
struct KvCacheOptions {
  int num_kv_heads = 0;
  int head_dim = 0;
  std::int64_t max_len = 0;  ///< positions the cache can hold, >= 1
};

/// A KV cache declared in a GraphBuilder (see GraphBuilder::kv_cache).
struct KvCache {
  std::uint32_t id = UINT32_MAX;
  bool valid() const noexcept { return id != UINT32_MAX; }
};

/// What GraphBuilder::kv_cache_append gives to attention.
struct KvCacheView {
  Value keys;         ///< f32 [B, Hkv, max_len, D]: the whole cache, rows >= key_lengths[b] not valid
  Value values;       ///< f32 [B, Hkv, max_len, D]
  Value key_lengths;  ///< i64 [B]: valid rows after this run's append (past length + S_new)
};

/// A validated graph, ready for quarks::compile. Cheap to copy (shared, immutable).
class Graph {
 public:
  Graph() = default;
  /// Graph input names in declaration order.
  std::vector<std::string> input_names() const;
  /// Graph output names in declaration order.
  std::vector<std::string> output_names() const;
  /// Element type of graph input `name`; throws Error(kNotFound) for an unknown name.
  DType input_dtype(const std::string& name) const;
  /// Declared shape of graph input `name`, symbolic dims by name ("[batch,128]").
  std::string input_shape_string(const std::string& name) const;
  /// One line per node: "name = op(inputs) -> shape". For inspection and debugging.
  std::string to_string() const;

  /// Internal representation; not part of the stable API.
  const detail::GraphIR& ir() const;
  explicit Graph(std::shared_ptr<const detail::GraphIR> ir) : ir_(std::move(ir)) {}

 private:
  std::shared_ptr<const detail::GraphIR> ir_;
};

/// Builds a Graph op by op. Not thread-safe; one builder per thread.
class GraphBuilder {
 public:
  GraphBuilder();
  ~GraphBuilder();
  GraphBuilder(GraphBuilder&&) noexcept;
  GraphBuilder& operator=(GraphBuilder&&) noexcept;

  // --- values -------------------------------------------------------------------------------------
  /// A runtime input, row-major, with fixed or symbolic dims: f32 (the default), i64 (indices) or
  /// bool (masks).
  Value input(const std::string& name, const std::vector<Dim>& dims, DType dtype = DType::kF32);
  /// A constant (weights, biases: f32; indices: i64; masks: bool). The tensor's storage is shared,
  /// not copied: don't modify it later. bf16 constants are taken by linear (as W), gather (as the
  /// table) and cast (to f32); other ops reject them when the node is added.
  Value constant(const std::string& name, const Tensor& value);
  /// Declares `v` a graph output under `name`.
  void output(const std::string& name, Value v);

  // --- dense products -----------------------------------------------------------------------------
  /// y = f(x·W + b) over the last axis of x (any leading dims). W: constant [K, N]; b: constant [N].
  Value dense(const std::string& name, Value x, Value w, std::optional<Value> bias = std::nullopt,
              const Activation& f = Activation::identity());
  /// y = f(x·Wᵀ + b) with W a constant [N, K] — nn.Linear's layout, as checkpoints store it — f32 or
  /// bf16; b: constant f32 [N]. A bf16 W compiled at precision bf16 is read in place, never copied
  /// (Tensor::external over a checkpoint keeps a model's weights in memory once); at precision f32,
  /// or where the CPU has no bf16 product for the rows given, it is converted (once per plan).
  Value linear(const std::string& name, Value x, Value w, std::optional<Value> bias = std::nullopt,
               const Activation& f = Activation::identity());
  /// Product of two runtime tensors [..., M, K]·[..., K, N] with broadcast batch dims; trans_a /
  /// trans_b transpose the last two dims of a / b first (no copy is made).
  Value matmul(const std::string& name, Value a, Value b, bool trans_a = false, bool trans_b = false);

  // --- the attention quarks -------------------------------------------------------------------------
  /// y = f(x).
  Value activation(const std::string& name, Value x, const Activation& f);
  /// Additive activation attention (multiplexing): y = f(s + lambda·a), a broadcast to s's shape.
  Value multiplex(const std::string& name, Value s, Value a, float lambda = 1.0f,
                  const Activation& f = Activation::identity());
  /// Multiplicative output attention (output gating): y = f(s1) ⊙ g(s2), s1 and s2 of one shape.
  /// GLU: (identity, sigmoid); SwiGLU: (silu, identity) on (gate, up); GEGLU; ReGLU; bilinear.
  Value output_gate(const std::string& name, Value s1, Value s2, const Activation& f, const Activation& g);
  /// Multiplicative synaptic attention: y[m,n] = Σ_k x[m,k]·W[k,n]·G[..,k,n] with x [..., K], W a
  /// constant [K, N] and G a runtime gate of shape [K, N] (a synapse mask), [M, K, 1] (one gate per
  /// input and row) or [M, K, N] (one per synapse and row), where M is the product of x's leading dims.
  Value synaptic_gate(const std::string& name, Value x, Value w, Value g);
  /// Fused attention softmax(Q·Kᵀ·scale + mask)·V per batch and query head, computed flash-style: the
  /// [Sq, Sk] score matrix is never materialised. Two layouts (f32, output in q's layout):
  ///   4-D: q [B, Hq, Sq, D], k and v [B, Hkv, Sk, D], Hq a multiple of Hkv;
  ///   3-D: q [B, Sq, Hq·D], k and v [B, Sk, Hkv·D] with options.num_heads (and num_kv_heads) given;
  ///        the heads are read in place with strides, nothing is transposed.
  /// mask: additive f32, broadcastable to [B, Hq, Sq, Sk] ([B,1,1,Sk], [1,1,Sq,Sk], [Sq,Sk], ...); -inf
  /// hides a key. key_lengths: i64 [B]; keys at positions >= key_lengths[b] are ignored; a length outside
  /// [0, Sk] throws Error(kInvalidArgument) from Session::run naming the node, the batch index and value.
  /// A query that sees no key at all (key length 0, every mask entry -inf, causal with Sq > Sk) outputs
  /// zeros, not NaN. NaN in q, k or the mask, or a +inf score, makes that query's output NaN.
  /// key_starts: i64 [B]; keys at positions < key_starts[b] are ignored (and cost nothing) — the left
  /// padding of a batch of prompts of different lengths; the causal diagonal does not move. A start
  /// outside [0, Sk] throws like a bad key length.
  /// q may also be 3-D while k and v are 4-D (a KV cache read in place, see kv_cache_append).
  Value attention(const std::string& name, Value q, Value k, Value v, std::optional<Value> mask = std::nullopt,
                  std::optional<Value> key_lengths = std::nullopt, const AttentionOptions& options = {},
                  std::optional<Value> key_starts = std::nullopt);
  /// attention() on the packed output of a fused QKV projection: qkv is [B, S, (Hq + 2·Hkv)·D], each row
  /// the Hq query heads, then the Hkv key heads, then the Hkv value heads (D values each), as a dense
  /// with weight [d, (Hq + 2·Hkv)·D] produces them. q, k and v are read in place with strides (no slices
  /// are copied); the output is [B, S, Hq·D]. options.num_heads is required, num_kv_heads as in the 3-D
  /// layout (0 = num_heads); mask, key_lengths, key_starts, causal and scale mean what they mean for
  /// attention(), with Sq = Sk = S.
  Value attention_qkv(const std::string& name, Value qkv, std::optional<Value> mask = std::nullopt,
                      std::optional<Value> key_lengths = std::nullopt, const AttentionOptions& options = {},
                      std::optional<Value> key_starts = std::nullopt);

  // --- positions and state --------------------------------------------------------------------------
  /// Rotary position embedding, rotate-half form (as in HF Llama): for each head row of D elements at
  /// position p and d < D/2, with f_d = theta^(-2d/D) and a = p·f_d,
  ///   y[d] = x[d]·cos a − x[d + D/2]·sin a,   y[d + D/2] = x[d + D/2]·cos a + x[d]·sin a.
  /// x is [B, S, H·D] (HeadLayout::kTokenMajor) or [B, H, S, D] (kHeadMajor), f32; token s has position
  /// offset + s for every batch. The angles are reduced and their cos/sin computed in double, so large
  /// positions lose no accuracy; positions must lie in [0, 2^31).
  Value rope(const std::string& name, Value x, std::int64_t offset, const RopeOptions& options);
  /// As above with the offset a runtime i64 value of shape [] or [1] (e.g. kv_cache_length), or of shape
  /// [B, S]: token s of batch b at position offset[b, s] (Hugging Face's position_ids, e.g. a batch of
  /// left-padded prompts). A position outside [0, 2^31) throws Error(kInvalidArgument) from Session::run.
  Value rope(const std::string& name, Value x, Value offset, const RopeOptions& options);

  /// Declares a KV cache: state that each Session keeps between runs (memory: 2·B·Hkv·max_len·D floats,
  /// allocated by the Session at its first run; see Session in model.hpp). The cache's length (rows
  /// written so far) starts at 0 and advances, after each successful run, by the rows appended in it.
  /// All sequences of a batch share that length (they are decoded in lockstep).
  KvCache kv_cache(const std::string& name, const KvCacheOptions& options);
  /// i64 [1]: the cache's length before this run's append — the position of this run's first token
  /// (feed it to rope as the offset). The same value for every call; it reads the Session's state.
  Value kv_cache_length(KvCache cache);
  /// Appends this run's keys and values, k and v of [B, S_new, Hkv·D] or [B, Hkv, S_new, D], at rows
  /// [length, length + S_new) of the cache: only those rows are written. Returns the whole cache (which
  /// lives in the Session, not in the arena) and the valid lengths, for attention with key_lengths and
  /// causal_from_key_lengths. One append per cache per graph. Session::run throws
  /// Error(kResourceExhausted) before writing anything if length + S_new > max_len.
  KvCacheView kv_cache_append(const std::string& name, KvCache cache, Value k, Value v);

  // --- elementwise, normalisation ------------------------------------------------------------------
  Value binary(const std::string& name, BinaryOpKind op, Value a, Value b);
  Value add(const std::string& name, Value a, Value b) { return binary(name, BinaryOpKind::kAdd, a, b); }
  Value sub(const std::string& name, Value a, Value b) { return binary(name, BinaryOpKind::kSub, a, b); }
  Value mul(const std::string& name, Value a, Value b) { return binary(name, BinaryOpKind::kMul, a, b); }
  Value div(const std::string& name, Value a, Value b) { return binary(name, BinaryOpKind::kDiv, a, b); }
  /// y = op(x) elementwise (f32), for the parameter-free kinds; kClip and kHardSigmoid throw
  /// Error(kInvalidArgument) here.
  Value unary(const std::string& name, UnaryOpKind op, Value x);
  /// y = min(max(x, lo), hi) (f32); NaN stays NaN. Needs lo <= hi (not NaN); a bound may be ±inf.
  Value clip(const std::string& name, Value x, float lo, float hi);
  /// y = max(0, min(1, alpha·x + beta)) (f32), alpha and beta finite; NaN stays NaN.
  Value hard_sigmoid(const std::string& name, Value x, float alpha, float beta);
  /// Reduces `x` over `axes` (negative counts from the end; empty = all axes); keepdims keeps them as 1.
  /// An axis given twice is an error. NaN propagates (max and min too). Over zero elements the sum is 0
  /// and the mean NaN, while max and min are an error (at build time, or from Session::run when the empty
  /// axis is symbolic).
  Value reduce(const std::string& name, ReduceOpKind op, Value x, const std::vector<int>& axes, bool keepdims);
  /// ONNX Gather: picks slices of `data` (any dtype) along `axis` by i64 `indices` (negative counts
  /// from the end); output shape = data[:axis] + indices + data[axis+1:]. An index out of range
  /// throws Error(kInvalidArgument) from Session::run.
  Value gather(const std::string& name, Value data, Value indices, int axis);
  /// cond ? x : y elementwise with three-way NumPy broadcasting; cond is bool, x and y share a dtype
  /// (f32, i64 or bool), which is the output's. Other dtypes throw Error(kTypeMismatch).
  Value where(const std::string& name, Value cond, Value x, Value y);
  /// a == b elementwise with broadcasting (f32, i64 or bool inputs of one dtype) -> bool. f32 compares
  /// as IEEE: NaN != NaN, -0 == +0. Inputs of different dtypes throw Error(kTypeMismatch).
  Value equal(const std::string& name, Value a, Value b);
  /// Converts between f32, i64 and bool. f32 -> i64 truncates toward zero, maps NaN to 0 and saturates
  /// values beyond the i64 range (±inf included) to INT64_MIN / INT64_MAX; i64 -> f32 rounds to
  /// nearest; to bool: nonzero -> true (NaN too); from bool: 1 / 0; bf16 (a constant, or gathered
  /// from one) -> f32 exactly. Casting to the same dtype copies.
  Value cast(const std::string& name, Value x, DType to);
  /// Broadcasts `x` (any dtype) with `shape` by NumPy rules in both directions (ONNX Expand): the
  /// output shape is broadcast(x.shape, shape), so a 1 in `shape` keeps x's dim. Dims must be >= 0.
  Value expand(const std::string& name, Value x, const std::vector<std::int64_t>& shape);

  /// Numerically stable softmax along `axis` (negative counts from the end).
  Value softmax(const std::string& name, Value x, int axis = -1);
  /// log(softmax(x)) along `axis`, computed as x - max - log(sum(exp(x - max))) (no underflow to -inf).
  Value log_softmax(const std::string& name, Value x, int axis = -1);
  /// Layer normalisation over the last axis; scale/bias constants of shape [C] (optional).
  Value layer_norm(const std::string& name, Value x, std::optional<Value> scale = std::nullopt,
                   std::optional<Value> bias = std::nullopt, float epsilon = 1e-5f);
  /// RMS normalisation over the last axis: x / sqrt(mean(x²) + eps) · scale (+ bias).
  Value rms_norm(const std::string& name, Value x, std::optional<Value> scale = std::nullopt,
                 std::optional<Value> bias = std::nullopt, float epsilon = 1e-6f);

  // --- layout ---------------------------------------------------------------------------------------
  // Layout ops take any dtype (f32, i64, bool); the output has the input's (concat: one for all inputs).
  /// New shape with the same element count; 0 copies the input dim, -1 (at most one) is inferred.
  Value reshape(const std::string& name, Value x, const std::vector<std::int64_t>& shape);
  /// Permutes dims: output dim i is input dim perm[i].
  Value transpose(const std::string& name, Value x, const std::vector<int>& perm);
  /// Joins tensors along `axis`; all other dims must match.
  Value concat(const std::string& name, const std::vector<Value>& xs, int axis);
  /// Splits `x` along `axis` into pieces of the given sizes (which must sum to the dim).
  std::vector<Value> split(const std::string& name, Value x, int axis, const std::vector<std::int64_t>& sizes);
  /// Python-style slice along `axes`: starts/ends clamp to the dim (negative counts from the end),
  /// steps are positive (default 1).
  Value slice(const std::string& name, Value x, const std::vector<std::int64_t>& starts,
              const std::vector<std::int64_t>& ends, const std::vector<int>& axes,
              const std::vector<std::int64_t>& steps = {});

  /// Element type of a value.
  DType dtype(Value v) const;
  /// Dims of a value as known at build time: fixed sizes, named symbols, or (value -1, empty
  /// symbol) for a size known only at run time.
  std::vector<Dim> dims(Value v) const;
  /// Shape of a value as known at build time: symbolic dims print as their name ("[batch,768]").
  std::string shape_string(Value v) const;
  /// Finishes the graph: checks that it has outputs and drops nodes that no output needs.
  /// The builder is empty afterwards.
  Graph build();

 private:
  std::unique_ptr<detail::GraphIR> ir_;
};

}  // namespace quarks
