// The schema of every op, defined in its family's folder and collected by engine/op_registry.cc.
#pragma once

#include "ops/contract/op_schema.hpp"

namespace quarks::detail {

extern const OpSchema kDenseSchema;          // ops/dense/dense_ops.cc
extern const OpSchema kGatedDenseSchema;     // ops/dense/dense_ops.cc
extern const OpSchema kMatMulSchema;         // ops/dense/dense_ops.cc
extern const OpSchema kSynapticGateSchema;   // ops/dense/dense_ops.cc
extern const OpSchema kActivationSchema;     // ops/activation/activation_ops.cc
extern const OpSchema kMultiplexSchema;      // ops/activation/activation_ops.cc
extern const OpSchema kOutputGateSchema;     // ops/activation/activation_ops.cc
extern const OpSchema kBinarySchema;         // ops/elementwise/binary_ops.cc
extern const OpSchema kSoftmaxSchema;        // ops/normalization/normalization_ops.cc
extern const OpSchema kLayerNormSchema;      // ops/normalization/normalization_ops.cc
extern const OpSchema kRmsNormSchema;        // ops/normalization/normalization_ops.cc
extern const OpSchema kReshapeSchema;        // ops/layout/layout_ops.cc
extern const OpSchema kTransposeSchema;      // ops/layout/layout_ops.cc
extern const OpSchema kConcatSchema;         // ops/layout/layout_ops.cc
extern const OpSchema kSplitSchema;          // ops/layout/layout_ops.cc
extern const OpSchema kSliceSchema;          // ops/layout/layout_ops.cc
extern const OpSchema kLogSoftmaxSchema;     // ops/normalization/normalization_ops.cc
extern const OpSchema kReduceSchema;         // ops/reduction/reduction_ops.cc
extern const OpSchema kGatherSchema;         // ops/layout/layout_ops.cc
extern const OpSchema kUnarySchema;          // ops/elementwise/unary_ops.cc
extern const OpSchema kWhereSchema;          // ops/elementwise/typed_ops.cc
extern const OpSchema kEqualSchema;          // ops/elementwise/typed_ops.cc
extern const OpSchema kCastSchema;           // ops/elementwise/typed_ops.cc
extern const OpSchema kExpandSchema;         // ops/elementwise/typed_ops.cc
extern const OpSchema kAttentionSchema;      // ops/attention/attention_ops.cc
extern const OpSchema kRopeSchema;           // ops/positional/rope_ops.cc
extern const OpSchema kKvCacheLengthSchema;  // ops/attention/kv_cache_ops.cc
extern const OpSchema kKvCacheAppendSchema;  // ops/attention/kv_cache_ops.cc

}  // namespace quarks::detail
