// The op table: OpKind -> schema (the names are in ops/contract/op_kind.cc). Adding an op: see
// ops/contract/op_kind.hpp.
#include "engine/op_registry.hpp"

#include <array>

#include "ops/op_schemas.hpp"

namespace quarks::detail {
namespace {

struct OpEntry {
  OpKind op;
  const OpSchema* schema;
};

// In OpKind order; both the count and the order are checked at compile time below.
constexpr std::array<OpEntry, kOpKindCount> kOps{{
    {OpKind::kDense, &kDenseSchema},
    {OpKind::kGatedDense, &kGatedDenseSchema},
    {OpKind::kMatMul, &kMatMulSchema},
    {OpKind::kSynapticGate, &kSynapticGateSchema},
    {OpKind::kActivation, &kActivationSchema},
    {OpKind::kMultiplex, &kMultiplexSchema},
    {OpKind::kOutputGate, &kOutputGateSchema},
    {OpKind::kBinary, &kBinarySchema},
    {OpKind::kSoftmax, &kSoftmaxSchema},
    {OpKind::kLayerNorm, &kLayerNormSchema},
    {OpKind::kRmsNorm, &kRmsNormSchema},
    {OpKind::kReshape, &kReshapeSchema},
    {OpKind::kTranspose, &kTransposeSchema},
    {OpKind::kConcat, &kConcatSchema},
    {OpKind::kSplit, &kSplitSchema},
    {OpKind::kSlice, &kSliceSchema},
    {OpKind::kLogSoftmax, &kLogSoftmaxSchema},
    {OpKind::kReduce, &kReduceSchema},
    {OpKind::kGather, &kGatherSchema},
    {OpKind::kUnary, &kUnarySchema},
    {OpKind::kWhere, &kWhereSchema},
    {OpKind::kEqual, &kEqualSchema},
    {OpKind::kCast, &kCastSchema},
    {OpKind::kExpand, &kExpandSchema},
    {OpKind::kAttention, &kAttentionSchema},
    {OpKind::kRope, &kRopeSchema},
    {OpKind::kKvCacheLength, &kKvCacheLengthSchema},
    {OpKind::kKvCacheAppend, &kKvCacheAppendSchema},
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

}  // namespace quarks::detail
