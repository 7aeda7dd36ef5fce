// Rotary embeddings and KV caches through compiled Models: rope against a double reference, the Session's
// cache state (appends across plans, lengths, reset, batch, overflow), attention over a cache, and
// Sessions of one Model keeping independent caches on separate threads.
#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <cstring>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "common/allocation_counter.hpp"
#include "engine/test_util.hpp"

namespace quarks {
namespace {

using test::max_abs_diff;
using test::random_tensor;

Tensor i64_tensor(const Shape& shape, const std::vector<std::int64_t>& values) {
  return Tensor::from_i64(shape, values);
}

void expect_error(const std::function<void()>& f, ErrorCode code, const std::vector<std::string>& parts) {
  try {
    f();
    ADD_FAILURE() << "no error, expected: " << parts.front();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), code) << e.what();
    for (const std::string& part : parts) EXPECT_NE(std::string(e.what()).find(part), std::string::npos) << e.what();
  }
}

// ---------------------------------------------------------------------------------------------------
// rope

// Double reference of rope on [B, S, H·D] (head_major false) or [B, H, S, D].
std::vector<double> rope_ref(const Tensor& x, std::int64_t heads, std::int64_t dim, bool head_major,
                             std::int64_t offset, double theta = 10000.0) {
  const Shape& s = x.shape();
  const std::int64_t batch = s[0], seq = head_major ? s[2] : s[1], half = dim / 2;
  std::vector<double> y(static_cast<std::size_t>(x.numel()));
  for (std::int64_t b = 0; b < batch; ++b) {
    for (std::int64_t h = 0; h < heads; ++h) {
      for (std::int64_t t = 0; t < seq; ++t) {
        const std::int64_t row = head_major ? (b * heads + h) * seq + t : (b * seq + t) * heads + h;
        const float* xr = x.f32() + row * dim;
        for (std::int64_t d = 0; d < half; ++d) {
          const double a = static_cast<double>(offset + t) * std::pow(theta, -2.0 * d / static_cast<double>(dim));
          y[row * dim + d] = xr[d] * std::cos(a) - xr[half + d] * std::sin(a);
          y[row * dim + half + d] = xr[half + d] * std::cos(a) + xr[d] * std::sin(a);
        }
      }
    }
  }
  return y;
}

TEST(Rope, ConstantAndRuntimeOffsetsInBothLayouts) {
  const std::int64_t h = 3, d = 10;
  GraphBuilder g;
  auto x = g.input("x", {"batch", "seq", h * d});
  auto x4 = g.input("x4", {"batch", h, "seq", d});
  auto off = g.input("offset", {1}, DType::kI64);
  auto off0 = g.input("scalar_offset", {}, DType::kI64);
  RopeOptions o{static_cast<int>(h), static_cast<int>(d), 10000.0, HeadLayout::kTokenMajor};
  RopeOptions o4{0, 0, 500000.0, HeadLayout::kHeadMajor};  // dims from the shape
  g.output("fixed", g.rope("fixed", x, 5, o));
  g.output("runtime", g.rope("runtime", x, off, o));
  g.output("head_major", g.rope("head_major", x4, off0, o4));
  // On an intermediate read once, rope runs in place; the result must not change.
  g.output("in_place", g.rope("in_place", g.mul("doubled", x, g.constant("two", Tensor::from_f32({1}, {2.0f}))),
                              std::int64_t{7}, o));
  CompileOptions co;
  co.threads = 2;
  Model model = compile(g.build(), co);
  Session session(model);
  for (const auto& [batch, seq, offset] :
       {std::tuple<std::int64_t, std::int64_t, std::int64_t>{2, 5, 0}, {1, 1, 100000}, {3, 17, 41}, {2, 0, 3}}) {
    const Tensor xt = random_tensor({batch, seq, h * d}, 1), x4t = random_tensor({batch, h, seq, d}, 2);
    auto out = session.run(
        {{"x", xt}, {"x4", x4t}, {"offset", i64_tensor({1}, {offset})}, {"scalar_offset", i64_tensor({}, {offset})}});
    EXPECT_LT(max_abs_diff(out.at("fixed"), rope_ref(xt, h, d, false, 5)), 5e-7);
    EXPECT_LT(max_abs_diff(out.at("runtime"), rope_ref(xt, h, d, false, offset)), 5e-7) << offset;
    EXPECT_LT(max_abs_diff(out.at("head_major"), rope_ref(x4t, h, d, true, offset, 500000.0)), 5e-7) << offset;
    Tensor doubled = xt.clone();
    for (std::int64_t i = 0; i < doubled.numel(); ++i) doubled.f32()[i] *= 2.0f;
    EXPECT_LT(max_abs_diff(out.at("in_place"), rope_ref(doubled, h, d, false, 7)), 1e-6);
  }
}

