// Every op through the whole pipeline (builder -> compile -> plan -> session), against scalar double
// references written here independently of the kernels. Kernel-level sweeps of sizes and special
// values live in tests/ops/.
#include <gtest/gtest.h>

#include <cmath>

#include "engine/test_util.hpp"
#include "ops/activation/activation_reference.hpp"

namespace quarks {
namespace {

using test::max_abs_diff;
using test::random_tensor;
using test::run_once;

constexpr double kTol = 1e-5;

// ---------------------------------------------------------------------------------------------------
TEST(OpsThroughModel, DenseWithBiasAndEveryActivation) {
  const Activation acts[] = {Activation::identity(),       Activation::relu(),
                             Activation::leaky_relu(0.2f), Activation::sigmoid(),
                             Activation::tanh(),           Activation::gelu(),
                             Activation::gelu_tanh(),      Activation::silu(),
                             Activation::square(),         Activation::polynomial({0.5f, -1.0f, 0.25f}),
                             Activation::sign(),           Activation::heaviside()};
  const std::int64_t m = 37, k = 70, n = 130;
  Tensor x = random_tensor({m, k}, 1), w = random_tensor({k, n}, 2), b = random_tensor({n}, 3);
  std::vector<double> pre = test::matmul_ref(x.f32(), w.f32(), m, k, n);
  for (std::int64_t i = 0; i < m * n; ++i) pre[i] += b.f32()[i % n];
  for (int threads : {1, 2}) {
    for (const Activation& f : acts) {
      GraphBuilder g;
      auto xv = g.input("x", {m, k});
      g.output("y", g.dense("d", xv, g.constant("w", w), g.constant("b", b), f));
      CompileOptions o;
      o.threads = threads;
      Tensor y = run_once(g.build(), {{"x", x}}, "y", o);
      std::vector<double> want(pre.size());
      for (std::size_t i = 0; i < pre.size(); ++i) want[i] = test::reference_activation(f, pre[i]);
      if (f.kind == ActivationKind::kSign || f.kind == ActivationKind::kHeaviside) {
        // A threshold may flip where the f32 product rounds across 0; count such places only there.
        for (std::size_t i = 0; i < pre.size(); ++i)
          if (std::fabs(pre[i]) < 1e-4) want[i] = y.f32()[i];
      }
      EXPECT_LT(max_abs_diff(y, want), 2e-4) << f.to_string() << " threads " << threads;
    }
  }
}

TEST(OpsThroughModel, DenseOverLeadingDimsAndZeroRows) {
  Tensor w = random_tensor({8, 5}, 2);
  GraphBuilder g;
  auto x = g.input("x", {"b", "s", 8});
  g.output("y", g.dense("d", x, g.constant("w", w)));
  Model model = compile(g.build());
  Session s(model);
  for (std::int64_t rows : {0, 1, 6}) {
    Tensor x3 = random_tensor({2, rows, 8}, 1);
    Tensor y = s.run({{"x", x3}}).at("y");
    ASSERT_EQ(y.shape(), (Shape{2, rows, 5}));
    EXPECT_LT(max_abs_diff(y, test::matmul_ref(x3.f32(), w.f32(), 2 * rows, 8, 5)), kTol);
  }
}

TEST(OpsThroughModel, GatedDenseMatchesUnfusedReference) {
  const std::int64_t m = 19, k = 40, n = 72;
  Tensor x = random_tensor({m, k}, 1), w1 = random_tensor({k, n}, 2), w2 = random_tensor({k, n}, 3),
         b2 = random_tensor({n}, 4);
  GraphBuilder g;
  auto xv = g.input("x", {m, k});
  auto a = g.dense("gate", xv, g.constant("w1", w1));
  auto u = g.dense("up", xv, g.constant("w2", w2), g.constant("b2", b2));
  g.output("y", g.output_gate("glu", a, u, Activation::silu(), Activation::identity()));
  Model model = compile(g.build());
  ASSERT_EQ(model.node_count(), 1u) << model.describe();
  Tensor y = Session(model).run({{"x", x}}).at("y");
  auto p1 = test::matmul_ref(x.f32(), w1.f32(), m, k, n), p2 = test::matmul_ref(x.f32(), w2.f32(), m, k, n);
  std::vector<double> want(p1.size());
  for (std::size_t i = 0; i < want.size(); ++i) {
    want[i] = test::reference_activation(Activation::silu(), p1[i]) * (p2[i] + b2.f32()[i % n]);
  }
  EXPECT_LT(max_abs_diff(y, want), 1e-4);
}

// ---------------------------------------------------------------------------------------------------
TEST(OpsThroughModel, MatMulWithTransposesAndBroadcastBatch) {
  const std::int64_t batch = 3, m = 5, k = 7, n = 4;
  for (bool ta : {false, true}) {
    for (bool tb : {false, true}) {
      for (bool broadcast_b : {false, true}) {
        Tensor a = random_tensor(ta ? Shape{batch, k, m} : Shape{batch, m, k}, 1);
        Shape bs = tb ? Shape{n, k} : Shape{k, n};
        if (!broadcast_b) bs = tb ? Shape{batch, n, k} : Shape{batch, k, n};
        Tensor b = random_tensor(bs, 2);
        GraphBuilder g;
        auto av = g.input("a", std::vector<Dim>(a.shape().begin(), a.shape().end()));
        auto bv = g.input("b", std::vector<Dim>(b.shape().begin(), b.shape().end()));
        g.output("y", g.matmul("mm", av, bv, ta, tb));
        Tensor y = run_once(g.build(), {{"a", a}, {"b", b}});
        ASSERT_EQ(y.shape(), (Shape{batch, m, n}));
        std::vector<double> want(static_cast<std::size_t>(batch * m * n), 0.0);
        for (std::int64_t q = 0; q < batch; ++q)
          for (std::int64_t i = 0; i < m; ++i)
            for (std::int64_t j = 0; j < n; ++j)
              for (std::int64_t p = 0; p < k; ++p) {
                const float av_ = ta ? a.f32()[q * k * m + p * m + i] : a.f32()[q * m * k + i * k + p];
                const std::int64_t bq = broadcast_b ? 0 : q;
                const float bv_ = tb ? b.f32()[bq * n * k + j * k + p] : b.f32()[bq * k * n + p * n + j];
                want[q * m * n + i * n + j] += static_cast<double>(av_) * bv_;
              }
        EXPECT_LT(max_abs_diff(y, want), kTol) << ta << tb << broadcast_b;
      }
    }
  }
}

TEST(OpsThroughModel, SynapticGateAllThreeGateShapes) {
  const std::int64_t m = 6, k = 9, n = 11;
  Tensor x = random_tensor({m, k}, 1), w = random_tensor({k, n}, 2);
  const Shape gate_shapes[] = {{k, n}, {m, k, 1}, {m, k, n}};
  for (const Shape& gs : gate_shapes) {
    Tensor gt = random_tensor(gs, 3, 0.0f, 1.0f);
    GraphBuilder g;
    auto xv = g.input("x", {m, k});
    auto gv = g.input("g", std::vector<Dim>(gs.begin(), gs.end()));
    g.output("y", g.synaptic_gate("syn", xv, g.constant("w", w), gv));
    Tensor y = run_once(g.build(), {{"x", x}, {"g", gt}});
    std::vector<double> want(static_cast<std::size_t>(m * n), 0.0);
    for (std::int64_t i = 0; i < m; ++i)
      for (std::int64_t p = 0; p < k; ++p)
        for (std::int64_t j = 0; j < n; ++j) {
          const float gate = gs.rank() == 2 ? gt.f32()[p * n + j]
                             : gs[2] == 1   ? gt.f32()[i * k + p]
                                            : gt.f32()[(i * k + p) * n + j];
          want[i * n + j] += static_cast<double>(x.f32()[i * k + p]) * w.f32()[p * n + j] * gate;
        }
    EXPECT_LT(max_abs_diff(y, want), kTol) << gs.to_string();
  }
}

// ---------------------------------------------------------------------------------------------------
TEST(OpsThroughModel, MultiplexBroadcastsTheAttentionInput) {
  Tensor s = random_tensor({4, 3, 5}, 1), a = random_tensor({3, 1}, 2);
  GraphBuilder g;
  auto sv = g.input("s", {4, 3, 5});
  auto av = g.input("a", {3, 1});
  g.output("y", g.multiplex("mux", sv, av, -0.75f, Activation::tanh()));
  Tensor y = run_once(g.build(), {{"s", s}, {"a", a}});
  std::vector<double> want(60);
  for (int i = 0; i < 60; ++i) want[i] = std::tanh(static_cast<double>(s.f32()[i]) - 0.75 * a.f32()[(i / 5) % 3]);
  EXPECT_LT(max_abs_diff(y, want), 1e-6);
}

TEST(OpsThroughModel, OutputGatePairs) {
  const std::pair<Activation, Activation> pairs[] = {
      {Activation::identity(), Activation::sigmoid()},  {Activation::silu(), Activation::identity()},
      {Activation::gelu(), Activation::identity()},     {Activation::relu(), Activation::identity()},
      {Activation::identity(), Activation::identity()}, {Activation::tanh(), Activation::sigmoid()}};
  Tensor s1 = random_tensor({7, 33}, 1, -6, 6), s2 = random_tensor({7, 33}, 2, -6, 6);
  for (const auto& [f, gf] : pairs) {
    GraphBuilder g;
    auto a = g.input("s1", {7, 33});
    auto b = g.input("s2", {7, 33});
    g.output("y", g.output_gate("gate", a, b, f, gf));
    Tensor y = run_once(g.build(), {{"s1", s1}, {"s2", s2}});
    std::vector<double> want(7 * 33);
    for (std::size_t i = 0; i < want.size(); ++i)
      want[i] = test::reference_activation(f, s1.f32()[i]) * test::reference_activation(gf, s2.f32()[i]);
    EXPECT_LT(max_abs_diff(y, want), 1e-5) << f.to_string() << "*" << gf.to_string();
  }
}

TEST(OpsThroughModel, BinaryOpsBroadcast) {
  Tensor a = random_tensor({2, 1, 4}, 1), b = random_tensor({3, 1}, 2, 0.5f, 2.0f);
  const BinaryOpKind kinds[] = {BinaryOpKind::kAdd, BinaryOpKind::kSub, BinaryOpKind::kMul, BinaryOpKind::kDiv};
  for (BinaryOpKind k : kinds) {
    GraphBuilder g;
    auto av = g.input("a", {2, 1, 4});
    auto bv = g.input("b", {3, 1});
    g.output("y", g.binary("op", k, av, bv));
    Tensor y = run_once(g.build(), {{"a", a}, {"b", b}});
    ASSERT_EQ(y.shape(), (Shape{2, 3, 4}));
    std::vector<double> want(24);
    for (int i = 0; i < 2; ++i)
      for (int j = 0; j < 3; ++j)
        for (int l = 0; l < 4; ++l) {
          const double x = a.f32()[i * 4 + l], z = b.f32()[j];
          want[(i * 3 + j) * 4 + l] = k == BinaryOpKind::kAdd   ? x + z
                                      : k == BinaryOpKind::kSub ? x - z
                                      : k == BinaryOpKind::kMul ? x * z
                                                                : x / z;
        }
    EXPECT_LT(max_abs_diff(y, want), 1e-6);
  }
}

// ---------------------------------------------------------------------------------------------------
TEST(OpsThroughModel, SoftmaxOnEveryAxis) {
  Tensor x = random_tensor({3, 4, 5}, 1, -5, 5);
  for (int axis = -3; axis < 3; ++axis) {
    GraphBuilder g;
    auto xv = g.input("x", {3, 4, 5});
    g.output("y", g.softmax("sm", xv, axis));
    Tensor y = run_once(g.build(), {{"x", x}});
    const int ax = axis < 0 ? axis + 3 : axis;
    const std::int64_t dims[3] = {3, 4, 5}, strides[3] = {20, 5, 1};
    std::vector<double> want(60);
    for (int i = 0; i < 60; ++i) {
      const std::int64_t base = i - ((i / strides[ax]) % dims[ax]) * strides[ax];
      double sum = 0;
      for (std::int64_t j = 0; j < dims[ax]; ++j) sum += std::exp(static_cast<double>(x.f32()[base + j * strides[ax]]));
      want[i] = std::exp(static_cast<double>(x.f32()[i])) / sum;
    }
    EXPECT_LT(max_abs_diff(y, want), 1e-6) << axis;
  }
}

TEST(OpsThroughModel, LayerNormAndRmsNorm) {
  const std::int64_t rows = 6, c = 40;
  Tensor x = random_tensor({rows, c}, 1, -3, 3), scale = random_tensor({c}, 2), bias = random_tensor({c}, 3);
  for (bool rms : {false, true}) {
    GraphBuilder g;
    auto xv = g.input("x", {rows, c});
    auto sv = g.constant("scale", scale);
    auto bv = g.constant("bias", bias);
    g.output("y", rms ? g.rms_norm("n", xv, sv, bv, 1e-6f) : g.layer_norm("n", xv, sv, bv, 1e-5f));
    Tensor y = run_once(g.build(), {{"x", x}});
    std::vector<double> want(rows * c);
    for (std::int64_t r = 0; r < rows; ++r) {
      double mean = 0, sq = 0;
      for (std::int64_t j = 0; j < c; ++j)
        mean += x.f32()[r * c + j], sq += static_cast<double>(x.f32()[r * c + j]) * x.f32()[r * c + j];
      mean /= c;
      const double var = sq / c - mean * mean;
      for (std::int64_t j = 0; j < c; ++j) {
        const double v = x.f32()[r * c + j];
        const double normed = rms ? v / std::sqrt(sq / c + 1e-6) : (v - mean) / std::sqrt(var + 1e-5);
        want[r * c + j] = normed * scale.f32()[j] + bias.f32()[j];
      }
    }
    EXPECT_LT(max_abs_diff(y, want), 1e-5) << (rms ? "rms_norm" : "layer_norm");
  }
}

// ---------------------------------------------------------------------------------------------------
TEST(OpsThroughModel, LayoutOpsRoundTrip) {
  Tensor x = random_tensor({2, 3, 4}, 1);
  GraphBuilder g;
  auto xv = g.input("x", {2, 3, 4});
  auto t = g.transpose("t", xv, {2, 0, 1});                         // [4,2,3]
  auto r = g.reshape("r", t, {0, -1});                              // [4,6]
  auto parts = g.split("s", r, 1, {1, 5});                          // [4,1], [4,5]
  auto c = g.concat("c", {parts[1], parts[0]}, 1);                  // [4,6] rotated by one column
  g.output("y", g.slice("sl", c, {1, 0}, {4, 6}, {0, 1}, {2, 2}));  // rows 1,3; cols 0,2,4
  Tensor y = run_once(g.build(), {{"x", x}});
  ASSERT_EQ(y.shape(), (Shape{2, 3}));
  std::vector<double> want;
  for (int row : {1, 3}) {
    for (int col : {0, 2, 4}) {
      const int rcol = (col + 1) % 6;        // concat(parts[1], parts[0]) moves column 0 to the end
      const int i = rcol / 3, j = rcol % 3;  // r[row, rcol] = t[row, i, j] = x[i, j, row]
      want.push_back(x.f32()[i * 12 + j * 4 + row]);
    }
  }
  EXPECT_EQ(max_abs_diff(y, want), 0.0);
}

TEST(OpsThroughModel, OutputsThatAreInputsViewsOrSharedValues) {
  Tensor x = random_tensor({2, 3}, 1);
  GraphBuilder g;
  auto xv = g.input("x", {2, 3});
  auto r = g.reshape("r", xv, {3, 2});
  auto a = g.activation("a", r, Activation::square());
  g.output("x_again", xv);
  g.output("view", r);
  g.output("sq", a);
  g.output("sq_again", a);
  Model m = compile(g.build());
  auto out = Session(m).run({{"x", x}});
  std::vector<double> xs = test::to_double(x), sq(6);
  for (int i = 0; i < 6; ++i) sq[i] = xs[i] * xs[i];
  EXPECT_EQ(max_abs_diff(out.at("x_again"), xs), 0.0);
  EXPECT_EQ(max_abs_diff(out.at("view"), xs), 0.0);
  EXPECT_EQ(out.at("view").shape(), (Shape{3, 2}));
  EXPECT_LT(max_abs_diff(out.at("sq"), sq), 1e-7);
  EXPECT_LT(max_abs_diff(out.at("sq_again"), sq), 1e-7);
}

TEST(OpsThroughModel, InPlaceChainsAndIndependentBranches) {
  // A chain of elementwise ops (planned in place) next to an independent branch (same level).
  Tensor x = random_tensor({64, 300}, 1, -2, 2);
  GraphBuilder g;
  auto xv = g.input("x", {64, 300});
  auto a = g.activation("a", xv, Activation::tanh());
  auto b = g.activation("b", a, Activation::square());
  auto c = g.activation("c", b, Activation::sigmoid());
  auto d = g.activation("d", xv, Activation::relu());
  g.output("y", g.add("sum", c, d));
  Tensor y = run_once(g.build(), {{"x", x}});
  std::vector<double> want(64 * 300);
  for (std::size_t i = 0; i < want.size(); ++i) {
    const double v = x.f32()[i], t = std::tanh(v);
    want[i] = 1.0 / (1.0 + std::exp(-t * t)) + std::max(v, 0.0);
  }
  EXPECT_LT(max_abs_diff(y, want), 1e-6);
}

}  // namespace
}  // namespace quarks
