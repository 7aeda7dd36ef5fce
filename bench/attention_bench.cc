// Attention microbenchmarks: the fused attention op against the unfused quarks graph
// softmax(Q·Kᵀ·scale)·V (matmul, mul by the scale, softmax, matmul), both compiled as Models and run
// through a Session into caller buffers — BERT-base's attention core: batch 1, 12 heads, head_dim 64 —
// plus the kernel alone over tile sizes, long sequences, sliding windows and decode steps. Reports GFLOP/s
// (4·B·H·Sq·Sk·D per run, halved for causal).
//
//   attention_bench --benchmark_filter='Model' --benchmark_repetitions=5 --benchmark_enable_random_interleaving
//       --benchmark_report_aggregates_only=true
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <vector>

#include <benchmark/benchmark.h>
#include <omp.h>
#include <tbb/task_arena.h>
#include <oneapi/dnnl/dnnl.hpp>

#include "bench_values.hpp"
#include "ops/attention/attention_kernel.hpp"
#include "ops/attention/attention_simd.hpp"
#include "quarks/quarks.hpp"

namespace {

constexpr std::int64_t kHeads = 12;
constexpr std::int64_t kHeadDim = 64;

using quarks::bench::random_values;

void set_flops(benchmark::State& state, std::int64_t heads, std::int64_t q_len, std::int64_t kv_len, bool causal) {
  double flops = 4.0 * static_cast<double>(heads) * static_cast<double>(q_len) * static_cast<double>(kv_len) *
                 static_cast<double>(kHeadDim);
  if (causal) flops /= 2.0;
  state.counters["GFLOP/s"] = benchmark::Counter(flops * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}

// Runs a compiled Model on q, k, v [1, H, S, D] (v also [1, H, S, D]) into a caller buffer.
void run_model(benchmark::State& state, const quarks::Model& model, std::int64_t heads, std::int64_t q_len,
               std::int64_t kv_len) {
  const auto q = random_values(static_cast<std::size_t>(heads * q_len * kHeadDim), 1);
  const auto k = random_values(static_cast<std::size_t>(heads * kv_len * kHeadDim), 2);
  const auto v = random_values(static_cast<std::size_t>(heads * kv_len * kHeadDim), 3);
  std::vector<float> y(q.size());
  quarks::Session session(model);
  const quarks::NamedInput inputs[] = {{"q", quarks::ConstTensorView(q.data(), {1, heads, q_len, kHeadDim})},
                                       {"k", quarks::ConstTensorView(k.data(), {1, heads, kv_len, kHeadDim})},
                                       {"v", quarks::ConstTensorView(v.data(), {1, heads, kv_len, kHeadDim})}};
  const quarks::NamedOutput outputs[] = {{"y", quarks::TensorView(y.data(), {1, heads, q_len, kHeadDim})}};
  for (auto _ : state) {
    session.run(inputs, outputs);
    benchmark::DoNotOptimize(y.data());
  }
  state.counters["arena_MiB"] = static_cast<double>(session.arena_bytes()) / (1 << 20);
}

// Args: seq, threads, causal. The fused attention op.
void BM_FusedModel(benchmark::State& state) {
  const std::int64_t seq = state.range(0);
  const int threads = static_cast<int>(state.range(1));
  const bool causal = state.range(2) != 0;
  quarks::GraphBuilder g;
  auto q = g.input("q", {1, kHeads, seq, kHeadDim});
  auto k = g.input("k", {1, kHeads, seq, kHeadDim});
  auto v = g.input("v", {1, kHeads, seq, kHeadDim});
  quarks::AttentionOptions options;
  options.causal = causal;
  g.output("y", g.attention("attn", q, k, v, std::nullopt, std::nullopt, options));
  run_model(state, quarks::compile(g.build(), {.threads = threads}), kHeads, seq, seq);
  set_flops(state, kHeads, seq, seq, causal);
}

// Args: seq, threads. The same attention as four quarks ops: scores are materialised.
void BM_UnfusedModel(benchmark::State& state) {
  const std::int64_t seq = state.range(0);
  const int threads = static_cast<int>(state.range(1));
  quarks::GraphBuilder g;
  auto q = g.input("q", {1, kHeads, seq, kHeadDim});
  auto k = g.input("k", {1, kHeads, seq, kHeadDim});
  auto v = g.input("v", {1, kHeads, seq, kHeadDim});
  auto s = g.matmul("scores", q, k, false, true);
  const float scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(kHeadDim)));
  auto scaled = g.mul("scaled", s, g.constant("scale", quarks::Tensor::from_f32({1}, {scale})));
  auto p = g.softmax("probs", scaled, -1);
  g.output("y", g.matmul("context", p, v));
  run_model(state, quarks::compile(g.build(), {.threads = threads}), kHeads, seq, seq);
  set_flops(state, kHeads, seq, seq, false);
}

