// Every op through the whole pipeline (builder -> compile -> plan -> session), against scalar double
// references written here independently of the kernels. Kernel-level sweeps of sizes and special
// values live in tests/ops/.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <iterator>
#include <limits>
#include <map>
#include <string>
#include <utility>
#include <vector>

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

// ---------------------------------------------------------------------------------------------------
// Layout ops on i64 and bool values, reduce, gather.

// Runs `fn`, expecting quarks::Error with `code` and a message containing every fragment.
template <class Fn>
void expect_error(Fn fn, ErrorCode code, std::initializer_list<std::string> fragments) {
  try {
    fn();
    ADD_FAILURE() << "expected quarks::Error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), code) << e.what();
    for (const std::string& f : fragments) EXPECT_THAT(e.what(), ::testing::HasSubstr(f));
  }
}

// i64 values beyond 2^53 (no float or double holds them exactly) or 0/1 bools, distinct per element where
// the dtype allows; element i of the result is value(i).
std::int64_t i64_value(std::int64_t i) { return (std::int64_t{1} << 60) + 7 * i - 3; }
std::uint8_t bool_value(std::int64_t i) { return static_cast<std::uint8_t>((i * 5 / 3) % 2); }

Tensor pattern_tensor(DType dtype, const Shape& shape) {
  Tensor t(dtype, shape);
  for (std::int64_t i = 0; i < t.numel(); ++i) {
    if (dtype == DType::kI64) {
      t.i64()[i] = i64_value(i);
    } else if (dtype == DType::kBool) {
      t.boolean()[i] = bool_value(i);
    } else {
      t.f32()[i] = static_cast<float>(i) * 0.5f - 3.0f;
    }
  }
  return t;
}

// Element i of `t` as an i64, whatever the dtype (for exact comparisons).
std::int64_t element(const Tensor& t, std::int64_t i) {
  switch (t.dtype()) {
    case DType::kI64: return t.i64()[i];
    case DType::kBool: return t.boolean()[i];
    default: {
      float f = t.f32()[i];
      std::int32_t bits;
      std::memcpy(&bits, &f, sizeof bits);
      return bits;
    }
  }
}

// The value pattern_tensor put at flat index i, as element() reads it.
std::int64_t pattern_element(DType dtype, std::int64_t i) {
  return dtype == DType::kI64 ? i64_value(i) : bool_value(i);
}

TEST(OpsThroughModel, LayoutOpsOnI64AndBool) {
  for (const DType dtype : {DType::kI64, DType::kBool}) {
    SCOPED_TRACE(to_string(dtype));
    const Tensor x = pattern_tensor(dtype, {2, 3, 4});
    GraphBuilder g;
    auto xv = g.input("x", {2, 3, 4}, dtype);
    auto t = g.transpose("t", xv, {2, 0, 1});                    // [4,2,3]
    auto r = g.reshape("r", t, {0, -1});                         // [4,6]
    auto parts = g.split("s", r, 1, {1, 5});                     // [4,1], [4,5]
    auto c = g.concat("c", {parts[1], parts[0]}, 1);             // [4,6] rotated by one column
    auto sl = g.slice("sl", c, {1, 0}, {4, 6}, {0, 1}, {2, 2});  // rows 1,3; cols 0,2,4
    for (Value v : {t, r, parts[0], parts[1], c, sl}) EXPECT_EQ(g.dtype(v), dtype);
    g.output("y", sl);
    g.output("view", g.reshape("flat", xv, {-1}));  // a reshape written into the caller's buffer
    g.output("piece", parts[0]);
    Model model = compile(g.build());
    auto out = Session(model).run({{"x", x}});
    const Tensor& y = out.at("y");
    ASSERT_EQ(y.dtype(), dtype);
    ASSERT_EQ(y.shape(), (Shape{2, 3}));
    std::int64_t k = 0;
    for (int row : {1, 3}) {
      for (int col : {0, 2, 4}) {
        const int rcol = (col + 1) % 6;        // concat(parts[1], parts[0]) moves column 0 to the end
        const int i = rcol / 3, j = rcol % 3;  // r[row, rcol] = t[row, i, j] = x[i, j, row]
        EXPECT_EQ(element(y, k++), pattern_element(dtype, i * 12 + j * 4 + row)) << row << "," << col;
      }
    }
    const Tensor& view = out.at("view");
    ASSERT_EQ(view.dtype(), dtype);
    ASSERT_EQ(view.shape(), (Shape{24}));
    for (std::int64_t i = 0; i < 24; ++i) EXPECT_EQ(element(view, i), pattern_element(dtype, i));
    const Tensor& piece = out.at("piece");  // r[:, 0] = t[:, 0, 0] = x[0, 0, :]
    ASSERT_EQ(piece.shape(), (Shape{4, 1}));
    for (std::int64_t i = 0; i < 4; ++i) EXPECT_EQ(element(piece, i), pattern_element(dtype, i));
  }
}

TEST(OpsThroughModel, LayoutOpsOnLargeI64Tensors) {
  // Large enough for several transpose tiles; the values are checked exactly.
  const Tensor x = pattern_tensor(DType::kI64, {3, 100, 77});
  GraphBuilder g;
  auto xv = g.input("x", {"b", 100, 77}, DType::kI64);
  g.output("y", g.transpose("t", xv, {2, 0, 1}));
  g.output("z", g.concat("c", {xv, xv}, -1));
  auto out = Session(compile(g.build(), {.threads = 2})).run({{"x", x}});
  const Tensor& y = out.at("y");
  ASSERT_EQ(y.shape(), (Shape{77, 3, 100}));
  for (std::int64_t k = 0; k < 77; ++k)
    for (std::int64_t b = 0; b < 3; ++b)
      for (std::int64_t i = 0; i < 100; ++i)
        ASSERT_EQ(y.i64()[(k * 3 + b) * 100 + i], i64_value((b * 100 + i) * 77 + k));
  const Tensor& z = out.at("z");
  ASSERT_EQ(z.shape(), (Shape{3, 100, 154}));
  for (std::int64_t row = 0; row < 300; ++row)
    for (std::int64_t j = 0; j < 154; ++j) ASSERT_EQ(z.i64()[row * 154 + j], i64_value(row * 77 + j % 77));
}

TEST(OpsThroughModel, ConcatNeedsOneDtype) {
  GraphBuilder g;
  auto a = g.input("a", {2, 3});
  auto b = g.input("b", {2, 3}, DType::kI64);
  expect_error(
      [&] {
        g.concat("c", {a, a, b}, 0);
      },
      ErrorCode::kTypeMismatch, {"node 'c' (concat)", "'b' is i64", "'a' is f32"});
}

// --- reduce ----------------------------------------------------------------------------------------

// Reference: op over `axes` (normalised, any order) of a row-major f32 tensor, in double.
std::vector<double> reduce_ref(ReduceOpKind op, const Tensor& x, const std::vector<int>& axes) {
  const Shape& s = x.shape();
  std::vector<bool> reduced(static_cast<std::size_t>(s.rank()), axes.empty());
  for (int a : axes) reduced[static_cast<std::size_t>(a < 0 ? a + s.rank() : a)] = true;
  std::int64_t out_n = 1, count = 1;
  for (int d = 0; d < s.rank(); ++d) (reduced[d] ? count : out_n) *= s[d];
  const bool is_max = op == ReduceOpKind::kMax, is_min = op == ReduceOpKind::kMin;
  std::vector<double> acc(static_cast<std::size_t>(out_n), is_max ? -INFINITY : is_min ? INFINITY : 0.0);
  std::vector<bool> nan(acc.size(), false);
  for (std::int64_t flat = 0; flat < x.numel(); ++flat) {
    std::int64_t rest = flat, o = 0, o_stride = 1;
    for (int d = s.rank() - 1; d >= 0; --d) {
      if (!reduced[d]) o += (rest % s[d]) * o_stride, o_stride *= s[d];
      rest /= s[d];
    }
    const double v = x.f32()[flat];
    auto& a = acc[static_cast<std::size_t>(o)];
    if (std::isnan(v)) nan[static_cast<std::size_t>(o)] = true;
    a = is_max ? std::max(a, v) : is_min ? std::min(a, v) : a + v;
  }
  for (std::size_t o = 0; o < acc.size(); ++o) {
    if (op == ReduceOpKind::kMean) acc[o] /= static_cast<double>(count);
    if (nan[o]) acc[o] = NAN;
  }
  return acc;
}

const char* reduce_name(ReduceOpKind op) {
  switch (op) {
    case ReduceOpKind::kSum: return "sum";
    case ReduceOpKind::kMean: return "mean";
    case ReduceOpKind::kMax: return "max";
    case ReduceOpKind::kMin: return "min";
  }
  return "?";
}

constexpr ReduceOpKind kReduceOps[] = {ReduceOpKind::kSum, ReduceOpKind::kMean, ReduceOpKind::kMax, ReduceOpKind::kMin};

TEST(OpsThroughModel, ReduceOverAxesWithKeepdimsAndSymbolicBatch) {
  const std::vector<std::vector<int>> axis_sets = {{}, {-1}, {0}, {1}, {0, 2}, {-3, -2}, {2, 1}};
  for (ReduceOpKind op : kReduceOps) {
    for (const auto& axes : axis_sets) {
      for (bool keepdims : {false, true}) {
        GraphBuilder g;
        auto xv = g.input("x", {"b", 5, 17});
        auto y = g.reduce("red", op, xv, axes, keepdims);
        // Build-time shape: the symbolic batch survives unless reduced.
        std::string want_shape = "[";
        for (int d = 0; d < 3; ++d) {
          bool red = axes.empty();
          for (int a : axes) red = red || (a < 0 ? a + 3 : a) == d;
          if (red && !keepdims) continue;
          want_shape += std::string(want_shape.size() > 1 ? "," : "") + (red      ? "1"
                                                                         : d == 0 ? "b"
                                                                                  : std::to_string(d == 1 ? 5 : 17));
        }
        EXPECT_EQ(g.shape_string(y), want_shape + "]");
        g.output("y", y);
        Model model = compile(g.build());
        Session session(model);
        for (std::int64_t batch : {1, 4}) {
          Tensor x = random_tensor({batch, 5, 17}, 7, -3, 3);
          Tensor out = session.run({{"x", x}}).at("y");
          const std::vector<double> want = reduce_ref(op, x, axes);
          ASSERT_EQ(out.numel(), static_cast<std::int64_t>(want.size()));
          EXPECT_LT(max_abs_diff(out, want), 1e-5)
              << reduce_name(op) << " axes " << ::testing::PrintToString(axes) << " keepdims " << keepdims;
        }
      }
    }
  }
}

