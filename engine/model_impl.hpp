// The compiled model behind quarks::Model: the optimised graph and its plans, one per set of input
// shapes seen (built on first use, shared by every Session), and the packed weights those plans share.
#pragma once

#include <memory>
#include <mutex>
#include <vector>

#include "engine/plan.hpp"
#include "ops/contract/graph_ir.hpp"
#include "quarks/model.hpp"

namespace quarks::detail {

struct ModelImpl {
  GraphIR graph;  ///< after optimisation
  CompileOptions options;
  int threads = 1;  ///< resolved from options.threads

  /// The plan for these input shapes, building it on first use. Thread-safe.
  std::shared_ptr<const Plan> plan_for(const std::vector<Shape>& input_shapes) const;

  /// Plans built so far, and the packed weight sets their kernels hold (for tests).
  std::size_t plan_count() const;
  std::size_t packed_weight_sets() const;

 private:
  mutable std::mutex mutex_;
  mutable std::vector<std::shared_ptr<const Plan>> plans_;
  /// Each constant is packed once per layout, however many input shapes the model meets.
  mutable std::shared_ptr<ops::dense_detail::PackedWeightsCache> weights_cache_;
};

}  // namespace quarks::detail
