// quarks-bench --model MODEL_DIR: a Hugging Face decoder LM timed llama-bench style — prompt processing
// (ppN: one run of N prompt tokens into empty KV caches) and text generation (tgN: N runs of one token
// each, from empty caches) — per thread count and precision, with each test's roofline: the plan's
// flops and bytes (Session::plan_steps, weights at their stored precision, the KV rows read and
// written) at the machine's measured peak and bandwidth.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "tools/bench/machine.hpp"

namespace quarks::bench {

struct LmSettings {
  std::int64_t prompt_tokens = 512;  ///< ppN; 0 = no prompt test
  std::int64_t gen_tokens = 128;     ///< tgN; 0 = no generation test
  int warmup = 1;                    ///< untimed repetitions of each test first
  int repetitions = 5;               ///< timed repetitions; rows report the median
  const MachinePeaks* machine = nullptr;
};

struct LmResult {
  std::string test;  ///< "pp512", "tg128"
  int threads = 1;
  std::string precision;
  std::int64_t tokens = 0;
  std::vector<double> samples_ms;                   ///< each repetition's wall time (all its tokens)
  double median_ms = 0;                             ///< nearest-rank median of samples_ms
  double tokens_per_s = 0;                          ///< tokens / median
  double tokens_per_s_stddev = 0;                   ///< over the repetitions' tokens/s
  double flops_per_token = 0, bytes_per_token = 0;  ///< from the plan (tg: mean over the context lengths)
  std::string limit;                                ///< "compute" or "memory"; "" without a machine file
  double limit_tokens_per_s = 0;                    ///< tokens/s at that limit; 0 without a machine file
  double limit_pct = -1;                            ///< tokens_per_s / limit_tokens_per_s; -1 without one
  double others_cpu = 0;                            ///< CPUs' worth other processes used meanwhile
  double rss_bytes = 0;                             ///< resident set (VmRSS) at the end of the test
};

struct LmReport {
  std::string model_dir, architecture;
  std::int64_t layers = 0, vocab = 0;
  double weight_file_bytes = 0;  ///< the *.safetensors files' sizes
  double load_ms = 0;            ///< LanguageModel::load of the first configuration
  double first_token_ms = 0;     ///< load_ms plus its first run: a 1-token prompt into cold caches
  double peak_rss_bytes = 0;     ///< peak resident set (VmHWM) after all runs, loading included
  std::vector<LmResult> results;
};

/// Loads the model once per (precision, thread count) and runs the tests. Throws quarks::Error for a
/// model that cannot be loaded or a context too small for the tests.
LmReport bench_language_model(const std::string& model_dir, const std::vector<int>& threads,
                              const std::vector<std::string>& precisions, const LmSettings& s);

/// format: "table" (a Markdown-style table with a header), "md", "csv" or "json".
void print_lm_report(const LmReport& r, const LmSettings& s, const std::string& format);

}  // namespace quarks::bench
