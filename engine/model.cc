// compile() and Model: validate, optimise, and (for fixed input shapes) plan ahead of the first run.
#include <algorithm>
#include <sstream>

#include <oneapi/tbb/info.h>

#include "engine/model_impl.hpp"
#include "engine/op_registry.hpp"
#include "engine/passes/passes.hpp"
#include "ops/dense/packed_gemm.hpp"
#include "quarks/quarks.hpp"

namespace quarks {

const char* version() noexcept { return QUARKS_VERSION_STRING; }

namespace detail {

std::shared_ptr<const Plan> ModelImpl::plan_for(const std::vector<Shape>& input_shapes) const {
  std::lock_guard<std::mutex> lock(mutex_);
  // plans_ is kept in order of use, most recent last.
  for (auto it = plans_.begin(); it != plans_.end(); ++it) {
    if ((*it)->input_shapes == input_shapes) {
      std::rotate(it, it + 1, plans_.end());
      return plans_.back();
    }
  }
  // Built under the lock: two Sessions meeting a new shape at once build it once.
  if (!weights_cache_) weights_cache_ = std::make_shared<ops::dense_detail::PackedWeightsCache>();
  std::shared_ptr<const Plan> plan = build_plan(graph, input_shapes, options, threads, weights_cache_.get());
  if (plans_.size() >= options.max_plans) plans_.erase(plans_.begin(), plans_.end() - (options.max_plans - 1));
  plans_.push_back(std::move(plan));
  return plans_.back();
}

std::size_t ModelImpl::plan_count() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return plans_.size();
}

std::size_t ModelImpl::packed_weight_sets() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return weights_cache_ ? weights_cache_->live_entries() : 0;
}

}  // namespace detail

Model compile(const Graph& graph, const CompileOptions& options) {
  if (options.threads < 0) {
    throw Error(ErrorCode::kInvalidArgument, "CompileOptions.threads is " + std::to_string(options.threads) +
                                                 "; use 0 for all hardware threads or a positive count");
  }
  if (options.max_plans < 1) {
    throw Error(ErrorCode::kInvalidArgument, "CompileOptions.max_plans is 0; a Model needs room for at least 1 plan");
  }
  auto impl = std::make_shared<detail::ModelImpl>();
  impl->graph = graph.ir();  // constants share their storage with the Graph
  impl->options = options;
  impl->threads = options.threads > 0 ? options.threads : tbb::info::default_concurrency();
  detail::optimize(impl->graph);

  bool all_fixed = true;
  std::vector<Shape> shapes;
  for (detail::ValueId v : impl->graph.inputs) {
    Shape s;
    for (const detail::SymDim& d : impl->graph.values[v].shape) {
      all_fixed = all_fixed && d.known();
      s.push_back(d.known() ? d.value : 0);
    }
    shapes.push_back(s);
  }
  if (all_fixed) impl->plan_for(shapes);  // weights prepacked, primitives created now
  return Model(std::move(impl));
}

const detail::ModelImpl& Model::impl() const {
  if (!impl_) throw Error(ErrorCode::kInvalidArgument, "empty Model: create one with quarks::compile()");
  return *impl_;
}

const std::shared_ptr<const detail::ModelImpl>& Model::shared_impl() const {
  impl();  // throws for an empty Model
  return impl_;
}

std::vector<std::string> Model::input_names() const {
  return Graph(std::shared_ptr<const detail::GraphIR>(impl_, &impl().graph)).input_names();
}

std::vector<std::string> Model::output_names() const {
  return Graph(std::shared_ptr<const detail::GraphIR>(impl_, &impl().graph)).output_names();
}

const CompileOptions& Model::options() const { return impl().options; }

std::string Model::describe() const { return detail::describe(impl().graph); }

std::size_t Model::node_count() const { return impl().graph.nodes.size(); }

}  // namespace quarks