// The kernel alone in an arena of c.max_threads on q, k, v into y; returns its key chunks.
std::int64_t time_kernel(benchmark::State& state, const quarks::ops::AttentionConfig& c, const std::vector<float>& q,
                         const std::vector<float>& k, const std::vector<float>& v, std::vector<float>& y) {
  std::int64_t chunks = 0;
  tbb::task_arena arena(c.max_threads);
  arena.execute([&] {
    const quarks::ops::AttentionKernel kernel(c);
    std::vector<float> scratch(kernel.scratch_bytes() / sizeof(float) + 16);
    auto* aligned = reinterpret_cast<std::byte*>((reinterpret_cast<std::uintptr_t>(scratch.data()) + 63) / 64 * 64);
    for (auto _ : state) kernel.run(q.data(), k.data(), v.data(), nullptr, nullptr, y.data(), aligned);
    chunks = kernel.kv_chunks();
  });
  return chunks;
}

// Self-attention of kHeads heads over seq positions, [1, H, S, D], on random q, k, v.
struct Prefill {
  quarks::ops::AttentionConfig c;
  std::vector<float> q, k, v, y;
  Prefill(std::int64_t seq, std::int64_t threads) {
    c.q_heads = c.kv_heads = kHeads;
    c.q_len = c.kv_len = seq;
    c.head_dim = kHeadDim;
    c.q = c.k = c.v = c.out = {kHeads * seq * kHeadDim, seq * kHeadDim, kHeadDim};
    c.scale = 0.125f;
    c.max_threads = static_cast<int>(threads);
    q = random_values(static_cast<std::size_t>(kHeads * seq * kHeadDim), 1);
    k = random_values(q.size(), 2);
    v = random_values(q.size(), 3);
    y.resize(q.size());
  }
};

// Args: seq, threads, q_tile, k_block, causal. The kernel alone, for choosing the tile sizes.
void BM_KernelTiles(benchmark::State& state) {
  const std::int64_t seq = state.range(0);
  Prefill p(seq, state.range(1));
  p.c.q_tile = state.range(2);
  p.c.k_block = state.range(3);
  p.c.causal = state.range(4) != 0;
  time_kernel(state, p.c, p.q, p.k, p.v, p.y);
  set_flops(state, kHeads, seq, seq, p.c.causal);
}

// Args: seq, threads, window (0: plain causal). Causal prefill (Sq = Sk = seq) with a sliding window:
// the time should fall with the window (tiles visit only their band's key blocks). GFLOP/s count the
// keys each query sees: min(i + 1, window) for query i.
void BM_Window(benchmark::State& state) {
  const std::int64_t seq = state.range(0), window = state.range(2);
  Prefill p(seq, state.range(1));
  p.c.causal = true;
  p.c.window = window;
  time_kernel(state, p.c, p.q, p.k, p.v, p.y);
  double keys = 0;
  for (std::int64_t i = 0; i < seq; ++i) keys += static_cast<double>(window > 0 ? std::min(i + 1, window) : i + 1);
  state.counters["GFLOP/s"] = benchmark::Counter(4e-9 * static_cast<double>(kHeads * kHeadDim) * keys,
                                                 benchmark::Counter::kIsIterationInvariantRate);
}

