// quarks-bench: latency and throughput of built-in blocks or ONNX models, per thread count and precision,
// with a per-step profile against this machine's measured roofline.
//
//   quarks-bench --list-blocks
//   quarks-bench --block gated-mlp --threads 1,2 --iters 50 --format table|json|csv|md
//   quarks-bench --block encoder --seq 384 --profile
//   quarks-bench --block decoder --mode decode --seq 1024
//   quarks-bench --model encoder.onnx [--input NAME=FILE.npy ...] [--dim NAME=VALUE ...] --threads 1,2
//   quarks-bench --machine            (measure this machine's peaks into ~/.cache/quarks/machine.json)
//
// Exit status: 0 success, 1 a problem with the block, model, inputs or run (one line on stderr), 2 a
// usage error.
#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <map>
#include <numeric>
#include <optional>
#include <set>
#include <sstream>

#include <fmt/format.h>
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "quarks/quarks.hpp"
#include "tools/bench/blocks.hpp"
#include "tools/bench/machine.hpp"
#include "tools/bench/model_flops.hpp"
#include "tools/bench/onnx_model.hpp"
#include "tools/bench/stats.hpp"
#include "tools/common/cli.hpp"
#include "tools/common/inputs.hpp"

namespace {

using quarks::bench::BuiltBlock;
using quarks::bench::LatencyStats;
using quarks::bench::MachinePeaks;
using Clock = std::chrono::steady_clock;

constexpr int kExitError = 1;
constexpr int kExitUsage = 2;
constexpr std::size_t kMaxRuns = 200000;  // --min-time stops here whatever the time

constexpr const char* kFooter = R"(ONNX models (--model):
  Every graph input is read from --input NAME=FILE.npy (float32/float64, int64/int32 or bool files, as
  quarks-run takes them) or, for float32 inputs without a file, made up: uniform random in [-1, 1]
  with a fixed seed. A made-up input's symbolic dims take their sizes from --dim NAME=VALUE or from a
  file that has the same dim; int64 and bool inputs need a file. The model is imported and compiled
  with every shape fixed. GFLOP/s counts the dense, matmul and attention products of the plan after
  fusion (2 per multiply-add; elementwise work, norms and softmax are not counted). rows/s counts, per
  run, the product of the first input's dims except the last (e.g. batch x seq for [batch, seq, d]).

Timing: each configuration compiles the model, runs it once (allocating the output buffers) plus
--warmup times, then times at least --iters runs of Session::run into those buffers, and keeps going
until --min-time seconds have passed. p50/p90/p99 are nearest-rank percentiles. While it runs, the
CPU time used by other processes is watched (/proc/stat against this process's own): above 10% of a
core a warning goes to stderr. Runs longer than 2 s show a progress line when stderr is a terminal.

Profile (--profile): the Session records the wall time of every plan step (a node after fusion, or
nodes that run side by side); each step's time is the median over the timed runs, its share is of the
median run, and the steps' sum is printed with the part of the run they do not account for (binding,
output copies). GFLOP/s counts the step's products; GB/s its inputs' and outputs' bytes (each once).
roofline = the step's fastest possible time over its measured time, the fastest being
max(flops / peak GFLOP/s, bytes / bandwidth) at the run's thread count, from the machine file (L2
bandwidth when the bytes fit the threads' L2, else memory bandwidth); "-" without a machine file.

Machine (--machine): measures the engine's f32 dense on a 1024x1024x1024 product (1 thread and all),
bf16 the same way ("unsupported" where the CPU lacks it), and a streaming triad over >= 4x L3 (memory)
and over half of L2 (1 thread and all); writes --machine-file (default ~/.cache/quarks/machine.json)
and prints it. Without --block/--model it only measures. Every run reads the file when it exists, for
the roofline and the fraction of peak ("peak" column).

Exit status:
  0 success; 1 a problem with the block, model, inputs or run (one line on stderr, "quarks-bench:
  error: ..."); 2 a usage error.)";

// What was timed, for the table header and the JSON fields.
struct Workload {
  std::string kind;  // "block" or "model"
  std::string name;  // block name or model path
  BuiltBlock block;
  bool count_flops = false;                       // flops from the compiled plan (models)
  std::vector<quarks::bench::ModelInput> inputs;  // models only
};

struct Settings {
  int warmup = 5, iters = 50;
  double min_time = 0;  // seconds
  bool profile = false;
  const MachinePeaks* machine = nullptr;
};

// One plan step's profile: the median of its times over the timed runs.
struct StepResult {
  std::string op, name;  // ", "-joined for steps of several nodes
  double flops = 0, bytes = 0;
  double time_ms = 0, mean_ms = 0, share = 0, gflops = 0, gbps = 0;  // time_ms: the median
  double roofline = -1;                                              // limit / time; -1 without a machine file
};

struct RunResult {
  int threads = 1;
  std::string precision;
  LatencyStats stats;
  std::size_t timed_runs = 0;
  double flops = 0, gflops = 0, gbps = 0, rows_per_s = 0;
  double peak_fraction = -1;  // gflops / the machine's peak; -1 without a machine file
  double others_cpu = 0;      // CPUs' worth of time other processes used during the timed runs
  std::size_t arena_bytes = 0;
  std::vector<StepResult> steps;  // --profile
  double steps_sum_ms = 0;        // sum of the steps' medians
  double steps_mean_sum_ms = 0;   // sum of the steps' means: the run's mean less what no step covers
  double unaccounted_ms() const { return stats.mean_ms - steps_mean_sum_ms; }
};

// CPU time of the whole machine (busy jiffies in /proc/stat) and of this process (/proc/self/stat), to
// tell how much of the machine other processes used over an interval.
struct CpuSample {
  double busy = 0, self = 0;  // clock ticks
  Clock::time_point when = Clock::now();
};

CpuSample cpu_sample() {
  CpuSample s;
  std::ifstream stat("/proc/stat");
  std::string cpu;
  double v[8] = {};
  if (stat >> cpu >> v[0] >> v[1] >> v[2] >> v[3] >> v[4] >> v[5] >> v[6] >> v[7]) {
    s.busy = v[0] + v[1] + v[2] + v[5] + v[6] + v[7];  // user nice system irq softirq steal
  }
  std::ifstream self("/proc/self/stat");
  std::string text((std::istreambuf_iterator<char>(self)), std::istreambuf_iterator<char>());
  const std::size_t paren = text.rfind(')');
  if (paren != std::string::npos) {
    std::istringstream fields(text.substr(paren + 2));  // from field 3 (state)
    std::string field;
    double utime = 0, stime = 0;
    for (int i = 3; i <= 15 && fields >> field; ++i) {
      if (i == 14) utime = std::atof(field.c_str());
      if (i == 15) stime = std::atof(field.c_str());
    }
    s.self = utime + stime;
  }
  return s;
}

// CPUs' worth of time (0.25 = a quarter of one core) that other processes used since `start`.
double others_cpu_since(const CpuSample& start) {
  const CpuSample end = cpu_sample();
  const double wall_ticks =
      std::chrono::duration<double>(end.when - start.when).count() * static_cast<double>(sysconf(_SC_CLK_TCK));
  if (wall_ticks <= 0) return 0;
  return std::max(0.0, (end.busy - start.busy) - (end.self - start.self)) / wall_ticks;
}

// "\r"-updated progress on stderr, only when stderr is a terminal and the run has gone on for 2 s.
class Progress {
 public:
  explicit Progress(std::string label) : label_(std::move(label)), tty_(isatty(STDERR_FILENO) == 1) {}
  void update(std::size_t runs, double elapsed, const Settings& s) {
    if (!tty_ || elapsed < 2.0 || elapsed - last_ < 0.25) return;
    last_ = elapsed;
    shown_ = true;
    std::string goal = fmt::format("{} run{}", s.iters, s.iters == 1 ? "" : "s");
    if (s.min_time > 0) goal += fmt::format(" and {:g} s", s.min_time);
    std::fprintf(stderr, "\r\033[Kquarks-bench: %s: run %zu (%.1f s; at least %s)", label_.c_str(), runs, elapsed,
                 goal.c_str());
  }
  ~Progress() {
    if (shown_) std::fprintf(stderr, "\r\033[K");
  }

 private:
  std::string label_;
  bool tty_;
  bool shown_ = false;
  double last_ = 0;
};

double median(std::vector<double>& v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[(v.size() + 1) / 2 - 1];  // nearest rank, as summarize()
}

std::string join(const std::vector<quarks::PlanNodeInfo>& nodes, std::string quarks::PlanNodeInfo::*field) {
  std::string out;
  for (const auto& n : nodes) out += (out.empty() ? "" : ", ") + n.*field;
  return out;
}

RunResult measure(const Workload& w, int threads, quarks::Precision precision, const Settings& s) {
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

  session.set_profiling(s.profile);
  for (int i = 0; i < s.warmup; ++i) session.run(inputs, outputs);
  const std::vector<quarks::PlanStep> plan = s.profile ? session.plan_steps() : std::vector<quarks::PlanStep>{};
  std::vector<std::vector<double>> step_ms(plan.size());
  std::vector<double> samples;
  const auto iters = static_cast<std::size_t>(s.iters);
  samples.reserve(iters);
  for (auto& v : step_ms) v.reserve(iters);

  RunResult r;
  r.threads = threads;
  r.precision = precision == quarks::Precision::kBF16 ? "bf16" : "f32";
  Progress progress(fmt::format("threads {} {}", threads, r.precision));
  const CpuSample cpu_start = cpu_sample();
  const Clock::time_point start = Clock::now();
  double elapsed = 0;
  while ((samples.size() < iters || elapsed < s.min_time) && samples.size() < kMaxRuns) {
    const auto t0 = Clock::now();
    session.run(inputs, outputs);
    const auto t1 = Clock::now();
    samples.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
    if (s.profile) {
      const std::span<const double> times = session.step_seconds();
      if (times.size() == plan.size()) {
        for (std::size_t k = 0; k < times.size(); ++k) step_ms[k].push_back(times[k] * 1e3);
      }
    }
    elapsed = std::chrono::duration<double>(t1 - start).count();
    progress.update(samples.size(), elapsed, s);
  }
  r.others_cpu = others_cpu_since(cpu_start);
  r.timed_runs = samples.size();
  r.stats = quarks::bench::summarize(samples);
  r.flops = w.count_flops ? quarks::bench::product_flops(session) : w.block.flops;
  const double seconds = r.stats.p50_ms / 1e3;
  if (r.flops > 0 && seconds > 0) r.gflops = r.flops / seconds / 1e9;
  if (w.block.bytes > 0 && seconds > 0) r.gbps = w.block.bytes / seconds / 1e9;
  if (w.block.rows > 0 && seconds > 0) r.rows_per_s = w.block.rows / seconds;
  const bool bf16 = precision == quarks::Precision::kBF16;
  if (s.machine && r.gflops > 0) {
    const double peak = s.machine->peak_gflops(threads, bf16);
    if (peak > 0) r.peak_fraction = r.gflops / peak;
  }
  r.arena_bytes = session.arena_bytes();
  for (std::size_t k = 0; k < plan.size(); ++k) {
    StepResult st;
    st.op = join(plan[k].nodes, &quarks::PlanNodeInfo::op);
    st.name = join(plan[k].nodes, &quarks::PlanNodeInfo::name);
    st.flops = plan[k].flops;
    st.bytes = plan[k].bytes;
    if (!step_ms[k].empty()) {
      st.mean_ms = std::accumulate(step_ms[k].begin(), step_ms[k].end(), 0.0) / static_cast<double>(step_ms[k].size());
    }
    st.time_ms = median(step_ms[k]);
    if (r.stats.p50_ms > 0) st.share = st.time_ms / r.stats.p50_ms;
    if (st.time_ms > 0) {
      st.gflops = st.flops / st.time_ms / 1e6;
      st.gbps = st.bytes / st.time_ms / 1e6;
      const double limit_ms = s.machine ? s.machine->limit_seconds(st.flops, st.bytes, threads, bf16) * 1e3 : 0;
      if (limit_ms > 0) st.roofline = limit_ms / st.time_ms;
    }
    r.steps_sum_ms += st.time_ms;
    r.steps_mean_sum_ms += st.mean_ms;
    r.steps.push_back(std::move(st));
  }
  return r;
}

std::string input_source(const quarks::bench::ModelInput& in) { return in.file.empty() ? "random" : in.file; }

std::string num(double v, const char* spec = "{:.1f}") { return v > 0 ? fmt::format(fmt::runtime(spec), v) : "-"; }
std::string pct(double fraction) { return fraction >= 0 ? fmt::format("{:.0f}%", 100 * fraction) : "-"; }

// Rows (tokens) per run of a model: the product of the first input's dims except the last.
double model_rows(const std::vector<quarks::bench::ModelInput>& inputs) {
  if (inputs.empty() || inputs.front().shape.rank() < 2) return 0;
  double rows = 1;
  const quarks::Shape& s = inputs.front().shape;
  for (int i = 0; i + 1 < s.rank(); ++i) rows *= static_cast<double>(s[i]);
  return rows;
}

std::string machine_line(const MachinePeaks& m) {
  auto bf16 = [](const std::optional<double>& v) { return v ? fmt::format("{:.1f}", *v) : std::string("unsupported"); };
  return fmt::format(
      "machine {} ({} threads, L2 {} KiB, L3 {} MiB; measured {})\n"
      "  f32 dense GFLOP/s {:.1f} (1 thread) {:.1f} (all); bf16 {} / {}\n"
      "  memory GB/s {:.1f} / {:.1f}; L2 GB/s {:.1f} / {:.1f}\n",
      m.cpu, m.threads, m.l2_bytes >> 10, m.l3_bytes >> 20, m.measured_at, m.f32_gflops_1, m.f32_gflops_n,
      bf16(m.bf16_gflops_1), bf16(m.bf16_gflops_n), m.mem_gbps_1, m.mem_gbps_n, m.l2_gbps_1, m.l2_gbps_n);
}

// How much of the run the steps account for. Means add up (a run's time is its steps' plus what is
// outside them), medians need not: the remainder is taken between means.
std::string accounting(const RunResult& r) {
  const double rest = r.unaccounted_ms();
  return fmt::format(
      "steps: medians sum to {:.3f} ms (run p50 {:.3f} ms); means sum to {:.3f} ms of the {:.3f} ms mean run, "
      "unaccounted {:.3f} ms ({:.1f}%)",
      r.steps_sum_ms, r.stats.p50_ms, r.steps_mean_sum_ms, r.stats.mean_ms, rest,
      r.stats.mean_ms > 0 ? 100 * rest / r.stats.mean_ms : 0.0);
}

void print_header(const Workload& w, const std::vector<RunResult>& runs, bool markdown) {
  const char* indent = markdown ? "- " : "  ";
  if (w.kind == "block") {
    fmt::print("{}block {} ({})\n", markdown ? "## " : "", w.name, w.block.shape);
  } else {
    fmt::print("{}model {}\n", markdown ? "## " : "", w.name);
    for (const auto& in : w.inputs) {
      fmt::print("{}input {} {} {} ({})\n", indent, in.name, quarks::tools::numpy_name(in.dtype), in.shape.to_string(),
                 input_source(in));
    }
    if (!runs.empty() && runs.front().flops <= 0)
      fmt::print("{}(no dense, matmul or attention products counted)\n", indent);
  }
  if (markdown) fmt::print("\n");
}

void print_table(const Workload& w, const std::vector<RunResult>& runs, const Settings& s) {
  print_header(w, runs, false);
  const bool rows = w.block.rows > 0, peak = s.machine != nullptr;
  fmt::print("{:>7} {:>9} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10} {:>9}", "threads", "precision", "p50 ms", "p90 ms",
             "p99 ms", "mean ms", "min ms", "GFLOP/s", "GB/s");
  if (rows) fmt::print(" {:>10}", "rows/s");
  if (peak) fmt::print(" {:>5}", "peak");
  fmt::print(" {:>6}\n", "runs");
  for (const RunResult& r : runs) {
    fmt::print("{:>7} {:>9} {:>10.3f} {:>10.3f} {:>10.3f} {:>10.3f} {:>10.3f} {:>10} {:>9}", r.threads, r.precision,
               r.stats.p50_ms, r.stats.p90_ms, r.stats.p99_ms, r.stats.mean_ms, r.stats.min_ms, num(r.gflops),
               num(r.gbps));
    if (rows) fmt::print(" {:>10}", num(r.rows_per_s, "{:.0f}"));
    if (peak) fmt::print(" {:>5}", pct(r.peak_fraction));
    fmt::print(" {:>6}\n", r.timed_runs);
  }
  for (const RunResult& r : runs) {
    if (r.steps.empty()) continue;
    fmt::print("\nprofile: threads {}, {} (median of {} runs per step)\n", r.threads, r.precision, r.timed_runs);
    fmt::print("{:>4}  {:<14} {:<32} {:>9} {:>6} {:>8} {:>7} {:>8}\n", "step", "op", "name", "ms", "share", "GFLOP/s",
               "GB/s", "roofline");
    for (std::size_t k = 0; k < r.steps.size(); ++k) {
      const StepResult& st = r.steps[k];
      std::string name = st.name.size() > 32 ? st.name.substr(0, 29) + "..." : st.name;
      fmt::print("{:>4}  {:<14} {:<32} {:>9.3f} {:>6} {:>8} {:>7} {:>8}\n", k, st.op, name, st.time_ms,
                 fmt::format("{:.1f}%", 100 * st.share), num(st.gflops), num(st.gbps), pct(st.roofline));
    }
    fmt::print("{}\n", accounting(r));
  }
  if (s.profile)
    fmt::print("\n{}", s.machine ? machine_line(*s.machine) : "roofline: no machine file (--machine measures one)\n");
}

void print_markdown(const Workload& w, const std::vector<RunResult>& runs, const Settings& s) {
  print_header(w, runs, true);
  fmt::print(
      "| threads | precision | runs | p50 ms | p90 ms | p99 ms | mean ms | min ms | GFLOP/s | GB/s | rows/s | peak "
      "|\n");
  fmt::print("|--:|:--|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n");
  for (const RunResult& r : runs) {
    fmt::print("| {} | {} | {} | {:.3f} | {:.3f} | {:.3f} | {:.3f} | {:.3f} | {} | {} | {} | {} |\n", r.threads,
               r.precision, r.timed_runs, r.stats.p50_ms, r.stats.p90_ms, r.stats.p99_ms, r.stats.mean_ms,
               r.stats.min_ms, num(r.gflops), num(r.gbps), num(r.rows_per_s, "{:.0f}"), pct(r.peak_fraction));
  }
  for (const RunResult& r : runs) {
    if (r.steps.empty()) continue;
    fmt::print("\n### profile: threads {}, {}\n\n", r.threads, r.precision);
    fmt::print("| step | op | name | ms | share | GFLOP/s | GB/s | roofline |\n");
    fmt::print("|--:|:--|:--|--:|--:|--:|--:|--:|\n");
    for (std::size_t k = 0; k < r.steps.size(); ++k) {
      const StepResult& st = r.steps[k];
      fmt::print("| {} | {} | {} | {:.3f} | {:.1f}% | {} | {} | {} |\n", k, st.op, st.name, st.time_ms, 100 * st.share,
                 num(st.gflops), num(st.gbps), pct(st.roofline));
    }
    fmt::print("\n{}\n", accounting(r));
  }
  if (s.machine) fmt::print("\n{}", machine_line(*s.machine));
}

// A CSV field, quoted when it holds a comma or a quote.
std::string csv(const std::string& field) {
  if (field.find_first_of(",\"") == std::string::npos) return field;
  std::string out = "\"";
  for (char c : field) out += c == '"' ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}

std::string csv_num(double v) { return v >= 0 ? fmt::format("{:.6g}", v) : ""; }
std::string csv_pos(double v) { return v > 0 ? fmt::format("{:.6g}", v) : ""; }  // "" for "not counted"

// Runs, one line each; with --profile a blank line and the steps of every run.
void print_csv(const Workload& w, const std::vector<RunResult>& runs) {
  fmt::print(
      "{},threads,precision,runs,p50_ms,p90_ms,p99_ms,mean_ms,min_ms,max_ms,gflops,gbps,rows_per_s,"
      "peak_fraction,others_cpu\n",
      w.kind);
  for (const RunResult& r : runs) {
    fmt::print("{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}\n", csv(w.name), r.threads, r.precision, r.timed_runs,
               csv_num(r.stats.p50_ms), csv_num(r.stats.p90_ms), csv_num(r.stats.p99_ms), csv_num(r.stats.mean_ms),
               csv_num(r.stats.min_ms), csv_num(r.stats.max_ms), csv_pos(r.gflops), csv_pos(r.gbps),
               csv_pos(r.rows_per_s), csv_num(r.peak_fraction), csv_num(r.others_cpu));
  }
  bool header = false;
  for (const RunResult& r : runs) {
    for (std::size_t k = 0; k < r.steps.size(); ++k) {
      if (!header) fmt::print("\nthreads,precision,step,op,name,time_ms,share,flops,bytes,gflops,gbps,roofline\n");
      header = true;
      const StepResult& st = r.steps[k];
      fmt::print("{},{},{},{},{},{},{},{},{},{},{},{}\n", r.threads, r.precision, k, csv(st.op), csv(st.name),
                 csv_num(st.time_ms), csv_num(st.share), csv_num(st.flops), csv_num(st.bytes), csv_pos(st.gflops),
                 csv_pos(st.gbps), csv_num(st.roofline));
    }
  }
}

void print_json(const Workload& w, const std::vector<RunResult>& runs, const Settings& s) {
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
  if (w.block.rows > 0) out["rows"] = w.block.rows;
  out["quarks_version"] = quarks::version();
  if (s.machine) out["machine"] = s.machine->to_json();
  out["runs"] = nlohmann::ordered_json::array();
  for (const RunResult& r : runs) {
    nlohmann::ordered_json j = {{"threads", r.threads},         {"precision", r.precision},  {"runs", r.timed_runs},
                                {"p50_ms", r.stats.p50_ms},     {"p90_ms", r.stats.p90_ms},  {"p99_ms", r.stats.p99_ms},
                                {"mean_ms", r.stats.mean_ms},   {"min_ms", r.stats.min_ms},  {"max_ms", r.stats.max_ms},
                                {"arena_bytes", r.arena_bytes}, {"others_cpu", r.others_cpu}};
    if (r.gflops > 0) j["gflops"] = r.gflops;
    if (r.gbps > 0) j["gbps"] = r.gbps;
    if (r.rows_per_s > 0) j["rows_per_s"] = r.rows_per_s;
    if (r.peak_fraction >= 0) j["peak_fraction"] = r.peak_fraction;
    if (s.profile) {
      j["ops"] = nlohmann::ordered_json::array();
      for (const StepResult& st : r.steps) {
        nlohmann::ordered_json o = {{"op", st.op},           {"name", st.name},     {"time_ms", st.time_ms},
                                    {"mean_ms", st.mean_ms}, {"share", st.share},   {"flops", st.flops},
                                    {"bytes", st.bytes},     {"gflops", st.gflops}, {"gbps", st.gbps}};
        if (st.roofline >= 0) o["roofline"] = st.roofline;
        j["ops"].push_back(o);
      }
      j["ops_sum_ms"] = r.steps_sum_ms;
      j["ops_mean_sum_ms"] = r.steps_mean_sum_ms;
      j["unaccounted_ms"] = r.unaccounted_ms();
    }
    out["runs"].push_back(j);
  }
  std::cout << out.dump(2) << "\n";
}

void print_machine(const MachinePeaks& m, const std::string& format, const std::string& path) {
  if (format == "json") {
    std::cout << nlohmann::ordered_json{{"machine", m.to_json()}, {"machine_file", path}}.dump(2) << "\n";
  } else {
    fmt::print("{}(saved to {})\n", machine_line(m), path);
  }
}

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
        print_machine(*peaks, format, machine_file);
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
      w.block.rows = model_rows(w.inputs);
      w.count_flops = true;
    }
    std::vector<RunResult> runs;
    for (const std::string& p : precisions) {
      for (int t : threads) {
        runs.push_back(measure(w, t, p == "bf16" ? quarks::Precision::kBF16 : quarks::Precision::kF32, settings));
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
      print_json(w, runs, settings);
    } else if (format == "csv") {
      print_csv(w, runs);
    } else if (format == "md") {
      print_markdown(w, runs, settings);
    } else {
      print_table(w, runs, settings);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "quarks-bench: error: %s\n", e.what());
    return kExitError;
  }
  return 0;
}
