// quarks-bench: latency and throughput of built-in blocks or ONNX models, per thread count and precision.
//
//   quarks-bench --list-blocks
//   quarks-bench --block gated-mlp --threads 1,2 --iters 50 --format table|json
//   quarks-bench --block encoder --seq 384
//   quarks-bench --block decoder --mode decode --seq 1024
//   quarks-bench --model encoder.onnx [--input NAME=FILE.npy ...] [--dim NAME=VALUE ...] --threads 1,2
//
// Exit status: 0 success, 1 a problem with the block, model, inputs or run (one line on stderr), 2 a
// usage error.
#include <charconv>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <map>
#include <optional>
#include <set>

#include <fmt/format.h>
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "quarks/quarks.hpp"
#include "tools/bench/blocks.hpp"
#include "tools/bench/model_flops.hpp"
#include "tools/bench/onnx_model.hpp"
#include "tools/bench/stats.hpp"
#include "tools/common/inputs.hpp"

namespace {

using quarks::bench::BuiltBlock;
using quarks::bench::LatencyStats;

constexpr int kExitError = 1;
constexpr int kExitUsage = 2;

constexpr const char* kFooter = R"(ONNX models (--model):
  Every graph input is read from --input NAME=FILE.npy (float32/float64, int64/int32 or bool files, as
  quarks-run takes them) or, for float32 inputs without a file, made up: uniform random in [-1, 1]
  with a fixed seed. A made-up input's symbolic dims take their sizes from --dim NAME=VALUE or from a
  file that has the same dim; int64 and bool inputs need a file. The model is imported and compiled
  with every shape fixed. GFLOP/s counts the dense, matmul and attention products of the graph after
  fusion (2 per multiply-add; elementwise work, norms and softmax are not counted).

Timing: each configuration compiles the model, runs it once (allocating the output buffers) plus
--warmup times, then times --iters runs of Session::run into those buffers.

Exit status:
  0 success; 1 a problem with the block, model, inputs or run (one line on stderr, "quarks-bench:
  error: ..."); 2 a usage error.)";

// What was timed, for the table header and the JSON fields.
struct Workload {
  std::string kind;  // "block" or "model"
  std::string name;  // block name or model path
  BuiltBlock block;
  bool count_flops = false;                       // flops from the compiled graph (models)
  std::vector<quarks::bench::ModelInput> inputs;  // models only
};

struct RunResult {
  int threads = 1;
  std::string precision;
  LatencyStats stats;
  double flops = 0, gflops = 0, gbps = 0;
  std::size_t arena_bytes = 0;
};

RunResult measure(const Workload& w, int threads, quarks::Precision precision, int warmup, int iters) {
  quarks::CompileOptions options;
  options.threads = threads;
  options.precision = precision;
  const quarks::Model model = quarks::compile(w.block.graph, options);
  quarks::Session session(model);
  if (w.block.prepare) w.block.prepare(session);

  std::vector<quarks::NamedInput> inputs;
  for (const auto& [name, t] : w.block.inputs) inputs.push_back({name, t});
  // The first run allocates the outputs (of whatever dtype the model gives); later runs write into them.
  std::map<std::string, quarks::Tensor> out_storage = session.run(inputs);
  std::vector<quarks::NamedOutput> outputs;
  for (auto& [name, t] : out_storage) outputs.push_back({name, t.view()});

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
  r.flops = w.count_flops ? quarks::bench::product_flops(model) : w.block.flops;
  const double seconds = r.stats.p50_ms / 1e3;
  if (r.flops > 0 && seconds > 0) r.gflops = r.flops / seconds / 1e9;
  if (w.block.bytes > 0 && seconds > 0) r.gbps = w.block.bytes / seconds / 1e9;
  r.arena_bytes = session.arena_bytes();
  return r;
}

std::string input_source(const quarks::bench::ModelInput& in) { return in.file.empty() ? "random" : in.file; }

void print_table(const Workload& w, const std::vector<RunResult>& runs) {
  if (w.kind == "block") {
    fmt::print("block {} ({})\n", w.name, w.block.shape);
  } else {
    fmt::print("model {}\n", w.name);
    for (const auto& in : w.inputs) {
      fmt::print("  input {} {} {} ({})\n", in.name, quarks::tools::numpy_name(in.dtype), in.shape.to_string(),
                 input_source(in));
    }
    if (!runs.empty() && runs.front().flops <= 0) fmt::print("  (no dense, matmul or attention products counted)\n");
  }
  fmt::print("{:>7} {:>9} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10} {:>9}\n", "threads", "precision", "p50 ms",
             "p90 ms", "p99 ms", "mean ms", "min ms", "GFLOP/s", "GB/s");
  for (const RunResult& r : runs) {
    fmt::print("{:>7} {:>9} {:>10.3f} {:>10.3f} {:>10.3f} {:>10.3f} {:>10.3f} {:>10} {:>9}\n", r.threads, r.precision,
               r.stats.p50_ms, r.stats.p90_ms, r.stats.p99_ms, r.stats.mean_ms, r.stats.min_ms,
               r.gflops > 0 ? fmt::format("{:.1f}", r.gflops) : "-", r.gbps > 0 ? fmt::format("{:.1f}", r.gbps) : "-");
  }
}

void print_json(const Workload& w, const std::vector<RunResult>& runs) {
  nlohmann::ordered_json out;
  out[w.kind] = w.name;
  out["shape"] = w.block.shape;
  if (w.kind == "model") {
    out["inputs"] = nlohmann::ordered_json::array();
    for (const auto& in : w.inputs) {
      out["inputs"].push_back({{"name", in.name},
                               {"dtype", quarks::tools::numpy_name(in.dtype)},
                               {"shape", std::vector<std::int64_t>(in.shape.begin(), in.shape.end())},
                               {"source", input_source(in)}});
    }
    out["flops"] = runs.empty() ? 0.0 : runs.front().flops;
  }
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

// "" if `arg` is NAME=VALUE with a non-empty NAME and VALUE, else why not.
std::string check_assignment(const std::string& arg, const char* form) {
  const std::size_t eq = arg.find('=');
  if (eq == std::string::npos) return "'" + arg + "' is not " + form;
  if (eq == 0) return "'" + arg + "' has no name before '='";
  if (eq + 1 == arg.size()) return "'" + arg + "' has nothing after '='";
  return "";
}

// A --dim value: a positive integer.
std::optional<std::int64_t> parse_size(const std::string& text) {
  std::int64_t value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || value < 1) return std::nullopt;
  return value;
}

int usage_error(const std::string& message) {
  std::fprintf(stderr, "quarks-bench: error: %s (see quarks-bench --help)\n", message.c_str());
  return kExitUsage;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"quarks-bench: latency of built-in attention-quark blocks and of ONNX models", "quarks-bench"};
  app.footer(kFooter);
  bool list = false;
  std::string block_name, model_path;
  std::vector<std::string> input_args, dim_args;
  std::vector<int> threads{1, 2};
  std::vector<std::string> precisions{"f32"};
  int iters = 50, warmup = 5;
  std::string format = "table";
  quarks::bench::BlockSize size;
  app.add_flag("--list-blocks", list, "print the built-in blocks, one per line, name first");
  auto* block_opt = app.add_option("--block", block_name, "built-in block to run (see --list-blocks)");
  auto* model_opt =
      app.add_option("--model", model_path, "ONNX model file to run instead of a block")->excludes(block_opt);
  app.add_option("-i,--input", input_args, "with --model: a graph input and its .npy file, NAME=FILE.npy (repeat)")
      ->allow_extra_args(false)
      ->needs(model_opt)
      ->check([](const std::string& a) { return check_assignment(a, "NAME=FILE.npy"); }, "NAME=FILE");
  app.add_option("--dim", dim_args, "with --model: size of a symbolic input dim, NAME=VALUE (repeat)")
      ->allow_extra_args(false)
      ->needs(model_opt)
      ->check(
          [](const std::string& a) -> std::string {
            if (std::string problem = check_assignment(a, "NAME=VALUE"); !problem.empty()) return problem;
            if (!parse_size(a.substr(a.find('=') + 1))) return "'" + a + "': the size is not a positive integer";
            return "";
          },
          "NAME=VALUE");
  app.add_option("--threads", threads, "thread counts to run, e.g. 1,2")->delimiter(',')->check(CLI::PositiveNumber);
  app.add_option("--precision", precisions, "precisions to run: f32, bf16 (e.g. f32,bf16)")
      ->delimiter(',')
      ->check(CLI::IsMember({"f32", "bf16"}));
  app.add_option("--iters", iters, "timed runs per configuration")->check(CLI::PositiveNumber);
  app.add_option("--warmup", warmup, "untimed runs before timing (after the first run)")->check(CLI::NonNegativeNumber);
  app.add_option("--rows", size.rows, "rows (tokens) for dense blocks")
      ->check(CLI::PositiveNumber)
      ->excludes(model_opt);
  app.add_option("--elements", size.elements, "elements for elementwise blocks")
      ->check(CLI::PositiveNumber)
      ->excludes(model_opt);
  app.add_option("--seq", size.seq, "sequence length for the encoder (128), attention (512) and decoder (128) blocks")
      ->check(CLI::PositiveNumber)
      ->excludes(model_opt);
  app.add_option("--mode", size.mode, "decoder block: prefill (a --seq prompt per run) or decode (one token per run)")
      ->check(CLI::IsMember({"prefill", "decode"}))
      ->excludes(model_opt);
  app.add_option("--format", format, "output format")->check(CLI::IsMember({"table", "json"}));

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    return usage_error(e.what());
  }

