// quarks-bench's built-in blocks (tools/bench/blocks.cc): each builds and runs, and the transformer blocks
// report the flops of their closed forms (a BERT layer: 24·S·d² for the four products plus 4·S²·d for
// the attention; the attention core: 4·B·H·S²·D).
#include "tools/bench/blocks.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

namespace quarks::bench {
namespace {

TEST(BenchBlocks, EveryBlockBuildsAndRunsAtSmallSizes) {
  BlockSize size;
  size.rows = 4;
  size.elements = 1000;
  size.seq = 5;
  for (const BlockInfo& info : builtin_blocks()) {
    const BuiltBlock block = info.build(size);
    CompileOptions co;
    co.threads = 1;
    Session session(compile(block.graph, co));
    std::vector<NamedInput> inputs;
    for (const auto& [name, t] : block.inputs) inputs.push_back({name, t});
    const auto out = session.run(inputs);
    ASSERT_EQ(out.size(), 1u) << info.name;
    const Tensor& y = out.begin()->second;
    for (std::int64_t i = 0; i < y.numel(); ++i) ASSERT_TRUE(std::isfinite(y.f32()[i])) << info.name << " " << i;
    EXPECT_TRUE(block.flops > 0 || block.bytes > 0) << info.name;
  }
}

TEST(BenchBlocks, TransformerBlocksCountTheirFlops) {
  const double d = 768;
  for (std::int64_t seq : {0, 8, 384}) {
    BlockSize size;
    size.seq = seq;
    const double s = seq > 0 ? seq : 128;
    const BuiltBlock encoder = find_block("encoder").build(size);
    EXPECT_DOUBLE_EQ(encoder.flops, 24 * s * d * d + 4 * s * s * d) << seq;
    EXPECT_EQ(encoder.shape, "1x" + std::to_string(static_cast<int>(s)) + "x768, 12 heads, FFN 3072");
    const double sa = seq > 0 ? seq : 512;
    const BuiltBlock attention = find_block("attention").build(size);
    EXPECT_DOUBLE_EQ(attention.flops, 4 * 12 * sa * sa * 64) << seq;
    EXPECT_EQ(attention.shape, "1x12x" + std::to_string(static_cast<int>(sa)) + "x64");
  }
}

TEST(BenchBlocks, EncoderCompilesToTheFusedBlock) {
  BlockSize size;
  size.seq = 4;
  const std::string graph = compile(find_block("encoder").build(size).graph).describe();
  EXPECT_NE(graph.find("layer.attn.core = attention[qkv](layer.attn.qkv) -> [1,4,768]"), std::string::npos) << graph;
  EXPECT_NE(graph.find("layer.ffn.up = dense+bias+gelu("), std::string::npos) << graph;
}

TEST(BenchBlocks, DecoderPrefillAndDecodeModes) {
  // Prefill: 2·S·(d·(H + 2·Hkv)·D + H·D·d + 3·d·ffn) for the products plus the causal half of 4·H·S²·D.
  const double d = 2048, h = 32, hkv = 4, dim = 64, ffn = 5632, s = 6;
  BlockSize size;
  size.seq = 6;
  const BuiltBlock prefill = find_block("decoder").build(size);
  const double products = 2 * (d * (h + 2 * hkv) * dim + h * dim * d + 3 * d * ffn);
  EXPECT_DOUBLE_EQ(prefill.flops, s * products + 2 * h * s * s * dim);
  EXPECT_FALSE(prefill.prepare);

  // Decode: prepare() prefills a --seq prompt into a cache sized for `runs` more tokens; each run then
  // decodes one token, and one run more than that overflows the cache with a clear error.
  size.mode = "decode";
  size.runs = 3;
  const BuiltBlock decode = find_block("decoder").build(size);
  ASSERT_TRUE(decode.prepare);
  EXPECT_DOUBLE_EQ(decode.flops, products + 4 * h * (s + 1) * dim);
  EXPECT_GT(decode.bytes, 4 * (d * (h + 2 * hkv) * dim + h * dim * d + 3 * d * ffn));
  CompileOptions co;
  co.threads = 1;
  Session session(compile(decode.graph, co));
  decode.prepare(session);
  EXPECT_EQ(session.cache_length(), 6);
  std::vector<NamedInput> inputs;
  for (const auto& [name, t] : decode.inputs) inputs.push_back({name, t});
  for (int i = 0; i < 3; ++i) {
    const Tensor y = session.run(inputs).at("y");
    ASSERT_EQ(y.shape(), (Shape{1, 1, 2048}));
    for (std::int64_t j = 0; j < y.numel(); ++j) ASSERT_TRUE(std::isfinite(y.f32()[j]));
  }
  EXPECT_EQ(session.cache_length(), 9);
  EXPECT_THROW(session.run(inputs), Error);
  size.mode = "generate";
  EXPECT_THROW(find_block("decoder").build(size), Error);
}

}  // namespace
}  // namespace quarks::bench
