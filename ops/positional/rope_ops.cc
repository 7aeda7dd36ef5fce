// Schema of the positional family: rope(x [, offset]) over [B, S, H·D] or [B, H, S, D]; the offset is
// the position of token 0 ([] or [1]) or every token's own position ([B, S]).
#include <cmath>
#include <map>
#include <memory>
#include <mutex>
#include <tuple>
#include <vector>

#include "ops/contract/shape_utils.hpp"
#include "ops/op_schemas.hpp"
#include "ops/positional/rope_kernels.hpp"

namespace quarks::detail {
namespace {

int rope_in_place(const Node&) { return 0; }

std::string dim_text(const SymDim& d) {
  return d.known() ? std::to_string(d.value) : d.symbol.empty() ? "?" : d.symbol;
}

void check_arity(const Node& node) {
  const std::size_t expected = node.attr<RopeAttrs>().has_offset_input ? 2 : 1;
  if (node.inputs.size() != expected) {
    attr_error(node, "expects " + std::to_string(expected) + " inputs, got " + std::to_string(node.inputs.size()));
  }
}

// Heads, head_dim and sequence length of x as known at this point (symbolic at build time).
struct RopeDims {
  SymDim heads, head_dim, seq;
};

RopeDims infer_dims(const Node& node, const GraphIR& g, const SymShape& x) {
  const RopeAttrs& a = node.attr<RopeAttrs>();
  const std::string xs = "x '" + input_name(node, g, 0) + "' " + to_string(x);
  if (!(a.theta > 0.0) || !std::isfinite(a.theta)) attr_error(node, "theta must be finite and > 0");
  for (double f : a.inv_freq)
    if (!(f >= 0.0) || !std::isfinite(f)) attr_error(node, "the inverse frequencies must be finite and >= 0");
  if (a.num_heads < 0 || a.head_dim < 0) attr_error(node, "num_heads and head_dim must be >= 0");
  if (!a.has_offset_input && (a.offset < 0 || a.offset >= ops::kRopeMaxPosition)) {
    attr_error(node, "offset " + std::to_string(a.offset) + " is outside [0, 2^31)");
  }
  RopeDims d;
  if (!a.head_major) {
    if (x.size() != 3) shape_error(node, xs + ": the token-major layout takes x as [B, S, H*D]");
    if (a.num_heads == 0 || a.head_dim == 0) {
      attr_error(node, "the token-major layout [B, S, H*D] needs num_heads and head_dim (got " +
                           std::to_string(a.num_heads) + " and " + std::to_string(a.head_dim) + ")");
    }
    d.heads = SymDim{a.num_heads, {}};
    d.head_dim = SymDim{a.head_dim, {}};
    d.seq = x[1];
    const std::int64_t hidden = std::int64_t{a.num_heads} * a.head_dim;
    if (!may_equal(x[2], SymDim{hidden, {}})) {
      shape_error(node, xs + " has hidden size " + dim_text(x[2]) + " but " + std::to_string(a.num_heads) +
                            " heads of D=" + std::to_string(a.head_dim) + " need " + std::to_string(hidden));
    }
  } else {
    if (x.size() != 4) shape_error(node, xs + ": the head-major layout takes x as [B, H, S, D]");
    d.heads = x[1];
    d.seq = x[2];
    d.head_dim = x[3];
    if (a.num_heads != 0 && !may_equal(x[1], SymDim{a.num_heads, {}})) {
      shape_error(node, xs + " has " + dim_text(x[1]) + " heads but num_heads is " + std::to_string(a.num_heads));
    }
    if (a.head_dim != 0 && !may_equal(x[3], SymDim{a.head_dim, {}})) {
      shape_error(node, xs + " has D=" + dim_text(x[3]) + " but head_dim is " + std::to_string(a.head_dim));
    }
  }
  if (d.head_dim.known() && (d.head_dim.value < 2 || d.head_dim.value % 2 != 0)) {
    shape_error(node, xs + ": head_dim " + std::to_string(d.head_dim.value) + " must be even and >= 2");
  }
  if (d.head_dim.known() && !a.inv_freq.empty() &&
      static_cast<std::int64_t>(a.inv_freq.size()) * 2 != d.head_dim.value) {
    attr_error(node, std::to_string(a.inv_freq.size()) + " inverse frequencies given, but head_dim " +
                         std::to_string(d.head_dim.value) + " needs " + std::to_string(d.head_dim.value / 2));
  }
  if (d.heads.known() && d.heads.value < 1) shape_error(node, xs + " has no heads");
  if (!a.has_offset_input && d.seq.known() && d.seq.value > ops::kRopeMaxPosition - a.offset) {
    attr_error(node, "positions " + std::to_string(a.offset) + " .. " + std::to_string(a.offset + d.seq.value - 1) +
                         " are not all in [0, 2^31)");
  }
  return d;
}

std::vector<SymShape> infer_rope(const Node& node, const GraphIR& g, std::span<const SymShape> in) {
  check_arity(node);
  const RopeDims d = infer_dims(node, g, in[0]);
  if (node.attr<RopeAttrs>().has_offset_input) {
    const SymShape& o = in[1];
    const bool scalar = o.size() == 0 || (o.size() == 1 && may_equal(o[0], SymDim{1, {}}));
    const bool per_token = o.size() == 2 && may_equal(o[0], in[0][0]) && may_equal(o[1], d.seq);
    if (!scalar && !per_token) {
      shape_error(node, "offset '" + input_name(node, g, 1) + "' has shape " + to_string(o) +
                            " but must be a scalar [] or [1], or the positions [B, S] = [" + dim_text(in[0][0]) + ", " +
                            dim_text(d.seq) + "]");
    }
  }
  return {in[0]};
}

std::vector<DType> rope_dtypes(const Node& node, const GraphIR& g, std::span<const DType> in) {
  check_arity(node);
  if (in[0] != DType::kF32) {
    throw Error(ErrorCode::kTypeMismatch, GraphIR::where(node) + "x '" + input_name(node, g, 0) + "' is " +
                                              to_string(in[0]) + " but must be f32");
  }
  if (in.size() > 1 && in[1] != DType::kI64) {
    throw Error(ErrorCode::kTypeMismatch, GraphIR::where(node) + "offset '" + input_name(node, g, 1) + "' is " +
                                              to_string(in[1]) + " but must be i64");
  }
  return {DType::kF32};
}

// The table of fixed positions offset .. offset + S - 1, shared by every rope op with the same (D, theta,
// offset, S) while one of them lives: q and k of every layer of a model use one table, not 2·layers.
std::shared_ptr<const std::vector<float>> shared_table(const ops::RopeKernel& kernel, std::int64_t offset) {
  using Key = std::tuple<std::int64_t, double, std::vector<double>, std::int64_t, std::int64_t>;
  static std::mutex mutex;
  static std::map<Key, std::weak_ptr<const std::vector<float>>> tables;
  const ops::RopeConfig& c = kernel.config();
  const Key key{c.head_dim, c.theta, c.inv_freq, offset, c.seq};
  std::lock_guard<std::mutex> lock(mutex);
  if (auto table = tables[key].lock()) return table;
  std::erase_if(tables, [](const auto& entry) { return entry.second.expired(); });
  auto table = std::make_shared<std::vector<float>>(static_cast<std::size_t>(kernel.table_floats()));
  kernel.fill_table(offset, table->data());
  tables[key] = table;
  return table;
}

class RopeOp final : public CompiledOp {
 public:
  // offset >= 0 with runtime == false: a fixed offset, the table is made here. per_token: the runtime
  // offset is [B, S], each token's position.
  RopeOp(const CompileContext& ctx, const ops::RopeConfig& cfg, bool runtime, std::int64_t offset, bool per_token)
      : kernel_(cfg), runtime_(runtime), per_token_(per_token) {
    if (!runtime_) {
      if (!kernel_.positions_valid(offset)) {
        attr_error(ctx.node, "positions " + std::to_string(offset) + " .. " + std::to_string(offset + cfg.seq - 1) +
                                 " are not all in [0, 2^31)");
      }
      table_ = shared_table(kernel_, offset);
    } else {
      where_ = GraphIR::where(ctx.node) + "offset '" + input_name(ctx.node, ctx.graph, 1) + "' = ";
    }
  }
  std::size_t scratch_bytes() const override {
    if (!runtime_) return 0;
    return static_cast<std::size_t>(per_token_ ? kernel_.positions_table_floats() : kernel_.table_floats()) *
           sizeof(float);
  }
  void run(const OpIO& io) const override {
    const float* table = table_ ? table_->data() : nullptr;
    if (per_token_) {
      const std::int64_t* positions = io.in_as<std::int64_t>(1);
      const std::int64_t bad = kernel_.first_bad_position(positions);
      if (bad >= 0) {
        const std::int64_t seq = kernel_.config().seq;
        throw Error(ErrorCode::kInvalidArgument, where_ + std::to_string(positions[bad]) + " at [" +
                                                     std::to_string(bad / seq) + ", " + std::to_string(bad % seq) +
                                                     "] is outside [0, 2^31)");
      }
      float* scratch = reinterpret_cast<float*>(io.scratch);
      kernel_.fill_positions_table(positions, scratch);
      kernel_.run(io.in_f32(0), io.out_f32(0), scratch, true);
      return;
    }
    if (runtime_) {
      const std::int64_t offset = io.in_as<std::int64_t>(1)[0];
      if (!kernel_.positions_valid(offset)) {
        throw Error(ErrorCode::kInvalidArgument, where_ + std::to_string(offset) + ": the positions of its " +
                                                     std::to_string(kernel_.config().seq) +
                                                     " tokens are not all in [0, 2^31)");
      }
      float* scratch = reinterpret_cast<float*>(io.scratch);
      kernel_.fill_table(offset, scratch);
      table = scratch;
    }
    kernel_.run(io.in_f32(0), io.out_f32(0), table);
  }

