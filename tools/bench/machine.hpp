// quarks-bench --machine: this machine's measured peaks (f32 and bf16 dense GFLOP/s, memory and L2
// bandwidth, at 1 thread and at all threads), cached in a JSON file, and the roofline limit of a step.
#pragma once

#include <optional>
#include <string>

#include <nlohmann/json.hpp>

namespace quarks::bench {

struct MachinePeaks {
  std::string cpu;                                     ///< /proc/cpuinfo model name
  int threads = 1;                                     ///< hardware threads ("all")
  std::size_t l2_bytes = 0;                            ///< per-core L2
  std::size_t l3_bytes = 0;                            ///< L3 (0 if none reported)
  double f32_gflops_1 = 0, f32_gflops_n = 0;           ///< the engine's dense on a square product, 1 / all threads
  std::optional<double> bf16_gflops_1, bf16_gflops_n;  ///< empty: bf16 unsupported here
  double mem_gbps_1 = 0, mem_gbps_n = 0;               ///< streaming triad on >= 4x L3
  double l2_gbps_1 = 0, l2_gbps_n = 0;                 ///< triad on a buffer per thread that fits L2
  std::string measured_at;                             ///< UTC, ISO 8601

  /// Peak GFLOP/s at `threads` threads: the 1-thread peak times threads, capped by the all-threads one.
  double peak_gflops(int threads, bool bf16) const;
  /// Bandwidth (GB/s) a step moving `bytes` sees at `threads`: L2's if bytes fit in the threads' L2,
  /// else memory's (data that fits L3 but not L2 is taken at memory bandwidth: a conservative limit).
  double bandwidth_gbps(double bytes, int threads) const;
  /// Fastest possible seconds for a step: max(flops / peak, bytes / bandwidth) (the roofline), 0 if
  /// both are 0.
  double limit_seconds(double flops, double bytes, int threads, bool bf16) const;
  /// The roofline of work of `flops` and `bytes` at `threads`: the time at peak compute, the time at the
  /// bandwidth those bytes see, and which of the two binds.
  struct Roofline {
    double compute_seconds = 0, memory_seconds = 0;
    double seconds() const { return compute_seconds > memory_seconds ? compute_seconds : memory_seconds; }
    /// "compute" or "memory" (the larger time), "" when neither is known.
    const char* limit() const { return seconds() <= 0 ? "" : compute_seconds >= memory_seconds ? "compute" : "memory"; }
  };
  Roofline roofline(double flops, double bytes, int threads, bool bf16) const;

  nlohmann::ordered_json to_json() const;
  /// Throws quarks::Error(kInvalidArgument) naming the missing or malformed field.
  static MachinePeaks from_json(const nlohmann::json& j);
};

/// Measures this machine (a few seconds; prints nothing). `dense_n` is the side of the square product.
MachinePeaks measure_machine(int dense_n = 1024);

/// ~/.cache/quarks/machine.json ($XDG_CACHE_HOME honoured).
std::string default_machine_file();
/// The cached peaks, or nullopt if the file does not exist; throws quarks::Error if it is unreadable.
std::optional<MachinePeaks> load_machine(const std::string& path);
/// Writes the file (creating its directory); throws quarks::Error on failure.
void save_machine(const MachinePeaks& peaks, const std::string& path);

}  // namespace quarks::bench
