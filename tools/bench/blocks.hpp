// Built-in blocks of quarks-bench: small graphs with random weights that exercise one quark or one
// real-model building block, with the products' flops (for GFLOP/s). Their bytes (GB/s, the roofline)
// come from the plan, as for ONNX models (Session::plan_steps).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "quarks/quarks.hpp"

namespace quarks::bench {

struct BlockSize {
  std::int64_t rows = 128;                        ///< rows (tokens) for dense blocks
  std::int64_t elements = std::int64_t{1} << 24;  ///< elements for the elementwise quark kernels
  std::int64_t seq = 0;          ///< sequence length for the encoder and attention blocks; 0 = the block's default
  std::int64_t batch = 1;        ///< independent sequences (or row groups for the dense blocks) per run
  std::int64_t dmodel = 0;       ///< model width (hidden size); 0 = the block's default (768, decoder 2048)
  std::int64_t heads = 0;        ///< attention heads; 0 = dmodel / 64 (head dim 64)
  std::string mode = "prefill";  ///< decoder: "prefill" (a whole prompt per run) or "decode" (one token per run)
  std::int64_t runs = 0;         ///< runs the bench will make per Session (warmup + iters): sizes the KV cache
};

struct BuiltBlock {
  Graph graph;
  std::vector<std::pair<std::string, Tensor>> inputs;  ///< random inputs, by name
  /// Floating-point operations of one run: dense products 2·m·k·n; attention 4·B·H·Sq·Sk·D (Q·Kᵀ and
  /// P·V; half that when causal); softmax, norms and elementwise work are not counted.
  double flops = 0;
  double rows = 0;    ///< rows (tokens) one run processes, for rows/s; 0 for the elementwise blocks
  std::string shape;  ///< human-readable size, e.g. "128x768->3072->768"
  /// Called on each new Session before the warmup runs (e.g. to prefill a KV cache); may be empty.
  std::function<void(Session&)> prepare;
};

struct BlockInfo {
  std::string name;
  std::string description;
  std::function<BuiltBlock(const BlockSize&)> build;
  std::vector<std::string> size_options;  ///< the size options the block reads, e.g. {"--rows", "--dmodel"}
};

/// Every built-in block, in the order --list-blocks prints them.
const std::vector<BlockInfo>& builtin_blocks();
/// The block named `name`; throws Error(kNotFound) listing the valid names.
const BlockInfo& find_block(const std::string& name);

}  // namespace quarks::bench
