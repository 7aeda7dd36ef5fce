// Schemas of the dense family: dense, gated_dense (made by fusion), matmul and synaptic_gate.
#include <algorithm>
#include <cstring>
#include <optional>

#include "ops/contract/shape_utils.hpp"
#include "ops/dense/dense_kernel.hpp"
#include "ops/dense/gated_dense_kernel.hpp"
#include "ops/dense/linear_bf16_kernel.hpp"
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

// Checks x [..., K] against a constant weight [K, N] ([N, K] when `transposed`: linear) and an optional
// bias [N]; returns x[..., N].
SymShape infer_product(const Node& node, const GraphIR& g, std::span<const SymShape> in, std::size_t w_index,
                       int bias_index, bool transposed = false) {
  const SymShape& x = in[0];
  const SymShape& w = in[w_index];
  if (x.empty()) shape_error(node, "input '" + input_name(node, g, 0) + "' must have at least one dim");
  if (w.size() != 2) {
    shape_error(node, "weight '" + input_name(node, g, w_index) + "' has shape " + to_string(w) + "; expected " +
                          (transposed ? "[N, K]" : "[K, N]"));
  }
  const SymDim& k = w[transposed ? 1 : 0];
  const SymDim& n = w[transposed ? 0 : 1];
  if (!may_equal(x.back(), k)) {
    shape_error(node, "input '" + input_name(node, g, 0) + "' has shape " + to_string(x) + " but the weight '" +
                          input_name(node, g, w_index) + "' expects K=" + dim_text(k));
  }
  if (bias_index >= 0) {
    const SymShape& b = in[bias_index];
    if (b.size() != 1 || !may_equal(b[0], n)) {
      shape_error(node,
                  "bias '" + input_name(node, g, bias_index) + "' has shape " + to_string(b) + " but N=" + dim_text(n));
    }
  }
  if (k.known() && k.value == 0) {
    throw Error(ErrorCode::kUnsupported, GraphIR::where(node) + "weight '" + input_name(node, g, w_index) +
                                             "' has K=0; empty products are not supported");
  }
  SymShape y = x;
  y.back() = n;
  return y;
}

// Dtypes of dense and gated dense: f32 everywhere, except that the weights of a linear (transposed)
// product may be bf16 (read in place at precision bf16).
std::vector<DType> product_dtypes(const Node& node, const GraphIR& g, std::span<const DType> in,
                                  std::span<const std::size_t> weights, bool transposed) {
  for (std::size_t i = 0; i < in.size(); ++i) {
    const bool weight = std::find(weights.begin(), weights.end(), i) != weights.end();
    if (in[i] == DType::kF32 || (weight && transposed && in[i] == DType::kBF16)) continue;
    throw Error(ErrorCode::kTypeMismatch,
                GraphIR::where(node) + "input " + std::to_string(i) + " '" + input_name(node, g, i) + "' is " +
                    to_string(in[i]) +
                    (weight ? (transposed ? "; linear weights must be f32 or bf16"
                                          : "; dense weights must be f32 (linear takes bf16 [N, K] weights)")
                            : " but must be f32"));
  }
  return {DType::kF32};
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
  return {infer_product(node, g, in, 1, a.has_bias ? 2 : -1, a.w_transposed)};
}

std::vector<DType> dense_dtypes(const Node& node, const GraphIR& g, std::span<const DType> in) {
  const std::size_t weights[] = {1};
  return product_dtypes(node, g, in, weights, node.attr<DenseAttrs>().w_transposed);
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
  KernelOp(double constant_bytes, std::vector<Tensor> keep, Args&&... args)
      : keep_(std::move(keep)), kernel_(std::forward<Args>(args)...), constant_bytes_(constant_bytes) {}
  std::size_t scratch_bytes() const override { return kernel_.scratch_bytes(); }
  void run(const OpIO& io) const override { kernel_.run(io.in_f32(0), io.out_f32(0), io.scratch); }
  double constant_bytes() const override { return constant_bytes_; }

 private:
  std::vector<Tensor> keep_;  // weights converted for the kernel (declared first: they outlive it)
  Kernel kernel_;
  double constant_bytes_;
};

