// quarks-bench's timing of one workload (see measure.hpp).
#include "tools/bench/measure.hpp"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <map>
#include <numeric>
#include <span>
#include <sstream>

#include <fmt/format.h>

namespace quarks::bench {

using Clock = std::chrono::steady_clock;

// CPU time of the whole machine (busy jiffies in /proc/stat) and of this process (/proc/self/stat), to
// tell how much of the machine other processes used over an interval.
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

namespace {

constexpr std::size_t kMaxRuns = 200000;  // --min-time stops here whatever the time

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

}  // namespace

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
  // The plan's flops and bytes before and after the timed runs: they change only with a KV cache's
  // length, linearly, so their mean is the mean over the runs.
  const std::vector<quarks::PlanStep> plan = session.plan_steps();
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
  const std::vector<quarks::PlanStep> plan_after = session.plan_steps();
  r.timed_runs = samples.size();
  r.stats = summarize(samples);
  double plan_flops = 0;
  for (std::size_t k = 0; k < plan.size(); ++k) {
    plan_flops += (plan[k].flops + plan_after[k].flops) / 2;
    r.bytes += (plan[k].bytes + plan_after[k].bytes) / 2;
  }
  r.flops = w.count_flops ? plan_flops : w.block.flops;
  const double seconds = r.stats.p50_ms / 1e3;
  if (r.flops > 0 && seconds > 0) r.gflops = r.flops / seconds / 1e9;
  if (r.bytes > 0 && seconds > 0) r.gbps = r.bytes / seconds / 1e9;
  if (w.block.rows > 0 && seconds > 0) r.rows_per_s = w.block.rows / seconds;
  const bool bf16 = precision == quarks::Precision::kBF16;
  if (s.machine && r.gflops > 0) {
    const double peak = s.machine->peak_gflops(threads, bf16);
    if (peak > 0) r.peak_fraction = r.gflops / peak;
  }
  if (s.machine && seconds > 0) {
    const MachinePeaks::Roofline roof = s.machine->roofline(r.flops, r.bytes, threads, bf16);
    r.limit = roof.limit();
    if (roof.seconds() > 0) r.limit_pct = roof.seconds() / seconds;
  }
  r.arena_bytes = session.arena_bytes();
  for (std::size_t k = 0; s.profile && k < plan.size(); ++k) {
    StepResult st;
    st.op = join(plan[k].nodes, &quarks::PlanNodeInfo::op);
    st.name = join(plan[k].nodes, &quarks::PlanNodeInfo::name);
    st.flops = (plan[k].flops + plan_after[k].flops) / 2;
    st.bytes = (plan[k].bytes + plan_after[k].bytes) / 2;
    if (!step_ms[k].empty()) {
      st.mean_ms = std::accumulate(step_ms[k].begin(), step_ms[k].end(), 0.0) / static_cast<double>(step_ms[k].size());
    }
    st.time_ms = median(step_ms[k]);
    if (r.stats.p50_ms > 0) st.share = st.time_ms / r.stats.p50_ms;
    if (st.time_ms > 0) {
      st.gflops = st.flops / st.time_ms / 1e6;
      st.gbps = st.bytes / st.time_ms / 1e6;
      if (s.machine) {
        const MachinePeaks::Roofline roof = s.machine->roofline(st.flops, st.bytes, threads, bf16);
        st.limit = roof.limit();
        if (roof.seconds() > 0) st.roofline = roof.seconds() * 1e3 / st.time_ms;
      }
    }
    r.steps_sum_ms += st.time_ms;
    r.steps_mean_sum_ms += st.mean_ms;
    r.steps.push_back(std::move(st));
  }
  return r;
}

double model_rows(const std::vector<ModelInput>& inputs) {
  if (inputs.empty() || inputs.front().shape.rank() < 2) return 0;
  double rows = 1;
  const quarks::Shape& s = inputs.front().shape;
  for (int i = 0; i + 1 < s.rank(); ++i) rows *= static_cast<double>(s[i]);
  return rows;
}

}  // namespace quarks::bench
