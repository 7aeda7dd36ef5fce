// Schemas of the KV cache ops. Their cache outputs live in the Session's state memory: the builder marks
// them (ValueInfo::state), the planner places them (ValueLocation::kState) and the Session keeps the
// memory and the lengths between runs (engine/session.cc). These ops only read and write through OpIO.
//   kv_cache_length() -> i64 [1]: the cache's length before this run (the op itself does nothing: its
//                                 output is the Session's length slot).
//   kv_cache_append(k, v, length) -> keys, values [B, Hkv, max_len, D], key_lengths i64 [B].
#include "ops/attention/kv_cache_kernel.hpp"
#include "ops/contract/shape_utils.hpp"
#include "ops/op_schemas.hpp"

namespace quarks::detail {
namespace {

int no_in_place(const Node&) { return -1; }

std::string dim_text(const SymDim& d) {
  return d.known() ? std::to_string(d.value) : d.symbol.empty() ? "?" : d.symbol;
}

SymDim known(std::int64_t v) { return SymDim{v, {}}; }

const KvCacheInfo& cache_of(const Node& node, const GraphIR& g) {
  const std::uint32_t c = node.attr<KvCacheAttrs>().cache;
  if (c >= g.caches.size()) attr_error(node, "refers to KV cache #" + std::to_string(c) + ", which does not exist");
  return g.caches[c];
}

// --- kv_cache_length -------------------------------------------------------------------------------------

std::vector<SymShape> infer_length(const Node& node, const GraphIR& g, std::span<const SymShape>) {
  if (!node.inputs.empty()) attr_error(node, "takes no inputs, got " + std::to_string(node.inputs.size()));
  cache_of(node, g);
  return {SymShape{known(1)}};
}

std::vector<DType> length_dtypes(const Node&, const GraphIR&, std::span<const DType>) { return {DType::kI64}; }

class NothingToDo final : public CompiledOp {
 public:
  void run(const OpIO&) const override {}
};

std::unique_ptr<CompiledOp> compile_length(const CompileContext&) { return std::make_unique<NothingToDo>(); }

// --- kv_cache_append -------------------------------------------------------------------------------------

std::string describe_input(const Node& node, const GraphIR& g, std::span<const SymShape> in, std::size_t i) {
  static const char* const kRoles[] = {"k", "v", "length"};
  return std::string(kRoles[i]) + " '" + input_name(node, g, i) + "' " + to_string(in[i]);
}

std::vector<SymShape> infer_append(const Node& node, const GraphIR& g, std::span<const SymShape> in) {
  if (node.inputs.size() != 3) attr_error(node, "expects 3 inputs, got " + std::to_string(node.inputs.size()));
  const KvCacheInfo& c = cache_of(node, g);
  const SymShape &k = in[0], &v = in[1];
  const std::string cache =
      "KV cache '" + c.name + "' [Hkv=" + std::to_string(c.num_kv_heads) + ", D=" + std::to_string(c.head_dim) + "]";
  if ((k.size() != 3 && k.size() != 4) || v.size() != k.size()) {
    shape_error(node, describe_input(node, g, in, 0) + " and " + describe_input(node, g, in, 1) +
                          " must both be [B, S_new, Hkv*D] or both [B, Hkv, S_new, D]");
  }
  for (std::size_t i = 0; i < 2; ++i) {
    const SymShape& x = in[i];
    if (x.size() == 3) {
      const std::int64_t hidden = std::int64_t{c.num_kv_heads} * c.head_dim;
      if (!may_equal(x[2], known(hidden))) {
        shape_error(node, describe_input(node, g, in, i) + " has hidden size " + dim_text(x[2]) + " but " + cache +
                              " needs " + std::to_string(hidden));
      }
    } else if (!may_equal(x[1], known(c.num_kv_heads)) || !may_equal(x[3], known(c.head_dim))) {
      shape_error(node, describe_input(node, g, in, i) + " does not match " + cache);
    }
  }
  const std::size_t seq_axis = k.size() == 3 ? 1 : 2;
  if (!may_equal(k[0], v[0]) || !may_equal(k[seq_axis], v[seq_axis])) {
    shape_error(node, describe_input(node, g, in, 0) + " and " + describe_input(node, g, in, 1) +
                          " must have the same batch and length");
  }
  if (in[2].size() != 1 || !may_equal(in[2][0], known(1))) {
    shape_error(node, describe_input(node, g, in, 2) + " must be [1]");
  }
  const SymShape cache_shape{k[0], known(c.num_kv_heads), known(c.max_len), known(c.head_dim)};
  return {cache_shape, cache_shape, SymShape{k[0]}};
}

std::vector<DType> append_dtypes(const Node& node, const GraphIR& g, std::span<const DType> in) {
  if (in.size() != 3) attr_error(node, "expects 3 inputs, got " + std::to_string(in.size()));
  static const char* const kRoles[] = {"k", "v", "length"};
  for (std::size_t i = 0; i < 3; ++i) {
    const DType want = i == 2 ? DType::kI64 : DType::kF32;
    if (in[i] != want) {
      throw Error(ErrorCode::kTypeMismatch, GraphIR::where(node) + kRoles[i] + " '" + input_name(node, g, i) + "' is " +
                                                to_string(in[i]) + " but must be " + to_string(want));
    }
  }
  return {DType::kF32, DType::kF32, DType::kI64};
}

class AppendOp final : public CompiledOp {
 public:
  AppendOp(const CompileContext& ctx, const ops::KvAppendConfig& cfg) : config_(cfg) {
    where_ = GraphIR::where(ctx.node) + "KV cache '" + cache_of(ctx.node, ctx.graph).name + "'";
  }
  void run(const OpIO& io) const override {
    const std::int64_t past = io.in_as<std::int64_t>(2)[0];
    // Session::run checks this before anything runs; this guards the memory if the op is reached otherwise.
    if (past < 0 || past > config_.max_len - config_.new_len) {
      throw Error(ErrorCode::kResourceExhausted, where_ + " is full: max_len " + std::to_string(config_.max_len) +
                                                     ", current length " + std::to_string(past) + ", " +
                                                     std::to_string(config_.new_len) + " new tokens");
    }
    ops::kv_cache_append(config_, io.in_f32(0), io.out_f32(0), past);
    ops::kv_cache_append(config_, io.in_f32(1), io.out_f32(1), past);
    std::int64_t* lengths = io.out_as<std::int64_t>(2);
    for (std::int64_t b = 0; b < config_.batch; ++b) lengths[b] = past + config_.new_len;
  }

 private:
  ops::KvAppendConfig config_;
  std::string where_;
};

std::unique_ptr<CompiledOp> compile_append(const CompileContext& ctx) {
  const KvCacheInfo& c = cache_of(ctx.node, ctx.graph);
  const Shape& k = ctx.in[0];
  ops::KvAppendConfig cfg;
  cfg.batch = k[0];
  cfg.kv_heads = c.num_kv_heads;
  cfg.head_dim = c.head_dim;
  cfg.head_major = k.rank() == 4;
  cfg.new_len = cfg.head_major ? k[2] : k[1];
  cfg.max_len = c.max_len;
  return std::make_unique<AppendOp>(ctx, cfg);
}

}  // namespace

const OpSchema kKvCacheLengthSchema{infer_length, no_in_place, false, compile_length, length_dtypes};
const OpSchema kKvCacheAppendSchema{infer_append, no_in_place, false, compile_append, append_dtypes};

}  // namespace quarks::detail
