// quarks-bench --model MODEL_DIR's reports (print_lm_report in lm_bench.hpp; fields in tools/README.md).
#include <cstdio>
#include <iostream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "tools/bench/lm_bench.hpp"

namespace quarks::bench {
namespace {

constexpr double kMB = 1e6;

std::string of_limit(const LmResult& r) {
  return r.limit_pct < 0 ? "-" : fmt::format("{:.0f}% {}", 100.0 * r.limit_pct, r.limit);
}

void print_rows(const LmReport& report) {
  fmt::print("| precision | threads | test | t/s | ms/run | MB/token | limit t/s | of limit | RSS MB |\n");
  fmt::print("|---|--:|---|--:|--:|--:|--:|---|--:|\n");
  for (const LmResult& r : report.results) {
    fmt::print("| {} | {} | {} | {:.2f} ± {:.2f} | {:.1f} | {:.1f} | {} | {} | {:.0f} |\n", r.precision, r.threads,
               r.test, r.tokens_per_s, r.tokens_per_s_stddev, r.median_ms, r.bytes_per_token / kMB,
               r.limit_tokens_per_s > 0 ? fmt::format("{:.2f}", r.limit_tokens_per_s) : "-", of_limit(r),
               r.rss_bytes / kMB);
  }
}

}  // namespace

void print_lm_report(const LmReport& report, const LmSettings& s, const std::string& format) {
  if (format == "json") {
    nlohmann::ordered_json runs = nlohmann::ordered_json::array();
    for (const LmResult& r : report.results) {
      runs.push_back({{"test", r.test},
                      {"threads", r.threads},
                      {"precision", r.precision},
                      {"tokens", r.tokens},
                      {"tokens_per_s", r.tokens_per_s},
                      {"tokens_per_s_stddev", r.tokens_per_s_stddev},
                      {"median_ms", r.median_ms},
                      {"samples_ms", r.samples_ms},
                      {"flops_per_token", r.flops_per_token},
                      {"bytes_per_token", r.bytes_per_token},
                      {"limit", r.limit},
                      {"limit_tokens_per_s", r.limit_tokens_per_s},
                      {"limit_pct", r.limit_pct},
                      {"others_cpu", r.others_cpu},
                      {"rss_bytes", r.rss_bytes}});
    }
    const nlohmann::ordered_json out = {{"model", report.model_dir},
                                        {"architecture", report.architecture},
                                        {"layers", report.layers},
                                        {"vocab", report.vocab},
                                        {"weight_file_bytes", report.weight_file_bytes},
                                        {"load_ms", report.load_ms},
                                        {"first_token_ms", report.first_token_ms},
                                        {"peak_rss_bytes", report.peak_rss_bytes},
                                        {"repetitions", s.repetitions},
                                        {"cpu", s.machine ? s.machine->cpu : ""},
                                        {"runs", runs}};
    std::cout << out.dump(2) << "\n";
    return;
  }
  if (format == "csv") {
    fmt::print(
        "model,test,threads,precision,tokens,tokens_per_s,tokens_per_s_stddev,median_ms,flops_per_token,"
        "bytes_per_token,limit,limit_tokens_per_s,limit_pct,rss_bytes\n");
    for (const LmResult& r : report.results) {
      fmt::print("{},{},{},{},{},{:.4f},{:.4f},{:.3f},{:.6g},{:.6g},{},{:.4f},{:.4f},{:.0f}\n", report.model_dir,
                 r.test, r.threads, r.precision, r.tokens, r.tokens_per_s, r.tokens_per_s_stddev, r.median_ms,
                 r.flops_per_token, r.bytes_per_token, r.limit, r.limit_tokens_per_s, r.limit_pct, r.rss_bytes);
    }
    return;
  }
  const bool markdown = format == "md";
  fmt::print(
      "{}{} ({}, {} layers, vocab {}): weights {:.1f} MB in files; load {:.0f} ms, first token {:.0f} ms; "
      "peak RSS {:.0f} MB\n",
      markdown ? "**model** " : "model ", report.model_dir, report.architecture, report.layers, report.vocab,
      report.weight_file_bytes / kMB, report.load_ms, report.first_token_ms, report.peak_rss_bytes / kMB);
  if (!s.machine) fmt::print("(no machine file: run quarks-bench --machine for the limits)\n");
  fmt::print("\n");
  print_rows(report);
  fmt::print(
      "\nt/s: median over {} repetitions ± their standard deviation. limit: the tokens/s of the plan's flops "
      "at peak or its bytes at the measured bandwidth, whichever binds.\n",
      s.repetitions);
}

}  // namespace quarks::bench
