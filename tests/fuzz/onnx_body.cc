// Fuzz body of the ONNX loader: import, then compile and run with zero-filled inputs.
#include <onnx/onnx_pb.h>

#include <algorithm>
#include <iostream>
#include <string>
#include <vector>

#include "fuzz/fuzz_bodies.hpp"
#include "quarks/onnx.hpp"
#include "quarks/quarks.hpp"

namespace quarks::fuzz {
namespace {

// Caps for running a model that loaded: skip inputs above this many elements, and cap the arena.
constexpr std::int64_t kMaxRunElements = 1 << 20;
constexpr std::size_t kMaxArenaBytes = std::size_t{256} << 20;
constexpr std::int64_t kSymbolicDimSize = 2;

// "[batch,128]" -> {2, 128}: symbolic dims get kSymbolicDimSize.
Shape concrete_shape(const std::string& text) {
  Shape s;
  std::string dim;
  for (char c : text.substr(1)) {
    if (c == ',' || c == ']') {
      if (dim.empty()) break;
      const bool number = std::all_of(dim.begin(), dim.end(), [](char d) { return d >= '0' && d <= '9'; });
      s.push_back(number ? std::stoll(dim) : kSymbolicDimSize);
      dim.clear();
    } else {
      dim += c;
    }
  }
  return s;
}

// Binds each symbolic input dim of the model in `bytes` to kSymbolicDimSize (named as the importer
// names them); false if there are none or the bytes don't parse.
bool bind_symbolic_dims(std::span<const std::byte> bytes, OnnxImportOptions* options) {
  onnx::ModelProto m;
  if (!m.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) return false;
  for (const auto& in : m.graph().input()) {
    const auto& shape = in.type().tensor_type().shape();
    for (int i = 0; i < shape.dim_size(); ++i) {
      if (shape.dim(i).has_dim_value()) continue;
      const std::string& p = shape.dim(i).dim_param();
      options->dims[p.empty() ? in.name() + "_dim" + std::to_string(i) : p] = kSymbolicDimSize;
    }
  }
  return !options->dims.empty();
}

}  // namespace

void fuzz_onnx_model(std::span<const std::byte> bytes, FuzzStats* stats, int verbose) {
  FuzzStats unused;
  FuzzStats& st = stats ? *stats : unused;
  auto note = [verbose](const char* stage, const Error& e) {
    if (verbose >= 2) std::cerr << "  " << stage << ": " << e.what() << "\n";
  };
  ++st.cases;
  Graph graph;
  try {
    graph = load_onnx_bytes(bytes);
  } catch (const Error& e) {
    // Some models import only with concrete shapes: retry with every symbolic dim bound.
    note("load", e);
    OnnxImportOptions options;
    if (e.code() != ErrorCode::kUnsupported || !bind_symbolic_dims(bytes, &options)) return;
    try {
      graph = load_onnx_bytes(bytes, options);
    } catch (const Error& e2) {
      return note("load with dims bound", e2);
    }
  }
  ++st.loaded;
  CompileOptions copt;
  copt.threads = 1;
  copt.max_arena_bytes = kMaxArenaBytes;
  Model model;
  try {
    model = compile(graph, copt);
  } catch (const Error& e) {
    return note("compile", e);
  }
  ++st.compiled;
  std::vector<Tensor> tensors;
  std::vector<std::string> names = graph.input_names();
  for (const std::string& name : names) {
    Shape shape;
    try {
      shape = concrete_shape(graph.input_shape_string(name));
    } catch (const Error&) {
      return;  // a declared shape quarks' Shape cannot hold
    }
    std::int64_t n = 1;
    for (std::int64_t d : shape) {
      if (d > kMaxRunElements || (d > 0 && n > kMaxRunElements / d)) return;
      n *= d;
    }
    if (n > kMaxRunElements) return;
    tensors.emplace_back(graph.input_dtype(name), shape);
  }
  std::vector<NamedInput> inputs;
  for (std::size_t i = 0; i < names.size(); ++i) inputs.push_back({names[i], tensors[i]});
  try {
    Session session(model);
    session.run(inputs);
    ++st.ran;
  } catch (const Error& e) {
    note("run", e);
  }
}

}  // namespace quarks::fuzz
