// Decode-step products, memory-bound: one row of x times weights far larger than the caches, as in a
// language model's decode step. Side by side, on the same bf16 weights:
//   BM_DecodeInPlace/<threads>/<memory>: LinearBf16Kernel reading [N, K] bf16 rows in place
//     (memory 0: an anonymous Tensor, 2 MiB pages; 1: a file mapping, 4 KiB page-cache pages;
//     2: as 0 but starting 8 bytes past a cache line, as safetensors data often does);
//   BM_DecodePacked/<threads>: DenseKernel on the same weights prepacked by oneDNN (the path before
//     in-place weights; its packed copy is resident beside the checkpoint).
// 16 products of [1, 2048]·[2048, 8192] (512 MiB of weights) are cycled, so each run streams its
// weights from memory. Reports GB/s of weights read.
//
//   decode_bench --benchmark_repetitions=5 --benchmark_enable_random_interleaving=true
//       --benchmark_report_aggregates_only=true
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include <benchmark/benchmark.h>
#include <tbb/task_arena.h>

#include "bench_values.hpp"
#include "ops/dense/dense_kernel.hpp"
#include "ops/dense/linear_bf16_kernel.hpp"
#include "quarks/quarks.hpp"

namespace {

constexpr std::int64_t kK = 2048, kN = 8192, kMatrices = 16;
constexpr std::size_t kMatrixElems = static_cast<std::size_t>(kK * kN);

using quarks::bench::Scratch;

std::vector<std::uint16_t> random_bf16(std::size_t n) {
  const std::vector<float> v = quarks::bench::random_values(static_cast<std::int64_t>(n), 3);
  std::vector<std::uint16_t> out(n);
  for (std::size_t i = 0; i < n; ++i) {
    std::uint32_t u;
    std::memcpy(&u, &v[i], sizeof u);
    out[i] = static_cast<std::uint16_t>(u >> 16);
  }
  return out;
}

// kMatrices copies of one random matrix, in an anonymous Tensor or a mapped temporary file.
class Weights {
 public:
  // offset: elements the weights start past a 64-byte boundary (safetensors data often starts 8 bytes past one).
  Weights(bool file, int offset) {
    const std::vector<std::uint16_t> one = random_bf16(kMatrixElems);
    const std::size_t bytes = kMatrixElems * 2 * kMatrices;
    if (!file) {
      tensor_ = quarks::Tensor(quarks::DType::kBF16, {kMatrices * kN * kK + 32});
      base_ = static_cast<std::uint16_t*>(tensor_.data()) + offset;
      for (int i = 0; i < kMatrices; ++i) std::memcpy(base_ + i * kMatrixElems, one.data(), kMatrixElems * 2);
      return;
    }
    char path[] = "/tmp/quarks_decode_bench_XXXXXX";
    const int fd = ::mkstemp(path);
    if (fd < 0) throw std::runtime_error("mkstemp failed");
    ::unlink(path);
    for (int i = 0; i < kMatrices; ++i) {
      if (::write(fd, one.data(), kMatrixElems * 2) != static_cast<ssize_t>(kMatrixElems * 2)) {
        throw std::runtime_error("write failed");
      }
    }
    void* p = ::mmap(nullptr, bytes, PROT_READ, MAP_PRIVATE, fd, 0);
    ::close(fd);
    if (p == MAP_FAILED) throw std::runtime_error("mmap failed");
    map_ = p;
    map_bytes_ = bytes;
    base_ = static_cast<std::uint16_t*>(p);
  }
  ~Weights() {
    if (map_ != nullptr) ::munmap(map_, map_bytes_);
  }
  Weights(const Weights&) = delete;
  Weights& operator=(const Weights&) = delete;
  const std::uint16_t* matrix(int i) const { return base_ + i * kMatrixElems; }

 private:
  quarks::Tensor tensor_;
  void* map_ = nullptr;
  std::size_t map_bytes_ = 0;
  std::uint16_t* base_ = nullptr;
};

void set_bandwidth(benchmark::State& state) {
  state.counters["GB/s"] =
      benchmark::Counter(static_cast<double>(kMatrixElems * 2) * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}

void BM_DecodeInPlace(benchmark::State& state) {
  const int threads = static_cast<int>(state.range(0));
  const Weights weights(state.range(1) == 1, state.range(1) == 2 ? 4 : 0);
  const std::vector<float> x = quarks::bench::random_values(kK, 1);
  std::vector<float> y(kN);
  tbb::task_arena arena(threads);
  arena.execute([&] {
    std::vector<std::unique_ptr<quarks::ops::LinearBf16Kernel>> kernels;
    quarks::ops::LinearBf16Config c{1, kK, kN, quarks::Activation::identity(), std::nullopt, threads};
    for (int i = 0; i < kMatrices; ++i) {
      kernels.push_back(std::make_unique<quarks::ops::LinearBf16Kernel>(
          c, quarks::ops::LinearBf16Kernel::Weights{weights.matrix(i), kK, nullptr}));
    }
    Scratch scratch(kernels[0]->scratch_bytes());
    for (int i = 0; i < kMatrices; ++i) kernels[i]->run(x.data(), y.data(), scratch.data());  // faults pages in
    int next = 0;
    for (auto _ : state) {
      kernels[next]->run(x.data(), y.data(), scratch.data());
      next = (next + 1) % kMatrices;
      benchmark::DoNotOptimize(y.data());
    }
  });
  set_bandwidth(state);
}

void BM_DecodePacked(benchmark::State& state) {
  const int threads = static_cast<int>(state.range(0));
  const std::vector<float> w = quarks::bench::random_values(kK * kN, 2);  // [K, N] f32, packed to bf16
  const std::vector<float> x = quarks::bench::random_values(kK, 1);
  std::vector<float> y(kN);
  tbb::task_arena arena(threads);
  arena.execute([&] {
    try {
      std::vector<std::unique_ptr<quarks::ops::DenseKernel>> kernels;
      quarks::ops::DenseConfig c;
      c.m = 1;
      c.k = kK;
      c.n = kN;
      c.bf16_weights = true;
      c.max_threads = threads;
      for (int i = 0; i < kMatrices; ++i)
        kernels.push_back(std::make_unique<quarks::ops::DenseKernel>(c, w.data(), nullptr));
      Scratch scratch(kernels[0]->scratch_bytes());
      int next = 0;
      for (auto _ : state) {
        kernels[next]->run(x.data(), y.data(), scratch.data());
        next = (next + 1) % kMatrices;
        benchmark::DoNotOptimize(y.data());
      }
    } catch (const quarks::Error& e) {
      state.SkipWithError(e.what());
    }
  });
  set_bandwidth(state);
}

BENCHMARK(BM_DecodeInPlace)->ArgsProduct({{1, 2}, {0, 1, 2}})->UseRealTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_DecodePacked)->Arg(1)->Arg(2)->UseRealTime()->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();
