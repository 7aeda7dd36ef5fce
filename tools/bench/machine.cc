#include "tools/bench/machine.hpp"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <random>
#include <thread>
#include <vector>

#include "quarks/quarks.hpp"

namespace quarks::bench {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// Cache size from sysfs ("1024K"), 0 if not reported.
std::size_t cache_bytes(int index) {
  std::ifstream f("/sys/devices/system/cpu/cpu0/cache/index" + std::to_string(index) + "/size");
  std::string text;
  if (!(f >> text) || text.empty()) return 0;
  std::size_t value = std::strtoull(text.c_str(), nullptr, 10);
  const char unit = text.back();
  if (unit == 'K') value <<= 10;
  if (unit == 'M') value <<= 20;
  return value;
}

std::string cpu_name() {
  std::ifstream f("/proc/cpuinfo");
  for (std::string line; std::getline(f, line);) {
    if (line.rfind("model name", 0) == 0) {
      const std::size_t colon = line.find(':');
      if (colon != std::string::npos) return line.substr(std::min(line.size(), colon + 2));
    }
  }
  return "unknown";
}

// Best GFLOP/s of the engine's dense on [n, n]·[n, n] (the fastest of several runs); nullopt if the
// precision does not compile here.
std::optional<double> dense_gflops(int n, int threads, Precision precision) {
  Tensor w(DType::kF32, {n, n}), x(DType::kF32, {n, n});
  std::mt19937 rng(1);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  for (std::int64_t i = 0; i < w.numel(); ++i) w.f32()[i] = dist(rng) / 32.0f;
  for (std::int64_t i = 0; i < x.numel(); ++i) x.f32()[i] = dist(rng);
  GraphBuilder g;
  g.output("y", g.dense("peak", g.input("x", {n, n}), g.constant("w", w)));
  CompileOptions options;
  options.threads = threads;
  options.precision = precision;
  Model model;
  try {
    model = compile(g.build(), options);
  } catch (const Error& e) {
    if (e.code() == ErrorCode::kUnsupported) return std::nullopt;
    throw;
  }
  Session session(model);
  Tensor y(DType::kF32, {n, n});
  const NamedInput in[] = {{"x", x}};
  const NamedOutput out[] = {{"y", y.view()}};
  session.run(in, out);
  double best = 1e30;
  const Clock::time_point start = Clock::now();
  for (int i = 0; i < 20 && (i < 3 || seconds_since(start) < 1.0); ++i) {
    const Clock::time_point t0 = Clock::now();
    session.run(in, out);
    best = std::min(best, seconds_since(t0));
  }
  return 2.0 * n * n * static_cast<double>(n) / best / 1e9;
}

// Triad a = b + s·c over `elements` floats per thread, `threads` threads each on its own arrays,
// repeated until ~0.3 s; GB/s counting 12 bytes per element (two reads, one write).
double triad_gbps(std::size_t elements, int threads) {
  std::vector<std::vector<float>> a(threads), b(threads), c(threads);
  for (int t = 0; t < threads; ++t) {
    a[t].assign(elements, 0.0f);
    b[t].assign(elements, 1.0f);
    c[t].assign(elements, 2.0f);
  }
  auto kernel = [&](int t, int reps) {
    float* pa = a[t].data();
    const float* pb = b[t].data();
    const float* pc = c[t].data();
    for (int r = 0; r < reps; ++r) {
      const float s = 0.5f + static_cast<float>(r & 1);
      for (std::size_t i = 0; i < elements; ++i) pa[i] = pb[i] + s * pc[i];
    }
  };
  auto timed = [&](int reps) {
    const Clock::time_point t0 = Clock::now();
    std::vector<std::thread> pool;
    for (int t = 1; t < threads; ++t) pool.emplace_back(kernel, t, reps);
    kernel(0, reps);
    for (std::thread& th : pool) th.join();
    return seconds_since(t0);
  };
  timed(1);  // touch the pages (and warm the cache)
  int reps = 1;
  double s = timed(reps);
  while (s < 0.05) s = timed(reps *= 4);
  reps = std::max(1, static_cast<int>(reps * 0.3 / s));
  double best = 1e30;
  for (int i = 0; i < 3; ++i) best = std::min(best, timed(reps) / reps);
  return 12.0 * static_cast<double>(elements) * threads / best / 1e9;
}

double number(const nlohmann::json& j, const char* key) {
  if (!j.contains(key) || !j[key].is_number()) {
    throw Error(ErrorCode::kInvalidArgument,
                std::string("machine file: field '") + key + "' is missing or not a number");
  }
  return j[key].get<double>();
}

}  // namespace

double MachinePeaks::peak_gflops(int t, bool bf16) const {
  const double one = bf16 ? bf16_gflops_1.value_or(0) : f32_gflops_1;
  const double all = bf16 ? bf16_gflops_n.value_or(0) : f32_gflops_n;
  return t >= threads ? all : std::min(all, one * t);
}

double MachinePeaks::bandwidth_gbps(double bytes, int t) const {
  const bool one = t <= 1;
  if (l2_bytes > 0 && bytes <= static_cast<double>(l2_bytes) * std::min(t, threads)) return one ? l2_gbps_1 : l2_gbps_n;
  return one ? mem_gbps_1 : mem_gbps_n;
}

MachinePeaks::Roofline MachinePeaks::roofline(double flops, double bytes, int t, bool bf16) const {
  const double peak = peak_gflops(t, bf16), bw = bandwidth_gbps(bytes, t);
  Roofline r;
  r.compute_seconds = flops > 0 && peak > 0 ? flops / (peak * 1e9) : 0;
  r.memory_seconds = bytes > 0 && bw > 0 ? bytes / (bw * 1e9) : 0;
  return r;
}

