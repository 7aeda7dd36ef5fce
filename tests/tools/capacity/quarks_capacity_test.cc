// quarks-capacity spawned: the counts it prints (against OEIS A000609 and the library), the JSON keys,
// and the exit status and one-line message of every kind of failure.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "tools/capacity/counters.hpp"
#include "tools/tool_test.hpp"

namespace fs = std::filesystem;

namespace {

using quarks::test::read_text;
using quarks::test::shell_quote;
using quarks::test::ToolResult;

class QuarksCapacity : public quarks::test::ToolTest {
 protected:
  ToolResult run(const std::vector<std::string>& args) const { return run_tool(QUARKS_CAPACITY_EXE, args); }

  nlohmann::json run_json(std::vector<std::string> args) const {
    args.emplace_back("--format");
    args.emplace_back("json");
    const ToolResult r = run(args);
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(r.err, "");  // no progress bar: stderr is not a terminal
    try {
      return nlohmann::json::parse(r.out);
    } catch (const std::exception& e) {
      ADD_FAILURE() << e.what() << "\n" << r.out;
      return {};
    }
  }
};

TEST_F(QuarksCapacity, CountThresholdJson) {
  const nlohmann::json j = run_json({"count", "threshold", "--n", "5"});
  EXPECT_EQ(j.at("block"), "threshold");
  EXPECT_EQ(j.at("n"), 5);
  EXPECT_EQ(j.at("count").get<std::uint64_t>(), 94572u);  // OEIS A000609
  EXPECT_NEAR(j.at("log2").get<double>(), 16.5291, 1e-4);
  EXPECT_EQ(j.at("theory_log2").get<double>(), 25.0);
  for (const char* key : {"seconds", "classes", "lp_solves", "certificates_checked", "log2_over_n2"})
    EXPECT_TRUE(j.contains(key)) << key;
}

TEST_F(QuarksCapacity, CountOtherBlocksAgreeWithTheLibrary) {
  nlohmann::json j = run_json({"count", "polynomial-threshold", "--n", "3", "--degree", "2"});
  EXPECT_EQ(j.at("degree"), 2);
  EXPECT_EQ(j.at("count").get<std::uint64_t>(), quarks::capacity::count_polynomial_threshold(3, 2).count);
  j = run_json({"count", "output-gating", "--n", "3", "--gate-output", "01"});
  EXPECT_EQ(j.at("gate_output"), "01");
  EXPECT_EQ(j.at("count").get<std::uint64_t>(),
            quarks::capacity::count_output_gating(3, quarks::capacity::GateOutput::k01).count);
  j = run_json({"count", "multiplexing", "--n", "4"});
  EXPECT_EQ(j.at("count").get<std::uint64_t>(), 104u * 104u);  // T(3)^2
  j = run_json({"count", "synaptic-gating", "--n", "2", "--gates", "per-synapse"});
  EXPECT_EQ(j.at("gates"), "per-synapse");
  EXPECT_EQ(j.at("count").get<std::uint64_t>(),
            quarks::capacity::count_synaptic_gating(2, quarks::capacity::SynapticGates::kPerSynapse).count);
  j = run_json({"count", "output-gating", "--n", "2"});
  EXPECT_EQ(j.at("gate_output"), "pm1");
  EXPECT_EQ(j.at("count").get<std::uint64_t>(),
            quarks::capacity::count_output_gating(2, quarks::capacity::GateOutput::kPm1).count);
}

TEST_F(QuarksCapacity, TablePrintsEveryBlockPerN) {
  const ToolResult r = run({"table", "--max-n", "2"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("log2/n^2"), std::string::npos) << r.out;
  // The threshold row for n = 2: block, n, count (A000609), log2.
  std::istringstream lines(r.out);
  bool found = false;
  for (std::string line; std::getline(lines, line);) {
    std::istringstream words(line);
    std::string block, n, count, log2;
    words >> block >> n >> count >> log2;
    if (block == "threshold" && n == "2") {
      found = true;
      EXPECT_EQ(count, "14");
      EXPECT_EQ(log2, "3.807");
    }
  }
  EXPECT_TRUE(found) << r.out;
  const nlohmann::json j = run_json({"table", "--max-n", "2"});
  ASSERT_EQ(j.at("rows").size(), 14u);  // 7 block variants x n = 1, 2
  EXPECT_EQ(j.at("rows")[7].at("block"), "threshold");
  EXPECT_EQ(j.at("rows")[7].at("count"), 14);
  EXPECT_EQ(j.at("rows")[13].at("gates"), "per-synapse");
  EXPECT_TRUE(j.at("rows")[13].at("theory_log2").is_null());
}

TEST_F(QuarksCapacity, PlotWritesAnSvgChartWithEveryVariant) {
  const fs::path svg = tmp_ / "capacity.svg";
  const ToolResult r = run({"table", "--max-n", "2", "--plot", svg.string()});
  ASSERT_EQ(r.status, 0) << r.err;
  const std::string text = read_text(svg);
  EXPECT_EQ(text.rfind("<svg ", 0), 0u);
  EXPECT_NE(text.find("</svg>"), std::string::npos);
  std::size_t polylines = 0;
  for (std::size_t at = text.find("<polyline"); at != std::string::npos; at = text.find("<polyline", at + 1))
    ++polylines;
  EXPECT_EQ(polylines, 7u + 3u);  // 7 block variants and 3 theory curves
  for (const char* label : {"output-gating (01)", "synaptic-gating (per-synapse)", "theory 2n^2 (output gating)"})
    EXPECT_NE(text.find(label), std::string::npos) << label;
  const ToolResult png = run({"table", "--max-n", "2", "--plot", (tmp_ / "capacity.png").string()});
  EXPECT_EQ(png.status, 2);
  EXPECT_NE(png.err.find("FILE must end in .svg"), std::string::npos) << png.err;
  const ToolResult unwritable = run({"table", "--max-n", "1", "--plot", (tmp_ / "missing" / "c.svg").string()});
  EXPECT_EQ(unwritable.status, 1);
  EXPECT_EQ(unwritable.err.rfind("quarks-capacity: error: cannot write the plot", 0), 0u) << unwritable.err;
}

TEST_F(QuarksCapacity, CircuitsRunOnTheEngineAndGatingIsShallower) {
  const nlohmann::json j = run_json({"circuits", "--n", "5", "--segments", "8"});
  ASSERT_EQ(j.at("circuits").size(), 8u);  // 4 circuits x (standard, gating)
  std::map<std::string, nlohmann::json> by;
  for (const auto& c : j.at("circuits")) {
    EXPECT_TRUE(c.at("ok").get<bool>()) << c.dump();
    EXPECT_GT(c.at("points").get<int>(), 0);
    by[c.at("circuit").get<std::string>() + "/" + c.at("model").get<std::string>()] = c;
  }
  // Every Boolean input is checked: 4 for XOR, 2^5 for parity of 5; Boolean circuits are exact.
  EXPECT_EQ(by.at("xor/standard").at("points"), 4);
  EXPECT_EQ(by.at("parity/gating").at("points"), 32);
  EXPECT_EQ(by.at("parity/standard").at("max_error"), 0.0);
  EXPECT_EQ(by.at("xor/gating").at("depth"), 1);
  EXPECT_EQ(by.at("xor/standard").at("depth"), 2);
  EXPECT_EQ(by.at("parity/standard").at("units"), 6);              // 5 hidden + output
  EXPECT_EQ(by.at("parity/gating").at("depth"), 3);                // ceil(log2 5) levels of 2-way gates
  EXPECT_EQ(by.at("product of two reals/gating").at("units"), 1);  // exact in one step
  EXPECT_LT(by.at("product of two reals/gating").at("max_error").get<double>(), 1e-5);
  // The ReLU product errs (8 pieces per square on [-2, 2]: h = 0.5, bound h^2/8), within its bound.
  const double relu_error = by.at("product of two reals/standard").at("max_error").get<double>();
  EXPECT_GT(relu_error, 1e-3);
  EXPECT_LE(relu_error, 0.5 * 0.5 / 8 + 1e-5);
  EXPECT_EQ(by.at("product of two reals/standard").at("units"), 2 * 8 + 1);
}

TEST_F(QuarksCapacity, UsageErrorsExitWithTwo) {
  ToolResult r = run({"count", "threshold", "--n", "9"});
  EXPECT_EQ(r.status, 2);
  EXPECT_EQ(r.err,
            "quarks-capacity: error: threshold: n = 9 is beyond the exact range of this block (n <= 8) "
            "(see quarks-capacity --help)\n");
  r = run({"count", "output-gating", "--n", "6"});
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.err.find("output-gating: n = 6 is beyond the exact range of this block (n <= 5)"), std::string::npos);
  r = run({"count", "nope", "--n", "2"});
  EXPECT_EQ(r.status, 2);
  EXPECT_EQ(r.err.rfind("quarks-capacity: error: ", 0), 0u) << r.err;
  r = run({"count", "threshold", "--n", "2", "--degree", "2"});
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.err.find("--degree applies only to polynomial-threshold"), std::string::npos);
  r = run({"count", "synaptic-gating", "--n", "4", "--gates", "per-synapse"});
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.err.find("synaptic-gating --gates per-synapse: n = 4 is beyond the exact range of this block (n <= 3)"),
            std::string::npos)
      << r.err;
  r = run({"count", "multiplexing", "--n", "0"});
  EXPECT_EQ(r.status, 2);
  r = run({"count", "threshold", "--n", "2", "--gates", "shared"});
  EXPECT_EQ(r.status, 2);
  r = run({});
  EXPECT_EQ(r.status, 2);
  r = run({"count", "threshold"});
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.err.find("--n"), std::string::npos);
}

TEST_F(QuarksCapacity, HelpDefinesTheBlocks) {
  const ToolResult r = run({"--help"});
  EXPECT_EQ(r.status, 0);
  for (const char* text : {"sign(w.x + b)", "degree <= --degree", "product f(x) g(x)", "AND of their 0/1 outputs",
                           "L(1 + x_1)", "sign(A(x) (w.x) + b)", "sign(sum_j w_j A_j(x) x_j + b)"})
    EXPECT_NE(r.out.find(text), std::string::npos) << text;
}

}  // namespace