TEST(Rope, ErrorsNameTheNode) {
  const RopeOptions o{2, 8, 10000.0, HeadLayout::kTokenMajor};
  const auto build = [](const std::function<void(GraphBuilder&)>& f) {
    return [f] {
      GraphBuilder g;
      f(g);
    };
  };
  expect_error(build([&](GraphBuilder& g) {
                 g.rope("r", g.input("x", {1, 4, 15}), 0, o);
               }),
               ErrorCode::kShapeMismatch, {"node 'r' (rope): x 'x' [1,4,15] has hidden size 15 but 2 heads of D=8"});
  expect_error(build([&](GraphBuilder& g) {
                 g.rope("r", g.input("x", {1, 4, 14}), 0, RopeOptions{2, 7, 10000.0, HeadLayout::kTokenMajor});
               }),
               ErrorCode::kShapeMismatch, {"node 'r' (rope)", "head_dim 7 must be even"});
  expect_error(build([&](GraphBuilder& g) {
                 g.rope("r", g.input("x", {1, 2, 4, 8}), 0, o);
               }),
               ErrorCode::kShapeMismatch, {"the token-major layout takes x as [B, S, H*D]"});
  expect_error(build([&](GraphBuilder& g) {
                 g.rope("r", g.input("x", {1, 4, 16}), -1, o);
               }),
               ErrorCode::kInvalidArgument, {"offset -1 is outside [0, 2^31)"});
  expect_error(build([&](GraphBuilder& g) {
                 g.rope("r", g.input("x", {1, 4, 16}), g.input("p", {1}), o);
               }),
               ErrorCode::kTypeMismatch, {"offset 'p' is f32 but must be i64"});
  expect_error(build([&](GraphBuilder& g) {
                 g.rope("r", g.input("x", {1, 4, 16}), g.input("p", {2}, DType::kI64), o);
               }),
               ErrorCode::kShapeMismatch, {"offset 'p' has shape [2] but must be a scalar [] or [1]"});
  expect_error(build([&](GraphBuilder& g) {
                 g.rope("r", g.input("x", {1, 4, 16}), 0, RopeOptions{2, 8, 0.0, HeadLayout::kTokenMajor});
               }),
               ErrorCode::kInvalidArgument, {"theta must be finite and > 0"});

  // A runtime position outside [0, 2^31) throws from run, naming the node, the input and the value.
  GraphBuilder g;
  g.output("y", g.rope("r", g.input("x", {1, 4, 16}), g.input("p", {1}, DType::kI64), o));
  Model model = compile(g.build());
  Session s(model);
  const Tensor x = random_tensor({1, 4, 16}, 3);
  expect_error(
      [&] {
        s.run({{"x", x}, {"p", i64_tensor({1}, {-3})}});
      },
      ErrorCode::kInvalidArgument, {"node 'r' (rope): offset 'p' = -3", "not all in [0, 2^31)"});
  expect_error(
      [&] {
        s.run({{"x", x}, {"p", i64_tensor({1}, {(std::int64_t{1} << 31) - 2})}});
      },
      ErrorCode::kInvalidArgument, {"offset 'p' = 2147483646"});
  EXPECT_NO_THROW(s.run({{"x", x}, {"p", i64_tensor({1}, {(std::int64_t{1} << 31) - 4})}}));
}

