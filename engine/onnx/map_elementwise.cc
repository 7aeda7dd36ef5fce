// Mappers of the elementwise ONNX ops: arithmetic, comparisons, Where, Cast, unary functions and
// activations. Integer arithmetic on constants (shape computations) is folded on the host, keeping
// symbolic dims where it can; float constants are folded by running the quarks op.
#include <onnx/onnx_pb.h>

#include <cmath>
#include <limits>

#include "engine/onnx/host_eval.hpp"
#include "engine/onnx/mappers.hpp"
#include "engine/onnx/onnx_tensor.hpp"

namespace quarks::onnx_import {
namespace {

// Integer folds on the host are for shape arithmetic; anything bigger is folded by the engine.
constexpr std::int64_t kMaxHostFoldElements = std::int64_t{1} << 20;

BinaryOpKind binary_kind(const std::string& op) {
  if (op == "Add") return BinaryOpKind::kAdd;
  if (op == "Sub") return BinaryOpKind::kSub;
  if (op == "Mul") return BinaryOpKind::kMul;
  if (op == "Div") return BinaryOpKind::kDiv;
  if (op == "Pow") return BinaryOpKind::kPow;
  if (op == "Max") return BinaryOpKind::kMax;
  return BinaryOpKind::kMin;
}

void require_f32(NodeContext& ctx, std::size_t i) {
  if (ctx.dtype(i) != DType::kF32) {
    ctx.unsupported("input " + std::to_string(i) + " '" + ctx.node().input(static_cast<int>(i)) + "' is " +
                    to_string(ctx.dtype(i)) +
                    "; quarks computes this op in f32 at run time (integer tensors are "
                    "supported when they can be folded at import)");
  }
}

[[noreturn]] void int_overflow(const char* op, std::int64_t a, std::int64_t b) {
  throw Error(ErrorCode::kInvalidArgument,
              std::string("integer overflow folding ") + op + "(" + std::to_string(a) + ", " + std::to_string(b) + ")");
}

// a^b for b >= 0 by squaring, with overflow checks (b < 0: 0 unless |a| = 1, as integer division).
std::int64_t int_pow(std::int64_t a, std::int64_t b) {
  if (b < 0) return a == 1 ? 1 : a == -1 ? (b % 2 ? -1 : 1) : 0;
  std::int64_t r = 1, base = a;
  for (std::int64_t e = b; e > 0; e >>= 1) {
    if ((e & 1) && __builtin_mul_overflow(r, base, &r)) int_overflow("Pow", a, b);
    if (e > 1 && __builtin_mul_overflow(base, base, &base)) int_overflow("Pow", a, b);
  }
  return r;
}

// One symbolic integer op on two SymInts: exact when both are known (int64 overflow is an error),
// a few identities otherwise.
SymInt int_op(BinaryOpKind k, const SymInt& a, const SymInt& b) {
  if (a.known() && b.known()) {
    std::int64_t r = 0;
    switch (k) {
      case BinaryOpKind::kAdd:
        if (__builtin_add_overflow(a.value, b.value, &r)) int_overflow("Add", a.value, b.value);
        return SymInt::of(r);
      case BinaryOpKind::kSub:
        if (__builtin_sub_overflow(a.value, b.value, &r)) int_overflow("Sub", a.value, b.value);
        return SymInt::of(r);
      case BinaryOpKind::kMul:
        if (__builtin_mul_overflow(a.value, b.value, &r)) int_overflow("Mul", a.value, b.value);
        return SymInt::of(r);
      case BinaryOpKind::kDiv:
        if (b.value == 0) throw Error(ErrorCode::kInvalidArgument, "integer division by zero");
        if (b.value == -1 && a.value == std::numeric_limits<std::int64_t>::min()) int_overflow("Div", a.value, b.value);
        return SymInt::of(a.value / b.value);
      case BinaryOpKind::kMax: return SymInt::of(std::max(a.value, b.value));
      case BinaryOpKind::kMin: return SymInt::of(std::min(a.value, b.value));
      case BinaryOpKind::kPow: return SymInt::of(int_pow(a.value, b.value));
    }
  }
  if ((k == BinaryOpKind::kAdd || k == BinaryOpKind::kSub) && b.known() && b.value == 0) return a;
  if (k == BinaryOpKind::kAdd && a.known() && a.value == 0) return b;
  if ((k == BinaryOpKind::kMul || k == BinaryOpKind::kDiv) && b.known() && b.value == 1) return a;
  if (k == BinaryOpKind::kMul && a.known() && a.value == 1) return b;
  return SymInt::unknown();
}

// Broadcasts the i64 constants of inputs 0 and 1 (symbols allowed) through `f`.
template <class F>
bool fold_ints(NodeContext& ctx, F f, DType out_dtype) {
  for (std::size_t i = 0; i < 2; ++i)
    if (ctx.input(i).data.dtype() != DType::kI64) return false;
  const std::vector<SymInt> a = ctx.sym_ints(0), b = ctx.sym_ints(1);
  const Shape sa = ctx.input(0).data.shape(), sb = ctx.input(1).data.shape();
  const Shape out = broadcast_shape(sa, sb);
  if (checked_numel(out.dims(), kMaxHostFoldElements) < 0) return false;  // large: folded by the engine
  const auto ia = broadcast_index(sa, out), ib = broadcast_index(sb, out);
  std::vector<SymInt> r;
  for (std::size_t k = 0; k < ia.size(); ++k) r.push_back(f(a[ia[k]], b[ib[k]]));
  if (out_dtype == DType::kBool) {
    Tensor t(DType::kBool, out);
    for (std::size_t k = 0; k < r.size(); ++k) {
      if (!r[k].known()) return false;
      t.boolean()[k] = r[k].value != 0;
    }
    ctx.set_const_output(0, t);
  } else {
    ctx.set_const_output(0, ints_tensor(out, r), r);
  }
  return true;
}

}  // namespace

void map_binary(NodeContext& ctx) {
  const BinaryOpKind k = binary_kind(ctx.op_type());
  if (k == BinaryOpKind::kMax || k == BinaryOpKind::kMin) {
    // Variadic: a chain of binary ops.
    Value acc = ctx.runtime(0);
    require_f32(ctx, 0);
    for (std::size_t i = 1; i < ctx.input_count(); ++i) {
      require_f32(ctx, i);
      acc = ctx.b().binary(ctx.input_count() == 2 ? ctx.name() : ctx.sub(std::to_string(i)), k, acc, ctx.runtime(i));
    }
    ctx.set_output(0, acc);
    return;
  }
  if (ctx.input_count() != 2) ctx.invalid("expects 2 inputs, got " + std::to_string(ctx.input_count()));
  require_f32(ctx, 0);
  require_f32(ctx, 1);
  if (k == BinaryOpKind::kPow && ctx.is_const(1) && ctx.input(1).data.numel() == 1) {
    // Common exponents as exact cheaper ops: x^2 (RMSNorm/variance), x^1, x^0.5.
    const float e = ctx.const_scalar(1);
    const SymShape xs = ctx.shape(0);
    if (ctx.input(1).data.shape().rank() <= static_cast<int>(xs.size())) {
      if (e == 2.0f) return ctx.set_output(0, ctx.b().activation(ctx.name(), ctx.runtime(0), Activation::square()));
      if (e == 1.0f) return ctx.set_output(0, ctx.b().activation(ctx.name(), ctx.runtime(0), Activation::identity()));
      if (e == 0.5f) return ctx.set_output(0, ctx.b().unary(ctx.name(), UnaryOpKind::kSqrt, ctx.runtime(0)));
    }
  }
  ctx.set_output(0, ctx.b().binary(ctx.name(), k, ctx.runtime(0), ctx.runtime(1)));
}

bool fold_binary(NodeContext& ctx) {
  if (ctx.input_count() != 2) return false;
  const BinaryOpKind k = binary_kind(ctx.op_type());
  return fold_ints(
      ctx, [k](const SymInt& a, const SymInt& b) { return int_op(k, a, b); }, DType::kI64);
}

void map_equal(NodeContext& ctx) { ctx.set_output(0, ctx.b().equal(ctx.name(), ctx.runtime(0), ctx.runtime(1))); }

bool fold_equal(NodeContext& ctx) {
  return fold_ints(
      ctx,
      [](const SymInt& a, const SymInt& b) -> SymInt {
        if (a.known() && b.known()) return SymInt::of(a.value == b.value ? 1 : 0);
        if (!a.symbol.empty() && a == b) return SymInt::of(1);
        return SymInt::unknown();
      },
      DType::kBool);
}

void map_where(NodeContext& ctx) {
  ctx.set_output(0, ctx.b().where(ctx.name(), ctx.runtime(0), ctx.runtime(1), ctx.runtime(2)));
}

bool fold_where(NodeContext& ctx) {
  const Tensor& c = ctx.const_tensor(0);
  if (c.dtype() != DType::kBool || ctx.input(1).data.dtype() != DType::kI64 || ctx.input(2).data.dtype() != DType::kI64)
    return false;
  const std::vector<SymInt> x = ctx.sym_ints(1), y = ctx.sym_ints(2);
  const Shape sx = ctx.input(1).data.shape(), sy = ctx.input(2).data.shape();
  const Shape out = broadcast_shape(broadcast_shape(c.shape(), sx), sy);
  if (checked_numel(out.dims(), kMaxHostFoldElements) < 0) return false;  // large: folded by the engine
  const auto ic = broadcast_index(c.shape(), out), ix = broadcast_index(sx, out), iy = broadcast_index(sy, out);
  std::vector<SymInt> r;
  for (std::size_t k = 0; k < ic.size(); ++k) r.push_back(c.boolean()[ic[k]] ? x[ix[k]] : y[iy[k]]);
  ctx.set_const_output(0, ints_tensor(out, r), r);
  return true;
}

namespace {
DType cast_target(NodeContext& ctx) {
  const auto to = ctx.attr_int("to");
  switch (to) {
    case onnx::TensorProto::FLOAT:
    case onnx::TensorProto::DOUBLE:
    case onnx::TensorProto::FLOAT16: return DType::kF32;
    case onnx::TensorProto::INT64:
    case onnx::TensorProto::INT32: return DType::kI64;
    case onnx::TensorProto::BOOL: return DType::kBool;
    default: ctx.unsupported("cast to " + onnx_dtype_name(static_cast<int>(to)) + " is not supported");
  }
}
}  // namespace

void map_cast(NodeContext& ctx) {
  const DType to = cast_target(ctx);
  ctx.set_output(0, ctx.b().cast(ctx.name(), ctx.runtime(0), to));
}

bool fold_cast(NodeContext& ctx) {
  const DType to = cast_target(ctx);
  const ImportedValue& in = ctx.input(0);
  if (in.data.dtype() != DType::kI64) return false;
  if (to == DType::kI64) {
    ctx.set_const_output(0, in.data, in.sym);
    return true;
  }
  if (in.has_symbols()) return false;
  Tensor t(to, in.data.shape());
  for (std::int64_t k = 0; k < t.numel(); ++k) {
    const std::int64_t v = in.data.i64()[k];
    if (to == DType::kF32)
      t.f32()[k] = static_cast<float>(v);
    else
      t.boolean()[k] = v != 0;
  }
  ctx.set_const_output(0, t);
  return true;
}

void map_identity(NodeContext& ctx) { ctx.set_output(0, ctx.runtime(0)); }

bool fold_identity(NodeContext& ctx) {
  ctx.set_const_output(0, ctx.input(0).data, ctx.input(0).sym);
  return true;
}

void map_unary(NodeContext& ctx) {
  require_f32(ctx, 0);
  const std::string& op = ctx.op_type();
  const UnaryOpKind k = op == "Neg"          ? UnaryOpKind::kNeg
                        : op == "Abs"        ? UnaryOpKind::kAbs
                        : op == "Exp"        ? UnaryOpKind::kExp
                        : op == "Log"        ? UnaryOpKind::kLog
                        : op == "Sqrt"       ? UnaryOpKind::kSqrt
                        : op == "Reciprocal" ? UnaryOpKind::kReciprocal
                                             : UnaryOpKind::kErf;
  ctx.set_output(0, ctx.b().unary(ctx.name(), k, ctx.runtime(0)));
}

bool fold_unary(NodeContext& ctx) {
  // Integer negation and absolute value of shape values; float constants fold through the engine.
  const ImportedValue& in = ctx.input(0);
  const std::string& op = ctx.op_type();
  if (in.data.dtype() != DType::kI64 || (op != "Neg" && op != "Abs")) return false;
  std::vector<SymInt> v = ctx.sym_ints(0);
  for (SymInt& d : v) {
    if (!d.known()) return false;
    if (d.value == std::numeric_limits<std::int64_t>::min()) {
      ctx.invalid("integer overflow folding " + op + "(" + std::to_string(d.value) + ")");
    }
    d.value = op == "Neg" ? -d.value : std::abs(d.value);
  }
  ctx.set_const_output(0, ints_tensor(in.data.shape(), v), v);
  return true;
}

void map_activation(NodeContext& ctx) {
  require_f32(ctx, 0);
  const std::string& op = ctx.op_type();
  Activation f;
  if (op == "Relu") {
    f = Activation::relu();
  } else if (op == "Sigmoid") {
    f = Activation::sigmoid();
  } else if (op == "Tanh") {
    f = Activation::tanh();
  } else if (op == "LeakyRelu") {
    f = Activation::leaky_relu(ctx.attr_float("alpha", 0.01f));
  } else if (op == "Gelu") {
    const std::string approx = ctx.attr_string("approximate", "none");
    if (approx == "none")
      f = Activation::gelu();
    else if (approx == "tanh")
      f = Activation::gelu_tanh();
    else
      ctx.invalid("attribute 'approximate' must be \"none\" or \"tanh\", got \"" + approx + "\"");
  } else if (op == "HardSigmoid") {
    return ctx.set_output(0, ctx.b().hard_sigmoid(ctx.name(), ctx.runtime(0), ctx.attr_float("alpha", 0.2f),
                                                  ctx.attr_float("beta", 0.5f)));
  }
  ctx.set_output(0, ctx.b().activation(ctx.name(), ctx.runtime(0), f));
}

void map_clip(NodeContext& ctx) {
  require_f32(ctx, 0);
  const float lo = ctx.has_input(1) ? ctx.const_scalar(1) : -std::numeric_limits<float>::infinity();
  const float hi = ctx.has_input(2) ? ctx.const_scalar(2) : std::numeric_limits<float>::infinity();
  // ONNX: when min > max every output is max.
  ctx.set_output(0, ctx.b().clip(ctx.name(), ctx.runtime(0), lo > hi ? hi : lo, hi));
}

}  // namespace quarks::onnx_import
