// An execution plan: the optimised graph specialised to concrete input shapes — compiled ops,
// parallel levels, and where every value lives. Immutable once built; shared by Sessions.
#pragma once

#include <cstddef>
#include <memory>
#include <vector>

#include "engine/graph_ir.hpp"
#include "engine/op_schema.hpp"

namespace quarks::detail {

/// Where a value's data is during a run.
struct ValueLocation {
  enum class Kind {
    kArena,     ///< at `offset` in the Session's arena
    kInput,     ///< the caller's buffer for graph input `index`
    kConstant,  ///< the constant's own storage
    kAliasOf,   ///< the same memory as value `index` (reshape views, in-place ops)
    kOutput,    ///< the caller's buffer for graph output `index` (or the Session's spare buffer)
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

struct Plan {
  std::vector<Shape> input_shapes;               ///< the signature this plan is for, in graph input order
  std::vector<Shape> value_shapes;               ///< concrete shape of every value
  std::vector<std::unique_ptr<CompiledOp>> ops;  ///< one per node
  std::vector<std::vector<int>> levels;          ///< nodes that may run concurrently, level by level
  std::vector<ValueLocation> locations;          ///< one per value
  std::vector<std::size_t> scratch_offsets;      ///< arena offset of each node's scratch
  std::vector<OutputBinding> outputs;            ///< one per graph output
  std::size_t arena_bytes = 0;
};

/// Builds the plan for `input_shapes` (checked against the declared dims and symbols). Throws
/// Error naming the input, the node or the cap that was exceeded.
std::shared_ptr<const Plan> build_plan(const GraphIR& g, const std::vector<Shape>& input_shapes,
                                       const CompileOptions& options, int threads);

/// Checks concrete input shapes against the graph's declared ones (fixed dims and shared symbols).
void check_input_shapes(const GraphIR& g, const std::vector<Shape>& input_shapes);

}  // namespace quarks::detail