// ---------------------------------------------------------------------------------------------------
// KV cache + attention over it

constexpr std::int64_t kHq = 4, kHkv = 2, kD = 8, kMaxLen = 1024;

// q [B, S, Hq·D], k and v [B, S, Hkv·D] appended to a cache of kMaxLen rows; attention over the cache,
// causal relative to its valid length. Outputs: y, the whole cache's keys (a copy of the state), the key
// lengths and the length before the run.
Graph cache_model(std::int64_t max_len = kMaxLen) {
  GraphBuilder g;
  auto q = g.input("q", {"batch", "seq", kHq * kD});
  auto k = g.input("k", {"batch", "seq", kHkv * kD});
  auto v = g.input("v", {"batch", "seq", kHkv * kD});
  KvCache cache = g.kv_cache("cache", {static_cast<int>(kHkv), static_cast<int>(kD), max_len});
  Value past = g.kv_cache_length(cache);
  EXPECT_EQ(g.kv_cache_length(cache).id, past.id);
  KvCacheView kv = g.kv_cache_append("append", cache, k, v);
  EXPECT_EQ(g.shape_string(kv.keys), "[batch,2," + std::to_string(max_len) + ",8]");
  EXPECT_EQ(g.shape_string(kv.key_lengths), "[batch]");
  AttentionOptions o;
  o.causal = o.causal_from_key_lengths = true;
  o.num_heads = static_cast<int>(kHq);
  g.output("y", g.attention("attn", q, kv.keys, kv.values, std::nullopt, kv.key_lengths, o));
  g.output("keys", kv.keys);
  g.output("lengths", kv.key_lengths);
  g.output("past", past);
  return g.build();
}

// The history of one conversation: k and v rows [B, Hkv, L, D] so far, in double.
struct History {
  std::int64_t batch = 0, len = 0;
  std::vector<std::vector<float>> k, v;  // per (b, h): rows of D

  void append(const Tensor& kt, const Tensor& vt) {
    const std::int64_t s = kt.shape()[1];
    if (k.empty()) k.resize(static_cast<std::size_t>(batch * kHkv)), v.resize(k.size());
    for (std::int64_t b = 0; b < batch; ++b)
      for (std::int64_t h = 0; h < kHkv; ++h)
        for (std::int64_t t = 0; t < s; ++t)
          for (std::int64_t d = 0; d < kD; ++d) {
            k[b * kHkv + h].push_back(kt.f32()[((b * s + t) * kHkv + h) * kD + d]);
            v[b * kHkv + h].push_back(vt.f32()[((b * s + t) * kHkv + h) * kD + d]);
          }
    len += s;
  }
};

// Attention of q [B, S, Hq·D] at positions len - S .. len - 1 over the history, in double.
std::vector<double> cache_attention_ref(const Tensor& q, const History& hist) {
  const std::int64_t b_n = q.shape()[0], s = q.shape()[1], past = hist.len - s;
  std::vector<double> y(static_cast<std::size_t>(q.numel()), 0.0);
  const double scale = 1.0 / std::sqrt(static_cast<double>(kD));
  for (std::int64_t b = 0; b < b_n; ++b) {
    for (std::int64_t h = 0; h < kHq; ++h) {
      const std::vector<float>& k = hist.k[b * kHkv + h / (kHq / kHkv)];
      const std::vector<float>& v = hist.v[b * kHkv + h / (kHq / kHkv)];
      for (std::int64_t i = 0; i < s; ++i) {
        const float* qi = q.f32() + ((b * s + i) * kHq + h) * kD;
        std::vector<double> w;
        double m = -INFINITY;
        for (std::int64_t j = 0; j <= past + i; ++j) {
          double dot = 0.0;
          for (std::int64_t d = 0; d < kD; ++d) dot += static_cast<double>(qi[d]) * k[j * kD + d];
          w.push_back(dot * scale);
          m = std::max(m, w.back());
        }
        double sum = 0.0;
        for (double& x : w) sum += (x = std::exp(x - m));
        double* yi = y.data() + ((b * s + i) * kHq + h) * kD;
        for (std::size_t j = 0; j < w.size(); ++j)
          for (std::int64_t d = 0; d < kD; ++d) yi[d] += w[j] / sum * v[j * kD + d];
      }
    }
  }
  return y;
}

