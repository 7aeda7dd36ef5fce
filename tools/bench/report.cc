// quarks-bench's reports of timed runs (see report.hpp).
#include "tools/bench/report.hpp"

#include <iostream>
#include <optional>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "quarks/quarks.hpp"
#include "tools/common/inputs.hpp"

namespace quarks::bench {
namespace {

std::string input_source(const ModelInput& in) { return in.file.empty() ? "random" : in.file; }

std::string num(double v, const char* spec = "{:.1f}") { return v > 0 ? fmt::format(fmt::runtime(spec), v) : "-"; }
std::string pct(double fraction) { return fraction >= 0 ? fmt::format("{:.0f}%", 100 * fraction) : "-"; }

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

// A CSV field, quoted when it holds a comma or a quote.
std::string csv(const std::string& field) {
  if (field.find_first_of(",\"") == std::string::npos) return field;
  std::string out = "\"";
  for (char c : field) out += c == '"' ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}

std::string csv_num(double v) { return v >= 0 ? fmt::format("{:.6g}", v) : ""; }
// "87% memory": the share of the roofline time and the limit that sets it; "-" without a machine file.
std::string limit_text(double limit_pct, const std::string& limit) {
  return limit_pct >= 0 ? fmt::format("{:.0f}% {}", 100 * limit_pct, limit) : "-";
}
std::string megabytes(double bytes) { return bytes > 0 ? fmt::format("{:.2f}", bytes / 1e6) : "-"; }
std::string csv_pos(double v) { return v > 0 ? fmt::format("{:.6g}", v) : ""; }  // "" for "not counted"

}  // namespace

void print_table(const Workload& w, const std::vector<RunResult>& runs, const Settings& s) {
  print_header(w, runs, false);
  const bool rows = w.block.rows > 0, roofline = s.machine != nullptr;
  fmt::print("{:>7} {:>9} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10} {:>9} {:>9}", "threads", "precision", "p50 ms",
             "p90 ms", "p99 ms", "mean ms", "min ms", "GFLOP/s", "MB/run", "GB/s");
  if (rows) fmt::print(" {:>10}", "rows/s");
  if (roofline) fmt::print(" {:>12}", "of limit");
  fmt::print(" {:>6}\n", "runs");
  for (const RunResult& r : runs) {
    fmt::print("{:>7} {:>9} {:>10.3f} {:>10.3f} {:>10.3f} {:>10.3f} {:>10.3f} {:>10} {:>9} {:>9}", r.threads,
               r.precision, r.stats.p50_ms, r.stats.p90_ms, r.stats.p99_ms, r.stats.mean_ms, r.stats.min_ms,
               num(r.gflops), megabytes(r.bytes), num(r.gbps));
    if (rows) fmt::print(" {:>10}", num(r.rows_per_s, "{:.0f}"));
    if (roofline) fmt::print(" {:>12}", limit_text(r.limit_pct, r.limit));
    fmt::print(" {:>6}\n", r.timed_runs);
  }
  for (const RunResult& r : runs) {
    if (r.steps.empty()) continue;
    fmt::print("\nprofile: threads {}, {} (median of {} runs per step)\n", r.threads, r.precision, r.timed_runs);
    fmt::print("{:>4}  {:<14} {:<32} {:>9} {:>6} {:>8} {:>7} {:>12}\n", "step", "op", "name", "ms", "share", "GFLOP/s",
               "GB/s", "of limit");
    for (std::size_t k = 0; k < r.steps.size(); ++k) {
      const StepResult& st = r.steps[k];
      std::string name = st.name.size() > 32 ? st.name.substr(0, 29) + "..." : st.name;
      fmt::print("{:>4}  {:<14} {:<32} {:>9.3f} {:>6} {:>8} {:>7} {:>12}\n", k, st.op, name, st.time_ms,
                 fmt::format("{:.1f}%", 100 * st.share), num(st.gflops), num(st.gbps),
                 limit_text(st.roofline, st.limit));
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
      "| MB/run | limit | of limit |\n");
  fmt::print("|--:|:--|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|:--|--:|\n");
  for (const RunResult& r : runs) {
    fmt::print("| {} | {} | {} | {:.3f} | {:.3f} | {:.3f} | {:.3f} | {:.3f} | {} | {} | {} | {} | {} | {} | {} |\n",
               r.threads, r.precision, r.timed_runs, r.stats.p50_ms, r.stats.p90_ms, r.stats.p99_ms, r.stats.mean_ms,
               r.stats.min_ms, num(r.gflops), num(r.gbps), num(r.rows_per_s, "{:.0f}"), pct(r.peak_fraction),
               megabytes(r.bytes), r.limit.empty() ? "-" : r.limit, pct(r.limit_pct));
  }
  for (const RunResult& r : runs) {
    if (r.steps.empty()) continue;
    fmt::print("\n### profile: threads {}, {}\n\n", r.threads, r.precision);
    fmt::print("| step | op | name | ms | share | GFLOP/s | GB/s | roofline | limit |\n");
    fmt::print("|--:|:--|:--|--:|--:|--:|--:|--:|:--|\n");
    for (std::size_t k = 0; k < r.steps.size(); ++k) {
      const StepResult& st = r.steps[k];
      fmt::print("| {} | {} | {} | {:.3f} | {:.1f}% | {} | {} | {} | {} |\n", k, st.op, st.name, st.time_ms,
                 100 * st.share, num(st.gflops), num(st.gbps), pct(st.roofline), st.limit.empty() ? "-" : st.limit);
    }
    fmt::print("\n{}\n", accounting(r));
  }
  if (s.machine) fmt::print("\n{}", machine_line(*s.machine));
}

// Runs, one line each; with --profile a blank line and the steps of every run.
void print_csv(const Workload& w, const std::vector<RunResult>& runs) {
  fmt::print(
      "{},threads,precision,runs,p50_ms,p90_ms,p99_ms,mean_ms,min_ms,max_ms,gflops,gbps,rows_per_s,"
      "peak_fraction,others_cpu,bytes,limit,limit_pct\n",
      w.kind);
  for (const RunResult& r : runs) {
    fmt::print("{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}\n", csv(w.name), r.threads, r.precision,
               r.timed_runs, csv_num(r.stats.p50_ms), csv_num(r.stats.p90_ms), csv_num(r.stats.p99_ms),
               csv_num(r.stats.mean_ms), csv_num(r.stats.min_ms), csv_num(r.stats.max_ms), csv_pos(r.gflops),
               csv_pos(r.gbps), csv_pos(r.rows_per_s), csv_num(r.peak_fraction), csv_num(r.others_cpu),
               csv_pos(r.bytes), r.limit, csv_num(r.limit_pct));
  }
  bool header = false;
  for (const RunResult& r : runs) {
    for (std::size_t k = 0; k < r.steps.size(); ++k) {
      if (!header)
        fmt::print("\nthreads,precision,step,op,name,time_ms,share,flops,bytes,gflops,gbps,roofline,limit,limit_pct\n");
      header = true;
      const StepResult& st = r.steps[k];
      fmt::print("{},{},{},{},{},{},{},{},{},{},{},{},{},{}\n", r.threads, r.precision, k, csv(st.op), csv(st.name),
                 csv_num(st.time_ms), csv_num(st.share), csv_num(st.flops), csv_num(st.bytes), csv_pos(st.gflops),
                 csv_pos(st.gbps), csv_num(st.roofline), st.limit, csv_num(st.roofline));
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
    if (r.bytes > 0) j["bytes"] = r.bytes;
    if (r.limit_pct >= 0) {
      j["limit"] = r.limit;
      j["limit_pct"] = r.limit_pct;
    }
    if (s.profile) {
      j["ops"] = nlohmann::ordered_json::array();
      for (const StepResult& st : r.steps) {
        nlohmann::ordered_json o = {{"op", st.op},           {"name", st.name},     {"time_ms", st.time_ms},
                                    {"mean_ms", st.mean_ms}, {"share", st.share},   {"flops", st.flops},
                                    {"bytes", st.bytes},     {"gflops", st.gflops}, {"gbps", st.gbps}};
        if (st.roofline >= 0) {
          o["roofline"] = st.roofline;
          o["limit"] = st.limit;
          o["limit_pct"] = st.roofline;
        }
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

}  // namespace quarks::bench
