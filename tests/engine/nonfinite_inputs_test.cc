// NaN and ±Inf inputs through whole models: the run completes, the non-finite values propagate as IEEE
// 754 arithmetic says, and rows that do not depend on a poisoned row are bit-identical to a clean run.
// (Each op's special values are checked by its kernel tests in tests/ops and by ops_through_model_test;
// these check blocks made of several fused ops.)
//
//   - dense + bias -> dense: against a scalar double reference, element class by element class (NaN
//     where it is NaN, the same infinity where it is infinite, close where finite);
//   - a SwiGLU MLP (gated dense + dense): against a double reference likewise;
//   - an encoder layer (attention mixes the rows of a sequence): the poisoned batch element is NaN
//     throughout, the other batch element is bit-identical to the clean run;
//   - a Llama decoder layer (causal attention): in the poisoned sequence the rows before the poison do
//     not see it and stay bit-identical, the rows from it on are NaN; the other sequence is untouched.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "engine/test_util.hpp"

namespace quarks {
namespace {

using test::normal_tensor;

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
constexpr float kInf = std::numeric_limits<float>::infinity();

Tensor copy(const Tensor& t) {
  Tensor c(t.dtype(), t.shape());
  std::memcpy(c.data(), t.data(), t.bytes());
  return c;
}

// Elements [begin, end) of a and b have the same bits.
bool same_bits(const Tensor& a, const Tensor& b, std::int64_t begin, std::int64_t end) {
  return std::memcmp(a.f32() + begin, b.f32() + begin, sizeof(float) * static_cast<std::size_t>(end - begin)) == 0;
}

// got matches the double reference: NaN where it is NaN, the same infinity, else within tol·scale.
void expect_ieee_match(const Tensor& got, const std::vector<double>& want, double tol, const std::string& what,
                       bool infinities_expected) {
  double scale = 1;
  for (double w : want) {
    if (std::isfinite(w)) scale = std::max(scale, std::fabs(w));
  }
  int nan = 0, inf = 0, reported = 0;
  for (std::int64_t i = 0; i < got.numel(); ++i) {
    const double g = got.f32()[i], w = want[static_cast<std::size_t>(i)];
    bool ok;
    if (std::isnan(w)) {
      ok = std::isnan(g);
      ++nan;
    } else if (std::isinf(w)) {
      ok = g == w;
      ++inf;
    } else {
      ok = std::isfinite(g) && std::fabs(g - w) <= tol * scale;
    }
    if (!ok && reported++ < 5) ADD_FAILURE() << what << " element " << i << ": got " << g << ", IEEE reference " << w;
  }
  // The poison reached the output in both forms (the test would be vacuous otherwise).
  EXPECT_GT(nan, 0) << what;
  if (infinities_expected) {
    EXPECT_GT(inf, 0) << what;
  }
}

// Row-major x [m, k] · w [k, n] (+ b) in double, with IEEE special values.
std::vector<double> dense_ref(const std::vector<double>& x, const Tensor& w, const Tensor* b, std::int64_t m) {
  const std::int64_t k = w.shape()[0], n = w.shape()[1];
  std::vector<double> y(static_cast<std::size_t>(m * n));
  for (std::int64_t i = 0; i < m; ++i) {
    for (std::int64_t j = 0; j < n; ++j) {
      double acc = b ? b->f32()[j] : 0.0;
      for (std::int64_t p = 0; p < k; ++p) acc += x[i * k + p] * static_cast<double>(w.f32()[p * n + j]);
      y[i * n + j] = acc;
    }
  }
  return y;
}

// Rows of x [m, k] poisoned: a NaN, a +Inf, a -Inf, a +Inf and a -Inf in different columns.
constexpr std::int64_t kRows = 37, kK = 24;
const std::int64_t kPoisoned[] = {1, 2, 3, 20, 36};

Tensor poison_rows(const Tensor& clean) {
  Tensor x = copy(clean);
  float* p = x.f32();
  p[1 * kK + 3] = kNaN;
  p[2 * kK + 5] = kInf;
  p[3 * kK + 7] = -kInf;
  p[20 * kK + 0] = kInf;
  p[20 * kK + 23] = -kInf;
  p[36 * kK + 11] = kInf;
  p[36 * kK + 12] = kNaN;
  return x;
}

bool is_poisoned(std::int64_t row) {
  for (std::int64_t r : kPoisoned) {
    if (r == row) return true;
  }
  return false;
}

TEST(NonFiniteInputs, DenseChainFollowsIeeeAndLeavesCleanRowsAlone) {
  constexpr std::int64_t kN1 = 40, kN2 = 16;
  const Tensor w1 = normal_tensor({kK, kN1}, 1, 0.3f), b1 = normal_tensor({kN1}, 2, 0.1f);
  const Tensor w2 = normal_tensor({kN1, kN2}, 3, 0.3f);
  GraphBuilder g;
  const Value x = g.input("x", {"rows", kK});
  const Value h = g.dense("d1", x, g.constant("w1", w1), g.constant("b1", b1));
  g.output("h", h);
  g.output("y", g.dense("d2", h, g.constant("w2", w2)));
  const Graph graph = g.build();
  const Tensor clean = normal_tensor({kRows, kK}, 4, 1.0f);
  const Tensor poisoned = poison_rows(clean);
  const std::vector<double> h_ref = dense_ref(test::to_double(poisoned), w1, &b1, kRows);
  const std::vector<double> y_ref = dense_ref(h_ref, w2, nullptr, kRows);
  for (int threads : {1, 2}) {
    SCOPED_TRACE(std::to_string(threads) + " threads");
    Session s(compile(graph, {.threads = threads}));
    const auto want = s.run({{"x", clean}});
    const auto got = s.run({{"x", poisoned}});
    // h: a row with one infinity is ±inf by the sign of the weight; y sums those of both signs: NaN.
    expect_ieee_match(got.at("h"), h_ref, 1e-5, "h", true);
    expect_ieee_match(got.at("y"), y_ref, 1e-5, "y", false);
    for (std::int64_t r = 0; r < kRows; ++r) {
      if (is_poisoned(r)) continue;
      EXPECT_TRUE(same_bits(got.at("h"), want.at("h"), r * kN1, (r + 1) * kN1)) << "row " << r;
      EXPECT_TRUE(same_bits(got.at("y"), want.at("y"), r * kN2, (r + 1) * kN2)) << "row " << r;
    }
  }
}

TEST(NonFiniteInputs, GatedMlpFollowsIeeeAndLeavesCleanRowsAlone) {
  constexpr std::int64_t kF = 64;
  const Tensor wg = normal_tensor({kK, kF}, 11, 0.3f), wu = normal_tensor({kK, kF}, 12, 0.3f);
  const Tensor wd = normal_tensor({kF, kK}, 13, 0.2f);
  GraphBuilder g;
  const Value x = g.input("x", {"rows", kK});
  const Value gate = g.dense("gate", x, g.constant("wg", wg));
  const Value up = g.dense("up", x, g.constant("wu", wu));
  const Value h = g.output_gate("swiglu", gate, up, Activation::silu(), Activation::identity());
  g.output("y", g.dense("down", h, g.constant("wd", wd)));
  const Graph graph = g.build();
  const Tensor clean = normal_tensor({kRows, kK}, 14, 1.0f);
  const Tensor poisoned = poison_rows(clean);
  // silu(v) = v·σ(v) = v / (1 + e^-v): silu(+inf) = +inf, silu(-inf) = -inf/inf = NaN (the limit is 0,
  // but 0 · ±inf is NaN as well, so the product with `up` is NaN either way).
  const std::vector<double> xd = test::to_double(poisoned);
  const std::vector<double> gr = dense_ref(xd, wg, nullptr, kRows), ur = dense_ref(xd, wu, nullptr, kRows);
  std::vector<double> hr(gr.size());
  for (std::size_t i = 0; i < hr.size(); ++i) hr[i] = gr[i] / (1.0 + std::exp(-gr[i])) * ur[i];
  const std::vector<double> y_ref = dense_ref(hr, wd, nullptr, kRows);
  for (int threads : {1, 2}) {
    SCOPED_TRACE(std::to_string(threads) + " threads");
    const Model model = compile(graph, {.threads = threads});
    EXPECT_NE(model.describe().find("gated_dense"), std::string::npos) << model.describe();
    Session s(model);
    const Tensor want = s.run({{"x", clean}}).at("y");
    const Tensor got = s.run({{"x", poisoned}}).at("y");
    // Every poisoned row is NaN: each has an infinite gate of both signs or a NaN.
    for (std::int64_t r : kPoisoned) {
      for (std::int64_t j = 0; j < kK; ++j) EXPECT_TRUE(std::isnan(y_ref[r * kK + j])) << r << "," << j;
    }
    // Finite rows close to the reference, NaN rows NaN (expect_ieee_match also wants an infinity,
    // which this model's output has none of).
    int reported = 0;
    for (std::int64_t i = 0; i < got.numel(); ++i) {
      const double gv = got.f32()[i], w = y_ref[static_cast<std::size_t>(i)];
      const bool ok = std::isnan(w) ? std::isnan(gv) : std::isfinite(gv) && std::fabs(gv - w) <= 1e-4;
      if (!ok && reported++ < 5) ADD_FAILURE() << "y element " << i << ": got " << gv << ", reference " << w;
    }
    for (std::int64_t r = 0; r < kRows; ++r) {
      if (is_poisoned(r)) continue;
      EXPECT_TRUE(same_bits(got, want, r * kK, (r + 1) * kK)) << "row " << r;
    }
  }
}

constexpr std::int64_t kD = 64, kHeads = 4, kFfn = 128, kSeq = 9, kPoisonAt = 4;

// x [2, kSeq, kD] with batch element 0, position kPoisonAt poisoned by `what`.
Tensor poisoned_batch(const Tensor& clean, int what) {
  Tensor x = copy(clean);
  float* row = x.f32() + kPoisonAt * kD;
  if (what == 0) row[10] = kNaN;
  if (what == 1) row[10] = kInf;
  if (what == 2) row[10] = -kInf, row[40] = kInf;
  return x;
}

TEST(NonFiniteInputs, EncoderLayerKeepsTheOtherSequenceClean) {
  const float s = 0.125f;
  EncoderLayerWeights w;
  w.attention.w_qkv = normal_tensor({kD, 3 * kD}, 21, s);
  w.attention.b_qkv = normal_tensor({3 * kD}, 22, 0.1f);
  w.attention.w_out = normal_tensor({kD, kD}, 23, s);
  w.attention.b_out = normal_tensor({kD}, 24, 0.1f);
  w.ln1_scale = normal_tensor({kD}, 25, 0.1f, 1.0f);
  w.ln1_bias = normal_tensor({kD}, 26, 0.1f);
  w.w_ffn1 = normal_tensor({kD, kFfn}, 27, s);
  w.b_ffn1 = normal_tensor({kFfn}, 28, 0.1f);
  w.w_ffn2 = normal_tensor({kFfn, kD}, 29, 0.09f);
  w.b_ffn2 = normal_tensor({kD}, 30, 0.1f);
  w.ln2_scale = normal_tensor({kD}, 31, 0.1f, 1.0f);
  w.ln2_bias = normal_tensor({kD}, 32, 0.1f);
  GraphBuilder g;
  const Value x = g.input("x", {"batch", "seq", kD});
  g.output("y", transformer_encoder_layer(g, "enc", x, w, {.num_heads = kHeads, .activation = Activation::gelu()}));
  const Graph graph = g.build();
  const Tensor clean = normal_tensor({2, kSeq, kD}, 33, 1.0f);
  const std::int64_t half = kSeq * kD;
  for (int threads : {1, 2}) {
    Session session(compile(graph, {.threads = threads}));
    const Tensor want = session.run({{"x", clean}}).at("y");
    for (int what = 0; what < 3; ++what) {
      SCOPED_TRACE(std::to_string(threads) + " threads, poison " + std::to_string(what));
      const Tensor got = session.run({{"x", poisoned_batch(clean, what)}}).at("y");
      // Sequence 1 never meets the poison.
      EXPECT_TRUE(same_bits(got, want, half, 2 * half));
      // Sequence 0: the poisoned row's key meets every query. NaN: every score with it is NaN. An
      // infinity: its q, k and v rows are infinities of mixed signs (x·W with W of both signs), so each
      // score q_i·k is a sum of +inf and -inf terms, NaN. Softmax over a NaN score is NaN, and so is
      // everything after it: the whole sequence is NaN.
      int finite = 0;
      for (std::int64_t i = 0; i < half; ++i) finite += !std::isnan(got.f32()[i]);
      EXPECT_EQ(finite, 0);
    }
  }
}

// Positions before the poison: on the diagonal key block of a causal tile the P·V product used to run
// register blocks of up to 6 query rows over the keys the block's last row sees; the earlier rows'
// weights for the later keys are exactly 0, but 0 · NaN (or 0 · inf) in V is NaN, so a non-finite value
// reached the positions before it in its 6-row block (and no others).
TEST(NonFiniteInputs, CausalDecoderLayerKeepsEarlierPositionsAndTheOtherSequenceClean) {
  constexpr std::int64_t kKvHeads = 2, kHeadDim = 16;
  LlamaLayerWeights w;
  w.attn_norm = normal_tensor({kD}, 41, 0.1f, 1.0f);
  w.mlp_norm = normal_tensor({kD}, 42, 0.1f, 1.0f);
  w.wq = normal_tensor({kD, kHeads * kHeadDim}, 43, 0.125f);
  w.wk = normal_tensor({kD, kKvHeads * kHeadDim}, 44, 0.125f);
  w.wv = normal_tensor({kD, kKvHeads * kHeadDim}, 45, 0.125f);
  w.wo = normal_tensor({kHeads * kHeadDim, kD}, 46, 0.125f);
  w.w_gate = normal_tensor({kD, kFfn}, 47, 0.125f);
  w.w_up = normal_tensor({kD, kFfn}, 48, 0.125f);
  w.w_down = normal_tensor({kFfn, kD}, 49, 0.09f);
  GraphBuilder g;
  const Value x = g.input("x", {"batch", "seq", kD});
  g.output("y", llama_decoder_layer(g, "dec", x, w, {.num_heads = kHeads, .num_kv_heads = kKvHeads}));
  const Graph graph = g.build();
  const Tensor clean = normal_tensor({2, kSeq, kD}, 50, 1.0f);
  const std::int64_t half = kSeq * kD;
  for (int threads : {1, 2}) {
    Session session(compile(graph, {.threads = threads}));
    const Tensor want = session.run({{"x", clean}}).at("y");
    for (int what = 0; what < 3; ++what) {
      SCOPED_TRACE(std::to_string(threads) + " threads, poison " + std::to_string(what));
      const Tensor got = session.run({{"x", poisoned_batch(clean, what)}}).at("y");
      EXPECT_TRUE(same_bits(got, want, half, 2 * half));
      // Causal: positions before the poison never attend to it (RMSNorm, rope and the MLP are per row),
      // as in token-by-token decoding, where they were computed before the poison came.
      EXPECT_TRUE(same_bits(got, want, 0, kPoisonAt * kD));
      // From the poison on: RMSNorm of the poisoned row is NaN (NaN, or inf/inf), so its k and v are NaN
      // and every later query's scores and outputs are NaN.
      int finite = 0;
      for (std::int64_t i = kPoisonAt * kD; i < half; ++i) finite += !std::isnan(got.f32()[i]);
      EXPECT_EQ(finite, 0);
    }
  }
}

}  // namespace
}  // namespace quarks
