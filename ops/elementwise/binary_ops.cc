// Schema of the f32 elementwise binary ops (add, sub, mul, div, pow, max, min) with NumPy broadcasting.
#include "ops/contract/parallel.hpp"
#include "ops/contract/shape_utils.hpp"
#include "ops/elementwise/binary_kernels.hpp"
#include "ops/elementwise/broadcast.hpp"
#include "ops/op_schemas.hpp"

namespace quarks::detail {
namespace {

std::vector<SymShape> infer_binary(const Node& node, const GraphIR& g, std::span<const SymShape> in) {
  if (node.inputs.size() != 2) attr_error(node, "expects 2 inputs, got " + std::to_string(node.inputs.size()));
  const auto op = static_cast<int>(node.attr<BinaryAttrs>().op);
  if (op < static_cast<int>(BinaryOpKind::kAdd) || op > static_cast<int>(BinaryOpKind::kMin)) {
    attr_error(node, "unknown BinaryOpKind value " + std::to_string(op));
  }
  return {broadcast_shapes(node, g, in[0], in[1])};
}

ops::BinaryOp kernel_op(BinaryOpKind k) {
  switch (k) {
    case BinaryOpKind::kAdd: return ops::BinaryOp::kAdd;
    case BinaryOpKind::kSub: return ops::BinaryOp::kSub;
    case BinaryOpKind::kMul: return ops::BinaryOp::kMul;
    case BinaryOpKind::kDiv: return ops::BinaryOp::kDiv;
    case BinaryOpKind::kPow: return ops::BinaryOp::kPow;
    case BinaryOpKind::kMax: return ops::BinaryOp::kMax;
    case BinaryOpKind::kMin: return ops::BinaryOp::kMin;
  }
  return ops::BinaryOp::kAdd;  // not reached: infer_binary rejects other values
}

class BinaryOp final : public CompiledOp {
 public:
  BinaryOp(ops::BinaryOp op, const Shape& out, const Shape& a, const Shape& b) : op_(op), loop_(out, {a, b}) {}
  void run(const OpIO& io) const override {
    parallel_blocks(loop_.total(), kElementwiseGrain, [&](std::int64_t begin, std::int64_t end) {
      loop_.for_each_run(
          begin, end, [&](const std::int64_t* off, const std::int64_t* stride, std::int64_t y, std::int64_t n) {
            ops::binary(op_, io.in_f32(0) + off[0], static_cast<std::size_t>(stride[0]), io.in_f32(1) + off[1],
                        static_cast<std::size_t>(stride[1]), io.out_f32(0) + y, static_cast<std::size_t>(n));
          });
    });
  }

 private:
  ops::BinaryOp op_;
  ops::BroadcastLoop loop_;
};

std::unique_ptr<CompiledOp> compile_binary(const CompileContext& ctx) {
  return std::make_unique<BinaryOp>(kernel_op(ctx.node.attr<BinaryAttrs>().op), ctx.out[0], ctx.in[0], ctx.in[1]);
}

// The planner only takes the offer when input 0 has the output's element count (no broadcast).
int first_input_in_place(const Node&) { return 0; }

}  // namespace

const OpSchema kBinarySchema{infer_binary, first_input_in_place, false, compile_binary};

}  // namespace quarks::detail
