// ONNX's own node tests (Debian's libonnx-testdata: data/node/test_*/model.onnx with input_N.pb and
// output_N.pb) run through quarks, with ONNX's tolerance (rtol 1e-3, atol 1e-7).
//
// A test is instantiated when every op in its model is one quarks imports (onnx_supported_ops()).
// Such a test may still be skipped, with the reason printed, when the model uses something quarks
// does not run (an input dtype such as uint8 or double, an attribute value it rejects): import then
// fails with ErrorCode::kUnsupported or kTypeMismatch, and that message is the skip reason. Any
// other failure — a wrong number, a crash, a different error — fails the test.
//
// Inputs that a model uses as shapes, indices or parameters (Reshape's shape, Slice's starts, Clip's
// bounds, LayerNormalization's scale, ...) are graph inputs in these tests; quarks plans with static
// shapes and prepacked parameters, so when import says such an input must be a constant, the test
// binds that input as a constant (OnnxImportOptions::constant_inputs) and says so in its output.
#include <gtest/gtest.h>
#include <onnx/onnx_pb.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <set>

#include "onnx/onnx_test_util.hpp"
#include "quarks/onnx.hpp"
#include "quarks/quarks.hpp"

namespace fs = std::filesystem;

namespace quarks {
namespace {

const fs::path kNodeTests = QUARKS_ONNX_NODE_TESTS;

bool model_ops_supported(const fs::path& model_path) {
  static const std::set<std::string> supported = [] {
    const auto v = onnx_supported_ops();
    return std::set<std::string>(v.begin(), v.end());
  }();
  std::ifstream in(model_path, std::ios::binary);
  onnx::ModelProto m;
  if (!m.ParseFromIstream(&in)) return false;
  for (const auto& n : m.graph().node()) {
    const std::string d = n.domain() == "ai.onnx" ? "" : n.domain();
    if (!supported.count(d.empty() ? n.op_type() : d + ":" + n.op_type())) return false;
  }
  return m.graph().node_size() > 0;
}

std::vector<std::string> supported_tests() {
  std::vector<std::string> names;
  if (!fs::exists(kNodeTests)) return names;
  for (const auto& e : fs::directory_iterator(kNodeTests)) {
    if (model_ops_supported(e.path() / "model.onnx")) names.push_back(e.path().filename().string());
  }
  std::sort(names.begin(), names.end());
  return names;
}

std::vector<Tensor> read_tensors(const fs::path& dir, const std::string& prefix) {
  std::vector<Tensor> out;
  for (int i = 0; fs::exists(dir / (prefix + std::to_string(i) + ".pb")); ++i) {
    out.push_back(load_onnx_tensor(dir / (prefix + std::to_string(i) + ".pb")));
  }
  return out;
}

struct ModelIO {
  std::vector<std::string> inputs, outputs;  // graph inputs without initializers, graph outputs
  std::string non_tensor;                    // a graph input or output that is not a tensor
};

ModelIO model_io(const fs::path& model_path) {
  std::ifstream in(model_path, std::ios::binary);
  onnx::ModelProto m;
  m.ParseFromIstream(&in);
  std::set<std::string> inits;
  for (const auto& t : m.graph().initializer()) inits.insert(t.name());
  ModelIO io;
  for (const auto& v : m.graph().input()) {
    if (!inits.count(v.name())) io.inputs.push_back(v.name());
    if (!v.type().has_tensor_type()) io.non_tensor = v.name();
  }
  for (const auto& v : m.graph().output()) {
    io.outputs.push_back(v.name());
    if (!v.type().has_tensor_type()) io.non_tensor = v.name();
  }
  return io;
}

class OnnxNodeTest : public ::testing::TestWithParam<std::string> {};

TEST_P(OnnxNodeTest, MatchesOnnxOutputs) {
  const fs::path dir = kNodeTests / GetParam();
  const ModelIO io = model_io(dir / "model.onnx");
  if (!io.non_tensor.empty())
    GTEST_SKIP() << "graph value '" << io.non_tensor << "' is not a tensor (sequence/optional)";
  for (const auto& set : fs::directory_iterator(dir)) {
    if (!set.is_directory()) continue;
    std::vector<Tensor> inputs, expected;
    try {
      inputs = read_tensors(set.path(), "input_");
      expected = read_tensors(set.path(), "output_");
    } catch (const Error& e) {
      if (e.code() == ErrorCode::kUnsupported) GTEST_SKIP() << e.what();
      throw;
    }
    ASSERT_EQ(inputs.size(), io.inputs.size()) << set.path();
    ASSERT_EQ(expected.size(), io.outputs.size()) << set.path();

    OnnxImportOptions opt;
    for (std::size_t i = 0; i < inputs.size(); ++i) opt.input_shapes[io.inputs[i]] = inputs[i].shape();
    // Inputs that import needs as constants ("input 1 'shape' must be a constant") are bound as
    // constants one by one, as a service with static shapes would do.
    Graph graph;
    try {
      for (std::size_t attempt = 0;; ++attempt) {
        try {
          graph = load_onnx(dir / "model.onnx", opt);
          break;
        } catch (const Error& e) {
          const std::string what = e.what();
          const auto end = what.find("' must be a constant");
          const auto begin = end == std::string::npos ? end : what.rfind('\'', end - 1);
          if (begin == std::string::npos || attempt > inputs.size()) throw;
          const std::string name = what.substr(begin + 1, end - begin - 1);
          const auto it = std::find(io.inputs.begin(), io.inputs.end(), name);
          if (it == io.inputs.end()) throw;
          const std::size_t i = static_cast<std::size_t>(it - io.inputs.begin());
          opt.input_shapes.erase(name);
          opt.constant_inputs[name] = inputs[i];
          std::cout << "note: input '" << name << "' bound as a constant\n";
        }
      }
    } catch (const Error& e) {
      if (e.code() == ErrorCode::kUnsupported || e.code() == ErrorCode::kTypeMismatch) GTEST_SKIP() << e.what();
      throw;
    }
    std::vector<NamedInput> named;
    for (std::size_t i = 0; i < inputs.size(); ++i) {
      if (!opt.constant_inputs.count(io.inputs[i])) named.push_back({io.inputs[i], inputs[i]});
    }
    Session session(compile(graph));
    const std::map<std::string, Tensor> out = session.run(named);
    for (std::size_t o = 0; o < io.outputs.size(); ++o) {
      const Tensor& a = out.at(io.outputs[o]);
      const testing::Mismatch m = testing::all_close(a, expected[o], 1e-3, 1e-7);
      EXPECT_TRUE(m.ok) << set.path().filename() << " output '" << io.outputs[o] << "': " << m.message;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Node, OnnxNodeTest, ::testing::ValuesIn(supported_tests()),
                         [](const ::testing::TestParamInfo<std::string>& p) { return p.param; });

}  // namespace
}  // namespace quarks