// Args: kv_len, threads, heads. One decode step (Sq = 1) over a KV cache: the key split spreads a few
// heads over the arena (chunks reported).
void BM_Decode(benchmark::State& state) {
  const std::int64_t kv_len = state.range(0), heads = state.range(2);
  quarks::ops::AttentionConfig c;
  c.q_heads = c.kv_heads = heads;
  c.q_len = 1;
  c.kv_len = kv_len;
  c.head_dim = kHeadDim;
  c.q = c.out = {heads * kHeadDim, kHeadDim, kHeadDim};
  c.k = c.v = {heads * kv_len * kHeadDim, kv_len * kHeadDim, kHeadDim};
  c.scale = 0.125f;
  c.causal = true;
  c.max_threads = static_cast<int>(state.range(1));
  const auto q = random_values(static_cast<std::size_t>(heads * kHeadDim), 1);
  const auto k = random_values(static_cast<std::size_t>(heads * kv_len * kHeadDim), 2);
  const auto v = random_values(k.size(), 3);
  std::vector<float> y(q.size());
  state.counters["chunks"] = static_cast<double>(time_kernel(state, c, q, k, v, y));
  set_flops(state, heads, 1, kv_len, false);
  state.counters["GB/s"] = benchmark::Counter(2.0 * static_cast<double>(k.size()) * sizeof(float) * 1e-9,
                                              benchmark::Counter::kIsIterationInvariantRate);
}

// The tile products of one task, one thread. Args: m, k, n, transposed_a. The attention kernel's two
// products are the scores s[kb, qt] = K_block[kb, D]·Qᵀ[D, qt] (a row-major) and the context
// oᵀ[D, qt] += V_block[kb, D]ᵀ·P[kb, qt] (a = V read transposed: transposed_a).
struct TileOperands {
  std::int64_t m, k, n;
  bool transposed_a;
  std::vector<float> a, b, c;
  explicit TileOperands(const benchmark::State& state)
      : m(state.range(0)), k(state.range(1)), n(state.range(2)), transposed_a(state.range(3) != 0) {
    a = random_values(static_cast<std::size_t>(m * k), 1);
    b = random_values(static_cast<std::size_t>(k * n), 2);
    c = random_values(static_cast<std::size_t>(m * n), 3);
  }
  std::int64_t a_row() const { return transposed_a ? 1 : k; }
  std::int64_t a_col() const { return transposed_a ? m : 1; }
};

void set_product_flops(benchmark::State& state, const TileOperands& t) {
  state.counters["GFLOP/s"] =
      benchmark::Counter(2e-9 * static_cast<double>(t.m * t.k * t.n), benchmark::Counter::kIsIterationInvariantRate);
}

// The Highway products the kernel uses (accumulating, as in all but the first key block): the scores
// s[kb, qt] = K_block·Qᵀ with the register-tiled product, and the context, accumulated transposed as
// oᵀ[D, qt] += V_blockᵀ·P with V read in place (transposed_a: a is V [k, m], m = D; b is P [k, n]).
void BM_TileHighway(benchmark::State& state) {
  TileOperands t(state);
  const std::vector<float> alpha(static_cast<std::size_t>(std::max(t.m, t.n)), 1.0f);
  for (auto _ : state) {
    if (t.transposed_a) {
      quarks::ops::attention_detail::context_product(t.a.data(), t.m, t.b.data(), t.n, t.c.data(), t.n, t.m, t.n, t.k,
                                                     alpha.data());
    } else {
      quarks::ops::attention_detail::tile_product(t.a.data(), t.a_row(), t.a_col(), t.b.data(), t.n, t.c.data(), t.n,
                                                  t.m, t.n, t.k, alpha.data());
    }
    benchmark::DoNotOptimize(t.c.data());
  }
  set_product_flops(state, t);
}

// oneDNN's single-threaded sgemm on the same operands (it allocates a packing buffer per call).
void BM_TileSgemm(benchmark::State& state) {
  TileOperands t(state);
  const int saved = omp_get_max_threads();
  omp_set_num_threads(1);
  for (auto _ : state) {
    dnnl_sgemm(t.transposed_a ? 'T' : 'N', 'N', t.m, t.n, t.k, 1.0f, t.a.data(), t.transposed_a ? t.m : t.k, t.b.data(),
               t.n, 1.0f, t.c.data(), t.n);
    benchmark::DoNotOptimize(t.c.data());
  }
  omp_set_num_threads(saved);
  set_product_flops(state, t);
}

