// Schemas of the layout family: reshape, transpose, concat, split, slice, gather. All take any dtype
// (f32, i64, bool) and move elements of its size without looking at them; the output dtype is the
// input's. All but reshape are strided copies (gather: row copies); reshape is a view (the planner
// aliases its output to its input).
#include <algorithm>
#include <cstdint>
#include <cstring>

#include "ops/contract/parallel.hpp"
#include "ops/contract/shape_utils.hpp"
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

// reshape, transpose, slice: the output has the input's dtype, whatever it is.
std::vector<DType> same_dtype(const Node& node, const GraphIR&, std::span<const DType> in) {
  check_arity(node, 1);
  return {in[0]};
}

std::size_t elem_size(const CompileContext& ctx) { return dtype_size(ctx.in_dtype(0)); }

// `p` advanced by `elements` elements of `elem` bytes.
const void* at(const void* p, std::int64_t elements, std::size_t elem) {
  return static_cast<const char*>(p) + elements * static_cast<std::int64_t>(elem);
}
void* at(void* p, std::int64_t elements, std::size_t elem) {
  return static_cast<char*>(p) + elements * static_cast<std::int64_t>(elem);
}

// Copies an [outer, width] block whose rows are src_row elements apart into one whose rows are dst_row
// apart: the shared building block of concat and split.
void copy_rows(const void* src, std::int64_t src_row, void* dst, std::int64_t dst_row, std::int64_t outer,
               std::int64_t width, std::size_t elem) {
  const std::int64_t shape[2] = {outer, width};
  const std::int64_t src_strides[2] = {src_row, 1};
  const std::int64_t dst_strides[2] = {dst_row, 1};
  ops::strided_copy(src, shape, src_strides, dst, dst_strides, elem);
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
        known_product = saturating_mul(known_product, in[0][i].value);
      else
        all_known = false;
    } else if (t < -1) {
      attr_error(node, "target dim " + std::to_string(i) + " is " + std::to_string(t));
    } else {
      out.push_back({t, {}});
      known_product = saturating_mul(known_product, t);  // a huge target is refused below or by the size check
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
  CopyOp(std::int64_t n, std::size_t elem) : bytes_(static_cast<std::size_t>(n) * elem) {}
  void run(const OpIO& io) const override {
    if (io.out[0] != io.in[0] && bytes_) std::memcpy(io.out[0], io.in[0], bytes_);
  }

 private:
  std::size_t bytes_;
};

std::unique_ptr<CompiledOp> compile_reshape(const CompileContext& ctx) {
  return std::make_unique<CopyOp>(ctx.out[0].numel(), elem_size(ctx));
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
  TransposeOp(const Shape& in, const std::vector<int>& perm, std::size_t elem) : shape_(in), perm_(perm), elem_(elem) {}
  void run(const OpIO& io) const override { ops::transpose(io.in[0], shape_.dims(), perm_, io.out[0], elem_); }

 private:
  Shape shape_;
  std::vector<int> perm_;
  std::size_t elem_;
};

std::unique_ptr<CompiledOp> compile_transpose(const CompileContext& ctx) {
  return std::make_unique<TransposeOp>(ctx.in[0], ctx.node.attr<TransposeAttrs>().perm, elem_size(ctx));
}

// --- concat -------------------------------------------------------------------------------------

std::vector<DType> concat_dtypes(const Node& node, const GraphIR& g, std::span<const DType> in) {
  if (in.empty()) attr_error(node, "needs at least one input");
  for (std::size_t i = 1; i < in.size(); ++i) {
    if (in[i] != in[0]) {
      throw Error(ErrorCode::kTypeMismatch, GraphIR::where(node) + "input '" + input_name(node, g, i) + "' is " +
                                                to_string(in[i]) + " but input '" + input_name(node, g, 0) + "' is " +
                                                to_string(in[0]) + "; all inputs must have one dtype");
    }
  }
  return {in[0]};
}

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
    if (in[i][axis].known()) {
      if (__builtin_add_overflow(total, in[i][axis].value, &total)) total = INT64_MAX;  // refused as too large
    } else {
      total_known = false;
    }
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
  ConcatOp(AxisPieces p, std::size_t elem) : p_(std::move(p)), elem_(elem) {}
  void run(const OpIO& io) const override {
    if (p_.outer == 0) return;  // nothing to copy (and the buffers may be null)
    std::int64_t col = 0;
    for (std::size_t i = 0; i < p_.widths.size(); ++i) {
      copy_rows(io.in[i], p_.widths[i], at(io.out[0], col, elem_), p_.total, p_.outer, p_.widths[i], elem_);
      col += p_.widths[i];
    }
  }

 private:
  AxisPieces p_;
  std::size_t elem_;
};

