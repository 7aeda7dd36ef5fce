// Schemas of the layout family: reshape, transpose, concat, split, slice. All but reshape are
// strided copies; reshape is a view (the planner aliases its output to its input).
#include <algorithm>
#include <cstring>

#include "engine/shape_utils.hpp"
#include "ops/layout/layout_kernels.hpp"
#include "ops/op_schemas.hpp"

namespace quarks::detail {
namespace {

int no_in_place(const Node&) { return -1; }

void check_arity(const Node& node, std::size_t n) {
  if (node.inputs.size() != n) {
    attr_error(node, "expects " + std::to_string(n) + " input(s), got " + std::to_string(node.inputs.size()));
  }
}

// Copies an [outer, rows_src] block into an [outer, rows_dst] block at column `dst_col` (all in
// elements): the shared building block of concat and split.
void copy_rows(const float* src, std::int64_t src_row, float* dst, std::int64_t dst_row, std::int64_t outer,
               std::int64_t width) {
  const std::int64_t shape[2] = {outer, width};
  const std::int64_t src_strides[2] = {src_row, 1};
  const std::int64_t dst_strides[2] = {dst_row, 1};
  ops::strided_copy(src, shape, src_strides, dst, dst_strides);
}

// --- reshape ------------------------------------------------------------------------------------

std::vector<SymShape> infer_reshape(const Node& node, const GraphIR& g, std::span<const SymShape> in) {
  check_arity(node, 1);
  const std::vector<std::int64_t>& target = node.attr<ReshapeAttrs>().shape;
  if (target.size() > static_cast<std::size_t>(Shape::kMaxRank)) attr_error(node, "target shape has too many dims");
  SymShape out;
  int infer_at = -1;
  std::int64_t known_product = 1;
  bool all_known = true;
  for (std::size_t i = 0; i < target.size(); ++i) {
    const std::int64_t t = target[i];
    if (t == -1) {
      if (infer_at >= 0) attr_error(node, "target shape has more than one -1");
      infer_at = static_cast<int>(i);
      out.push_back({});
    } else if (t == 0) {
      if (i >= in[0].size())
        attr_error(node, "target dim " + std::to_string(i) + " is 0 (copy) but the input has rank " +
                             std::to_string(in[0].size()));
      out.push_back(in[0][i]);
      if (in[0][i].known())
        known_product *= in[0][i].value;
      else
        all_known = false;
    } else if (t < -1) {
      attr_error(node, "target dim " + std::to_string(i) + " is " + std::to_string(t));
    } else {
      out.push_back({t, {}});
      known_product *= t;
    }
  }
  const std::int64_t numel = known_numel(in[0]);
  if (numel < 0 || !all_known) return {out};  // checked again at plan time with concrete shapes
  std::string target_text = "[";
  for (std::size_t i = 0; i < target.size(); ++i) target_text += (i ? "," : "") + std::to_string(target[i]);
  target_text += "]";
  const std::string what = "cannot reshape '" + input_name(node, g, 0) + "' " + to_string(in[0]) + " (" +
                           std::to_string(numel) + " elements) to " + target_text;
  if (infer_at >= 0) {
    if (known_product == 0 || numel % known_product != 0) shape_error(node, what);
    out[infer_at] = {numel / known_product, {}};
  } else if (known_product != numel) {
    shape_error(node, what);
  }
  return {out};
}

class CopyOp final : public CompiledOp {  // reshape: a no-op when the planner aliased the buffers
 public:
  explicit CopyOp(std::int64_t n) : bytes_(static_cast<std::size_t>(n) * sizeof(float)) {}
  void run(const OpIO& io) const override {
    if (io.out_f32(0) != io.in_f32(0) && bytes_) std::memcpy(io.out_f32(0), io.in_f32(0), bytes_);
  }

 private:
  std::size_t bytes_;
};

std::unique_ptr<CompiledOp> compile_reshape(const CompileContext& ctx) {
  return std::make_unique<CopyOp>(ctx.out[0].numel());
}

// --- transpose ----------------------------------------------------------------------------------

std::vector<SymShape> infer_transpose(const Node& node, const GraphIR&, std::span<const SymShape> in) {
  check_arity(node, 1);
  const std::vector<int>& perm = node.attr<TransposeAttrs>().perm;
  if (perm.size() != in[0].size()) {
    attr_error(node, "perm has " + std::to_string(perm.size()) + " entries for an input of rank " +
                         std::to_string(in[0].size()));
  }
  std::vector<bool> seen(perm.size(), false);
  SymShape out;
  for (int p : perm) {
    if (p < 0 || p >= static_cast<int>(perm.size()) || seen[p])
      attr_error(node, "perm is not a permutation of the input dims");
    seen[p] = true;
    out.push_back(in[0][p]);
  }
  return {out};
}

class TransposeOp final : public CompiledOp {
 public:
  TransposeOp(const Shape& in, const std::vector<int>& perm) : shape_(in), perm_(perm) {}
  void run(const OpIO& io) const override { ops::transpose(io.in_f32(0), shape_.dims(), perm_, io.out_f32(0)); }