struct Step {
  Tensor q, k, v;
};

Step make_step(std::int64_t batch, std::int64_t s, std::uint32_t seed) {
  return {random_tensor({batch, s, kHq * kD}, seed, -2, 2), random_tensor({batch, s, kHkv * kD}, seed + 1, -2, 2),
          random_tensor({batch, s, kHkv * kD}, seed + 2)};
}

std::map<std::string, Tensor> run_step(Session& session, const Step& st) {
  return session.run({{"q", st.q}, {"k", st.k}, {"v", st.v}});
}

TEST(KvCache, PrefillThenDecodeStepsMatchTheReference) {
  for (int threads : {1, 2}) {
    CompileOptions co;
    co.threads = threads;
    Model model = compile(cache_model(), co);
    Session session(model);
    EXPECT_EQ(session.cache_length(), 0);
    EXPECT_EQ(session.state_bytes(), 0u);
    const std::int64_t batch = 2;
    History hist;
    hist.batch = batch;
    std::uint32_t seed = 10;
    // A prompt of 3, single tokens, a chunk of 5, an empty step, one more token: four different plans.
    for (std::int64_t s : {3, 1, 1, 5, 0, 1}) {
      const Step st = make_step(batch, s, seed += 3);
      const std::int64_t past = hist.len;
      hist.append(st.k, st.v);
      auto out = run_step(session, st);
      ASSERT_EQ(out.at("y").shape(), (Shape{batch, s, kHq * kD}));
      EXPECT_LT(max_abs_diff(out.at("y"), cache_attention_ref(st.q, hist)), 1e-5) << "step of " << s;
      EXPECT_EQ(out.at("past").i64()[0], past);
      for (std::int64_t b = 0; b < batch; ++b) EXPECT_EQ(out.at("lengths").i64()[b], hist.len);
      EXPECT_EQ(session.cache_length(), hist.len);
      EXPECT_EQ(session.cache_length("cache"), hist.len);
      // The graph output "keys" is a copy of the Session's cache: its valid rows are the history.
      const Tensor& keys = out.at("keys");
      ASSERT_EQ(keys.shape(), (Shape{batch, kHkv, kMaxLen, kD}));
      for (std::int64_t bh = 0; bh < batch * kHkv; ++bh) {
        ASSERT_EQ(std::memcmp(keys.f32() + bh * kMaxLen * kD, hist.k[bh].data(), hist.k[bh].size() * sizeof(float)), 0);
      }
    }
    // State: the lengths (one i64, padded to 64 bytes) and the keys and values; the arena holds neither
    // (it has the attention's tiles and the key lengths).
    const std::size_t cache_bytes = batch * kHkv * kMaxLen * kD * sizeof(float);
    EXPECT_EQ(session.state_bytes(), 64 + 2 * cache_bytes);
    EXPECT_LT(session.arena_bytes(), cache_bytes);
  }
}

