// GraphBuilder: turns API calls into IR nodes, validating each one as it is added.
#include <algorithm>
#include <unordered_set>

#include "engine/op_registry.hpp"
#include "engine/passes/passes.hpp"
#include "ops/contract/graph_ir.hpp"
#include "ops/contract/shape_utils.hpp"
#include "quarks/graph.hpp"

namespace quarks {

using detail::GraphIR;
using detail::Node;
using detail::OpKind;
using detail::SymShape;
using detail::ValueId;
using detail::ValueInfo;
using detail::ValueKind;

namespace {

void check_value_name_free(const GraphIR& ir, const std::string& name, const char* what) {
  if (name.empty()) throw Error(ErrorCode::kInvalidArgument, std::string(what) + " has an empty name");
  for (const ValueInfo& v : ir.values) {
    if (v.name == name)
      throw Error(ErrorCode::kInvalidArgument, std::string(what) + " '" + name + "': the name is already used");
  }
}

// Adds `node` (inputs set, outputs empty) after inferring its output shapes; the node's outputs are
// named after it ("name" for one output, "name:i" for several).
std::vector<Value> add_node(GraphIR& ir, Node node) {
  if (node.name.empty())
    throw Error(ErrorCode::kInvalidArgument, std::string(detail::op_name(node.op)) + " node has an empty name");
  for (const Node& other : ir.nodes) {
    if (other.name == node.name) {
      throw Error(ErrorCode::kInvalidArgument, GraphIR::where(node) + "a node with this name already exists");
    }
  }
  std::vector<SymShape> in;
  std::vector<DType> in_dtypes;
  for (ValueId v : node.inputs) {
    if (v >= ir.values.size()) {
      throw Error(ErrorCode::kInvalidArgument, GraphIR::where(node) + "an input is not a value of this builder");
    }
    in.push_back(ir.values[v].shape);
    in_dtypes.push_back(ir.values[v].dtype);
  }
  const detail::OpSchema& schema = detail::schema_of(node.op);
  std::vector<DType> out_dtypes;
  if (schema.infer_dtypes) {
    out_dtypes = schema.infer_dtypes(node, ir, in_dtypes);
  } else {
    for (std::size_t i = 0; i < node.inputs.size(); ++i) {
      if (in_dtypes[i] != DType::kF32) {
        throw Error(ErrorCode::kTypeMismatch, GraphIR::where(node) + "input " + std::to_string(i) + " '" +
                                                  ir.values[node.inputs[i]].name + "' is " + to_string(in_dtypes[i]) +
                                                  " but this op takes f32 only");
      }
    }
  }
  std::vector<SymShape> out = schema.infer(node, ir, in);
  for (const SymShape& s : out) detail::check_shape_size(s, GraphIR::where(node) + "output ");
  out_dtypes.resize(out.size(), DType::kF32);
  for (std::size_t i = 0; i < out.size(); ++i) {
    check_value_name_free(ir, out.size() == 1 ? node.name : node.name + ":" + std::to_string(i), "node output");
  }
  const int node_index = static_cast<int>(ir.nodes.size());
  std::vector<Value> handles;
  for (std::size_t i = 0; i < out.size(); ++i) {
    ValueInfo info;
    info.name = out.size() == 1 ? node.name : node.name + ":" + std::to_string(i);
    info.kind = ValueKind::kIntermediate;
    info.shape = std::move(out[i]);
    info.dtype = out_dtypes[i];
    info.producer = node_index;
    const ValueId id = ir.add_value(std::move(info));
    node.outputs.push_back(id);
    handles.push_back(Value{id});
  }
  ir.nodes.push_back(std::move(node));
  return handles;
}

Node make_node(OpKind op, const std::string& name, std::vector<Value> inputs, detail::OpAttrs attrs = {}) {
  Node n;
  n.op = op;
  n.name = name;
  for (Value v : inputs) n.inputs.push_back(v.id);
  n.attrs = std::move(attrs);
  return n;
}

detail::AttentionAttrs attention_attrs(const AttentionOptions& options, bool packed_qkv, bool has_mask,
                                       bool has_key_lengths, bool has_key_starts) {
  detail::AttentionAttrs a;
  a.packed_qkv = packed_qkv;
  a.causal = options.causal;
  a.has_scale = options.scale.has_value();
  a.scale = options.scale.value_or(1.0f);
  a.num_heads = options.num_heads;
  a.num_kv_heads = options.num_kv_heads;
  a.has_mask = has_mask;
  a.has_key_lengths = has_key_lengths;
  a.has_key_starts = has_key_starts;
  a.causal_from_key_lengths = options.causal_from_key_lengths;
  a.window = options.window;
  return a;
}

}  // namespace

GraphBuilder::GraphBuilder() : ir_(std::make_unique<GraphIR>()) {}
GraphBuilder::~GraphBuilder() = default;
GraphBuilder::GraphBuilder(GraphBuilder&&) noexcept = default;
GraphBuilder& GraphBuilder::operator=(GraphBuilder&&) noexcept = default;

Value GraphBuilder::input(const std::string& name, const std::vector<Dim>& dims, DType dtype) {
  check_value_name_free(*ir_, name, "input");
  if (dtype == DType::kBF16) {
    throw Error(ErrorCode::kTypeMismatch, "input '" + name + "': bf16 inputs are not supported (use f32)");
  }
  if (dims.size() > static_cast<std::size_t>(Shape::kMaxRank)) {
    throw Error(ErrorCode::kInvalidArgument, "input '" + name + "' has " + std::to_string(dims.size()) +
                                                 " dims; at most " + std::to_string(Shape::kMaxRank) +
                                                 " are supported");
  }
  ValueInfo info;
  info.name = name;
  info.kind = ValueKind::kInput;
  info.dtype = dtype;
  for (const Dim& d : dims) {
    if (d.is_symbolic() && d.symbol.empty()) {
      throw Error(ErrorCode::kInvalidArgument, "input '" + name + "': a symbolic dim needs a name");
    }
    info.shape.push_back({d.value, d.symbol});
  }
  detail::check_shape_size(info.shape, "input '" + name + "': ");
  const ValueId id = ir_->add_value(std::move(info));
  ir_->inputs.push_back(id);
  return Value{id};
}

Value GraphBuilder::constant(const std::string& name, const Tensor& value) {
  check_value_name_free(*ir_, name, "constant");
  if (value.empty_storage() && value.numel() > 0) {
    throw Error(ErrorCode::kInvalidArgument, "constant '" + name + "' has no data");
  }
  ValueInfo info;
  info.name = name;
  info.kind = ValueKind::kConstant;
  info.shape = detail::to_sym(value.shape());
  detail::check_shape_size(info.shape, "constant '" + name + "': ");  // [0, 2^60] holds no data but is refused
  info.dtype = value.dtype();
  info.data = value;
  return Value{ir_->add_value(std::move(info))};
}

void GraphBuilder::output(const std::string& name, Value v) {
  if (name.empty()) throw Error(ErrorCode::kInvalidArgument, "graph output has an empty name");
  if (!v.valid() || v.id >= ir_->values.size()) {
    throw Error(ErrorCode::kInvalidArgument, "output '" + name + "' is not a value of this builder");
  }
  for (const auto& [n, id] : ir_->outputs) {
    if (n == name) throw Error(ErrorCode::kInvalidArgument, "output '" + name + "' is declared twice");
  }
  ir_->outputs.emplace_back(name, v.id);
}

Value GraphBuilder::dense(const std::string& name, Value x, Value w, std::optional<Value> bias, const Activation& f) {
  std::vector<Value> in{x, w};
  if (bias) in.push_back(*bias);
  return add_node(*ir_, make_node(OpKind::kDense, name, in, detail::DenseAttrs{f, bias.has_value()}))[0];
}

Value GraphBuilder::linear(const std::string& name, Value x, Value w, std::optional<Value> bias, const Activation& f) {
  std::vector<Value> in{x, w};
  if (bias) in.push_back(*bias);
  return add_node(*ir_, make_node(OpKind::kDense, name, in, detail::DenseAttrs{f, bias.has_value(), true}))[0];
}

Value GraphBuilder::matmul(const std::string& name, Value a, Value b, bool trans_a, bool trans_b) {
  return add_node(*ir_, make_node(OpKind::kMatMul, name, {a, b}, detail::MatMulAttrs{trans_a, trans_b}))[0];
}

Value GraphBuilder::activation(const std::string& name, Value x, const Activation& f) {
  return add_node(*ir_, make_node(OpKind::kActivation, name, {x}, detail::ActivationAttrs{f}))[0];
}

Value GraphBuilder::multiplex(const std::string& name, Value s, Value a, float lambda, const Activation& f) {
  return add_node(*ir_, make_node(OpKind::kMultiplex, name, {s, a}, detail::MultiplexAttrs{f, lambda}))[0];
}

Value GraphBuilder::output_gate(const std::string& name, Value s1, Value s2, const Activation& f, const Activation& g) {
  return add_node(*ir_, make_node(OpKind::kOutputGate, name, {s1, s2}, detail::OutputGateAttrs{f, g}))[0];
}

Value GraphBuilder::synaptic_gate(const std::string& name, Value x, Value w, Value g) {
  return add_node(*ir_, make_node(OpKind::kSynapticGate, name, {x, w, g}))[0];
}

Value GraphBuilder::attention(const std::string& name, Value q, Value k, Value v, std::optional<Value> mask,
                              std::optional<Value> key_lengths, const AttentionOptions& options,
                              std::optional<Value> key_starts) {
  std::vector<Value> in{q, k, v};
  if (mask) in.push_back(*mask);
  if (key_lengths) in.push_back(*key_lengths);
  if (key_starts) in.push_back(*key_starts);
  const auto a = attention_attrs(options, false, mask.has_value(), key_lengths.has_value(), key_starts.has_value());
  return add_node(*ir_, make_node(OpKind::kAttention, name, in, a))[0];
}

Value GraphBuilder::attention_qkv(const std::string& name, Value qkv, std::optional<Value> mask,
                                  std::optional<Value> key_lengths, const AttentionOptions& options,
                                  std::optional<Value> key_starts) {
  std::vector<Value> in{qkv};
  if (mask) in.push_back(*mask);
  if (key_lengths) in.push_back(*key_lengths);
  if (key_starts) in.push_back(*key_starts);
  const auto a = attention_attrs(options, true, mask.has_value(), key_lengths.has_value(), key_starts.has_value());
  return add_node(*ir_, make_node(OpKind::kAttention, name, in, a))[0];
}

namespace {
detail::RopeAttrs rope_attrs(const RopeOptions& o) {
  detail::RopeAttrs a;
  a.num_heads = o.num_heads;
  a.head_dim = o.head_dim;
  a.theta = o.theta;
  a.inv_freq = o.inverse_frequencies;
  a.head_major = o.layout == HeadLayout::kHeadMajor;
  return a;
}
}  // namespace

Value GraphBuilder::rope(const std::string& name, Value x, std::int64_t offset, const RopeOptions& options) {
  detail::RopeAttrs a = rope_attrs(options);
  a.offset = offset;
  return add_node(*ir_, make_node(OpKind::kRope, name, {x}, a))[0];
}

Value GraphBuilder::rope(const std::string& name, Value x, Value offset, const RopeOptions& options) {
  detail::RopeAttrs a = rope_attrs(options);
  a.has_offset_input = true;
  return add_node(*ir_, make_node(OpKind::kRope, name, {x, offset}, a))[0];
}

KvCache GraphBuilder::kv_cache(const std::string& name, const KvCacheOptions& options) {
  const std::string where = "KV cache '" + name + "': ";
  if (options.num_kv_heads < 1 || options.head_dim < 1 || options.max_len < 1) {
    throw Error(ErrorCode::kInvalidArgument, where + "num_kv_heads (" + std::to_string(options.num_kv_heads) +
                                                 "), head_dim (" + std::to_string(options.head_dim) +
                                                 ") and max_len (" + std::to_string(options.max_len) +
                                                 ") must be >= 1");
  }
  // [B, Hkv, max_len, D] must be addressable for any reasonable batch: cap the rows per batch at 2^40 floats.
  if (Shape{options.num_kv_heads, options.max_len, options.head_dim}.numel() > (std::int64_t{1} << 40)) {
    throw Error(ErrorCode::kResourceExhausted, where + "num_kv_heads * max_len * head_dim exceeds 2^40 floats");
  }
  for (const detail::KvCacheInfo& c : ir_->caches) {
    if (c.name == name) throw Error(ErrorCode::kInvalidArgument, where + "a cache with this name already exists");
  }
  detail::KvCacheInfo info;
  info.name = name;
  info.num_kv_heads = options.num_kv_heads;
  info.head_dim = options.head_dim;
  info.max_len = options.max_len;
  const auto id = static_cast<std::uint32_t>(ir_->caches.size());
  ir_->caches.push_back(info);
  // The node reporting the cache's length, named after the cache; its output is the Session's length slot.
  try {
    const Value length = add_node(*ir_, make_node(OpKind::kKvCacheLength, name, {}, detail::KvCacheAttrs{id}))[0];
    ir_->values[length.id].state = {static_cast<int>(id), detail::StateRef::Part::kLength};
    ir_->caches[id].length = length.id;
  } catch (...) {
    ir_->caches.pop_back();
    throw;
  }
  return KvCache{id};
}

namespace {
const detail::KvCacheInfo& cache_info(const GraphIR& ir, KvCache cache) {
  if (!cache.valid() || cache.id >= ir.caches.size()) {
    throw Error(ErrorCode::kInvalidArgument, "not a KV cache of this builder");
  }
  return ir.caches[cache.id];
}
}  // namespace

Value GraphBuilder::kv_cache_length(KvCache cache) { return Value{cache_info(*ir_, cache).length}; }

KvCacheView GraphBuilder::kv_cache_append(const std::string& name, KvCache cache, Value k, Value v) {
  const detail::KvCacheInfo& info = cache_info(*ir_, cache);
  for (const Node& n : ir_->nodes) {
    if (n.op == OpKind::kKvCacheAppend && n.attr<detail::KvCacheAttrs>().cache == cache.id) {
      throw Error(ErrorCode::kInvalidArgument, "node '" + name + "' (kv_cache_append): KV cache '" + info.name +
                                                   "' is already appended to by node '" + n.name +
                                                   "'; a graph appends to each cache once");
    }
  }
  const std::vector<Value> out = add_node(
      *ir_, make_node(OpKind::kKvCacheAppend, name, {k, v, Value{info.length}}, detail::KvCacheAttrs{cache.id}));
  ir_->values[out[0].id].state = {static_cast<int>(cache.id), detail::StateRef::Part::kKeys};
  ir_->values[out[1].id].state = {static_cast<int>(cache.id), detail::StateRef::Part::kValues};
  return KvCacheView{out[0], out[1], out[2]};
}

Value GraphBuilder::binary(const std::string& name, BinaryOpKind op, Value a, Value b) {
  return add_node(*ir_, make_node(OpKind::kBinary, name, {a, b}, detail::BinaryAttrs{op}))[0];
}

Value GraphBuilder::unary(const std::string& name, UnaryOpKind op, Value x) {
  Node n = make_node(OpKind::kUnary, name, {x}, detail::UnaryAttrs{op});
  if (op == UnaryOpKind::kClip) {
    throw Error(ErrorCode::kInvalidArgument, GraphIR::where(n) + "clip takes bounds: use GraphBuilder::clip");
  }
  if (op == UnaryOpKind::kHardSigmoid) {
    throw Error(ErrorCode::kInvalidArgument,
                GraphIR::where(n) + "hard_sigmoid takes alpha and beta: use GraphBuilder::hard_sigmoid");
  }
  return add_node(*ir_, std::move(n))[0];
}

Value GraphBuilder::clip(const std::string& name, Value x, float lo, float hi) {
  return add_node(*ir_, make_node(OpKind::kUnary, name, {x}, detail::UnaryAttrs{UnaryOpKind::kClip, lo, hi}))[0];
}

Value GraphBuilder::hard_sigmoid(const std::string& name, Value x, float alpha, float beta) {
  return add_node(*ir_,
                  make_node(OpKind::kUnary, name, {x}, detail::UnaryAttrs{UnaryOpKind::kHardSigmoid, alpha, beta}))[0];
}

Value GraphBuilder::where(const std::string& name, Value cond, Value x, Value y) {
  return add_node(*ir_, make_node(OpKind::kWhere, name, {cond, x, y}))[0];
}

Value GraphBuilder::equal(const std::string& name, Value a, Value b) {
  return add_node(*ir_, make_node(OpKind::kEqual, name, {a, b}))[0];
}

Value GraphBuilder::cast(const std::string& name, Value x, DType to) {
  return add_node(*ir_, make_node(OpKind::kCast, name, {x}, detail::CastAttrs{to}))[0];
}

Value GraphBuilder::expand(const std::string& name, Value x, const std::vector<std::int64_t>& shape) {
  return add_node(*ir_, make_node(OpKind::kExpand, name, {x}, detail::ExpandAttrs{shape}))[0];
}

Value GraphBuilder::softmax(const std::string& name, Value x, int axis) {
  return add_node(*ir_, make_node(OpKind::kSoftmax, name, {x}, detail::AxisAttrs{axis}))[0];
}

Value GraphBuilder::log_softmax(const std::string& name, Value x, int axis) {
  return add_node(*ir_, make_node(OpKind::kLogSoftmax, name, {x}, detail::AxisAttrs{axis}))[0];
}

namespace {
Node norm_node(OpKind op, const std::string& name, Value x, std::optional<Value> scale, std::optional<Value> bias,
               float eps) {
  std::vector<Value> in{x};
  if (scale) in.push_back(*scale);
  if (bias) in.push_back(*bias);
  return make_node(op, name, in, detail::NormAttrs{eps, scale.has_value(), bias.has_value()});
}
}  // namespace

Value GraphBuilder::layer_norm(const std::string& name, Value x, std::optional<Value> scale, std::optional<Value> bias,
                               float epsilon) {
  return add_node(*ir_, norm_node(OpKind::kLayerNorm, name, x, scale, bias, epsilon))[0];
}

Value GraphBuilder::rms_norm(const std::string& name, Value x, std::optional<Value> scale, std::optional<Value> bias,
                             float epsilon) {
  return add_node(*ir_, norm_node(OpKind::kRmsNorm, name, x, scale, bias, epsilon))[0];
}

Value GraphBuilder::reshape(const std::string& name, Value x, const std::vector<std::int64_t>& shape) {
  return add_node(*ir_, make_node(OpKind::kReshape, name, {x}, detail::ReshapeAttrs{shape}))[0];
}

Value GraphBuilder::transpose(const std::string& name, Value x, const std::vector<int>& perm) {
  return add_node(*ir_, make_node(OpKind::kTranspose, name, {x}, detail::TransposeAttrs{perm}))[0];
}

Value GraphBuilder::concat(const std::string& name, const std::vector<Value>& xs, int axis) {
  return add_node(*ir_, make_node(OpKind::kConcat, name, xs, detail::AxisAttrs{axis}))[0];
}

std::vector<Value> GraphBuilder::split(const std::string& name, Value x, int axis,
                                       const std::vector<std::int64_t>& sizes) {
  return add_node(*ir_, make_node(OpKind::kSplit, name, {x}, detail::SplitAttrs{axis, sizes}));
}

Value GraphBuilder::slice(const std::string& name, Value x, const std::vector<std::int64_t>& starts,
                          const std::vector<std::int64_t>& ends, const std::vector<int>& axes,
                          const std::vector<std::int64_t>& steps) {
  return add_node(*ir_, make_node(OpKind::kSlice, name, {x}, detail::SliceAttrs{starts, ends, steps, axes}))[0];
}

Value GraphBuilder::reduce(const std::string& name, ReduceOpKind op, Value x, const std::vector<int>& axes,
                           bool keepdims) {
  return add_node(*ir_, make_node(OpKind::kReduce, name, {x}, detail::ReduceAttrs{op, axes, keepdims}))[0];
}

Value GraphBuilder::gather(const std::string& name, Value data, Value indices, int axis) {
  return add_node(*ir_, make_node(OpKind::kGather, name, {data, indices}, detail::GatherAttrs{axis}))[0];
}

DType GraphBuilder::dtype(Value v) const {
  if (!v.valid() || v.id >= ir_->values.size()) throw Error(ErrorCode::kInvalidArgument, "not a value of this builder");
  return ir_->values[v.id].dtype;
}

std::vector<Dim> GraphBuilder::dims(Value v) const {
  if (!v.valid() || v.id >= ir_->values.size()) throw Error(ErrorCode::kInvalidArgument, "not a value of this builder");
  std::vector<Dim> out;
  for (const detail::SymDim& d : ir_->values[v.id].shape) {
    Dim dim(d.value);
    dim.symbol = d.symbol;
    out.push_back(dim);
  }
  return out;
}

std::string GraphBuilder::shape_string(Value v) const {
  if (!v.valid() || v.id >= ir_->values.size()) throw Error(ErrorCode::kInvalidArgument, "not a value of this builder");
  return detail::to_string(ir_->values[v.id].shape);
}

Graph GraphBuilder::build() {
  if (ir_->outputs.empty()) throw Error(ErrorCode::kInvalidArgument, "graph has no outputs");
  detail::eliminate_dead_nodes(*ir_);
  auto done = std::shared_ptr<const GraphIR>(std::move(ir_));
  ir_ = std::make_unique<GraphIR>();
  return Graph(std::move(done));
}

// --- Graph -----------------------------------------------------------------------------------------

const detail::GraphIR& Graph::ir() const {
  if (!ir_) throw Error(ErrorCode::kInvalidArgument, "empty Graph: build one with GraphBuilder::build()");
  return *ir_;
}

std::vector<std::string> Graph::input_names() const {
  std::vector<std::string> names;
  for (ValueId v : ir().inputs) names.push_back(ir().values[v].name);
  return names;
}

std::vector<std::string> Graph::output_names() const {
  std::vector<std::string> names;
  for (const auto& [name, v] : ir().outputs) names.push_back(name);
  return names;
}

namespace {
const ValueInfo& graph_input(const GraphIR& g, const std::string& name) {
  for (ValueId v : g.inputs)
    if (g.values[v].name == name) return g.values[v];
  throw Error(ErrorCode::kNotFound, "the graph has no input '" + name + "'");
}
}  // namespace

DType Graph::input_dtype(const std::string& name) const { return graph_input(ir(), name).dtype; }

std::string Graph::input_shape_string(const std::string& name) const {
  return detail::to_string(graph_input(ir(), name).shape);
}

std::string Graph::to_string() const { return detail::describe(ir()); }

}  // namespace quarks