TEST(OpsThroughModel, ReduceLargeTensorsAcrossThreads) {
  Tensor x = random_tensor({96, 3001}, 3, -2, 2);
  x.f32()[5 * 3001 + 17] = NAN;  // row 5 and column 17
  x.f32()[9 * 3001 + 4] = INFINITY;
  for (ReduceOpKind op : kReduceOps) {
    for (const std::vector<int>& axes : {std::vector<int>{1}, std::vector<int>{0}, std::vector<int>{}}) {
      GraphBuilder g;
      auto xv = g.input("x", {96, 3001});
      g.output("y", g.reduce("red", op, xv, axes, false));
      Tensor y = run_once(g.build(), {{"x", x}}, "y", {.threads = 2});
      const std::vector<double> want = reduce_ref(op, x, axes);
      double sum_abs = 0;
      for (std::int64_t i = 0; i < x.numel(); ++i)
        if (std::isfinite(x.f32()[i])) sum_abs += std::fabs(x.f32()[i]);
      const double tol = op == ReduceOpKind::kSum ? 1e-6 * sum_abs : 1e-5;
      EXPECT_LE(max_abs_diff(y, want), tol) << reduce_name(op) << " axes " << ::testing::PrintToString(axes);
    }
  }
}

TEST(OpsThroughModel, ReduceOfEmptyAxesAndScalars) {
  GraphBuilder g;
  auto xv = g.input("x", {3, "n"});
  g.output("sum", g.reduce("s", ReduceOpKind::kSum, xv, {1}, false));
  g.output("mean", g.reduce("m", ReduceOpKind::kMean, xv, {-1}, true));
  g.output("max", g.reduce("mx", ReduceOpKind::kMax, xv, {1}, false));
  auto s0 = g.input("s0", {});
  g.output("scalar", g.reduce("sc", ReduceOpKind::kMin, s0, {}, false));
  Model model = compile(g.build());
  Session session(model);
  Tensor x = random_tensor({3, 4}, 1);
  Tensor scalar = Tensor::from_f32({}, {-2.5f});
  auto out = session.run({{"x", x}, {"s0", scalar}});
  EXPECT_EQ(out.at("scalar").shape(), Shape{});
  EXPECT_EQ(out.at("scalar").f32()[0], -2.5f);
  EXPECT_EQ(max_abs_diff(out.at("max"), reduce_ref(ReduceOpKind::kMax, x, {1})), 0.0);
  // n = 0: sum 0, mean NaN, and max has no value: the plan for these shapes fails, naming the node.
  Tensor empty(DType::kF32, {3, 0});
  expect_error(
      [&] {
        session.run({{"x", empty}, {"s0", scalar}});
      },
      ErrorCode::kShapeMismatch, {"node 'mx' (reduce)", "'x' [3,0]", "max"});
  GraphBuilder g2;
  auto x2 = g2.input("x", {3, "n"});
  g2.output("sum", g2.reduce("s", ReduceOpKind::kSum, x2, {1}, false));
  g2.output("mean", g2.reduce("m", ReduceOpKind::kMean, x2, {-1}, true));
  auto out2 = Session(compile(g2.build())).run({{"x", empty}});
  EXPECT_EQ(out2.at("sum").shape(), Shape{3});
  EXPECT_EQ(out2.at("mean").shape(), (Shape{3, 1}));
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(out2.at("sum").f32()[i], 0.0f);
    EXPECT_TRUE(std::isnan(out2.at("mean").f32()[i]));
  }
}

TEST(OpsThroughModel, ReduceErrorsNameNodeAndInput) {
  GraphBuilder g;
  auto x = g.input("x", {2, 0, 4});
  expect_error(
      [&] {
        g.reduce("r1", ReduceOpKind::kSum, x, {1, -2}, false);
      },
      ErrorCode::kInvalidArgument, {"node 'r1' (reduce)", "axis -2 repeats axis 1", "'x' [2,0,4]"});
  expect_error([&] { g.reduce("r2", ReduceOpKind::kMean, x, {3}, false); }, ErrorCode::kInvalidArgument,
               {"node 'r2' (reduce)", "axis 3 is out of range", "'x' [2,0,4]"});
  expect_error([&] { g.reduce("r3", ReduceOpKind::kMin, x, {}, true); }, ErrorCode::kShapeMismatch,
               {"node 'r3' (reduce)", "min", "axis 1 of 'x' [2,0,4]"});
  auto ids = g.input("ids", {4}, DType::kI64);
  expect_error([&] { g.reduce("r4", ReduceOpKind::kSum, ids, {0}, false); }, ErrorCode::kTypeMismatch,
               {"node 'r4' (reduce)", "'ids' is i64"});
  // Reducing a non-empty axis of an empty tensor is fine for every op.
  auto y = g.reduce("r5", ReduceOpKind::kMax, x, {2}, false);
  EXPECT_EQ(g.shape_string(y), "[2,0]");
}

// --- gather ----------------------------------------------------------------------------------------

// Reference gather in plain index arithmetic: output = data[:axis] + indices + data[axis+1:].
template <class T>
std::vector<T> gather_ref(const T* data, const Shape& ds, const Tensor& indices, int axis) {
  std::int64_t outer = 1, inner = 1;
  for (int d = 0; d < ds.rank(); ++d) {
    if (d < axis) outer *= ds[d];
    if (d > axis) inner *= ds[d];
  }
  std::vector<T> y;
  for (std::int64_t o = 0; o < outer; ++o)
    for (std::int64_t i = 0; i < indices.numel(); ++i) {
      std::int64_t k = indices.i64()[i];
      if (k < 0) k += ds[axis];
      for (std::int64_t j = 0; j < inner; ++j) y.push_back(data[(o * ds[axis] + k) * inner + j]);
    }
  return y;
}

TEST(OpsThroughModel, GatherWithRuntimeIndicesOnEveryAxis) {
  Tensor data = random_tensor({4, 5, 6}, 1);
  Tensor idx = Tensor::from_i64({2, 3}, std::vector<std::int64_t>{0, -1, 3, -4, 2, 2});
  for (int axis = -3; axis < 3; ++axis) {
    const int ax = axis < 0 ? axis + 3 : axis;
    GraphBuilder g;
    auto dv = g.input("data", {"b", 5, 6});
    auto iv = g.input("idx", {2, 3}, DType::kI64);
    auto y = g.gather("gather", dv, iv, axis);
    EXPECT_EQ(g.dtype(y), DType::kF32);
    const std::string shapes[] = {"[2,3,5,6]", "[b,2,3,6]", "[b,5,2,3]"};
    EXPECT_EQ(g.shape_string(y), shapes[ax]);
    g.output("y", y);
    Tensor out = run_once(g.build(), {{"data", data}, {"idx", idx}});
    const std::vector<float> want = gather_ref(data.f32(), data.shape(), idx, ax);
    ASSERT_EQ(out.numel(), static_cast<std::int64_t>(want.size()));
    for (std::size_t i = 0; i < want.size(); ++i) ASSERT_EQ(out.f32()[i], want[i]) << "axis " << axis << " at " << i;
  }
}

TEST(OpsThroughModel, GatherWithScalarConstantAndComputedIndices) {
  // A 0-d constant index drops the axis; indices computed by other ops (an i64 gather of a lookup table,
  // then a slice) drive a second gather, as in an embedding lookup through a vocabulary remap.
  Tensor emb = random_tensor({10, 8}, 2);
  Tensor table = Tensor::from_i64({6}, std::vector<std::int64_t>{9, 0, 4, -1, 7, 3});
  GraphBuilder g;
  auto ev = g.input("emb", {10, 8});
  auto tokens = g.input("tokens", {"s"}, DType::kI64);
  auto scalar = g.gather("pick", ev, g.constant("k", Tensor::from_i64({}, std::vector<std::int64_t>{-2})), 0);
  EXPECT_EQ(g.shape_string(scalar), "[8]");
  auto remapped = g.gather("remap", g.constant("table", table), tokens, 0);  // i64 data
  EXPECT_EQ(g.dtype(remapped), DType::kI64);
  auto tail = g.slice("tail", remapped, {1}, {100}, {0});
  g.output("scalar", scalar);
  g.output("y", g.gather("embed", ev, tail, 0));
  Tensor tok = Tensor::from_i64({4}, std::vector<std::int64_t>{5, 0, -3, 2});
  auto out = Session(compile(g.build())).run({{"emb", emb}, {"tokens", tok}});
  for (int j = 0; j < 8; ++j) EXPECT_EQ(out.at("scalar").f32()[j], emb.f32()[8 * 8 + j]);
  // remapped = table[{5, 0, -3, 2}] = {3, 9, -1, 4}; tail = {9, -1, 4}; -1 is row 9 of emb.
  const std::int64_t rows[] = {9, 9, 4};
  ASSERT_EQ(out.at("y").shape(), (Shape{3, 8}));
  for (int r = 0; r < 3; ++r)
    for (int j = 0; j < 8; ++j) EXPECT_EQ(out.at("y").f32()[r * 8 + j], emb.f32()[rows[r] * 8 + j]) << r;
}