 private:
  Shape shape_;
  std::vector<int> perm_;
};

std::unique_ptr<CompiledOp> compile_transpose(const CompileContext& ctx) {
  return std::make_unique<TransposeOp>(ctx.in[0], ctx.node.attr<TransposeAttrs>().perm);
}

// --- concat -------------------------------------------------------------------------------------

std::vector<SymShape> infer_concat(const Node& node, const GraphIR& g, std::span<const SymShape> in) {
  if (in.empty()) attr_error(node, "needs at least one input");
  const int rank = static_cast<int>(in[0].size());
  if (rank == 0) shape_error(node, "inputs must have at least one dim");
  const int axis = normalize_axis(node, node.attr<AxisAttrs>().axis, rank);
  SymShape out = in[0];
  std::int64_t total = 0;
  bool total_known = true;
  for (std::size_t i = 0; i < in.size(); ++i) {
    bool ok = static_cast<int>(in[i].size()) == rank;
    for (int d = 0; ok && d < rank; ++d) ok = d == axis || may_equal(in[i][d], in[0][d]);
    if (!ok) {
      shape_error(node, "input '" + input_name(node, g, i) + "' " + to_string(in[i]) + " does not match '" +
                            input_name(node, g, 0) + "' " + to_string(in[0]) + " outside axis " + std::to_string(axis));
    }
    if (in[i][axis].known())
      total += in[i][axis].value;
    else
      total_known = false;
  }
  out[axis] = total_known ? SymDim{total, {}} : SymDim{};
  return {out};
}

// Concat and split share one shape: [outer, pieces along the axis, inner].
struct AxisPieces {
  std::int64_t outer = 1, inner = 1;
  std::vector<std::int64_t> widths;  // per piece: its axis length × inner
  std::int64_t total = 0;            // sum of widths
};

AxisPieces axis_pieces(const Shape& whole, int axis, std::span<const Shape> pieces) {
  AxisPieces p;
  for (int d = 0; d < whole.rank(); ++d) {
    if (d < axis) p.outer *= whole[d];
    if (d > axis) p.inner *= whole[d];
  }
  for (const Shape& s : pieces) p.widths.push_back(s[axis] * p.inner);
  p.total = whole[axis] * p.inner;
  return p;
}

class ConcatOp final : public CompiledOp {
 public:
  explicit ConcatOp(AxisPieces p) : p_(std::move(p)) {}
  void run(const OpIO& io) const override {
    std::int64_t col = 0;
    for (std::size_t i = 0; i < p_.widths.size(); ++i) {
      copy_rows(io.in_f32(i), p_.widths[i], io.out_f32(0) + col, p_.total, p_.outer, p_.widths[i]);
      col += p_.widths[i];
    }
  }

 private:
  AxisPieces p_;
};

std::unique_ptr<CompiledOp> compile_concat(const CompileContext& ctx) {
  const int axis = normalize_axis(ctx.node, ctx.node.attr<AxisAttrs>().axis, ctx.out[0].rank());
  return std::make_unique<ConcatOp>(axis_pieces(ctx.out[0], axis, ctx.in));
}

// --- split --------------------------------------------------------------------------------------

std::vector<SymShape> infer_split(const Node& node, const GraphIR& g, std::span<const SymShape> in) {
  check_arity(node, 1);
  const SplitAttrs& a = node.attr<SplitAttrs>();
  if (in[0].empty()) shape_error(node, "input must have at least one dim");
  const int axis = normalize_axis(node, a.axis, static_cast<int>(in[0].size()));
  if (a.sizes.empty()) attr_error(node, "needs at least one piece size");
  std::int64_t sum = 0;
  std::vector<SymShape> out;
  for (std::int64_t s : a.sizes) {
    if (s < 0) attr_error(node, "piece size " + std::to_string(s) + " is negative");
    sum += s;
    SymShape piece = in[0];
    piece[axis] = {s, {}};
    out.push_back(piece);
  }
  if (in[0][axis].known() && in[0][axis].value != sum) {
    shape_error(node, "piece sizes sum to " + std::to_string(sum) + " but axis " + std::to_string(axis) + " of '" +
                          input_name(node, g, 0) + "' " + to_string(in[0]) + " is " +
                          std::to_string(in[0][axis].value));
  }
  return out;
}

class SplitOp final : public CompiledOp {
 public:
  explicit SplitOp(AxisPieces p) : p_(std::move(p)) {}
  void run(const OpIO& io) const override {
    std::int64_t col = 0;
    for (std::size_t i = 0; i < p_.widths.size(); ++i) {
      copy_rows(io.in_f32(0) + col, p_.total, io.out_f32(i), p_.widths[i], p_.outer, p_.widths[i]);
      col += p_.widths[i];
    }
  }

