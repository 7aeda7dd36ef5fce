// quarks-capacity: exact counts of the Boolean functions {-1,1}^n -> {-1,1} that attention-quark
// building blocks realise (capacity = log2 of the count). See tools/README.md.
#include <tbb/global_control.h>
#include <unistd.h>

#include <fmt/core.h>
#include <CLI/CLI.hpp>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>
#include <string>
#include <tuple>
#include <vector>

#include "quarks/error.hpp"
#include "tools/capacity/counters.hpp"
#include "tools/common/cli.hpp"
#include "tools/quarks-capacity/circuits.hpp"
#include "tools/quarks-capacity/svg_plot.hpp"

namespace {

using quarks::capacity::CountResult;
using quarks::capacity::GateOutput;
using Clock = std::chrono::steady_clock;

constexpr int kExitRuntime = 1;
constexpr int kExitUsage = 2;

constexpr const char* kBlocks =
    R"(Blocks (a function counts once, whatever weights realise it; functions are +-1-valued; a count
includes the functions that ignore some inputs):
  threshold             sign(w.x + b), w in R^n, b in R (never 0 on the cube). OEIS A000609. n <= 8 (8: minutes).
  polynomial-threshold  sign(P(x)), P a real polynomial of degree <= --degree in x_1..x_n (multilinear,
                        as x_i^2 = 1). n <= 4.
  output-gating         two threshold gates f = sign(w.x + b), g = sign(v.x + c) on the same inputs;
                        --gate-output pm1: the product f(x) g(x) of their +-1 outputs (default);
                        --gate-output 01: the AND of their 0/1 outputs (1 = +1), reported as the
                        +-1 function that is +1 where both gates are. n <= 5 (about 10 s).
  multiplexing          the lower-bound construction for output gating (additive activation attention):
                        sign(w.x' + b + L(1 + x_1)) * sign(v.x' + c + L(1 - x_1)), x' = (x_2..x_n),
                        L > |w.x' + b|, |v.x' + c| on the cube: any threshold function of x' where
                        x_1 = +1 and any other where x_1 = -1, T(n-1)^2 functions. 1 <= n <= 5.
  synaptic-gating       a threshold unit whose synapses are multiplied by threshold gates
                        A = sign(u.x + c) on the same inputs (the bias is not gated);
                        --gates shared: sign(A(x) (w.x) + b), one gate for all synapses (n <= 5);
                        --gates per-synapse: sign(sum_j w_j A_j(x) x_j + b), a gate per synapse (n <= 3).
