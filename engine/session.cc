// Session: binds the caller's tensors to a plan and runs it level by level in a TBB arena.
//
// Steady state (same input shapes as the previous run, outputs in caller buffers) allocates nothing:
// every vector below is sized when the plan changes, and run() only overwrites their contents.
//
// State (KV caches): one block of memory per Session holding every cache's length (i64) and its keys
// and values, laid out by the plan (Plan::caches; identical for every plan of the same batch sizes). It
// is allocated at the first run after construction or reset_state(), whose batch sizes are then fixed;
// a run first checks the batch and that every append fits (nothing is written otherwise), runs, and
// only if everything succeeded advances the lengths.
#include <chrono>
#include <cstdlib>
#include <cstring>

#include <oneapi/tbb/task_arena.h>

#include "engine/model_impl.hpp"
#include "ops/contract/parallel.hpp"
#include "quarks/model.hpp"

namespace quarks {
namespace detail {

struct AlignedFree {
  void operator()(std::byte* p) const noexcept { std::free(p); }
};

struct SessionImpl {
  std::shared_ptr<const ModelImpl> model;
  tbb::task_arena arena;
  std::shared_ptr<const Plan> plan;

  std::unique_ptr<std::byte, AlignedFree> memory;  // the activation arena
  std::size_t memory_bytes = 0;

  std::unique_ptr<std::byte, AlignedFree> state;  // KV caches: lengths, keys, values (see Plan::caches)
  std::size_t state_capacity = 0;                 // bytes allocated
  std::size_t state_used = 0;                     // bytes of the current layout (0: no layout yet)
  std::vector<std::int64_t> state_batch;          // per cache, fixed by the first run; empty when free

  std::vector<const void*> input_data;  // per graph input, this run's binding
  std::vector<Shape> input_shapes;      // per graph input, this run's shapes
  std::vector<void*> bound_outputs;     // per graph output, caller buffer or null
  std::vector<Tensor> spare_outputs;    // per graph output, storage used when the caller gives none
  std::vector<void*> value_ptrs;        // per value
  std::vector<const void*> node_in;     // all nodes' input pointers, flattened
  std::vector<void*> node_out;          // all nodes' output pointers, flattened
  std::vector<std::size_t> node_in_begin, node_out_begin;

  bool profiling = false;
  const Plan* profiled_plan = nullptr;  // the plan the last run used, if it was profiled
  std::vector<double> step_seconds;     // per plan level; sized on the first profiled run of a plan

  explicit SessionImpl(std::shared_ptr<const ModelImpl> m) : model(std::move(m)), arena(model->threads) {
    const GraphIR& g = model->graph;
    input_data.resize(g.inputs.size());
    input_shapes.resize(g.inputs.size());
    bound_outputs.resize(g.outputs.size());
    spare_outputs.resize(g.outputs.size());
    value_ptrs.resize(g.values.size());
    for (const Node& n : g.nodes) {
      node_in_begin.push_back(node_in.size());
      node_out_begin.push_back(node_out.size());
      node_in.resize(node_in.size() + n.inputs.size());
      node_out.resize(node_out.size() + n.outputs.size());
    }
  }

  void bind_inputs(std::span<const NamedInput> inputs);
  void ensure_plan();
  void bind_outputs(std::span<const NamedOutput> outputs);
  void prepare_state();
  void execute();
  void advance_state();
  void* output_buffer(std::size_t o);

