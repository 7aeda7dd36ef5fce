// Public description of a plan's steps (Session::plan_steps): per node its op, name, product flops and
// the bytes it moves, from the plan's concrete shapes — the one place quarks counts a run's bytes.
// Constants count as their op stores them (CompiledOp::constant_bytes: bf16 weights 2 bytes each), a
// KV cache's keys and values as the rows the next run reads (the cache's length after its append) and
// writes (the appended rows), everything else at its dtype's size.
#include <algorithm>
#include <span>

#include "engine/plan.hpp"
#include "ops/contract/op_kind.hpp"

namespace quarks::detail {
namespace {

// Dim `i` from the end (1 = last), or 0 if absent.
double dim_from_end(const Shape& s, int i) { return s.rank() < i ? 0 : static_cast<double>(s[s.rank() - i]); }

// Rows of KV cache c that the next run of plan p sees: its length now plus what the run appends.
double cache_rows(const GraphIR& g, const Plan& p, std::span<const std::int64_t> lengths, int c) {
  const auto i = static_cast<std::size_t>(c);
  const std::int64_t length = i < lengths.size() ? lengths[i] : 0;
  return static_cast<double>(std::min(g.caches[i].max_len, length + p.caches[i].new_tokens));
}

// The part of value v's bytes that a run touches: a cache's keys or values are [B, Hkv, max_len, D] of
// which `rows` of max_len are touched; everything else whole.
double touched_fraction(const GraphIR& g, ValueId v, double rows) {
  const StateRef& st = g.values[v].state;
  if (!st.valid() || st.part == StateRef::Part::kLength) return 1.0;
  const auto max_len = static_cast<double>(g.caches[static_cast<std::size_t>(st.cache)].max_len);
  return max_len > 0 ? rows / max_len : 0.0;
}

// Flops of one node (2 per multiply-add), 0 for nodes that are not products.
double node_flops(const Node& n, const Plan& p, const GraphIR& g, std::span<const std::int64_t> lengths) {
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
      // from the end in every layout. With a KV cache, k is the whole cache: Sk is the rows the run
      // sees, not the capacity. The keys causal hides are counted too; a window caps them at `window`.
      const bool packed = n.attr<AttentionAttrs>().packed_qkv;
      const ValueId k = n.inputs[packed ? 0 : 1];
      const StateRef& st = g.values[k].state;
      const double sk = st.valid() ? cache_rows(g, p, lengths, st.cache) : dim_from_end(in(packed ? 0 : 1), 2);
      const std::int64_t window = n.attr<AttentionAttrs>().window;
      return 4 * (window > 0 ? std::min(sk, static_cast<double>(window)) : sk) * out;
    }
    default: return 0;
  }
}

double value_bytes(const GraphIR& g, const Plan& p, ValueId v) {
  return static_cast<double>(p.value_shapes[v].numel()) * static_cast<double>(dtype_size(g.values[v].dtype));
}

// Bytes node i reads and writes in the next run.
double node_bytes(const GraphIR& g, const Plan& p, std::span<const std::int64_t> lengths, std::size_t i) {
  const Node& n = g.nodes[i];
  // A reshape that the planner made a view of its input moves nothing (in-place ops, whose output
  // also aliases an input, do read and write it).
  if (n.op == OpKind::kReshape && p.locations[n.outputs[0]].kind == ValueLocation::Kind::kAliasOf) return 0;
  double bytes = 0;
  const double constants = p.ops[i]->constant_bytes();
  if (constants >= 0) bytes += constants;
  for (ValueId v : n.inputs) {
    if (constants >= 0 && g.values[v].kind == ValueKind::kConstant) continue;
    const StateRef& st = g.values[v].state;
    bytes += value_bytes(g, p, v) * (st.valid() ? touched_fraction(g, v, cache_rows(g, p, lengths, st.cache)) : 1.0);
  }
  for (ValueId v : n.outputs) {
    // A cache append writes the rows it appends; the rest of the cache stays where it is.
    const StateRef& st = g.values[v].state;
    const double rows = st.valid() ? static_cast<double>(p.caches[static_cast<std::size_t>(st.cache)].new_tokens) : 0;
    bytes += value_bytes(g, p, v) * (st.valid() ? touched_fraction(g, v, rows) : 1.0);
  }
  return bytes;
}

}  // namespace

std::vector<PlanStep> describe_steps(const GraphIR& g, const Plan& p, std::span<const std::int64_t> cache_lengths) {
  std::vector<PlanStep> steps;
  steps.reserve(p.levels.size());
  for (const std::vector<int>& level : p.levels) {
    PlanStep step;
    for (int i : level) {
      const Node& n = g.nodes[static_cast<std::size_t>(i)];
      PlanNodeInfo info;
      info.op = op_name(n.op);
      info.name = n.name;
      info.flops = node_flops(n, p, g, cache_lengths);
      info.bytes = node_bytes(g, p, cache_lengths, static_cast<std::size_t>(i));
      step.flops += info.flops;
      step.bytes += info.bytes;
      step.nodes.push_back(std::move(info));
    }
    steps.push_back(std::move(step));
  }
  return steps;
}

}  // namespace quarks::detail
