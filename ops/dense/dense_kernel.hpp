// Dense products on oneDNN: y = act(x·W + b) with W constant, prepacked at construction.
//
// Threading (DESIGN.md §2): Debian's oneDNN runs on OpenMP, so a DenseKernel never lets it start an
// OpenMP team. The output is split into tiles; each tile is one single-threaded oneDNN primitive
// writing into the full output with a row stride, and the tiles are scheduled with
// tbb::parallel_for — inside whatever tbb::task_arena the caller runs in.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

#include "quarks/activation.hpp"

namespace quarks::ops {

struct DenseConfig {
  std::int64_t m = 0;         ///< rows of x (all leading dims of x flattened); may be 0
  std::int64_t k = 0;         ///< inner dim
  std::int64_t n = 0;         ///< output columns
  Activation activation;      ///< applied to each output tile while it is in cache
  bool bf16_weights = false;  ///< store W in bf16 and multiply in bf16 (f32 accumulate, f32 x and y)
  int max_threads = 1;        ///< threads the caller's arena has; decides the tiling
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
