// An execution plan: the optimised graph specialised to concrete input shapes — compiled ops,
// parallel levels, and where every value lives. Immutable once built; shared by Sessions.
#pragma once

#include <cstddef>
#include <memory>
#include <span>
#include <vector>

#include "ops/contract/graph_ir.hpp"
#include "ops/contract/op_schema.hpp"
#include "quarks/model.hpp"

namespace quarks::detail {

/// Where a value's data is during a run.
struct ValueLocation {
  enum class Kind {
    kArena,     ///< at `offset` in the Session's arena
    kInput,     ///< the caller's buffer for graph input `index`
    kConstant,  ///< the constant's own storage
    kAliasOf,   ///< the same memory as value `index` (reshape views, in-place ops)
    kOutput,    ///< the caller's buffer for graph output `index` (or the Session's spare buffer)
    kState,     ///< at `offset` in the Session's state memory (KV caches), kept between runs
  };
  Kind kind = Kind::kArena;
  std::size_t offset = 0;
  std::size_t index = 0;
};

/// How graph output i is delivered to the caller.
struct OutputBinding {
  ValueId value = 0;
  /// True when the producing node writes straight into the caller's buffer; false when the value
  /// lives elsewhere (a graph input, a constant, a view, a second name for one value) and is copied.
  bool direct = false;
};

/// What a plan does with KV cache c (GraphIR::caches[c]) and where the cache is in the Session's state
/// memory. The layout depends only on the graph and on the batch of each cache's append, so every plan
/// with the same batches places the state identically (prefill and decode plans share it).
struct CacheStep {
  std::int64_t batch = -1;      ///< batch of the cache's append in this plan; -1 if the graph has none
  std::int64_t new_tokens = 0;  ///< rows this plan's run appends
  int append_node = -1;         ///< node index of the append, -1 if none
  std::size_t length_offset = 0, keys_offset = 0, values_offset = 0;  ///< bytes into the state memory
};

struct Plan {
  std::vector<Shape> input_shapes;               ///< the signature this plan is for, in graph input order
  std::vector<Shape> value_shapes;               ///< concrete shape of every value
  std::vector<std::unique_ptr<CompiledOp>> ops;  ///< one per node
  std::vector<std::vector<int>> levels;          ///< nodes that may run concurrently, level by level
  std::vector<ValueLocation> locations;          ///< one per value
  std::vector<std::size_t> scratch_offsets;      ///< arena offset of each node's scratch
  std::vector<OutputBinding> outputs;            ///< one per graph output
  std::size_t arena_bytes = 0;
  std::vector<CacheStep> caches;  ///< one per GraphIR::caches entry
  std::size_t state_bytes = 0;    ///< state memory this layout needs (0 without caches)
};

/// Builds the plan for `input_shapes` (checked against the declared dims and symbols). Throws
/// Error naming the input, the node or the cap that was exceeded.
/// weights_cache (may be null) is handed to the ops that pack constant weights.
std::shared_ptr<const Plan> build_plan(const GraphIR& g, const std::vector<Shape>& input_shapes,
                                       const CompileOptions& options, int threads,
                                       ops::dense_detail::PackedWeightsCache* weights_cache = nullptr);

/// The public description of the plan's steps (its levels), for Session::plan_steps: what the next
/// run does when KV cache c holds cache_lengths[c] rows (0 for caches not listed).
std::vector<PlanStep> describe_steps(const GraphIR& g, const Plan& p, std::span<const std::int64_t> cache_lengths);

/// Checks concrete input shapes against the graph's declared ones (fixed dims and shared symbols).
void check_input_shapes(const GraphIR& g, const std::vector<Shape>& input_shapes);

}  // namespace quarks::detail
