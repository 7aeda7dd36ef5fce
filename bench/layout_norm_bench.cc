// Single-thread throughput of the normalization, layout and reduction kernels on transformer-sized tensors that fit in
// L2/L3 (the engine runs them per TBB block, on data a previous op just wrote), next to std::memcpy of the
// same bytes as the ceiling. Bytes counted: one read and one write of the tensor (SetBytesProcessed), so
// compare each kernel's bytes/s with BM_Memcpy's from the same run: the machine is shared and absolute
// figures drift.
//
// Run: layout_norm_bench --benchmark_repetitions=5 --benchmark_report_aggregates_only=true
#include <benchmark/benchmark.h>

#include <cstdint>
#include <cstring>
#include <span>
#include <vector>

#include "bench_values.hpp"
#include "ops/layout/layout_kernels.hpp"
#include "ops/normalization/normalization_kernels.hpp"
#include "ops/reduction/reduction_kernels.hpp"

namespace {

std::vector<float> random_values(std::size_t count, float lo, float hi) {
  return quarks::bench::random_values(count, 7, lo, hi);
}

void set_bytes(benchmark::State& state, std::size_t elements) {
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * 2 *
                          static_cast<std::int64_t>(elements * sizeof(float)));
}

// Args: rows, cols (a [rows, cols] tensor).
void BM_Memcpy(benchmark::State& state) {
  const auto n = static_cast<std::size_t>(state.range(0) * state.range(1));
  const std::vector<float> x = random_values(n, -1.0f, 1.0f);
  std::vector<float> y(n);
  for (auto _ : state) {
    std::memcpy(y.data(), x.data(), n * sizeof(float));
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  set_bytes(state, n);
}

// Args: rows, cols; softmax over the last axis (attention scores [heads * seq, seq]).
template <bool kLog>
void BM_Softmax(benchmark::State& state) {
  const std::int64_t rows = state.range(0);
  const std::int64_t cols = state.range(1);
  const auto n = static_cast<std::size_t>(rows * cols);
  const std::vector<float> x = random_values(n, -8.0f, 8.0f);
  std::vector<float> y(n);
  for (auto _ : state) {
    (kLog ? quarks::ops::log_softmax : quarks::ops::softmax)(x.data(), y.data(), rows, cols, 1);
    benchmark::DoNotOptimize(y.data());
  }
  set_bytes(state, n);
}

// Args: axis_len, inner; softmax over the middle axis of a [1, axis_len, inner] tensor.
void BM_SoftmaxMiddleAxis(benchmark::State& state) {
  const std::int64_t axis = state.range(0);
  const std::int64_t inner = state.range(1);
  const auto n = static_cast<std::size_t>(axis * inner);
  const std::vector<float> x = random_values(n, -8.0f, 8.0f);
  std::vector<float> y(n);
  for (auto _ : state) {
    quarks::ops::softmax(x.data(), y.data(), 1, axis, inner);
    benchmark::DoNotOptimize(y.data());
  }
  set_bytes(state, n);
}

// Args: rows, cols; with scale and bias.
template <bool kRms>
void BM_Norm(benchmark::State& state) {
  const std::int64_t rows = state.range(0);
  const std::int64_t cols = state.range(1);
  const auto n = static_cast<std::size_t>(rows * cols);
  const std::vector<float> x = random_values(n, -3.0f, 5.0f);
  const std::vector<float> scale = random_values(static_cast<std::size_t>(cols), 0.5f, 1.5f);
  const std::vector<float> bias = random_values(static_cast<std::size_t>(cols), -1.0f, 1.0f);
  std::vector<float> y(n);
  for (auto _ : state) {
    (kRms ? quarks::ops::rms_norm : quarks::ops::layer_norm)(x.data(), scale.data(), bias.data(), 1e-5f, y.data(), rows,
                                                             cols);
    benchmark::DoNotOptimize(y.data());
  }
  set_bytes(state, n);
}

// Args: b, s, h, d; perm index 0: [b,s,h,d] -> [b,h,s,d] (heads split, runs of d), 1: [b,s,h,d] -> [b,h,d,s]
// (K transposed for Q K^T, the last axis moves), 2: a plain 2-D transpose of [b*s, h*d].
void BM_Transpose(benchmark::State& state) {
  const std::int64_t b = state.range(0), s = state.range(1), h = state.range(2), d = state.range(3);
  const auto n = static_cast<std::size_t>(b * s * h * d);
  const std::vector<float> x = random_values(n, -1.0f, 1.0f);
  std::vector<float> y(n);
  std::vector<std::int64_t> shape = {b, s, h, d};
  std::vector<int> perm;
  switch (state.range(4)) {
    case 0: perm = {0, 2, 1, 3}; break;
    case 1: perm = {0, 2, 3, 1}; break;
    default:
      shape = {b * s, h * d};
      perm = {1, 0};
      break;
  }
  for (auto _ : state) {
    quarks::ops::transpose(x.data(), shape, perm, y.data());
    benchmark::DoNotOptimize(y.data());
  }
  set_bytes(state, n);
}

// Args: rows, cols; x[:, ::2] of a [rows, 2 * cols] tensor into a contiguous [rows, cols] one.
void BM_StridedCopyStep2(benchmark::State& state) {
  const std::int64_t rows = state.range(0);
  const std::int64_t cols = state.range(1);
  const std::vector<float> x = random_values(static_cast<std::size_t>(rows * cols * 2), -1.0f, 1.0f);
  std::vector<float> y(static_cast<std::size_t>(rows * cols));
  const std::int64_t shape[2] = {rows, cols};
  const std::int64_t src_strides[2] = {2 * cols, 2};
  const std::int64_t dst_strides[2] = {cols, 1};
  for (auto _ : state) {
    quarks::ops::strided_copy(x.data(), shape, src_strides, y.data(), dst_strides);
    benchmark::DoNotOptimize(y.data());
  }
  set_bytes(state, y.size());
}

// Args: rows, cols, axis: sum of a [rows, cols] tensor over axis 1 (rows mode) or 0 (columns mode). Bytes
// counted: the input read once.
void BM_ReduceSum(benchmark::State& state) {
  const std::int64_t rows = state.range(0);
  const std::int64_t cols = state.range(1);
  const int axis = static_cast<int>(state.range(2));
  const auto n = static_cast<std::size_t>(rows * cols);
  const std::vector<float> x = random_values(n, -1.0f, 1.0f);
  std::vector<float> y(static_cast<std::size_t>(axis == 1 ? rows : cols));
  const std::int64_t shape[2] = {rows, cols};
  const quarks::ops::Reduction sum(quarks::ops::ReduceOp::kSum, shape, std::span<const int>(&axis, 1));
  for (auto _ : state) {
    sum.run(x.data(), y.data());
    benchmark::DoNotOptimize(y.data());
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * n * sizeof(float)));
}

