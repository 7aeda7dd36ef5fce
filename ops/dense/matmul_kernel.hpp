// Batched product of two runtime f32 tensors, y[b] = op(A[b])·op(B[b]) — attention's Q·Kᵀ and P·V.
//
// The work is split over batch × row tiles (× column tiles when the batch alone is too small for the
// arena) under tbb::parallel_for. Each task packs its tile of op(B) into the packed GEMM's column panels
// (a transposed B is gathered while packing; a transposed A has its rows copied out), then runs the
// dense kernels' register-tiled GEMM (packed_gemm.hpp) on it: no oneDNN call, no heap allocation per run.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

namespace quarks::ops {

struct MatMulConfig {
  std::int64_t batch = 1;           ///< number of products; may be 0
  std::int64_t m = 0;               ///< rows of op(A) and y; may be 0
  std::int64_t k = 0;               ///< inner dim, >= 1
  std::int64_t n = 0;               ///< columns of op(B) and y; may be 0
  bool trans_a = false;             ///< A[b] is stored [k, m] (row-major) and used transposed
  bool trans_b = false;             ///< B[b] is stored [n, k] (row-major) and used transposed
  std::int64_t a_batch_stride = 0;  ///< elements between A[b] and A[b+1]; 0 = one A for every b
  std::int64_t b_batch_stride = 0;  ///< elements between B[b] and B[b+1]; 0 = one B for every b
  int max_threads = 1;              ///< threads the caller's arena has; decides the tiling
};

/// y[b] = op(A[b])·op(B[b]) for b < batch, y contiguous [batch, m, n]. run() is const and safe to call
/// concurrently from several threads as long as each call has its own scratch buffer.
class MatMulKernel {
 public:
  explicit MatMulKernel(const MatMulConfig& config);
  ~MatMulKernel();
  MatMulKernel(const MatMulKernel&) = delete;
  MatMulKernel& operator=(const MatMulKernel&) = delete;

  const MatMulConfig& config() const noexcept;
  /// Bytes of scratch one run() needs (packed tiles of B, copied rows of A, GEMM blocks), 64-aligned.
  std::size_t scratch_bytes() const noexcept;
  /// a, b: as described by the config; y: [batch, m, n] row-major, must not alias a or b. scratch:
  /// scratch_bytes() bytes, 64-byte aligned.
  void run(const float* a, const float* b, float* y, std::byte* scratch) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace quarks::ops
