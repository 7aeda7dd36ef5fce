// Bandwidth of the quark kernels on 16M floats (64 MiB per array, far beyond the caches, so every
// kernel streams from memory) against a streaming triad a[i] = b[i] + s·c[i], at 1 and 2 threads.
//
// Fairness: the triad is compiled exactly like the kernels (Highway dynamic dispatch, the same
// ForEachVector loop with ordinary stores, no non-temporal stores), and both are split the same way:
// tbb::parallel_for over blocks of 64K floats inside a tbb::task_arena of the thread count. Bytes per
// element count the streams each kernel must move: 3 (two reads, one write) for triad, output_gate,
// multiplex and binary mul; 2 (one read, one write) for the activations. Compare the kernels' bytes/s
// with the triad's from the same run: the machine is shared and absolute figures drift.
//
// Run: quark_kernels_bench --benchmark_repetitions=5 --benchmark_report_aggregates_only=true
#include <benchmark/benchmark.h>

#include <cstddef>
#include <cstdint>

#include <tbb/blocked_range.h>
#include <tbb/parallel_for.h>
#include <tbb/partitioner.h>
#include <tbb/task_arena.h>

#include "hwy/aligned_allocator.h"
#include "ops/activation/activation_kernels.hpp"
#include "ops/elementwise/binary_kernels.hpp"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "bench/quark_kernels_bench.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep

#include "hwy/highway.h"
#include "ops/elementwise/elementwise_loop-inl.h"

HWY_BEFORE_NAMESPACE();
namespace quarks::ops::HWY_NAMESPACE {

void TriadImpl(const float* b, const float* c, float s, float* a, std::size_t n) {
  ForEachVector(
      a, n, [&](auto d, auto bv, auto cv) { return hn::MulAdd(hn::Set(d, s), cv, bv); }, Run{b}, Run{c});
}

}  // namespace quarks::ops::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace quarks::ops {
namespace {

HWY_EXPORT(TriadImpl);

constexpr std::size_t kElements = std::size_t{16} << 20;  // 64 MiB per f32 array
constexpr std::size_t kBlock = std::size_t{64} << 10;     // floats per parallel_for block (256 KiB)

// Three arrays shared by all benchmarks; every kernel writes `out` and only reads `in1`/`in2`, so the
// inputs keep their values (in [-4, 4]: no subnormals, no overflow) across iterations.
struct Arrays {
  hwy::AlignedFreeUniquePtr<float[]> out = hwy::AllocateAligned<float>(kElements);
  hwy::AlignedFreeUniquePtr<float[]> in1 = hwy::AllocateAligned<float>(kElements);
  hwy::AlignedFreeUniquePtr<float[]> in2 = hwy::AllocateAligned<float>(kElements);

  Arrays() {
    for (std::size_t i = 0; i < kElements; ++i) {
      out[i] = 0.0f;
      in1[i] = static_cast<float>(static_cast<int>((i * 2654435761u) >> 8 & 0xFFFF) - 32768) / 8192.0f;
      in2[i] = static_cast<float>(static_cast<int>((i * 40503u + 12345u) >> 4 & 0xFFFF) - 32768) / 8192.0f;
    }
  }
};

Arrays& arrays() {
  static Arrays instance;
  return instance;
}

tbb::task_arena& arena(int threads) {
  static tbb::task_arena one(1);
  static tbb::task_arena two(2);
  return threads == 1 ? one : two;
}

// Runs kernel(begin, count) over [0, kElements) in blocks of kBlock floats on `threads` threads.
template <class Kernel>
void run_blocks(int threads, const Kernel& kernel) {
  arena(threads).execute([&] {
    tbb::parallel_for(
        tbb::blocked_range<std::size_t>(0, kElements, kBlock),
        [&](const tbb::blocked_range<std::size_t>& r) { kernel(r.begin(), r.size()); }, tbb::simple_partitioner());
  });
}

// One benchmark body: `streams` arrays of kElements floats moved per iteration.
template <class Kernel>
void bench_streams(benchmark::State& state, int streams, const Kernel& kernel) {
  const int threads = static_cast<int>(state.range(0));
  Arrays& a = arrays();
  for (auto _ : state) {
    run_blocks(threads, [&](std::size_t begin, std::size_t count) {
      kernel(a.in1.get() + begin, a.in2.get() + begin, a.out.get() + begin, count);
    });
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(streams * kElements * sizeof(float)));
}

void BM_Triad(benchmark::State& state) {
  bench_streams(state, 3, [](const float* b, const float* c, float* a, std::size_t n) {
    HWY_DYNAMIC_DISPATCH(TriadImpl)(b, c, 3.0f, a, n);
  });
}

// GLU-style sigmoid gate: y = s1 · σ(s2).
void BM_OutputGateSigmoid(benchmark::State& state) {
  const Activation f = Activation::identity(), g = Activation::sigmoid();
  bench_streams(state, 3,
                [&](const float* s1, const float* s2, float* y, std::size_t n) { output_gate(f, g, s1, s2, y, n); });
}

void bench_activation(benchmark::State& state, const Activation& f) {
  bench_streams(state, 2, [&](const float* x, const float*, float* y, std::size_t n) { activation(f, x, y, n); });
}
void BM_ActivationSquare(benchmark::State& state) { bench_activation(state, Activation::square()); }
void BM_ActivationSilu(benchmark::State& state) { bench_activation(state, Activation::silu()); }
void BM_ActivationGelu(benchmark::State& state) { bench_activation(state, Activation::gelu()); }

// y = σ(s + 0.5·a) with a full attention run (a_stride 1).
void BM_MultiplexSigmoid(benchmark::State& state) {
  const Activation f = Activation::sigmoid();
  bench_streams(state, 3,
                [&](const float* s, const float* a, float* y, std::size_t n) { multiplex(f, s, a, 1, 0.5f, y, n); });
}

void BM_BinaryMul(benchmark::State& state) {
  bench_streams(state, 3, [](const float* a, const float* b, float* y, std::size_t n) {
    binary(BinaryOp::kMul, a, 1, b, 1, y, n);
  });
}

#define QUARKS_BANDWIDTH_BENCHMARK(fn) BENCHMARK(fn)->Arg(1)->Arg(2)->UseRealTime()->Unit(benchmark::kMillisecond)
QUARKS_BANDWIDTH_BENCHMARK(BM_Triad);
QUARKS_BANDWIDTH_BENCHMARK(BM_OutputGateSigmoid);
QUARKS_BANDWIDTH_BENCHMARK(BM_ActivationSquare);
QUARKS_BANDWIDTH_BENCHMARK(BM_ActivationSilu);
QUARKS_BANDWIDTH_BENCHMARK(BM_ActivationGelu);
QUARKS_BANDWIDTH_BENCHMARK(BM_MultiplexSigmoid);
QUARKS_BANDWIDTH_BENCHMARK(BM_BinaryMul);

}  // namespace
}  // namespace quarks::ops

BENCHMARK_MAIN();
#endif  // HWY_ONCE
