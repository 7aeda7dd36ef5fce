// Schemas of the elementwise ops that take f32, i64 and bool values: equal, where, cast, expand.
#include <algorithm>
#include <cstddef>

#include "ops/contract/parallel.hpp"
#include "ops/contract/shape_utils.hpp"
#include "ops/elementwise/broadcast.hpp"
#include "ops/elementwise/typed_kernels.hpp"
#include "ops/op_schemas.hpp"

namespace quarks::detail {
namespace {

[[noreturn]] void type_error(const Node& node, const std::string& message) {
  throw Error(ErrorCode::kTypeMismatch, GraphIR::where(node) + message);
}

void check_arity(const Node& node, std::size_t count, std::size_t expected) {
  if (count != expected) {
    attr_error(node, "expects " + std::to_string(expected) + " inputs, got " + std::to_string(count));
  }
}

// "'x' (i64)", for dtype messages.
std::string named_dtype(const Node& node, const GraphIR& g, std::span<const DType> in, std::size_t i) {
  return "'" + input_name(node, g, i) + "' (" + to_string(in[i]) + ")";
}

bool is_value_dtype(DType t) { return t == DType::kF32 || t == DType::kI64 || t == DType::kBool; }

void check_value_dtype(const Node& node, const GraphIR& g, std::span<const DType> in, std::size_t i) {
  if (!is_value_dtype(in[i])) type_error(node, "input " + named_dtype(node, g, in, i) + " must be f32, i64 or bool");
}

// NumPy broadcasting of any number of shapes, symbolic dims as in broadcast_shapes (ops/contract/shape_utils.cc):
// a known dim other than 1 wins over a symbol (the plan-time inference with concrete shapes checks it),
// equal symbols stay, different symbols give a dim known only at run time.
struct Operand {
  std::string label;  // "'x'" or "the target shape"
  const SymShape* shape;
};

SymShape broadcast_all(const Node& node, std::span<const Operand> operands) {
  std::size_t rank = 0;
  for (const Operand& o : operands) rank = std::max(rank, o.shape->size());
  SymShape out(rank, SymDim{1, {}});
  for (std::size_t i = 0; i < rank; ++i) {
    for (const Operand& o : operands) {
      const std::size_t pad = rank - o.shape->size();
      if (i < pad) continue;
      const SymDim& d = (*o.shape)[i - pad];
      SymDim& acc = out[i];
      if (d.known() && d.value == 1) continue;
      if (acc.known() && acc.value == 1) {
        acc = d;
      } else if (d.known() && acc.known()) {
        if (d.value != acc.value) {
          std::string list;
          for (const Operand& p : operands) list += (list.empty() ? "" : ", ") + p.label + " " + to_string(*p.shape);
          shape_error(node, list + " do not broadcast (dim " + std::to_string(i) + " of the result: " +
                                std::to_string(acc.value) + " vs " + std::to_string(d.value) + ")");
        }
      } else if (d.known()) {
        acc = d;
      } else if (!acc.known() && !(acc == d)) {
        acc = SymDim{};
      }
    }
  }
  return out;
}

const std::byte* bytes(const void* p) { return static_cast<const std::byte*>(p); }
std::byte* bytes(void* p) { return static_cast<std::byte*>(p); }

int first_input_in_place(const Node&) { return 0; }

// --- equal ---------------------------------------------------------------------------------------

std::vector<DType> dtypes_equal(const Node& node, const GraphIR& g, std::span<const DType> in) {
  check_arity(node, in.size(), 2);
  check_value_dtype(node, g, in, 0);
  if (in[0] != in[1]) {
    type_error(node, "inputs " + named_dtype(node, g, in, 0) + " and " + named_dtype(node, g, in, 1) +
                         " have different dtypes; equal compares values of one dtype (cast one of them)");
  }
  return {DType::kBool};
}

std::vector<SymShape> infer_equal(const Node& node, const GraphIR& g, std::span<const SymShape> in) {
  check_arity(node, in.size(), 2);
  return {broadcast_shapes(node, g, in[0], in[1])};
}

class EqualOp final : public CompiledOp {
 public:
  EqualOp(DType t, const Shape& out, const Shape& a, const Shape& b)
      : dtype_(t), size_(dtype_size(t)), loop_(out, {a, b}) {}
  void run(const OpIO& io) const override {
    parallel_blocks(loop_.total(), kElementwiseGrain, [&](std::int64_t begin, std::int64_t end) {
      loop_.for_each_run(begin, end,
                         [&](const std::int64_t* off, const std::int64_t* stride, std::int64_t y, std::int64_t n) {
                           ops::equal(dtype_, bytes(io.in[0]) + off[0] * size_, static_cast<std::size_t>(stride[0]),
                                      bytes(io.in[1]) + off[1] * size_, static_cast<std::size_t>(stride[1]),
                                      io.out_as<std::uint8_t>(0) + y, static_cast<std::size_t>(n));
                         });
    });
  }

