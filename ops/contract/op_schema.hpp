// What every op provides to the engine: a schema (validation + shape inference + in-place rule) and
// a compile step that turns a node with concrete shapes into a CompiledOp. Op families implement
// these in ops/<family>/; the engine reaches them only through engine/op_registry.hpp. This header,
// like the rest of ops/contract/, is seen by both sides and includes nothing of engine/.
#pragma once

#include <cstddef>
#include <memory>
#include <span>
#include <vector>

#include "ops/contract/graph_ir.hpp"
#include "quarks/model.hpp"

namespace quarks::detail {

/// Pointers to one node's tensors for one run. in[i] / out[i] follow node.inputs / node.outputs.
struct OpIO {
  const void* const* in;
  void* const* out;
  std::byte* scratch;  ///< scratch_bytes() bytes, 64-byte aligned, private to this call

  const float* in_f32(std::size_t i) const { return static_cast<const float*>(in[i]); }
  float* out_f32(std::size_t i) const { return static_cast<float*>(out[i]); }
  template <class T>
  const T* in_as(std::size_t i) const {
    return static_cast<const T*>(in[i]);
  }
  template <class T>
  T* out_as(std::size_t i) const {
    return static_cast<T*>(out[i]);
  }
};

/// A node compiled for concrete shapes: kernels chosen, weights prepacked, primitives created.
/// run() is const and may be called concurrently from several Sessions with different OpIO.
class CompiledOp {
 public:
  virtual ~CompiledOp() = default;
  virtual std::size_t scratch_bytes() const { return 0; }
  virtual void run(const OpIO& io) const = 0;
  /// Bytes one run reads of the node's constant inputs as this op stores them (prepacked, at the
  /// precision it computes in: bf16 weights count 2 bytes each), or -1 when it reads them as they are
  /// (each at its dtype's size). Profiles and the bench's roofline count a run's bytes with it.
  virtual double constant_bytes() const { return -1; }
};

}  // namespace quarks::detail
namespace quarks::ops::dense_detail {
class PackedWeightsCache;
}  // namespace quarks::ops::dense_detail
namespace quarks::detail {

struct CompileContext {
  const Node& node;
  const GraphIR& graph;        ///< for constant data: graph.values[node.inputs[i]].data
  std::span<const Shape> in;   ///< concrete input shapes
  std::span<const Shape> out;  ///< concrete output shapes
  int threads = 1;             ///< size of the arena the op will run in
  Precision precision = Precision::kF32;
  /// The model's shared packed weights (its plans pack each constant once per layout), or null.
  ops::dense_detail::PackedWeightsCache* weights_cache = nullptr;

  bool is_constant(std::size_t input) const { return graph.values[node.inputs[input]].kind == ValueKind::kConstant; }
  const float* constant_f32(std::size_t input) const { return graph.values[node.inputs[input]].data.f32(); }
  const Tensor& constant(std::size_t input) const { return graph.values[node.inputs[input]].data; }
  DType in_dtype(std::size_t input) const { return graph.values[node.inputs[input]].dtype; }
  DType out_dtype(std::size_t output) const { return graph.values[node.outputs[output]].dtype; }
};

struct OpSchema {
  /// Checks attributes and input shapes (symbolic at build time, concrete at plan time) and returns
  /// the output shapes. Throws Error with GraphIR::where(node) as the message prefix.
  std::vector<SymShape> (*infer)(const Node& node, const GraphIR& graph, std::span<const SymShape> in);
  /// Index of the input whose buffer the output may reuse (elementwise ops), or -1.
  int (*inplace_input)(const Node& node);
  /// True when the output is the input reinterpreted (reshape): the planner aliases the buffers.
  bool is_view;
  std::unique_ptr<CompiledOp> (*compile)(const CompileContext& ctx);
  /// Checks the input dtypes and returns the output dtypes. Null for ops that take and produce f32
  /// only: the builder then rejects any other input dtype, naming the input.
  std::vector<DType> (*infer_dtypes)(const Node& node, const GraphIR& graph, std::span<const DType> in) = nullptr;
};

}  // namespace quarks::detail
