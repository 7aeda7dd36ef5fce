// The op mappers and host folds, grouped by the file that defines them; op_table.cc binds them to
// ONNX op types.
#pragma once

#include "engine/onnx/import_context.hpp"

namespace quarks::onnx_import {

// map_elementwise.cc
void map_binary(NodeContext& ctx);
bool fold_binary(NodeContext& ctx);
void map_equal(NodeContext& ctx);
bool fold_equal(NodeContext& ctx);
void map_where(NodeContext& ctx);
bool fold_where(NodeContext& ctx);
void map_cast(NodeContext& ctx);
bool fold_cast(NodeContext& ctx);
void map_identity(NodeContext& ctx);
bool fold_identity(NodeContext& ctx);
void map_unary(NodeContext& ctx);
bool fold_unary(NodeContext& ctx);
void map_activation(NodeContext& ctx);
void map_clip(NodeContext& ctx);

// map_shape.cc
void map_shape(NodeContext& ctx);
bool fold_shape(NodeContext& ctx);
void map_size(NodeContext& ctx);
bool fold_size(NodeContext& ctx);
void map_constant(NodeContext& ctx);
void map_constant_of_shape(NodeContext& ctx);
bool fold_constant_of_shape(NodeContext& ctx);
void map_range(NodeContext& ctx);
bool fold_range(NodeContext& ctx);
void map_reshape(NodeContext& ctx);
bool fold_reshape(NodeContext& ctx);
void map_flatten(NodeContext& ctx);
bool fold_flatten(NodeContext& ctx);
void map_squeeze(NodeContext& ctx);
bool fold_squeeze(NodeContext& ctx);
void map_unsqueeze(NodeContext& ctx);
bool fold_unsqueeze(NodeContext& ctx);
void map_transpose(NodeContext& ctx);
void map_concat(NodeContext& ctx);
bool fold_concat(NodeContext& ctx);
void map_split(NodeContext& ctx);
void map_slice(NodeContext& ctx);
bool fold_slice(NodeContext& ctx);
void map_gather(NodeContext& ctx);
bool fold_gather(NodeContext& ctx);
void map_expand(NodeContext& ctx);

// map_nn.cc
void map_matmul(NodeContext& ctx);
void map_gemm(NodeContext& ctx);
void map_softmax(NodeContext& ctx);
void map_layer_norm(NodeContext& ctx);
void map_reduce(NodeContext& ctx);

// map_quarks.cc (domain ai.quarks)
void map_quarks_multiplex(NodeContext& ctx);
void map_quarks_output_gate(NodeContext& ctx);
void map_quarks_synaptic_gate(NodeContext& ctx);
void map_quarks_threshold_gate(NodeContext& ctx);
void map_quarks_polynomial_threshold(NodeContext& ctx);

}  // namespace quarks::onnx_import