TEST(OpsThroughModel, GatherOnI64AndBoolData) {
  for (const DType dtype : {DType::kI64, DType::kBool}) {
    SCOPED_TRACE(to_string(dtype));
    const Tensor data = pattern_tensor(dtype, {3, 7, 2});
    Tensor idx = Tensor::from_i64({4}, std::vector<std::int64_t>{6, -7, 3, 3});
    GraphBuilder g;
    auto dv = g.input("data", {3, 7, 2}, dtype);
    auto iv = g.input("idx", {4}, DType::kI64);
    g.output("y", g.gather("g", dv, iv, 1));
    Tensor y = run_once(g.build(), {{"data", data}, {"idx", idx}});
    ASSERT_EQ(y.dtype(), dtype);
    ASSERT_EQ(y.shape(), (Shape{3, 4, 2}));
    const std::int64_t k[] = {6, 0, 3, 3};
    for (int o = 0; o < 3; ++o)
      for (int i = 0; i < 4; ++i)
        for (int j = 0; j < 2; ++j)
          EXPECT_EQ(element(y, (o * 4 + i) * 2 + j), pattern_element(dtype, (o * 7 + k[i]) * 2 + j));
  }
}

TEST(OpsThroughModel, GatherIndexOutOfRangeThrowsFromRun) {
  for (int threads : {1, 2}) {
    GraphBuilder g;
    auto dv = g.input("data", {5, 4000});
    auto iv = g.input("idx", {2, "n"}, DType::kI64);
    g.output("y", g.gather("lookup", dv, iv, 0));
    Model model = compile(g.build(), {.threads = threads});
    Session session(model);
    Tensor data = random_tensor({5, 4000}, 3);
    Tensor bad = Tensor::from_i64({2, 3}, std::vector<std::int64_t>{0, 4, -5, 1, 2, 5});
    expect_error(
        [&] {
          session.run({{"data", data}, {"idx", bad}});
        },
        ErrorCode::kInvalidArgument, {"node 'lookup' (gather)", "index 5", "idx[1,2]", "[-5, 5)"});
    Tensor neg = Tensor::from_i64({2, 1}, std::vector<std::int64_t>{-6, 0});
    expect_error(
        [&] {
          session.run({{"data", data}, {"idx", neg}});
        },
        ErrorCode::kInvalidArgument, {"node 'lookup' (gather)", "index -6", "idx[0,0]"});
    // The session is still usable.
    Tensor good = Tensor::from_i64({2, 2}, std::vector<std::int64_t>{4, -5, 1, 1});
    Tensor y = session.run({{"data", data}, {"idx", good}}).at("y");
    ASSERT_EQ(y.shape(), (Shape{2, 2, 4000}));
    const std::int64_t rows[] = {4, 0, 1, 1};
    for (int r = 0; r < 4; ++r)
      for (int j = 0; j < 4000; ++j) ASSERT_EQ(y.f32()[r * 4000 + j], data.f32()[rows[r] * 4000 + j]);
  }
}

TEST(OpsThroughModel, GatherBuildErrors) {
  GraphBuilder g;
  auto data = g.input("data", {3, 4});
  auto fidx = g.input("fidx", {2});
  auto idx = g.input("idx", {2}, DType::kI64);
  auto scalar = g.input("scalar", {});
  expect_error([&] { g.gather("g1", data, fidx, 0); }, ErrorCode::kTypeMismatch,
               {"node 'g1' (gather)", "'fidx'", "f32", "i64"});
  expect_error([&] { g.gather("g2", data, idx, 2); }, ErrorCode::kInvalidArgument, {"node 'g2' (gather)", "axis 2"});
  expect_error([&] { g.gather("g3", scalar, idx, 0); }, ErrorCode::kShapeMismatch, {"node 'g3' (gather)", "'scalar'"});
  auto big = g.input("big", {1, 1, 1, 1, 1, 1, 1, 2});
  auto idx3 = g.input("idx3", {1, 1}, DType::kI64);
  expect_error([&] { g.gather("g4", big, idx3, 0); }, ErrorCode::kShapeMismatch, {"node 'g4' (gather)", "rank 9"});
}

// --- pow, max, min; unary; equal, where, cast, expand ------------------------------------------------
// Helpers for the dtype-generic ops: tensors of i64 and bool from vectors, and element access.
Tensor i64_tensor(const Shape& shape, const std::vector<std::int64_t>& v) { return Tensor::from_i64(shape, v); }
Tensor bool_tensor(const Shape& shape, const std::vector<int>& v) {
  Tensor t(DType::kBool, shape);
  for (std::size_t i = 0; i < v.size(); ++i) t.boolean()[i] = v[i] ? 1 : 0;
  return t;
}

// Flat index of output element `flat` of shape `out` in an operand of shape `s` (NumPy broadcasting).
std::int64_t broadcast_index(const Shape& out, const Shape& s, std::int64_t flat) {
  std::int64_t off = 0, stride = 1;
  for (int d = out.rank() - 1, sd = s.rank() - 1; d >= 0; --d, --sd) {
    const std::int64_t idx = flat % out[d];
    flat /= out[d];
    if (sd < 0) continue;
    if (s[sd] != 1) off += idx * stride;
    stride *= s[sd];
  }
  return off;
}

TEST(OpsThroughModel, PowMaxMinBroadcast) {
  // a [2,1,4] with both signs (and a NaN and a zero), b [3,1] = {2, 0.5, -1.5}: pow's exponent is
  // broadcast along the last axis, so the vector paths for 2 and 0.5 run next to the scalar one.
  Tensor a = random_tensor({2, 1, 4}, 1, 0.5f, 2.0f);
  a.f32()[1] = -a.f32()[1];
  a.f32()[2] = -1.25f;
  a.f32()[5] = NAN;
  a.f32()[6] = 0.0f;
  Tensor b = Tensor::from_f32({3, 1}, {2.0f, 0.5f, -1.5f});
  for (BinaryOpKind k : {BinaryOpKind::kPow, BinaryOpKind::kMax, BinaryOpKind::kMin}) {
    GraphBuilder g;
    auto av = g.input("a", {2, 1, 4});
    auto bv = g.input("b", {3, 1});
    g.output("y", g.binary("op", k, av, bv));
    Tensor y = run_once(g.build(), {{"a", a}, {"b", b}});
    ASSERT_EQ(y.shape(), (Shape{2, 3, 4}));
    std::vector<double> want(24);
    for (std::int64_t i = 0; i < 24; ++i) {
      const double x = a.f32()[broadcast_index(y.shape(), a.shape(), i)];
      const double z = b.f32()[broadcast_index(y.shape(), b.shape(), i)];
      want[i] = k == BinaryOpKind::kPow   ? std::pow(x, z)
                : std::isnan(x)           ? x
                : k == BinaryOpKind::kMax ? std::max(x, z)
                                          : std::min(x, z);
    }
    EXPECT_LT(max_abs_diff(y, want), 1e-6) << static_cast<int>(k);
  }
}

TEST(OpsThroughModel, PowMaxMinLargeInParallel) {
  Tensor a = random_tensor({64, 700}, 1, 0.1f, 3.0f), b = random_tensor({700}, 2, -2.0f, 2.0f);
  for (BinaryOpKind k : {BinaryOpKind::kPow, BinaryOpKind::kMax, BinaryOpKind::kMin}) {
    GraphBuilder g;
    auto av = g.input("a", {"rows", 700});
    g.output("y", g.binary("op", k, av, g.constant("b", b)));
    CompileOptions o;
    o.threads = 2;
    Tensor y = run_once(g.build(), {{"a", a}}, "y", o);
    std::vector<double> want(64 * 700);
    for (std::size_t i = 0; i < want.size(); ++i) {
      const double x = a.f32()[i], z = b.f32()[i % 700];
      want[i] = k == BinaryOpKind::kPow ? std::pow(x, z) : k == BinaryOpKind::kMax ? std::max(x, z) : std::min(x, z);
    }
    // pow within 1 ulp (2^-23 relative) of the exact value, plus the f32 rounding; max/min exact.
    for (std::size_t i = 0; i < want.size(); ++i) {
      const double tol = k == BinaryOpKind::kPow ? 2.4e-7 * std::fabs(want[i]) : 0.0;
      ASSERT_LE(std::fabs(y.f32()[i] - want[i]), tol) << static_cast<int>(k) << " element " << i;
    }
  }
}

TEST(OpsThroughModel, EveryUnaryKindLargeInParallelWithSpecialValues) {
  struct Kind {
    const char* name;
    std::function<Value(GraphBuilder&, Value)> build;
    std::function<double(double)> ref;
    double rel;  // allowed |got - want| / max(|want|, tiny)
  };
  const std::vector<Kind> kinds = {
      {"neg", [](GraphBuilder& g, Value x) { return g.unary("u", UnaryOpKind::kNeg, x); }, [](double x) { return -x; },
       0.0},
      {"abs", [](GraphBuilder& g, Value x) { return g.unary("u", UnaryOpKind::kAbs, x); },
       [](double x) { return std::fabs(x); }, 0.0},
      {"exp", [](GraphBuilder& g, Value x) { return g.unary("u", UnaryOpKind::kExp, x); },
       [](double x) { return std::exp(x); }, 2.4e-7},
      {"log", [](GraphBuilder& g, Value x) { return g.unary("u", UnaryOpKind::kLog, x); },
       [](double x) { return std::log(x); }, 2.4e-7},
      {"sqrt", [](GraphBuilder& g, Value x) { return g.unary("u", UnaryOpKind::kSqrt, x); },
       [](double x) { return std::sqrt(x); }, 6e-8},
      {"reciprocal", [](GraphBuilder& g, Value x) { return g.unary("u", UnaryOpKind::kReciprocal, x); },
       [](double x) { return 1.0 / x; }, 6e-8},
      {"erf", [](GraphBuilder& g, Value x) { return g.unary("u", UnaryOpKind::kErf, x); },
       [](double x) { return std::erf(x); }, 1e-6},
      {"clip", [](GraphBuilder& g, Value x) { return g.clip("u", x, -0.5f, 1.5f); },
       [](double x) { return x < -0.5  ? -0.5
                             : x > 1.5 ? 1.5
                                       : x; }, 0.0},
      {"hard_sigmoid", [](GraphBuilder& g, Value x) { return g.hard_sigmoid("u", x, 0.2f, 0.5f); },
       [](double x) {
         const double t = static_cast<double>(0.2f) * x + 0.5;
         return t < 0 ? 0.0 : t > 1 ? 1.0 : t;
       },
       1.2e-7},
  };
  const std::int64_t n = 70001;  // > 4 blocks of kElementwiseGrain
  Tensor x = random_tensor({n}, 5, -5.0f, 5.0f);
  const float specials[] = {NAN, INFINITY, -INFINITY, 0.0f, -0.0f, -1.0f, 1e-40f, 100.0f};
  for (std::size_t i = 0; i < std::size(specials); ++i) x.f32()[i * 9001] = specials[i];
  for (const Kind& kind : kinds) {
    GraphBuilder g;
    auto xv = g.input("x", {"n"});
    g.output("y", kind.build(g, xv));
    CompileOptions o;
    o.threads = 2;
    Tensor y = run_once(g.build(), {{"x", x}}, "y", o);
    for (std::int64_t i = 0; i < n; ++i) {
      const double want = kind.ref(x.f32()[i]);
      const float got = y.f32()[i];
      const float want_f = static_cast<float>(want);
      if (std::isnan(want_f) || std::isinf(want_f)) {
        ASSERT_TRUE(std::isnan(want_f) ? std::isnan(got) : got == want_f)
            << kind.name << "(" << x.f32()[i] << ") = " << got << ", want " << want;
      } else {
        ASSERT_LE(std::fabs(got - want), kind.rel * std::fabs(want) + 1e-44)
            << kind.name << "(" << x.f32()[i] << ") = " << got << ", want " << want;
      }
    }
  }
}