Every counted function has a certificate (integer weights; for the gated blocks the gates' and the
unit's weights) checked exactly at all 2^n points.)";

constexpr const char* kFooter = R"(Exit status: 0 ok; 1 a runtime problem (one line "quarks-capacity: error: ..."
on stderr); 2 a usage error (e.g. n beyond a block's exact range).)";

int usage_error(const std::string& message) {
  std::fprintf(stderr, "quarks-capacity: error: %s (see quarks-capacity --help)\n", message.c_str());
  return kExitUsage;
}

int max_n(const std::string& block, const std::string& gates) {
  namespace c = quarks::capacity;
  if (block == "threshold") return c::kThresholdMaxN;
  if (block == "polynomial-threshold") return c::kPolynomialThresholdMaxN;
  if (block == "multiplexing") return c::kMultiplexingMaxN;
  if (block == "synaptic-gating") return gates == "shared" ? c::kSynapticSharedMaxN : c::kSynapticPerSynapseMaxN;
  return c::kOutputGatingMaxN;
}

// Leading term of the capacity: threshold n^2 (Zuev), degree-d PTF n^(d+1)/d! (Baldi-Vershynin), output
// gating 2n^2, multiplexing 2(n-1)^2 (two threshold functions of n-1 inputs); none known for synaptic gating.
std::optional<double> theory(const std::string& block, int n, int degree) {
  const double nn = n;
  if (block == "threshold") return nn * nn;
  if (block == "output-gating") return 2 * nn * nn;
  if (block == "multiplexing") return 2 * (nn - 1) * (nn - 1);
  if (block == "polynomial-threshold") return std::pow(nn, degree + 1) / std::tgamma(degree + 1.0);
  return std::nullopt;
}

// A progress bar on stderr for runs over two seconds, only when stderr is a terminal.
class ProgressBar {
 public:
  explicit ProgressBar(std::string what) : what_(std::move(what)), start_(Clock::now()), tty_(isatty(2) != 0) {}
  ~ProgressBar() {
    if (shown_) std::fprintf(stderr, "\r\033[K");
  }
  void operator()(const std::string& stage, std::uint64_t done, std::uint64_t total) {
    if (!tty_ || total == 0) return;
    const auto now = Clock::now();
    if (stage != stage_) {
      stage_ = stage;
      stage_start_ = now;
    }
    const double elapsed = std::chrono::duration<double>(now - start_).count();
    if (elapsed < 2.0 || std::chrono::duration<double>(now - last_).count() < 0.2) return;
    last_ = now;
    shown_ = true;
    const double frac = static_cast<double>(done) / static_cast<double>(total);
    const double stage_elapsed = std::chrono::duration<double>(now - stage_start_).count();
    const double eta = frac > 0 ? stage_elapsed * (1 - frac) / frac : 0;
    const int width = 30, filled = static_cast<int>(frac * width);
    std::fprintf(stderr, "\r\033[K%s %s [%s%s] %3.0f%% ETA %.0fs", what_.c_str(), stage.c_str(),
                 std::string(static_cast<std::size_t>(filled), '=').c_str(),
                 std::string(static_cast<std::size_t>(width - filled), ' ').c_str(), 100 * frac, eta);
    std::fflush(stderr);
  }

 private:
  std::string what_, stage_;
  Clock::time_point start_, stage_start_, last_{};
  bool tty_, shown_ = false;
};

struct Row {
  std::string block;
  int n = 0;
  int degree = 0;
  std::string gate_output, gates;
  CountResult result;
  double seconds = 0;
};

Row run_count(const std::string& block, int n, int degree, const std::string& gate_output, const std::string& gates) {
  Row row{block,
          n,
          block == "polynomial-threshold" ? degree : 0,
          block == "output-gating" ? gate_output : "",
          block == "synaptic-gating" ? gates : "",
          {},
          0};
  ProgressBar bar("quarks-capacity: " + block + " n=" + std::to_string(n));
  const auto start = Clock::now();
  if (block == "threshold") {
    row.result = quarks::capacity::count_threshold(n, std::ref(bar));
  } else if (block == "polynomial-threshold") {
    row.result = quarks::capacity::count_polynomial_threshold(n, degree);
  } else if (block == "multiplexing") {
    row.result = quarks::capacity::count_multiplexing(n);
  } else if (block == "synaptic-gating") {
    row.result = quarks::capacity::count_synaptic_gating(
        n, gates == "shared" ? quarks::capacity::SynapticGates::kShared : quarks::capacity::SynapticGates::kPerSynapse,
        std::ref(bar));
  } else {
    row.result = quarks::capacity::count_output_gating(n, gate_output == "01" ? GateOutput::k01 : GateOutput::kPm1,
                                                       std::ref(bar));
  }
  row.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  return row;
}

nlohmann::json to_json(const Row& r) {
  nlohmann::json j;
  j["block"] = r.block;
  j["n"] = r.n;
  if (r.block == "polynomial-threshold") j["degree"] = r.degree;
  if (r.block == "output-gating") j["gate_output"] = r.gate_output;
  if (r.block == "synaptic-gating") j["gates"] = r.gates;
  j["count"] = r.result.count;
  j["log2"] = quarks::capacity::log2_count(r.result.count);
  j["log2_over_n2"] = r.n == 0 ? 0.0 : quarks::capacity::log2_count(r.result.count) / (r.n * r.n);
  const auto t = theory(r.block, r.n, r.degree);
  j["theory_log2"] = t ? nlohmann::json(*t) : nlohmann::json(nullptr);
  j["seconds"] = r.seconds;
  if (r.result.classes) j["classes"] = r.result.classes;
  j["lp_solves"] = r.result.lp_solves;
  j["certificates_checked"] = r.result.certificates_checked;
  return j;
}

std::string label(const Row& r) {
  if (r.block == "polynomial-threshold") return fmt::format("{} (d={})", r.block, r.degree);
  if (r.block == "output-gating") return fmt::format("{} ({})", r.block, r.gate_output);
  if (r.block == "synaptic-gating") return fmt::format("{} ({})", r.block, r.gates);
  return r.block;
}

void print_table(const std::vector<Row>& rows) {
  fmt::print("{:<32} {:>2} {:>16} {:>9} {:>8} {:>9} {:>9}\n", "block", "n", "count", "log2", "log2/n^2", "theory",
             "seconds");
  for (const Row& r : rows) {
    const double l = quarks::capacity::log2_count(r.result.count);
    const auto t = theory(r.block, r.n, r.degree);
    fmt::print("{:<32} {:>2} {:>16} {:>9.3f} {:>8.3f} {:>9} {:>9.3f}\n", label(r), r.n, r.result.count, l,
               r.n == 0 ? 0.0 : l / (r.n * r.n), t ? fmt::format("{:.2f}", *t) : "-", r.seconds);
  }
}

// The table's rows as an SVG chart of log2(count) against n, with the leading theory terms dashed.
void write_plot(const std::string& path, const std::vector<Row>& rows) {
  std::vector<quarks::capacity::Series> series;
  std::map<std::string, std::size_t> index;
  for (const Row& r : rows) {
    const std::string name = label(r);
    if (!index.count(name)) {
      index[name] = series.size();
      series.push_back({name, {}, false});
    }
    series[index[name]].points.emplace_back(r.n, quarks::capacity::log2_count(r.result.count));
  }
  int n_max = 0;
  for (const Row& r : rows) n_max = std::max(n_max, r.n);
  for (const auto& [name, block, degree] : {std::tuple{"theory n^2 (threshold)", "threshold", 0},
                                            std::tuple{"theory n^3/2 (degree 2)", "polynomial-threshold", 2},
                                            std::tuple{"theory 2n^2 (output gating)", "output-gating", 0}}) {
    quarks::capacity::Series s{name, {}, true};
    for (int n = 0; n <= n_max; ++n) s.points.emplace_back(n, *theory(block, n, degree));
    series.push_back(std::move(s));
  }
  std::ofstream out(path);
  out << quarks::capacity::svg_line_chart("Capacity of attention-quark blocks (exact counts)", "n (inputs)",
                                          "log2(number of Boolean functions)", series);
  if (!out.flush()) throw std::runtime_error("cannot write the plot to '" + path + "'");
}

// Prints the circuits; exit 1 naming the first one whose check failed.
int run_circuits(int n, int segments, const std::string& format) {
  const auto list = quarks::capacity::build_and_check_circuits(n, segments);
  if (format == "json") {
    nlohmann::json all = nlohmann::json::array();
    for (const auto& c : list)
      for (const auto* v : {&c.standard, &c.gating})
        all.push_back({{"circuit", c.name},
                       {"inputs", c.inputs},
                       {"model", v->model},
                       {"depth", v->depth},
                       {"units", v->units},
                       {"parameters", v->parameters},
                       {"nonzero_parameters", v->nonzero},
                       {"points", v->points},
                       {"max_error", v->max_error},
                       {"tolerance", v->tolerance},
                       {"ok", v->ok()}});
    fmt::print("{}\n", nlohmann::json{{"circuits", all}}.dump(2));
  } else {
    fmt::print("{:<22} {:<26} {:<9} {:>5} {:>6} {:>10} {:>8} {:>7} {:>10} {:>10}  check\n", "circuit", "inputs",
               "model", "depth", "units", "parameters", "nonzero", "points", "max error", "tolerance");
    for (const auto& c : list)
      for (const auto* v : {&c.standard, &c.gating})
        fmt::print("{:<22} {:<26} {:<9} {:>5} {:>6} {:>10} {:>8} {:>7} {:>10.3g} {:>10.3g}  {}\n", c.name, c.inputs,
                   v->model, v->depth, v->units, v->parameters, v->nonzero, v->points, v->max_error, v->tolerance,
                   v->ok() ? "ok" : "WRONG");
  }
  for (const auto& c : list)
    for (const auto* v : {&c.standard, &c.gating})
      if (!v->ok()) {
        std::fprintf(stderr, "quarks-capacity: error: circuit '%s' (%s) is wrong: max error %g > %g\n", c.name.c_str(),
                     v->model.c_str(), v->max_error, v->tolerance);
        return kExitRuntime;
      }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "quarks-capacity: exact capacity (log2 of the number of realisable Boolean functions) of "
      "attention-quark building blocks",
      "quarks-capacity"};
  app.footer(std::string(kBlocks) + "\n\n" + kFooter);
  app.require_subcommand(1);
  int threads = 0;
  app.add_option("--threads", threads, "worker threads (default: all cores)")->check(CLI::PositiveNumber);

  std::string block, gate_output = "pm1", gates = "shared", format = "table";
  int n = 0, degree = 2, max_n_arg = 0;
  auto* count = app.add_subcommand("count", "count the functions one block realises on n inputs");
  count->add_option("block", block, "threshold | polynomial-threshold | output-gating | multiplexing | synaptic-gating")
      ->required()
      ->check(CLI::IsMember({"threshold", "polynomial-threshold", "output-gating", "multiplexing", "synaptic-gating"}));
  count->add_option("--n", n, "number of inputs")->required()->check(CLI::NonNegativeNumber);
  count->add_option("--degree", degree, "polynomial-threshold: degree of P (default 2)")->check(CLI::PositiveNumber);
  count->add_option("--gate-output", gate_output, "output-gating: pm1 (product, default) or 01 (AND)")
      ->check(CLI::IsMember({"pm1", "01"}));
  count->add_option("--gates", gates, "synaptic-gating: shared (one gate, default) or per-synapse")
      ->check(CLI::IsMember({"shared", "per-synapse"}));
  count->add_option("--format", format, "table or json")->check(CLI::IsMember({"table", "json"}));

  auto* table = app.add_subcommand("table", "every block for n = 1..N: count, log2, log2/n^2, asymptotic theory");
  table->add_option("--max-n", max_n_arg, "largest n (blocks stop at their own limit)")
      ->required()
      ->check(CLI::Range(1, quarks::capacity::kThresholdMaxN));
  table->add_option("--format", format, "table or json")->check(CLI::IsMember({"table", "json"}));
  std::string plot_path;
  table->add_option("--plot", plot_path, "also write the counts as a chart to FILE.svg (SVG only)")
      ->check([](const std::string& p) {
        return p.size() > 4 && p.compare(p.size() - 4, 4, ".svg") == 0 ? ""
                                                                       : "--plot writes SVG: FILE must end in .svg";
      });

  int circuit_n = 4, segments = 16;
  auto* circuits = app.add_subcommand(
      "circuits", "XOR, parity, product of two reals, dot product as engine graphs: standard model vs output gating");
  circuits->add_option("--n", circuit_n, "parity inputs and dot-product length (default 4)")->check(CLI::Range(1, 12));
  circuits
      ->add_option("--segments", segments,
                   "standard model: linear pieces per square in the ReLU product ((a+b)^2-(a-b)^2)/4 (default 16)")
      ->check(CLI::Range(1, 1024));
  circuits->add_option("--format", format, "table or json")->check(CLI::IsMember({"table", "json"}));

  if (const auto status = quarks::tools::parse_command_line(app, argc, argv, usage_error)) return *status;

  std::optional<tbb::global_control> limit;
  if (threads > 0) limit.emplace(tbb::global_control::max_allowed_parallelism, static_cast<std::size_t>(threads));

  try {
    std::vector<Row> rows;
    if (circuits->parsed()) return run_circuits(circuit_n, segments, format);
    if (count->parsed()) {
      const std::string what = block == "synaptic-gating" ? block + " --gates " + gates : block;
      if (n > max_n(block, gates))
        return usage_error(
            fmt::format("{}: n = {} is beyond the exact range of this block (n <= {})", what, n, max_n(block, gates)));
      if (block == "multiplexing" && n < 1)
        return usage_error("multiplexing: n = 0 has no x_1 to select with (n >= 1)");
      if (block != "polynomial-threshold" && count->count("--degree"))
        return usage_error("--degree applies only to polynomial-threshold");
      if (block != "output-gating" && count->count("--gate-output"))
        return usage_error("--gate-output applies only to output-gating");
      if (block != "synaptic-gating" && count->count("--gates"))
        return usage_error("--gates applies only to synaptic-gating");
      rows.push_back(run_count(block, n, degree, gate_output, gates));
      if (format == "json") {
        fmt::print("{}\n", to_json(rows.front()).dump(2));
        return 0;
      }
    } else {
      for (int k = 1; k <= max_n_arg; ++k) {
        // Every block (degree 2 for the polynomial threshold gate) up to its own exact range.
        const struct {
          const char *block, *gate_output, *gates;
        } variants[] = {{"threshold", "", ""},
                        {"polynomial-threshold", "", ""},
                        {"output-gating", "pm1", ""},
                        {"output-gating", "01", ""},
                        {"multiplexing", "", ""},
                        {"synaptic-gating", "", "shared"},
                        {"synaptic-gating", "", "per-synapse"}};
        for (const auto& v : variants)
          if (k <= max_n(v.block, v.gates)) rows.push_back(run_count(v.block, k, 2, v.gate_output, v.gates));
      }
      if (!plot_path.empty()) write_plot(plot_path, rows);
      if (format == "json") {
        nlohmann::json all = nlohmann::json::array();
        for (const Row& r : rows) all.push_back(to_json(r));
        fmt::print("{}\n", nlohmann::json{{"rows", all}}.dump(2));
        return 0;
      }
    }
    print_table(rows);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "quarks-capacity: error: %s\n", e.what());
    return kExitRuntime;
  }
  return 0;
}
