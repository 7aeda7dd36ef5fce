// llama_decoder_layer against a plain-PyTorch Llama layer (fixtures/llama_layer, made by
// make_llama_fixtures.py), token-by-token decoding with the KV cache against whole-sequence runs, the
// fused graph it compiles to, its errors, and independent Sessions on two threads.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "quarks/quarks.hpp"
#include "tools/common/npy.hpp"

namespace quarks {
namespace {

constexpr int kHeads = 4, kKvHeads = 2, kHeadDim = 16;
constexpr std::int64_t kModel = 64, kFfn = 176, kSeq = 7, kBatch = 2;

Tensor load(const std::string& name) {
  const std::string path = std::string(QUARKS_BLOCK_FIXTURES) + "/llama_layer/" + name + ".npy";
  return tools::to_f32_tensor(tools::read_npy(path), path);
}

LlamaLayerWeights fixture_weights() {
  LlamaLayerWeights w;
  w.attn_norm = load("attn_norm");
  w.wq = load("wq");
  w.wk = load("wk");
  w.wv = load("wv");
  w.wo = load("wo");
  w.mlp_norm = load("mlp_norm");
  w.w_gate = load("w_gate");
  w.w_up = load("w_up");
  w.w_down = load("w_down");
  return w;
}

Tensor random_tensor(const Shape& shape, std::uint32_t seed, float scale) {
  Tensor t(DType::kF32, shape);
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, scale);
  for (std::int64_t i = 0; i < t.numel(); ++i) t.f32()[i] = dist(rng);
  return t;
}

// Another layer of the same sizes, for stacks.
LlamaLayerWeights random_weights(std::uint32_t seed) {
  const float s = 1.0f / std::sqrt(static_cast<float>(kModel));
  LlamaLayerWeights w;
  w.attn_norm = random_tensor({kModel}, seed, 0.1f);
  w.mlp_norm = random_tensor({kModel}, seed + 1, 0.1f);
  for (Tensor* n : {&w.attn_norm, &w.mlp_norm})
    for (std::int64_t i = 0; i < kModel; ++i) n->f32()[i] += 1.0f;
  w.wq = random_tensor({kModel, kHeads * kHeadDim}, seed + 2, s);
  w.wk = random_tensor({kModel, kKvHeads * kHeadDim}, seed + 3, s);
  w.wv = random_tensor({kModel, kKvHeads * kHeadDim}, seed + 4, s);
  w.wo = random_tensor({kHeads * kHeadDim, kModel}, seed + 5, s);
  w.w_gate = random_tensor({kModel, kFfn}, seed + 6, s);
  w.w_up = random_tensor({kModel, kFfn}, seed + 7, s);
  w.w_down = random_tensor({kFfn, kModel}, seed + 8, 1.0f / std::sqrt(static_cast<float>(kFfn)));
  return w;
}

LlamaLayerOptions options(std::int64_t max_cache_len) {
  LlamaLayerOptions o;
  o.num_heads = kHeads;
  o.num_kv_heads = kKvHeads;
  o.head_dim = kHeadDim;
  o.rope_theta = 10000.0;
  o.rms_eps = 1e-6f;
  o.max_cache_len = max_cache_len;
  return o;
}

// A stack of layers on x [batch, seq, d]; output "y".
Model build_model(const std::vector<LlamaLayerWeights>& layers, std::int64_t max_cache_len, int threads = 2) {
  GraphBuilder b;
  Value h = b.input("x", {"batch", "seq", kModel});
  for (std::size_t l = 0; l < layers.size(); ++l) {
    h = llama_decoder_layer(b, "layer" + std::to_string(l), h, layers[l], options(max_cache_len));
  }
  b.output("y", h);
  CompileOptions co;
  co.threads = threads;
  return compile(b.build(), co);
}

// Tokens [begin, end) of x [B, S, d].
Tensor tokens(const Tensor& x, std::int64_t begin, std::int64_t end) {
  const std::int64_t batch = x.shape()[0], seq = x.shape()[1], d = x.shape()[2];
  Tensor out(DType::kF32, {batch, end - begin, d});
  for (std::int64_t b = 0; b < batch; ++b) {
    std::memcpy(out.f32() + b * (end - begin) * d, x.f32() + (b * seq + begin) * d,
                sizeof(float) * static_cast<std::size_t>((end - begin) * d));
  }
  return out;
}

// Runs x through `session` in chunks of the given token counts; returns the outputs joined to [B, S, d].
Tensor run_in_chunks(Session& session, const Tensor& x, const std::vector<std::int64_t>& chunks) {
  const std::int64_t batch = x.shape()[0], seq = x.shape()[1], d = x.shape()[2];
  Tensor y(DType::kF32, x.shape());
  std::int64_t at = 0;
  for (std::int64_t n : chunks) {
    const Tensor part = session.run({{"x", tokens(x, at, at + n)}}).at("y");
    for (std::int64_t b = 0; b < batch; ++b) {
      std::memcpy(y.f32() + (b * seq + at) * d, part.f32() + b * n * d,
                  sizeof(float) * static_cast<std::size_t>(n * d));
    }
    at += n;
  }
  EXPECT_EQ(at, seq);
  return y;
}

// max |got - want| / max |want|.
double relative_error(const Tensor& got, const Tensor& want) {
  double scale = 0.0, worst = 0.0;
  for (std::int64_t i = 0; i < want.numel(); ++i) {
    scale = std::max(scale, static_cast<double>(std::fabs(want.f32()[i])));
    const double diff = std::fabs(static_cast<double>(got.f32()[i]) - want.f32()[i]);
    worst = std::isnan(diff) ? INFINITY : std::max(worst, diff);
  }
  return worst / scale;
}

double relative_error(const Tensor& got, const tools::NpyArray& want_f64) {
  const double* w = reinterpret_cast<const double*>(want_f64.data.data());
  double scale = 0.0, worst = 0.0;
  for (std::int64_t i = 0; i < got.numel(); ++i) {
    scale = std::max(scale, std::fabs(w[i]));
    const double diff = std::fabs(got.f32()[i] - w[i]);
    worst = std::isnan(diff) ? INFINITY : std::max(worst, diff);
  }
  return worst / scale;
}

tools::NpyArray reference_output() {
  tools::NpyArray y = tools::read_npy(std::string(QUARKS_BLOCK_FIXTURES) + "/llama_layer/y.npy");
  EXPECT_EQ(y.dtype, tools::NpyDType::kFloat64);
  EXPECT_EQ(y.shape, (Shape{kBatch, kSeq, kModel}));
  return y;
}

TEST(LlamaDecoderLayer, MatchesPyTorchReference) {
  const Tensor x = load("x");
  const tools::NpyArray want = reference_output();
  const std::vector<LlamaLayerWeights> layer = {fixture_weights()};
  // Without a cache; with one, the prompt in one run; with one, prefill 3 then one token per run.
  Model plain = build_model(layer, 0);
  EXPECT_LT(relative_error(Session(plain).run({{"x", x}}).at("y"), want), 1e-4);
  Model cached = build_model(layer, 16);
  Session whole(cached);
  EXPECT_LT(relative_error(whole.run({{"x", x}}).at("y"), want), 1e-4);
  Session steps(cached);
  const Tensor y = run_in_chunks(steps, x, {3, 1, 1, 1, 1});
  const double err = relative_error(y, want);
  std::printf("vs PyTorch: token by token, relative error %.3g\n", err);
  EXPECT_LT(err, 1e-4);
  EXPECT_EQ(steps.cache_length(), kSeq);
}

TEST(LlamaDecoderLayer, TokenByTokenMatchesWholeSequence) {
  // Two stacked layers; a longer sequence than the fixture so that later steps see many keys.
  const std::vector<LlamaLayerWeights> layers = {fixture_weights(), random_weights(77)};
  const Tensor x = random_tensor({kBatch, 20, kModel}, 5, 1.0f);
  for (int threads : {1, 2}) {
    const Tensor whole = Session(build_model(layers, 0, threads)).run({{"x", x}}).at("y");
    Model cached = build_model(layers, 32, threads);
    Session fresh(cached);
    const Tensor all_at_once = fresh.run({{"x", x}}).at("y");
    EXPECT_LT(relative_error(all_at_once, whole), 1e-5) << threads;
    Session session(cached);
    std::vector<std::int64_t> chunks = {3};
    for (int i = 0; i < 17; ++i) chunks.push_back(1);
    const Tensor stepped = run_in_chunks(session, x, chunks);
    const double err = relative_error(stepped, whole);
    std::printf("%d threads: prefill 3 + 17 single tokens vs the whole sequence: relative error %.3g\n", threads, err);
    EXPECT_LT(err, 1e-5);
    EXPECT_EQ(session.cache_length(), 20);
    EXPECT_EQ(session.cache_length("layer1.kv_cache"), 20);
    // Uneven chunks too.
    session.reset_state();
    EXPECT_LT(relative_error(run_in_chunks(session, x, {1, 4, 2, 1, 12}), whole), 1e-5);
  }
}

TEST(LlamaDecoderLayer, CompilesToAFusedGraph) {
  Model cached = build_model({fixture_weights()}, 16);
  const std::string text = cached.describe();
  std::printf("%s", text.c_str());
  const auto count = [&](const std::string& what) {
    std::size_t n = 0;
    for (std::size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
    return n;
  };
  EXPECT_EQ(count("= rms_norm("), 2u);
  EXPECT_EQ(count("= dense("), 3u);  // qkv (one product for q, k and v), o_proj, down
  EXPECT_EQ(count("layer0.qkv = dense(layer0.attn_norm, layer0.qkv.w) -> [batch,seq,128]"), 1u);
  EXPECT_EQ(count("= gated_dense[silu*identity]("), 1u);  // gate and up in one product
  EXPECT_EQ(count("= rope("), 2u);
  EXPECT_EQ(count("layer0.kv_cache = kv_cache_length[layer0.kv_cache]() -> [1] i64"), 1u);
  EXPECT_EQ(count("= kv_cache_append[layer0.kv_cache](layer0.k_rope, layer0.qkv_split:2, layer0.kv_cache)"), 1u);
  EXPECT_EQ(count("= attention[causal to key_lengths](layer0.q_rope, layer0.kv_append:0, layer0.kv_append:1"), 1u);
  EXPECT_EQ(count("= binary("), 2u);  // the two residual additions
  EXPECT_EQ(count("output_gate"), 0u);
  EXPECT_EQ(count("activation"), 0u);
  EXPECT_EQ(cached.node_count(), 14u);  // the 14 lines above: nothing else is left unfused

  const std::string plain = build_model({fixture_weights()}, 0).describe();
  EXPECT_NE(plain.find("= attention[causal](layer0.q_rope, layer0.k_rope, layer0.qkv_split:2)"), std::string::npos)
      << plain;
  EXPECT_EQ(plain.find("kv_cache"), std::string::npos);
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

TEST(LlamaDecoderLayer, CacheOverflowBatchChangeAndReset) {
  const Tensor x = load("x");
  Model model = build_model({fixture_weights(), random_weights(5)}, 8);
  Session session(model);
  session.run({{"x", x}});  // 7 of 8 positions
  expect_error(
      [&] {
        session.run({{"x", tokens(x, 0, 2)}});
      },
      ErrorCode::kResourceExhausted,
      {"KV cache 'layer0.kv_cache' (node 'layer0.kv_append') is full: max_len 8, current length 7, 2 new "
       "tokens"});
  EXPECT_EQ(session.cache_length(), 7);
  session.run({{"x", tokens(x, 0, 1)}});  // the last free position
  EXPECT_EQ(session.cache_length(), 8);

  // Another batch size without reset_state().
  const Tensor one = Tensor::from_f32({1, 1, kModel}, std::vector<float>(x.f32(), x.f32() + kModel));
  expect_error(
      [&] {
        session.run({{"x", one}});
      },
      ErrorCode::kInvalidArgument,
      {"KV cache 'layer0.kv_cache' holds batch 2", "this run has batch 1", "reset_state()"});

  // Reset, then reuse: a new conversation gives what a fresh Session gives, bit for bit.
  session.reset_state();
  EXPECT_EQ(session.cache_length(), 0);
  Session fresh(model);
  for (const Tensor& input : {one, one}) {
    const Tensor got = session.run({{"x", input}}).at("y"), want = fresh.run({{"x", input}}).at("y");
    EXPECT_EQ(std::memcmp(got.data(), want.data(), got.bytes()), 0);
  }
  EXPECT_EQ(session.cache_length(), 2);
}

TEST(LlamaDecoderLayer, TwoSessionsDecodeIndependentlyOnTwoThreads) {
  Model model = build_model({fixture_weights(), random_weights(9)}, 16);
  const Tensor a = random_tensor({kBatch, 10, kModel}, 11, 1.0f), b = random_tensor({kBatch, 10, kModel}, 12, 1.0f);
  const std::vector<std::int64_t> chunks = {4, 1, 1, 1, 1, 1, 1};
  Session serial_a(model), serial_b(model);
  const Tensor want_a = run_in_chunks(serial_a, a, chunks), want_b = run_in_chunks(serial_b, b, chunks);
  std::atomic<int> mismatches{0};
  for (int round = 0; round < 3; ++round) {
    std::vector<std::thread> workers;
    for (int t = 0; t < 2; ++t) {
      workers.emplace_back([&, t] {
        Session s(model);
        const Tensor got = run_in_chunks(s, t ? b : a, chunks);
        const Tensor& want = t ? want_b : want_a;
        if (std::memcmp(got.data(), want.data(), got.bytes()) != 0) ++mismatches;
      });
    }
    for (auto& w : workers) w.join();
  }
  EXPECT_EQ(mismatches.load(), 0);
}

TEST(LlamaDecoderLayer, WeightAndOptionErrorsNameTheLayer) {
  const auto build = [](LlamaLayerWeights w, LlamaLayerOptions o) {
    return [w, o] {
      GraphBuilder b;
      llama_decoder_layer(b, "layer0", b.input("x", {"batch", "seq", kModel}), w, o);
    };
  };
  LlamaLayerWeights w = fixture_weights();
  w.wk = random_tensor({kModel, 16}, 1, 0.1f);
  expect_error(build(w, options(0)), ErrorCode::kShapeMismatch,
               {"llama_decoder_layer 'layer0': wk is [64,16] but must be [64,32]"});
  w = fixture_weights();
  w.w_down = random_tensor({kFfn + 1, kModel}, 1, 0.1f);
  expect_error(build(w, options(0)), ErrorCode::kShapeMismatch, {"w_down is [177,64] but must be [176,64]"});
  LlamaLayerOptions o = options(0);
  o.num_kv_heads = 3;
  expect_error(build(fixture_weights(), o), ErrorCode::kInvalidArgument,
               {"num_heads 4 must be >= 1 and a multiple of num_kv_heads 3"});
  o = options(-1);
  expect_error(build(fixture_weights(), o), ErrorCode::kInvalidArgument, {"max_cache_len -1 is < 0"});
}

}  // namespace
}  // namespace quarks
