// The two graph features a batch of left-padded prompts rests on, through compiled Models:
//   - rope with per-token positions ([B, S]): row b equals rope of x[b] alone at a scalar offset when
//     its positions are offset_b + s (the scalar path is checked against double in kv_cache_test), and
//     padded positions (repeated zeros) rotate each token by its own position;
//   - attention's key_starts: equal to the same attention with an additive mask of -inf before each
//     row's start (the mask path is checked against double in ops_through_model_test), causal, over a KV
//     cache and plain; a row of padding only gives zeros;
// and their errors, naming the node and the input.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "engine/test_util.hpp"

namespace quarks {
namespace {

using test::random_tensor;

float max_diff(const Tensor& a, const Tensor& b, std::int64_t begin = 0, std::int64_t end = -1) {
  if (end < 0) end = a.numel();
  float worst = 0.0f;
  for (std::int64_t i = begin; i < end; ++i) worst = std::max(worst, std::fabs(a.f32()[i] - b.f32()[i]));
  return worst;
}

Tensor i64(const Shape& shape, const std::vector<std::int64_t>& values) { return Tensor::from_i64(shape, values); }

constexpr int kHeads = 2, kDim = 8;

TEST(PaddedBatch, PerTokenRopeEqualsEachRowAtItsOffset) {
  const RopeOptions o{kHeads, kDim, 10000.0, HeadLayout::kTokenMajor};
  GraphBuilder g;
  const Value x = g.input("x", {"batch", "seq", kHeads * kDim});
  g.output("per_token", g.rope("per_token", x, g.input("positions", {"batch", "seq"}, DType::kI64), o));
  g.output("scalar", g.rope("scalar", x, g.input("offset", {1}, DType::kI64), o));
  const Model model = compile(g.build(), CompileOptions{.threads = 2});
  Session s(model);
  const std::int64_t batch = 3, seq = 6;
  const Tensor xt = random_tensor({batch, seq, kHeads * kDim}, 4);
  const std::int64_t offsets[] = {0, 17, 100000};
  std::vector<std::int64_t> positions;
  for (std::int64_t off : offsets)
    for (std::int64_t t = 0; t < seq; ++t) positions.push_back(off + t);
  const Tensor pos = Tensor::from_i64({batch, seq}, positions);
  const Tensor got = s.run({{"x", xt}, {"positions", pos}, {"offset", i64({1}, {0})}}).at("per_token");
  const std::int64_t row = seq * kHeads * kDim;
  for (std::int64_t b = 0; b < batch; ++b) {
    const Tensor xb = Tensor::from_f32({1, seq, kHeads * kDim}, std::span<const float>(xt.f32() + b * row, row));
    Session alone(model);
    const Tensor want = alone
                            .run({{"x", xb},
                                  {"positions", Tensor::from_i64({1, seq}, std::vector<std::int64_t>(seq, 0))},
                                  {"offset", i64({1}, {offsets[b]})}})
                            .at("scalar");
    const Tensor got_b = Tensor::from_f32({1, seq, kHeads * kDim}, std::span<const float>(got.f32() + b * row, row));
    EXPECT_EQ(max_diff(got_b, want), 0.0f) << "row " << b;  // the same tables, the same rotation
  }
  // Left padding: positions 0, 0, 0, 0, 1, 2 rotate tokens 0-3 by nothing (position 0 is the identity).
  const Tensor padded = i64({1, seq}, {0, 0, 0, 0, 1, 2});
  const Tensor x1 = Tensor::from_f32({1, seq, kHeads * kDim}, std::span<const float>(xt.f32(), row));
  Session one(model);
  const Tensor y = one.run({{"x", x1}, {"positions", padded}, {"offset", i64({1}, {0})}}).at("per_token");
  EXPECT_EQ(max_diff(y, x1, 0, 4 * kHeads * kDim), 0.0f);
  EXPECT_GT(max_diff(y, x1, 4 * kHeads * kDim, row), 0.0f);

  test::expect_build_error(
      [&](GraphBuilder& b) {
        b.rope("r", b.input("x", {2, 4, kHeads * kDim}), b.input("p", {2, 5}, DType::kI64), o);
      },
      ErrorCode::kShapeMismatch, "offset 'p' has shape [2,5] but must be a scalar [] or [1], or the positions [B, S]");
  try {
    s.run({{"x", xt},
           {"positions", Tensor::from_i64({batch, seq},
                                          [&] {
                                            std::vector<std::int64_t> p = positions;
                                            p[seq + 4] = -2;
                                            return p;
                                          }())},
           {"offset", i64({1}, {0})}});
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
    EXPECT_NE(std::string(e.what()).find("node 'per_token' (rope): offset 'positions' = -2 at [1, 4] is outside"),
              std::string::npos)
        << e.what();
  }
}

// q [B, S, H·D] over a KV cache of 64 rows, causal from the cache's lengths: with key_starts, and with a
// mask of -inf before each row's start instead.
Graph cache_attention() {
  GraphBuilder g;
  const Value q = g.input("q", {"batch", "seq", kHeads * kDim});
  const Value k = g.input("k", {"batch", "seq", kHeads * kDim});
  const Value v = g.input("v", {"batch", "seq", kHeads * kDim});
  const KvCache cache = g.kv_cache("cache", {kHeads, kDim, 64});
  const KvCacheView kv = g.kv_cache_append("append", cache, k, v);
  AttentionOptions o;
  o.causal = o.causal_from_key_lengths = true;
  o.num_heads = kHeads;
  g.output("starts", g.attention("starts", q, kv.keys, kv.values, std::nullopt, kv.key_lengths, o,
                                 g.input("key_starts", {"batch"}, DType::kI64)));
  g.output("masked",
           g.attention("masked", q, kv.keys, kv.values, g.input("mask", {"batch", 1, 1, 64}), kv.key_lengths, o));
  return g.build();
}

Tensor start_mask(const std::vector<std::int64_t>& starts, std::int64_t keys) {
  const auto batch = static_cast<std::int64_t>(starts.size());
  Tensor m(DType::kF32, {batch, 1, 1, keys});
  for (std::int64_t b = 0; b < batch; ++b)
    for (std::int64_t j = 0; j < keys; ++j) m.f32()[b * keys + j] = j < starts[b] ? -INFINITY : 0.0f;
  return m;
}

TEST(PaddedBatch, KeyStartsEqualAMaskOverTheCache) {
  const Model model = compile(cache_attention(), CompileOptions{.threads = 2});
  Session s(model);
  const std::vector<std::int64_t> starts{0, 7, 12};  // row 2: all of its 12 prompt tokens are padding
  const Tensor st = Tensor::from_i64({3}, starts), mask = start_mask(starts, 64);
  std::uint32_t seed = 10;
  for (const std::int64_t seq : {12, 1, 1, 5}) {  // a prompt, two decode steps, an appended chunk
    const Shape shape{3, seq, kHeads * kDim};
    const Tensor q = random_tensor(shape, seed++), k = random_tensor(shape, seed++), v = random_tensor(shape, seed++);
    const auto out = s.run({{"q", q}, {"k", k}, {"v", v}, {"key_starts", st}, {"mask", mask}});
    EXPECT_LT(max_diff(out.at("starts"), out.at("masked")), 1e-6f) << "seq " << seq;
    if (seq == 12) {  // the prompt: row 2 and row 1's first 7 queries see no key
      const Tensor& y = out.at("starts");
      const std::int64_t row = seq * kHeads * kDim;
      for (std::int64_t i = 0; i < row; ++i) ASSERT_EQ(y.f32()[2 * row + i], 0.0f);
      for (std::int64_t i = 0; i < 7 * kHeads * kDim; ++i) ASSERT_EQ(y.f32()[row + i], 0.0f);
    }
  }
}

TEST(PaddedBatch, KeyStartsErrorsNameTheNodeAndInput) {
  const AttentionOptions o{.causal = true, .num_heads = kHeads};
  const auto with_starts = [&](const std::vector<Dim>& starts_shape, DType dtype) {
    return [=](GraphBuilder& g) {
      const Value x = g.input("x", {3, 4, kHeads * kDim});
      g.attention("a", x, x, x, std::nullopt, std::nullopt, o, g.input("s", starts_shape, dtype));
    };
  };
  test::expect_build_error(with_starts({4}, DType::kI64), ErrorCode::kShapeMismatch,
                           "key_starts 's' has shape [4] but must be [B] = [3]");
  test::expect_build_error(with_starts({3}, DType::kF32), ErrorCode::kTypeMismatch,
                           "key_starts 's' is f32 but must be i64");
  GraphBuilder g;
  const Value x = g.input("x", {3, 4, kHeads * kDim});
  g.output("y", g.attention("a", x, x, x, std::nullopt, std::nullopt, o, g.input("s", {3}, DType::kI64)));
  const Model model = compile(g.build());
  Session s(model);
  const Tensor xt = random_tensor({3, 4, kHeads * kDim}, 1);
  EXPECT_NO_THROW(s.run({{"x", xt}, {"s", i64({3}, {0, 4, 2})}}));
  try {
    s.run({{"x", xt}, {"s", i64({3}, {0, 5, 2})}});
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
    EXPECT_NE(std::string(e.what()).find("node 'a' (attention): key_starts 's'[1] = 5 is outside [0, 4]"),
              std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace quarks