// A linear weight [N, K] (f32 or bf16) as the f32 [K, N] matrix DenseKernel takes, in tiles so that
// both sides stay in cache.
Tensor transposed_f32(const Tensor& w) {
  const std::int64_t n = w.shape()[0], k = w.shape()[1];
  Tensor out(DType::kF32, {k, n});
  float* dst = out.f32();
  const bool bf16 = w.dtype() == DType::kBF16;
  const auto* src16 = static_cast<const std::uint16_t*>(w.data());
  const auto* src32 = static_cast<const float*>(w.data());
  constexpr std::int64_t kTile = 64;
  for (std::int64_t r0 = 0; r0 < n; r0 += kTile) {
    for (std::int64_t c0 = 0; c0 < k; c0 += kTile) {
      const std::int64_t r1 = std::min(n, r0 + kTile), c1 = std::min(k, c0 + kTile);
      for (std::int64_t c = c0; c < c1; ++c) {
        for (std::int64_t r = r0; r < r1; ++r) {
          if (bf16) {
            const std::uint32_t bits = static_cast<std::uint32_t>(src16[r * k + c]) << 16;
            std::memcpy(&dst[c * n + r], &bits, sizeof bits);
          } else {
            dst[c * n + r] = src32[r * k + c];
          }
        }
      }
    }
  }
  return out;
}

// Whether a linear product runs on its bf16 weights in place (LinearBf16Kernel): bf16 weights at
// precision bf16. Otherwise they are converted to f32 [K, N] for DenseKernel / GatedDenseKernel.
bool in_place_bf16(const CompileContext& ctx, std::size_t w_index) {
  return ctx.constant(w_index).dtype() == DType::kBF16 && ctx.precision == Precision::kBF16;
}

ops::LinearBf16Kernel::Weights bf16_rows(const CompileContext& ctx, std::size_t w_index, const float* bias) {
  const Tensor& w = ctx.constant(w_index);
  return {static_cast<const std::uint16_t*>(w.data()), w.shape()[1], bias};
}

std::unique_ptr<CompiledOp> compile_dense(const CompileContext& ctx) {
  const DenseAttrs& a = ctx.node.attr<DenseAttrs>();
  const float* bias = a.has_bias ? ctx.constant_f32(2) : nullptr;
  const std::int64_t m = rows_of(ctx.in[0]);
  const std::int64_t k = a.w_transposed ? ctx.in[1][1] : ctx.in[1][0];
  const std::int64_t n = a.w_transposed ? ctx.in[1][0] : ctx.in[1][1];
  if (a.w_transposed && in_place_bf16(ctx, 1)) {
    ops::LinearBf16Config cfg{m, k, n, a.f, std::nullopt, ctx.threads};
    return std::make_unique<KernelOp<ops::LinearBf16Kernel>>(stored_weight_bytes(k, n, true, a.has_bias),
                                                             std::vector<Tensor>{}, cfg, bf16_rows(ctx, 1, bias));
  }
  ops::DenseConfig cfg;
  cfg.m = m;
  cfg.k = k;
  cfg.n = n;
  cfg.activation = a.f;
  cfg.bf16_weights = ctx.precision == Precision::kBF16;
  cfg.max_threads = ctx.threads;
  std::vector<Tensor> keep;
  const float* w = nullptr;
  if (!a.w_transposed) {
    w = ctx.constant_f32(1);
    cfg.weights_cache = ctx.weights_cache;
  } else {  // a copy of this plan's own: not shared through the cache
    keep.push_back(transposed_f32(ctx.constant(1)));
    w = keep.back().f32();
  }
  return std::make_unique<KernelOp<ops::DenseKernel>>(stored_weight_bytes(k, n, cfg.bf16_weights, a.has_bias),
                                                      std::move(keep), cfg, w, bias);
}

// --- gated_dense: f(x·W1 + b1) ⊙ g(x·W2 + b2) ------------------------------------------------------

