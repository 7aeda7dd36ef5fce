// Dense-family microbenchmarks: DenseKernel, GatedDenseKernel and a compiled Model's dense layer
// (768→3072, the BERT-base FFN), SynapticGateKernel in its three modes and MatMulKernel on attention
// scores, in TBB arenas of 1 and 2 threads, side by side with one bare oneDNN matmul on the whole
// product (weights prepacked, its own OpenMP team of the same size); the four products of a BERT-base
// layer on both f32 backends (BM_EncoderDense) and the packed GEMM's microkernel alone. Reports GFLOP/s
// (2·m·k·n per run).
//
//   dense_bench --benchmark_repetitions=5 --benchmark_enable_random_interleaving=true
//       --benchmark_report_aggregates_only=true
#include <omp.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <benchmark/benchmark.h>
#include <tbb/task_arena.h>
#include <oneapi/dnnl/dnnl.hpp>

#include "bench_values.hpp"
#include "ops/dense/dense_kernel.hpp"
#include "ops/dense/gated_dense_kernel.hpp"
#include "ops/dense/matmul_kernel.hpp"
#include "ops/dense/packed_gemm.hpp"
#include "ops/dense/synaptic_gate_kernel.hpp"
#include "quarks/quarks.hpp"

namespace {

constexpr std::int64_t kK = 768;
constexpr std::int64_t kN = 3072;

using quarks::bench::random_values;
using quarks::bench::Scratch;

void set_flops(benchmark::State& state, double flops_per_run) {
  state.counters["GFLOP/s"] = benchmark::Counter(flops_per_run * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}

// Builds a kernel with make() (a unique_ptr) inside a TBB arena of `threads` threads and times
// run(kernel, scratch) once per iteration. A kernel that cannot be built here (bf16 on a CPU without
// AVX512-BF16) skips the benchmark with its error.
template <class Make, class Run>
void time_kernel(benchmark::State& state, int threads, const Make& make, const Run& run) {
  tbb::task_arena arena(threads);
  arena.execute([&] {
    try {
      const auto kernel = make();
      Scratch scratch(kernel->scratch_bytes());
      for (auto _ : state) run(*kernel, scratch.data());
    } catch (const quarks::Error& e) {
      state.SkipWithError(e.what());
    }
  });
}

// Args: m, threads, bf16 (0/1), activation (0 identity, 1 gelu).
void BM_DenseKernel(benchmark::State& state) {
  const std::int64_t m = state.range(0);
  const int threads = static_cast<int>(state.range(1));
  quarks::ops::DenseConfig c;
  c.m = m;
  c.k = kK;
  c.n = kN;
  c.bf16_weights = state.range(2) != 0;
  c.activation = state.range(3) != 0 ? quarks::Activation::gelu() : quarks::Activation::identity();
  c.max_threads = threads;
  const auto w = random_values(static_cast<std::size_t>(kK * kN), 1);
  const auto b = random_values(static_cast<std::size_t>(kN), 2);
  const auto x = random_values(static_cast<std::size_t>(m * kK), 3);
  std::vector<float> y(static_cast<std::size_t>(m * kN));
  time_kernel(
      state, threads, [&] { return std::make_unique<quarks::ops::DenseKernel>(c, w.data(), b.data()); },
      [&](const auto& kernel, std::byte* scratch) {
        kernel.run(x.data(), y.data(), scratch);
        benchmark::DoNotOptimize(y.data());
      });
  set_flops(state, 2.0 * static_cast<double>(m * kK * kN));
}

// Args: m, threads. The same dense layer through the public API: GraphBuilder -> compile -> Session,
// writing into a caller-provided buffer, as a service would run it.
void BM_ModelDense(benchmark::State& state) {
  const std::int64_t m = state.range(0);
  const int threads = static_cast<int>(state.range(1));
  const auto w = random_values(static_cast<std::size_t>(kK * kN), 1);
  const auto b = random_values(static_cast<std::size_t>(kN), 2);
  const auto x = random_values(static_cast<std::size_t>(m * kK), 3);
  std::vector<float> y(static_cast<std::size_t>(m * kN));
  quarks::GraphBuilder g;
  auto xv = g.input("x", {m, kK});
  g.output("y", g.dense("dense", xv, g.constant("w", quarks::Tensor::from_f32({kK, kN}, w)),
                        g.constant("b", quarks::Tensor::from_f32({kN}, b))));
  const quarks::Model model = quarks::compile(g.build(), {.threads = threads});
  quarks::Session session(model);
  const quarks::NamedInput inputs[] = {{"x", quarks::ConstTensorView(x.data(), {m, kK})}};
  const quarks::NamedOutput outputs[] = {{"y", quarks::TensorView(y.data(), {m, kN})}};
  for (auto _ : state) {
    session.run(inputs, outputs);
    benchmark::DoNotOptimize(y.data());
  }
  set_flops(state, 2.0 * static_cast<double>(m * kK * kN));
}

// One oneDNN matmul on the whole product with bias, weights prepacked, run by its own OpenMP team.
// In bf16 mode x is given already in bf16 (the conversion is not timed): an upper bound for bare oneDNN.
void BM_BareOneDnn(benchmark::State& state) {
  using dnnl::memory;
  const std::int64_t m = state.range(0);
  const int threads = static_cast<int>(state.range(1));
  const bool bf16 = state.range(2) != 0;
  const memory::data_type in = bf16 ? memory::data_type::bf16 : memory::data_type::f32;
  const int saved_threads = omp_get_max_threads();
  omp_set_num_threads(threads);  // oneDNN sizes its blocking for the team at creation
  dnnl::engine eng(dnnl::engine::kind::cpu, 0);
  dnnl::stream stream(eng);
  const memory::desc src({m, kK}, in, memory::format_tag::ab);
  const memory::desc wany({kK, kN}, in, memory::format_tag::any);
  const memory::desc bias({1, kN}, memory::data_type::f32, memory::format_tag::ab);
  const memory::desc dst({m, kN}, memory::data_type::f32, memory::format_tag::ab);
  dnnl::matmul::primitive_desc pd;
  try {
    pd = dnnl::matmul::primitive_desc(dnnl::matmul::desc(src, wany, bias, dst), eng);
  } catch (const dnnl::error& e) {  // bf16 on a CPU without AVX512-BF16
    omp_set_num_threads(saved_threads);
    state.SkipWithError(e.what());
    return;
  }
  const dnnl::matmul matmul(pd);

  auto w = random_values(static_cast<std::size_t>(kK * kN), 1);
  auto b = random_values(static_cast<std::size_t>(kN), 2);
  auto x = random_values(static_cast<std::size_t>(m * kK), 3);
  std::vector<float> y(static_cast<std::size_t>(m * kN));
  memory w_user({{kK, kN}, memory::data_type::f32, memory::format_tag::ab}, eng, w.data());
  memory w_packed(pd.weights_desc(), eng);
  dnnl::reorder(w_user, w_packed).execute(stream, w_user, w_packed);
  memory x_user({{m, kK}, memory::data_type::f32, memory::format_tag::ab}, eng, x.data());
  memory x_mem(src, eng);
  dnnl::reorder(x_user, x_mem).execute(stream, x_user, x_mem);
  memory b_mem(bias, eng, b.data());
  memory y_mem(dst, eng, y.data());
  stream.wait();
  for (auto _ : state) {
    matmul.execute(
        stream, {{DNNL_ARG_SRC, x_mem}, {DNNL_ARG_WEIGHTS, w_packed}, {DNNL_ARG_BIAS, b_mem}, {DNNL_ARG_DST, y_mem}});
    stream.wait();
    benchmark::DoNotOptimize(y.data());
  }
  omp_set_num_threads(saved_threads);
  set_flops(state, 2.0 * static_cast<double>(m * kK * kN));
}

// Args: m, threads, bf16, backend (0 oneDNN, 1 packed GEMM). SwiGLU's up step: silu(x·W1 + b1) ⊙
// (x·W2 + b2), 2·(2·m·k·n) flops.
void BM_GatedDenseKernel(benchmark::State& state) {
  const std::int64_t m = state.range(0);
  const int threads = static_cast<int>(state.range(1));
  quarks::ops::GatedDenseConfig c;
  c.m = m;
  c.k = kK;
  c.n = kN;
  c.f = quarks::Activation::silu();
  c.g = quarks::Activation::identity();
  c.bf16_weights = state.range(2) != 0;
  c.backend = state.range(3) != 0 ? quarks::ops::DenseBackend::kPackedGemm : quarks::ops::DenseBackend::kOneDnn;
  c.max_threads = threads;
  const auto w1 = random_values(static_cast<std::size_t>(kK * kN), 1);
  const auto w2 = random_values(static_cast<std::size_t>(kK * kN), 4);
  const auto b1 = random_values(static_cast<std::size_t>(kN), 2);
  const auto b2 = random_values(static_cast<std::size_t>(kN), 5);
  const auto x = random_values(static_cast<std::size_t>(m * kK), 3);
  std::vector<float> y(static_cast<std::size_t>(m * kN));
  time_kernel(
      state, threads,
      [&] { return std::make_unique<quarks::ops::GatedDenseKernel>(c, w1.data(), b1.data(), w2.data(), b2.data()); },
      [&](const auto& kernel, std::byte* scratch) {
        kernel.run(x.data(), y.data(), scratch);
        benchmark::DoNotOptimize(y.data());
      });
  set_flops(state, 4.0 * static_cast<double>(m * kK * kN));
}

// Args: mode (0 synapse mask [k,n], 1 per-input [m,k,1], 2 full [m,k,n]), m, threads. Synaptic gating
// 768→3072; GFLOP/s counts the 2·m·k·n of the product (the full mode is memory-bound: it streams
// m·k·n gates, so its GB/s counter is the figure to read).
void BM_SynapticGateKernel(benchmark::State& state) {
  using quarks::ops::SynapticGateMode;
  const auto mode = static_cast<SynapticGateMode>(state.range(0));
  const std::int64_t m = state.range(1);
  const int threads = static_cast<int>(state.range(2));
  quarks::ops::SynapticGateConfig c;
  c.m = m;
  c.k = kK;
  c.n = kN;
  c.mode = mode;
  c.max_threads = threads;
  const std::int64_t gate_count = mode == SynapticGateMode::kSynapseMask ? kK * kN
                                  : mode == SynapticGateMode::kPerInput  ? m * kK
                                                                         : m * kK * kN;
  const auto w = random_values(static_cast<std::size_t>(kK * kN), 1);
  const auto x = random_values(static_cast<std::size_t>(m * kK), 2);
  const auto g = random_values(static_cast<std::size_t>(gate_count), 3);
  std::vector<float> y(static_cast<std::size_t>(m * kN));
  time_kernel(
      state, threads, [&] { return std::make_unique<quarks::ops::SynapticGateKernel>(c, w.data()); },
      [&](const auto& kernel, std::byte* scratch) {
        kernel.run(x.data(), g.data(), y.data(), scratch);
        benchmark::DoNotOptimize(y.data());
      });
  set_flops(state, 2.0 * static_cast<double>(m * kK * kN));
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(sizeof(float)) * gate_count);
}

// Args: m, threads. Attention's score product Q·Kᵀ: 12 heads of [m,64]·[64,m] (Kᵀ by stride).
void BM_MatMulKernelScores(benchmark::State& state) {
  const std::int64_t m = state.range(0);
  const int threads = static_cast<int>(state.range(1));
  quarks::ops::MatMulConfig c;
  c.batch = 12;
  c.m = m;
  c.k = 64;
  c.n = m;
  c.trans_b = true;
  c.a_batch_stride = m * 64;
  c.b_batch_stride = m * 64;
  c.max_threads = threads;
  const auto q = random_values(static_cast<std::size_t>(12 * m * 64), 1);
  const auto k = random_values(static_cast<std::size_t>(12 * m * 64), 2);
  std::vector<float> y(static_cast<std::size_t>(12 * m * m));
  time_kernel(
      state, threads, [&] { return std::make_unique<quarks::ops::MatMulKernel>(c); },
      [&](const auto& kernel, std::byte* scratch) {
        kernel.run(q.data(), k.data(), y.data(), scratch);
        benchmark::DoNotOptimize(y.data());
      });
  set_flops(state, 2.0 * static_cast<double>(12 * m * 64 * m));
}

// The dense products of a BERT-base encoder layer: fused QKV 768→2304, attention output 768→768, FFN up
// 768→3072 (+ GELU), FFN down 3072→768, all with bias.
struct EncoderShape {
  std::int64_t k, n;
  bool gelu;
};
constexpr EncoderShape kEncoderShapes[] = {
    {768, 2304, false}, {768, 768, false}, {768, 3072, true}, {3072, 768, false}};

// Args: shape (index into kEncoderShapes), m, threads, backend (0 oneDNN, 1 packed GEMM). DenseKernel with
// each f32 product side by side.
void BM_EncoderDense(benchmark::State& state) {
  const EncoderShape& s = kEncoderShapes[state.range(0)];
  const std::int64_t m = state.range(1);
  const int threads = static_cast<int>(state.range(2));
  quarks::ops::DenseConfig c;
  c.m = m;
  c.k = s.k;
  c.n = s.n;
  c.activation = s.gelu ? quarks::Activation::gelu() : quarks::Activation::identity();
  c.max_threads = threads;
  c.backend = state.range(3) != 0 ? quarks::ops::DenseBackend::kPackedGemm : quarks::ops::DenseBackend::kOneDnn;
  const auto w = random_values(static_cast<std::size_t>(s.k * s.n), 1);
  const auto b = random_values(static_cast<std::size_t>(s.n), 2);
  const auto x = random_values(static_cast<std::size_t>(m * s.k), 3);
  std::vector<float> y(static_cast<std::size_t>(m * s.n));
  time_kernel(
      state, threads, [&] { return std::make_unique<quarks::ops::DenseKernel>(c, w.data(), b.data()); },
      [&](const auto& kernel, std::byte* scratch) {
        kernel.run(x.data(), y.data(), scratch);
        benchmark::DoNotOptimize(y.data());
      });
  set_flops(state, 2.0 * static_cast<double>(m * s.k * s.n));
  state.SetLabel(std::to_string(s.k) + "x" + std::to_string(s.n) + (state.range(3) != 0 ? " packed" : " onednn"));
}

void EncoderArgs(benchmark::internal::Benchmark* b) {
  b->ArgNames({"shape", "m", "threads", "packed"});
  for (std::int64_t shape = 0; shape < 4; ++shape) {
    for (std::int64_t m : {128, 512}) {
      for (int threads : {1, 2}) {
        for (int packed : {0, 1}) b->Args({shape, m, threads, packed});
      }
    }
  }
}

// The packed GEMM's microkernel alone on one L1-resident register tile (kc = 256): the single-core
// ceiling of the GEMM (its FMA throughput with the loads it needs), the figure to compare tiles with.
void BM_GemmMicrokernel(benchmark::State& state) {
  constexpr std::int64_t kc = 256;
  constexpr std::int64_t kReps = 1000;
  const int rows = quarks::ops::dense_detail::gemm_tile_rows();
  const auto values = random_values(static_cast<std::size_t>(kc * (rows + 16) + 16 * rows), 7);
  Scratch a_bytes(sizeof(float) * kc * rows), b_bytes(sizeof(float) * kc * 16), c_bytes(sizeof(float) * 16 * rows);
  auto* a = reinterpret_cast<float*>(a_bytes.data());
  auto* b = reinterpret_cast<float*>(b_bytes.data());
  auto* c = reinterpret_cast<float*>(c_bytes.data());
  std::copy_n(values.begin(), kc * rows, a);
  std::copy_n(values.begin() + kc * rows, kc * 16, b);
  std::fill_n(c, 16 * rows, 0.0f);
  for (auto _ : state) {
    quarks::ops::dense_detail::gemm_microkernel_loop(a, b, c, kc, kReps);
    benchmark::DoNotOptimize(c);
  }
  set_flops(state, 2.0 * rows * 16 * kc * kReps);
  state.SetLabel(std::to_string(rows) + "x16 tile");
}

void DenseArgs(benchmark::internal::Benchmark* b) {
  b->ArgNames({"m", "threads", "bf16", "gelu"});
  for (int bf16 : {0, 1}) {
    for (std::int64_t m : {128, 1024}) {
      for (int threads : {1, 2}) b->Args({m, threads, bf16, 0});
    }
  }
  for (int threads : {1, 2}) b->Args({128, threads, 0, 1});
}

void BareArgs(benchmark::internal::Benchmark* b) {
  b->ArgNames({"m", "threads", "bf16"});
  for (int bf16 : {0, 1}) {
    for (std::int64_t m : {128, 1024}) {
      for (int threads : {1, 2}) b->Args({m, threads, bf16});
    }
  }
}

void GatedArgs(benchmark::internal::Benchmark* b) {
  b->ArgNames({"m", "threads", "bf16", "packed"});
  for (int threads : {1, 2}) {
    for (int packed : {0, 1}) b->Args({128, threads, 0, packed});
  }
  for (int threads : {1, 2}) b->Args({128, threads, 1, 0});
}

BENCHMARK(BM_GemmMicrokernel)->UseRealTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_EncoderDense)->Apply(EncoderArgs)->UseRealTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_DenseKernel)->Apply(DenseArgs)->UseRealTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_ModelDense)
    ->ArgNames({"m", "threads"})
    ->ArgsProduct({{128, 1024}, {1, 2}})
    ->UseRealTime()
    ->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_BareOneDnn)->Apply(BareArgs)->UseRealTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_GatedDenseKernel)->Apply(GatedArgs)->UseRealTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_SynapticGateKernel)
    ->ArgNames({"mode", "m", "threads"})
    ->ArgsProduct({{0, 1}, {128}, {1, 2}})
    ->Args({2, 16, 1})
    ->Args({2, 16, 2})
    ->UseRealTime()
    ->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_MatMulKernelScores)
    ->ArgNames({"m", "threads"})
    ->ArgsProduct({{128, 512}, {1, 2}})
    ->UseRealTime()
    ->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();
