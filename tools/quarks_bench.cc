// quarks-bench: latency and throughput of built-in blocks or ONNX models, per thread count and precision,
// with a per-step profile against this machine's measured roofline.
//
//   quarks-bench --list-blocks
//   quarks-bench --block gated-mlp --threads 1,2 --iters 50 --format table|json|csv|md
//   quarks-bench --block encoder --seq 384 --profile
//   quarks-bench --block decoder --mode decode --seq 1024
//   quarks-bench --model encoder.onnx [--input NAME=FILE.npy ...] [--dim NAME=VALUE ...] --threads 1,2
//   quarks-bench --model MODEL_DIR [--prompt-tokens 512] [--gen-tokens 128]   (a Hugging Face decoder LM)
//   quarks-bench --machine            (measure this machine's peaks into ~/.cache/quarks/machine.json)
//
// Exit status: 0 success, 1 a problem with the block, model, inputs or run (one line on stderr), 2 a
// usage error.
//
// This file is the command line; the jobs are in tools/bench/: blocks.cc (the built-in blocks),
// onnx_model.cc (an ONNX model and its inputs), machine.cc (the machine's peaks, the roofline),
// measure.cc (timing a workload) and report.cc (table, Markdown, CSV, JSON); lm_bench.cc and
// lm_report.cc time and report a Hugging Face decoder directory (ppN / tgN).
#include <sched.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <optional>
#include <set>
#include <sstream>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <CLI/CLI.hpp>

#include "quarks/quarks.hpp"
#include "tools/bench/blocks.hpp"
#include "tools/bench/lm_bench.hpp"
#include "tools/bench/machine.hpp"
#include "tools/bench/measure.hpp"
#include "tools/bench/onnx_model.hpp"
#include "tools/bench/report.hpp"
#include "tools/common/cli.hpp"

