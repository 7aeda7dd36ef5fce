// Schema of the f32 unary elementwise op: neg, abs, exp, log, sqrt, reciprocal, erf, clip, hard_sigmoid.
#include <cmath>
#include <cstdio>

#include "ops/contract/parallel.hpp"
#include "ops/contract/shape_utils.hpp"
#include "ops/elementwise/unary_kernels.hpp"
#include "ops/op_schemas.hpp"

namespace quarks::detail {
namespace {

std::string number(float v) {
  char text[32];
  std::snprintf(text, sizeof(text), "%.9g", static_cast<double>(v));
  return text;
}

ops::UnaryOp kernel_op(UnaryOpKind k) {
  switch (k) {
    case UnaryOpKind::kNeg: return ops::UnaryOp::kNeg;
    case UnaryOpKind::kAbs: return ops::UnaryOp::kAbs;
    case UnaryOpKind::kExp: return ops::UnaryOp::kExp;
    case UnaryOpKind::kLog: return ops::UnaryOp::kLog;
    case UnaryOpKind::kSqrt: return ops::UnaryOp::kSqrt;
    case UnaryOpKind::kReciprocal: return ops::UnaryOp::kReciprocal;
    case UnaryOpKind::kErf: return ops::UnaryOp::kErf;
    case UnaryOpKind::kClip: return ops::UnaryOp::kClip;
    case UnaryOpKind::kHardSigmoid: return ops::UnaryOp::kHardSigmoid;
  }
  return ops::UnaryOp::kNeg;  // not reached: infer_unary rejects other values
}

std::vector<SymShape> infer_unary(const Node& node, const GraphIR&, std::span<const SymShape> in) {
  if (node.inputs.size() != 1) attr_error(node, "expects 1 input, got " + std::to_string(node.inputs.size()));
  const UnaryAttrs& a = node.attr<UnaryAttrs>();
  const auto op = static_cast<int>(a.op);
  if (op < static_cast<int>(UnaryOpKind::kNeg) || op > static_cast<int>(UnaryOpKind::kHardSigmoid)) {
    attr_error(node, "unknown UnaryOpKind value " + std::to_string(op));
  }
  // !(lo <= hi) also rejects NaN bounds; infinite bounds are fine (one-sided clips).
  if (a.op == UnaryOpKind::kClip && !(a.a <= a.b)) {
    attr_error(node, "clip needs lo <= hi, got lo = " + number(a.a) + " and hi = " + number(a.b));
  }
  if (a.op == UnaryOpKind::kHardSigmoid && !(std::isfinite(a.a) && std::isfinite(a.b))) {
    attr_error(node,
               "hard_sigmoid needs finite alpha and beta, got alpha = " + number(a.a) + " and beta = " + number(a.b));
  }
  return {in[0]};
}

class UnaryOp final : public CompiledOp {
 public:
  UnaryOp(const UnaryAttrs& a, std::int64_t n) : op_(kernel_op(a.op)), a_(a.a), b_(a.b), n_(n) {}
  void run(const OpIO& io) const override {
    parallel_blocks(n_, kElementwiseGrain, [&](std::int64_t b, std::int64_t e) {
      ops::unary(op_, a_, b_, io.in_f32(0) + b, io.out_f32(0) + b, static_cast<std::size_t>(e - b));
    });
  }

 private:
  ops::UnaryOp op_;
  float a_, b_;
  std::int64_t n_;
};

std::unique_ptr<CompiledOp> compile_unary(const CompileContext& ctx) {
  return std::make_unique<UnaryOp>(ctx.node.attr<UnaryAttrs>(), ctx.out[0].numel());
}

int first_input_in_place(const Node&) { return 0; }

}  // namespace

// f32 only (infer_dtypes null): the builder rejects other input dtypes.
const OpSchema kUnarySchema{infer_unary, first_input_in_place, false, compile_unary};

}  // namespace quarks::detail