 private:
  ops::RopeKernel kernel_;
  bool runtime_, per_token_;
  std::shared_ptr<const std::vector<float>> table_;  // fixed positions only
  std::string where_;
};

std::unique_ptr<CompiledOp> compile_rope(const CompileContext& ctx) {
  const RopeAttrs& a = ctx.node.attr<RopeAttrs>();
  const Shape& x = ctx.in[0];
  ops::RopeConfig c;
  c.batch = x[0];
  c.head_major = a.head_major;
  c.theta = a.theta;
  c.inv_freq = a.inv_freq;
  if (a.head_major) {
    c.heads = x[1];
    c.seq = x[2];
    c.head_dim = x[3];
  } else {
    c.heads = a.num_heads;
    c.seq = x[1];
    c.head_dim = a.head_dim;
  }
  // A constant offset input is as good as the attribute: the table is made once.
  const bool per_token = a.has_offset_input && ctx.in[1].rank() == 2;
  if (a.has_offset_input && !per_token && ctx.is_constant(1)) {
    return std::make_unique<RopeOp>(ctx, c, false, ctx.constant(1).i64()[0], false);
  }
  return std::make_unique<RopeOp>(ctx, c, a.has_offset_input, a.offset, per_token);
}

}  // namespace

const OpSchema kRopeSchema{infer_rope, rope_in_place, false, compile_rope, rope_dtypes};

}  // namespace quarks::detail
