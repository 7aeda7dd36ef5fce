// Mappers of the neural-network ONNX ops: MatMul, Gemm, Softmax, LogSoftmax, LayerNormalization,
// ReduceMean / ReduceSum. Products with a constant 2-D right operand become quarks dense ops (weights
// prepacked at compile time); products of two runtime tensors become matmul.
#include <onnx/onnx_pb.h>

#include "engine/onnx/host_eval.hpp"
#include "engine/onnx/mappers.hpp"
#include "ops/contract/shape_utils.hpp"

namespace quarks::onnx_import {
namespace {

Tensor transpose_2d(const Tensor& w) {
  const std::int64_t r = w.shape()[0], c = w.shape()[1];
  Tensor t(DType::kF32, Shape{c, r});
  for (std::int64_t i = 0; i < r; ++i)
    for (std::int64_t j = 0; j < c; ++j) t.f32()[j * r + i] = w.f32()[i * c + j];
  return t;
}

SymShape ctx_shape_of(NodeContext& ctx, Value v) {
  SymShape s;
  for (const Dim& d : ctx.b().dims(v)) s.push_back({d.value, d.symbol});
  return s;
}

Tensor scaled(const Tensor& w, float alpha) {
  if (alpha == 1.0f) return w;
  Tensor t = w.clone();
  for (std::int64_t i = 0; i < t.numel(); ++i) t.f32()[i] *= alpha;
  return t;
}

void require_f32_inputs(NodeContext& ctx, std::size_t count = SIZE_MAX) {
  for (std::size_t i = 0; i < std::min(count, ctx.input_count()); ++i) {
    if (ctx.has_input(i) && ctx.dtype(i) != DType::kF32) {
      ctx.unsupported("input " + std::to_string(i) + " is " + to_string(ctx.dtype(i)) + "; this op runs in f32");
    }
  }
}

}  // namespace

void map_matmul(NodeContext& ctx) {
  require_f32_inputs(ctx);
  const int ra = ctx.rank(0), rb = ctx.rank(1);
  if (ra == 0 || rb == 0) ctx.invalid("MatMul operands must have rank >= 1");
  const bool vector_operand = ra == 1 || rb == 1;
  // NumPy semantics for 1-D operands: a becomes [1, K], b becomes [K, 1], and the added dim is
  // removed from the result.
  Value a = ctx.runtime(0);
  if (ra == 1) a = ctx.b().reshape(ctx.sub("a2d"), a, {1, -1});
  const std::string product_name = vector_operand ? ctx.sub("product") : ctx.name();
  Value y;
  if (ctx.is_const(1) && rb == 2) {
    y = ctx.b().dense(product_name, a, ctx.runtime(1));
  } else {
    Value b = ctx.runtime(1);
    if (rb == 1) b = ctx.b().reshape(ctx.sub("b2d"), b, {-1, 1});
    y = ctx.b().matmul(product_name, a, b);
  }
  if (vector_operand) {
    std::vector<std::int64_t> spec;
    if (!(ra == 1 && rb == 1)) {
      const std::size_t rank_y = ctx.b().dims(y).size();
      spec.assign(rank_y - 2, 0);
      spec.push_back(-1);
    }
    y = ctx.b().reshape(ctx.name(), y, spec);
  }
  ctx.set_output(0, y);
}

void map_gemm(NodeContext& ctx) {
  require_f32_inputs(ctx);
  const float alpha = ctx.attr_float("alpha", 1.0f), beta = ctx.attr_float("beta", 1.0f);
  const bool trans_a = ctx.attr_int("transA", 0) != 0, trans_b = ctx.attr_int("transB", 0) != 0;
  if (ctx.rank(0) != 2 || ctx.rank(1) != 2) ctx.invalid("Gemm operands must be 2-D");
  Value a = ctx.runtime(0);
  if (trans_a) a = ctx.b().transpose(ctx.sub("transA"), a, {1, 0});
  const bool has_c = ctx.has_input(2) && beta != 0.0f;
  if (ctx.is_const(1)) {
    Tensor w = scaled(trans_b ? transpose_2d(ctx.const_tensor(1)) : ctx.const_tensor(1), alpha);
    const std::int64_t n = w.shape()[1];
    Value wv = ctx.b().constant(ctx.sub("W"), w);
    // A bias of shape [N] or [1, N] goes into the dense op; other shapes of C are added afterwards.
    if (has_c && ctx.is_const(2)) {
      const Tensor& c = ctx.const_tensor(2);
      const bool row = (c.shape().rank() == 1 && c.shape()[0] == n) ||
                       (c.shape().rank() == 2 && c.shape()[0] == 1 && c.shape()[1] == n);
      if (row) {
        Tensor bias = scaled(c, beta);
        bias = Tensor::from_f32(Shape{n}, std::span<const float>(bias.f32(), static_cast<std::size_t>(n)));
        return ctx.set_output(0, ctx.b().dense(ctx.name(), a, wv, ctx.b().constant(ctx.sub("b"), bias)));
      }
    }
    Value y = ctx.b().dense(has_c ? ctx.sub("dense") : ctx.name(), a, wv);
    if (has_c) {
      Value c = ctx.runtime(2);
      if (beta != 1.0f)
        c = ctx.b().mul(ctx.sub("beta"), c, ctx.b().constant(ctx.sub("beta_c"), Tensor::from_f32(Shape{}, {beta})));
      y = ctx.b().add(ctx.name(), y, c);
    }
    return ctx.set_output(0, y);
  }
  Value y = ctx.b().matmul(ctx.sub("matmul"), a, ctx.runtime(1), false, trans_b);
  if (alpha != 1.0f)
    y = ctx.b().mul(ctx.sub("alpha"), y, ctx.b().constant(ctx.sub("alpha_c"), Tensor::from_f32(Shape{}, {alpha})));
  if (has_c) {
    Value c = ctx.runtime(2);
    if (beta != 1.0f)
      c = ctx.b().mul(ctx.sub("beta"), c, ctx.b().constant(ctx.sub("beta_c"), Tensor::from_f32(Shape{}, {beta})));
    y = ctx.b().add(ctx.sub("add"), y, c);
  }
  ctx.set_output(0, ctx.b().activation(ctx.name(), y, Activation::identity()));
}

void map_softmax(NodeContext& ctx) {
  require_f32_inputs(ctx);
  const int axis = ctx.to_axis(ctx.attr_int("axis", -1));
  if (ctx.op_type() == "LogSoftmax") return ctx.set_output(0, ctx.b().log_softmax(ctx.name(), ctx.runtime(0), axis));
  ctx.set_output(0, ctx.b().softmax(ctx.name(), ctx.runtime(0), axis));
}

// LayerNormalization over the dims from `axis` on: flattened to one last axis for quarks'
// layer_norm when axis is not the last; the optional Mean and InvStdDev outputs are computed with
// separate reductions.
void map_layer_norm(NodeContext& ctx) {
  require_f32_inputs(ctx);
  const SymShape xs = ctx.shape(0);
  const int rank = static_cast<int>(xs.size());
  std::int64_t axis = ctx.attr_int("axis", -1);
  if (axis < -rank || axis >= rank)
    ctx.invalid("axis " + std::to_string(axis) + " is out of range for rank " + std::to_string(rank));
  if (axis < 0) axis += rank;
  const float eps = ctx.attr_float("epsilon", 1e-5f);
  const SymShape inner(xs.begin() + axis, xs.end());
  const std::int64_t width = detail::known_numel(inner);
  if (width < 0 && axis != rank - 1) ctx.unsupported("normalising over several symbolic dims is not supported");

  // Scale and bias as [C] constants, broadcast to the normalised dims first if they are smaller.
  auto channel_vector = [&](std::size_t i) {
    const Tensor& t = ctx.const_tensor(i);
    if (t.dtype() != DType::kF32) ctx.invalid("input " + std::to_string(i) + " must be float");
    const std::int64_t c = width >= 0 ? width : t.numel();
    Shape inner_shape;
    if (width >= 0) {
      for (const SymDim& d : inner) inner_shape.push_back(d.value);
    } else {
      inner_shape.push_back(c);
    }
    if (t.shape().rank() > inner_shape.rank())
      ctx.fail(ErrorCode::kShapeMismatch, "input " + std::to_string(i) + " " + t.shape().to_string() +
                                              " does not broadcast to the normalised dims " + inner_shape.to_string());
    const Shape b = broadcast_shape(t.shape(), inner_shape);
    if (!(b == inner_shape))
      ctx.fail(ErrorCode::kShapeMismatch, "input " + std::to_string(i) + " " + t.shape().to_string() +
                                              " does not broadcast to the normalised dims " + inner_shape.to_string());
    const auto index = broadcast_index(t.shape(), inner_shape);
    Tensor out(DType::kF32, Shape{c});
    for (std::int64_t k = 0; k < c; ++k) out.f32()[k] = t.f32()[index[static_cast<std::size_t>(k)]];
    return out;
  };
  Value x = ctx.runtime(0);
  Value flat = x;
  if (axis != rank - 1) {
    std::vector<std::int64_t> spec(static_cast<std::size_t>(axis), 0);
    spec.push_back(width);
    flat = ctx.b().reshape(ctx.sub("flatten"), x, spec);
  }
  std::optional<Value> scale, bias;
  scale = ctx.b().constant(ctx.sub("scale"), channel_vector(1));
  if (ctx.has_input(2)) bias = ctx.b().constant(ctx.sub("bias"), channel_vector(2));
  Value y = ctx.b().layer_norm(axis != rank - 1 ? ctx.sub("norm") : ctx.name(), flat, scale, bias, eps);
  if (axis != rank - 1) {
    std::vector<SymInt> target;
    for (const SymDim& d : xs) target.push_back(SymInt::from_dim(d));
    y = ctx.b().reshape(ctx.name(), y, reshape_spec(ctx_shape_of(ctx, y), target));
  }
  ctx.set_output(0, y);
  if (ctx.wants_output(1) || ctx.wants_output(2)) {
    std::vector<int> axes;
    for (int a = static_cast<int>(axis); a < rank; ++a) axes.push_back(a);
    Value mean = ctx.b().reduce(ctx.sub("mean"), ReduceOpKind::kMean, x, axes, true);
    ctx.set_output(1, mean);
    if (ctx.wants_output(2)) {
      Value d = ctx.b().sub(ctx.sub("centred"), x, mean);
      Value var = ctx.b().reduce(ctx.sub("var"), ReduceOpKind::kMean,
                                 ctx.b().activation(ctx.sub("sq"), d, Activation::square()), axes, true);
      Value v_eps =
          ctx.b().add(ctx.sub("var_eps"), var, ctx.b().constant(ctx.sub("eps"), Tensor::from_f32(Shape{}, {eps})));
      Value sd = ctx.b().unary(ctx.sub("std"), UnaryOpKind::kSqrt, v_eps);
      ctx.set_output(2, ctx.b().unary(ctx.sub("inv_std"), UnaryOpKind::kReciprocal, sd));
    }
  }
}

void map_reduce(NodeContext& ctx) {
  require_f32_inputs(ctx, 1);  // input 1 (opset 13+ ReduceSum, 18+ others) holds the axes
  const std::string& op = ctx.op_type();
  const ReduceOpKind k = op == "ReduceSum"    ? ReduceOpKind::kSum
                         : op == "ReduceMean" ? ReduceOpKind::kMean
                         : op == "ReduceMax"  ? ReduceOpKind::kMax
                                              : ReduceOpKind::kMin;
  std::vector<std::int64_t> axes = ctx.has_input(1) ? ctx.const_ints(1) : ctx.attr_ints("axes");
  const bool keepdims = ctx.attr_int("keepdims", 1) != 0;
  if (axes.empty() && ctx.attr_int("noop_with_empty_axes", 0) != 0) {
    return ctx.set_output(0, ctx.b().activation(ctx.name(), ctx.runtime(0), Activation::identity()));
  }
  std::vector<int> ax;
  for (std::int64_t a : axes) ax.push_back(ctx.to_axis(a));
  ctx.set_output(0, ctx.b().reduce(ctx.name(), k, ctx.runtime(0), ax, keepdims));
}

}  // namespace quarks::onnx_import
