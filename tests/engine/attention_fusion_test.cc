// Compile-time recognition of spelled-out attention (engine/passes/fuse_attention.cc): the shapes
// exporters write (BERT-style head views, GPT causal where(), nn.MultiheadAttention's sequence-first
// views, plain 4-D products) become one attention node, and the results match a double-precision
// reference of softmax(q·kᵀ·scale + mask)·v computed here from the inputs.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <limits>

#include "engine/test_util.hpp"

namespace quarks {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

using test::scalar_constant;

// Element (b, h, s, d) of a tensor, whatever its layout.
using Accessor = std::function<double(std::int64_t b, std::int64_t h, std::int64_t s, std::int64_t d)>;
// Additive mask value for (b, h, i, j).
using MaskFn = std::function<double(std::int64_t b, std::int64_t h, std::int64_t i, std::int64_t j)>;

// Reference attention; result in [B, H, Sq, D] order.
std::vector<double> reference(std::int64_t batch, std::int64_t heads, std::int64_t sq, std::int64_t sk,
                              std::int64_t dim, double scale, const Accessor& q, const Accessor& k, const Accessor& v,
                              const MaskFn& mask) {
  std::vector<double> out;
  for (std::int64_t b = 0; b < batch; ++b) {
    for (std::int64_t h = 0; h < heads; ++h) {
      for (std::int64_t i = 0; i < sq; ++i) {
        std::vector<double> s(static_cast<std::size_t>(sk));
        double mx = -std::numeric_limits<double>::infinity();
        for (std::int64_t j = 0; j < sk; ++j) {
          double dot = 0;
          for (std::int64_t d = 0; d < dim; ++d) dot += q(b, h, i, d) * k(b, h, j, d);
          s[static_cast<std::size_t>(j)] = dot * scale + (mask ? mask(b, h, i, j) : 0.0);
          mx = std::max(mx, s[static_cast<std::size_t>(j)]);
        }
        double sum = 0;
        for (double& x : s) sum += (x = std::exp(x - mx));
        for (std::int64_t d = 0; d < dim; ++d) {
          double acc = 0;
          for (std::int64_t j = 0; j < sk; ++j) acc += s[static_cast<std::size_t>(j)] / sum * v(b, h, j, d);
          out.push_back(acc);
        }
      }
    }
  }
  return out;
}

// [B, S, H·D] tensor viewed as (b, h, s, d).
Accessor bshd(const Tensor& t, std::int64_t seq, std::int64_t heads, std::int64_t dim) {
  return [&t, seq, heads, dim](std::int64_t b, std::int64_t h, std::int64_t s, std::int64_t d) {
    return static_cast<double>(t.f32()[((b * seq + s) * heads + h) * dim + d]);
  };
}
// [B, H, S, D] tensor.
Accessor bhsd(const Tensor& t, std::int64_t heads, std::int64_t seq, std::int64_t dim) {
  return [&t, seq, heads, dim](std::int64_t b, std::int64_t h, std::int64_t s, std::int64_t d) {
    return static_cast<double>(t.f32()[((b * heads + h) * seq + s) * dim + d]);
  };
}
// Reorders a [B, H, S, D] reference into [B, S, H, D].
std::vector<double> to_bshd(const std::vector<double>& r, std::int64_t batch, std::int64_t heads, std::int64_t seq,
                            std::int64_t dim) {
  std::vector<double> out(r.size());
  for (std::int64_t b = 0; b < batch; ++b)
    for (std::int64_t h = 0; h < heads; ++h)
      for (std::int64_t s = 0; s < seq; ++s)
        for (std::int64_t d = 0; d < dim; ++d)
          out[static_cast<std::size_t>(((b * seq + s) * heads + h) * dim + d)] =
              r[static_cast<std::size_t>(((b * heads + h) * seq + s) * dim + d)];
  return out;
}

// x [B, S, H·D] -> [B, H, S, D] (or [B, H, D, S] for kᵀ) the way BERT code writes it.
Value heads_of(GraphBuilder& g, const std::string& name, Value x, std::int64_t heads, std::int64_t dim,
               bool transposed) {
  auto r = g.reshape(name + ".view", x, {0, 0, heads, dim});
  return g.transpose(name + ".t", r, transposed ? std::vector<int>{0, 2, 3, 1} : std::vector<int>{0, 2, 1, 3});
}

constexpr std::int64_t kB = 2, kS = 19, kH = 3, kD = 16, kE = kH * kD;

// BERT-style: head views, q·kᵀ / sqrt(D) + mask [B,1,1,S], softmax, ·v, back to [B, S, E].
Graph bert_style(const std::vector<Dim>& dims, bool scores_as_output) {
  GraphBuilder g;
  auto q = g.input("q", dims), k = g.input("k", dims), v = g.input("v", dims);
  auto mask = g.input("mask", {dims[0], 1, 1, dims[1]});
  auto s = g.matmul("qk", heads_of(g, "q", q, kH, kD, false), heads_of(g, "k", k, kH, kD, true));
  s = g.div("scale", s, scalar_constant(g, "sqrt_d", std::sqrt(static_cast<float>(kD))));
  s = g.add("masked", s, mask);
  auto p = g.softmax("p", s, -1);
  auto o = g.matmul("pv", p, heads_of(g, "v", v, kH, kD, false));
  o = g.transpose("back", o, {0, 2, 1, 3});
  g.output("y", g.reshape("merge", o, {0, 0, kE}));
  if (scores_as_output) g.output("scores", s);
  return g.build();
}

struct BertInputs {
  Tensor q = test::random_tensor(Shape{kB, kS, kE}, 1, -2.0f, 2.0f);
  Tensor k = test::random_tensor(Shape{kB, kS, kE}, 2, -2.0f, 2.0f);
  Tensor v = test::random_tensor(Shape{kB, kS, kE}, 3);
  Tensor mask{DType::kF32, Shape{kB, 1, 1, kS}};
  BertInputs() {
    for (std::int64_t b = 0; b < kB; ++b)
      for (std::int64_t j = 0; j < kS; ++j) mask.f32()[b * kS + j] = j >= kS - 4 * b ? -10000.0f : 0.0f;
  }
  std::vector<double> expected() const {
    const std::vector<double> r = reference(
        kB, kH, kS, kS, kD, 1.0 / std::sqrt(static_cast<double>(kD)), bshd(q, kS, kH, kD), bshd(k, kS, kH, kD),
        bshd(v, kS, kH, kD),
        [this](std::int64_t b, std::int64_t, std::int64_t, std::int64_t j) { return mask.f32()[b * kS + j]; });
    return to_bshd(r, kB, kH, kS, kD);
  }
};

TEST(AttentionFusion, BertStyleHeadViewsBecomeOneAttentionOnTheUntransposedTensors) {
  const Model model = compile(bert_style({kB, kS, kE}, false));
  const std::string d = model.describe();
  EXPECT_THAT(d, HasSubstr("attention("));
  EXPECT_THAT(d, Not(HasSubstr("softmax")));
  EXPECT_THAT(d, Not(HasSubstr("transpose"))) << d;
  EXPECT_THAT(d, Not(HasSubstr("matmul"))) << d;
  const BertInputs in;
  Session s(model);
  const Tensor y = s.run({{"q", in.q}, {"k", in.k}, {"v", in.v}, {"mask", in.mask}}).at("y");
  EXPECT_EQ(y.shape(), (Shape{kB, kS, kE}));
  EXPECT_LE(test::max_abs_diff(y, in.expected()), 2e-6);
}

TEST(AttentionFusion, SymbolicBatchAndSequenceAreFused) {
  const Model model = compile(bert_style({"batch", "seq", kE}, false));
  EXPECT_THAT(model.describe(), HasSubstr("attention("));
  EXPECT_THAT(model.describe(), Not(HasSubstr("transpose")));
  const BertInputs in;
  Session s(model);
  const Tensor y = s.run({{"q", in.q}, {"k", in.k}, {"v", in.v}, {"mask", in.mask}}).at("y");
  EXPECT_LE(test::max_abs_diff(y, in.expected()), 2e-6);
}

TEST(AttentionFusion, ScoresNeededElsewhereAreNotFused) {
  const Model model = compile(bert_style({kB, kS, kE}, true));
  EXPECT_THAT(model.describe(), Not(HasSubstr("attention")));
  EXPECT_THAT(model.describe(), HasSubstr("softmax"));
  const BertInputs in;
  Session s(model);
  const Tensor y = s.run({{"q", in.q}, {"k", in.k}, {"v", in.v}, {"mask", in.mask}}).at("y");
  EXPECT_LE(test::max_abs_diff(y, in.expected()), 2e-6);
}

// 4-D inputs, q pre-scaled, kᵀ through trans_b, a constant boolean causal mask applied with where().
Graph gpt_style(std::int64_t sq, std::int64_t sk, const std::function<bool(std::int64_t, std::int64_t)>& hidden) {
  GraphBuilder g;
  auto q = g.input("q", {kB, kH, sq, kD});
  auto k = g.input("k", {kB, kH, sk, kD});
  auto v = g.input("v", {kB, kH, sk, kD});
  Tensor cond(DType::kBool, Shape{1, 1, sq, sk});
  for (std::int64_t i = 0; i < sq; ++i)
    for (std::int64_t j = 0; j < sk; ++j) cond.boolean()[i * sk + j] = hidden(i, j) ? 1 : 0;
  auto qs = g.mul("prescale", q, scalar_constant(g, "c1", 0.5f));
  auto s = g.matmul("qk", qs, k, false, true);
  s = g.mul("scale", scalar_constant(g, "c2", 0.25f), s);
  s = g.where("masked", g.constant("cond", cond), scalar_constant(g, "fill", -std::numeric_limits<float>::infinity()),
              s);
  g.output("y", g.matmul("pv", g.softmax("p", s, 3), v));
  return g.build();
}

void check_gpt_style(std::int64_t sq, std::int64_t sk, const std::function<bool(std::int64_t, std::int64_t)>& hidden,
                     const std::string& expect_op) {
  const Model model = compile(gpt_style(sq, sk, hidden));
  EXPECT_THAT(model.describe(), HasSubstr(expect_op)) << model.describe();
  EXPECT_EQ(model.node_count(), 1u) << model.describe();
  const Tensor q = test::random_tensor(Shape{kB, kH, sq, kD}, 4, -2.0f, 2.0f);
  const Tensor k = test::random_tensor(Shape{kB, kH, sk, kD}, 5, -2.0f, 2.0f);
  const Tensor v = test::random_tensor(Shape{kB, kH, sk, kD}, 6);
  Session s(model);
  const Tensor y = s.run({{"q", q}, {"k", k}, {"v", v}}).at("y");
  const std::vector<double> want =
      reference(kB, kH, sq, sk, kD, 0.125, bhsd(q, kH, sq, kD), bhsd(k, kH, sk, kD), bhsd(v, kH, sk, kD),
                [&](std::int64_t, std::int64_t, std::int64_t i, std::int64_t j) {
                  return hidden(i, j) ? -std::numeric_limits<double>::infinity() : 0.0;
                });
  EXPECT_LE(test::max_abs_diff(y, want), 2e-6);
}

TEST(AttentionFusion, CausalWhereMaskBecomesTheCausalOption) {
  check_gpt_style(
      kS, kS, [](std::int64_t i, std::int64_t j) { return j > i; }, "attention[causal](");
}

TEST(AttentionFusion, CausalMaskAlignedToTheEndWithFewerQueries) {
  const std::int64_t sq = 5, sk = 23;
  check_gpt_style(
      sq, sk, [&](std::int64_t i, std::int64_t j) { return j > i + (sk - sq); }, "attention[causal](");
}

TEST(AttentionFusion, OtherConstantWhereMaskBecomesAnAdditiveMask) {
  // Every query keeps at least key 0 visible, so no row is fully hidden.
  check_gpt_style(
      kS, kS, [](std::int64_t i, std::int64_t j) { return j > 0 && (i * 7 + j * 3) % 5 == 0; }, "attention(");
}

TEST(AttentionFusion, SoftmaxOverAnotherAxisIsNotFused) {
  GraphBuilder g;
  auto q = g.input("q", {kB, kH, kS, kD});
  auto k = g.input("k", {kB, kH, kS, kD});
  auto v = g.input("v", {kB, kH, kS, kD});
  g.output("y", g.matmul("pv", g.softmax("p", g.matmul("qk", q, k, false, true), 2), v));
  const Model model = compile(g.build());
  EXPECT_THAT(model.describe(), Not(HasSubstr("attention")));
}

TEST(AttentionFusion, SequenceFirstMultiheadAttentionViewsUseTheThreeDLayout) {
  // nn.MultiheadAttention (torch 1.13): x [S, B, E] viewed as [S, B·H, D], transposed to [B·H, S, D];
  // q scaled before the product; k transposed straight to [B·H, D, S]; result back to [S·B, E].
  GraphBuilder g;
  auto q = g.input("q", {kS, kB, kE}), k = g.input("k", {kS, kB, kE}), v = g.input("v", {kS, kB, kE});
  auto view = [&](const std::string& n, Value x, std::vector<int> perm) {
    return g.transpose(n + ".t", g.reshape(n + ".view", x, {kS, kB * kH, kD}), perm);
  };
  auto qs = g.div("q.scale", view("q", q, {1, 0, 2}), scalar_constant(g, "sqrt_d", 4.0f));
  auto s = g.matmul("qk", qs, view("k", k, {1, 2, 0}));
  auto o = g.matmul("pv", g.softmax("p", s, -1), view("v", v, {1, 0, 2}));
  g.output("y", g.reshape("merge", g.transpose("back", o, {1, 0, 2}), {kS * kB, kE}));
  const Model model = compile(g.build());
  EXPECT_THAT(model.describe(), HasSubstr("attention("));
  EXPECT_THAT(model.describe(), Not(HasSubstr("transpose"))) << model.describe();
  const Tensor tq = test::random_tensor(Shape{kS, kB, kE}, 7, -2.0f, 2.0f);
  const Tensor tk = test::random_tensor(Shape{kS, kB, kE}, 8, -2.0f, 2.0f);
  const Tensor tv = test::random_tensor(Shape{kS, kB, kE}, 9);
  Session sess(model);
  const Tensor y = sess.run({{"q", tq}, {"k", tk}, {"v", tv}}).at("y");
  ASSERT_EQ(y.shape(), (Shape{kS * kB, kE}));
  // Element (b, h, s, d) of a [S, B, E] tensor.
  auto sbe = [](const Tensor& t) {
    return [&t](std::int64_t b, std::int64_t h, std::int64_t s, std::int64_t d) {
      return static_cast<double>(t.f32()[(s * kB + b) * kE + h * kD + d]);
    };
  };
  const std::vector<double> r = reference(kB, kH, kS, kS, kD, 0.25, sbe(tq), sbe(tk), sbe(tv), nullptr);
  std::vector<double> want(r.size());
  for (std::int64_t b = 0; b < kB; ++b)
    for (std::int64_t h = 0; h < kH; ++h)
      for (std::int64_t s = 0; s < kS; ++s)
        for (std::int64_t d = 0; d < kD; ++d)
          want[static_cast<std::size_t>((s * kB + b) * kE + h * kD + d)] =
              r[static_cast<std::size_t>(((b * kH + h) * kS + s) * kD + d)];
  EXPECT_LE(test::max_abs_diff(y, want), 2e-6);
}

TEST(AttentionFusion, FourDWithATransposedKeyKeepsTheFourDLayout) {
  // Head views with no transpose back (the 4-D result is the output): kᵀ's transpose becomes k's.
  GraphBuilder g;
  auto q = g.input("q", {kB, kS, kE}), k = g.input("k", {kB, kS, kE}), v = g.input("v", {kB, kS, kE});
  auto s = g.matmul("qk", heads_of(g, "q", q, kH, kD, false), heads_of(g, "k", k, kH, kD, true));
  g.output("y", g.matmul("pv", g.softmax("p", s, -1), heads_of(g, "v", v, kH, kD, false)));
  const Model model = compile(g.build());
  EXPECT_THAT(model.describe(), HasSubstr("attention("));
  EXPECT_THAT(model.describe(), Not(HasSubstr("matmul")));
  const Tensor tq = test::random_tensor(Shape{kB, kS, kE}, 10, -2.0f, 2.0f);
  const Tensor tk = test::random_tensor(Shape{kB, kS, kE}, 11, -2.0f, 2.0f);
  const Tensor tv = test::random_tensor(Shape{kB, kS, kE}, 12);
  Session sess(model);
  const Tensor y = sess.run({{"q", tq}, {"k", tk}, {"v", tv}}).at("y");
  ASSERT_EQ(y.shape(), (Shape{kB, kH, kS, kD}));
  const std::vector<double> want =
      reference(kB, kH, kS, kS, kD, 1.0, bshd(tq, kS, kH, kD), bshd(tk, kS, kH, kD), bshd(tv, kS, kH, kD), nullptr);
  EXPECT_LE(test::max_abs_diff(y, want), 2e-6);
}

TEST(AttentionFusion, PlainTransposeOfKeysLeavesNoTranspose) {
  // q, k, v already [B, H, S, D]; kᵀ = transpose(k, {0, 1, 3, 2}): attention reads k as it is.
  GraphBuilder g;
  auto q = g.input("q", {kB, kH, kS, kD}), k = g.input("k", {kB, kH, kS, kD}), v = g.input("v", {kB, kH, kS, kD});
  auto s = g.mul("scale", g.matmul("qk", q, g.transpose("kt", k, {0, 1, 3, 2})), scalar_constant(g, "c", 0.125f));
  g.output("y", g.matmul("pv", g.softmax("p", s, -1), v));
  const Model model = compile(g.build());
  EXPECT_THAT(model.describe(), HasSubstr("attention(q, k, v)")) << model.describe();
  EXPECT_THAT(model.describe(), Not(HasSubstr("transpose"))) << model.describe();
  const Tensor tq = test::random_tensor(Shape{kB, kH, kS, kD}, 14, -2.0f, 2.0f);
  const Tensor tk = test::random_tensor(Shape{kB, kH, kS, kD}, 15, -2.0f, 2.0f);
  const Tensor tv = test::random_tensor(Shape{kB, kH, kS, kD}, 16);
  Session sess(model);
  const Tensor y = sess.run({{"q", tq}, {"k", tk}, {"v", tv}}).at("y");
  const std::vector<double> want =
      reference(kB, kH, kS, kS, kD, 0.125, bhsd(tq, kH, kS, kD), bhsd(tk, kH, kS, kD), bhsd(tv, kH, kS, kD), nullptr);
  EXPECT_LE(test::max_abs_diff(y, want), 2e-6);
}

TEST(AttentionFusion, HeadViewsOfOneSplitProjectionReadThePackedTensor) {
  // GPT code: qkv = x·W_qkv; q, k, v = qkv.split(E, dim=2); head views of each; causal via where().
  GraphBuilder g;
  auto qkv = g.input("qkv", {kB, kS, 3 * kE});
  const std::vector<Value> parts = g.split("split", qkv, 2, {kE, kE, kE});
  auto s = g.matmul("qk", heads_of(g, "q", parts[0], kH, kD, false), heads_of(g, "k", parts[1], kH, kD, true));
  s = g.mul("scale", s, scalar_constant(g, "c", 0.25f));
  Tensor cond(DType::kBool, Shape{kS, kS});
  for (std::int64_t i = 0; i < kS; ++i)
    for (std::int64_t j = 0; j < kS; ++j) cond.boolean()[i * kS + j] = j > i ? 1 : 0;
  s = g.where("masked", g.constant("cond", cond), scalar_constant(g, "fill", -std::numeric_limits<float>::infinity()),
              s);
  auto o = g.matmul("pv", g.softmax("p", s, -1), heads_of(g, "v", parts[2], kH, kD, false));
  g.output("y", g.reshape("merge", g.transpose("back", o, {0, 2, 1, 3}), {kB, kS, kE}));
  const Model model = compile(g.build());
  EXPECT_THAT(model.describe(), HasSubstr("attention[qkv,causal](qkv)")) << model.describe();
  EXPECT_THAT(model.describe(), Not(HasSubstr("split"))) << model.describe();
  const Tensor x = test::random_tensor(Shape{kB, kS, 3 * kE}, 13, -2.0f, 2.0f);
  Session sess(model);
  const Tensor y = sess.run({{"qkv", x}}).at("y");
  auto part = [&x](std::int64_t offset) {
    return [&x, offset](std::int64_t b, std::int64_t h, std::int64_t s, std::int64_t d) {
      return static_cast<double>(x.f32()[(b * kS + s) * 3 * kE + offset + h * kD + d]);
    };
  };
  const std::vector<double> r = reference(kB, kH, kS, kS, kD, 0.25, part(0), part(kE), part(2 * kE),
                                          [](std::int64_t, std::int64_t, std::int64_t i, std::int64_t j) {
                                            return j > i ? -std::numeric_limits<double>::infinity() : 0.0;
                                          });
  EXPECT_LE(test::max_abs_diff(y, to_bshd(r, kB, kH, kS, kD)), 2e-6);
}

TEST(AttentionFusion, ThreeProjectionsOfOneInputBecomeOnePackedDense) {
  // Grouped-query attention over three dense projections (with bias) of one x: one dense with
  // [Wq | Wk | Wv] feeds the packed attention.
  constexpr std::int64_t kIn = 20, kKvHeads = 1;
  GraphBuilder g;
  auto x = g.input("x", {"batch", kS, kIn});
  const Tensor wq = test::random_tensor(Shape{kIn, kE}, 20), bq = test::random_tensor(Shape{kE}, 21);
  const Tensor wk = test::random_tensor(Shape{kIn, kKvHeads * kD}, 22),
               bk = test::random_tensor(Shape{kKvHeads * kD}, 23);
  const Tensor wv = test::random_tensor(Shape{kIn, kKvHeads * kD}, 24),
               bv = test::random_tensor(Shape{kKvHeads * kD}, 25);
  auto proj = [&](const std::string& n, const Tensor& w, const Tensor& b) {
    return g.add(n + ".add", g.dense(n, x, g.constant(n + ".w", w)), g.constant(n + ".b", b));
  };
  AttentionOptions opt;
  opt.num_heads = static_cast<int>(kH);
  opt.num_kv_heads = static_cast<int>(kKvHeads);
  g.output("y", g.attention("att", proj("q", wq, bq), proj("k", wk, bk), proj("v", wv, bv), std::nullopt, std::nullopt,
                            opt));
  const Model model = compile(g.build());
  EXPECT_EQ(model.node_count(), 2u) << model.describe();
  EXPECT_THAT(model.describe(), HasSubstr("q+k+v = dense+bias(x,"));
  EXPECT_THAT(model.describe(), HasSubstr("attention[qkv]("));
  const Tensor tx = test::random_tensor(Shape{kB, kS, kIn}, 26);
  Session sess(model);
  const Tensor y = sess.run({{"x", tx}}).at("y");
  // Projections in double, then the reference attention (query head h reads kv head 0).
  auto project = [&](const Tensor& w, const Tensor& b) {
    const std::int64_t n = w.shape()[1];
    std::vector<double> out(static_cast<std::size_t>(kB * kS * n));
    for (std::int64_t r = 0; r < kB * kS; ++r)
      for (std::int64_t c = 0; c < n; ++c) {
        double acc = b.f32()[c];
        for (std::int64_t i = 0; i < kIn; ++i) acc += double{tx.f32()[r * kIn + i]} * w.f32()[i * n + c];
        out[static_cast<std::size_t>(r * n + c)] = acc;
      }
    return out;
  };
  const std::vector<double> pq = project(wq, bq), pk = project(wk, bk), pv = project(wv, bv);
  auto at = [](const std::vector<double>& p, std::int64_t heads, bool shared) {
    return [&p, heads, shared](std::int64_t b, std::int64_t h, std::int64_t s, std::int64_t d) {
      return p[static_cast<std::size_t>(((b * kS + s) * heads + (shared ? 0 : h)) * kD + d)];
    };
  };
  const std::vector<double> r = reference(kB, kH, kS, kS, kD, 1.0 / std::sqrt(double{kD}), at(pq, kH, false),
                                          at(pk, kKvHeads, true), at(pv, kKvHeads, true), nullptr);
  EXPECT_LE(test::max_abs_diff(y, to_bshd(r, kB, kH, kS, kD)), 5e-6);
}

}  // namespace
}  // namespace quarks
