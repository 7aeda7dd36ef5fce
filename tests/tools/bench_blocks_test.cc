// quarks-bench's built-in blocks (tools/bench/blocks.cc): each builds and runs, and the transformer blocks
// report the flops of their closed forms (a BERT layer: 24·S·d² for the four products plus 4·S²·d for
// the attention; the attention core: 4·B·H·S²·D). Then the profiling API the tool uses
// (Session::set_profiling, step_seconds, plan_steps) against the compiled plan and a wall clock, and the
// machine file's roofline arithmetic and JSON round trip.
#include "tools/bench/blocks.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "engine/model_impl.hpp"
#include "ops/contract/op_kind.hpp"
#include "tools/bench/machine.hpp"
#include "tools/bench/model_flops.hpp"

namespace quarks::bench {
namespace {

// Runs a block once on one thread and returns its only output.
Tensor run_block(const BuiltBlock& block) {
  CompileOptions co;
  co.threads = 1;
  Session session(compile(block.graph, co));
  std::vector<NamedInput> inputs;
  for (const auto& [name, t] : block.inputs) inputs.push_back({name, t});
  const auto out = session.run(inputs);
  EXPECT_EQ(out.size(), 1u);
  return out.begin()->second;
}

TEST(BenchBlocks, EveryBlockBuildsAndRunsAtSmallSizes) {
  BlockSize size;
  size.rows = 4;
  size.elements = 1000;
  size.seq = 5;
  for (const BlockInfo& info : builtin_blocks()) {
    const BuiltBlock block = info.build(size);
    const Tensor y = run_block(block);
    for (std::int64_t i = 0; i < y.numel(); ++i) ASSERT_TRUE(std::isfinite(y.f32()[i])) << info.name << " " << i;
    EXPECT_TRUE(block.flops > 0 || info.size_options == std::vector<std::string>{"--elements"}) << info.name;
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

// --batch, --dmodel and --heads reach the graphs: input shapes, flops and the shape text follow them.
TEST(BenchBlocks, BatchWidthAndHeadsSizeTheBlocks) {
  BlockSize size;
  size.batch = 2;
  size.dmodel = 128;
  size.heads = 4;
  size.seq = 8;
  size.rows = 3;
  const double b = 2, s = 8, d = 128;
  const BuiltBlock encoder = find_block("encoder").build(size);
  EXPECT_EQ(encoder.shape, "2x8x128, 4 heads, FFN 512");
  EXPECT_DOUBLE_EQ(encoder.flops, b * (24 * s * d * d + 4 * s * s * d));
  EXPECT_DOUBLE_EQ(encoder.rows, b * s);
  const BuiltBlock attention = find_block("attention").build(size);
  EXPECT_EQ(attention.shape, "2x4x8x32");
  EXPECT_DOUBLE_EQ(attention.flops, 4 * b * s * s * d);
  const BuiltBlock dense = find_block("dense").build(size);
  EXPECT_EQ(dense.shape, "2x3x128->512");
  EXPECT_DOUBLE_EQ(dense.flops, 2 * b * 3 * d * 4 * d);
  const BuiltBlock mlp = find_block("gated-mlp").build(size);
  EXPECT_EQ(mlp.shape, "2x3x128->2x512->128");
  EXPECT_EQ(mlp.inputs.front().second.shape(), (Shape{2, 3, 128}));
  // Decoder: heads not a multiple of 8 give plain multi-head attention; FFN 2.75·d rounded up to 64.
  const BuiltBlock decoder = find_block("decoder").build(size);
  EXPECT_EQ(decoder.shape, "prefill 2x8, d 128, 4/4 heads, FFN 384");
  size.dmodel = 512;
  size.heads = 16;
  EXPECT_EQ(find_block("decoder").build(size).shape, "prefill 2x8, d 512, 16/2 heads, FFN 1408");
  size.dmodel = 128;
  size.heads = 4;
  for (const char* name : {"encoder", "attention", "dense", "gated-mlp", "synaptic-gate", "decoder"}) {
    const Tensor y = run_block(find_block(name).build(size));
    EXPECT_EQ(y.shape()[0], name == std::string("synaptic-gate") ? 6 : 2) << name;
    for (std::int64_t i = 0; i < y.numel(); ++i) ASSERT_TRUE(std::isfinite(y.f32()[i])) << name << " " << i;
  }
}

TEST(BenchBlocks, WidthNotAMultipleOfTheHeadsIsAnError) {
  BlockSize size;
  size.dmodel = 100;
  size.heads = 3;
  for (const char* name : {"encoder", "attention", "decoder"}) {
    try {
      find_block(name).build(size);
      ADD_FAILURE() << name;
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
      EXPECT_EQ(std::string(e.what()), std::string("block ") + name + ": --dmodel 100 is not a multiple of --heads 3");
    }
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

// --- profiling -----------------------------------------------------------------------------------------

struct Running {
  BuiltBlock block;
  Model model;
  Session session;
  std::vector<NamedInput> inputs;
  Running(BuiltBlock b, int threads) : block(std::move(b)), model(compile_with(block.graph, threads)), session(model) {
    for (const auto& [name, t] : block.inputs) inputs.push_back({name, t});
  }
  static Model compile_with(const Graph& g, int threads) {
    CompileOptions co;
    co.threads = threads;
    return compile(g, co);
  }
  std::vector<Shape> shapes() const {
    std::vector<Shape> out;
    for (const std::string& name : model.input_names()) {
      for (const auto& [n, t] : block.inputs)
        if (n == name) out.push_back(t.shape());
    }
    return out;
  }
};

TEST(Profiling, StepsMatchTheCompiledPlan) {
  BlockSize size;
  size.seq = 8;
  Running r(find_block("encoder").build(size), 1);
  EXPECT_TRUE(r.session.plan_steps().empty());  // no plan before the first run
  r.session.run(r.inputs);
  const std::vector<PlanStep> steps = r.session.plan_steps();
  const auto plan = r.model.impl().plan_for(r.shapes());
  const detail::GraphIR& g = r.model.impl().graph;
  ASSERT_EQ(steps.size(), plan->levels.size());
  double flops = 0;
  for (std::size_t l = 0; l < steps.size(); ++l) {
    ASSERT_EQ(steps[l].nodes.size(), plan->levels[l].size());
    double step_flops = 0, step_bytes = 0;
    for (std::size_t k = 0; k < steps[l].nodes.size(); ++k) {
      const detail::Node& n = g.nodes[static_cast<std::size_t>(plan->levels[l][k])];
      EXPECT_EQ(steps[l].nodes[k].name, n.name);
      EXPECT_EQ(steps[l].nodes[k].op, detail::op_name(n.op));
      step_flops += steps[l].nodes[k].flops;
      step_bytes += steps[l].nodes[k].bytes;
    }
    EXPECT_EQ(steps[l].flops, step_flops);
    EXPECT_EQ(steps[l].bytes, step_bytes);
    flops += steps[l].flops;
  }
  // The products after fusion do the block's closed-form work (attention counted in full).
  EXPECT_DOUBLE_EQ(flops, r.block.flops);
  EXPECT_DOUBLE_EQ(product_flops(r.session), r.block.flops);
  // The output projection: x [8,768] and W [768,768] and bias [768] in, [8,768] out, all f32.
  bool found = false;
  for (const PlanStep& s : steps) {
    for (const PlanNodeInfo& n : s.nodes) {
      if (n.name != "layer.attn.out") continue;
      found = true;
      EXPECT_EQ(n.op, "dense");
      EXPECT_DOUBLE_EQ(n.flops, 2.0 * 8 * 768 * 768);
      EXPECT_DOUBLE_EQ(n.bytes, 4.0 * (8 * 768 + 768 * 768 + 768 + 8 * 768));
    }
  }
  EXPECT_TRUE(found);
}

TEST(Profiling, GatedMlpCountsBothProductsOfTheFusedStep) {
  BlockSize size;
  size.rows = 4;
  Running r(find_block("gated-mlp").build(size), 1);
  r.session.run(r.inputs);
  const std::vector<PlanStep> steps = r.session.plan_steps();
  ASSERT_EQ(steps.size(), 2u);
  ASSERT_EQ(steps[0].nodes.size(), 1u);
  EXPECT_EQ(steps[0].nodes[0].op, "gated_dense");
  EXPECT_DOUBLE_EQ(steps[0].flops, 2.0 * 2 * 4 * 768 * 3072);
  EXPECT_EQ(steps[1].nodes[0].op, "dense");
  EXPECT_EQ(steps[1].nodes[0].name, "ffn.down");
  EXPECT_DOUBLE_EQ(steps[1].flops, 2.0 * 4 * 3072 * 768);
  EXPECT_DOUBLE_EQ(steps[1].bytes, 4.0 * (4 * 3072 + 3072 * 768 + 4 * 768));
}

TEST(Profiling, StepTimesAccountForTheRun) {
  for (int threads : {1, 2}) {
    BlockSize size;
    size.seq = 8;
    Running r(find_block("encoder").build(size), threads);
    std::map<std::string, Tensor> storage = r.session.run(r.inputs);
    std::vector<NamedOutput> outputs;
    for (auto& [name, t] : storage) outputs.push_back({name, t.view()});
    EXPECT_FALSE(r.session.profiling());
    EXPECT_TRUE(r.session.step_seconds().empty());  // disabled: no records
    r.session.set_profiling(true);
    EXPECT_TRUE(r.session.profiling());
    EXPECT_TRUE(r.session.step_seconds().empty());  // nothing until a profiled run
    double best = 0;
    for (int i = 0; i < 5; ++i) {
      const auto t0 = std::chrono::steady_clock::now();
      r.session.run(r.inputs, outputs);
      const double run = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      const std::span<const double> times = r.session.step_seconds();
      ASSERT_EQ(times.size(), r.session.plan_steps().size());
      double sum = 0;
      for (double t : times) {
        EXPECT_GE(t, 0.0);
        sum += t;
      }
      // The steps are consecutive intervals inside the run: never more than it, and (binding and output
      // copies being short) nearly all of it in at least one of the runs.
      EXPECT_LE(sum, run * 1.0001 + 1e-7) << threads;
      best = std::max(best, sum / run);
    }
    EXPECT_GT(best, 0.9) << threads;
    const double* buffer = r.session.step_seconds().data();
    r.session.run(r.inputs, outputs);
    EXPECT_EQ(r.session.step_seconds().data(), buffer);  // the same buffer run after run
    r.session.set_profiling(false);
    r.session.run(r.inputs, outputs);
    EXPECT_TRUE(r.session.step_seconds().empty()) << threads;
  }
}

TEST(Profiling, NewInputShapesGiveTheNewPlansSteps) {
  // Symbolic rows: a run of 2 rows, then output_shape() for 6 rows switches the plan without a run.
  GraphBuilder g;
  auto x = g.input("x", {"rows", 8});
  Tensor w(DType::kF32, {8, 4});
  for (std::int64_t i = 0; i < w.numel(); ++i) w.f32()[i] = 0.5f;
  g.output("y", g.dense("proj", x, g.constant("w", w)));
  Session session(compile(g.build()));
  session.set_profiling(true);
  Tensor x2(DType::kF32, {2, 8}), x6(DType::kF32, {6, 8});
  session.run({{"x", x2}});
  EXPECT_EQ(session.step_seconds().size(), 1u);
  EXPECT_DOUBLE_EQ(session.plan_steps()[0].flops, 2.0 * 2 * 8 * 4);
  const NamedInput six[] = {{"x", x6}};
  EXPECT_EQ(session.output_shape(six, "y"), (Shape{6, 4}));
  EXPECT_TRUE(session.step_seconds().empty());  // the times were of the other plan
  EXPECT_DOUBLE_EQ(session.plan_steps()[0].flops, 2.0 * 6 * 8 * 4);
  session.run({{"x", x6}});
  EXPECT_EQ(session.step_seconds().size(), 1u);
}

// --- machine file ----------------------------------------------------------------------------------------

MachinePeaks sample_machine() {
  MachinePeaks m;
  m.cpu = "test cpu";
  m.threads = 4;
  m.l2_bytes = 1 << 20;
  m.l3_bytes = 32 << 20;
  m.f32_gflops_1 = 50;
  m.f32_gflops_n = 160;
  m.mem_gbps_1 = 10;
  m.mem_gbps_n = 20;
  m.l2_gbps_1 = 100;
  m.l2_gbps_n = 300;
  m.measured_at = "2026-01-01T00:00:00Z";
  return m;
}

TEST(Machine, PeaksAndRooflineLimit) {
  const MachinePeaks m = sample_machine();
  EXPECT_DOUBLE_EQ(m.peak_gflops(1, false), 50);
  EXPECT_DOUBLE_EQ(m.peak_gflops(2, false), 100);  // 1-thread peak times threads
  EXPECT_DOUBLE_EQ(m.peak_gflops(3, false), 150);
  EXPECT_DOUBLE_EQ(m.peak_gflops(4, false), 160);  // all threads: measured
  EXPECT_DOUBLE_EQ(m.peak_gflops(8, false), 160);
  EXPECT_DOUBLE_EQ(m.peak_gflops(1, true), 0);  // bf16 unsupported
  // Bytes within the threads' L2 see L2 bandwidth, beyond it memory bandwidth.
  EXPECT_DOUBLE_EQ(m.bandwidth_gbps(512 << 10, 1), 100);
  EXPECT_DOUBLE_EQ(m.bandwidth_gbps(2 << 20, 1), 10);
  EXPECT_DOUBLE_EQ(m.bandwidth_gbps(2 << 20, 2), 300);
  EXPECT_DOUBLE_EQ(m.bandwidth_gbps(8 << 20, 2), 20);
  // Compute-bound: 1 GFLOP over 4 MB at 1 thread: max(1/50, 0.004/10) s.
  EXPECT_DOUBLE_EQ(m.limit_seconds(1e9, 4e6, 1, false), 1.0 / 50);
  // Memory-bound: 1 MFLOP over 100 MB.
  EXPECT_DOUBLE_EQ(m.limit_seconds(1e6, 1e8, 1, false), 0.1 / 10);
  EXPECT_DOUBLE_EQ(m.limit_seconds(0, 0, 1, false), 0);
}

TEST(Machine, JsonRoundTripAndFiles) {
  MachinePeaks m = sample_machine();
  MachinePeaks back = MachinePeaks::from_json(nlohmann::json::parse(m.to_json().dump()));
  EXPECT_EQ(back.to_json(), m.to_json());
  EXPECT_EQ(m.to_json()["bf16_gflops_1"], "unsupported");
  EXPECT_FALSE(back.bf16_gflops_1.has_value());
  m.bf16_gflops_1 = 200;
  m.bf16_gflops_n = 700;
  back = MachinePeaks::from_json(nlohmann::json::parse(m.to_json().dump()));
  EXPECT_EQ(back.bf16_gflops_n.value_or(0), 700);
  EXPECT_DOUBLE_EQ(back.peak_gflops(2, true), 400);

  nlohmann::json j = m.to_json();
  j.erase("mem_gbps_1");
  try {
    MachinePeaks::from_json(j);
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "machine file: field 'mem_gbps_1' is missing or not a number");
  }

  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() / ("quarks_machine_test." + std::to_string(getpid()));
  const std::string path = (dir / "sub" / "machine.json").string();
  EXPECT_FALSE(load_machine(path).has_value());  // no file: no machine
  save_machine(m, path);
  const std::optional<MachinePeaks> loaded = load_machine(path);
  ASSERT_TRUE(loaded.has_value());
  EXPECT_EQ(loaded->to_json(), m.to_json());
  std::ofstream(path) << "{not json";
  EXPECT_THROW(load_machine(path), Error);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace quarks::bench
