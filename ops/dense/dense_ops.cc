// Schemas of the dense family: dense, gated_dense (made by fusion), matmul and synaptic_gate.
#include "ops/contract/shape_utils.hpp"
#include "ops/dense/dense_kernel.hpp"
#include "ops/dense/gated_dense_kernel.hpp"
#include "ops/dense/matmul_kernel.hpp"
#include "ops/dense/synaptic_gate_kernel.hpp"
#include "ops/op_schemas.hpp"

namespace quarks::detail {
namespace {

int no_in_place(const Node&) { return -1; }

std::string dim_text(const SymDim& d) {
  return d.known() ? std::to_string(d.value) : d.symbol.empty() ? "?" : d.symbol;
}

void check_constant(const Node& node, const GraphIR& g, std::size_t i, const char* role) {
  if (g.values[node.inputs[i]].kind != ValueKind::kConstant) {
    attr_error(node, std::string(role) + " '" + input_name(node, g, i) +
                         "' must be a constant (use matmul for a product of two runtime tensors)");
  }
}

// Checks x [..., K] against a constant weight [K, N] (and an optional bias [N]); returns x[..., N].
SymShape infer_product(const Node& node, const GraphIR& g, std::span<const SymShape> in, std::size_t w_index,
                       int bias_index) {
  const SymShape& x = in[0];
  const SymShape& w = in[w_index];
  if (x.empty()) shape_error(node, "input '" + input_name(node, g, 0) + "' must have at least one dim");
  if (w.size() != 2) {
    shape_error(node, "weight '" + input_name(node, g, w_index) + "' has shape " + to_string(w) + "; expected [K, N]");
  }
  if (!may_equal(x.back(), w[0])) {
    shape_error(node, "input '" + input_name(node, g, 0) + "' has shape " + to_string(x) + " but the weight '" +
                          input_name(node, g, w_index) + "' expects K=" + dim_text(w[0]));
  }
  if (bias_index >= 0) {
    const SymShape& b = in[bias_index];
    if (b.size() != 1 || !may_equal(b[0], w[1])) {
      shape_error(node, "bias '" + input_name(node, g, bias_index) + "' has shape " + to_string(b) +
                            " but N=" + dim_text(w[1]));
    }
  }
  if (w[0].known() && w[0].value == 0) {
    throw Error(ErrorCode::kUnsupported, GraphIR::where(node) + "weight '" + input_name(node, g, w_index) +
                                             "' has K=0; empty products are not supported");
  }
  SymShape y = x;
  y.back() = w[1];
  return y;
}

// Rows of a dense product: x's leading dims flattened.
std::int64_t rows_of(const Shape& x) {
  std::int64_t m = 1;
  for (int d = 0; d + 1 < x.rank(); ++d) m *= x[d];
  return m;
}

void check_arity(const Node& node, std::size_t expected) {
  if (node.inputs.size() != expected) {
    attr_error(node, "expects " + std::to_string(expected) + " inputs, got " + std::to_string(node.inputs.size()));
  }
}

void check_activation(const Node& node, const Activation& f) {
  if (f.kind == ActivationKind::kPolynomial && (f.coeffs.empty() || f.coeffs.size() > 16)) {
    attr_error(node, "polynomial needs 1 to 16 coefficients, got " + std::to_string(f.coeffs.size()));
  }
}

// --- dense --------------------------------------------------------------------------------------

std::vector<SymShape> infer_dense(const Node& node, const GraphIR& g, std::span<const SymShape> in) {
  const DenseAttrs& a = node.attr<DenseAttrs>();
  check_arity(node, a.has_bias ? 3 : 2);
  check_constant(node, g, 1, "weight");
  if (a.has_bias) check_constant(node, g, 2, "bias");
  check_activation(node, a.f);
  return {infer_product(node, g, in, 1, a.has_bias ? 2 : -1)};
}

// Bytes of a [k, n] weight as a dense kernel stores it (bf16 or f32) and of its f32 bias (n, if any).
double stored_weight_bytes(std::int64_t k, std::int64_t n, bool bf16, bool has_bias) {
  return static_cast<double>(k) * static_cast<double>(n) * (bf16 ? 2.0 : 4.0) +
         (has_bias ? 4.0 * static_cast<double>(n) : 0.0);
}

template <class Kernel>
class KernelOp final : public CompiledOp {
 public:
  template <class... Args>
  explicit KernelOp(double constant_bytes, Args&&... args)
      : kernel_(std::forward<Args>(args)...), constant_bytes_(constant_bytes) {}
  std::size_t scratch_bytes() const override { return kernel_.scratch_bytes(); }
  void run(const OpIO& io) const override { kernel_.run(io.in_f32(0), io.out_f32(0), io.scratch); }
  double constant_bytes() const override { return constant_bytes_; }

