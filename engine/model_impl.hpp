// The compiled model behind quarks::Model: the optimised graph and its plans, one per set of input
// shapes seen (built on first use, shared by every Session).
#pragma once

#include <memory>
#include <mutex>
#include <vector>

#include "engine/graph_ir.hpp"
#include "engine/plan.hpp"
#include "quarks/model.hpp"

namespace quarks::detail {

struct ModelImpl {
  GraphIR graph;  ///< after optimisation
  CompileOptions options;
  int threads = 1;  ///< resolved from options.threads

  /// The plan for these input shapes, building it on first use. Thread-safe.
  std::shared_ptr<const Plan> plan_for(const std::vector<Shape>& input_shapes) const;

 private:
  mutable std::mutex mutex_;
  mutable std::vector<std::shared_ptr<const Plan>> plans_;
};

}  // namespace quarks::detail