// A oneDNN matmul primitive created beforehand for these strides (sum post-op: c += a·b), user scratchpad.
void BM_TilePrimitive(benchmark::State& state) {
  using dnnl::memory;
  TileOperands t(state);
  const int saved = omp_get_max_threads();
  omp_set_num_threads(1);
  const dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  dnnl::stream stream(engine);
  const memory::desc a_md({t.m, t.k}, memory::data_type::f32, memory::dims{t.a_row(), t.a_col()});
  const memory::desc b_md({t.k, t.n}, memory::data_type::f32, memory::dims{t.n, 1});
  const memory::desc c_md({t.m, t.n}, memory::data_type::f32, memory::dims{t.n, 1});
  dnnl::post_ops post;
  post.append_sum(1.0f);
  dnnl::primitive_attr attr;
  attr.set_post_ops(post);
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  const dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(a_md, b_md, c_md), attr, engine);
  const dnnl::matmul matmul(pd);
  std::vector<float> pad(pd.scratchpad_desc().get_size() / sizeof(float) + 16);
  memory a(a_md, engine, t.a.data()), b(b_md, engine, t.b.data()), c(c_md, engine, t.c.data());
  memory scratchpad(pd.scratchpad_desc(), engine, pad.data());
  for (auto _ : state) {
    matmul.execute(stream,
                   {{DNNL_ARG_SRC, a}, {DNNL_ARG_WEIGHTS, b}, {DNNL_ARG_DST, c}, {DNNL_ARG_SCRATCHPAD, scratchpad}});
    benchmark::DoNotOptimize(t.c.data());
  }
  omp_set_num_threads(saved);
  set_product_flops(state, t);
}

void TileArgs(benchmark::internal::Benchmark* b) {
  b->ArgNames({"m", "k", "n", "transposed_a"});
  b->Args({128, 64, 64, 0});  // scores: K block [128, 64] · Qᵀ [64, 64]
  b->Args({64, 128, 64, 1});  // context: V block [128, 64]ᵀ · P [128, 64]
  b->Args({64, 64, 128, 0});  // [64 x 64]·[64 x 128]
  b->Args({64, 64, 64, 0});
}

BENCHMARK(BM_TileHighway)->Apply(TileArgs)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_TileSgemm)->Apply(TileArgs)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_TilePrimitive)->Apply(TileArgs)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_FusedModel)
    ->ArgNames({"seq", "threads", "causal"})
    ->ArgsProduct({{128, 512}, {1, 2}, {0, 1}})
    ->UseRealTime()
    ->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_UnfusedModel)
    ->ArgNames({"seq", "threads"})
    ->ArgsProduct({{128, 512}, {1, 2}})
    ->UseRealTime()
    ->Unit(benchmark::kMicrosecond);
// Long sequences: the fused op needs only tiles (arena_MiB), where the scores alone would be 768 MiB.
BENCHMARK(BM_FusedModel)
    ->Name("BM_FusedModelLong")
    ->ArgNames({"seq", "threads", "causal"})
    ->ArgsProduct({{4096}, {1, 2}, {0, 1}})
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_KernelTiles)
    ->ArgNames({"seq", "threads", "q_tile", "k_block", "causal"})
    ->ArgsProduct({{512}, {1}, {32, 64, 128}, {64, 128, 256}, {0}})
    ->ArgsProduct({{128, 512}, {1}, {16, 32, 64}, {64, 128}, {1}})
    ->UseRealTime()
    ->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_Window)
    ->ArgNames({"seq", "threads", "window"})
    ->ArgsProduct({{4096}, {1, 2}, {0, 256, 1024}})
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Decode)
    ->ArgNames({"kv_len", "threads", "heads"})
    ->ArgsProduct({{4096}, {1, 2}, {1, 12}})
    ->UseRealTime()
    ->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();
