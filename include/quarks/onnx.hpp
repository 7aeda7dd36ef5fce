// quarks — importing ONNX models.
//
//   quarks::Graph g = quarks::load_onnx("model.onnx");          // symbolic dims stay symbolic
//   quarks::OnnxImportOptions opt;
//   opt.input_shapes["x"] = quarks::Shape{1, 128, 768};        // or fix every input's shape
//   quarks::Model m = quarks::compile(quarks::load_onnx("model.onnx", opt));
//
// Supported: opsets 13-17 of the default domain (plus Gelu from opset 20) and the custom domain
// "ai.quarks" (Multiplex, OutputGate, SynapticGate, ThresholdGate, PolynomialThreshold); see
// docs/onnx.md. Import folds constant and shape subgraphs, then maps the graph onto quarks ops and
// fuses known patterns (MatMul+Add -> dense, GELU/SiLU chains -> activations, x·sigmoid(y) ->
// output_gate, decomposed norms -> norm ops). Every error names the node, its op type, domain and
// opset, and the reason; a malformed or hostile file gives an Error, never a crash.
#pragma once

#include <cstddef>
#include <filesystem>
#include <map>
#include <span>
#include <string>
#include <vector>

#include "quarks/graph.hpp"
#include "quarks/tensor.hpp"

namespace quarks {

struct OnnxImportOptions {
  /// Concrete shapes for graph inputs, by name; they replace the model's declared (possibly
  /// symbolic) shapes and must agree with its fixed dims. Fully static inputs let import fold every
  /// shape computation.
  std::map<std::string, Shape> input_shapes;
  /// Sizes for symbolic dims by name ("batch" -> 1), applied to every input that uses the symbol.
  std::map<std::string, std::int64_t> dims;
  /// Graph inputs to bind as constants (e.g. a Reshape's shape input): they become initializers and
  /// are folded; they are no longer inputs of the imported Graph.
  std::map<std::string, Tensor> constant_inputs;
  /// Map known patterns onto fused quark ops (on by default; off shows the plain op-by-op mapping).
  bool fuse = true;
  /// Refuse models larger than this (bytes of the protobuf plus external data).
  std::size_t max_model_bytes = std::size_t{4} << 30;
};

/// Imports an ONNX model file. External data files are resolved relative to the model's folder and
/// must stay inside it. Throws quarks::Error.
Graph load_onnx(const std::filesystem::path& path, const OnnxImportOptions& options = {});

/// Imports an ONNX model from serialized bytes. `external_data_dir` is where external tensor data
/// files are looked up (empty: external data is refused).
Graph load_onnx_bytes(std::span<const std::byte> bytes, const OnnxImportOptions& options = {},
                      const std::filesystem::path& external_data_dir = {});

/// The ONNX op types import supports, as "Add", "ai.quarks:Multiplex", ...
std::vector<std::string> onnx_supported_ops();

/// Reads one serialized onnx.TensorProto file (the input_N.pb / output_N.pb of ONNX's test data).
/// Supports float, double (converted to f32), int64, int32 (converted to i64) and bool.
Tensor load_onnx_tensor(const std::filesystem::path& path);

}  // namespace quarks
