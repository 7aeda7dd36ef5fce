// quarks-bench --model MODEL_DIR (see lm_bench.hpp).
#include "tools/bench/lm_bench.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

#include "quarks/quarks.hpp"
#include "tools/bench/measure.hpp"

namespace quarks::bench {
namespace {

using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point t0) { return std::chrono::duration<double, std::milli>(Clock::now() - t0).count(); }

// A field of /proc/self/status in bytes (VmRSS, VmHWM), 0 if absent.
double proc_status_bytes(const std::string& field) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(field + ":", 0) != 0) continue;
    std::istringstream fields(line.substr(field.size() + 1));
    double kb = 0;
    fields >> kb;
    return kb * 1024.0;
  }
  return 0;
}

double safetensors_bytes(const std::string& dir) {
  double total = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (entry.is_regular_file() && entry.path().extension() == ".safetensors")
      total += static_cast<double>(entry.file_size());
  }
  return total;
}

// A Generator over random token ids: each run appends the next n of them, as generate() does.
class Runner {
 public:
  Runner(const LanguageModel& lm, std::int64_t max_tokens) : gen_(lm) {
    std::mt19937_64 rng(42);
    std::uniform_int_distribution<std::int64_t> token(0, lm.vocab_size() - 1);
    tokens_.resize(static_cast<std::size_t>(max_tokens));
    for (auto& t : tokens_) t = token(rng);
  }

  void reset() { gen_.reset(); }
  // Runs n tokens after the held ones.
  void run(std::int64_t n) {
    gen_.append(std::span<const std::int64_t>(tokens_.data() + gen_.length(), static_cast<std::size_t>(n)));
  }
  // Flops and bytes of the next run of the shape last run, at the caches' current lengths.
  std::pair<double, double> plan_work() const {
    double flops = 0, bytes = 0;
    for (const PlanStep& step : gen_.plan_steps()) {
      flops += step.flops;
      bytes += step.bytes;
    }
    return {flops, bytes};
  }

 private:
  Generator gen_;
  std::vector<std::int64_t> tokens_;
};

void finish(LmResult& r, double flops, double bytes, const LmSettings& s) {
  std::vector<double> sorted = r.samples_ms;
  std::sort(sorted.begin(), sorted.end());
  r.median_ms = sorted[(sorted.size() + 1) / 2 - 1];
  const auto tokens = static_cast<double>(r.tokens);
  r.tokens_per_s = tokens / (r.median_ms / 1e3);
  double mean = 0, sq = 0;
  for (double ms : r.samples_ms) mean += tokens / (ms / 1e3);
  mean /= static_cast<double>(r.samples_ms.size());
  for (double ms : r.samples_ms) sq += std::pow(tokens / (ms / 1e3) - mean, 2);
  r.tokens_per_s_stddev = r.samples_ms.size() > 1 ? std::sqrt(sq / static_cast<double>(r.samples_ms.size() - 1)) : 0;
  r.flops_per_token = flops;
  r.bytes_per_token = bytes;
  if (s.machine) {
    const MachinePeaks::Roofline roof = s.machine->roofline(flops, bytes, r.threads, r.precision == "bf16");
    if (roof.seconds() > 0) {
      r.limit = roof.limit();
      r.limit_tokens_per_s = 1.0 / roof.seconds();
      r.limit_pct = r.tokens_per_s / r.limit_tokens_per_s;
    }
  }
}

LmResult prompt_test(Runner& runner, int threads, const std::string& precision, const LmSettings& s) {
  LmResult r;
  r.test = "pp" + std::to_string(s.prompt_tokens);
  r.threads = threads;
  r.precision = precision;
  r.tokens = s.prompt_tokens;
  for (int i = 0; i < std::max(1, s.warmup); ++i) {
    runner.reset();
    runner.run(s.prompt_tokens);
  }
  runner.reset();
  const auto [flops, bytes] = runner.plan_work();  // a prompt into empty caches
  const CpuSample cpu = cpu_sample();
  for (int i = 0; i < s.repetitions; ++i) {
    runner.reset();
    const auto t0 = Clock::now();
    runner.run(s.prompt_tokens);
    r.samples_ms.push_back(ms_since(t0));
  }
  r.others_cpu = others_cpu_since(cpu);
  r.rss_bytes = proc_status_bytes("VmRSS");
  const auto n = static_cast<double>(s.prompt_tokens);
  finish(r, flops / n, bytes / n, s);
  return r;
}

LmResult generation_test(Runner& runner, int threads, const std::string& precision, const LmSettings& s) {
  LmResult r;
  r.test = "tg" + std::to_string(s.gen_tokens);
  r.threads = threads;
  r.precision = precision;
  r.tokens = s.gen_tokens;
  double flops = 0, bytes = 0;
  const CpuSample cpu = cpu_sample();
  for (int rep = -std::max(1, s.warmup); rep < s.repetitions; ++rep) {
    runner.reset();
    double total = 0;
    for (std::int64_t i = 0; i < s.gen_tokens; ++i) {
      if (rep == 0 && i > 0 && (i == 1 || i == s.gen_tokens - 1)) {
        // The work of a token grows with the context, linearly: the mean of the second and the last
        // token's plans (the first one's shape is the same) is the mean over all of them.
        const auto [f, b] = runner.plan_work();
        flops += f / 2;
        bytes += b / 2;
      }
      const auto t0 = Clock::now();
      runner.run(1);
      total += ms_since(t0);
    }
    if (rep >= 0) r.samples_ms.push_back(total);
  }
  r.others_cpu = others_cpu_since(cpu);
  r.rss_bytes = proc_status_bytes("VmRSS");
  if (s.gen_tokens == 1) std::tie(flops, bytes) = runner.plan_work();
  finish(r, flops, bytes, s);
  return r;
}

}  // namespace

LmReport bench_language_model(const std::string& model_dir, const std::vector<int>& threads,
                              const std::vector<std::string>& precisions, const LmSettings& s) {
  LmReport report;
  report.model_dir = model_dir;
  report.weight_file_bytes = safetensors_bytes(model_dir);
  const std::int64_t context = std::max<std::int64_t>({s.prompt_tokens, s.gen_tokens, 1});
  for (const std::string& p : precisions) {
    for (int t : threads) {
      LoadOptions options;
      options.threads = t;
      options.precision = p == "bf16" ? Precision::kBF16 : Precision::kF32;
      options.max_context = context;
      const auto t0 = Clock::now();
      const LanguageModel lm = LanguageModel::load(model_dir, options);
      if (report.results.empty()) {
        report.load_ms = ms_since(t0);
        report.architecture = lm.architecture();
        report.layers = lm.num_layers();
        report.vocab = lm.vocab_size();
      }
      Runner runner(lm, context);
      if (report.results.empty()) {
        const auto t1 = Clock::now();
        runner.run(1);
        report.first_token_ms = report.load_ms + ms_since(t1);
      }
      if (s.prompt_tokens > 0) report.results.push_back(prompt_test(runner, t, p, s));
      if (s.gen_tokens > 0) report.results.push_back(generation_test(runner, t, p, s));
    }
  }
  report.peak_rss_bytes = proc_status_bytes("VmHWM");
  return report;
}

}  // namespace quarks::bench
