#include "tools/bench/blocks.hpp"

#include <random>

namespace quarks::bench {
namespace {

Tensor random_tensor(const Shape& shape, float scale, std::uint32_t seed) {
  Tensor t(DType::kF32, shape);
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(-scale, scale);
  float* p = t.f32();
  for (std::int64_t i = 0; i < t.numel(); ++i) p[i] = dist(rng);
  return t;
}

// SwiGLU feed-forward: down(silu(x·Wg) ⊙ (x·Wu)). The engine fuses the gate and up products into one
// gated dense whose output tiles are gated in cache.
BuiltBlock gated_mlp(const BlockSize& size) {
  const std::int64_t d = 768, h = 3072, m = size.rows;
  GraphBuilder g;
  auto x = g.input("x", {m, d});
  const float ws = 1.0f / 28.0f;  // ~1/sqrt(d): keeps activations O(1)
  auto gate = g.dense("ffn.gate", x, g.constant("ffn.gate.w", random_tensor({d, h}, ws, 1)));
  auto up = g.dense("ffn.up", x, g.constant("ffn.up.w", random_tensor({d, h}, ws, 2)));
  auto hidden = g.output_gate("ffn.swiglu", gate, up, Activation::silu(), Activation::identity());
  g.output("y", g.dense("ffn.down", hidden, g.constant("ffn.down.w", random_tensor({h, d}, 1.0f / 55.0f, 3))));
  BuiltBlock b{g.build(), {{"x", random_tensor({m, d}, 1.0f, 4)}}};
  b.flops = 2.0 * m * d * h * 3;
  b.shape = std::to_string(m) + "x" + std::to_string(d) + "->2x" + std::to_string(h) + "->" + std::to_string(d);
  return b;
}

BuiltBlock dense_block(const BlockSize& size) {
  const std::int64_t k = 768, n = 3072, m = size.rows;
  GraphBuilder g;
  auto x = g.input("x", {m, k});
  g.output("y", g.dense("dense", x, g.constant("w", random_tensor({k, n}, 1.0f / 28.0f, 1)),
                        g.constant("b", random_tensor({n}, 0.1f, 2))));
  BuiltBlock b{g.build(), {{"x", random_tensor({m, k}, 1.0f, 3)}}};
  b.flops = 2.0 * m * k * n;
  b.shape = std::to_string(m) + "x" + std::to_string(k) + "->" + std::to_string(n);
  return b;
}

// Memory-bound quark kernels on `elements` floats: bytes = streams × 4 × elements.
BuiltBlock output_gate_block(const BlockSize& size) {
  const std::int64_t n = size.elements;
  GraphBuilder g;
  auto s1 = g.input("s1", {n});
  auto s2 = g.input("s2", {n});
  g.output("y", g.output_gate("gate", s1, s2, Activation::identity(), Activation::sigmoid()));
  BuiltBlock b{g.build(), {{"s1", random_tensor({n}, 4.0f, 1)}, {"s2", random_tensor({n}, 4.0f, 2)}}};
  b.bytes = 3.0 * 4 * n;
  b.shape = std::to_string(n) + " floats";
  return b;
}

BuiltBlock square_block(const BlockSize& size) {
  const std::int64_t n = size.elements;
  GraphBuilder g;
  auto x = g.input("x", {n});
  g.output("y", g.activation("square", x, Activation::square()));
  BuiltBlock b{g.build(), {{"x", random_tensor({n}, 4.0f, 1)}}};
  b.bytes = 2.0 * 4 * n;
  b.shape = std::to_string(n) + " floats";
  return b;
}

BuiltBlock multiplex_block(const BlockSize& size) {
  const std::int64_t n = size.elements;
  GraphBuilder g;
  auto s = g.input("s", {n});
  auto a = g.input("a", {n});
  g.output("y", g.multiplex("multiplex", s, a, 0.5f, Activation::relu()));
  BuiltBlock b{g.build(), {{"s", random_tensor({n}, 4.0f, 1)}, {"a", random_tensor({n}, 4.0f, 2)}}};
  b.bytes = 3.0 * 4 * n;
  b.shape = std::to_string(n) + " floats";
  return b;
}

// Synaptic gating with one gate per input and row: (x ⊙ G)·W, W prepacked.
BuiltBlock synaptic_gate_block(const BlockSize& size) {
  const std::int64_t k = 768, n = 3072, m = size.rows;
  GraphBuilder g;
  auto x = g.input("x", {m, k});
  auto gate = g.input("gate", {m, k, 1});
  g.output("y", g.synaptic_gate("synaptic", x, g.constant("w", random_tensor({k, n}, 1.0f / 28.0f, 1)), gate));
  BuiltBlock b{g.build(), {{"x", random_tensor({m, k}, 1.0f, 2)}, {"gate", random_tensor({m, k, 1}, 1.0f, 3)}}};
  b.flops = 2.0 * m * k * n;
  b.shape = std::to_string(m) + "x" + std::to_string(k) + "->" + std::to_string(n);
  return b;
}

}  // namespace

const std::vector<BlockInfo>& builtin_blocks() {
  static const std::vector<BlockInfo> blocks = {
      {"gated-mlp", "SwiGLU feed-forward 768->3072->768 (output gating fused into the up/gate product)", gated_mlp},
      {"dense", "dense 768->3072 with bias (oneDNN, prepacked, TBB-tiled)", dense_block},
      {"output-gate", "output gating y = s1 * sigmoid(s2) on 16M floats (memory-bound)", output_gate_block},
      {"square", "quadratic activation y = x*x on 16M floats (memory-bound)", square_block},
      {"multiplex", "multiplexing y = relu(s + 0.5*a) on 16M floats (memory-bound)", multiplex_block},
      {"synaptic-gate", "synaptic gating (x*G)·W with per-input gates, 768->3072", synaptic_gate_block},
  };
  return blocks;
}

const BlockInfo& find_block(const std::string& name) {
  std::string names;
  for (const BlockInfo& b : builtin_blocks()) {
    if (b.name == name) return b;
    names += (names.empty() ? "" : ", ") + b.name;
  }
  throw Error(ErrorCode::kNotFound, "unknown block '" + name + "' (built-in blocks: " + names + ")");
}

}  // namespace quarks::bench
