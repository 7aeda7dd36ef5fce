// Dense products: y = act(x·W + b) with W constant, prepacked at construction. Two backends (see
// DenseBackend): the Highway GEMM of ops/dense/packed_gemm.hpp for f32 on CPUs without AVX-512, where
// oneDNN 2.6 has no brgemm and re-packs weights on every call (measured there: faster at 1 thread and
// for few rows, the same at 2 threads; numbers in packed_gemm.hpp), and oneDNN matmuls otherwise
// (bf16 weights; AVX-512 CPUs, where its brgemm kernels are expected to do better — not measured here).
//
// Threading (DESIGN.md §2): the output is split into tiles (TileGrid), scheduled with tbb::parallel_for
// inside whatever tbb::task_arena the caller runs in. Each tile is one packed-GEMM call or one
// single-threaded oneDNN primitive writing into the full output with a row stride: Debian's oneDNN runs
// on OpenMP, so a DenseKernel never lets it start an OpenMP team.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

#include "quarks/activation.hpp"

namespace quarks::ops {

namespace dense_detail {
class PackedWeightsCache;
}  // namespace dense_detail

/// Which f32 product a dense kernel runs. kAuto: the Highway GEMM on prepacked panels
/// (ops/dense/packed_gemm.hpp) where oneDNN has no brgemm (CPUs without AVX-512), oneDNN elsewhere.
/// bf16 weights always run on oneDNN. The explicit choices exist for benchmarks and tests.
enum class DenseBackend { kAuto, kOneDnn, kPackedGemm };

/// Whether a dense kernel with this backend and weight type runs the packed GEMM (see DenseBackend).
bool use_packed_gemm(DenseBackend backend, bool bf16_weights);

struct DenseConfig {
  std::int64_t m = 0;                          ///< rows of x (all leading dims of x flattened); may be 0
  std::int64_t k = 0;                          ///< inner dim
  std::int64_t n = 0;                          ///< output columns
  Activation activation;                       ///< applied to each output tile while it is in cache
  bool bf16_weights = false;                   ///< store W in bf16 and multiply in bf16 (f32 accumulate, f32 x and y)
  int max_threads = 1;                         ///< threads the caller's arena has; decides the tiling
  DenseBackend backend = DenseBackend::kAuto;  ///< f32 product (ignored for bf16 weights)
  /// Packed-GEMM weights are taken from (and left in) this cache when given, so that kernels built from
  /// the same constant weights share one packed copy (packed_gemm.hpp); null: the kernel packs its own.
  dense_detail::PackedWeightsCache* weights_cache = nullptr;
};

/// y[m,n] = act(x[m,k]·W[k,n] + b[n]). Construction prepacks W (row-major f32 [k,n]) and b (f32 [n],
/// may be null) and creates every oneDNN primitive. run() is const and safe to call concurrently from
/// several threads as long as each call has its own scratch buffer.
class DenseKernel {
 public:
  DenseKernel(const DenseConfig& config, const float* w, const float* bias);
  ~DenseKernel();
  DenseKernel(const DenseKernel&) = delete;
  DenseKernel& operator=(const DenseKernel&) = delete;

  const DenseConfig& config() const noexcept;
  /// Bytes of scratch one run() needs (oneDNN scratchpads of all tiles, epilogue buffers), 64-aligned.
  std::size_t scratch_bytes() const noexcept;
  /// x: [m,k] row-major, y: [m,n] row-major (must not alias x). scratch: scratch_bytes() bytes,
  /// 64-byte aligned.
  void run(const float* x, float* y, std::byte* scratch) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace quarks::ops