TEST(OpsThroughModel, UnaryRunsInPlace) {
  // exp -> log -> neg: log may reuse exp's buffer (neg writes the caller's output directly), so the
  // arena holds one buffer instead of two.
  const std::int64_t n = 1000;
  Tensor x = random_tensor({n}, 6, -3.0f, 3.0f);
  GraphBuilder g;
  auto xv = g.input("x", {n});
  auto l = g.unary("l", UnaryOpKind::kLog, g.unary("e", UnaryOpKind::kExp, xv));
  g.output("y", g.unary("neg", UnaryOpKind::kNeg, l));
  Model m = compile(g.build());
  Session session(m);
  Tensor y = session.run({{"x", x}}).at("y");
  std::vector<double> want(n);
  for (std::int64_t i = 0; i < n; ++i) want[i] = -static_cast<double>(x.f32()[i]);
  EXPECT_LT(max_abs_diff(y, want), 1e-6);
  EXPECT_LE(session.arena_bytes(), static_cast<std::size_t>(n) * sizeof(float) + 64) << "not planned in place";
}

TEST(OpsThroughModel, AttentionMaskFromI64IdsThroughSession) {
  // ids [b,1,s] i64 -> mask = (ids == 0) bool -> masked scores = where(mask, -1e9, scores) f32, plus
  // the mask expanded over 2 heads, the ids as f32 and back, all as outputs of their own dtypes.
  GraphBuilder g;
  auto ids = g.input("ids", {"b", 1, "s"}, DType::kI64);
  auto scores = g.input("scores", {"b", 2, "s"});
  auto mask = g.equal("mask", ids, g.constant("pad", i64_tensor({}, {0})));
  auto masked = g.where("masked", mask, g.constant("neg", Tensor::from_f32({}, {-1e9f})), scores);
  auto ids_f = g.cast("ids_f", ids, DType::kF32);
  g.output("masked", masked);
  g.output("mask", g.expand("mask2", mask, {1, 2, 1}));
  g.output("ids_f", ids_f);
  g.output("ids_back", g.cast("ids_back", ids_f, DType::kI64));
  g.output("nonzero", g.cast("nonzero", ids, DType::kBool));
  EXPECT_EQ(g.dtype(mask), DType::kBool);
  EXPECT_EQ(g.dtype(masked), DType::kF32);
  EXPECT_EQ(g.shape_string(masked), "[b,2,s]");
  Model m = compile(g.build());
  Session session(m);
  for (auto [b, s] : {std::pair<std::int64_t, std::int64_t>{2, 5}, {1, 1}, {3, 17}, {0, 4}, {2, 5}}) {
    std::vector<std::int64_t> id_values(static_cast<std::size_t>(b * s));
    for (std::size_t i = 0; i < id_values.size(); ++i)
      id_values[i] = i % 3 == 0 ? 0 : static_cast<std::int64_t>(i) * 1000003 - 7;
    Tensor idt = i64_tensor({b, 1, s}, id_values);
    Tensor sc = random_tensor({b, 2, s}, 7);
    auto out = session.run({{"ids", idt}, {"scores", sc}});
    const Tensor& y = out.at("masked");
    const Tensor& mk = out.at("mask");
    ASSERT_EQ(y.dtype(), DType::kF32);
    ASSERT_EQ(mk.dtype(), DType::kBool);
    ASSERT_EQ(out.at("ids_f").dtype(), DType::kF32);
    ASSERT_EQ(out.at("ids_back").dtype(), DType::kI64);
    ASSERT_EQ(out.at("nonzero").dtype(), DType::kBool);
    ASSERT_EQ(y.shape(), (Shape{b, 2, s}));
    ASSERT_EQ(mk.shape(), (Shape{b, 2, s}));
    for (std::int64_t q = 0; q < b; ++q) {
      for (std::int64_t h = 0; h < 2; ++h) {
        for (std::int64_t j = 0; j < s; ++j) {
          const std::int64_t id = id_values[q * s + j], o = (q * 2 + h) * s + j;
          EXPECT_EQ(mk.boolean()[o], id == 0 ? 1 : 0);
          EXPECT_EQ(y.f32()[o], id == 0 ? -1e9f : sc.f32()[o]);
        }
      }
    }
    for (std::size_t i = 0; i < id_values.size(); ++i) {
      const float as_f = static_cast<float>(static_cast<long double>(id_values[i]));
      EXPECT_EQ(out.at("ids_f").f32()[i], as_f);
      EXPECT_EQ(out.at("ids_back").i64()[i], static_cast<std::int64_t>(as_f));
      EXPECT_EQ(out.at("nonzero").boolean()[i], id_values[i] != 0 ? 1 : 0);
    }
  }

  // The zero-copy form with caller buffers of each dtype, and a buffer of the wrong dtype.
  Tensor idt = i64_tensor({1, 1, 3}, {0, 5, 0}), sc = random_tensor({1, 2, 3}, 8);
  Tensor masked_buf(DType::kF32, {1, 2, 3}), mask_buf(DType::kBool, {1, 2, 3}), back_buf(DType::kI64, {1, 1, 3});
  const NamedInput inputs[] = {{"ids", idt}, {"scores", sc}};
  const NamedOutput outputs[] = {
      {"masked", masked_buf.view()}, {"mask", mask_buf.view()}, {"ids_back", back_buf.view()}};
  session.run(inputs, outputs);
  const std::uint8_t want_mask[] = {1, 0, 1, 1, 0, 1};
  for (int i = 0; i < 6; ++i) {
    EXPECT_EQ(mask_buf.boolean()[i], want_mask[i]);
    EXPECT_EQ(masked_buf.f32()[i], want_mask[i] ? -1e9f : sc.f32()[i]);
  }
  EXPECT_EQ(back_buf.i64()[1], 5);
  Tensor wrong(DType::kF32, {1, 2, 3});
  const NamedOutput wrong_outputs[] = {{"mask", wrong.view()}};
  try {
    session.run(inputs, wrong_outputs);
    ADD_FAILURE() << "no error for an f32 buffer of a bool output";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kTypeMismatch) << e.what();
    EXPECT_NE(std::string(e.what()).find("bool"), std::string::npos) << e.what();
  }
  Tensor ids_as_f32 = random_tensor({1, 1, 3}, 9);
  try {
    session.run({{"ids", ids_as_f32}, {"scores", sc}});
    ADD_FAILURE() << "no error for f32 ids";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kTypeMismatch) << e.what();
    EXPECT_NE(std::string(e.what()).find("input 'ids' has dtype f32 but the graph expects i64"), std::string::npos)
        << e.what();
  }
}

TEST(OpsThroughModel, WhereThreeWayBroadcastForEveryValueDtype) {
  // cond [2,1,4] (input), x [3,1] (input), y [] (constant) -> [2,3,4].
  const Shape cs{2, 1, 4}, xs{3, 1}, out{2, 3, 4};
  Tensor cond = bool_tensor(cs, {1, 0, 0, 1, 1, 1, 0, 0});
  for (DType t : {DType::kF32, DType::kI64, DType::kBool}) {
    Tensor x, y;
    if (t == DType::kF32) x = Tensor::from_f32(xs, {1.5f, -2.0f, NAN}), y = Tensor::from_f32({}, {7.0f});
    if (t == DType::kI64) x = i64_tensor(xs, {INT64_MIN, 3, INT64_MAX}), y = i64_tensor({}, {-9});
    if (t == DType::kBool) x = bool_tensor(xs, {1, 0, 1}), y = bool_tensor({}, {0});
    GraphBuilder g;
    auto c = g.input("c", {2, 1, 4}, DType::kBool);
    auto xv = g.input("x", {3, 1}, t);
    g.output("y", g.where("w", c, xv, g.constant("k", y)));
    Tensor r = run_once(g.build(), {{"c", cond}, {"x", x}});
    ASSERT_EQ(r.dtype(), t);
    ASSERT_EQ(r.shape(), out);
    const std::size_t size = dtype_size(t);
    for (std::int64_t i = 0; i < out.numel(); ++i) {
      const bool pick_x = cond.boolean()[broadcast_index(out, cs, i)] != 0;
      const auto* want = static_cast<const std::byte*>(pick_x ? x.data() : y.data()) +
                         (pick_x ? broadcast_index(out, xs, i) : 0) * static_cast<std::int64_t>(size);
      EXPECT_EQ(std::memcmp(static_cast<const std::byte*>(r.data()) + i * static_cast<std::int64_t>(size), want, size),
                0)
          << to_string(t) << " element " << i;
    }
  }
}