 private:
  Kernel kernel_;
  double constant_bytes_;
};

std::unique_ptr<CompiledOp> compile_dense(const CompileContext& ctx) {
  const DenseAttrs& a = ctx.node.attr<DenseAttrs>();
  ops::DenseConfig cfg;
  cfg.m = rows_of(ctx.in[0]);
  cfg.k = ctx.in[1][0];
  cfg.n = ctx.in[1][1];
  cfg.activation = a.f;
  cfg.bf16_weights = ctx.precision == Precision::kBF16;
  cfg.max_threads = ctx.threads;
  cfg.weights_cache = ctx.weights_cache;
  return std::make_unique<KernelOp<ops::DenseKernel>>(stored_weight_bytes(cfg.k, cfg.n, cfg.bf16_weights, a.has_bias),
                                                      cfg, ctx.constant_f32(1),
                                                      a.has_bias ? ctx.constant_f32(2) : nullptr);
}

// --- gated_dense: f(x·W1 + b1) ⊙ g(x·W2 + b2) ------------------------------------------------------

std::vector<SymShape> infer_gated_dense(const Node& node, const GraphIR& g, std::span<const SymShape> in) {
  const GatedDenseAttrs& a = node.attr<GatedDenseAttrs>();
  check_arity(node, 3 + (a.has_bias1 ? 1 : 0) + (a.has_bias2 ? 1 : 0));
  const int b1 = a.has_bias1 ? 3 : -1;
  const int b2 = a.has_bias2 ? (a.has_bias1 ? 4 : 3) : -1;
  SymShape y1 = infer_product(node, g, in, 1, b1);
  SymShape y2 = infer_product(node, g, in, 2, b2);
  if (!(y1.back() == y2.back())) shape_error(node, "the two weights have different N");
  return {y1};
}

std::unique_ptr<CompiledOp> compile_gated_dense(const CompileContext& ctx) {
  const GatedDenseAttrs& a = ctx.node.attr<GatedDenseAttrs>();
  ops::GatedDenseConfig cfg;
  cfg.m = rows_of(ctx.in[0]);
  cfg.k = ctx.in[1][0];
  cfg.n = ctx.in[1][1];
  cfg.f = a.f;
  cfg.g = a.g;
  cfg.bf16_weights = ctx.precision == Precision::kBF16;
  cfg.max_threads = ctx.threads;
  cfg.weights_cache = ctx.weights_cache;
  const float* b1 = a.has_bias1 ? ctx.constant_f32(3) : nullptr;
  const float* b2 = a.has_bias2 ? ctx.constant_f32(a.has_bias1 ? 4 : 3) : nullptr;
  const double bytes = stored_weight_bytes(cfg.k, cfg.n, cfg.bf16_weights, a.has_bias1) +
                       stored_weight_bytes(cfg.k, cfg.n, cfg.bf16_weights, a.has_bias2);
  return std::make_unique<KernelOp<ops::GatedDenseKernel>>(bytes, cfg, ctx.constant_f32(1), b1, ctx.constant_f32(2),
                                                           b2);
}

// --- matmul -------------------------------------------------------------------------------------

std::vector<SymShape> infer_matmul(const Node& node, const GraphIR& g, std::span<const SymShape> in) {
  check_arity(node, 2);
  const MatMulAttrs& a = node.attr<MatMulAttrs>();
  for (int i = 0; i < 2; ++i) {
    if (in[i].size() < 2)
      shape_error(node, "input '" + input_name(node, g, i) + "' has shape " + to_string(in[i]) +
                            "; matmul needs at least 2 dims");
  }
  const std::size_t ra = in[0].size(), rb = in[1].size();
  const SymDim& m = a.trans_a ? in[0][ra - 1] : in[0][ra - 2];
  const SymDim& ka = a.trans_a ? in[0][ra - 2] : in[0][ra - 1];
  const SymDim& kb = a.trans_b ? in[1][rb - 1] : in[1][rb - 2];
  const SymDim& n = a.trans_b ? in[1][rb - 2] : in[1][rb - 1];
  if (ka.known() && ka.value == 0) {
    throw Error(ErrorCode::kUnsupported, GraphIR::where(node) + "inner dim K=0; empty products are not supported");
  }
  if (!may_equal(ka, kb)) {
    shape_error(node, "inner dims differ: '" + input_name(node, g, 0) + "' " + to_string(in[0]) +
                          (a.trans_a ? " (transposed)" : "") + " has K=" + dim_text(ka) + " but '" +
                          input_name(node, g, 1) + "' " + to_string(in[1]) + (a.trans_b ? " (transposed)" : "") +
                          " has K=" + dim_text(kb));
  }
  SymShape batch_a(in[0].begin(), in[0].end() - 2), batch_b(in[1].begin(), in[1].end() - 2);
  SymShape y = broadcast_shapes(node, g, batch_a, batch_b);
  y.push_back(m);
  y.push_back(n);
  return {y};
}

class MatMulOp final : public CompiledOp {
 public:
  explicit MatMulOp(const ops::MatMulConfig& cfg) : kernel_(cfg) {}
  std::size_t scratch_bytes() const override { return kernel_.scratch_bytes(); }
  void run(const OpIO& io) const override { kernel_.run(io.in_f32(0), io.in_f32(1), io.out_f32(0), io.scratch); }

