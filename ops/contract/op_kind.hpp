// The closed list of ops the engine runs.
//
// Adding an op takes four steps, and the static_asserts in ops/contract/op_kind.cc and
// engine/op_registry.cc fail until the first two are done:
//   1. add its kind below (before kCount) and its name to kOpNames in ops/contract/op_kind.cc;
//   2. write its schema (attribute checks, shape inference, in-place rule, compile to a CompiledOp)
//      in ops/<family>/ and list it in the registry table in engine/op_registry.cc;
//   3. add a GraphBuilder method (include/quarks/graph.hpp, engine/graph_builder.cc);
//   4. test the kernel against a scalar double reference in tests/ops/<family>/ and the op through a
//      compiled Model in tests/engine/ops_through_model_test.cc.
#pragma once

#include <cstdint>

namespace quarks::detail {

enum class OpKind : std::uint8_t {
  kDense,
  kGatedDense,  // made by fusion, not by the builder
  kMatMul,
  kSynapticGate,
  kActivation,
  kMultiplex,
  kOutputGate,
  kBinary,
  kSoftmax,
  kLayerNorm,
  kRmsNorm,
  kReshape,
  kTranspose,
  kConcat,
  kSplit,
  kSlice,
  kLogSoftmax,
  kReduce,
  kGather,
  kUnary,
  kWhere,
  kEqual,
  kCast,
  kExpand,
  kAttention,
  kRope,
  kKvCacheLength,  // no inputs: reads the Session's state
  kKvCacheAppend,
  kCount
};
inline constexpr int kOpKindCount = static_cast<int>(OpKind::kCount);

/// "dense", "output_gate", ...
const char* op_name(OpKind op) noexcept;

}  // namespace quarks::detail