TEST(KvCache, OverflowThrowsBeforeWritingAndNamesEverything) {
  Model model = compile(cache_model(5));
  Session session(model);
  History hist;
  hist.batch = 1;
  const Step first = make_step(1, 3, 20);
  hist.append(first.k, first.v);
  run_step(session, first);
  const Step too_long = make_step(1, 3, 30);
  expect_error([&] { run_step(session, too_long); }, ErrorCode::kResourceExhausted,
               {"KV cache 'cache' (node 'append') is full: max_len 5, current length 3, 3 new tokens", "reset_state"});
  EXPECT_EQ(session.cache_length(), 3);
  // The failed run changed nothing: the next steps still see exactly the first three rows.
  for (std::uint32_t seed : {40u, 50u}) {
    const Step st = make_step(1, 1, seed);
    hist.append(st.k, st.v);
    auto out = run_step(session, st);
    EXPECT_LT(max_abs_diff(out.at("y"), cache_attention_ref(st.q, hist)), 1e-5);
  }
  EXPECT_EQ(session.cache_length(), 5);
  expect_error([&] { run_step(session, make_step(1, 1, 60)); }, ErrorCode::kResourceExhausted,
               {"max_len 5, current length 5, 1 new tokens"});
  // A prompt longer than the cache fails on an empty cache too.
  Session fresh(model);
  expect_error([&] { run_step(fresh, make_step(1, 6, 70)); }, ErrorCode::kResourceExhausted,
               {"max_len 5, current length 0, 6 new tokens"});
  EXPECT_EQ(fresh.cache_length(), 0);
}

TEST(KvCache, StateAboveTheCapIsAnErrorBeforeAllocation) {
  // cache_model(8): Hkv heads of kD floats, 8 positions, keys and values; batch 2 needs twice batch 1.
  const std::size_t batch1 = 2 * sizeof(float) * static_cast<std::size_t>(kHkv * 8 * kD);
  CompileOptions co;
  co.max_state_bytes = batch1 + 1024;  // room for batch 1 (plus the lengths and alignment), not 2
  Model model = compile(cache_model(8), co);
  Session one(model);
  run_step(one, make_step(1, 3, 80));
  EXPECT_GE(one.state_bytes(), batch1);
  Session two(model);
  expect_error([&] { run_step(two, make_step(2, 3, 90)); }, ErrorCode::kResourceExhausted,
               {"KV caches 'cache' (batch 2, max_len 8)", "max_state_bytes = " + std::to_string(batch1 + 1024)});
  EXPECT_EQ(two.state_bytes(), 0u);
}

TEST(KvCache, BatchIsFixedUntilResetAndResetStartsAgain) {
  Model model = compile(cache_model());
  Session session(model);
  const Step a = make_step(2, 3, 80), b = make_step(2, 1, 90);
  run_step(session, a);
  expect_error([&] { run_step(session, make_step(3, 1, 100)); }, ErrorCode::kInvalidArgument,
               {"KV cache 'cache' holds batch 2", "this run has batch 3", "reset_state()"});
  EXPECT_EQ(session.cache_length(), 3);
  const std::size_t bytes_for_two = session.state_bytes();

  session.reset_state();
  EXPECT_EQ(session.cache_length(), 0);
  // A new conversation with another batch: results as from a fresh Session.
  const Step c = make_step(3, 4, 110), d = make_step(3, 1, 120);
  Session fresh(model);
  for (const Step* st : {&c, &d}) {
    auto got = run_step(session, *st), want = run_step(fresh, *st);
    EXPECT_EQ(std::memcmp(got.at("y").data(), want.at("y").data(), got.at("y").bytes()), 0);
  }
  EXPECT_EQ(session.cache_length(), 5);
  EXPECT_GT(session.state_bytes(), bytes_for_two);

  // And back to batch 2 after another reset: the same outputs as the first conversation.
  session.reset_state();
  Session again(model);
  for (const Step* st : {&a, &b}) {
    auto got = run_step(session, *st), want = run_step(again, *st);
    EXPECT_EQ(std::memcmp(got.at("y").data(), want.at("y").data(), got.at("y").bytes()), 0);
  }
}

