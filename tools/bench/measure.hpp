// quarks-bench's timing of one workload (a built-in block or an ONNX model) at one thread count and
// precision: compile, warm up, time Session::run until --iters runs and --min-time have passed, and with
// --profile the median time of every plan step against the machine's roofline.
#pragma once

#include <chrono>
#include <cstddef>
#include <string>
#include <vector>

#include "quarks/model.hpp"
#include "tools/bench/blocks.hpp"
#include "tools/bench/machine.hpp"
#include "tools/bench/onnx_model.hpp"
#include "tools/bench/stats.hpp"

namespace quarks::bench {

// What was timed, for the table header and the JSON fields.
struct Workload {
  std::string kind;  // "block" or "model"
  std::string name;  // block name or model path
  BuiltBlock block;
  bool count_flops = false;        // flops from the compiled plan (models)
  std::vector<ModelInput> inputs;  // models only
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
  double roofline = -1;  // limit / time (the limit_pct of the step); -1 without a machine file
  std::string limit;     // "compute" or "memory": which bound the step's roofline time; "" without one
};

struct RunResult {
  int threads = 1;
  std::string precision;
  LatencyStats stats;
  std::size_t timed_runs = 0;
  double flops = 0, gflops = 0, gbps = 0, rows_per_s = 0;
  double bytes = 0;           // bytes one run moves, from the plan (Session::plan_steps), mean over the timed runs
  double peak_fraction = -1;  // gflops / the machine's compute peak; -1 without a machine file
  std::string limit;          // "compute" or "memory": which bound binds this run's flops and bytes
  double limit_pct = -1;      // the roofline time of those flops and bytes / the run's p50; -1 without one
  double others_cpu = 0;      // CPUs' worth of time other processes used during the timed runs
  std::size_t arena_bytes = 0;
  std::vector<StepResult> steps;  // --profile
  double steps_sum_ms = 0;        // sum of the steps' medians
  double steps_mean_sum_ms = 0;   // sum of the steps' means: the run's mean less what no step covers
  double unaccounted_ms() const { return stats.mean_ms - steps_mean_sum_ms; }
};

/// CPU time of the whole machine (busy jiffies in /proc/stat) and of this process, to tell how much of
/// the machine other processes used over an interval.
struct CpuSample {
  double busy = 0, self = 0;  // clock ticks
  std::chrono::steady_clock::time_point when = std::chrono::steady_clock::now();
};
CpuSample cpu_sample();
/// CPUs' worth of time (0.25 = a quarter of one core) that other processes used since `start`.
double others_cpu_since(const CpuSample& start);

/// Times `w` at `threads` threads and `precision` as `s` says.
RunResult measure(const Workload& w, int threads, quarks::Precision precision, const Settings& s);

/// Rows (tokens) per run of a model: the product of the first input's dims except the last.
double model_rows(const std::vector<ModelInput>& inputs);

}  // namespace quarks::bench
