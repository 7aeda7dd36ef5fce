// Dense products on weights stored as bf16 rows [N, K] — nn.Linear's layout, read in place from a
// checkpoint's memory, never copied or repacked:
//   y = f(x·W1ᵀ + b1)                      (a dense op), or
//   y = f(x·W1ᵀ + b1) ⊙ g(x·W2ᵀ + b2)       (a gated dense op: the output-gating quark).
//
// Why in place: a language model's weights are most of its memory. Prepacking them (as DenseKernel
// does) keeps a second copy resident beside the checkpoint, and different row counts make oneDNN
// choose different packed layouts. Read in place, the weights are in memory once, shared by every plan.
//
// Two paths, chosen by the row count m:
//  - m <= kGemvMaxRows (decode steps, small batches): the Highway matrix-vector product of
//    gemv_bf16_simd.hpp, which streams each weight row once for all rows of x, in f32 (x is not
//    rounded to bf16). Tasks are ranges of output columns.
//  - more rows (prefill): oneDNN 2.6 brgemm matmuls with the weights described as the strided
//    [K, N] matrix they are (x converted to bf16, f32 accumulation). Measured on a 2-core AMD EPYC
//    Zen 5 (AVX-512 BF16), 1 thread, [512, 2048]·[2048, 8192]: 45.7 ms in place against 45.9 ms on
//    prepacked weights; at m = 1 oneDNN took 1.61 ms in place against 0.64 ms prepacked, hence the
//    Highway path for few rows. The oneDNN path needs AVX-512 (oneDNN 2.6 has no bf16 matmul on
//    AVX2): elsewhere construction with m > kGemvMaxRows throws Error(kUnsupported).
//
// Threading as DenseKernel's (tasks over TBB, one single-threaded primitive per tile).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>

#include "quarks/activation.hpp"

namespace quarks::ops {

struct LinearBf16Config {
  std::int64_t m = 0;  ///< rows of x; may be 0
  std::int64_t k = 0;  ///< inner dim, >= 1
  std::int64_t n = 0;  ///< output columns (rows of each W)
  Activation f;        ///< on x·W1ᵀ + b1
  /// Present: a gated product, y = f(x·W1ᵀ + b1) ⊙ g(x·W2ᵀ + b2).
  std::optional<Activation> g;
  int max_threads = 1;  ///< threads the caller's arena has; decides the tiling
};

/// W1, W2: bf16 bits, [n, k] with row stride ld (>= k); biases f32 [n] or null. The weights must stay
/// alive and unchanged while the kernel exists (they are not copied); biases are copied. run() is const
/// and safe to call concurrently as long as each call has its own scratch.
class LinearBf16Kernel {
 public:
  struct Weights {
    const std::uint16_t* w = nullptr;
    std::int64_t ld = 0;
    const float* bias = nullptr;
  };
  /// Throws Error(kInvalidArgument) for a bad shape, a null weight, ld < k or an activation the
  /// kernels cannot compute; Error(kUnsupported) where oneDNN has no bf16 matmul and m > kGemvMaxRows.
  LinearBf16Kernel(const LinearBf16Config& config, const Weights& w1, const Weights& w2);
  /// A dense product (config.g empty).
  LinearBf16Kernel(const LinearBf16Config& config, const Weights& w1);
  ~LinearBf16Kernel();
  LinearBf16Kernel(const LinearBf16Kernel&) = delete;
  LinearBf16Kernel& operator=(const LinearBf16Kernel&) = delete;

  const LinearBf16Config& config() const noexcept;
  /// Bytes of scratch one run() needs, 64-aligned.
  std::size_t scratch_bytes() const noexcept;
  /// x: [m, k] row-major f32; y: [m, n] row-major (must not alias x); scratch: scratch_bytes() bytes,
  /// 64-byte aligned.
  void run(const float* x, float* y, std::byte* scratch) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace quarks::ops