 private:
  DType dtype_;
  std::int64_t size_;
  ops::BroadcastLoop loop_;
};

std::unique_ptr<CompiledOp> compile_equal(const CompileContext& ctx) {
  return std::make_unique<EqualOp>(ctx.in_dtype(0), ctx.out[0], ctx.in[0], ctx.in[1]);
}

// --- where ---------------------------------------------------------------------------------------

std::vector<DType> dtypes_where(const Node& node, const GraphIR& g, std::span<const DType> in) {
  check_arity(node, in.size(), 3);
  if (in[0] != DType::kBool) {
    type_error(node, "the condition " + named_dtype(node, g, in, 0) + " must be bool (compare or cast it first)");
  }
  check_value_dtype(node, g, in, 1);
  if (in[1] != in[2]) {
    type_error(node, "inputs " + named_dtype(node, g, in, 1) + " and " + named_dtype(node, g, in, 2) +
                         " have different dtypes; where picks between values of one dtype");
  }
  return {in[1]};
}

std::vector<SymShape> infer_where(const Node& node, const GraphIR& g, std::span<const SymShape> in) {
  check_arity(node, in.size(), 3);
  const Operand operands[] = {{"'" + input_name(node, g, 0) + "'", &in[0]},
                              {"'" + input_name(node, g, 1) + "'", &in[1]},
                              {"'" + input_name(node, g, 2) + "'", &in[2]}};
  return {broadcast_all(node, operands)};
}

class WhereOp final : public CompiledOp {
 public:
  WhereOp(DType t, const Shape& out, const Shape& c, const Shape& x, const Shape& z)
      : size_(dtype_size(t)), loop_(out, {c, x, z}) {}
  void run(const OpIO& io) const override {
    parallel_blocks(loop_.total(), kElementwiseGrain, [&](std::int64_t begin, std::int64_t end) {
      loop_.for_each_run(
          begin, end, [&](const std::int64_t* off, const std::int64_t* stride, std::int64_t y, std::int64_t n) {
            ops::where(static_cast<std::size_t>(size_), io.in_as<std::uint8_t>(0) + off[0],
                       static_cast<std::size_t>(stride[0]), bytes(io.in[1]) + off[1] * size_,
                       static_cast<std::size_t>(stride[1]), bytes(io.in[2]) + off[2] * size_,
                       static_cast<std::size_t>(stride[2]), bytes(io.out[0]) + y * size_, static_cast<std::size_t>(n));
          });
    });
  }

