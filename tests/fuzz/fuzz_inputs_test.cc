// Replays the committed fuzz inputs (seed corpora and the regression input of every fixed finding,
// tests/fuzz/corpus/<target>/ and tests/fuzz/regressions/<target>/) through the libFuzzer targets'
// bodies in every build: g++ release, ASan+UBSan and TSan, without clang or libFuzzer. A body may only
// succeed or throw quarks::Error (which it catches): anything else escaping fails the test; a crash
// or UB fails it under the sanitizers.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <iterator>
#include <string>
#include <vector>

#include "fuzz/fuzz_bodies.hpp"

namespace fs = std::filesystem;

namespace quarks::fuzz {
namespace {

using Body = std::function<void(std::span<const std::byte>, FuzzStats*)>;

std::vector<fs::path> files_in(const fs::path& dir) {
  std::vector<fs::path> out;
  if (!fs::exists(dir)) return out;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.is_regular_file()) out.push_back(e.path());
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<std::byte> read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  const std::string s((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<std::byte> b(s.size());
  std::memcpy(b.data(), s.data(), s.size());
  return b;
}

// Runs `body` on every file of `folder` under corpus/ or regressions/; returns what the inputs reached.
FuzzStats replay(const std::string& folder, const Body& body) {
  FuzzStats stats;
  const auto files = files_in(fs::path(QUARKS_FUZZ_DIR) / folder);
  for (const fs::path& p : files) {
    const auto bytes = read_file(p);
    try {
      body(bytes, &stats);
    } catch (const std::exception& e) {
      ADD_FAILURE() << p << ": " << typeid(e).name() << ": " << e.what();
    }
  }
  EXPECT_EQ(stats.cases, static_cast<long>(files.size()));
  std::cout << "[ fuzz ] " << folder << ": " << stats.cases << " inputs, " << stats.loaded << " loaded, "
            << stats.compiled << " compiled, " << stats.ran << " ran\n";
  return stats;
}

const Body kOnnx = [](std::span<const std::byte> b, FuzzStats* s) { fuzz_onnx_model(b, s); };
const Body kNpy = [](std::span<const std::byte> b, FuzzStats* s) { fuzz_npy_file(b, s); };
const Body kGraph = [](std::span<const std::byte> b, FuzzStats* s) { fuzz_graph_build(b, s); };
const Body kSafetensors = [](std::span<const std::byte> b, FuzzStats* s) { fuzz_safetensors_bytes(b, s); };
const Body kHfConfig = [](std::span<const std::byte> b, FuzzStats* s) { fuzz_hf_config_text(b, s); };

// The seed corpora must reach the deep stages (compile and run), or fuzzing starts from the surface.
TEST(FuzzInputs, OnnxLoaderCorpusLoadsCompilesAndRuns) {
  const FuzzStats s = replay("corpus/onnx_loader", kOnnx);
  EXPECT_GE(s.cases, 8);
  EXPECT_GE(s.ran, s.cases / 2);
}

TEST(FuzzInputs, NpyReaderCorpusParses) {
  const FuzzStats s = replay("corpus/npy_reader", kNpy);
  EXPECT_GE(s.cases, 8);
  EXPECT_GE(s.loaded, s.cases / 2);
}

TEST(FuzzInputs, GraphBuildCorpusCompilesAndRuns) {
  const FuzzStats s = replay("corpus/graph_build", kGraph);
  EXPECT_GE(s.cases, 4);
  EXPECT_GE(s.ran, 2);
}

TEST(FuzzInputs, SafetensorsCorpusParsesAndConverts) {
  const FuzzStats s = replay("corpus/safetensors", kSafetensors);
  EXPECT_GE(s.cases, 6);
  EXPECT_GE(s.compiled, s.cases / 2);
}

TEST(FuzzInputs, HfConfigCorpusParses) {
  const FuzzStats s = replay("corpus/hf_config", kHfConfig);
  EXPECT_GE(s.cases, 14);
  EXPECT_GE(s.loaded, 7);  // the seven fixtures' configs
}

// Each input that once crashed a target or let another exception escape.
TEST(FuzzInputs, OnnxLoaderRegressions) { replay("regressions/onnx_loader", kOnnx); }
TEST(FuzzInputs, NpyReaderRegressions) { replay("regressions/npy_reader", kNpy); }
TEST(FuzzInputs, GraphBuildRegressions) { replay("regressions/graph_build", kGraph); }
TEST(FuzzInputs, SafetensorsRegressions) { replay("regressions/safetensors", kSafetensors); }
TEST(FuzzInputs, HfConfigRegressions) { replay("regressions/hf_config", kHfConfig); }

// Bytes that are no program at all still give a graph or a quarks::Error.
TEST(FuzzInputs, GraphBuildOnEdgeBytes) {
  FuzzStats s;
  for (const std::vector<std::byte>& b : {std::vector<std::byte>{}, std::vector<std::byte>(64, std::byte{0}),
                                          std::vector<std::byte>(64, std::byte{0xff})}) {
    fuzz_graph_build(b, &s);
  }
  EXPECT_EQ(s.cases, 3);
}

}  // namespace
}  // namespace quarks::fuzz
