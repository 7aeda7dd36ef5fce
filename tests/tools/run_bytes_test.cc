// The bytes a run moves as Session::plan_steps counts them (engine/plan_info.cc, the one place) and
// quarks-bench reports them: weights at the precision they are stored in (f32 4 bytes, bf16 2), a KV
// cache in the rows a run reads and appends, and the memory-bound blocks at streams × 4 × elements —
// each against a count by hand. A count above what a run really moves would report more GB/s than the
// machine has; these tests assert the accounting, not a timing.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "quarks/quarks.hpp"
#include "tools/bench/blocks.hpp"

namespace quarks::bench {
namespace {

// A Session of `block` compiled at `precision` on one thread, prepared and run once.
struct Ran {
  Model model;
  Session session;
  std::vector<NamedInput> inputs;
  Ran(const BuiltBlock& block, Precision precision) : model(compile_at(block.graph, precision)), session(model) {
    for (const auto& [name, t] : block.inputs) inputs.push_back({name, t});
    if (block.prepare) block.prepare(session);
    session.run(inputs);
  }
  static Model compile_at(const Graph& g, Precision precision) {
    CompileOptions o;
    o.threads = 1;
    o.precision = precision;
    return compile(g, o);
  }
  double bytes() const {
    double total = 0;
    for (const PlanStep& s : session.plan_steps()) total += s.bytes;
    return total;
  }
  /// Flops of the plan's nodes of op `op`.
  double flops_of(const std::string& op) const {
    double total = 0;
    for (const PlanStep& s : session.plan_steps())
      for (const PlanNodeInfo& n : s.nodes)
        if (n.op == op) total += n.flops;
    return total;
  }
};

// bf16 compiles where oneDNN 2.6 has bf16 matmuls (AVX-512 CPUs); elsewhere compile() refuses it.
bool bf16_supported() {
  GraphBuilder g;
  g.output("y", g.dense("d", g.input("x", {1, 16}), g.constant("w", Tensor(DType::kF32, Shape{16, 16}))));
  try {
    Ran::compile_at(g.build(), Precision::kBF16);
    return true;
  } catch (const Error& e) {
    if (e.code() != ErrorCode::kUnsupported) throw;
    return false;
  }
}

TEST(RunBytes, MemoryBoundBlocksCountTheirStreams) {
  BlockSize size;
  size.elements = 1 << 16;
  const double n = static_cast<double>(size.elements);
  for (const auto& [name, streams] :
       std::vector<std::pair<std::string, double>>{{"output-gate", 3}, {"square", 2}, {"multiplex", 3}}) {
    const Ran r(find_block(name).build(size), Precision::kF32);
    EXPECT_DOUBLE_EQ(r.bytes(), streams * 4 * n) << name;
  }
}

TEST(RunBytes, DenseWeightsCountAtTheirStoredPrecision) {
  BlockSize size;
  size.rows = 4;
  const double m = 4, k = 768, n = 3072;
  const Ran f32(find_block("dense").build(size), Precision::kF32);
  // x and y in f32, W [k, n] and its bias as stored.
  EXPECT_DOUBLE_EQ(f32.bytes(), 4 * (m * k + k * n + n + m * n));
  if (!bf16_supported()) GTEST_SKIP() << "this CPU has no bf16 matmul in oneDNN 2.6 (needs AVX-512): f32 checked only";
  const Ran bf16(find_block("dense").build(size), Precision::kBF16);
  EXPECT_DOUBLE_EQ(bf16.bytes(), 4 * (m * k + n + m * n) + 2 * k * n);
}

// One decode step of the TinyLlama-shaped layer streams every weight once at its precision, the norms'
// scales, and the cache's keys and values up to the current length; its activations (one token) are a
// fraction of a percent on top.
// An embedding lookup reads the rows its ids pick, not the table: a 1000 × 64 f32 table gathered at 3
// ids reads 3 rows and the 3 ids and writes 3 rows.
TEST(RunBytes, GatherFromAConstantTableReadsOnlyTheRowsItPicks) {
  GraphBuilder g;
  const Value ids = g.input("ids", {3}, DType::kI64);
  g.output("rows", g.gather("embed", g.constant("table", Tensor(DType::kF32, Shape{1000, 64})), ids, 0));
  const Model model = Ran::compile_at(g.build(), Precision::kF32);
  Session session(model);
  const Tensor id_values = Tensor::from_i64({3}, std::vector<std::int64_t>{7, 999, 0});
  session.run({{"ids", id_values}});
  double bytes = 0;
  for (const PlanStep& step : session.plan_steps()) bytes += step.bytes;
  EXPECT_DOUBLE_EQ(bytes, 3 * 64 * 4 + 3 * 8 + 3 * 64 * 4);
}

TEST(RunBytes, DecodeStreamsTheWeightsOnceAndTheCacheItHolds) {
  const double d = 2048, h = 32, hkv = 4, dim = 64, ffn = 5632;
  BlockSize size;
  size.mode = "decode";
  size.seq = 16;
  size.runs = 4;
  const BuiltBlock block = find_block("decoder").build(size);
  std::vector<Precision> precisions{Precision::kF32};
  if (bf16_supported()) precisions.push_back(Precision::kBF16);
  for (const Precision p : precisions) {
    const double weight_size = p == Precision::kBF16 ? 2 : 4;
    Ran r(block, p);  // prepared with 16 tokens, then one decode run: the next run sees 18 rows
    const double weights = weight_size * (d * (h + 2 * hkv) * dim + h * dim * d + 3 * d * ffn) + 4 * 2 * d;
    const double cache = 4 * 2 * hkv * dim * 18;
    const double by_hand = weights + cache;
    EXPECT_GE(r.bytes(), by_hand) << "weight size " << weight_size;
    EXPECT_LE(r.bytes(), 1.01 * by_hand) << "weight size " << weight_size;
    // One more token: the attention reads one more row of keys and of values, and sees one more key.
    const double before = r.bytes();
    EXPECT_DOUBLE_EQ(r.flops_of("attention"), 4 * h * dim * 18);
    r.session.run(r.inputs);
    EXPECT_DOUBLE_EQ(r.bytes() - before, 4 * 2 * hkv * dim);
    EXPECT_DOUBLE_EQ(r.flops_of("attention"), 4 * h * dim * 19);
  }
}

}  // namespace
}  // namespace quarks::bench