 private:
  ops::MatMulKernel kernel_;
};

// Batch dims collapse to one count when each operand's batch is either the full output batch or
// all ones (broadcast) — the forms attention and batched products use.
std::int64_t batch_stride(const Node& node, const Shape& x, const Shape& y, std::int64_t matrix) {
  const int batch_rank = y.rank() - 2;
  std::int64_t x_batch = 1;
  for (int d = 0; d + 2 < x.rank(); ++d) x_batch *= x[d];
  if (x_batch == 1) return 0;
  bool full = x.rank() == y.rank();
  for (int d = 0; full && d < batch_rank; ++d) full = x[d] == y[d];
  if (!full) {
    throw Error(ErrorCode::kUnsupported, GraphIR::where(node) + "batch dims of an input " + x.to_string() +
                                             " broadcast partially against the output " + y.to_string() +
                                             "; quarks broadcasts only a whole batch of one matrix");
  }
  return matrix;
}

std::unique_ptr<CompiledOp> compile_matmul(const CompileContext& ctx) {
  const MatMulAttrs& a = ctx.node.attr<MatMulAttrs>();
  const Shape& x = ctx.in[0];
  const Shape& w = ctx.in[1];
  const Shape& y = ctx.out[0];
  ops::MatMulConfig cfg;
  cfg.m = y[y.rank() - 2];
  cfg.n = y[y.rank() - 1];
  cfg.k = a.trans_a ? x[x.rank() - 2] : x[x.rank() - 1];
  cfg.batch = 1;
  for (int d = 0; d + 2 < y.rank(); ++d) cfg.batch *= y[d];
  cfg.trans_a = a.trans_a;
  cfg.trans_b = a.trans_b;
  cfg.a_batch_stride = batch_stride(ctx.node, x, y, cfg.m * cfg.k);
  cfg.b_batch_stride = batch_stride(ctx.node, w, y, cfg.k * cfg.n);
  cfg.max_threads = ctx.threads;
  return std::make_unique<MatMulOp>(cfg);
}

// --- synaptic_gate ------------------------------------------------------------------------------

std::vector<SymShape> infer_synaptic_gate(const Node& node, const GraphIR& g, std::span<const SymShape> in) {
  check_arity(node, 3);
  check_constant(node, g, 1, "weight");
  SymShape y = infer_product(node, g, in, 1, -1);
  const SymShape& gate = in[2];
  const SymShape& w = in[1];
  SymDim m{1, {}};
  for (std::size_t d = 0; d + 1 < in[0].size(); ++d) {
    if (!in[0][d].known() || !m.known()) {
      m = {};
    } else {
      m.value *= in[0][d].value;
    }
  }
  const bool mask = gate.size() == 2 && may_equal(gate[0], w[0]) && may_equal(gate[1], w[1]);
  const bool per_input =
      gate.size() == 3 && may_equal(gate[0], m) && may_equal(gate[1], w[0]) && gate[2].known() && gate[2].value == 1;
  const bool full = gate.size() == 3 && may_equal(gate[0], m) && may_equal(gate[1], w[0]) && may_equal(gate[2], w[1]);
  if (!mask && !per_input && !full) {
    shape_error(node, "gate '" + input_name(node, g, 2) + "' has shape " + to_string(gate) + "; expected [K,N] = [" +
                          dim_text(w[0]) + "," + dim_text(w[1]) + "], [M,K,1] or [M,K,N] with M=" + dim_text(m));
  }
  return {y};
}

class SynapticGateOp final : public CompiledOp {
 public:
  SynapticGateOp(const ops::SynapticGateConfig& cfg, const float* w) : kernel_(cfg, w) {}
  std::size_t scratch_bytes() const override { return kernel_.scratch_bytes(); }
  void run(const OpIO& io) const override { kernel_.run(io.in_f32(0), io.in_f32(2), io.out_f32(0), io.scratch); }

 private:
  ops::SynapticGateKernel kernel_;
};

std::unique_ptr<CompiledOp> compile_synaptic_gate(const CompileContext& ctx) {
  const Shape& gate = ctx.in[2];
  ops::SynapticGateConfig cfg;
  cfg.m = rows_of(ctx.in[0]);
  cfg.k = ctx.in[1][0];
  cfg.n = ctx.in[1][1];
  cfg.mode = gate.rank() == 2             ? ops::SynapticGateMode::kSynapseMask
             : gate[2] == 1 && cfg.n != 1 ? ops::SynapticGateMode::kPerInput
                                          : ops::SynapticGateMode::kFull;
  cfg.max_threads = ctx.threads;
  return std::make_unique<SynapticGateOp>(cfg, ctx.constant_f32(1));
}

}  // namespace

const OpSchema kDenseSchema{infer_dense, no_in_place, false, compile_dense};
const OpSchema kGatedDenseSchema{infer_gated_dense, no_in_place, false, compile_gated_dense};
const OpSchema kMatMulSchema{infer_matmul, no_in_place, false, compile_matmul};
const OpSchema kSynapticGateSchema{infer_synaptic_gate, no_in_place, false, compile_synaptic_gate};

}  // namespace quarks::detail