// Args: rows, cols: max over the last axis.
void BM_ReduceMax(benchmark::State& state) {
  const std::int64_t rows = state.range(0);
  const std::int64_t cols = state.range(1);
  const auto n = static_cast<std::size_t>(rows * cols);
  const std::vector<float> x = random_values(n, -1.0f, 1.0f);
  std::vector<float> y(static_cast<std::size_t>(rows));
  const std::int64_t shape[2] = {rows, cols};
  const int axis = 1;
  const quarks::ops::Reduction max(quarks::ops::ReduceOp::kMax, shape, std::span<const int>(&axis, 1));
  for (auto _ : state) {
    max.run(x.data(), y.data());
    benchmark::DoNotOptimize(y.data());
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * n * sizeof(float)));
}

// Args: vocabulary, width, tokens: an embedding lookup, rows of `width` floats picked from [vocabulary, width].
void BM_Gather(benchmark::State& state) {
  const std::int64_t vocab = state.range(0);
  const std::int64_t width = state.range(1);
  const std::int64_t tokens = state.range(2);
  const std::vector<float> table = random_values(static_cast<std::size_t>(vocab * width), -1.0f, 1.0f);
  std::vector<std::int64_t> ids(static_cast<std::size_t>(tokens));
  std::mt19937 rng(3);
  for (auto& id : ids) id = std::uniform_int_distribution<std::int64_t>(0, vocab - 1)(rng);
  std::vector<float> y(static_cast<std::size_t>(tokens * width));
  for (auto _ : state) {
    quarks::ops::gather(table.data(), 1, vocab, width, ids.data(), tokens, y.data(), sizeof(float));
    benchmark::DoNotOptimize(y.data());
  }
  set_bytes(state, y.size());
}

BENCHMARK(BM_Memcpy)->Args({1536, 128})->Args({128, 768})->Args({1024, 1024});
BENCHMARK(BM_Softmax<false>)->Args({1536, 128})->Args({384, 512})->Args({16, 32000});
BENCHMARK(BM_Softmax<true>)->Args({1536, 128})->Args({16, 32000});
BENCHMARK(BM_SoftmaxMiddleAxis)->Args({128, 768})->Args({512, 64});
BENCHMARK(BM_Norm<false>)->Args({128, 768})->Args({512, 768});
BENCHMARK(BM_Norm<true>)->Args({128, 768})->Args({512, 768});
BENCHMARK(BM_Transpose)
    ->Args({1, 128, 12, 64, 0})
    ->Args({1, 128, 12, 64, 1})
    ->Args({1, 128, 12, 64, 2})
    ->Args({1, 1024, 16, 64, 2});
BENCHMARK(BM_StridedCopyStep2)->Args({128, 768});
BENCHMARK(BM_ReduceSum)->Args({128, 768, 1})->Args({128, 768, 0})->Args({16, 32000, 1})->Args({4096, 7, 1});
BENCHMARK(BM_ReduceMax)->Args({128, 768})->Args({16, 32000});
BENCHMARK(BM_Gather)->Args({32000, 768, 128})->Args({1000, 1, 4096});

}  // namespace

BENCHMARK_MAIN();
