// The gated dense product (GLU family 'up' step): y = f(x·W1 + b1) ⊙ g(x·W2 + b2).
//
// One product per tile over interleaved prepacked weights [W1 tile | W2 tile] (the packed Highway GEMM
// or oneDNN, chosen as in DenseKernel) writes a small per-task buffer; output_gate() combines its two
// halves into y while the buffer is in cache, so the [m, 2n] pre-activations are never written out.
// Threading as DenseKernel (dense_kernel.hpp).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

#include "ops/dense/dense_kernel.hpp"
#include "quarks/activation.hpp"

namespace quarks::ops {

struct GatedDenseConfig {
  std::int64_t m = 0;         ///< rows of x (all leading dims of x flattened); may be 0
  std::int64_t k = 0;         ///< inner dim, >= 1
  std::int64_t n = 0;         ///< output columns
  Activation f;               ///< applied to x·W1 + b1
  Activation g;               ///< applied to x·W2 + b2 (e.g. identity for SwiGLU with f = silu)
  bool bf16_weights = false;  ///< store W1, W2 in bf16 and multiply in bf16 (f32 accumulate, f32 x and y)
  int max_threads = 1;        ///< threads the caller's arena has; decides the tiling
  DenseBackend backend = DenseBackend::kAuto;  ///< f32 product (ignored for bf16 weights)
  /// As DenseConfig::weights_cache: packed-GEMM weights shared with other kernels of the same owner.
  dense_detail::PackedWeightsCache* weights_cache = nullptr;
};

/// y[m,n] = f(x[m,k]·W1[k,n] + b1[n]) ⊙ g(x·W2[k,n] + b2[n]). W1, W2 row-major f32 [k,n]; b1, b2 f32
/// [n], each may be null (zero). run() is const and safe to call concurrently from several threads as
/// long as each call has its own scratch buffer.
class GatedDenseKernel {
 public:
  GatedDenseKernel(const GatedDenseConfig& config, const float* w1, const float* b1, const float* w2, const float* b2);
  ~GatedDenseKernel();
  GatedDenseKernel(const GatedDenseKernel&) = delete;
  GatedDenseKernel& operator=(const GatedDenseKernel&) = delete;

  const GatedDenseConfig& config() const noexcept;
  /// Bytes of scratch one run() needs (per-task product buffers, oneDNN scratchpads), 64-aligned.
  std::size_t scratch_bytes() const noexcept;
  /// x: [m,k] row-major, y: [m,n] row-major (must not alias x). scratch: scratch_bytes() bytes,
  /// 64-byte aligned.
  void run(const float* x, float* y, std::byte* scratch) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace quarks::ops
