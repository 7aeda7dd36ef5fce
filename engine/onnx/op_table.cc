// The ONNX ops quarks imports: (domain, op type) -> mapper and optional host fold.
#include "engine/onnx/mappers.hpp"
#include "quarks/onnx.hpp"

namespace quarks::onnx_import {

const std::vector<OpEntry>& op_table() {
  static const std::vector<OpEntry> table = {
      // elementwise arithmetic and comparisons
      {"", "Add", map_binary, fold_binary},
      {"", "Sub", map_binary, fold_binary},
      {"", "Mul", map_binary, fold_binary},
      {"", "Div", map_binary, fold_binary},
      {"", "Pow", map_binary, fold_binary},
      {"", "Max", map_binary, fold_binary},
      {"", "Min", map_binary, fold_binary},
      {"", "Equal", map_equal, fold_equal},
      {"", "Where", map_where, fold_where},
      {"", "Cast", map_cast, fold_cast},
      {"", "Identity", map_identity, fold_identity},
      // unary functions and activations
      {"", "Neg", map_unary, fold_unary},
      {"", "Abs", map_unary, fold_unary},
      {"", "Exp", map_unary},
      {"", "Log", map_unary},
      {"", "Sqrt", map_unary},
      {"", "Reciprocal", map_unary},
      {"", "Erf", map_unary},
      {"", "Relu", map_activation},
      {"", "Sigmoid", map_activation},
      {"", "Tanh", map_activation},
      {"", "LeakyRelu", map_activation},
      {"", "HardSigmoid", map_activation},
      {"", "Gelu", map_activation},
      {"", "Clip", map_clip},
      // shapes and layout
      {"", "Shape", map_shape, fold_shape},
      {"", "Size", map_size, fold_size},
      {"", "Constant", map_constant},
      {"", "ConstantOfShape", map_constant_of_shape, fold_constant_of_shape},
      {"", "Range", map_range, fold_range},
      {"", "Reshape", map_reshape, fold_reshape},
      {"", "Flatten", map_flatten, fold_flatten},
      {"", "Squeeze", map_squeeze, fold_squeeze},
      {"", "Unsqueeze", map_unsqueeze, fold_unsqueeze},
      {"", "Transpose", map_transpose},
      {"", "Concat", map_concat, fold_concat},
      {"", "Split", map_split},
      {"", "Slice", map_slice, fold_slice},
      {"", "Gather", map_gather, fold_gather},
      {"", "Expand", map_expand},
      // products, normalisation, reductions
      {"", "MatMul", map_matmul},
      {"", "Gemm", map_gemm},
      {"", "Softmax", map_softmax},
      {"", "LogSoftmax", map_softmax},
      {"", "LayerNormalization", map_layer_norm},
      {"", "ReduceMean", map_reduce},
      {"", "ReduceSum", map_reduce},
      {"", "ReduceMax", map_reduce},
      {"", "ReduceMin", map_reduce},
      // the attention quarks
      {"ai.quarks", "Multiplex", map_quarks_multiplex},
      {"ai.quarks", "OutputGate", map_quarks_output_gate},
      {"ai.quarks", "SynapticGate", map_quarks_synaptic_gate},
      {"ai.quarks", "ThresholdGate", map_quarks_threshold_gate},
      {"ai.quarks", "PolynomialThreshold", map_quarks_polynomial_threshold},
  };
  return table;
}

}  // namespace quarks::onnx_import

std::vector<std::string> quarks::onnx_supported_ops() {
  std::vector<std::string> out;
  for (const onnx_import::OpEntry& e : onnx_import::op_table())
    out.push_back(std::string(e.domain).empty() ? e.op_type : std::string(e.domain) + ":" + e.op_type);
  return out;
}

namespace quarks::onnx_import {

const OpEntry* find_op(const std::string& domain, const std::string& op_type) {
  for (const OpEntry& e : op_table())
    if (domain == e.domain && op_type == e.op_type) return &e;
  return nullptr;
}

}  // namespace quarks::onnx_import
