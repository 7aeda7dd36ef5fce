// Mappers of the custom domain "ai.quarks" (version 1): the attention quarks as ONNX nodes, so
// models written with onnx.helper can use them directly. Reference: docs/onnx.md.
#include <onnx/onnx_pb.h>

#include "engine/onnx/mappers.hpp"

namespace quarks::onnx_import {
namespace {

// An activation from a string attribute plus its optional parameters (prefix "f_" etc.).
Activation activation_attr(NodeContext& ctx, const std::string& attr, const std::string& param_prefix) {
  const std::string name = ctx.attr_string(attr, "identity");
  const float alpha = ctx.attr_float(param_prefix + "alpha", 0.01f);
  const std::vector<float> coeffs = ctx.attr_floats(param_prefix + "coefficients");
  for (int k = 0; k < kActivationKindCount; ++k) {
    const auto kind = static_cast<ActivationKind>(k);
    if (name != to_string(kind)) continue;
    Activation f{kind};
    if (kind == ActivationKind::kLeakyRelu) f.alpha = alpha;
    if (kind == ActivationKind::kPolynomial) {
      if (coeffs.empty()) ctx.invalid("activation 'polynomial' needs the attribute '" + param_prefix + "coefficients'");
      f.coeffs = coeffs;
    }
    return f;
  }
  ctx.invalid("attribute '" + attr + "' names an unknown activation '" + name +
              "' (identity, relu, leaky_relu, sigmoid, tanh, gelu, gelu_tanh, silu, square, polynomial, sign, "
              "heaviside)");
}

Activation step_kind(NodeContext& ctx) {
  const std::string kind = ctx.attr_string("kind", "heaviside");
  if (kind == "heaviside") return Activation::heaviside();
  if (kind == "sign") return Activation::sign();
  ctx.invalid("attribute 'kind' must be \"heaviside\" or \"sign\", got \"" + kind + "\"");
}

}  // namespace

void map_quarks_multiplex(NodeContext& ctx) {
  ctx.set_output(0, ctx.b().multiplex(ctx.name(), ctx.runtime(0), ctx.runtime(1), ctx.attr_float("lambda", 1.0f),
                                      activation_attr(ctx, "activation", "")));
}

void map_quarks_output_gate(NodeContext& ctx) {
  ctx.set_output(0, ctx.b().output_gate(ctx.name(), ctx.runtime(0), ctx.runtime(1), activation_attr(ctx, "f", "f_"),
                                        activation_attr(ctx, "g", "g_")));
}

void map_quarks_synaptic_gate(NodeContext& ctx) {
  ctx.set_output(0, ctx.b().synaptic_gate(ctx.name(), ctx.runtime(0), ctx.runtime(1), ctx.runtime(2)));
}

// step(x - threshold) as a multiplex: the threshold is an additive (broadcast) attention signal.
void map_quarks_threshold_gate(NodeContext& ctx) {
  const float threshold = ctx.attr_float("threshold", 0.0f);
  const Activation step = step_kind(ctx);
  if (threshold == 0.0f) return ctx.set_output(0, ctx.b().activation(ctx.name(), ctx.runtime(0), step));
  Value t = ctx.b().constant(ctx.sub("threshold"), Tensor::from_f32(Shape{}, {threshold}));
  ctx.set_output(0, ctx.b().multiplex(ctx.name(), ctx.runtime(0), t, -1.0f, step));
}

void map_quarks_polynomial_threshold(NodeContext& ctx) {
  const std::vector<float> coeffs = ctx.attr_floats("coefficients");
  if (coeffs.empty()) ctx.invalid("attribute 'coefficients' is required");
  Value p = ctx.b().activation(ctx.sub("polynomial"), ctx.runtime(0), Activation::polynomial(coeffs));
  ctx.set_output(0, ctx.b().activation(ctx.name(), p, step_kind(ctx)));
}

}  // namespace quarks::onnx_import
