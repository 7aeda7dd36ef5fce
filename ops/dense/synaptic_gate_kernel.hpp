// Multiplicative synaptic attention: y[m,n] = Σ_k x[m,k]·W[k,n]·G[..,k,n] — every synapse W[k,n] is
// scaled by a runtime gate G before it carries x (DESIGN.md §1: hypernetworks, fast weights,
// attention weights as input-dependent synapses).
//
// The gate's shape picks the evaluation:
//   kSynapseMask  G[k,n]    one gate per synapse, shared by every row: W⊙G into scratch, then one
//                           product with those runtime weights (MatMulKernel).
//   kPerInput     G[m,k]    one gate per input and row (G[m,k,1] broadcast over n): (x⊙G)·W with W
//                           prepacked for the packed GEMM (packed_gemm.hpp) — m·k·n is never formed.
// No mode calls oneDNN or allocates when it runs.
//   kFull         G[m,k,n]  a gate per row and synapse: memory-bound (G alone is m·k·n floats), a
//                           streaming Highway kernel parallel over row groups and column blocks.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

namespace quarks::ops {

enum class SynapticGateMode { kSynapseMask, kPerInput, kFull };

struct SynapticGateConfig {
  std::int64_t m = 0;  ///< rows of x; may be 0
  std::int64_t k = 0;  ///< inputs, >= 1
  std::int64_t n = 0;  ///< outputs
  SynapticGateMode mode = SynapticGateMode::kPerInput;
  int max_threads = 1;  ///< threads the caller's arena has; decides the tiling
};

/// y = Σ_k x·W·G in the config's mode; W row-major f32 [k,n] is copied (or prepacked) at construction.
/// run() is const and safe to call concurrently from several threads as long as each call has its own
/// scratch buffer. All computation is f32.
class SynapticGateKernel {
 public:
  SynapticGateKernel(const SynapticGateConfig& config, const float* w);
  ~SynapticGateKernel();
  SynapticGateKernel(const SynapticGateKernel&) = delete;
  SynapticGateKernel& operator=(const SynapticGateKernel&) = delete;

  const SynapticGateConfig& config() const noexcept;
  /// Bytes of scratch one run() needs, 64-aligned.
  std::size_t scratch_bytes() const noexcept;
  /// x: [m,k]; g: [k,n], [m,k] or [m,k,n] by mode; y: [m,n]; all row-major, y must not alias x or g.
  /// scratch: scratch_bytes() bytes, 64-byte aligned.
  void run(const float* x, const float* g, float* y, std::byte* scratch) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace quarks::ops