std::unique_ptr<CompiledOp> compile_concat(const CompileContext& ctx) {
  const int axis = normalize_axis(ctx.node, ctx.node.attr<AxisAttrs>().axis, ctx.out[0].rank());
  return std::make_unique<ConcatOp>(axis_pieces(ctx.out[0], axis, ctx.in), elem_size(ctx));
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
    if (__builtin_add_overflow(sum, s, &sum)) attr_error(node, "piece sizes overflow 64 bits");
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

std::vector<DType> split_dtypes(const Node& node, const GraphIR&, std::span<const DType> in) {
  check_arity(node, 1);
  return std::vector<DType>(node.attr<SplitAttrs>().sizes.size(), in[0]);
}

class SplitOp final : public CompiledOp {
 public:
  SplitOp(AxisPieces p, std::size_t elem) : p_(std::move(p)), elem_(elem) {}
  void run(const OpIO& io) const override {
    if (p_.outer == 0) return;  // nothing to copy (and the buffers may be null)
    std::int64_t col = 0;
    for (std::size_t i = 0; i < p_.widths.size(); ++i) {
      copy_rows(at(io.in[0], col, elem_), p_.total, io.out[i], p_.widths[i], p_.outer, p_.widths[i], elem_);
      col += p_.widths[i];
    }
  }

 private:
  AxisPieces p_;
  std::size_t elem_;
};

std::unique_ptr<CompiledOp> compile_split(const CompileContext& ctx) {
  const int axis = normalize_axis(ctx.node, ctx.node.attr<SplitAttrs>().axis, ctx.in[0].rank());
  return std::make_unique<SplitOp>(axis_pieces(ctx.in[0], axis, ctx.out), elem_size(ctx));
}

// --- slice --------------------------------------------------------------------------------------

struct SliceRange {
  std::int64_t start, count, step;
};

// Python semantics for positive steps: negative indices count from the end, both ends clamp.
SliceRange resolve(std::int64_t start, std::int64_t end, std::int64_t step, std::int64_t dim) {
  auto clamp = [dim](std::int64_t i) { return std::clamp(i < 0 ? i + dim : i, std::int64_t{0}, dim); };
  const std::int64_t b = clamp(start), e = clamp(end);
  // A step past the dim takes one element, as the dim itself would: clamping keeps stride·step in range.
  return {b, e > b ? (e - b - 1) / step + 1 : 0, std::min(step, std::max<std::int64_t>(dim, 1))};
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
  SliceOp(const SliceAttrs& a, const Shape& in, const Shape& out, std::size_t elem) : shape_(out), elem_(elem) {
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
    ops::strided_copy(at(io.in[0], offset_, elem_), shape_.dims(), src_strides_, io.out[0], dst_strides_, elem_);
  }

 private:
  Shape shape_;
  std::size_t elem_;
  std::int64_t offset_ = 0;
  std::vector<std::int64_t> src_strides_, dst_strides_;
};

std::unique_ptr<CompiledOp> compile_slice(const CompileContext& ctx) {
  return std::make_unique<SliceOp>(ctx.node.attr<SliceAttrs>(), ctx.in[0], ctx.out[0], elem_size(ctx));
}

// --- gather -------------------------------------------------------------------------------------

std::vector<DType> gather_dtypes(const Node& node, const GraphIR& g, std::span<const DType> in) {
  check_arity(node, 2);
  if (in[1] != DType::kI64) {
    throw Error(ErrorCode::kTypeMismatch, GraphIR::where(node) + "indices '" + input_name(node, g, 1) + "' are " +
                                              to_string(in[1]) + " but must be i64");
  }
  return {in[0]};
}

std::vector<SymShape> infer_gather(const Node& node, const GraphIR& g, std::span<const SymShape> in) {
  check_arity(node, 2);
  const SymShape& data = in[0];
  const SymShape& indices = in[1];
  if (data.empty()) shape_error(node, "data '" + input_name(node, g, 0) + "' must have at least one dim");
  const int rank = static_cast<int>(data.size());
  const int given = node.attr<GatherAttrs>().axis;
  if (given < -rank || given >= rank) {
    attr_error(node, "axis " + std::to_string(given) + " is out of range for data '" + input_name(node, g, 0) + "' " +
                         to_string(data) + " of rank " + std::to_string(rank));
  }
  const int axis = given < 0 ? given + rank : given;
  const std::size_t out_rank = data.size() - 1 + indices.size();
  if (out_rank > static_cast<std::size_t>(Shape::kMaxRank)) {
    shape_error(node, "data '" + input_name(node, g, 0) + "' " + to_string(data) + " gathered by indices '" +
                          input_name(node, g, 1) + "' " + to_string(indices) + " would have rank " +
                          std::to_string(out_rank) + "; at most " + std::to_string(Shape::kMaxRank) + " is supported");
  }
  SymShape out(data.begin(), data.begin() + axis);
  out.insert(out.end(), indices.begin(), indices.end());
  out.insert(out.end(), data.begin() + axis + 1, data.end());
  return {out};
}

class GatherOp final : public CompiledOp {
 public:
  GatherOp(const CompileContext& ctx, int axis) : indices_shape_(ctx.in[1]), elem_(elem_size(ctx)) {
    const Shape& data = ctx.in[0];
    for (int d = 0; d < data.rank(); ++d) {
      if (d < axis) outer_ *= data[d];
      if (d > axis) inner_ *= data[d];
    }
    axis_len_ = data[axis];
    count_ = indices_shape_.numel();
    // A constant table (an embedding) is read only in the rows the indices pick.
    const auto is_constant = [&](int i) {
      return ctx.graph.values[ctx.node.inputs[static_cast<std::size_t>(i)]].kind == ValueKind::kConstant;
    };
    if (is_constant(0)) {
      constant_bytes_ = static_cast<double>(outer_ * count_ * inner_) * static_cast<double>(elem_) +
                        (is_constant(1) ? static_cast<double>(count_) * sizeof(std::int64_t) : 0.0);
    }
    // The parts of the out-of-range message known now: "node 'g' (gather): index ... at idx[..] is out of
    // range [-5, 5) for axis 0 of 'data' [5,3]".
    where_ = GraphIR::where(ctx.node);
    indices_name_ = input_name(ctx.node, ctx.graph, 1);
    range_ = " is out of range [" + std::to_string(-axis_len_) + ", " + std::to_string(axis_len_) + ") for axis " +
             std::to_string(axis) + " of '" + input_name(ctx.node, ctx.graph, 0) + "' " + data.to_string();
  }

  double constant_bytes() const override { return constant_bytes_; }

  void run(const OpIO& io) const override {
    const auto* indices = io.in_as<std::int64_t>(1);
    // Every index is checked before anything is copied, so the error names the first bad one (the kernel
    // checks again, as it must never read out of bounds).
    const std::int64_t bad = ops::first_bad_index(indices, count_, axis_len_);
    if (bad >= 0) throw_bad_index(indices[bad], bad);
    parallel_blocks(outer_ * count_, row_grain(inner_), [&](std::int64_t begin, std::int64_t end) {
      ops::gather_rows(io.in[0], outer_, axis_len_, inner_, indices, count_, io.out[0], elem_, begin, end);
    });
  }

 private:
  [[noreturn]] void throw_bad_index(std::int64_t value, std::int64_t flat) const {
    std::string position;  // the multi-index of `flat` in the indices' shape: "idx[1,2]", or "idx" for a scalar
    for (int d = indices_shape_.rank() - 1; d >= 0; --d) {
      position = std::to_string(flat % indices_shape_[d]) + (position.empty() ? "" : ",") + position;
      flat /= indices_shape_[d];
    }
    position = indices_shape_.rank() == 0 ? "scalar '" + indices_name_ + "'" : indices_name_ + "[" + position + "]";
    throw Error(ErrorCode::kInvalidArgument, where_ + "index " + std::to_string(value) + " at " + position + range_);
  }

  Shape indices_shape_;
  std::size_t elem_;
  std::int64_t outer_ = 1, axis_len_ = 0, inner_ = 1, count_ = 0;
  double constant_bytes_ = -1;
  std::string where_, indices_name_, range_;
};

std::unique_ptr<CompiledOp> compile_gather(const CompileContext& ctx) {
  const int axis = ctx.node.attr<GatherAttrs>().axis;
  return std::make_unique<GatherOp>(ctx, axis < 0 ? axis + ctx.in[0].rank() : axis);
}

}  // namespace

const OpSchema kReshapeSchema{infer_reshape, no_in_place, true, compile_reshape, same_dtype};
const OpSchema kTransposeSchema{infer_transpose, no_in_place, false, compile_transpose, same_dtype};
const OpSchema kConcatSchema{infer_concat, no_in_place, false, compile_concat, concat_dtypes};
const OpSchema kSplitSchema{infer_split, no_in_place, false, compile_split, split_dtypes};
const OpSchema kSliceSchema{infer_slice, no_in_place, false, compile_slice, same_dtype};
const OpSchema kGatherSchema{infer_gather, no_in_place, false, compile_gather, gather_dtypes};

}  // namespace quarks::detail
