// GraphBuilder::linear: y = f(x·Wᵀ + b) on [N, K] weights, f32 or bf16 — the layout checkpoints store —
// against a double reference; bf16 weights read in place at precision bf16 (a change to the caller's
// buffer after compiling shows in the results: nothing was copied); bf16 constants elsewhere.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "common/bf16_bits.hpp"
#include "engine/test_util.hpp"
#include "ops/dense/gemv_bf16_simd.hpp"
#include "quarks/quarks.hpp"

namespace quarks {
namespace {

using test::bf16_bits;
using test::bf16_value;

// A caller-owned bf16 buffer [n, k] shared with the graph through Tensor::external.
struct Bf16Weights {
  std::shared_ptr<std::vector<std::uint16_t>> bits;
  Tensor tensor;
  Bf16Weights(std::int64_t n, std::int64_t k, std::uint32_t seed) {
    const Tensor v = test::random_tensor({n, k}, seed);
    bits = std::make_shared<std::vector<std::uint16_t>>(static_cast<std::size_t>(n * k));
    for (std::int64_t i = 0; i < n * k; ++i) (*bits)[static_cast<std::size_t>(i)] = bf16_bits(v.f32()[i]);
    tensor = Tensor::external(bits, bits->data(), DType::kBF16, {n, k});
  }
  double at(std::int64_t row, std::int64_t col, std::int64_t k) const {
    return bf16_value((*bits)[static_cast<std::size_t>(row * k + col)]);
  }
};

// silu(x·Wᵀ + b) in double; w(j, p) is W[j, p].
template <class W>
std::vector<double> reference(const Tensor& x, const W& w, const Tensor& b, std::int64_t n, bool silu) {
  const std::int64_t m = x.shape()[0], k = x.shape()[1];
  std::vector<double> y(static_cast<std::size_t>(m * n));
  for (std::int64_t i = 0; i < m; ++i) {
    for (std::int64_t j = 0; j < n; ++j) {
      double s = b.f32()[j];
      for (std::int64_t p = 0; p < k; ++p) s += static_cast<double>(x.f32()[i * k + p]) * w(j, p);
      y[static_cast<std::size_t>(i * n + j)] = silu ? s / (1.0 + std::exp(-s)) : s;
    }
  }
  return y;
}

// x as the product sees it: rounded to bf16 (to nearest even) where the bf16 matrix-vector kernel does
// that on this CPU (rows <= 8 at precision bf16 with AVX512_BF16), else unchanged.
Tensor x_as_decode_sees_it(const Tensor& x) {
  if (!ops::dense_detail::gemv_bf16_rounds_x()) return x;
  Tensor r(DType::kF32, x.shape());
  for (std::int64_t i = 0; i < x.numel(); ++i) r.f32()[i] = static_cast<float>(test::bf16_nearest(x.f32()[i]));
  return r;
}

Graph linear_graph(const Tensor& w, const Tensor& b, std::int64_t k, bool silu) {
  GraphBuilder g;
  const Value x = g.input("x", {Dim("m"), k});
  g.output("y", g.linear("proj", x, g.constant("w", w), g.constant("b", b),
                         silu ? Activation::silu() : Activation::identity()));
  return g.build();
}

TEST(Linear, F32WeightsMatchTheDoubleReference) {
  const std::int64_t k = 70, n = 45;
  const Tensor w = test::random_tensor({n, k}, 1), b = test::random_tensor({n}, 2);
  const Model model = compile(linear_graph(w, b, k, true));
  Session session(model);
  for (std::int64_t m : {1, 7, 40}) {
    const Tensor x = test::random_tensor({m, k}, 3);
    const auto want = reference(
        x, [&](std::int64_t j, std::int64_t p) { return w.f32()[j * k + p]; }, b, n, true);
    EXPECT_LT(test::max_abs_diff(session.run({{"x", x}}).at("y"), want), 1e-5) << "m=" << m;
  }
}

// Precision bf16: one-row and few-row runs (the Highway matrix-vector path, activations in f32) within
// f32 rounding; more rows (oneDNN, activations rounded to bf16) within 2^-8 of Σ|x·w|, where the CPU
// has bf16 matmuls. The weights are read in place: rewriting them after compile changes the results.
TEST(Linear, Bf16WeightsAreReadInPlace) {
  const std::int64_t k = 96, n = 130;
  Bf16Weights w(n, k, 4);
  const Tensor b = test::random_tensor({n}, 5);
  const Model model = compile(linear_graph(w.tensor, b, k, false), {.precision = Precision::kBF16});
  Session session(model);
  const auto weight = [&](std::int64_t j, std::int64_t p) { return w.at(j, p, k); };
  for (std::int64_t m : {1, 3, 8, 33}) {
    const Tensor x = test::random_tensor({m, k}, 6);
    Tensor y;
    try {
      y = session.run({{"x", x}}).at("y");
    } catch (const Error& e) {
      ASSERT_EQ(e.code(), ErrorCode::kUnsupported) << e.what();
      ASSERT_GT(m, 8) << e.what();
      std::printf("m=%lld skipped: %s\n", static_cast<long long>(m), e.what());
      continue;
    }
    const double tol = m <= 8 ? 1e-5 : 0x1p-8 * static_cast<double>(k) + 1e-5;  // |x|, |w| <= 1
    EXPECT_LT(test::max_abs_diff(y, reference(m <= 8 ? x_as_decode_sees_it(x) : x, weight, b, n, false)), tol)
        << "m=" << m;
  }
  const Tensor x = test::random_tensor({1, k}, 7);
  const Tensor before = session.run({{"x", x}}).at("y");
  for (std::int64_t p = 0; p < k; ++p) (*w.bits)[static_cast<std::size_t>(5 * k + p)] = bf16_bits(0.0f);
  const Tensor after = session.run({{"x", x}}).at("y");
  EXPECT_NE(before.f32()[5], after.f32()[5]);
  EXPECT_FLOAT_EQ(after.f32()[5], b.f32()[5]);  // row 5 of W is now zero: only the bias is left
  EXPECT_EQ(before.f32()[6], after.f32()[6]);
}

// Precision f32: bf16 weights are widened (exactly) into the f32 product's own copy.
TEST(Linear, Bf16WeightsAtPrecisionF32AreWidened) {
  const std::int64_t k = 40, n = 24;
  Bf16Weights w(n, k, 8);
  const Tensor b = test::random_tensor({n}, 9);
  const Tensor x = test::random_tensor({5, k}, 10);
  const Tensor y = test::run_once(linear_graph(w.tensor, b, k, true), {{"x", x}});
  const auto want = reference(
      x, [&](std::int64_t j, std::int64_t p) { return w.at(j, p, k); }, b, n, true);
  EXPECT_LT(test::max_abs_diff(y, want), 1e-5);
}

// f(x·W1ᵀ) ⊙ (x·W2ᵀ) of two linears on one x fuses into one gated dense product, in place at bf16.
TEST(Linear, TwoGatedLinearsFuseIntoOneGatedProduct) {
  const std::int64_t k = 64, n = 72;
  Bf16Weights w1(n, k, 11), w2(n, k, 12);
  GraphBuilder g;
  const Value x = g.input("x", {Dim("m"), k});
  const Value gate = g.linear("gate", x, g.constant("w1", w1.tensor));
  const Value up = g.linear("up", x, g.constant("w2", w2.tensor));
  g.output("y", g.output_gate("glu", gate, up, Activation::silu(), Activation::identity()));
  const Graph graph = g.build();
  for (const Precision precision : {Precision::kF32, Precision::kBF16}) {
    const Model model = compile(graph, {.precision = precision});
    EXPECT_NE(model.describe().find("gated_dense"), std::string::npos) << model.describe();
    Session session(model);
    const Tensor xv = test::random_tensor({2, k}, 13);
    const Tensor y = session.run({{"x", xv}}).at("y");
    const Tensor zero(DType::kF32, {n});
    const Tensor xr = precision == Precision::kBF16 ? x_as_decode_sees_it(xv) : xv;
    const auto s1 = reference(
        xr, [&](std::int64_t j, std::int64_t p) { return w1.at(j, p, k); }, zero, n, true);
    const auto s2 = reference(
        xr, [&](std::int64_t j, std::int64_t p) { return w2.at(j, p, k); }, zero, n, false);
    std::vector<double> want(s1.size());
    for (std::size_t i = 0; i < want.size(); ++i) want[i] = s1[i] * s2[i];
    EXPECT_LT(test::max_abs_diff(y, want), 1e-5) << "precision " << static_cast<int>(precision);
  }
}

// A bf16 embedding table: gather its rows, then cast them to f32 (exact).
TEST(Linear, Bf16TablesGatherAndCastToF32) {
  Bf16Weights table(10, 6, 14);
  GraphBuilder g;
  const Value ids = g.input("ids", {3}, DType::kI64);
  g.output("y", g.cast("f32", g.gather("rows", g.constant("table", table.tensor), ids, 0), DType::kF32));
  const Tensor y = test::run_once(g.build(), {{"ids", Tensor::from_i64({3}, std::vector<std::int64_t>{7, 0, 7})}});
  ASSERT_EQ(y.shape(), (Shape{3, 6}));
  for (std::int64_t c = 0; c < 6; ++c) {
    EXPECT_EQ(y.f32()[c], table.at(7, c, 6));
    EXPECT_EQ(y.f32()[6 + c], table.at(0, c, 6));
    EXPECT_EQ(y.f32()[12 + c], table.at(7, c, 6));
  }
}

TEST(Linear, Bf16ConstantsElsewhereAreClearErrors) {
  Bf16Weights w(4, 8, 15);
  test::expect_build_error(
      [&](GraphBuilder& g) {
        g.add("sum", g.input("x", {4, 8}), g.constant("w", w.tensor));
      },
      ErrorCode::kTypeMismatch, "'w' is bf16 but this op takes f32 only");
  test::expect_build_error(
      [&](GraphBuilder& g) {
        g.dense("d", g.input("x", {2, 4}), g.constant("w", w.tensor));
      },
      ErrorCode::kTypeMismatch, "dense weights must be f32 (linear takes bf16 [N, K] weights)");
  test::expect_build_error(
      [&](GraphBuilder& g) {
        g.linear("l", g.input("x", {2, 4}), g.constant("w", w.tensor));
      },
      ErrorCode::kShapeMismatch, "expects K=8");
  test::expect_build_error([&](GraphBuilder& g) { g.cast("c", g.constant("w", w.tensor), DType::kI64); },
                           ErrorCode::kTypeMismatch, "can be cast only to f32");
}

TEST(TensorExternal, HoldsItsOwnerAndChecksAlignment) {
  auto owner = std::make_shared<std::vector<std::uint16_t>>(8, 0x3f80);
  const std::weak_ptr<std::vector<std::uint16_t>> watch = owner;
  Tensor t = Tensor::external(owner, owner->data(), DType::kBF16, {2, 4});
  const auto* data = owner->data();
  owner.reset();
  EXPECT_FALSE(watch.expired());
  EXPECT_EQ(t.data(), data);
  EXPECT_EQ(t.bytes(), 16u);
  t = Tensor();
  EXPECT_TRUE(watch.expired());
  auto bytes = std::make_shared<std::vector<std::byte>>(16);
  EXPECT_THROW(Tensor::external(bytes, bytes->data() + 1, DType::kBF16, {2}), Error);
  EXPECT_THROW(Tensor::external(bytes, nullptr, DType::kF32, {2}), Error);
}

}  // namespace
}  // namespace quarks
