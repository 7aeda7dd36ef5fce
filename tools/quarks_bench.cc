// quarks-bench: latency and throughput of built-in blocks, per thread count and precision.
//
//   quarks-bench --list-blocks
//   quarks-bench --block gated-mlp --threads 1,2 --iters 50 --format table|json
//   quarks-bench --block encoder --seq 384
//   quarks-bench --block decoder --mode decode --seq 1024
#include <chrono>
#include <cstdio>
#include <iostream>

#include <fmt/format.h>
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "quarks/quarks.hpp"
#include "tools/bench/blocks.hpp"
#include "tools/bench/stats.hpp"

namespace {

using quarks::bench::BuiltBlock;
using quarks::bench::LatencyStats;

struct RunResult {
  int threads = 1;
  std::string precision;
  LatencyStats stats;
  double gflops = 0, gbps = 0;
  std::size_t arena_bytes = 0;
};

RunResult measure(const BuiltBlock& block, int threads, quarks::Precision precision, int warmup, int iters) {
  quarks::CompileOptions options;
  options.threads = threads;
  options.precision = precision;
  const quarks::Model model = quarks::compile(block.graph, options);
  quarks::Session session(model);
  if (block.prepare) block.prepare(session);

  std::vector<quarks::NamedInput> inputs;
  for (const auto& [name, t] : block.inputs) inputs.push_back({name, t});
  std::vector<quarks::Tensor> out_storage;
  std::vector<quarks::NamedOutput> outputs;
  const std::vector<std::string> out_names = model.output_names();
  for (const std::string& name : out_names) {
    out_storage.emplace_back(quarks::DType::kF32, session.output_shape(inputs, name));
    outputs.push_back({name, out_storage.back().view()});
  }

  for (int i = 0; i < warmup; ++i) session.run(inputs, outputs);
  std::vector<double> samples;
  samples.reserve(static_cast<std::size_t>(iters));
  for (int i = 0; i < iters; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    session.run(inputs, outputs);
    const auto t1 = std::chrono::steady_clock::now();
    samples.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
  }
  RunResult r;
  r.threads = threads;
  r.precision = precision == quarks::Precision::kBF16 ? "bf16" : "f32";
  r.stats = quarks::bench::summarize(samples);
  const double seconds = r.stats.p50_ms / 1e3;
  if (block.flops > 0 && seconds > 0) r.gflops = block.flops / seconds / 1e9;
  if (block.bytes > 0 && seconds > 0) r.gbps = block.bytes / seconds / 1e9;
  r.arena_bytes = session.arena_bytes();
  return r;
}

void print_table(const std::string& block, const std::string& shape, const std::vector<RunResult>& runs) {
  fmt::print("block {} ({})\n", block, shape);
  fmt::print("{:>7} {:>9} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10} {:>9}\n", "threads", "precision", "p50 ms",
             "p90 ms", "p99 ms", "mean ms", "min ms", "GFLOP/s", "GB/s");
  for (const RunResult& r : runs) {
    fmt::print("{:>7} {:>9} {:>10.3f} {:>10.3f} {:>10.3f} {:>10.3f} {:>10.3f} {:>10} {:>9}\n", r.threads, r.precision,
               r.stats.p50_ms, r.stats.p90_ms, r.stats.p99_ms, r.stats.mean_ms, r.stats.min_ms,
               r.gflops > 0 ? fmt::format("{:.1f}", r.gflops) : "-", r.gbps > 0 ? fmt::format("{:.1f}", r.gbps) : "-");
  }
}

void print_json(const std::string& block, const std::string& shape, const std::vector<RunResult>& runs) {
  nlohmann::ordered_json out;
  out["block"] = block;
  out["shape"] = shape;
  out["quarks_version"] = quarks::version();
  out["runs"] = nlohmann::ordered_json::array();
  for (const RunResult& r : runs) {
    nlohmann::ordered_json j = {{"threads", r.threads},     {"precision", r.precision}, {"p50_ms", r.stats.p50_ms},
                                {"p90_ms", r.stats.p90_ms}, {"p99_ms", r.stats.p99_ms}, {"mean_ms", r.stats.mean_ms},
                                {"min_ms", r.stats.min_ms}, {"max_ms", r.stats.max_ms}, {"arena_bytes", r.arena_bytes}};
    if (r.gflops > 0) j["gflops"] = r.gflops;
    if (r.gbps > 0) j["gbps"] = r.gbps;
    out["runs"].push_back(j);
  }
  std::cout << out.dump(2) << "\n";
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"quarks-bench: latency of built-in attention-quark blocks"};
  bool list = false;
  std::string block_name;
  std::vector<int> threads{1, 2};
  std::vector<std::string> precisions{"f32"};
  int iters = 50, warmup = 5;
  std::string format = "table";
  quarks::bench::BlockSize size;
  app.add_flag("--list-blocks", list, "print the built-in blocks, one per line, name first");
  app.add_option("--block", block_name, "built-in block to run (see --list-blocks)");
  app.add_option("--threads", threads, "thread counts to run, e.g. 1,2")->delimiter(',')->check(CLI::PositiveNumber);
  app.add_option("--precision", precisions, "precisions to run: f32, bf16 (e.g. f32,bf16)")
      ->delimiter(',')
      ->check(CLI::IsMember({"f32", "bf16"}));
  app.add_option("--iters", iters, "timed runs per configuration")->check(CLI::PositiveNumber);
  app.add_option("--warmup", warmup, "untimed runs before timing")->check(CLI::NonNegativeNumber);
  app.add_option("--rows", size.rows, "rows (tokens) for dense blocks")->check(CLI::PositiveNumber);
  app.add_option("--elements", size.elements, "elements for elementwise blocks")->check(CLI::PositiveNumber);
  app.add_option("--seq", size.seq, "sequence length for the encoder (default 128) and attention (512) blocks")
      ->check(CLI::PositiveNumber);
  app.add_option("--mode", size.mode, "decoder block: prefill (a --seq prompt per run) or decode (one token per run)")
      ->check(CLI::IsMember({"prefill", "decode"}));
  app.add_option("--format", format, "output format")->check(CLI::IsMember({"table", "json"}));
  CLI11_PARSE(app, argc, argv);

  if (list) {
    for (const auto& b : quarks::bench::builtin_blocks()) fmt::print("{:<14} {}\n", b.name, b.description);
    return 0;
  }
  if (block_name.empty()) {
    std::cerr << "quarks-bench: give --block NAME (see --list-blocks)\n";
    return 2;
  }
  try {
    const auto& info = quarks::bench::find_block(block_name);
    size.runs = warmup + iters;
    const BuiltBlock block = info.build(size);
    std::vector<RunResult> runs;
    for (const std::string& p : precisions) {
      for (int t : threads) {
        runs.push_back(
            measure(block, t, p == "bf16" ? quarks::Precision::kBF16 : quarks::Precision::kF32, warmup, iters));
      }
    }
    if (format == "json") {
      print_json(block_name, block.shape, runs);
    } else {
      print_table(block_name, block.shape, runs);
    }
  } catch (const quarks::Error& e) {
    std::cerr << "quarks-bench: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
