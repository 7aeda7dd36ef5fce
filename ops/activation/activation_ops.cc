// Schemas of the activation family: activation, multiplex (additive activation attention) and
// output_gate (multiplicative output attention).
#include <cmath>

#include "ops/activation/activation_kernels.hpp"
#include "ops/contract/parallel.hpp"
#include "ops/contract/shape_utils.hpp"
#include "ops/elementwise/broadcast.hpp"
#include "ops/op_schemas.hpp"

namespace quarks::detail {
namespace {

void check_activation(const Node& node, const Activation& f, const char* which) {
  if (f.kind == ActivationKind::kPolynomial && (f.coeffs.empty() || f.coeffs.size() > 16)) {
    attr_error(node,
               std::string(which) + " polynomial needs 1 to 16 coefficients, got " + std::to_string(f.coeffs.size()));
  }
  if (f.kind == ActivationKind::kLeakyRelu && !std::isfinite(f.alpha)) {
    attr_error(node, std::string(which) + " leaky_relu slope must be finite");
  }
}

void check_arity(const Node& node, std::size_t n) {
  if (node.inputs.size() != n) {
    attr_error(node, "expects " + std::to_string(n) + " inputs, got " + std::to_string(node.inputs.size()));
  }
}

int first_input_in_place(const Node&) { return 0; }

// --- activation ---------------------------------------------------------------------------------

std::vector<SymShape> infer_activation(const Node& node, const GraphIR&, std::span<const SymShape> in) {
  check_arity(node, 1);
  check_activation(node, node.attr<ActivationAttrs>().f, "f:");
  return {in[0]};
}

class ActivationOp final : public CompiledOp {
 public:
  ActivationOp(Activation f, std::int64_t n) : f_(std::move(f)), n_(n) {}
  void run(const OpIO& io) const override {
    parallel_blocks(n_, kElementwiseGrain, [&](std::int64_t b, std::int64_t e) {
      ops::activation(f_, io.in_f32(0) + b, io.out_f32(0) + b, static_cast<std::size_t>(e - b));
    });
  }

 private:
  Activation f_;
  std::int64_t n_;
};

std::unique_ptr<CompiledOp> compile_activation(const CompileContext& ctx) {
  return std::make_unique<ActivationOp>(ctx.node.attr<ActivationAttrs>().f, ctx.out[0].numel());
}

// --- multiplex ----------------------------------------------------------------------------------

std::vector<SymShape> infer_multiplex(const Node& node, const GraphIR& g, std::span<const SymShape> in) {
  check_arity(node, 2);
  check_activation(node, node.attr<MultiplexAttrs>().f, "f:");
  const SymShape b = broadcast_shapes(node, g, in[0], in[1]);
  bool same = b.size() == in[0].size();
  for (std::size_t i = 0; same && i < b.size(); ++i) same = may_equal(b[i], in[0][i]);
  if (!same) {
    shape_error(node, "attention input '" + input_name(node, g, 1) + "' " + to_string(in[1]) +
                          " must broadcast to the activation '" + input_name(node, g, 0) + "' " + to_string(in[0]));
  }
  return {in[0]};
}

class MultiplexOp final : public CompiledOp {
 public:
  MultiplexOp(const MultiplexAttrs& a, const Shape& s, const Shape& att) : attrs_(a), loop_(s, {s, att}) {}
  void run(const OpIO& io) const override {
    parallel_blocks(loop_.total(), kElementwiseGrain, [&](std::int64_t b, std::int64_t e) {
      loop_.for_each_run(
          b, e, [&](const std::int64_t* off, const std::int64_t* stride, std::int64_t y, std::int64_t n) {
            ops::multiplex(attrs_.f, io.in_f32(0) + off[0], io.in_f32(1) + off[1], static_cast<std::size_t>(stride[1]),
                           attrs_.lambda, io.out_f32(0) + y, static_cast<std::size_t>(n));
          });
    });
  }

 private:
  MultiplexAttrs attrs_;
  ops::BroadcastLoop loop_;
};

std::unique_ptr<CompiledOp> compile_multiplex(const CompileContext& ctx) {
  return std::make_unique<MultiplexOp>(ctx.node.attr<MultiplexAttrs>(), ctx.in[0], ctx.in[1]);
}

// --- output_gate --------------------------------------------------------------------------------

std::vector<SymShape> infer_output_gate(const Node& node, const GraphIR& g, std::span<const SymShape> in) {
  check_arity(node, 2);
  const OutputGateAttrs& a = node.attr<OutputGateAttrs>();
  check_activation(node, a.f, "f:");
  check_activation(node, a.g, "g:");
  bool same = in[0].size() == in[1].size();
  for (std::size_t i = 0; same && i < in[0].size(); ++i) same = may_equal(in[0][i], in[1][i]);
  if (!same) {
    shape_error(node, "inputs '" + input_name(node, g, 0) + "' " + to_string(in[0]) + " and '" +
                          input_name(node, g, 1) + "' " + to_string(in[1]) + " must have the same shape");
  }
  SymShape out = in[0];
  for (std::size_t i = 0; i < out.size(); ++i)
    if (!out[i].known()) out[i] = in[1][i];
  return {out};
}

class OutputGateOp final : public CompiledOp {
 public:
  OutputGateOp(OutputGateAttrs a, std::int64_t n) : attrs_(std::move(a)), n_(n) {}
  void run(const OpIO& io) const override {
    parallel_blocks(n_, kElementwiseGrain, [&](std::int64_t b, std::int64_t e) {
      ops::output_gate(attrs_.f, attrs_.g, io.in_f32(0) + b, io.in_f32(1) + b, io.out_f32(0) + b,
                       static_cast<std::size_t>(e - b));
    });
  }

 private:
  OutputGateAttrs attrs_;
  std::int64_t n_;
};

std::unique_ptr<CompiledOp> compile_output_gate(const CompileContext& ctx) {
  return std::make_unique<OutputGateOp>(ctx.node.attr<OutputGateAttrs>(), ctx.out[0].numel());
}

}  // namespace

const OpSchema kActivationSchema{infer_activation, first_input_in_place, false, compile_activation};
const OpSchema kMultiplexSchema{infer_multiplex, first_input_in_place, false, compile_multiplex};
const OpSchema kOutputGateSchema{infer_output_gate, first_input_in_place, false, compile_output_gate};

}  // namespace quarks::detail