namespace {

using quarks::bench::MachinePeaks;
using quarks::bench::RunResult;
using quarks::bench::Settings;
using quarks::bench::Workload;

constexpr int kExitError = 1;
constexpr int kExitUsage = 2;

constexpr const char* kFooter = R"(ONNX models (--model):
  Every graph input is read from --input NAME=FILE.npy (float32/float64, int64/int32 or bool files, as
  quarks-run takes them) or, for float32 inputs without a file, made up: uniform random in [-1, 1]
  with a fixed seed. A made-up input's symbolic dims take their sizes from --dim NAME=VALUE or from a
  file that has the same dim; int64 and bool inputs need a file. The model is imported and compiled
  with every shape fixed. GFLOP/s counts the dense, matmul and attention products of the plan after
  fusion (2 per multiply-add; elementwise work, norms and softmax are not counted). rows/s counts, per
  run, the product of the first input's dims except the last (e.g. batch x seq for [batch, seq, d]).

Model directories (--model DIR with config.json and *.safetensors): a Hugging Face decoder LM, timed as
llama-bench does. Each precision and thread count loads the model, then ppN runs a prompt of
--prompt-tokens random ids into empty KV caches and tgN generates --gen-tokens tokens one run at a
time from empty caches (logits of the last token only; no sampling); each test is repeated --iters
times (default 5 here) after --warmup (default 1 here) untimed ones, and t/s is the median. MB/token
and the limit come from the plan (weights as stored, the KV rows read and written; tg: the mean over
the context lengths it runs at): the tokens/s of those flops at peak or those bytes at the measured
bandwidth, whichever binds. The header line gives the weight files' size, the load time, load plus
the first run of a 1-token prompt, and the peak resident set; RSS MB is the resident set after a test.

Timing: each configuration compiles the model, runs it once (allocating the output buffers) plus
--warmup times, then times at least --iters runs of Session::run into those buffers, and keeps going
until --min-time seconds have passed. p50/p90/p99 are nearest-rank percentiles. While it runs, the
CPU time used by other processes is watched (/proc/stat against this process's own): above 10% of a
core a warning goes to stderr. Runs longer than 2 s show a progress line when stderr is a terminal.

Bytes (MB/run, GB/s) come from the plan: each tensor a step reads or writes once, weights at the
precision they are stored in (f32 4 bytes, bf16 2), a KV cache's keys and values in the rows a run
reads and appends. "of limit" is the roofline: the time of the run's flops at the peak GFLOP/s
against its bytes at the bandwidth they see (L2's when they fit the threads' L2, else memory's), the
larger one (the limit, "compute" or "memory") over the measured p50; "-" without a machine file.

Profile (--profile): the Session records the wall time of every plan step (a node after fusion, or
nodes that run side by side); each step's time is the median over the timed runs, its share is of the
median run, and the steps' sum is printed with the part of the run they do not account for (binding,
output copies). GFLOP/s counts the step's products, GB/s its bytes, and "of limit" is the step's
roofline as above.

Machine (--machine): measures the engine's f32 dense on a 1024x1024x1024 product (1 thread and all),
bf16 the same way ("unsupported" where the CPU lacks it), and a streaming triad over >= 4x L3 (memory)
and over half of L2 (1 thread and all); writes --machine-file (default ~/.cache/quarks/machine.json)
and prints it. Without --block/--model it only measures. Every run reads the file when it exists, for
the roofline ("of limit" column; peak_fraction in JSON/CSV/Markdown is the fraction of the compute peak).

Exit status:
  0 success; 1 a problem with the block, model, inputs or run (one line on stderr, "quarks-bench:
  error: ..."); 2 a usage error.)";

// "0,2-3" -> the CPUs, or nullopt if malformed.
std::optional<std::vector<int>> parse_cpu_list(const std::string& text) {
  std::vector<int> cpus;
  std::stringstream ss(text);
  for (std::string part; std::getline(ss, part, ',');) {
    int lo = 0, hi = 0;
    const char* b = part.data();
    const char* e = b + part.size();
    auto [p, ec] = std::from_chars(b, e, lo);
    if (ec != std::errc() || lo < 0) return std::nullopt;
    hi = lo;
    if (p != e) {
      if (*p != '-') return std::nullopt;
      auto [q, ec2] = std::from_chars(p + 1, e, hi);
      if (ec2 != std::errc() || q != e || hi < lo) return std::nullopt;
    }
    if (hi >= CPU_SETSIZE) return std::nullopt;
    for (int c = lo; c <= hi; ++c) cpus.push_back(c);
  }
  if (cpus.empty()) return std::nullopt;
  return cpus;
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
  bool list = false, machine = false;
  std::string block_name, model_path, affinity;
  std::string machine_file = quarks::bench::default_machine_file();
  std::vector<std::string> input_args, dim_args;
  std::vector<int> threads{1, 2};
  std::vector<std::string> precisions{"f32"};
  Settings settings;
  std::string format = "table";
  quarks::bench::BlockSize size;
  app.add_flag("--list-blocks", list, "print the built-in blocks, one per line, name first");
  auto* block_opt = app.add_option("--block", block_name, "built-in block to run (see --list-blocks)");
  auto* model_opt = app.add_option("--model", model_path,
                                   "ONNX model file, or a Hugging Face decoder directory, to run instead of a block")
                        ->excludes(block_opt);
  quarks::bench::LmSettings lm_settings;
  app.add_option("--prompt-tokens", lm_settings.prompt_tokens,
                 "with --model DIR: prompt tokens of the pp test (512; 0 = none)")
      ->check(CLI::NonNegativeNumber)
      ->needs(model_opt);
  app.add_option("--gen-tokens", lm_settings.gen_tokens,
                 "with --model DIR: generated tokens of the tg test (128; 0 = none)")
      ->check(CLI::NonNegativeNumber)
      ->needs(model_opt);
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
  app.add_option("--iters", settings.iters, "timed runs per configuration (at least)")->check(CLI::PositiveNumber);
  app.add_option("--min-time", settings.min_time, "keep timing until this many seconds (and --iters runs) have passed")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--warmup", settings.warmup, "untimed runs before timing (after the first run)")
      ->check(CLI::NonNegativeNumber);
  app.add_flag("--profile", settings.profile, "per-step times after fusion, with roofline % (see below)");
  app.add_flag("--machine", machine,
               "measure this machine's peak GFLOP/s and bandwidths into --machine-file and print them");
  app.add_option("--machine-file", machine_file, "machine peaks JSON (default ~/.cache/quarks/machine.json)");
  app.add_option("--affinity", affinity, "run on these CPUs only, e.g. 0 or 0,2-3 (sched_setaffinity)");
  app.add_option("--rows", size.rows, "rows (tokens) for dense blocks")
      ->check(CLI::PositiveNumber)
      ->excludes(model_opt);
  app.add_option("--elements", size.elements, "elements for elementwise blocks")
      ->check(CLI::PositiveNumber)
      ->excludes(model_opt);
  app.add_option("--seq", size.seq, "sequence length for the encoder (128), attention (512) and decoder (128) blocks")
      ->check(CLI::PositiveNumber)
      ->excludes(model_opt);
  app.add_option("--batch", size.batch, "sequences per run (transformer blocks) or row groups (dense blocks) (1)")
      ->check(CLI::PositiveNumber)
      ->excludes(model_opt);
  app.add_option("--dmodel", size.dmodel, "model width of the dense and transformer blocks (768; decoder 2048)")
      ->check(CLI::PositiveNumber)
      ->excludes(model_opt);
  app.add_option("--heads", size.heads, "attention heads of the transformer blocks (dmodel / 64)")
      ->check(CLI::PositiveNumber)
      ->excludes(model_opt);
  app.add_option("--mode", size.mode, "decoder block: prefill (a --seq prompt per run) or decode (one token per run)")
      ->check(CLI::IsMember({"prefill", "decode"}))
      ->excludes(model_opt);
  app.add_option("--format", format, "output format: table, json, csv or md (Markdown)")
      ->check(CLI::IsMember({"table", "json", "csv", "md"}));

  if (const auto status = quarks::tools::parse_command_line(app, argc, argv, usage_error)) return *status;

  if (list) {
    for (const auto& b : quarks::bench::builtin_blocks())
      fmt::print("{:<14} {} [{}]\n", b.name, b.description, fmt::join(b.size_options, " "));
    return 0;
  }
  if (block_name.empty() && model_path.empty() && !machine)
    return usage_error("give --block NAME (see --list-blocks), --model FILE.onnx or --machine");
  if (block_name == "decoder" && size.mode == "decode" && settings.min_time > 0)
    return usage_error("--min-time does not apply to --mode decode (its KV cache is sized by --warmup and --iters)");
  for (const quarks::bench::BlockInfo& b : quarks::bench::builtin_blocks()) {
    if (b.name != block_name) continue;
    for (const char* opt : {"--rows", "--elements", "--seq", "--mode", "--batch", "--dmodel", "--heads"}) {
      if (app.count(opt) > 0 && std::find(b.size_options.begin(), b.size_options.end(), opt) == b.size_options.end())
        return usage_error(
            fmt::format("{} does not apply to block {} (it takes {})", opt, b.name, fmt::join(b.size_options, ", ")));
    }
  }

  const bool model_dir = !model_path.empty() && std::filesystem::is_directory(model_path);
  if (model_dir) {
    for (const char* opt : {"--input", "--dim", "--profile", "--min-time"}) {
      if (app.count(opt) > 0) return usage_error(std::string(opt) + " does not apply to a model directory");
    }
    if (lm_settings.prompt_tokens == 0 && lm_settings.gen_tokens == 0)
      return usage_error("--prompt-tokens 0 and --gen-tokens 0 leave nothing to run");
    lm_settings.repetitions = app.count("--iters") > 0 ? settings.iters : 5;
    lm_settings.warmup = app.count("--warmup") > 0 ? settings.warmup : 1;
  } else {
    for (const char* opt : {"--prompt-tokens", "--gen-tokens"}) {
      if (app.count(opt) > 0) return usage_error(std::string(opt) + " needs --model to be a model directory");
    }
  }

  // Before any Session: TBB's worker threads inherit the mask.
  if (!affinity.empty()) {
    const std::optional<std::vector<int>> cpus = parse_cpu_list(affinity);
    if (!cpus) return usage_error("--affinity '" + affinity + "' is not a CPU list such as 0 or 0,2-3");
    cpu_set_t set;
    CPU_ZERO(&set);
    for (int c : *cpus) CPU_SET(c, &set);
    if (sched_setaffinity(0, sizeof set, &set) != 0) {
      std::fprintf(stderr, "quarks-bench: error: --affinity %s: %s\n", affinity.c_str(), std::strerror(errno));
      return kExitError;
    }
  }

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
    std::optional<MachinePeaks> peaks;
    if (machine) {
      peaks = quarks::bench::measure_machine();
      quarks::bench::save_machine(*peaks, machine_file);
      if (block_name.empty() && model_path.empty()) {
        quarks::bench::print_machine(*peaks, format, machine_file);
        return 0;
      }
    } else {
      try {
        peaks = quarks::bench::load_machine(machine_file);
      } catch (const quarks::Error& e) {
        std::fprintf(stderr, "quarks-bench: warning: %s; going on without it\n", e.what());
      }
    }
    settings.machine = peaks ? &*peaks : nullptr;
    if (model_dir) {
      lm_settings.machine = settings.machine;
      const quarks::bench::LmReport report =
          quarks::bench::bench_language_model(model_path, threads, precisions, lm_settings);
      for (const quarks::bench::LmResult& r : report.results) {
        if (r.others_cpu > 0.1) {
          std::fprintf(stderr,
                       "quarks-bench: warning: other processes used %.2f CPUs during %s at threads %d %s; the "
                       "timings may be disturbed\n",
                       r.others_cpu, r.test.c_str(), r.threads, r.precision.c_str());
        }
      }
      quarks::bench::print_lm_report(report, lm_settings, format);
      return 0;
    }

    Workload w;
    if (!block_name.empty()) {
      w.kind = "block";
      w.name = block_name;
      size.runs = settings.warmup + settings.iters + 1;  // measure() makes one untimed run before the warmup
      w.block = quarks::bench::find_block(block_name).build(size);
    } else {
      quarks::bench::LoadedModel loaded = quarks::bench::load_model(request);
      w.kind = "model";
      w.name = model_path;
      w.block = std::move(loaded.block);
      w.inputs = std::move(loaded.inputs);
      w.block.rows = quarks::bench::model_rows(w.inputs);
      w.count_flops = true;
    }
    std::vector<RunResult> runs;
    for (const std::string& p : precisions) {
      for (int t : threads) {
        runs.push_back(
            quarks::bench::measure(w, t, p == "bf16" ? quarks::Precision::kBF16 : quarks::Precision::kF32, settings));
        const RunResult& r = runs.back();
        if (r.others_cpu > 0.1) {
          std::fprintf(stderr,
                       "quarks-bench: warning: other processes used %.2f CPUs during the threads %d %s runs; "
                       "the timings may be disturbed\n",
                       r.others_cpu, r.threads, r.precision.c_str());
        }
      }
    }
    if (format == "json") {
      quarks::bench::print_json(w, runs, settings);
    } else if (format == "csv") {
      quarks::bench::print_csv(w, runs);
    } else if (format == "md") {
      quarks::bench::print_markdown(w, runs, settings);
    } else {
      quarks::bench::print_table(w, runs, settings);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "quarks-bench: error: %s\n", e.what());
    return kExitError;
  }
  return 0;
}