 private:
  std::int64_t size_;
  ops::BroadcastLoop loop_;
};

std::unique_ptr<CompiledOp> compile_where(const CompileContext& ctx) {
  return std::make_unique<WhereOp>(ctx.out_dtype(0), ctx.out[0], ctx.in[0], ctx.in[1], ctx.in[2]);
}

// The output may reuse x's buffer (same dtype; the planner checks the element count).
int where_in_place(const Node&) { return 1; }

// --- cast ----------------------------------------------------------------------------------------

std::vector<DType> dtypes_cast(const Node& node, const GraphIR& g, std::span<const DType> in) {
  check_arity(node, in.size(), 1);
  const DType to = node.attr<CastAttrs>().to;
  if (in[0] == DType::kBF16 && to != DType::kF32) {
    type_error(node, "input " + named_dtype(node, g, in, 0) + " can be cast only to f32, not to " + to_string(to));
  }
  if (in[0] != DType::kBF16) check_value_dtype(node, g, in, 0);
  if (!is_value_dtype(to)) {
    attr_error(node, std::string("cannot cast to ") + to_string(to) + "; the target dtype must be f32, i64 or bool");
  }
  return {to};
}

std::vector<SymShape> infer_cast(const Node& node, const GraphIR&, std::span<const SymShape> in) {
  check_arity(node, in.size(), 1);
  return {in[0]};
}

class CastOp final : public CompiledOp {
 public:
  CastOp(DType from, DType to, std::int64_t n)
      : from_(from), to_(to), from_size_(dtype_size(from)), to_size_(dtype_size(to)), n_(n) {}
  void run(const OpIO& io) const override {
    parallel_blocks(n_, kElementwiseGrain, [&](std::int64_t b, std::int64_t e) {
      ops::cast(from_, to_, bytes(io.in[0]) + b * from_size_, bytes(io.out[0]) + b * to_size_,
                static_cast<std::size_t>(e - b));
    });
  }

 private:
  DType from_, to_;
  std::int64_t from_size_, to_size_, n_;
};

std::unique_ptr<CompiledOp> compile_cast(const CompileContext& ctx) {
  return std::make_unique<CastOp>(ctx.in_dtype(0), ctx.out_dtype(0), ctx.out[0].numel());
}

// --- expand --------------------------------------------------------------------------------------

std::vector<DType> dtypes_expand(const Node& node, const GraphIR& g, std::span<const DType> in) {
  check_arity(node, in.size(), 1);
  check_value_dtype(node, g, in, 0);
  return {in[0]};
}

std::vector<SymShape> infer_expand(const Node& node, const GraphIR& g, std::span<const SymShape> in) {
  check_arity(node, in.size(), 1);
  const std::vector<std::int64_t>& shape = node.attr<ExpandAttrs>().shape;
  if (shape.size() > static_cast<std::size_t>(Shape::kMaxRank)) {
    attr_error(node, "target shape has " + std::to_string(shape.size()) + " dims; at most " +
                         std::to_string(Shape::kMaxRank) + " are supported");
  }
  SymShape target;
  for (std::int64_t d : shape) {
    if (d < 0) attr_error(node, "target shape dims must be >= 0, got " + std::to_string(d));
    target.push_back({d, {}});
  }
  const Operand operands[] = {{"input '" + input_name(node, g, 0) + "'", &in[0]}, {"the target shape", &target}};
  return {broadcast_all(node, operands)};
}

class ExpandOp final : public CompiledOp {
 public:
  ExpandOp(DType t, const Shape& out, const Shape& x) : size_(dtype_size(t)), loop_(out, {x}) {}
  void run(const OpIO& io) const override {
    parallel_blocks(loop_.total(), kElementwiseGrain, [&](std::int64_t begin, std::int64_t end) {
      loop_.for_each_run(begin, end,
                         [&](const std::int64_t* off, const std::int64_t* stride, std::int64_t y, std::int64_t n) {
                           ops::broadcast_copy(static_cast<std::size_t>(size_), bytes(io.in[0]) + off[0] * size_,
                                               static_cast<std::size_t>(stride[0]), bytes(io.out[0]) + y * size_,
                                               static_cast<std::size_t>(n));
                         });
    });
  }

 private:
  std::int64_t size_;
  ops::BroadcastLoop loop_;
};

std::unique_ptr<CompiledOp> compile_expand(const CompileContext& ctx) {
  return std::make_unique<ExpandOp>(ctx.out_dtype(0), ctx.out[0], ctx.in[0]);
}

}  // namespace

const OpSchema kEqualSchema{infer_equal, first_input_in_place, false, compile_equal, dtypes_equal};
const OpSchema kWhereSchema{infer_where, where_in_place, false, compile_where, dtypes_where};
const OpSchema kCastSchema{infer_cast, first_input_in_place, false, compile_cast, dtypes_cast};
const OpSchema kExpandSchema{infer_expand, first_input_in_place, false, compile_expand, dtypes_expand};

}  // namespace quarks::detail
