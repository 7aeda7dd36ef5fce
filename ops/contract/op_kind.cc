// The names of the ops, in OpKind order (error messages, describe(), profiles).
#include "ops/contract/op_kind.hpp"

#include <array>
#include <cstddef>

namespace quarks::detail {
namespace {

constexpr std::array<const char*, kOpKindCount> kOpNames{{
    "dense",            // kDense
    "gated_dense",      // kGatedDense
    "matmul",           // kMatMul
    "synaptic_gate",    // kSynapticGate
    "activation",       // kActivation
    "multiplex",        // kMultiplex
    "output_gate",      // kOutputGate
    "binary",           // kBinary
    "softmax",          // kSoftmax
    "layer_norm",       // kLayerNorm
    "rms_norm",         // kRmsNorm
    "reshape",          // kReshape
    "transpose",        // kTranspose
    "concat",           // kConcat
    "split",            // kSplit
    "slice",            // kSlice
    "log_softmax",      // kLogSoftmax
    "reduce",           // kReduce
    "gather",           // kGather
    "unary",            // kUnary
    "where",            // kWhere
    "equal",            // kEqual
    "cast",             // kCast
    "expand",           // kExpand
    "attention",        // kAttention
    "rope",             // kRope
    "kv_cache_length",  // kKvCacheLength
    "kv_cache_append",  // kKvCacheAppend
}};

constexpr bool every_op_named() {
  for (const char* name : kOpNames)
    if (name == nullptr) return false;
  return true;
}
static_assert(every_op_named(), "every OpKind needs its name in kOpNames, in OpKind order");

}  // namespace

const char* op_name(OpKind op) noexcept {
  const auto i = static_cast<std::size_t>(op);
  return i < kOpNames.size() ? kOpNames[i] : "unknown";
}

}  // namespace quarks::detail