  if (list) {
    for (const auto& b : quarks::bench::builtin_blocks()) fmt::print("{:<14} {}\n", b.name, b.description);
    return 0;
  }
  if (block_name.empty() && model_path.empty())
    return usage_error("give --block NAME (see --list-blocks) or --model FILE.onnx");

  quarks::bench::ModelRequest request;
  request.path = model_path;
  std::set<std::string> seen;
  for (const std::string& arg : input_args) {
    const std::size_t eq = arg.find('=');
    std::string name = arg.substr(0, eq);
    if (!seen.insert(name).second) return usage_error("input '" + name + "' is given more than once");
    request.inputs.emplace_back(std::move(name), arg.substr(eq + 1));
  }
  for (const std::string& arg : dim_args) {
    const std::size_t eq = arg.find('=');
    const std::string name = arg.substr(0, eq);
    if (!request.dims.emplace(name, *parse_size(arg.substr(eq + 1))).second) {
      return usage_error("dim '" + name + "' is given more than once");
    }
  }

  try {
    Workload w;
    if (!block_name.empty()) {
      w.kind = "block";
      w.name = block_name;
      size.runs = warmup + iters + 1;  // measure() makes one untimed run before the warmup
      w.block = quarks::bench::find_block(block_name).build(size);
    } else {
      quarks::bench::LoadedModel loaded = quarks::bench::load_model(request);
      w.kind = "model";
      w.name = model_path;
      w.block = std::move(loaded.block);
      w.inputs = std::move(loaded.inputs);
      w.count_flops = true;
    }
    std::vector<RunResult> runs;
    for (const std::string& p : precisions) {
      for (int t : threads) {
        runs.push_back(measure(w, t, p == "bf16" ? quarks::Precision::kBF16 : quarks::Precision::kF32, warmup, iters));
      }
    }
    if (format == "json") {
      print_json(w, runs);
    } else {
      print_table(w, runs);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "quarks-bench: error: %s\n", e.what());
    return kExitError;
  }
  return 0;
}