TEST(OpsThroughModel, WhereReusesItsValueInputInPlace) {
  // x is an intermediate used once, of the output's shape and dtype: where writes over it.
  const std::int64_t n = 4096;
  Tensor a = random_tensor({n}, 10), c_values(DType::kBool, {n});
  for (std::int64_t i = 0; i < n; ++i) c_values.boolean()[i] = i % 3 == 0;
  GraphBuilder g;
  auto av = g.input("a", {n});
  auto c = g.input("c", {n}, DType::kBool);
  auto x = g.unary("x", UnaryOpKind::kNeg, av);
  auto w = g.where("w", c, x, g.constant("zero", Tensor::from_f32({}, {0.0f})));
  g.output("y", g.unary("y", UnaryOpKind::kAbs, w));
  Model m = compile(g.build());
  Session s(m);
  Tensor y = s.run({{"a", a}, {"c", c_values}}).at("y");
  std::vector<double> want(n);
  for (std::int64_t i = 0; i < n; ++i) want[i] = i % 3 == 0 ? std::fabs(a.f32()[i]) : 0.0;
  EXPECT_EQ(max_abs_diff(y, want), 0.0);
  EXPECT_LE(s.arena_bytes(), static_cast<std::size_t>(n) * sizeof(float)) << "where was not planned in place";
}

TEST(OpsThroughModel, CastEveryPairThroughSession) {
  const std::vector<float> f = {0.0f, -0.0f, 2.7f, -2.7f, 1e20f, -1e20f, NAN, INFINITY, -INFINITY, 1e-40f};
  const std::vector<std::int64_t> l = {0, 1, -1, INT64_MAX, INT64_MIN, (std::int64_t{1} << 24) + 1, 42};
  const std::vector<int> b = {0, 1, 1, 0};
  const Tensor inputs[] = {Tensor::from_f32({static_cast<std::int64_t>(f.size())}, f),
                           i64_tensor({static_cast<std::int64_t>(l.size())}, l),
                           bool_tensor({static_cast<std::int64_t>(b.size())}, b)};
  const DType dtypes[] = {DType::kF32, DType::kI64, DType::kBool};
  for (int from = 0; from < 3; ++from) {
    GraphBuilder g;
    auto x = g.input("x", {"n"}, dtypes[from]);
    for (DType to : dtypes) g.output(to_string(to), g.cast(std::string("to_") + to_string(to), x, to));
    const Tensor& in = inputs[from];
    auto out = Session(compile(g.build())).run({{"x", in}});
    for (std::int64_t i = 0; i < in.numel(); ++i) {
      // Reference: the source value as long double (exact for every f32, i64 and bool value).
      long double v = 0;
      bool is_nan = false;
      if (from == 0) v = in.f32()[i], is_nan = std::isnan(in.f32()[i]);
      if (from == 1) v = static_cast<long double>(in.i64()[i]);
      if (from == 2) v = in.boolean()[i] ? 1 : 0;
      const std::string what = std::string(to_string(dtypes[from])) + " element " + std::to_string(i);
      if (is_nan) {
        EXPECT_TRUE(std::isnan(out.at("f32").f32()[i])) << what;
      } else {
        EXPECT_EQ(out.at("f32").f32()[i], static_cast<float>(v)) << what;
      }
      std::int64_t want_i = 0;  // NaN -> 0, saturating, truncating
      if (!is_nan) {
        const long double t = std::trunc(v);
        want_i = t >= 9223372036854775807.0L    ? INT64_MAX
                 : t <= -9223372036854775808.0L ? INT64_MIN
                                                : static_cast<std::int64_t>(t);
      }
      EXPECT_EQ(out.at("i64").i64()[i], want_i) << what;
      EXPECT_EQ(out.at("bool").boolean()[i], is_nan || v != 0 ? 1 : 0) << what;
    }
  }
}

TEST(OpsThroughModel, ExpandBidirectionalAndSymbolic) {
  {  // [3,1] with {2,1,4}: the 1 in the target keeps x's 3 -> [2,3,4]
    Tensor x = random_tensor({3, 1}, 11);
    GraphBuilder g;
    auto xv = g.input("x", {3, 1});
    g.output("y", g.expand("e", xv, {2, 1, 4}));
    Tensor y = run_once(g.build(), {{"x", x}});
    ASSERT_EQ(y.shape(), (Shape{2, 3, 4}));
    std::vector<double> want(24);
    for (std::int64_t i = 0; i < 24; ++i) want[i] = x.f32()[broadcast_index(y.shape(), x.shape(), i)];
    EXPECT_EQ(max_abs_diff(y, want), 0.0);
  }
  {  // symbolic [n,1] i64 with {1,5} -> [n,5], for n = 0, 1, 4; and a bool scalar to [2,3]
    GraphBuilder g;
    auto xv = g.input("x", {"n", 1}, DType::kI64);
    auto e = g.expand("e", xv, {1, 5});
    EXPECT_EQ(g.shape_string(e), "[n,5]");
    EXPECT_EQ(g.dtype(e), DType::kI64);
    g.output("y", e);
    g.output("flag", g.expand("f", g.constant("t", bool_tensor({}, {1})), {2, 3}));
    Model m = compile(g.build());
    Session s(m);
    for (std::int64_t n : {0, 1, 4, 1}) {
      std::vector<std::int64_t> v(static_cast<std::size_t>(n));
      for (std::int64_t i = 0; i < n; ++i) v[i] = (i + 1) * -1000000007LL;
      auto out = s.run({{"x", i64_tensor({n, 1}, v)}});
      const Tensor& y = out.at("y");
      ASSERT_EQ(y.shape(), (Shape{n, 5}));
      for (std::int64_t i = 0; i < n * 5; ++i) EXPECT_EQ(y.i64()[i], v[i / 5]);
      ASSERT_EQ(out.at("flag").shape(), (Shape{2, 3}));
      for (int i = 0; i < 6; ++i) EXPECT_EQ(out.at("flag").boolean()[i], 1);
    }
  }
  {  // a target smaller than x in some dims: x [3,4] with {1} -> [3,4], a copy of x
    Tensor x = random_tensor({3, 4}, 12);
    GraphBuilder g;
    g.output("y", g.expand("e", g.input("x", {3, 4}), {1}));
    Tensor y = run_once(g.build(), {{"x", x}});
    ASSERT_EQ(y.shape(), (Shape{3, 4}));
    EXPECT_EQ(max_abs_diff(y, test::to_double(x)), 0.0);
  }
}

