// Schemas of the normalization family: softmax, log_softmax, layer_norm, rms_norm.
#include <cmath>

#include "ops/contract/parallel.hpp"
#include "ops/contract/shape_utils.hpp"
#include "ops/normalization/normalization_kernels.hpp"
#include "ops/op_schemas.hpp"

namespace quarks::detail {
namespace {

int first_input_in_place(const Node&) { return 0; }

// --- softmax ------------------------------------------------------------------------------------

std::vector<SymShape> infer_softmax(const Node& node, const GraphIR&, std::span<const SymShape> in) {
  if (node.inputs.size() != 1) attr_error(node, "expects 1 input, got " + std::to_string(node.inputs.size()));
  if (in[0].empty()) shape_error(node, "input must have at least one dim");
  normalize_axis(node, node.attr<AxisAttrs>().axis, static_cast<int>(in[0].size()));
  return {in[0]};
}

template <bool kLog>
class SoftmaxOp final : public CompiledOp {
 public:
  SoftmaxOp(const Shape& s, int axis) {
    for (int d = 0; d < s.rank(); ++d) {
      if (d < axis) outer_ *= s[d];
      if (d > axis) inner_ *= s[d];
    }
    axis_len_ = s[axis];
  }
  void run(const OpIO& io) const override {
    const std::int64_t slab = axis_len_ * inner_;
    parallel_blocks(outer_, row_grain(slab), [&](std::int64_t b, std::int64_t e) {
      const auto kernel = kLog ? ops::log_softmax : ops::softmax;
      kernel(io.in_f32(0) + b * slab, io.out_f32(0) + b * slab, e - b, axis_len_, inner_);
    });
  }

 private:
  std::int64_t outer_ = 1, axis_len_ = 1, inner_ = 1;
};

template <bool kLog>
std::unique_ptr<CompiledOp> compile_softmax(const CompileContext& ctx) {
  const int axis = normalize_axis(ctx.node, ctx.node.attr<AxisAttrs>().axis, ctx.in[0].rank());
  return std::make_unique<SoftmaxOp<kLog>>(ctx.in[0], axis);
}

// --- layer_norm, rms_norm -------------------------------------------------------------------------

std::vector<SymShape> infer_norm(const Node& node, const GraphIR& g, std::span<const SymShape> in) {
  const NormAttrs& a = node.attr<NormAttrs>();
  const std::size_t expected = 1 + (a.has_scale ? 1 : 0) + (a.has_bias ? 1 : 0);
  if (node.inputs.size() != expected) {
    attr_error(node, "expects " + std::to_string(expected) + " inputs, got " + std::to_string(node.inputs.size()));
  }
  if (!(a.epsilon >= 0.0f) || !std::isfinite(a.epsilon)) attr_error(node, "epsilon must be finite and >= 0");
  if (in[0].empty()) shape_error(node, "input '" + input_name(node, g, 0) + "' must have at least one dim");
  const SymDim& c = in[0].back();
  for (std::size_t i = 1; i < in.size(); ++i) {
    if (in[i].size() != 1 || !may_equal(in[i][0], c)) {
      shape_error(node, "'" + input_name(node, g, i) + "' has shape " + to_string(in[i]) +
                            " but the normalised axis of '" + input_name(node, g, 0) + "' " + to_string(in[0]) +
                            " needs [" + (c.known() ? std::to_string(c.value) : c.symbol) + "]");
    }
  }
  return {in[0]};
}

template <bool kRms>
class NormOp final : public CompiledOp {
 public:
  NormOp(const NormAttrs& a, const Shape& s) : attrs_(a), cols_(s.rank() ? s[s.rank() - 1] : 1) {
    rows_ = cols_ ? s.numel() / cols_ : 0;
  }
  void run(const OpIO& io) const override {
    const float* scale = attrs_.has_scale ? io.in_f32(1) : nullptr;
    const float* bias = attrs_.has_bias ? io.in_f32(attrs_.has_scale ? 2 : 1) : nullptr;
    parallel_blocks(rows_, row_grain(cols_), [&](std::int64_t b, std::int64_t e) {
      auto* kernel = kRms ? &ops::rms_norm : &ops::layer_norm;
      kernel(io.in_f32(0) + b * cols_, scale, bias, attrs_.epsilon, io.out_f32(0) + b * cols_, e - b, cols_);
    });
  }

 private:
  NormAttrs attrs_;
  std::int64_t cols_, rows_ = 0;
};

template <bool kRms>
std::unique_ptr<CompiledOp> compile_norm(const CompileContext& ctx) {
  return std::make_unique<NormOp<kRms>>(ctx.node.attr<NormAttrs>(), ctx.in[0]);
}

}  // namespace

const OpSchema kSoftmaxSchema{infer_softmax, first_input_in_place, false, compile_softmax<false>};
const OpSchema kLogSoftmaxSchema{infer_softmax, first_input_in_place, false, compile_softmax<true>};
const OpSchema kLayerNormSchema{infer_norm, first_input_in_place, false, compile_norm<false>};
const OpSchema kRmsNormSchema{infer_norm, first_input_in_place, false, compile_norm<true>};

}  // namespace quarks::detail