TEST(KvCache, SessionsOfOneModelKeepIndependentCachesOnTwoThreads) {
  CompileOptions co;
  co.threads = 2;
  Model model = compile(cache_model(), co);
  constexpr int kSteps = 8;
  // Two conversations (different prompts and tokens); expected outputs from serial runs.
  std::vector<std::vector<Step>> conv(2);
  std::vector<std::vector<Tensor>> expected(2);
  for (int c = 0; c < 2; ++c) {
    Session serial(model);
    for (int t = 0; t < kSteps; ++t) {
      conv[c].push_back(make_step(2, t == 0 ? 4 : 1, static_cast<std::uint32_t>(1000 * (c + 1) + 10 * t)));
      expected[c].push_back(run_step(serial, conv[c].back()).at("y"));
    }
  }
  std::atomic<int> mismatches{0};
  for (int round = 0; round < 5; ++round) {
    std::vector<std::thread> workers;
    for (int c = 0; c < 2; ++c) {
      workers.emplace_back([&, c] {
        Session s(model);
        for (int t = 0; t < kSteps; ++t) {
          const Tensor y = run_step(s, conv[c][t]).at("y");
          if (std::memcmp(y.data(), expected[c][t].data(), y.bytes()) != 0) ++mismatches;
        }
        if (s.cache_length() != 4 + kSteps - 1) ++mismatches;
      });
    }
    for (auto& w : workers) w.join();
  }
  EXPECT_EQ(mismatches.load(), 0);
}

TEST(KvCache, DecodeStepsAllocateNothing) {
  QUARKS_SKIP_WITHOUT_ALLOCATION_COUNTER();
  Model model = compile(cache_model(64));
  Session session(model);
  run_step(session, make_step(1, 5, 130));  // prefill: its own plan
  const Step st = make_step(1, 1, 140);
  std::vector<Tensor> outs;
  std::vector<NamedOutput> bound;
  for (const char* name : {"y", "keys", "lengths", "past"}) {
    const std::vector<NamedInput> in = {{"q", st.q}, {"k", st.k}, {"v", st.v}};
    const Shape shape = session.output_shape(in, name);
    outs.emplace_back(std::string(name) == "y" || std::string(name) == "keys" ? DType::kF32 : DType::kI64, shape);
  }
  const char* names[] = {"y", "keys", "lengths", "past"};
  for (std::size_t i = 0; i < outs.size(); ++i) bound.push_back({names[i], outs[i].view()});
  const NamedInput in[] = {{"q", st.q}, {"k", st.k}, {"v", st.v}};
  for (int i = 0; i < 3; ++i) session.run(in, bound);  // warm up: the step's plan, TBB
  for (int i = 0; i < 20; ++i) {
    test::AllocationCounter counter;
    session.run(in, bound);
    EXPECT_EQ(counter.count(), 0) << "step " << i;
  }
  EXPECT_EQ(session.cache_length(), 5 + 23);
}

