// Schema of the reduction family: reduce (sum, mean, max, min over a set of axes, f32).
#include <string>

#include "ops/contract/parallel.hpp"
#include "ops/contract/shape_utils.hpp"
#include "ops/op_schemas.hpp"
#include "ops/reduction/reduction_kernels.hpp"

namespace quarks::detail {
namespace {

int no_in_place(const Node&) { return -1; }

ops::ReduceOp kernel_op(const Node& node) {
  const ReduceOpKind k = node.attr<ReduceAttrs>().op;
  switch (k) {
    case ReduceOpKind::kSum: return ops::ReduceOp::kSum;
    case ReduceOpKind::kMean: return ops::ReduceOp::kMean;
    case ReduceOpKind::kMax: return ops::ReduceOp::kMax;
    case ReduceOpKind::kMin: return ops::ReduceOp::kMin;
  }
  attr_error(node, "unknown reduce op " + std::to_string(static_cast<int>(k)));
}

// The reduced axes in [0, rank), in the order given (all of them for an empty list); throws naming the
// node and the input for an axis out of range or given twice.
std::vector<int> reduced_axes(const Node& node, const GraphIR& g, const SymShape& x) {
  const std::vector<int>& given = node.attr<ReduceAttrs>().axes;
  const int rank = static_cast<int>(x.size());
  std::vector<int> axes;
  if (given.empty()) {
    for (int a = 0; a < rank; ++a) axes.push_back(a);
    return axes;
  }
  const std::string input = "'" + input_name(node, g, 0) + "' " + to_string(x);
  std::vector<int> given_as(static_cast<std::size_t>(rank), 0);
  std::vector<bool> seen(static_cast<std::size_t>(rank), false);
  for (const int a : given) {
    if (a < -rank || a >= rank) {
      attr_error(node, "axis " + std::to_string(a) + " is out of range for input " + input + " of rank " +
                           std::to_string(rank));
    }
    const int axis = a < 0 ? a + rank : a;
    if (seen[axis]) {
      attr_error(node, "axis " + std::to_string(a) + " repeats axis " + std::to_string(given_as[axis]) +
                           " (both are axis " + std::to_string(axis) + " of input " + input + ")");
    }
    seen[axis] = true;
    given_as[axis] = a;
    axes.push_back(axis);
  }
  return axes;
}

std::vector<SymShape> infer_reduce(const Node& node, const GraphIR& g, std::span<const SymShape> in) {
  if (node.inputs.size() != 1) attr_error(node, "expects 1 input, got " + std::to_string(node.inputs.size()));
  const ReduceAttrs& a = node.attr<ReduceAttrs>();
  const char* op = ops::reduce_op_name(kernel_op(node));  // also rejects an out-of-range enum value
  const SymShape& x = in[0];
  const std::vector<int> axes = reduced_axes(node, g, x);
  std::vector<bool> reduced(x.size(), false);
  for (const int axis : axes) reduced[static_cast<std::size_t>(axis)] = true;
  if (a.op == ReduceOpKind::kMax || a.op == ReduceOpKind::kMin) {
    for (const int axis : axes) {
      if (x[static_cast<std::size_t>(axis)].known() && x[static_cast<std::size_t>(axis)].value == 0) {
        shape_error(node, std::string(op) + " over axis " + std::to_string(axis) + " of '" + input_name(node, g, 0) +
                              "' " + to_string(x) + ": the axis is empty and " + op + " of zero elements has no value");
      }
    }
  }
  SymShape out;
  for (std::size_t d = 0; d < x.size(); ++d) {
    if (!reduced[d]) {
      out.push_back(x[d]);
    } else if (a.keepdims) {
      out.push_back({1, {}});
    }
  }
  return {out};
}

class CompiledReduce final : public CompiledOp {
 public:
  CompiledReduce(ops::ReduceOp op, const Shape& x, const std::vector<int>& axes) : reduction_(op, x.dims(), axes) {}
  void run(const OpIO& io) const override {
    parallel_blocks(reduction_.items(), row_grain(reduction_.item_size()), [&](std::int64_t begin, std::int64_t end) {
      reduction_.run(io.in_f32(0), io.out_f32(0), begin, end);
    });
  }

 private:
  ops::Reduction reduction_;
};

std::unique_ptr<CompiledOp> compile_reduce(const CompileContext& ctx) {
  const std::vector<int> axes = reduced_axes(ctx.node, ctx.graph, to_sym(ctx.in[0]));
  return std::make_unique<CompiledReduce>(kernel_op(ctx.node), ctx.in[0], axes);
}

}  // namespace

const OpSchema kReduceSchema{infer_reduce, no_in_place, false, compile_reduce};

}  // namespace quarks::detail
