// AttentionOptions::window (a causal band, Mistral's sliding window) through compiled Models: the same
// result as the band spelled out as an additive -inf mask, decoding through a KV cache token by token
// equal to the whole sequence at once, the flops a plan step reports, and the builder's errors.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "quarks/quarks.hpp"
#include "test_util.hpp"

namespace quarks {
namespace {

constexpr int kHq = 4, kHkv = 2, kD = 8;

// q [1, S, Hq·D], k and v [1, S, Hkv·D] in the 3-D layout, causal with a window (0: none), or with an
// explicit [S, S] mask instead of causal.
Graph prefill_model(std::int64_t s, std::int64_t window, const Tensor* mask) {
  GraphBuilder g;
  const Value q = g.input("q", {1, s, kHq * kD});
  const Value k = g.input("k", {1, s, kHkv * kD});
  const Value v = g.input("v", {1, s, kHkv * kD});
  AttentionOptions o;
  o.num_heads = kHq;
  o.num_kv_heads = kHkv;
  o.causal = mask == nullptr;
  o.window = window;
  const std::optional<Value> m = mask ? std::optional<Value>(g.constant("mask", *mask)) : std::nullopt;
  g.output("y", g.attention("attn", q, k, v, m, std::nullopt, o));
  return g.build();
}

// The band as an additive mask: 0 where i - window < j <= i, -inf elsewhere.
Tensor band_mask(std::int64_t s, std::int64_t window) {
  Tensor t(DType::kF32, Shape{s, s});
  for (std::int64_t i = 0; i < s; ++i) {
    for (std::int64_t j = 0; j < s; ++j) {
      t.f32()[i * s + j] = j <= i && i - j < window ? 0.0f : -std::numeric_limits<float>::infinity();
    }
  }
  return t;
}

TEST(AttentionWindowModel, PrefillEqualsTheBandAsAMask) {
  for (std::int64_t s : {1, 9, 70, 150}) {
    for (std::int64_t window : {1, 4, 33, 200}) {
      const Tensor q = test::random_tensor(Shape{1, s, kHq * kD}, 1);
      const Tensor k = test::random_tensor(Shape{1, s, kHkv * kD}, 2);
      const Tensor v = test::random_tensor(Shape{1, s, kHkv * kD}, 3);
      const Tensor mask = band_mask(s, window);
      const Tensor banded = test::run_once(prefill_model(s, window, nullptr), {{"q", q}, {"k", k}, {"v", v}});
      const Tensor masked = test::run_once(prefill_model(s, 0, &mask), {{"q", q}, {"k", k}, {"v", v}});
      EXPECT_LT(test::max_abs_diff(banded, test::to_double(masked)), 1e-6) << "S " << s << " window " << window;
    }
  }
}

TEST(AttentionWindowModel, CacheDecodeEqualsTheWholeSequence) {
  // A 12-token prefill and 20 single-token steps through a KV cache (window 5, so the band leaves the
  // prefill behind), against attention over all 32 tokens at once with the same window.
  constexpr std::int64_t kPrompt = 12, kTotal = 32, kWindow = 5;
  GraphBuilder g;
  const Value q = g.input("q", {1, "seq", kHq * kD});
  const Value k = g.input("k", {1, "seq", kHkv * kD});
  const Value v = g.input("v", {1, "seq", kHkv * kD});
  const KvCache cache = g.kv_cache("cache", {kHkv, kD, 64});
  const KvCacheView kv = g.kv_cache_append("append", cache, k, v);
  AttentionOptions o;
  o.num_heads = kHq;
  o.causal = o.causal_from_key_lengths = true;
  o.window = kWindow;
  g.output("y", g.attention("attn", q, kv.keys, kv.values, std::nullopt, kv.key_lengths, o));
  Model model = compile(g.build());
  Session session(model);

  const Tensor q_all = test::random_tensor(Shape{1, kTotal, kHq * kD}, 4);
  const Tensor k_all = test::random_tensor(Shape{1, kTotal, kHkv * kD}, 5);
  const Tensor v_all = test::random_tensor(Shape{1, kTotal, kHkv * kD}, 6);
  const Tensor whole =
      test::run_once(prefill_model(kTotal, kWindow, nullptr), {{"q", q_all}, {"k", k_all}, {"v", v_all}});
  const auto rows = [](const Tensor& t, std::int64_t from, std::int64_t n) {
    const std::int64_t width = t.shape()[2];
    return Tensor::from_f32(Shape{1, n, width},
                            std::vector<float>(t.f32() + from * width, t.f32() + (from + n) * width));
  };
  for (std::int64_t pos = 0; pos < kTotal;) {
    const std::int64_t n = pos == 0 ? kPrompt : 1;
    const Tensor y =
        session.run({{"q", rows(q_all, pos, n)}, {"k", rows(k_all, pos, n)}, {"v", rows(v_all, pos, n)}}).at("y");
    EXPECT_LT(test::max_abs_diff(y, test::to_double(rows(whole, pos, n))), 1e-6) << "position " << pos;
    pos += n;
  }
  // The step's flops count the keys in the band: 4·min(window, rows seen)·(output elements).
  const std::vector<PlanStep> steps = session.plan_steps();
  double attention_flops = -1;
  for (const PlanStep& step : steps) {
    for (const PlanNodeInfo& node : step.nodes) {
      if (node.name == "attn") attention_flops = node.flops;
    }
  }
  EXPECT_EQ(attention_flops, 4.0 * kWindow * kHq * kD);
}

TEST(AttentionWindowModel, BuilderErrors) {
  const auto attention = [](std::int64_t window, bool causal) {
    return [=](GraphBuilder& g) {
      AttentionOptions o;
      o.causal = causal;
      o.window = window;
      g.attention("attn", g.input("q", {1, 1, 3, 8}), g.input("k", {1, 1, 3, 8}), g.input("v", {1, 1, 3, 8}),
                  std::nullopt, std::nullopt, o);
    };
  };
  test::expect_build_error(attention(4, false), ErrorCode::kInvalidArgument,
                           "node 'attn' (attention): window 4 needs causal");
  test::expect_build_error(attention(-1, true), ErrorCode::kInvalidArgument,
                           "window must be >= 1 (0 = no window), got -1");
  GraphBuilder ok;
  EXPECT_NO_THROW(attention(1, true)(ok));
}

}  // namespace
}  // namespace quarks