std::vector<SymShape> infer_gated_dense(const Node& node, const GraphIR& g, std::span<const SymShape> in) {
  const GatedDenseAttrs& a = node.attr<GatedDenseAttrs>();
  check_arity(node, 3 + (a.has_bias1 ? 1 : 0) + (a.has_bias2 ? 1 : 0));
  const int b1 = a.has_bias1 ? 3 : -1;
  const int b2 = a.has_bias2 ? (a.has_bias1 ? 4 : 3) : -1;
  SymShape y1 = infer_product(node, g, in, 1, b1, a.w_transposed);
  SymShape y2 = infer_product(node, g, in, 2, b2, a.w_transposed);
  if (!(y1.back() == y2.back())) shape_error(node, "the two weights have different N");
  return {y1};
}

std::vector<DType> gated_dense_dtypes(const Node& node, const GraphIR& g, std::span<const DType> in) {
  const std::size_t weights[] = {1, 2};
  return product_dtypes(node, g, in, weights, node.attr<GatedDenseAttrs>().w_transposed);
}

std::unique_ptr<CompiledOp> compile_gated_dense(const CompileContext& ctx) {
  const GatedDenseAttrs& a = ctx.node.attr<GatedDenseAttrs>();
  const float* b1 = a.has_bias1 ? ctx.constant_f32(3) : nullptr;
  const float* b2 = a.has_bias2 ? ctx.constant_f32(a.has_bias1 ? 4 : 3) : nullptr;
  const std::int64_t m = rows_of(ctx.in[0]);
  const std::int64_t k = a.w_transposed ? ctx.in[1][1] : ctx.in[1][0];
  const std::int64_t n = a.w_transposed ? ctx.in[1][0] : ctx.in[1][1];
  if (a.w_transposed && in_place_bf16(ctx, 1) && in_place_bf16(ctx, 2)) {
    ops::LinearBf16Config cfg{m, k, n, a.f, a.g, ctx.threads};
    const double bytes = stored_weight_bytes(k, n, true, a.has_bias1) + stored_weight_bytes(k, n, true, a.has_bias2);
    return std::make_unique<KernelOp<ops::LinearBf16Kernel>>(bytes, std::vector<Tensor>{}, cfg, bf16_rows(ctx, 1, b1),
                                                             bf16_rows(ctx, 2, b2));
  }
  ops::GatedDenseConfig cfg;
  cfg.m = m;
  cfg.k = k;
  cfg.n = n;
  cfg.f = a.f;
  cfg.g = a.g;
  cfg.bf16_weights = ctx.precision == Precision::kBF16;
  cfg.max_threads = ctx.threads;
  std::vector<Tensor> keep;
  const float* w1 = nullptr;
  const float* w2 = nullptr;
  if (!a.w_transposed) {
    w1 = ctx.constant_f32(1);
    w2 = ctx.constant_f32(2);
    cfg.weights_cache = ctx.weights_cache;
  } else {  // copies of this plan's own: not shared through the cache
    keep.push_back(transposed_f32(ctx.constant(1)));
    keep.push_back(transposed_f32(ctx.constant(2)));
    w1 = keep[0].f32();
    w2 = keep[1].f32();
  }
  const double bytes = stored_weight_bytes(k, n, cfg.bf16_weights, a.has_bias1) +
                       stored_weight_bytes(k, n, cfg.bf16_weights, a.has_bias2);
  return std::make_unique<KernelOp<ops::GatedDenseKernel>>(bytes, std::move(keep), cfg, w1, b1, w2, b2);
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

const OpSchema kDenseSchema{infer_dense, no_in_place, false, compile_dense, dense_dtypes};
const OpSchema kGatedDenseSchema{infer_gated_dense, no_in_place, false, compile_gated_dense, gated_dense_dtypes};
const OpSchema kMatMulSchema{infer_matmul, no_in_place, false, compile_matmul};
const OpSchema kSynapticGateSchema{infer_synaptic_gate, no_in_place, false, compile_synaptic_gate};

}  // namespace quarks::detail
