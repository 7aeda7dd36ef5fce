// Plan building: concrete shapes -> compiled ops -> parallel levels -> value locations -> arena.
#include <algorithm>
#include <map>
#include <string_view>

#include "engine/memory_planner.hpp"
#include "engine/op_registry.hpp"
#include "engine/plan.hpp"
#include "ops/contract/shape_utils.hpp"

namespace quarks::detail {

void check_input_shapes(const GraphIR& g, const std::vector<Shape>& input_shapes) {
  std::map<std::string, std::pair<std::int64_t, std::string>> symbols;  // symbol -> (size, first input)
  for (std::size_t i = 0; i < g.inputs.size(); ++i) {
    const ValueInfo& v = g.values[g.inputs[i]];
    const Shape& s = input_shapes[i];
    const std::string mismatch =
        "input '" + v.name + "' has shape " + s.to_string() + " but the graph declares " + to_string(v.shape);
    if (s.rank() != static_cast<int>(v.shape.size())) throw Error(ErrorCode::kShapeMismatch, mismatch);
    for (int d = 0; d < s.rank(); ++d) {
      const SymDim& decl = v.shape[d];
      if (decl.known()) {
        if (decl.value != s[d]) throw Error(ErrorCode::kShapeMismatch, mismatch);
        continue;
      }
      auto [it, inserted] = symbols.try_emplace(decl.symbol, s[d], v.name);
      if (!inserted && it->second.first != s[d]) {
        throw Error(ErrorCode::kShapeMismatch, "symbol '" + decl.symbol + "' is " + std::to_string(it->second.first) +
                                                   " in input '" + it->second.second + "' but " + std::to_string(s[d]) +
                                                   " in input '" + v.name + "'");
      }
    }
  }
}

namespace {

std::vector<Shape> infer_concrete_shapes(const GraphIR& g, const std::vector<Shape>& input_shapes) {
  std::vector<SymShape> shapes(g.values.size());
  for (std::size_t i = 0; i < g.values.size(); ++i) {
    if (g.values[i].kind == ValueKind::kConstant) shapes[i] = g.values[i].shape;
  }
  for (std::size_t i = 0; i < g.inputs.size(); ++i) {
    shapes[g.inputs[i]] = to_sym(input_shapes[i]);
    check_shape_size(shapes[g.inputs[i]], "input '" + g.values[g.inputs[i]].name + "': ");
  }
  std::vector<SymShape> in;
  for (const Node& n : g.nodes) {
    in.clear();
    for (ValueId v : n.inputs) in.push_back(shapes[v]);
    std::vector<SymShape> out = schema_of(n.op).infer(n, g, in);
    for (std::size_t o = 0; o < out.size(); ++o) {
      check_shape_size(out[o], GraphIR::where(n) + "output ");
      shapes[n.outputs[o]] = std::move(out[o]);
    }
  }
  std::vector<Shape> concrete(g.values.size());
  for (std::size_t i = 0; i < g.values.size(); ++i) concrete[i] = to_concrete(shapes[i]);
  return concrete;
}

// Level of each node: one more than the deepest producer of its inputs.
std::vector<std::vector<int>> assign_levels(const GraphIR& g, std::vector<int>& level_of_node) {
  std::vector<int> value_level(g.values.size(), -1);
  std::vector<std::vector<int>> levels;
  level_of_node.assign(g.nodes.size(), 0);
  for (std::size_t i = 0; i < g.nodes.size(); ++i) {
    int level = 0;
    for (ValueId v : g.nodes[i].inputs) level = std::max(level, value_level[v] + 1);
    for (ValueId v : g.nodes[i].outputs) value_level[v] = level;
    level_of_node[i] = level;
    if (levels.size() <= static_cast<std::size_t>(level)) levels.resize(level + 1);
    levels[level].push_back(static_cast<int>(i));
  }
  return levels;
}

// The state layout: every cache's length (i64) first, then each cache's keys and values, 64-byte aligned.
void plan_state(const GraphIR& g, const std::vector<Shape>& shapes, Plan& plan) {
  plan.caches.assign(g.caches.size(), CacheStep{});
  if (g.caches.empty()) return;
  for (std::size_t i = 0; i < g.nodes.size(); ++i) {
    const Node& n = g.nodes[i];
    if (n.op != OpKind::kKvCacheAppend) continue;
    CacheStep& step = plan.caches[n.attr<KvCacheAttrs>().cache];
    const Shape& k = shapes[n.inputs[0]];
    step.append_node = static_cast<int>(i);
    step.batch = k[0];
    step.new_tokens = k.rank() == 3 ? k[1] : k[2];
  }
  const auto align = [](std::size_t n) { return (n + 63) / 64 * 64; };
  std::size_t offset = align(g.caches.size() * sizeof(std::int64_t));
  for (std::size_t c = 0; c < g.caches.size(); ++c) {
    const KvCacheInfo& info = g.caches[c];
    CacheStep& step = plan.caches[c];
    step.length_offset = c * sizeof(std::int64_t);
    const std::int64_t floats =
        step.batch > 0 ? Shape{step.batch, info.num_kv_heads, info.max_len, info.head_dim}.numel() : 0;
    if (floats > (std::int64_t{1} << 58) / static_cast<std::int64_t>(sizeof(float))) {
      throw Error(ErrorCode::kResourceExhausted, "KV cache '" + info.name + "' of batch " + std::to_string(step.batch) +
                                                     " would need " + std::to_string(floats) + " floats");
    }
    const std::size_t bytes = align(static_cast<std::size_t>(floats) * sizeof(float));
    step.keys_offset = offset;
    step.values_offset = offset + bytes;
    offset += 2 * bytes;
  }
  plan.state_bytes = offset;
  for (std::size_t v = 0; v < g.values.size(); ++v) {
    const StateRef& s = g.values[v].state;
    if (!s.valid()) continue;
    const CacheStep& step = plan.caches[static_cast<std::size_t>(s.cache)];
    const std::size_t at = s.part == StateRef::Part::kLength ? step.length_offset
                           : s.part == StateRef::Part::kKeys ? step.keys_offset
                                                             : step.values_offset;
    plan.locations[v] = {ValueLocation::Kind::kState, at, static_cast<std::size_t>(s.cache)};
  }
}

}  // namespace

std::shared_ptr<const Plan> build_plan(const GraphIR& g, const std::vector<Shape>& input_shapes,
                                       const CompileOptions& options, int threads,
                                       ops::dense_detail::PackedWeightsCache* weights_cache) {
  check_input_shapes(g, input_shapes);
  auto plan = std::make_shared<Plan>();
  plan->input_shapes = input_shapes;
  plan->value_shapes = infer_concrete_shapes(g, input_shapes);
  const std::vector<Shape>& shapes = plan->value_shapes;

  // Compile every node for its concrete shapes.
  std::vector<Shape> in, out;
  for (const Node& n : g.nodes) {
    in.clear();
    out.clear();
    for (ValueId v : n.inputs) in.push_back(shapes[v]);
    for (ValueId v : n.outputs) out.push_back(shapes[v]);
    CompileContext ctx{n, g, in, out, threads, options.precision, weights_cache};
    try {
      plan->ops.push_back(schema_of(n.op).compile(ctx));
    } catch (const Error& e) {  // kernels don't know the node: say which one failed
      const std::string where = GraphIR::where(n);
      if (std::string_view(e.what()).starts_with(where)) throw;
      throw Error(e.code(), where + e.what());
    }
  }

  std::vector<int> level_of_node;
  plan->levels = assign_levels(g, level_of_node);
  const int last_level = static_cast<int>(plan->levels.size());  // graph outputs live past the end

  // Which graph outputs the producer writes directly into the caller's buffer.
  std::vector<int> direct_output_of(g.values.size(), -1);
  for (std::size_t o = 0; o < g.outputs.size(); ++o) {
    const ValueId v = g.outputs[o].second;
    const ValueInfo& info = g.values[v];
    // State values are copied out: the caller's buffer cannot stand in for the Session's state.
    const bool writable = info.kind == ValueKind::kIntermediate && !info.state.valid() && direct_output_of[v] < 0;
    if (writable) direct_output_of[v] = static_cast<int>(o);
    plan->outputs.push_back({v, writable});
  }

  // Locations: inputs and constants are external; views and in-place outputs alias their source.
  std::vector<int> uses(g.values.size(), 0);
  for (const Node& n : g.nodes)
    for (ValueId v : n.inputs) ++uses[v];
  for (const auto& [name, v] : g.outputs) ++uses[v];
  plan->locations.resize(g.values.size());
  for (std::size_t v = 0; v < g.values.size(); ++v) {
    if (direct_output_of[v] >= 0)
      plan->locations[v] = {ValueLocation::Kind::kOutput, 0, static_cast<std::size_t>(direct_output_of[v])};
  }
  std::vector<ValueId> root(g.values.size());
  for (std::size_t v = 0; v < g.values.size(); ++v) root[v] = static_cast<ValueId>(v);
  for (std::size_t i = 0; i < g.inputs.size(); ++i) plan->locations[g.inputs[i]] = {ValueLocation::Kind::kInput, 0, i};
  for (std::size_t v = 0; v < g.values.size(); ++v) {
    if (g.values[v].kind == ValueKind::kConstant) plan->locations[v] = {ValueLocation::Kind::kConstant, 0, v};
  }
  plan_state(g, shapes, *plan);
  if (options.max_state_bytes && plan->state_bytes > options.max_state_bytes) {
    std::string caches;
    for (std::size_t c = 0; c < g.caches.size(); ++c) {
      caches += (caches.empty() ? "'" : ", '") + g.caches[c].name + "' (batch " +
                std::to_string(plan->caches[c].batch) + ", max_len " + std::to_string(g.caches[c].max_len) + ")";
    }
    throw Error(
        ErrorCode::kResourceExhausted,
        "the KV caches " + caches + " need " + std::to_string(plan->state_bytes) +
            " bytes of Session state, above the cap max_state_bytes = " + std::to_string(options.max_state_bytes));
  }
  for (const Node& n : g.nodes) {
    const OpSchema& s = schema_of(n.op);
    const ValueId y = n.outputs[0];
    if (direct_output_of[y] >= 0) continue;  // written into the caller's buffer (the op copies if needed)
    if (s.is_view) {
      plan->locations[y] = {ValueLocation::Kind::kAliasOf, 0, n.inputs[0]};
      root[y] = root[n.inputs[0]];
      continue;
    }
    const int inplace = s.inplace_input(n);
    if (inplace >= 0) {
      const ValueId x = n.inputs[inplace];
      // Only arena buffers are reused: not inputs, constants, caller outputs or the Session's state.
      const bool x_in_arena = plan->locations[root[x]].kind == ValueLocation::Kind::kArena &&
                              g.values[root[x]].kind == ValueKind::kIntermediate;
      if (x_in_arena && uses[x] == 1 && root[x] == x && shapes[x].numel() == shapes[y].numel() &&
          g.values[x].dtype == g.values[y].dtype) {
        plan->locations[y] = {ValueLocation::Kind::kAliasOf, 0, x};
        root[y] = x;
      }
    }
  }

  // Lifetimes of arena buffers (roots only), in levels; scratch lives during its node's level.
  std::vector<int> first(g.values.size(), INT32_MAX), last(g.values.size(), -1);
  for (std::size_t i = 0; i < g.nodes.size(); ++i) {
    const int level = level_of_node[i];
    for (ValueId v : g.nodes[i].outputs)
      first[root[v]] = std::min(first[root[v]], level), last[root[v]] = std::max(last[root[v]], level);
    for (ValueId v : g.nodes[i].inputs) last[root[v]] = std::max(last[root[v]], level);
  }
  for (const auto& [name, v] : g.outputs) last[root[v]] = last_level;
  std::vector<BufferLifetime> buffers;
  std::vector<ValueId> buffer_value;
  for (std::size_t v = 0; v < g.values.size(); ++v) {
    if (g.values[v].kind != ValueKind::kIntermediate || root[v] != v || last[v] < 0) continue;
    if (plan->locations[v].kind != ValueLocation::Kind::kArena) continue;
    buffers.push_back({static_cast<std::size_t>(shapes[v].numel()) * dtype_size(g.values[v].dtype), first[v], last[v]});
    buffer_value.push_back(static_cast<ValueId>(v));
  }
  const std::size_t value_buffers = buffers.size();
  for (std::size_t i = 0; i < g.nodes.size(); ++i) {
    buffers.push_back({plan->ops[i]->scratch_bytes(), level_of_node[i], level_of_node[i]});
  }
  const ArenaLayout layout = plan_arena(buffers);
  for (std::size_t b = 0; b < value_buffers; ++b) plan->locations[buffer_value[b]].offset = layout.offsets[b];
  plan->scratch_offsets.assign(layout.offsets.begin() + static_cast<std::ptrdiff_t>(value_buffers),
                               layout.offsets.end());
  plan->arena_bytes = layout.total_bytes;

  if (options.max_arena_bytes && plan->arena_bytes > options.max_arena_bytes) {
    std::string shapes_text;
    for (const Shape& s : input_shapes) shapes_text += (shapes_text.empty() ? "" : ", ") + s.to_string();
    throw Error(ErrorCode::kResourceExhausted,
                "the activation arena needs " + std::to_string(plan->arena_bytes) + " bytes for input shapes " +
                    shapes_text + ", above the cap max_arena_bytes = " + std::to_string(options.max_arena_bytes));
  }
  return plan;
}

}  // namespace quarks::detail