 private:
  AxisPieces p_;
};

std::unique_ptr<CompiledOp> compile_split(const CompileContext& ctx) {
  const int axis = normalize_axis(ctx.node, ctx.node.attr<SplitAttrs>().axis, ctx.in[0].rank());
  return std::make_unique<SplitOp>(axis_pieces(ctx.in[0], axis, ctx.out));
}

// --- slice --------------------------------------------------------------------------------------

struct SliceRange {
  std::int64_t start, count, step;
};

// Python semantics for positive steps: negative indices count from the end, both ends clamp.
SliceRange resolve(std::int64_t start, std::int64_t end, std::int64_t step, std::int64_t dim) {
  auto clamp = [dim](std::int64_t i) { return std::clamp(i < 0 ? i + dim : i, std::int64_t{0}, dim); };
  const std::int64_t b = clamp(start), e = clamp(end);
  return {b, e > b ? (e - b + step - 1) / step : 0, step};
}

std::vector<SymShape> infer_slice(const Node& node, const GraphIR&, std::span<const SymShape> in) {
  check_arity(node, 1);
  const SliceAttrs& a = node.attr<SliceAttrs>();
  if (a.starts.size() != a.axes.size() || a.ends.size() != a.axes.size() ||
      (!a.steps.empty() && a.steps.size() != a.axes.size())) {
    attr_error(node, "starts, ends, axes (and steps if given) must have the same length");
  }
  SymShape out = in[0];
  std::vector<bool> seen(in[0].size(), false);
  for (std::size_t i = 0; i < a.axes.size(); ++i) {
    const int axis = normalize_axis(node, a.axes[i], static_cast<int>(in[0].size()));
    if (seen[axis]) attr_error(node, "axis " + std::to_string(axis) + " is sliced twice");
    seen[axis] = true;
    const std::int64_t step = a.steps.empty() ? 1 : a.steps[i];
    if (step <= 0) attr_error(node, "step " + std::to_string(step) + " must be positive");
    if (in[0][axis].known()) {
      out[axis] = {resolve(a.starts[i], a.ends[i], step, in[0][axis].value).count, {}};
    } else {
      out[axis] = {};
    }
  }
  return {out};
}

class SliceOp final : public CompiledOp {
 public:
  SliceOp(const SliceAttrs& a, const Shape& in, const Shape& out) : shape_(out) {
    std::int64_t in_strides[Shape::kMaxRank];
    row_major_strides(in, in_strides);
    for (int d = 0; d < in.rank(); ++d) src_strides_.push_back(in_strides[d]);
    for (std::size_t i = 0; i < a.axes.size(); ++i) {
      const int axis = a.axes[i] < 0 ? a.axes[i] + in.rank() : a.axes[i];
      const SliceRange r = resolve(a.starts[i], a.ends[i], a.steps.empty() ? 1 : a.steps[i], in[axis]);
      offset_ += r.start * in_strides[axis];
      src_strides_[axis] *= r.step;
    }
    dst_strides_.resize(out.rank());
    row_major_strides(out, dst_strides_.data());
  }
  void run(const OpIO& io) const override {
    if (shape_.numel() == 0) return;
    ops::strided_copy(io.in_f32(0) + offset_, shape_.dims(), src_strides_, io.out_f32(0), dst_strides_);
  }

 private:
  Shape shape_;
  std::int64_t offset_ = 0;
  std::vector<std::int64_t> src_strides_, dst_strides_;
};

std::unique_ptr<CompiledOp> compile_slice(const CompileContext& ctx) {
  return std::make_unique<SliceOp>(ctx.node.attr<SliceAttrs>(), ctx.in[0], ctx.out[0]);
}

}  // namespace

const OpSchema kReshapeSchema{infer_reshape, no_in_place, true, compile_reshape};
const OpSchema kTransposeSchema{infer_transpose, no_in_place, false, compile_transpose};
const OpSchema kConcatSchema{infer_concat, no_in_place, false, compile_concat};
const OpSchema kSplitSchema{infer_split, no_in_place, false, compile_split};
const OpSchema kSliceSchema{infer_slice, no_in_place, false, compile_slice};

}  // namespace quarks::detail
