// Mappers of the shape and layout ONNX ops. Shape computations fold to (possibly symbolic) integer
// constants at import; data movement on runtime tensors maps to quarks layout ops.
#include <onnx/onnx_pb.h>

#include <cmath>
#include <cstring>
#include <numeric>

#include "engine/onnx/host_eval.hpp"
#include "engine/onnx/mappers.hpp"
#include "engine/onnx/onnx_tensor.hpp"
#include "ops/contract/shape_utils.hpp"

namespace quarks::onnx_import {
namespace {

int norm_axis(NodeContext& ctx, std::int64_t axis, int rank, const char* what = "axis") {
  if (axis < -rank || axis >= rank) {
    ctx.invalid(std::string(what) + " " + std::to_string(axis) + " is out of range for rank " + std::to_string(rank));
  }
  return static_cast<int>(axis < 0 ? axis + rank : axis);
}

Shape concrete(NodeContext& ctx, const std::vector<SymInt>& dims, const char* what) {
  Shape s;
  for (const SymInt& d : dims) {
    if (!d.known()) {
      ctx.unsupported(std::string(what) +
                      " depends on a symbolic input dim; give concrete input shapes "
                      "(OnnxImportOptions::input_shapes)");
    }
    if (d.value < 0) ctx.invalid(std::string(what) + " has a negative size " + std::to_string(d.value));
    s.push_back(d.value);
  }
  return s;
}

// A constant with new dims and the same elements (Reshape, Flatten, Squeeze, Unsqueeze on constants).
void set_reshaped_const(NodeContext& ctx, const ImportedValue& in, const Shape& shape) {
  if (shape.numel() != in.data.numel()) {
    ctx.fail(ErrorCode::kShapeMismatch, "cannot reshape " + in.data.shape().to_string() + " (" +
                                            std::to_string(in.data.numel()) + " elements) to " + shape.to_string());
  }
  Tensor t(in.data.dtype(), shape);
  if (t.bytes()) std::memcpy(t.data(), in.data.data(), t.bytes());
  ctx.set_const_output(0, t, in.sym);
}

// Resolves ONNX reshape semantics (0 = copy, unless allowzero; -1 = infer) against a symbolic shape.
std::vector<SymInt> resolve_target(NodeContext& ctx, const SymShape& in, std::vector<SymInt> target) {
  const bool allowzero = ctx.attr_int("allowzero", 0) != 0;
  for (std::size_t i = 0; i < target.size(); ++i) {
    if (target[i].known() && target[i].value == 0 && allowzero && !ctx.is_const(0)) {
      ctx.unsupported("allowzero = 1 with a 0 in the shape (an empty dim) is not supported for runtime tensors");
    }
    if (target[i].known() && target[i].value == 0 && !allowzero) {
      if (i >= in.size()) ctx.invalid("shape has 0 at position " + std::to_string(i) + " beyond the input's rank");
      target[i] = SymInt::from_dim(in[i]);
    } else if (target[i].known() && target[i].value < -1) {
      ctx.invalid("shape has an invalid size " + std::to_string(target[i].value));
    }
  }
  // -1 with every other size known: compute it.
  int minus = -1;
  std::vector<std::int64_t> known_sizes;
  bool all_known = true;
  for (std::size_t i = 0; i < target.size(); ++i) {
    if (target[i].known() && target[i].value == -1) {
      if (minus >= 0) ctx.invalid("shape has more than one -1");
      minus = static_cast<int>(i);
    } else if (target[i].known()) {
      known_sizes.push_back(target[i].value);
    } else {
      all_known = false;
    }
  }
  const std::int64_t known = checked_numel(known_sizes);
  if (known < 0) {
    ctx.fail(ErrorCode::kShapeMismatch,
             "cannot reshape " + detail::to_string(in) + ": the target's sizes multiply past the int64 range");
  }
  const std::int64_t total = detail::known_numel(in);
  if (minus >= 0 && all_known && total >= 0) {
    if (known == 0 || total % known != 0) {
      ctx.fail(ErrorCode::kShapeMismatch, "cannot reshape " + detail::to_string(in) + " with -1 in the target");
    }
    target[minus] = SymInt::of(total / known);
  }
  return target;
}

std::vector<SymInt> apply_reshape(NodeContext& ctx, const std::vector<SymInt>& target_in) {
  return resolve_target(ctx, ctx.shape(0), target_in);
}

void emit_reshape(NodeContext& ctx, const std::vector<SymInt>& target) {
  const SymShape in = ctx.shape(0);
  if (ctx.is_const(0)) {
    return set_reshaped_const(ctx, ctx.input(0), concrete(ctx, target, "the target shape"));
  }
  ctx.set_output(0, ctx.b().reshape(ctx.name(), ctx.runtime(0), reshape_spec(in, target)));
}

}  // namespace

void map_shape(NodeContext& ctx) {
  const SymShape s = ctx.shape(0);
  const int rank = static_cast<int>(s.size());
  auto clampi = [&](std::int64_t v) {
    if (v < 0) v += rank;
    return static_cast<int>(std::clamp<std::int64_t>(v, 0, rank));
  };
  const int start = clampi(ctx.attr_int("start", 0));
  const int end = ctx.has_attr("end") ? clampi(ctx.attr_int("end")) : rank;
  std::vector<SymInt> dims;
  for (int i = start; i < end; ++i) dims.push_back(SymInt::from_dim(s[i]));
  ctx.set_const_output(0, ints_tensor(Shape{static_cast<std::int64_t>(dims.size())}, dims), dims);
}

bool fold_shape(NodeContext& ctx) {
  map_shape(ctx);
  return true;
}

void map_size(NodeContext& ctx) {
  const std::int64_t n = detail::known_numel(ctx.shape(0));
  if (n < 0) ctx.unsupported("the input's size depends on a symbolic dim; give concrete input shapes");
  ctx.set_const_output(0, ints_tensor(Shape{}, std::vector<std::int64_t>{n}));
}

bool fold_size(NodeContext& ctx) {
  map_size(ctx);
  return true;
}

void map_constant(NodeContext& ctx) {
  if (ctx.has_attr("value")) return ctx.set_const_output(0, ctx.attr_tensor("value"));
  if (ctx.has_attr("value_float")) {
    return ctx.set_const_output(0, Tensor::from_f32(Shape{}, {ctx.attr_float("value_float")}));
  }
  if (ctx.has_attr("value_floats")) {
    const auto v = ctx.attr_floats("value_floats");
    return ctx.set_const_output(0, Tensor::from_f32(Shape{static_cast<std::int64_t>(v.size())}, v));
  }
  if (ctx.has_attr("value_int")) {
    return ctx.set_const_output(0, ints_tensor(Shape{}, std::vector<std::int64_t>{ctx.attr_int("value_int")}));
  }
  if (ctx.has_attr("value_ints")) {
    const auto v = ctx.attr_ints("value_ints");
    return ctx.set_const_output(0, ints_tensor(Shape{static_cast<std::int64_t>(v.size())}, v));
  }
  ctx.unsupported(
      "needs one of the attributes value, value_float(s), value_int(s) (sparse and string values are "
      "not supported)");
}

void map_constant_of_shape(NodeContext& ctx) {
  const Shape shape = concrete(ctx, ctx.sym_ints(0), "the shape input");
  Tensor value = ctx.has_attr("value") ? ctx.attr_tensor("value") : Tensor::from_f32(Shape{1}, {0.0f});
  if (value.numel() != 1) ctx.invalid("attribute 'value' must hold one element, has " + value.shape().to_string());
  const auto limit = static_cast<std::int64_t>(kMaxFoldedBytes / dtype_size(value.dtype()));
  if (checked_numel(shape.dims(), limit) < 0) {
    ctx.fail(ErrorCode::kResourceExhausted, "the output " + shape.to_string() + " would have more than " +
                                                std::to_string(limit) + " elements, the limit for a folded constant");
  }
  Tensor t(value.dtype(), shape);
  const std::size_t es = dtype_size(value.dtype());
  for (std::int64_t k = 0; k < t.numel(); ++k)
    std::memcpy(static_cast<std::byte*>(t.data()) + k * es, value.data(), es);
  ctx.set_const_output(0, t);
}

bool fold_constant_of_shape(NodeContext& ctx) {
  map_constant_of_shape(ctx);
  return true;
}

void map_range(NodeContext& ctx) {
  const DType dt = ctx.dtype(0);
  if (dt == DType::kBool || ctx.dtype(1) != dt || ctx.dtype(2) != dt) {
    ctx.invalid("start, limit and delta must be all int64 or all float, got " + std::string(to_string(dt)) + ", " +
                to_string(ctx.dtype(1)) + ", " + to_string(ctx.dtype(2)));
  }
  const double start = ctx.const_scalar(0), limit = ctx.const_scalar(1), delta = ctx.const_scalar(2);
  if (delta == 0) ctx.invalid("delta is 0");
  const auto max_count = static_cast<std::int64_t>(kMaxFoldedBytes / dtype_size(dt));
  auto too_many = [&] {
    ctx.fail(ErrorCode::kResourceExhausted, "the range would have more than " + std::to_string(max_count) +
                                                " elements, the limit for a folded constant");
  };
  if (dt == DType::kI64) {
    // Exact in uint64: limit - start may not fit in int64 (or a double); the elements themselves do,
    // so wrapping unsigned arithmetic gives them exactly.
    const std::int64_t s = ctx.const_tensor(0).i64()[0], l = ctx.const_tensor(1).i64()[0];
    const std::int64_t d = ctx.const_tensor(2).i64()[0];
    const auto us = static_cast<std::uint64_t>(s), ul = static_cast<std::uint64_t>(l);
    const auto ud = static_cast<std::uint64_t>(d);
    std::uint64_t count = 0;
    if (d > 0 && l > s) count = (ul - us) / ud + ((ul - us) % ud != 0);
    if (d < 0 && l < s) count = (us - ul) / (0 - ud) + ((us - ul) % (0 - ud) != 0);
    if (count > static_cast<std::uint64_t>(max_count)) too_many();
    Tensor t(dt, Shape{static_cast<std::int64_t>(count)});
    for (std::uint64_t k = 0; k < count; ++k) t.i64()[k] = static_cast<std::int64_t>(us + k * ud);
    return ctx.set_const_output(0, t);
  }
  const double count = std::max(0.0, std::ceil((limit - start) / delta));
  if (!(count <= static_cast<double>(max_count))) too_many();
  const auto n = static_cast<std::int64_t>(count);
  Tensor t(dt, Shape{n});
  for (std::int64_t k = 0; k < n; ++k) t.f32()[k] = static_cast<float>(start + static_cast<double>(k) * delta);
  ctx.set_const_output(0, t);
}

bool fold_range(NodeContext& ctx) {
  map_range(ctx);
  return true;
}

void map_reshape(NodeContext& ctx) { emit_reshape(ctx, apply_reshape(ctx, ctx.sym_ints(1))); }

bool fold_reshape(NodeContext& ctx) {
  map_reshape(ctx);
  return true;
}

void map_flatten(NodeContext& ctx) {
  const SymShape s = ctx.shape(0);
  const int rank = static_cast<int>(s.size());
  const std::int64_t a = ctx.attr_int("axis", 1);
  if (a < -rank || a > rank)
    ctx.invalid("axis " + std::to_string(a) + " is out of range for rank " + std::to_string(rank));
  const int axis = static_cast<int>(a < 0 ? a + rank : a);
  SymShape left(s.begin(), s.begin() + axis), right(s.begin() + axis, s.end());
  // Each side as one size: known, a single symbolic dim, or -1 (inferred) — at most one -1.
  auto product = [](const SymShape& p) -> SymInt {
    if (p.size() == 1) return SymInt::from_dim(p[0]);
    const std::int64_t n = detail::known_numel(p);
    return n >= 0 ? SymInt::of(n) : SymInt::unknown();
  };
  SymInt l = product(left), r = product(right);
  if (!l.known() && l.symbol.empty() && !r.known() && r.symbol.empty()) {
    ctx.unsupported("both sides of the flatten are symbolic; give concrete input shapes");
  }
  if (!l.known() && l.symbol.empty()) l = SymInt::of(-1);
  if (!r.known() && (r.symbol.empty() || l.known())) r = SymInt::of(-1);
  emit_reshape(ctx, {l, r});
}

bool fold_flatten(NodeContext& ctx) {
  map_flatten(ctx);
  return true;
}

namespace {
std::vector<std::int64_t> axes_input_or_attr(NodeContext& ctx) {
  return ctx.has_input(1) ? ctx.const_ints(1) : ctx.attr_ints("axes");
}
}  // namespace

void map_squeeze(NodeContext& ctx) {
  const SymShape s = ctx.shape(0);
  const int rank = static_cast<int>(s.size());
  std::vector<bool> drop(rank, false);
  const auto axes = axes_input_or_attr(ctx);
  if (axes.empty()) {
    for (int i = 0; i < rank; ++i) drop[i] = s[i].known() && s[i].value == 1;
  }
  for (std::int64_t a : axes) {
    const int i = norm_axis(ctx, a, rank);
    if (!(s[i].known() && s[i].value == 1) && s[i].known()) {
      ctx.fail(ErrorCode::kShapeMismatch,
               "cannot squeeze axis " + std::to_string(a) + " of size " + std::to_string(s[i].value));
    }
    drop[i] = true;
  }
  std::vector<SymInt> target;
  for (int i = 0; i < rank; ++i)
    if (!drop[i]) target.push_back(SymInt::from_dim(s[i]));
  emit_reshape(ctx, target);
}

bool fold_squeeze(NodeContext& ctx) {
  map_squeeze(ctx);
  return true;
}

void map_unsqueeze(NodeContext& ctx) {
  const SymShape s = ctx.shape(0);
  const auto axes = axes_input_or_attr(ctx);
  const int out_rank = static_cast<int>(s.size() + axes.size());
  std::vector<bool> inserted(out_rank, false);
  for (std::int64_t a : axes) {
    const int i = norm_axis(ctx, a, out_rank);
    if (inserted[i]) ctx.invalid("axis " + std::to_string(a) + " is given twice");
    inserted[i] = true;
  }
  std::vector<SymInt> target;
  std::size_t k = 0;
  for (int i = 0; i < out_rank; ++i) target.push_back(inserted[i] ? SymInt::of(1) : SymInt::from_dim(s[k++]));
  emit_reshape(ctx, target);
}

bool fold_unsqueeze(NodeContext& ctx) {
  map_unsqueeze(ctx);
  return true;
}

void map_transpose(NodeContext& ctx) {
  const int rank = ctx.rank(0);
  std::vector<int> perm;
  for (std::int64_t p : ctx.attr_ints("perm")) perm.push_back(ctx.to_axis(p, "perm entry"));
  if (perm.empty())
    for (int i = rank - 1; i >= 0; --i) perm.push_back(i);
  ctx.set_output(0, ctx.b().transpose(ctx.name(), ctx.runtime(0), perm));
}

void map_concat(NodeContext& ctx) {
  std::vector<Value> xs;
  for (std::size_t i = 0; i < ctx.input_count(); ++i)
    if (ctx.has_input(i)) xs.push_back(ctx.runtime(i));
  if (xs.empty()) ctx.invalid("needs at least one input");
  ctx.set_output(0, ctx.b().concat(ctx.name(), xs, ctx.to_axis(ctx.attr_int("axis"))));
}

bool fold_concat(NodeContext& ctx) {
  // Integer vectors (shape pieces), symbols kept; anything else folds through the engine.
  std::vector<SymInt> all;
  for (std::size_t i = 0; i < ctx.input_count(); ++i) {
    if (!ctx.has_input(i)) continue;
    if (ctx.input(i).data.dtype() != DType::kI64 || ctx.input(i).data.shape().rank() != 1) return false;
    const auto v = ctx.sym_ints(i);
    all.insert(all.end(), v.begin(), v.end());
  }
  ctx.set_const_output(0, ints_tensor(Shape{static_cast<std::int64_t>(all.size())}, all), all);
  return true;
}

void map_split(NodeContext& ctx) {
  const SymShape s = ctx.shape(0);
  const int axis = norm_axis(ctx, ctx.attr_int("axis", 0), static_cast<int>(s.size()));
  std::vector<std::int64_t> sizes = ctx.has_input(1) ? ctx.const_ints(1) : ctx.attr_ints("split");
  const auto n = static_cast<std::int64_t>(ctx.output_count());
  if (sizes.empty()) {
    if (!s[axis].known()) ctx.unsupported("an even split of a symbolic dim needs concrete input shapes");
    const std::int64_t parts = ctx.has_attr("num_outputs") ? ctx.attr_int("num_outputs") : n;
    if (parts <= 0) ctx.invalid("cannot split into " + std::to_string(parts) + " parts");
    if (parts != n) {
      ctx.invalid("attribute 'num_outputs' is " + std::to_string(parts) + " but the node has " + std::to_string(n) +
                  " outputs");
    }
    const std::int64_t chunk = (s[axis].value + parts - 1) / parts;
    for (std::int64_t k = 0; k < parts; ++k)
      sizes.push_back(std::max<std::int64_t>(0, std::min(chunk, s[axis].value - k * chunk)));
  }
  if (static_cast<std::int64_t>(sizes.size()) != n) {
    ctx.invalid("has " + std::to_string(n) + " outputs but " + std::to_string(sizes.size()) + " split sizes");
  }
  const std::vector<Value> parts = ctx.b().split(ctx.name(), ctx.runtime(0), axis, sizes);
  for (std::size_t k = 0; k < parts.size(); ++k) ctx.set_output(k, parts[k]);
}

void map_slice(NodeContext& ctx) {
  const std::vector<std::int64_t> starts = ctx.const_ints(1), ends = ctx.const_ints(2);
  const int rank = ctx.rank(0);
  std::vector<int> axes;
  if (ctx.has_input(3)) {
    for (std::int64_t a : ctx.const_ints(3)) axes.push_back(norm_axis(ctx, a, rank));
  } else {
    if (starts.size() > static_cast<std::size_t>(rank)) {
      ctx.invalid(std::to_string(starts.size()) + " starts without axes for an input of rank " + std::to_string(rank));
    }
    for (std::size_t i = 0; i < starts.size(); ++i) axes.push_back(static_cast<int>(i));
  }
  std::vector<std::int64_t> steps = ctx.has_input(4) ? ctx.const_ints(4) : std::vector<std::int64_t>(starts.size(), 1);
  if (ends.size() != starts.size() || axes.size() != starts.size() || steps.size() != starts.size()) {
    ctx.invalid("starts, ends, axes and steps must have one length");
  }
  for (std::int64_t st : steps) {
    if (st == 0) ctx.invalid("step 0 is not allowed");
    if (st < 0) ctx.unsupported("step " + std::to_string(st) + ": only positive steps are supported");
  }
  // Clamp the int64 sentinels ONNX exporters use (INT64_MAX as "to the end") to the dim if known.
  std::vector<std::int64_t> e = ends;
  const SymShape s = ctx.shape(0);
  for (std::size_t i = 0; i < e.size(); ++i) {
    if (s[axes[i]].known())
      e[i] = std::min(e[i], s[axes[i]].value);
    else if (e[i] > (std::int64_t{1} << 40))
      e[i] = std::int64_t{1} << 40;
  }
  ctx.set_output(0, ctx.b().slice(ctx.name(), ctx.runtime(0), starts, e, axes, steps));
}

bool fold_slice(NodeContext& ctx) {
  // 1-D integer vectors (shape pieces) with symbols; anything else folds through the engine.
  const ImportedValue& in = ctx.input(0);
  if (in.data.dtype() != DType::kI64 || in.data.shape().rank() != 1) return false;
  const auto v = ctx.sym_ints(0);
  const auto starts = ctx.const_ints(1), ends = ctx.const_ints(2);
  if (starts.size() != 1 || ends.size() != 1) return false;
  if (ctx.has_input(3) && ctx.const_ints(3) != std::vector<std::int64_t>{0} &&
      ctx.const_ints(3) != std::vector<std::int64_t>{-1})
    return false;  // an axis other than 0: the engine path reports it
  const std::vector<std::int64_t> steps = ctx.has_input(4) ? ctx.const_ints(4) : std::vector<std::int64_t>{1};
  if (steps.size() != 1 || steps[0] <= 0) return false;
  const std::int64_t step = steps[0];
  const auto n = static_cast<std::int64_t>(v.size());
  auto clampi = [n](std::int64_t x) { return std::clamp<std::int64_t>(x < 0 ? x + n : x, 0, n); };
  std::vector<SymInt> out;
  for (std::int64_t k = clampi(starts[0]); k < clampi(ends[0]); k += step) out.push_back(v[k]);
  ctx.set_const_output(0, ints_tensor(Shape{static_cast<std::int64_t>(out.size())}, out), out);
  return true;
}

void map_gather(NodeContext& ctx) {
  ctx.set_output(0, ctx.b().gather(ctx.name(), ctx.runtime(0), ctx.runtime(1), ctx.to_axis(ctx.attr_int("axis", 0))));
}

bool fold_gather(NodeContext& ctx) {
  // Integer vectors (shape pieces), symbols kept; anything else folds through the engine.
  const ImportedValue& in = ctx.input(0);
  if (in.data.dtype() != DType::kI64 || in.data.shape().rank() != 1) return false;
  const std::int64_t axis = ctx.attr_int("axis", 0);
  if (axis != 0 && axis != -1) return false;  // out of range for a vector: the engine path reports it
  const auto v = ctx.sym_ints(0);
  const Tensor& idx = ctx.const_tensor(1);
  if (idx.dtype() != DType::kI64) ctx.invalid("indices must be int64 or int32");
  const auto n = static_cast<std::int64_t>(v.size());
  std::vector<SymInt> out;
  for (std::int64_t k = 0; k < idx.numel(); ++k) {
    std::int64_t i = idx.i64()[k];
    if (i < -n || i >= n)
      ctx.invalid("index " + std::to_string(i) + " is out of range for " + std::to_string(n) + " elements");
    out.push_back(v[i < 0 ? i + n : i]);
  }
  ctx.set_const_output(0, ints_tensor(idx.shape(), out), out);
  return true;
}

void map_expand(NodeContext& ctx) {
  const SymShape s = ctx.shape(0);
  const std::vector<SymInt> target = ctx.sym_ints(1);
  std::vector<std::int64_t> spec;
  for (std::size_t i = 0; i < target.size(); ++i) {
    const std::size_t offset = target.size() >= s.size() ? target.size() - s.size() : 0;
    if (target[i].known()) {
      spec.push_back(target[i].value);
    } else if (i >= offset && i - offset < s.size() && target[i].same_as(s[i - offset])) {
      spec.push_back(1);  // the input already has that (symbolic) size: broadcasting keeps it
    } else {
      ctx.unsupported("the target shape depends on a symbolic input dim; give concrete input shapes");
    }
  }
  // The output (target and input broadcast) must not have a size that wraps around in int64.
  std::vector<std::int64_t> out_dims;
  const std::size_t rank = std::max(spec.size(), s.size());
  for (std::size_t i = 0; i < rank; ++i) {
    const std::int64_t t = i + spec.size() >= rank ? spec[i + spec.size() - rank] : 1;
    const SymDim* d = i + s.size() >= rank ? &s[i + s.size() - rank] : nullptr;
    out_dims.push_back(std::max<std::int64_t>(t, d && d->known() ? d->value : 1));
  }
  if (checked_numel(out_dims, kMaxTensorElements) < 0) {
    ctx.invalid("the output would have too many elements (more than " + std::to_string(kMaxTensorElements) + ")");
  }
  ctx.set_output(0, ctx.b().expand(ctx.name(), ctx.runtime(0), spec));
}

}  // namespace quarks::onnx_import