TEST(KvCache, BuilderErrors) {
  const auto build = [](const std::function<void(GraphBuilder&)>& f) {
    return [f] {
      GraphBuilder g;
      f(g);
    };
  };
  expect_error(build([](GraphBuilder& g) {
                 g.kv_cache("c", {2, 8, 0});
               }),
               ErrorCode::kInvalidArgument,
               {"KV cache 'c': num_kv_heads (2), head_dim (8) and max_len (0) must be >= 1"});
  expect_error(build([](GraphBuilder& g) {
                 g.kv_cache("c", {2, 8, 4});
                 g.kv_cache("c", {2, 8, 4});
               }),
               ErrorCode::kInvalidArgument, {"KV cache 'c': a cache with this name already exists"});
  expect_error(build([](GraphBuilder& g) {
                 KvCache c = g.kv_cache("c", {2, 8, 4});
                 g.kv_cache_append("a", c, g.input("k", {1, 1, 16}), g.input("v", {1, 1, 16}));
                 g.kv_cache_append("b", c, g.input("k2", {1, 1, 16}), g.input("v2", {1, 1, 16}));
               }),
               ErrorCode::kInvalidArgument,
               {"node 'b' (kv_cache_append): KV cache 'c' is already appended to by node 'a'"});
  expect_error(
      build([](GraphBuilder& g) {
        KvCache c = g.kv_cache("c", {2, 8, 4});
        g.kv_cache_append("a", c, g.input("k", {1, 1, 12}), g.input("v", {1, 1, 16}));
      }),
      ErrorCode::kShapeMismatch,
      {"node 'a' (kv_cache_append): k 'k' [1,1,12] has hidden size 12 but KV cache 'c' [Hkv=2, D=8] needs 16"});
  expect_error(build([](GraphBuilder& g) {
                 KvCache c = g.kv_cache("c", {2, 8, 4});
                 g.kv_cache_append("a", c, g.input("k", {1, 3, 1, 8}), g.input("v", {1, 3, 1, 8}));
               }),
               ErrorCode::kShapeMismatch, {"k 'k' [1,3,1,8] does not match KV cache 'c' [Hkv=2, D=8]"});
  expect_error(build([](GraphBuilder& g) {
                 KvCache c = g.kv_cache("c", {2, 8, 4});
                 g.kv_cache_append("a", c, g.input("k", {1, 1, 16}, DType::kI64), g.input("v", {1, 1, 16}));
               }),
               ErrorCode::kTypeMismatch, {"k 'k' is i64 but must be f32"});
  expect_error(build([](GraphBuilder& g) { g.kv_cache_length(KvCache{}); }), ErrorCode::kInvalidArgument,
               {"not a KV cache of this builder"});
  // Attention of a 3-D q over a 4-D cache: the heads must fit.
  expect_error(build([](GraphBuilder& g) {
                 AttentionOptions o;
                 o.num_heads = 4;
                 g.attention("attn", g.input("q", {1, 2, 24}), g.input("k", {1, 2, 9, 8}), g.input("v", {1, 2, 9, 8}),
                             std::nullopt, std::nullopt, o);
               }),
               ErrorCode::kShapeMismatch, {"q 'q' [1,2,24] has hidden size 24 but 4 heads of D=8"});
  expect_error(build([](GraphBuilder& g) {
                 AttentionOptions o;
                 o.causal_from_key_lengths = true;
                 g.attention("attn", g.input("q", {1, 1, 2, 8}), g.input("k", {1, 1, 9, 8}), g.input("v", {1, 1, 9, 8}),
                             std::nullopt, std::nullopt, o);
               }),
               ErrorCode::kInvalidArgument, {"causal_from_key_lengths needs causal and key_lengths"});
}

TEST(KvCache, CacheLengthQueries) {
  GraphBuilder g;
  g.output("y", g.input("x", {2}));
  Model plain = compile(g.build());
  Session s(plain);
  expect_error([&] { s.cache_length(); }, ErrorCode::kNotFound, {"the model has no KV cache"});
  expect_error([&] { s.cache_length("c"); }, ErrorCode::kNotFound, {"unknown KV cache 'c'"});

  // Two caches appended with different token counts per run.
  GraphBuilder h;
  KvCache a = h.kv_cache("a", {1, 2, 8}), b = h.kv_cache("b", {1, 2, 8});
  auto ka = h.input("ka", {1, "sa", 2}), kb = h.input("kb", {1, "sb", 2});
  h.output("la", h.kv_cache_append("append_a", a, ka, ka).key_lengths);
  h.output("lb", h.kv_cache_append("append_b", b, kb, kb).key_lengths);
  Model two = compile(h.build());
  Session t(two);
  t.run({{"ka", random_tensor({1, 2, 2}, 1)}, {"kb", random_tensor({1, 3, 2}, 2)}});
  EXPECT_EQ(t.cache_length("a"), 2);
  EXPECT_EQ(t.cache_length("b"), 3);
  expect_error([&] { t.cache_length(); }, ErrorCode::kInvalidArgument,
               {"KV caches differ in length: 'a' holds 2 rows, 'b' holds 3"});
  expect_error([&] { t.cache_length("c"); }, ErrorCode::kNotFound, {"the model's caches: a, b"});
}

}  // namespace
}  // namespace quarks