TEST(OpsThroughModel, TypedOpsOnLargeTensorsInParallel) {
  // [300, 200] = 60000 elements, above four parallel blocks, with broadcasting in every op.
  const std::int64_t rows = 300, cols = 200;
  std::vector<std::int64_t> ids(static_cast<std::size_t>(rows * cols)), row_ids(static_cast<std::size_t>(cols));
  for (std::size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<std::int64_t>((i * 7919) % 13);
  for (std::size_t j = 0; j < row_ids.size(); ++j) row_ids[j] = static_cast<std::int64_t>(j % 13);
  Tensor scores = random_tensor({rows, cols}, 13), col = random_tensor({rows, 1}, 14);
  GraphBuilder g;
  auto idv = g.input("ids", {"r", cols}, DType::kI64);
  auto sv = g.input("scores", {"r", cols});
  auto colv = g.input("col", {"r", 1});
  auto eq = g.equal("eq", idv, g.constant("row_ids", i64_tensor({cols}, row_ids)));  // [r, c] bool
  auto w = g.where("w", eq, sv, colv);                                               // [r, c] f32
  g.output("eq", eq);
  g.output("w", w);
  g.output("cast", g.cast("c", idv, DType::kF32));
  g.output("expand", g.expand("e", colv, {1, cols}));
  CompileOptions o;
  o.threads = 2;
  Model m = compile(g.build(), o);
  auto out = Session(m).run({{"ids", i64_tensor({rows, cols}, ids)}, {"scores", scores}, {"col", col}});
  for (std::int64_t r = 0; r < rows; ++r) {
    for (std::int64_t c = 0; c < cols; ++c) {
      const std::int64_t i = r * cols + c;
      const bool same = ids[i] == row_ids[c];
      ASSERT_EQ(out.at("eq").boolean()[i], same ? 1 : 0) << i;
      ASSERT_EQ(out.at("w").f32()[i], same ? scores.f32()[i] : col.f32()[r]) << i;
      ASSERT_EQ(out.at("cast").f32()[i], static_cast<float>(ids[i])) << i;
      ASSERT_EQ(out.at("expand").f32()[i], col.f32()[r]) << i;
    }
  }
}

TEST(OpsThroughModel, WhereAndEqualWithSymbolicDims) {
  GraphBuilder g;
  auto c = g.input("c", {"b", 1}, DType::kBool);
  auto x = g.input("x", {1, "s"});
  auto y = g.input("y", {"b", "s"});
  auto w = g.where("w", c, x, y);
  EXPECT_EQ(g.shape_string(w), "[b,s]");
  auto other = g.input("z", {"t"});
  auto e = g.equal("e", x, other);  // s vs t: known only at run time
  EXPECT_EQ(g.shape_string(e), "[1,?]");
  g.output("w", w);
  g.output("e", e);
  Model m = compile(g.build());
  Session s(m);
  Tensor cv = bool_tensor({2, 1}, {0, 1}), xv = random_tensor({1, 3}, 15), yv = random_tensor({2, 3}, 16);
  Tensor zv = Tensor::from_f32({1}, {xv.f32()[1]});  // t = 1 broadcasts against s = 3
  auto out = s.run({{"c", cv}, {"x", xv}, {"y", yv}, {"z", zv}});
  ASSERT_EQ(out.at("w").shape(), (Shape{2, 3}));
  for (int i = 0; i < 6; ++i) EXPECT_EQ(out.at("w").f32()[i], i < 3 ? yv.f32()[i] : xv.f32()[i % 3]);
  ASSERT_EQ(out.at("e").shape(), (Shape{1, 3}));
  for (int i = 0; i < 3; ++i) EXPECT_EQ(out.at("e").boolean()[i], i == 1 ? 1 : 0);
  // s = 3 against t = 2 does not broadcast: the plan-time check names the node and both inputs.
  try {
    s.run({{"c", cv}, {"x", xv}, {"y", yv}, {"z", random_tensor({2}, 17)}});
    ADD_FAILURE() << "no error for [1,3] == [2]";
  } catch (const Error& err) {
    EXPECT_EQ(err.code(), ErrorCode::kShapeMismatch);
    EXPECT_NE(std::string(err.what()).find("node 'e' (equal): inputs 'x' [1,3] and 'z' [2]"), std::string::npos)
        << err.what();
  }
}

// ---------------------------------------------------------------------------------------------------
// attention: against a double reference that materialises the scores (4-D data [B, H, S, D]).

struct AttentionRefInputs {
  std::int64_t b, hq, hkv, sq, sk, d;
  const Tensor *q, *k, *v;       // 4-D
  const Tensor* mask = nullptr;  // any shape broadcastable to [B, Hq, Sq, Sk]
  const std::vector<std::int64_t>* lengths = nullptr;
  bool causal = false;
  double scale = 0.0;  // 0: 1/sqrt(d)
};

// y[b, h, i, :] = softmax_j(q·k_j·scale + mask, over visible j)·V; rows with nothing visible are 0.
std::vector<double> attention_ref(const AttentionRefInputs& a) {
  std::vector<double> y(static_cast<std::size_t>(a.b * a.hq * a.sq * a.d), 0.0);
  const double scale = a.scale != 0.0 ? a.scale : 1.0 / std::sqrt(static_cast<double>(a.d));
  const auto mask_at = [&](std::int64_t b, std::int64_t h, std::int64_t i, std::int64_t j) {
    const Shape& ms = a.mask->shape();
    const std::int64_t full[4] = {b, h, i, j};
    std::int64_t index = 0;
    for (int p = 0; p < ms.rank(); ++p) {
      const std::int64_t coord = full[4 - ms.rank() + p];
      index = index * ms[p] + (ms[p] == 1 ? 0 : coord);
    }
    return static_cast<double>(a.mask->f32()[index]);
  };
  for (std::int64_t b = 0; b < a.b; ++b) {
    const std::int64_t len = a.lengths ? (*a.lengths)[b] : a.sk;
    for (std::int64_t h = 0; h < a.hq; ++h) {
      const std::int64_t g = h / (a.hq / a.hkv);
      for (std::int64_t i = 0; i < a.sq; ++i) {
        std::vector<double> s;
        std::vector<std::int64_t> keys;
        double m = -INFINITY;
        for (std::int64_t j = 0; j < len; ++j) {
          if (a.causal && j > i + (a.sk - a.sq)) continue;
          double dot = 0.0;
          for (std::int64_t x = 0; x < a.d; ++x) {
            dot += static_cast<double>(a.q->f32()[((b * a.hq + h) * a.sq + i) * a.d + x]) *
                   a.k->f32()[((b * a.hkv + g) * a.sk + j) * a.d + x];
          }
          s.push_back(dot * scale + (a.mask ? mask_at(b, h, i, j) : 0.0));
          keys.push_back(j);
          m = std::max(m, s.back());
        }
        if (m == -INFINITY) continue;
        double sum = 0.0;
        double* yi = y.data() + ((b * a.hq + h) * a.sq + i) * a.d;
        for (std::size_t t = 0; t < s.size(); ++t) {
          const double w = std::exp(s[t] - m);
          sum += w;
          for (std::int64_t x = 0; x < a.d; ++x) yi[x] += w * a.v->f32()[((b * a.hkv + g) * a.sk + keys[t]) * a.d + x];
        }
        for (std::int64_t x = 0; x < a.d; ++x) yi[x] /= sum;
      }
    }
  }
  return y;
}

// [B, H, S, D] -> [B, S, H·D] (and back with to_4d).
Tensor to_3d(const Tensor& t) {
  const Shape& s = t.shape();
  Tensor out(DType::kF32, {s[0], s[2], s[1] * s[3]});
  for (std::int64_t b = 0; b < s[0]; ++b)
    for (std::int64_t h = 0; h < s[1]; ++h)
      for (std::int64_t i = 0; i < s[2]; ++i)
        for (std::int64_t x = 0; x < s[3]; ++x)
          out.f32()[(b * s[2] + i) * s[1] * s[3] + h * s[3] + x] = t.f32()[((b * s[1] + h) * s[2] + i) * s[3] + x];
  return out;
}

std::vector<double> ref_to_3d(const std::vector<double>& y, std::int64_t b, std::int64_t h, std::int64_t sq,
                              std::int64_t d) {
  std::vector<double> out(y.size());
  for (std::int64_t n = 0; n < b; ++n)
    for (std::int64_t hh = 0; hh < h; ++hh)
      for (std::int64_t i = 0; i < sq; ++i)
        for (std::int64_t x = 0; x < d; ++x)
          out[(n * sq + i) * h * d + hh * d + x] = y[((n * h + hh) * sq + i) * d + x];
  return out;
}

std::vector<Dim> dims_of(const Shape& s) { return std::vector<Dim>(s.begin(), s.end()); }

// Inputs in [-2, 2] (scores of a few units) and values in [-1, 1]: the outputs are O(1), and 1e-5
// absolute is ~10x the f32 error of the scores (kernel sweeps: tests/ops/attention/).
constexpr double kAttentionTol = 1e-5;

TEST(OpsThroughModel, AttentionBothLayoutsWithMaskKeyLengthsAndCausal) {
  const std::int64_t b = 2, h = 3, sq = 19, sk = 70, d = 16;
  Tensor q = random_tensor({b, h, sq, d}, 301, -2, 2), k = random_tensor({b, h, sk, d}, 302, -2, 2),
         v = random_tensor({b, h, sk, d}, 303);
  Tensor mask = random_tensor({b, 1, 1, sk}, 304, -2, 0);
  for (std::int64_t j = 0; j < sk; j += 5) mask.f32()[j] = -INFINITY;  // batch 0: every fifth key hidden
  const std::vector<std::int64_t> lengths = {70, 33};
  for (bool three_d : {false, true}) {
    for (bool causal : {false, true}) {
      for (int threads : {1, 2}) {
        GraphBuilder g;
        const Tensor qx = three_d ? to_3d(q) : q, kx = three_d ? to_3d(k) : k, vx = three_d ? to_3d(v) : v;
        auto qv = g.input("q", dims_of(qx.shape()));
        auto kv = g.input("k", dims_of(kx.shape()));
        auto vv = g.input("v", dims_of(vx.shape()));
        auto mv = g.input("mask", {b, 1, 1, sk});
        auto lv = g.input("lengths", {b}, DType::kI64);
        AttentionOptions o;
        o.causal = causal;
        if (three_d) o.num_heads = static_cast<int>(h);
        auto y = g.attention("attn", qv, kv, vv, mv, lv, o);
        EXPECT_EQ(g.shape_string(y), qx.shape().to_string());
        g.output("y", y);
        CompileOptions co;
        co.threads = threads;
        Model model = compile(g.build(), co);
        Tensor got = Session(model)
                         .run({{"q", qx}, {"k", kx}, {"v", vx}, {"mask", mask}, {"lengths", i64_tensor({b}, lengths)}})
                         .at("y");
        ASSERT_EQ(got.shape(), qx.shape());
        AttentionRefInputs a{b, h, h, sq, sk, d, &q, &k, &v, &mask, &lengths, causal};
        std::vector<double> want = attention_ref(a);
        if (three_d) want = ref_to_3d(want, b, h, sq, d);
        EXPECT_LT(max_abs_diff(got, want), kAttentionTol)
            << (three_d ? "3-D" : "4-D") << (causal ? " causal" : "") << " threads " << threads;
      }
    }
  }
}

TEST(OpsThroughModel, AttentionGroupedQueryScaleAndBroadcastMasks) {
  const std::int64_t b = 2, hq = 8, hkv = 2, sq = 17, sk = 65, d = 64;
  Tensor q = random_tensor({b, hq, sq, d}, 311, -2, 2), k = random_tensor({b, hkv, sk, d}, 312, -2, 2),
         v = random_tensor({b, hkv, sk, d}, 313);
  const std::vector<Shape> mask_shapes = {{1, 1, sq, sk}, {sq, sk}, {b, hq, sq, sk}, {1, hq, 1, 1}};
  for (const Shape& ms : mask_shapes) {
    for (bool three_d : {false, true}) {
      Tensor mask = random_tensor(ms, 314, -3, 1);
      if (ms.rank() >= 2 && ms[ms.rank() - 1] == sk) {
        for (std::int64_t j = 0; j < sk; ++j) mask.f32()[3 * sk + j] = -INFINITY;  // a fully masked row
      }
      GraphBuilder g;
      const Tensor qx = three_d ? to_3d(q) : q, kx = three_d ? to_3d(k) : k, vx = three_d ? to_3d(v) : v;
      AttentionOptions o;
      o.scale = 0.3f;
      if (three_d) {
        o.num_heads = static_cast<int>(hq);
        o.num_kv_heads = static_cast<int>(hkv);
      }
      g.output("y", g.attention("attn", g.input("q", dims_of(qx.shape())), g.input("k", dims_of(kx.shape())),
                                g.input("v", dims_of(vx.shape())), g.constant("mask", mask), std::nullopt, o));
      CompileOptions co;
      co.threads = 2;
      Tensor got = run_once(g.build(), {{"q", qx}, {"k", kx}, {"v", vx}}, "y", co);
      AttentionRefInputs a{b, hq, hkv, sq, sk, d, &q, &k, &v, &mask};
      a.scale = 0.3f;
      std::vector<double> want = attention_ref(a);
      if (three_d) want = ref_to_3d(want, b, hq, sq, d);
      EXPECT_LT(max_abs_diff(got, want), kAttentionTol) << ms.to_string() << (three_d ? " 3-D" : " 4-D");
      for (std::int64_t i = 0; i < got.numel(); ++i) ASSERT_FALSE(std::isnan(got.f32()[i]));
    }
  }
}

TEST(OpsThroughModel, AttentionSymbolicDimsDecodeSplitAndZeroLengths) {
  // [batch, seq, H·D] with symbolic dims; one plan per shape: a prefill, then decode steps of one query
  // over a longer cache (2 threads and one head: the kernel splits the keys over tasks and merges them,
  // see KeySplitIsChosenForDecodeWithFewTasks in tests/ops/attention/).
  const std::int64_t h = 1, d = 32;
  GraphBuilder g;
  auto qv = g.input("q", {"batch", "q_len", h * d});
  auto kv = g.input("k", {"batch", "kv_len", h * d});
  auto vv = g.input("v", {"batch", "kv_len", h * d});
  auto lv = g.input("lengths", {"batch"}, DType::kI64);
  AttentionOptions o;
  o.num_heads = static_cast<int>(h);
  o.causal = true;
  auto y = g.attention("attn", qv, kv, vv, std::nullopt, lv, o);
  EXPECT_EQ(g.shape_string(y), "[batch,q_len,32]");
  g.output("y", y);
  CompileOptions co;
  co.threads = 2;
  Model model = compile(g.build(), co);
  Session session(model);
  struct Case {
    std::int64_t b, sq, sk;
  };
  for (const auto& [b, sq, sk] : {Case{2, 40, 40}, Case{1, 1, 2048}, Case{3, 1, 999}}) {
    Tensor q = random_tensor({b, h, sq, d}, 321, -2, 2), k = random_tensor({b, h, sk, d}, 322, -2, 2),
           v = random_tensor({b, h, sk, d}, 323);
    std::vector<std::int64_t> lengths(static_cast<std::size_t>(b), sk);
    if (b > 1) lengths[b - 1] = 0;  // no key at all: zeros
    if (b > 2) lengths[1] = sk / 2;
    Tensor got =
        session.run({{"q", to_3d(q)}, {"k", to_3d(k)}, {"v", to_3d(v)}, {"lengths", i64_tensor({b}, lengths)}}).at("y");
    ASSERT_EQ(got.shape(), (Shape{b, sq, h * d}));
    AttentionRefInputs a{b, h, h, sq, sk, d, &q, &k, &v, nullptr, &lengths, true};
    EXPECT_LT(max_abs_diff(got, ref_to_3d(attention_ref(a), b, h, sq, d)), kAttentionTol)
        << b << " " << sq << " " << sk;
    if (b > 1) {
      for (std::int64_t i = 0; i < sq * h * d; ++i) ASSERT_EQ(got.f32()[(b - 1) * sq * h * d + i], 0.0f);
    }
  }
}

TEST(OpsThroughModel, AttentionLongSequenceNeedsNoScoreBuffer) {
  // Sq = Sk = 4096: the scores alone would be 4096² floats = 64 MiB per head; the arena holds only tiles.
  const std::int64_t s = 4096, d = 64;
  Tensor q = random_tensor({1, 1, s, d}, 331, -2, 2), k = random_tensor({1, 1, s, d}, 332, -2, 2),
         v = random_tensor({1, 1, s, d}, 333);
  GraphBuilder g;
  AttentionOptions o;
  o.causal = true;
  g.output("y", g.attention("attn", g.input("q", {1, 1, s, d}), g.input("k", {1, 1, s, d}), g.input("v", {1, 1, s, d}),
                            std::nullopt, std::nullopt, o));
  CompileOptions co;
  co.threads = 2;
  Model model = compile(g.build(), co);
  Session session(model);
  Tensor got = session.run({{"q", q}, {"k", k}, {"v", v}}).at("y");
  const std::size_t scores = std::size_t{4096} * 4096 * sizeof(float);
  EXPECT_LT(session.arena_bytes(), scores / 256) << session.arena_bytes();
  // Check a sample of rows against the reference (all of it would take a while in double).
  for (std::int64_t i : {0, 1, 63, 64, 2047, 4000, 4095}) {
    Tensor qi = Tensor::from_f32({1, 1, 1, d}, std::vector<float>(q.f32() + i * d, q.f32() + (i + 1) * d));
    Tensor ki = Tensor::from_f32({1, 1, i + 1, d}, std::vector<float>(k.f32(), k.f32() + (i + 1) * d));
    Tensor vi = Tensor::from_f32({1, 1, i + 1, d}, std::vector<float>(v.f32(), v.f32() + (i + 1) * d));
    AttentionRefInputs a{1, 1, 1, 1, i + 1, d, &qi, &ki, &vi};  // row i sees keys 0..i
    const std::vector<double> want = attention_ref(a);
    for (std::int64_t x = 0; x < d; ++x) ASSERT_NEAR(got.f32()[i * d + x], want[x], kAttentionTol) << i;
  }
}

TEST(OpsThroughModel, AttentionErrorsNameTheNodeAndTheShapes) {
  const auto expect_error = test::expect_build_error;
  expect_error(
      [](GraphBuilder& g) {
        g.attention("attn", g.input("q", {2, 4, 5, 64}), g.input("k", {2, 4, 7, 32}), g.input("v", {2, 4, 7, 32}));
      },
      ErrorCode::kShapeMismatch,
      "node 'attn' (attention): head dims differ: q 'q' [2,4,5,64] has D=64 but k 'k' [2,4,7,32] has D=32");
  expect_error(
      [](GraphBuilder& g) {
        g.attention("attn", g.input("q", {2, 6, 5, 8}), g.input("k", {2, 4, 7, 8}), g.input("v", {2, 4, 7, 8}));
      },
      ErrorCode::kShapeMismatch, "query heads Hq=6 of q 'q' [2,6,5,8] are not a multiple of the kv heads Hkv=4");
  expect_error(
      [](GraphBuilder& g) {
        g.attention("attn", g.input("q", {2, 4, 5, 8}), g.input("k", {2, 4, 7, 8}), g.input("v", {2, 4, 7, 8}),
                    g.input("m", {2, 1, 5, 6}));
      },
      ErrorCode::kShapeMismatch,
      "mask 'm' [2,1,5,6] does not broadcast to [B, Hq, Sq, Sk] = [2,4,5,7] (dim 3: 6 vs 7)");
  expect_error(
      [](GraphBuilder& g) {
        g.attention("attn", g.input("q", {2, 4, 5, 8}), g.input("k", {2, 4, 7, 8}), g.input("v", {2, 4, 7, 8}),
                    std::nullopt, g.input("len", {3}, DType::kI64));
      },
      ErrorCode::kShapeMismatch, "key_lengths 'len' has shape [3] but must be [B] = [2]");
  expect_error(
      [](GraphBuilder& g) {
        g.attention("attn", g.input("q", {2, 4, 5, 8}), g.input("k", {2, 4, 7, 8}), g.input("v", {2, 4, 7, 8}),
                    std::nullopt, g.input("len", {2}));
      },
      ErrorCode::kTypeMismatch, "node 'attn' (attention): key_lengths 'len' is f32 but must be i64");
  expect_error(
      [](GraphBuilder& g) {
        g.attention("attn", g.input("q", {2, 5, 64}), g.input("k", {2, 7, 64}), g.input("v", {2, 7, 64}));
      },
      ErrorCode::kInvalidArgument, "q 'q' [2,5,64] is in the 3-D layout [B, Sq, Hq*D]: options.num_heads must give Hq");
  expect_error(
      [](GraphBuilder& g) {
        AttentionOptions o;
        o.num_heads = 3;
        g.attention("attn", g.input("q", {2, 5, 64}), g.input("k", {2, 7, 64}), g.input("v", {2, 7, 64}), std::nullopt,
                    std::nullopt, o);
      },
      ErrorCode::kShapeMismatch, "hidden size 64 of q 'q' [2,5,64] is not divisible by num_heads 3");
  expect_error(
      [](GraphBuilder& g) {
        AttentionOptions o;
        o.num_heads = 4;
        o.num_kv_heads = 2;
        g.attention("attn", g.input("q", {2, 5, 64}), g.input("k", {2, 7, 64}), g.input("v", {2, 7, 32}), std::nullopt,
                    std::nullopt, o);
      },
      ErrorCode::kShapeMismatch, "k 'k' [2,7,64] has hidden size 64 but 2 kv heads of D=16 need 32");
  expect_error(
      [](GraphBuilder& g) {
        AttentionOptions o;
        o.scale = INFINITY;
        g.attention("attn", g.input("q", {1, 1, 2, 4}), g.input("k", {1, 1, 2, 4}), g.input("v", {1, 1, 2, 4}),
                    std::nullopt, std::nullopt, o);
      },
      ErrorCode::kInvalidArgument, "scale must be finite");
  expect_error(
      [](GraphBuilder& g) {
        g.attention("attn", g.input("q", {1, 1, 2, 4}, DType::kI64), g.input("k", {1, 1, 2, 4}),
                    g.input("v", {1, 1, 2, 4}));
      },
      ErrorCode::kTypeMismatch, "q 'q' is i64 but must be f32");

  // A key length outside [0, Sk] throws from run, naming the node, the batch index and the value.
  GraphBuilder g;
  g.output("y", g.attention("attn", g.input("q", {2, 1, 3, 4}), g.input("k", {2, 1, 5, 4}), g.input("v", {2, 1, 5, 4}),
                            std::nullopt, g.input("len", {2}, DType::kI64)));
  Model model = compile(g.build());
  Session session(model);
  const Tensor q = random_tensor({2, 1, 3, 4}, 341), kv = random_tensor({2, 1, 5, 4}, 342);
  for (std::int64_t bad : {6, -1}) {
    try {
      session.run({{"q", q}, {"k", kv}, {"v", kv}, {"len", i64_tensor({2}, {5, bad})}});
      ADD_FAILURE() << "no error for key length " << bad;
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
      EXPECT_NE(std::string(e.what()).find("node 'attn' (attention): key_lengths 'len'[1] = " + std::to_string(bad) +
                                           " is outside [0, 5] (Sk of k 'k' [2,1,5,4])"),
                std::string::npos)
          << e.what();
    }
  }
}

// attention_qkv: q, k and v packed in one [B, S, (Hq + 2·Hkv)·D] tensor, read in place.

// Splits a packed qkv tensor into 4-D q [B, Hq, S, D], k and v [B, Hkv, S, D] for attention_ref.
struct Unpacked {
  Tensor q, k, v;
};
Unpacked unpack_qkv(const Tensor& qkv, std::int64_t hq, std::int64_t hkv) {
  const std::int64_t b = qkv.shape()[0], s = qkv.shape()[1], w = qkv.shape()[2], d = w / (hq + 2 * hkv);
  Unpacked u{Tensor(DType::kF32, {b, hq, s, d}), Tensor(DType::kF32, {b, hkv, s, d}),
             Tensor(DType::kF32, {b, hkv, s, d})};
  for (std::int64_t n = 0; n < b; ++n) {
    for (std::int64_t i = 0; i < s; ++i) {
      const float* row = qkv.f32() + (n * s + i) * w;
      for (std::int64_t h = 0; h < hq + 2 * hkv; ++h) {
        Tensor& t = h < hq ? u.q : h < hq + hkv ? u.k : u.v;
        const std::int64_t heads = h < hq ? hq : hkv, hh = h < hq ? h : h < hq + hkv ? h - hq : h - hq - hkv;
        std::copy_n(row + h * d, d, t.f32() + ((n * heads + hh) * s + i) * d);
      }
    }
  }
  return u;
}

TEST(OpsThroughModel, AttentionQkvReadsThePackedTensorInPlace) {
  struct Case {
    std::int64_t b, hq, hkv, s, d;
    bool causal, mask, lengths;
  };
  for (const Case& c : {Case{2, 4, 4, 9, 16, false, false, false}, Case{3, 6, 2, 70, 12, true, false, true},
                        Case{2, 8, 1, 33, 8, false, true, true}, Case{1, 3, 3, 130, 64, true, true, false}}) {
    for (int threads : {1, 2}) {
      const std::int64_t w = (c.hq + 2 * c.hkv) * c.d;
      Tensor qkv = random_tensor({c.b, c.s, w}, 351, -2, 2);
      Tensor mask = random_tensor({c.b, 1, c.s, c.s}, 352, -3, 1);
      std::vector<std::int64_t> lengths(static_cast<std::size_t>(c.b), c.s);
      lengths[0] = c.s / 2 + 1;
      GraphBuilder g;
      auto x = g.input("qkv", {c.b, c.s, w});
      AttentionOptions o;
      o.causal = c.causal;
      o.num_heads = static_cast<int>(c.hq);
      if (c.hkv != c.hq) o.num_kv_heads = static_cast<int>(c.hkv);
      auto y = g.attention_qkv("attn", x, c.mask ? std::optional(g.input("mask", {c.b, 1, c.s, c.s})) : std::nullopt,
                               c.lengths ? std::optional(g.input("len", {c.b}, DType::kI64)) : std::nullopt, o);
      EXPECT_EQ(g.shape_string(y), Shape({c.b, c.s, c.hq * c.d}).to_string());
      g.output("y", y);
      CompileOptions co;
      co.threads = threads;
      Model model = compile(g.build(), co);
      const std::string prefix = c.causal ? "attn = attention[qkv,causal](qkv" : "attn = attention[qkv](qkv";
      EXPECT_EQ(model.describe().substr(0, prefix.size()), prefix) << model.describe();
      std::vector<NamedInput> in{{"qkv", qkv}};
      Tensor lengths_t = i64_tensor({c.b}, lengths);
      if (c.mask) in.push_back({"mask", mask});
      if (c.lengths) in.push_back({"len", lengths_t});
      Tensor got = Session(model).run(in).at("y");
      ASSERT_EQ(got.shape(), (Shape{c.b, c.s, c.hq * c.d}));
      const Unpacked u = unpack_qkv(qkv, c.hq, c.hkv);
      AttentionRefInputs a{c.b,
                           c.hq,
                           c.hkv,
                           c.s,
                           c.s,
                           c.d,
                           &u.q,
                           &u.k,
                           &u.v,
                           c.mask ? &mask : nullptr,
                           c.lengths ? &lengths : nullptr,
                           c.causal};
      EXPECT_LT(max_abs_diff(got, ref_to_3d(attention_ref(a), c.b, c.hq, c.s, c.d)), kAttentionTol)
          << c.hq << "/" << c.hkv << " heads, S " << c.s << " threads " << threads;
    }
  }
}

TEST(OpsThroughModel, AttentionQkvAfterAFusedProjectionWithSymbolicDims) {
  // x [batch, seq, 24] -> dense+bias to [batch, seq, (4 + 2·2)·6] -> attention_qkv (GQA, causal): the
  // compiled graph is the two ops, nothing sliced or copied; one plan per input shape.
  const std::int64_t dm = 24, hq = 4, hkv = 2, d = 6, w = (hq + 2 * hkv) * d;
  Tensor wq = random_tensor({dm, w}, 361, -0.4f, 0.4f), bq = random_tensor({w}, 362);
  GraphBuilder g;
  auto x = g.input("x", {"batch", "seq", dm});
  auto qkv = g.dense("proj", x, g.constant("proj.w", wq), g.constant("proj.b", bq));
  AttentionOptions o;
  o.causal = true;
  o.num_heads = static_cast<int>(hq);
  o.num_kv_heads = static_cast<int>(hkv);
  auto y = g.attention_qkv("attn", qkv, std::nullopt, std::nullopt, o);
  EXPECT_EQ(g.shape_string(y), "[batch,seq,24]");
  g.output("y", y);
  CompileOptions co;
  co.threads = 2;
  Model model = compile(g.build(), co);
  EXPECT_EQ(model.describe(),
            "proj = dense+bias(x, proj.w, proj.b) -> [batch,seq,48]\n"
            "attn = attention[qkv,causal](proj) -> [batch,seq,24]\n"
            "output y = attn\n");
  Session session(model);
  for (auto [b, s] : {std::pair<std::int64_t, std::int64_t>{2, 11}, {1, 67}}) {
    Tensor xv = random_tensor({b, s, dm}, 363);
    Tensor got = session.run({{"x", xv}}).at("y");
    // The projection in double, rounded to f32 (the kernel reads f32), then the attention reference.
    std::vector<double> p = test::matmul_ref(xv.f32(), wq.f32(), b * s, dm, w);
    Tensor packed(DType::kF32, {b, s, w});
    for (std::int64_t i = 0; i < packed.numel(); ++i) packed.f32()[i] = static_cast<float>(p[i] + bq.f32()[i % w]);
    const Unpacked u = unpack_qkv(packed, hq, hkv);
    AttentionRefInputs a{b, hq, hkv, s, s, d, &u.q, &u.k, &u.v, nullptr, nullptr, true};
    EXPECT_LT(max_abs_diff(got, ref_to_3d(attention_ref(a), b, hq, s, d)), 1e-4) << b << "x" << s;
  }
}

TEST(OpsThroughModel, AttentionQkvErrorsNameTheNodeAndTheShapes) {
  const auto expect_error = test::expect_build_error;
  const auto options = [](int heads, int kv_heads) {
    AttentionOptions o;
    o.num_heads = heads;
    o.num_kv_heads = kv_heads;
    return o;
  };
  expect_error(
      [&](GraphBuilder& g) {
        g.attention_qkv("attn", g.input("qkv", {2, 5, 96}));
      },
      ErrorCode::kInvalidArgument,
      "node 'attn' (attention): qkv 'qkv' [2,5,96] is packed [B, S, (Hq + 2*Hkv)*D]: options.num_heads "
      "must give Hq");
  expect_error(
      [&](GraphBuilder& g) {
        g.attention_qkv("attn", g.input("qkv", {2, 5, 100}), std::nullopt, std::nullopt, options(4, 2));
      },
      ErrorCode::kShapeMismatch,
      "hidden size 100 of qkv 'qkv' [2,5,100] is not divisible by num_heads + 2 * num_kv_heads = 8");
  expect_error(
      [&](GraphBuilder& g) {
        g.attention_qkv("attn", g.input("qkv", {2, 1, 5, 96}), std::nullopt, std::nullopt, options(4, 0));
      },
      ErrorCode::kShapeMismatch, "qkv 'qkv' [2,1,5,96]: attention_qkv takes qkv as [B, S, (Hq + 2*Hkv)*D]");
  expect_error(
      [&](GraphBuilder& g) {
        g.attention_qkv("attn", g.input("qkv", {2, 5, 96}), std::nullopt, std::nullopt, options(4, 3));
      },
      ErrorCode::kInvalidArgument, "num_heads 4 is not a multiple of num_kv_heads 3");
  expect_error(
      [&](GraphBuilder& g) {
        g.attention_qkv("attn", g.input("qkv", {2, 5, 96}), g.input("m", {2, 1, 5, 6}), std::nullopt, options(4, 0));
      },
      ErrorCode::kShapeMismatch, "mask 'm' [2,1,5,6] does not broadcast to [B, Hq, Sq, Sk] = [2,4,5,5]");
  expect_error(
      [&](GraphBuilder& g) {
        g.attention_qkv("attn", g.input("qkv", {2, 5, 96}, DType::kI64), std::nullopt, std::nullopt, options(4, 0));
      },
      ErrorCode::kTypeMismatch, "qkv 'qkv' is i64 but must be f32");

  // A key length outside [0, S] throws from run, naming the packed input.
  GraphBuilder g;
  g.output("y", g.attention_qkv("attn", g.input("qkv", {2, 5, 12}), std::nullopt, g.input("len", {2}, DType::kI64),
                                options(1, 0)));
  Model model = compile(g.build());
  Session session(model);
  try {
    session.run({{"qkv", random_tensor({2, 5, 12}, 371)}, {"len", i64_tensor({2}, {6, 5})}});
    ADD_FAILURE() << "no error for key length 6";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
    EXPECT_NE(std::string(e.what()).find(
                  "node 'attn' (attention): key_lengths 'len'[0] = 6 is outside [0, 5] (Sk of qkv 'qkv' [2,5,12])"),
              std::string::npos)
        << e.what();
  }
}
}  // namespace
}  // namespace quarks