double MachinePeaks::limit_seconds(double flops, double bytes, int t, bool bf16) const {
  return roofline(flops, bytes, t, bf16).seconds();
}

nlohmann::ordered_json MachinePeaks::to_json() const {
  nlohmann::ordered_json j;
  j["cpu"] = cpu;
  j["threads"] = threads;
  j["l2_bytes"] = l2_bytes;
  j["l3_bytes"] = l3_bytes;
  j["f32_gflops_1"] = f32_gflops_1;
  j["f32_gflops_n"] = f32_gflops_n;
  if (bf16_gflops_1) {
    j["bf16_gflops_1"] = *bf16_gflops_1;
    j["bf16_gflops_n"] = bf16_gflops_n.value_or(0);
  } else {
    j["bf16_gflops_1"] = "unsupported";
    j["bf16_gflops_n"] = "unsupported";
  }
  j["mem_gbps_1"] = mem_gbps_1;
  j["mem_gbps_n"] = mem_gbps_n;
  j["l2_gbps_1"] = l2_gbps_1;
  j["l2_gbps_n"] = l2_gbps_n;
  j["measured_at"] = measured_at;
  return j;
}

MachinePeaks MachinePeaks::from_json(const nlohmann::json& j) {
  if (!j.is_object()) throw Error(ErrorCode::kInvalidArgument, "machine file: not a JSON object");
  MachinePeaks m;
  m.cpu = j.value("cpu", "unknown");
  m.threads = static_cast<int>(number(j, "threads"));
  m.l2_bytes = static_cast<std::size_t>(number(j, "l2_bytes"));
  m.l3_bytes = static_cast<std::size_t>(number(j, "l3_bytes"));
  m.f32_gflops_1 = number(j, "f32_gflops_1");
  m.f32_gflops_n = number(j, "f32_gflops_n");
  if (j.contains("bf16_gflops_1") && j["bf16_gflops_1"].is_number()) {
    m.bf16_gflops_1 = number(j, "bf16_gflops_1");
    m.bf16_gflops_n = number(j, "bf16_gflops_n");
  }
  m.mem_gbps_1 = number(j, "mem_gbps_1");
  m.mem_gbps_n = number(j, "mem_gbps_n");
  m.l2_gbps_1 = number(j, "l2_gbps_1");
  m.l2_gbps_n = number(j, "l2_gbps_n");
  m.measured_at = j.value("measured_at", "");
  if (m.threads < 1 || m.f32_gflops_1 <= 0 || m.mem_gbps_1 <= 0) {
    throw Error(ErrorCode::kInvalidArgument, "machine file: threads, f32_gflops_1 and mem_gbps_1 must be positive");
  }
  return m;
}

MachinePeaks measure_machine(int dense_n) {
  MachinePeaks m;
  m.cpu = cpu_name();
  m.threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  m.l2_bytes = cache_bytes(2);
  m.l3_bytes = cache_bytes(3);
  m.f32_gflops_1 = dense_gflops(dense_n, 1, Precision::kF32).value_or(0);
  m.f32_gflops_n = dense_gflops(dense_n, m.threads, Precision::kF32).value_or(0);
  m.bf16_gflops_1 = dense_gflops(dense_n, 1, Precision::kBF16);
  if (m.bf16_gflops_1) m.bf16_gflops_n = dense_gflops(dense_n, m.threads, Precision::kBF16);
  // Memory: three arrays together >= 4x L3 (at least 64 MiB), split over the threads.
  const std::size_t big = std::max<std::size_t>(4 * m.l3_bytes, std::size_t{64} << 20) / 12 + 1;
  m.mem_gbps_1 = triad_gbps(big, 1);
  m.mem_gbps_n = triad_gbps(big / m.threads + 1, m.threads);
  // L2: three arrays filling half of one core's L2 (128 KiB if not reported).
  const std::size_t l2 = (m.l2_bytes ? m.l2_bytes : std::size_t{256} << 10) / 2 / 12;
  m.l2_gbps_1 = triad_gbps(l2, 1);
  m.l2_gbps_n = triad_gbps(l2, m.threads);
  char stamp[32];
  const std::time_t now = std::time(nullptr);
  std::strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&now));
  m.measured_at = stamp;
  return m;
}

std::string default_machine_file() {
  if (const char* xdg = std::getenv("XDG_CACHE_HOME"); xdg && *xdg) return std::string(xdg) + "/quarks/machine.json";
  const char* home = std::getenv("HOME");
  return std::string(home && *home ? home : ".") + "/.cache/quarks/machine.json";
}

std::optional<MachinePeaks> load_machine(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) return std::nullopt;
  std::ifstream f(path);
  if (!f) throw Error(ErrorCode::kInvalidArgument, "cannot read machine file " + path);
  try {
    return MachinePeaks::from_json(nlohmann::json::parse(f));
  } catch (const nlohmann::json::exception& e) {
    throw Error(ErrorCode::kInvalidArgument, "machine file " + path + " is not valid JSON: " + e.what());
  } catch (const Error& e) {
    throw Error(e.code(), std::string(e.what()) + " (" + path + "; remeasure with --machine)");
  }
}

void save_machine(const MachinePeaks& peaks, const std::string& path) {
  std::error_code ec;
  const std::filesystem::path dir = std::filesystem::path(path).parent_path();
  if (!dir.empty()) std::filesystem::create_directories(dir, ec);
  std::ofstream f(path);
  if (!f) throw Error(ErrorCode::kInvalidArgument, "cannot write machine file " + path);
  f << peaks.to_json().dump(2) << "\n";
  if (!f) throw Error(ErrorCode::kInvalidArgument, "cannot write machine file " + path);
}

}  // namespace quarks::bench
