// Compile-time recognition of spelled-out activations, gates and norms (engine/passes/fuse_gates.cc,
// fuse_patterns.cc): the graph after optimisation has the one fused op, and its results match a
// double-precision reference of the original formula.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>

#include "engine/test_util.hpp"

namespace quarks {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

using test::scalar_constant;

const Shape kShape{3, 37};

// Runs `graph` on x and compares with ref(x) elementwise.
template <class Ref>
void expect_matches(const Graph& graph, const Model& model, Ref ref, double tol) {
  (void)graph;
  const Tensor x = test::random_tensor(kShape, 7, -4.0f, 4.0f);
  Session s(model);
  const Tensor y = s.run({{"x", x}}).at("y");
  std::vector<double> want;
  for (std::int64_t i = 0; i < x.numel(); ++i) want.push_back(ref(static_cast<double>(x.f32()[i])));
  EXPECT_LE(test::max_abs_diff(y, want), tol);
}

TEST(FusionPatterns, ErfGeluChainBecomesOneActivation) {
  GraphBuilder g;
  auto x = g.input("x", {3, 37});
  auto d = g.div("d", x, scalar_constant(g, "sqrt2", std::sqrt(2.0f)));
  auto e = g.unary("erf", UnaryOpKind::kErf, d);
  auto a = g.add("a", e, scalar_constant(g, "one", 1.0f));
  auto m = g.mul("m", x, a);
  g.output("y", g.mul("y", m, scalar_constant(g, "half", 0.5f)));
  const Graph graph = g.build();
  const Model model = compile(graph);
  EXPECT_EQ(model.node_count(), 1u) << model.describe();
  EXPECT_THAT(model.describe(), HasSubstr("activation[gelu]"));
  expect_matches(
      graph, model, [](double v) { return 0.5 * v * (1 + std::erf(v / std::sqrt(2.0))); }, 2e-6);
}

TEST(FusionPatterns, TanhGeluChainBecomesOneActivation) {
  // As PyTorch exports approximate='tanh': constants on the left.
  GraphBuilder g;
  auto x = g.input("x", {3, 37});
  auto sq = g.mul("sq", x, x);
  auto cube = g.mul("cube", x, sq);
  auto c = g.mul("c", scalar_constant(g, "k", 0.044715f), cube);
  auto s = g.add("s", x, c);
  auto t = g.activation("t", g.mul("u", scalar_constant(g, "r", 0.7978845834732056f), s), Activation::tanh());
  auto a = g.add("a", scalar_constant(g, "one", 1.0f), t);
  g.output("y", g.mul("y", scalar_constant(g, "half", 0.5f), g.mul("m", x, a)));
  const Graph graph = g.build();
  const Model model = compile(graph);
  EXPECT_EQ(model.node_count(), 1u) << model.describe();
  EXPECT_THAT(model.describe(), HasSubstr("activation[gelu_tanh]"));
  expect_matches(
      graph, model,
      [](double v) { return 0.5 * v * (1 + std::tanh(std::sqrt(2 / M_PI) * (v + 0.044715 * v * v * v))); }, 2e-6);
}

TEST(FusionPatterns, ChainWithAnIntermediateOutputIsNotFused) {
  GraphBuilder g;
  auto x = g.input("x", {3, 37});
  auto d = g.div("d", x, scalar_constant(g, "sqrt2", std::sqrt(2.0f)));
  auto e = g.unary("erf", UnaryOpKind::kErf, d);
  auto a = g.add("a", e, scalar_constant(g, "one", 1.0f));
  g.output("y", g.mul("y", g.mul("m", x, a), scalar_constant(g, "half", 0.5f)));
  g.output("erf_out", e);  // needed outside the chain
  const Model model = compile(g.build());
  EXPECT_THAT(model.describe(), Not(HasSubstr("activation[gelu]")));
  EXPECT_THAT(model.describe(), HasSubstr("unary"));
}

TEST(FusionPatterns, XTimesSigmoidXIsSilu) {
  GraphBuilder g;
  auto x = g.input("x", {3, 37});
  g.output("y", g.mul("y", g.activation("s", x, Activation::sigmoid()), x));
  const Graph graph = g.build();
  const Model model = compile(graph);
  EXPECT_EQ(model.node_count(), 1u) << model.describe();
  EXPECT_THAT(model.describe(), HasSubstr("y = activation[silu](x)"));
  expect_matches(
      graph, model, [](double v) { return v / (1 + std::exp(-v)); }, 1e-6);
}

TEST(FusionPatterns, SpelledOutSwiGluBecomesGatedDense) {
  GraphBuilder g;
  auto x = g.input("x", {5, 16});
  auto gate = g.dense("gate", x, g.constant("wg", test::random_tensor(Shape{16, 24}, 1)));
  auto up = g.dense("up", x, g.constant("wu", test::random_tensor(Shape{16, 24}, 2)));
  auto silu = g.mul("silu", gate, g.activation("sig", gate, Activation::sigmoid()));
  g.output("y", g.mul("y", silu, up));
  const Model model = compile(g.build());
  EXPECT_EQ(model.node_count(), 1u) << model.describe();
  EXPECT_THAT(model.describe(), HasSubstr("gated_dense[silu*identity]"));
}

TEST(FusionPatterns, ProductOfTwoDenseOfOneInputIsBilinearGatedDense) {
  // The quadratic neuron's (x·A) ⊙ (x·B).
  GraphBuilder g;
  auto x = g.input("x", {5, 16});
  auto a = g.dense("a", x, g.constant("wa", test::random_tensor(Shape{16, 24}, 1)));
  auto b = g.dense("b", x, g.constant("wb", test::random_tensor(Shape{16, 24}, 2)));
  g.output("y", g.mul("y", a, b));
  const Model model = compile(g.build());
  EXPECT_EQ(model.node_count(), 1u) << model.describe();
  EXPECT_THAT(model.describe(), HasSubstr("gated_dense[identity*identity]"));
}

TEST(FusionPatterns, SigmoidGateOfTwoTensorsIsOutputGate) {
  GraphBuilder g;
  auto x = g.input("x", {3, 37});
  auto z = g.input("z", {3, 37});
  g.output("y", g.mul("y", x, g.activation("s", z, Activation::sigmoid())));
  const Model model = compile(g.build());
  EXPECT_THAT(model.describe(), HasSubstr("y = output_gate[identity*sigmoid](x, z)"));
}

TEST(FusionPatterns, DecomposedRmsNormBecomesRmsNorm) {
  // As PyTorch exports x * rsqrt(mean(x^2) + eps) * w (Pow 2 is imported as square).
  GraphBuilder g;
  auto x = g.input("x", {3, 37});
  auto w = test::random_tensor(Shape{37}, 3);
  auto sq = g.activation("sq", x, Activation::square());
  auto mean = g.reduce("mean", ReduceOpKind::kMean, sq, {-1}, true);
  auto s = g.unary("sqrt", UnaryOpKind::kSqrt, g.add("add", mean, scalar_constant(g, "eps", 1e-6f)));
  auto r = g.div("r", scalar_constant(g, "one", 1.0f), s);
  g.output("y", g.mul("y", g.mul("n", x, r), g.constant("w", w)));
  const Model model = compile(g.build());
  EXPECT_EQ(model.node_count(), 1u) << model.describe();
  EXPECT_THAT(model.describe(), HasSubstr("y = rms_norm(x, w)"));

  const Tensor xv = test::random_tensor(kShape, 9);
  Session session(model);
  const Tensor y = session.run({{"x", xv}}).at("y");
  std::vector<double> want;
  for (int i = 0; i < 3; ++i) {
    double ss = 0;
    for (int j = 0; j < 37; ++j) ss += double(xv.f32()[i * 37 + j]) * xv.f32()[i * 37 + j];
    const double inv = 1 / std::sqrt(ss / 37 + 1e-6);
    for (int j = 0; j < 37; ++j) want.push_back(xv.f32()[i * 37 + j] * inv * w.f32()[j]);
  }
  EXPECT_LE(test::max_abs_diff(y, want), 2e-6);
}

TEST(FusionPatterns, DecomposedLayerNormBecomesLayerNorm) {
  GraphBuilder g;
  auto x = g.input("x", {3, 37});
  auto gamma = test::random_tensor(Shape{37}, 4), beta = test::random_tensor(Shape{37}, 5);
  auto mean = g.reduce("mean", ReduceOpKind::kMean, x, {-1}, true);
  auto d = g.sub("d", x, mean);
  auto var = g.reduce("var", ReduceOpKind::kMean, g.mul("d2", d, d), {-1}, true);
  auto s = g.unary("sqrt", UnaryOpKind::kSqrt, g.add("add", var, scalar_constant(g, "eps", 1e-5f)));
  auto n = g.div("n", d, s);
  g.output("y", g.add("y", g.mul("scaled", n, g.constant("gamma", gamma)), g.constant("beta", beta)));
  const Model model = compile(g.build());
  EXPECT_EQ(model.node_count(), 1u) << model.describe();
  EXPECT_THAT(model.describe(), HasSubstr("y = layer_norm(x, gamma, beta)"));

  const Tensor xv = test::random_tensor(kShape, 10);
  Session session(model);
  const Tensor y = session.run({{"x", xv}}).at("y");
  std::vector<double> want;
  for (int i = 0; i < 3; ++i) {
    double mu = 0, v = 0;
    for (int j = 0; j < 37; ++j) mu += xv.f32()[i * 37 + j];
    mu /= 37;
    for (int j = 0; j < 37; ++j) v += (xv.f32()[i * 37 + j] - mu) * (xv.f32()[i * 37 + j] - mu);
    v /= 37;
    for (int j = 0; j < 37; ++j)
      want.push_back((xv.f32()[i * 37 + j] - mu) / std::sqrt(v + 1e-5) * gamma.f32()[j] + beta.f32()[j]);
  }
  EXPECT_LE(test::max_abs_diff(y, want), 5e-6);
}

TEST(FusionPatterns, LayerNormChainWhoseDifferenceIsUsedElsewhereIsNotFused) {
  GraphBuilder g;
  auto x = g.input("x", {3, 37});
  auto mean = g.reduce("mean", ReduceOpKind::kMean, x, {-1}, true);
  auto d = g.sub("d", x, mean);
  auto var = g.reduce("var", ReduceOpKind::kMean, g.mul("d2", d, d), {-1}, true);
  auto s = g.unary("sqrt", UnaryOpKind::kSqrt, g.add("add", var, scalar_constant(g, "eps", 1e-5f)));
  g.output("y", g.div("y", d, s));
  g.output("centred", g.activation("c", d, Activation::relu()));
  const Model model = compile(g.build());
  EXPECT_THAT(model.describe(), Not(HasSubstr("layer_norm")));
}

}  // namespace
}  // namespace quarks
