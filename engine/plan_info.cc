// Public description of a plan's steps (Session::plan_steps): per node its op, name, product flops and
// bytes of inputs and outputs, from the plan's concrete shapes.
#include "engine/plan.hpp"
#include "ops/contract/op_kind.hpp"

namespace quarks::detail {
namespace {

// Dim `i` from the end (1 = last), or 0 if absent.
double dim_from_end(const Shape& s, int i) { return s.rank() < i ? 0 : static_cast<double>(s[s.rank() - i]); }

// Flops of one node (2 per multiply-add), 0 for nodes that are not products.
double node_flops(const Node& n, const Plan& p) {
  const auto in = [&](std::size_t i) -> const Shape& { return p.value_shapes[n.inputs[i]]; };
  const double out = static_cast<double>(p.value_shapes[n.outputs[0]].numel());
  switch (n.op) {
    case OpKind::kDense:
    case OpKind::kSynapticGate: return 2 * out * dim_from_end(in(0), 1);  // x [.., K]
    case OpKind::kGatedDense: return 4 * out * dim_from_end(in(0), 1);
    case OpKind::kMatMul: {
      const Shape& a = in(0);
      const double k = a.rank() == 1 ? dim_from_end(a, 1) : dim_from_end(a, n.attr<MatMulAttrs>().trans_a ? 2 : 1);
      return 2 * out * k;
    }
    case OpKind::kAttention: {
      // Q·Kᵀ and P·V: 2·Sk multiply-adds per output element (q and v share the head dim). k is
      // [B,Hkv,Sk,D] or [B,Sk,Hkv·D], or inside the packed qkv [B,S,(Hq+2·Hkv)·D]: Sk is the second dim
      // from the end in every layout. With a KV cache, k is the whole cache, so Sk is its capacity
      // (max_len), not the current length, which the plan does not know.
      const bool packed = n.attr<AttentionAttrs>().packed_qkv;
      return 4 * dim_from_end(in(packed ? 0 : 1), 2) * out;
    }
    default: return 0;
  }
}

double value_bytes(const GraphIR& g, const Plan& p, ValueId v) {
  return static_cast<double>(p.value_shapes[v].numel()) * static_cast<double>(dtype_size(g.values[v].dtype));
}

}  // namespace

std::vector<PlanStep> describe_steps(const GraphIR& g, const Plan& p) {
  std::vector<PlanStep> steps;
  steps.reserve(p.levels.size());
  for (const std::vector<int>& level : p.levels) {
    PlanStep step;
    for (int i : level) {
      const Node& n = g.nodes[static_cast<std::size_t>(i)];
      PlanNodeInfo info;
      info.op = op_name(n.op);
      info.name = n.name;
      info.flops = node_flops(n, p);
      // A reshape that the planner made a view of its input moves nothing (in-place ops, whose output
      // also aliases an input, do read and write it).
      const bool view = n.op == OpKind::kReshape && p.locations[n.outputs[0]].kind == ValueLocation::Kind::kAliasOf;
      if (!view) {
        for (ValueId v : n.inputs) info.bytes += value_bytes(g, p, v);
        for (ValueId v : n.outputs) info.bytes += value_bytes(g, p, v);
      }
      step.flops += info.flops;
      step.bytes += info.bytes;
      step.nodes.push_back(std::move(info));
    }
    steps.push_back(std::move(step));
  }
  return steps;
}

}  // namespace quarks::detail