  std::int64_t* length_slot(std::size_t cache) const {
    return reinterpret_cast<std::int64_t*>(state.get() + cache * sizeof(std::int64_t));
  }
  std::int64_t length_of(std::size_t cache) const { return state_used ? *length_slot(cache) : 0; }
};

// Checks the run against the state (batch sizes, room in every cache) and allocates the state at the
// first run. Throws before anything has been written.
void SessionImpl::prepare_state() {
  const Plan& p = *plan;
  const GraphIR& g = model->graph;
  if (p.caches.empty()) return;
  if (!state_batch.empty()) {
    for (std::size_t c = 0; c < p.caches.size(); ++c) {
      if (p.caches[c].batch == state_batch[c]) continue;
      throw Error(ErrorCode::kInvalidArgument,
                  "KV cache '" + g.caches[c].name + "' holds batch " + std::to_string(state_batch[c]) +
                      " (fixed by the first run of this Session) but this run has batch " +
                      std::to_string(p.caches[c].batch) + "; call Session::reset_state() to change it");
    }
  }
  for (std::size_t c = 0; c < p.caches.size(); ++c) {
    const CacheStep& step = p.caches[c];
    const KvCacheInfo& info = g.caches[c];
    const std::int64_t length = length_of(c);
    if (step.new_tokens > info.max_len - length) {
      throw Error(ErrorCode::kResourceExhausted,
                  "KV cache '" + info.name + "' (node '" + g.nodes[static_cast<std::size_t>(step.append_node)].name +
                      "') is full: max_len " + std::to_string(info.max_len) + ", current length " +
                      std::to_string(length) + ", " + std::to_string(step.new_tokens) +
                      " new tokens; call Session::reset_state() to start again");
    }
  }
  if (!state_batch.empty()) return;
  // First run since construction or reset: this run's batches fix the layout.
  if (p.state_bytes > state_capacity) {
    void* mem = std::aligned_alloc(64, (p.state_bytes + 63) / 64 * 64);
    if (!mem) {
      throw Error(ErrorCode::kResourceExhausted,
                  "cannot allocate the " + std::to_string(p.state_bytes) + "-byte state (KV caches)");
    }
    state.reset(static_cast<std::byte*>(mem));
    state_capacity = p.state_bytes;
  }
  // Only the lengths need a value: rows past a cache's length are never read.
  std::memset(state.get(), 0, p.caches.size() * sizeof(std::int64_t));
  state_used = p.state_bytes;
  state_batch.clear();
  for (const CacheStep& step : p.caches) state_batch.push_back(step.batch);
}

void SessionImpl::advance_state() {
  for (std::size_t c = 0; c < plan->caches.size(); ++c) *length_slot(c) += plan->caches[c].new_tokens;
}

// The caller's buffer for output o, or a spare one kept by the Session for outputs nobody asked for.
void* SessionImpl::output_buffer(std::size_t o) {
  if (bound_outputs[o]) return bound_outputs[o];
  const ValueId v = model->graph.outputs[o].second;
  const Shape& shape = plan->value_shapes[v];
  if (spare_outputs[o].empty_storage() || spare_outputs[o].numel() < shape.numel()) {
    spare_outputs[o] = Tensor(model->graph.values[v].dtype, shape);
  }
  return spare_outputs[o].data();
}

void SessionImpl::bind_inputs(std::span<const NamedInput> inputs) {
  const GraphIR& g = model->graph;
  for (const NamedInput& in : inputs) {
    bool known = false;
    for (ValueId v : g.inputs) known = known || g.values[v].name == in.name;
    if (!known) {
      std::string names;
      for (ValueId v : g.inputs) names += (names.empty() ? "" : ", ") + g.values[v].name;
      throw Error(ErrorCode::kNotFound,
                  "unknown input '" + std::string(in.name) + "' (the graph's inputs: " + names + ")");
    }
  }
  for (std::size_t i = 0; i < g.inputs.size(); ++i) {
    const std::string& name = g.values[g.inputs[i]].name;
    const NamedInput* found = nullptr;
    for (const NamedInput& in : inputs) {
      if (in.name != name) continue;
      if (found) throw Error(ErrorCode::kInvalidArgument, "input '" + name + "' is given twice");
      found = &in;
    }
    if (!found) throw Error(ErrorCode::kNotFound, "input '" + name + "' is missing");
    const ConstTensorView& t = found->tensor;
    const DType expected = g.values[g.inputs[i]].dtype;
    if (t.dtype() != expected) {
      throw Error(ErrorCode::kTypeMismatch, "input '" + name + "' has dtype " + to_string(t.dtype()) +
                                                " but the graph expects " + to_string(expected));
    }
    if (t.data() == nullptr && t.numel() > 0) {
      throw Error(ErrorCode::kInvalidArgument, "input '" + name + "' has no data");
    }
    input_data[i] = t.data();
    input_shapes[i] = t.shape();
  }
}

void SessionImpl::ensure_plan() {
  if (plan && plan->input_shapes == input_shapes) return;
  plan = model->plan_for(input_shapes);
  if (plan->arena_bytes > memory_bytes) {
    void* p = std::aligned_alloc(64, plan->arena_bytes);
    if (!p) {
      throw Error(ErrorCode::kResourceExhausted,
                  "cannot allocate the " + std::to_string(plan->arena_bytes) + "-byte activation arena");
    }
    memory.reset(static_cast<std::byte*>(p));
    memory_bytes = plan->arena_bytes;
  }
}

void SessionImpl::bind_outputs(std::span<const NamedOutput> outputs) {
  const GraphIR& g = model->graph;
  std::fill(bound_outputs.begin(), bound_outputs.end(), nullptr);
  for (const NamedOutput& out : outputs) {
    std::size_t index = g.outputs.size();
    for (std::size_t o = 0; o < g.outputs.size(); ++o)
      if (g.outputs[o].first == out.name) index = o;
    if (index == g.outputs.size()) {
      throw Error(ErrorCode::kNotFound, "unknown output '" + std::string(out.name) + "'");
    }
    if (bound_outputs[index])
      throw Error(ErrorCode::kInvalidArgument, "output '" + std::string(out.name) + "' is given twice");
    const Shape& expected = plan->value_shapes[g.outputs[index].second];
    const DType dtype = g.values[g.outputs[index].second].dtype;
    if (out.tensor.dtype() != dtype || !(out.tensor.shape() == expected)) {
      throw Error(out.tensor.dtype() != dtype ? ErrorCode::kTypeMismatch : ErrorCode::kShapeMismatch,
                  "output '" + std::string(out.name) + "' buffer is " + to_string(out.tensor.dtype()) + " " +
                      out.tensor.shape().to_string() + " but the output is " + to_string(dtype) + " " +
                      expected.to_string());
    }
    if (out.tensor.data() == nullptr && expected.numel() > 0) {
      throw Error(ErrorCode::kInvalidArgument, "output '" + std::string(out.name) + "' buffer has no data");
    }
    bound_outputs[index] = out.tensor.data();
  }
}

void SessionImpl::execute() {
  const GraphIR& g = model->graph;
  const Plan& p = *plan;
  // Resolve where every value is for this run. Alias sources always have smaller ids.
  for (std::size_t v = 0; v < g.values.size(); ++v) {
    const ValueLocation& loc = p.locations[v];
    switch (loc.kind) {
      case ValueLocation::Kind::kArena: value_ptrs[v] = memory.get() + loc.offset; break;
      case ValueLocation::Kind::kInput: value_ptrs[v] = const_cast<void*>(input_data[loc.index]); break;
      case ValueLocation::Kind::kConstant: value_ptrs[v] = g.values[v].data.data(); break;
      case ValueLocation::Kind::kAliasOf: value_ptrs[v] = value_ptrs[loc.index]; break;
      case ValueLocation::Kind::kOutput: value_ptrs[v] = output_buffer(loc.index); break;
      case ValueLocation::Kind::kState: value_ptrs[v] = state.get() + loc.offset; break;
    }
  }
  for (std::size_t i = 0; i < g.nodes.size(); ++i) {
    const Node& n = g.nodes[i];
    for (std::size_t k = 0; k < n.inputs.size(); ++k) node_in[node_in_begin[i] + k] = value_ptrs[n.inputs[k]];
    for (std::size_t k = 0; k < n.outputs.size(); ++k) node_out[node_out_begin[i] + k] = value_ptrs[n.outputs[k]];
  }

  auto run_node = [&](int i) {
    const OpIO io{node_in.data() + node_in_begin[i], node_out.data() + node_out_begin[i],
                  memory.get() + p.scratch_offsets[i]};
    p.ops[i]->run(io);
  };
  auto run_level = [&](const std::vector<int>& level) {
    if (level.size() == 1) {
      run_node(level[0]);
    } else {
      parallel_tasks(static_cast<std::int64_t>(level.size()), [&](std::int64_t k) { run_node(level[k]); });
    }
  };
  if (profiling && step_seconds.size() < p.levels.size()) step_seconds.resize(p.levels.size());
  arena.execute([&] {
    using Clock = std::chrono::steady_clock;
    Clock::time_point t0 = profiling ? Clock::now() : Clock::time_point{};
    for (std::size_t l = 0; l < p.levels.size(); ++l) {
      run_level(p.levels[l]);
      if (profiling) {
        const Clock::time_point t1 = Clock::now();
        step_seconds[l] = std::chrono::duration<double>(t1 - t0).count();
        t0 = t1;
      }
    }
  });
  profiled_plan = profiling ? &p : nullptr;  // only a run that got through every step has times

  for (std::size_t o = 0; o < g.outputs.size(); ++o) {
    if (!bound_outputs[o] || p.outputs[o].direct) continue;
    const ValueId v = p.outputs[o].value;
    const std::size_t bytes = static_cast<std::size_t>(p.value_shapes[v].numel()) * dtype_size(g.values[v].dtype);
    if (bytes) std::memmove(bound_outputs[o], value_ptrs[v], bytes);
  }
}

}  // namespace detail

Session::Session(const Model& model) : impl_(std::make_unique<detail::SessionImpl>(model.shared_impl())) {}
Session::~Session() = default;
Session::Session(Session&&) noexcept = default;
Session& Session::operator=(Session&&) noexcept = default;

void Session::run(std::span<const NamedInput> inputs, std::span<const NamedOutput> outputs) {
  impl_->profiled_plan = nullptr;
  impl_->bind_inputs(inputs);
  impl_->ensure_plan();
  impl_->bind_outputs(outputs);
  impl_->prepare_state();
  impl_->execute();
  impl_->advance_state();
}

std::map<std::string, Tensor> Session::run(std::span<const NamedInput> inputs) {
  impl_->profiled_plan = nullptr;
  impl_->bind_inputs(inputs);
  impl_->ensure_plan();
  const detail::GraphIR& g = impl_->model->graph;
  std::map<std::string, Tensor> results;
  std::vector<NamedOutput> outs;
  const std::size_t cap = impl_->model->options.max_arena_bytes;
  for (const auto& [name, v] : g.outputs) {
    const Shape& shape = impl_->plan->value_shapes[v];
    // The cap holds for the outputs this form allocates too (shapes are within 2^48 elements: no overflow).
    const std::size_t bytes = static_cast<std::size_t>(shape.numel()) * dtype_size(g.values[v].dtype);
    if (cap && bytes > cap) {
      throw Error(ErrorCode::kResourceExhausted, "output '" + name + "' of shape " + shape.to_string() + " needs " +
                                                     std::to_string(bytes) +
                                                     " bytes, above the cap max_arena_bytes = " + std::to_string(cap));
    }
    Tensor t(g.values[v].dtype, shape);
    outs.push_back({name, t.view()});
    results.emplace(name, std::move(t));
  }
  impl_->bind_outputs(outs);
  impl_->prepare_state();
  impl_->execute();
  impl_->advance_state();
  return results;
}

Shape Session::output_shape(std::span<const NamedInput> inputs, std::string_view name) {
  impl_->bind_inputs(inputs);
  impl_->ensure_plan();
  for (const auto& [out, v] : impl_->model->graph.outputs)
    if (out == name) return impl_->plan->value_shapes[v];
  throw Error(ErrorCode::kNotFound, "unknown output '" + std::string(name) + "'");
}

std::size_t Session::arena_bytes() const noexcept { return impl_->plan ? impl_->plan->arena_bytes : 0; }

void Session::set_profiling(bool enabled) noexcept { impl_->profiling = enabled; }
bool Session::profiling() const noexcept { return impl_->profiling; }

std::span<const double> Session::step_seconds() const noexcept {
  if (!impl_->plan || impl_->profiled_plan != impl_->plan.get()) return {};
  return {impl_->step_seconds.data(), impl_->plan->levels.size()};
}

std::vector<PlanStep> Session::plan_steps() const {
  if (!impl_->plan) return {};
  std::vector<std::int64_t> lengths(impl_->model->graph.caches.size());
  for (std::size_t c = 0; c < lengths.size(); ++c) lengths[c] = impl_->length_of(c);
  return detail::describe_steps(impl_->model->graph, *impl_->plan, lengths);
}

void Session::reset_state() noexcept {
  // The next run fixes the batches again and zeroes the lengths; the memory is kept.
  impl_->state_batch.clear();
  impl_->state_used = 0;
}

std::int64_t Session::cache_length() const {
  const detail::GraphIR& g = impl_->model->graph;
  if (g.caches.empty()) throw Error(ErrorCode::kNotFound, "the model has no KV cache");
  const std::int64_t first = impl_->length_of(0);
  for (std::size_t c = 1; c < g.caches.size(); ++c) {
    if (impl_->length_of(c) != first) {
      throw Error(ErrorCode::kInvalidArgument, "KV caches differ in length: '" + g.caches[0].name + "' holds " +
                                                   std::to_string(first) + " rows, '" + g.caches[c].name + "' holds " +
                                                   std::to_string(impl_->length_of(c)) + "; ask for one by name");
    }
  }
  return first;
}

std::int64_t Session::cache_length(std::string_view name) const {
  const detail::GraphIR& g = impl_->model->graph;
  for (std::size_t c = 0; c < g.caches.size(); ++c) {
    if (g.caches[c].name == name) return impl_->length_of(c);
  }
  std::string names;
  for (const detail::KvCacheInfo& c : g.caches) names += (names.empty() ? "" : ", ") + c.name;
  throw Error(ErrorCode::kNotFound, "unknown KV cache '" + std::string(name) +
                                        "' (the model's caches: " + (names.empty() ? "none" : names) + ")");
}

std::size_t Session::state_bytes() const noexcept { return impl_->state_capacity; }

}  // namespace quarks
