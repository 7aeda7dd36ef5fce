// The op table: OpKind -> name and schema. Adding an op: see engine/op_kind.hpp.
#include "engine/op_registry.hpp"

#include <array>

#include "ops/op_schemas.hpp"

namespace quarks::detail {
namespace {

struct OpEntry {
  OpKind op;
  const char* name;
  const OpSchema* schema;
};

// In OpKind order; both the count and the order are checked at compile time below.
constexpr std::array<OpEntry, kOpKindCount> kOps{{
    {OpKind::kDense, "dense", &kDenseSchema},
    {OpKind::kGatedDense, "gated_dense", &kGatedDenseSchema},
    {OpKind::kMatMul, "matmul", &kMatMulSchema},
    {OpKind::kSynapticGate, "synaptic_gate", &kSynapticGateSchema},
    {OpKind::kActivation, "activation", &kActivationSchema},
    {OpKind::kMultiplex, "multiplex", &kMultiplexSchema},
    {OpKind::kOutputGate, "output_gate", &kOutputGateSchema},
    {OpKind::kBinary, "binary", &kBinarySchema},
    {OpKind::kSoftmax, "softmax", &kSoftmaxSchema},
    {OpKind::kLayerNorm, "layer_norm", &kLayerNormSchema},
    {OpKind::kRmsNorm, "rms_norm", &kRmsNormSchema},
    {OpKind::kReshape, "reshape", &kReshapeSchema},
    {OpKind::kTranspose, "transpose", &kTransposeSchema},
    {OpKind::kConcat, "concat", &kConcatSchema},
    {OpKind::kSplit, "split", &kSplitSchema},
    {OpKind::kSlice, "slice", &kSliceSchema},
    {OpKind::kLogSoftmax, "log_softmax", &kLogSoftmaxSchema},
    {OpKind::kReduce, "reduce", &kReduceSchema},
    {OpKind::kGather, "gather", &kGatherSchema},
    {OpKind::kUnary, "unary", &kUnarySchema},
    {OpKind::kWhere, "where", &kWhereSchema},
    {OpKind::kEqual, "equal", &kEqualSchema},
    {OpKind::kCast, "cast", &kCastSchema},
    {OpKind::kExpand, "expand", &kExpandSchema},
    {OpKind::kAttention, "attention", &kAttentionSchema},
    {OpKind::kRope, "rope", &kRopeSchema},
    {OpKind::kKvCacheLength, "kv_cache_length", &kKvCacheLengthSchema},
    {OpKind::kKvCacheAppend, "kv_cache_append", &kKvCacheAppendSchema},
}};
static_assert(kOps.size() == static_cast<std::size_t>(OpKind::kCount), "every OpKind needs an entry in kOps");

constexpr bool table_in_order() {
  for (std::size_t i = 0; i < kOps.size(); ++i)
    if (static_cast<std::size_t>(kOps[i].op) != i) return false;
  return true;
}
static_assert(table_in_order(), "kOps must list the ops in OpKind order");

}  // namespace

const OpSchema& schema_of(OpKind op) { return *kOps[static_cast<std::size_t>(op)].schema; }

const char* op_name(OpKind op) noexcept {
  const auto i = static_cast<std::size_t>(op);
  return i < kOps.size() ? kOps[i].name : "unknown";
}

}  // namespace quarks::detail
