// Hostile and broken ONNX models: every one must give a quarks::Error with the right code and a
// message naming where the problem is (node, op type, domain and opset; initializer; graph input),
// never a crash, a hang or an absurd allocation.
//
// The models are built here as onnx::ModelProto objects (onnx/onnx_model_builder.hpp), serialized and
// loaded with load_onnx_bytes, or written to a temporary folder and loaded with load_onnx for the
// external-data cases.
#include <gtest/gtest.h>
#include <onnx/onnx_pb.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <random>

#include "onnx/onnx_model_builder.hpp"
#include "quarks/onnx.hpp"
#include "quarks/quarks.hpp"

namespace fs = std::filesystem;

namespace quarks {
namespace {

using onnx::AttributeProto;
using onnx::TensorProto;

// --- building models (tests/onnx/onnx_model_builder.hpp) ----------------------------------------------

using testing::add_initializer_model;
using testing::f32_tensor;
using testing::i64_tensor;
using testing::OnnxModel;
using testing::set_attr_float;
using testing::set_attr_int;
using testing::set_attr_ints;
using testing::set_attr_tensor;

Graph load(const OnnxModel& m, const OnnxImportOptions& options = {}) {
  const std::string b = m.bytes();
  return load_onnx_bytes(std::as_bytes(std::span(b)), options);
}

Graph load_string(const std::string& b, const OnnxImportOptions& options = {}) {
  return load_onnx_bytes(std::as_bytes(std::span(b)), options);
}

std::map<std::string, Tensor> run(const Graph& g, const std::vector<std::pair<std::string, Tensor>>& inputs) {
  CompileOptions copt;
  copt.threads = 1;
  Session s(compile(g, copt));
  std::vector<NamedInput> in;
  for (const auto& [name, t] : inputs) in.push_back({name, t});
  return s.run(in);
}

// The label the importer gives a default-domain node in an opset-17 model.
std::string label(const std::string& name, const std::string& op, int opset = 17) {
  return "node '" + name + "' (" + op + ", domain 'ai.onnx', opset " + std::to_string(opset) + ")";
}

// Runs `f`; success when it throws quarks::Error with `code` and a message holding every fragment.
template <class F>
::testing::AssertionResult throws_error(F&& f, ErrorCode code, const std::vector<std::string>& fragments) {
  try {
    f();
  } catch (const Error& e) {
    const std::string msg = e.what();
    if (e.code() != code) {
      return ::testing::AssertionFailure()
             << "code '" << to_string(e.code()) << "', expected '" << to_string(code) << "': " << msg;
    }
    for (const auto& frag : fragments) {
      if (msg.find(frag) == std::string::npos)
        return ::testing::AssertionFailure() << "message lacks \"" << frag << "\": " << msg;
    }
    return ::testing::AssertionSuccess() << msg;
  } catch (const std::exception& e) {
    return ::testing::AssertionFailure() << "threw a non-quarks exception: " << e.what();
  }
  return ::testing::AssertionFailure() << "did not throw";
}

#define EXPECT_QERROR(stmt, code, ...) EXPECT_TRUE(throws_error([&] { stmt; }, code, {__VA_ARGS__}))

// x [2,3] -> Relu -> y.
OnnxModel relu_model() {
  OnnxModel m;
  m.input("x", std::vector<std::int64_t>{2, 3});
  m.node("Relu", "relu", {"x"}, {"y"});
  m.output("y");
  return m;
}

// --- the baseline: the helpers build models that load and run ---------------------------------------

TEST(OnnxImportErrors, BaselineModelLoadsAndRuns) {
  const Tensor x = Tensor::from_f32(Shape{2, 3}, {-1.5f, 2.0f, -0.0f, 3.25f, -7.0f, 0.5f});
  const auto out = run(load(relu_model()), {{"x", x}});
  ASSERT_EQ(out.at("y").shape(), (Shape{2, 3}));
  for (int i = 0; i < 6; ++i) EXPECT_EQ(out.at("y").f32()[i], std::max(0.0f, x.f32()[i])) << i;
}

TEST(OnnxImportErrors, ExplicitAiOnnxDomainIsTheDefaultDomain) {
  OnnxModel m;
  m.input("x", std::vector<std::int64_t>{2, 3});
  m.node("Relu", "relu", {"x"}, {"y"}, "ai.onnx");
  m.output("y");
  EXPECT_NO_THROW(load(m));
}

// --- ops, domains, opsets ----------------------------------------------------------------------------

TEST(OnnxImportErrors, UnsupportedOpListsSupportedOps) {
  OnnxModel m;
  m.input("x", std::vector<std::int64_t>{2, 3});
  m.node("FooBar", "weird", {"x"}, {"y"});
  m.output("y");
  EXPECT_QERROR(load(m), ErrorCode::kUnsupported, label("weird", "FooBar"),
                "op 'FooBar' is not supported in domain 'ai.onnx'", "supported: Add", "Softmax", "MatMul");
}

TEST(OnnxImportErrors, UnnamedNodeIsNamedByOpAndIndex) {
  OnnxModel m;
  m.input("x", std::vector<std::int64_t>{2, 3});
  m.node("Relu", "", {"x"}, {"h"});
  m.node("FooBar", "", {"h"}, {"y"});
  m.output("y");
  EXPECT_QERROR(load(m), ErrorCode::kUnsupported, label("FooBar_1", "FooBar"));
}

TEST(OnnxImportErrors, UnknownDomain) {
  OnnxModel m;
  m.input("x", std::vector<std::int64_t>{2, 3});
  m.node("Custom", "c", {"x"}, {"y"}, "com.example");
  m.output("y");
  EXPECT_QERROR(load(m), ErrorCode::kUnsupported, "node 'c' (Custom, domain 'com.example')",
                "the model does not import domain 'com.example'");
  // Imported, but quarks has no ops in it.
  m.set_opset("com.example", 3);
  EXPECT_QERROR(load(m), ErrorCode::kUnsupported, "node 'c' (Custom, domain 'com.example', opset 3)",
                "op 'Custom' is not supported in domain 'com.example'");
}

TEST(OnnxImportErrors, UnknownOpOfQuarksDomainListsItsOps) {
  OnnxModel m;
  m.set_opset("ai.quarks", 1);
  m.input("x", std::vector<std::int64_t>{2, 3});
  m.node("Frobnicate", "f", {"x"}, {"y"}, "ai.quarks");
  m.output("y");
  EXPECT_QERROR(load(m), ErrorCode::kUnsupported, "node 'f' (Frobnicate, domain 'ai.quarks', opset 1)", "Multiplex",
                "OutputGate", "SynapticGate");
}

TEST(OnnxImportErrors, OpsetsOutsideTheSupportedRange) {
  for (int opset : {12, 21}) {
    OnnxModel m(opset);
    m.input("x", std::vector<std::int64_t>{2, 3});
    m.node("Relu", "relu", {"x"}, {"y"});
    m.output("y");
    EXPECT_QERROR(load(m), ErrorCode::kUnsupported, "opset " + std::to_string(opset), "13 to 20");
  }
  OnnxModel q;
  q.set_opset("ai.quarks", 2);
  q.input("x", std::vector<std::int64_t>{2, 3});
  q.node("Relu", "relu", {"x"}, {"y"});
  q.output("y");
  EXPECT_QERROR(load(q), ErrorCode::kUnsupported, "version 2 of the ai.quarks domain");
}

TEST(OnnxImportErrors, NoDefaultDomainOpset) {
  OnnxModel m;
  m.proto().clear_opset_import();
  m.set_opset("ai.quarks", 1);
  m.input("x", std::vector<std::int64_t>{2, 3});
  m.node("Relu", "relu", {"x"}, {"y"});
  m.output("y");
  EXPECT_QERROR(load(m), ErrorCode::kInvalidArgument, "does not import the default ONNX domain");
}

// --- attributes ------------------------------------------------------------------------------------

TEST(OnnxImportErrors, AttributeOfTheWrongType) {
  OnnxModel m;
  m.input("x", std::vector<std::int64_t>{2, 3});
  set_attr_float(m.node("Softmax", "sm", {"x"}, {"y"}), "axis", 1.0f);
  m.output("y");
  EXPECT_QERROR(load(m), ErrorCode::kInvalidArgument, label("sm", "Softmax"),
                "attribute 'axis' must be int, got float");

  OnnxModel g;
  g.input("x", std::vector<std::int64_t>{2, 3});
  set_attr_int(g.node("Gelu", "gelu", {"x"}, {"y"}), "approximate", 1);
  g.output("y");
  g.set_opset("", 20);
  EXPECT_QERROR(load(g), ErrorCode::kInvalidArgument, label("gelu", "Gelu", 20),
                "attribute 'approximate' must be string, got int");

  OnnxModel l;
  l.input("x", std::vector<std::int64_t>{2, 3});
  set_attr_ints(l.node("LeakyRelu", "lrelu", {"x"}, {"y"}), "alpha", {1, 2});
  l.output("y");
  EXPECT_QERROR(load(l), ErrorCode::kInvalidArgument, label("lrelu", "LeakyRelu"),
                "attribute 'alpha' must be float, got ints");
}

TEST(OnnxImportErrors, RequiredAttributeMissing) {
  OnnxModel m;
  m.input("x", std::vector<std::int64_t>{2, 3});
  m.node("Cast", "cast", {"x"}, {"y"});
  m.output("y");
  EXPECT_QERROR(load(m), ErrorCode::kInvalidArgument, label("cast", "Cast"), "attribute 'to' is required");
}

TEST(OnnxImportErrors, CastToUnsupportedType) {
  OnnxModel m;
  m.input("x", std::vector<std::int64_t>{2, 3});
  set_attr_int(m.node("Cast", "cast", {"x"}, {"y"}), "to", TensorProto::STRING);
  m.output("y");
  EXPECT_QERROR(load(m), ErrorCode::kUnsupported, label("cast", "Cast"), "cast to STRING");
}

TEST(OnnxImportErrors, MissingRequiredInput) {
  OnnxModel m;
  m.input("x", std::vector<std::int64_t>{2, 3});
  m.node("Relu", "relu", {""}, {"y"});
  m.output("y");
  EXPECT_QERROR(load(m), ErrorCode::kInvalidArgument, label("relu", "Relu"), "input 0 is required");
}

TEST(OnnxImportErrors, MoreOutputsThanTheOpHas) {
  OnnxModel m;
  m.input("x", std::vector<std::int64_t>{2, 3});
  m.node("Relu", "relu", {"x"}, {"y", "extra"});
  m.output("y");
  EXPECT_QERROR(load(m), ErrorCode::kInvalidArgument, label("relu", "Relu"),
                "output 1 'extra' is not produced: the op has fewer outputs");
  // Folded by running the op on constants: the same.
  OnnxModel c;
  c.initializer(f32_tensor("w", {2}, {1.0f, 2.0f}));
  c.node("Exp", "exp", {"w"}, {"y", "extra"});
  c.output("y");
  EXPECT_QERROR(load(c), ErrorCode::kInvalidArgument, label("exp", "Exp"), "output 1 'extra' is not produced");
}

// --- shapes ----------------------------------------------------------------------------------------

TEST(OnnxImportErrors, MatMulShapeMismatchNamesTheNode) {
  OnnxModel m;
  m.input("a", std::vector<std::int64_t>{2, 3});
  m.input("b", std::vector<std::int64_t>{4, 5});
  m.node("MatMul", "mm", {"a", "b"}, {"y"});
  m.output("y");
  EXPECT_QERROR(load(m), ErrorCode::kShapeMismatch, label("mm", "MatMul"), "[2,3]", "[4,5]");

  // A constant right operand maps to a dense op: same check, same context.
  OnnxModel w;
  w.input("a", std::vector<std::int64_t>{2, 3});
  w.initializer(f32_tensor("w", {4, 5}, std::vector<float>(20, 1.0f)));
  w.node("MatMul", "mm", {"a", "w"}, {"y"});
  w.output("y");
  EXPECT_QERROR(load(w), ErrorCode::kShapeMismatch, label("mm", "MatMul"), "[2,3]", "the weight 'w' expects K=4");
}

TEST(OnnxImportErrors, AddShapesNotBroadcastable) {
  OnnxModel m;
  m.input("a", std::vector<std::int64_t>{2, 3});
  m.input("b", std::vector<std::int64_t>{4, 5});
  m.node("Add", "add", {"a", "b"}, {"y"});
  m.output("y");
  EXPECT_QERROR(load(m), ErrorCode::kShapeMismatch, label("add", "Add"), "[2,3]", "[4,5]");

  // Integer constants fold on the host: the same check there.
  OnnxModel c;
  c.initializer(i64_tensor("p", {2}, {1, 2}));
  c.initializer(i64_tensor("q", {3}, {1, 2, 3}));
  c.node("Add", "add", {"p", "q"}, {"y"});
  c.output("y");
  EXPECT_QERROR(load(c), ErrorCode::kShapeMismatch, label("add", "Add"), "[2]", "[3]", "do not broadcast");
}

TEST(OnnxImportErrors, IntegerFoldingOverflowAndDivisionByZero) {
  struct Case {
    const char* op;
    std::int64_t a, b;
  };
  const std::int64_t kMin = std::numeric_limits<std::int64_t>::min(), kMax = std::numeric_limits<std::int64_t>::max();
  for (const Case& k : {Case{"Div", 7, 0}, Case{"Div", kMin, -1}, Case{"Mul", kMax, 2}, Case{"Add", kMax, 1},
                        Case{"Sub", kMin, 1}, Case{"Pow", 3, 1000}}) {
    SCOPED_TRACE(std::string(k.op) + " " + std::to_string(k.a) + ", " + std::to_string(k.b));
    OnnxModel m;
    m.initializer(i64_tensor("p", {1}, {k.a}));
    m.initializer(i64_tensor("q", {1}, {k.b}));
    m.node(k.op, "op", {"p", "q"}, {"y"});
    m.output("y");
    EXPECT_QERROR(load(m), ErrorCode::kInvalidArgument, label("op", k.op));
  }
  // An exponent like 2^62 must not loop 2^62 times.
  OnnxModel p;
  p.initializer(i64_tensor("p", {1}, {1}));
  p.initializer(i64_tensor("q", {1}, {std::int64_t{1} << 62}));
  p.node("Pow", "pow", {"p", "q"}, {"y"});
  p.output("y");
  // 1^(2^62) = 1, folded exactly (by squaring).
  const auto one = run(load(p), {});
  ASSERT_EQ(one.at("y").numel(), 1);
  EXPECT_EQ(one.at("y").i64()[0], 1);
  for (const char* op : {"Neg", "Abs"}) {
    OnnxModel n;
    n.initializer(i64_tensor("p", {1}, {kMin}));
    n.node(op, "op", {"p"}, {"y"});
    n.output("y");
    EXPECT_QERROR(load(n), ErrorCode::kInvalidArgument, label("op", op), "overflow");
  }
}

TEST(OnnxImportErrors, ReshapeToWrongElementCount) {
  OnnxModel m;
  m.input("x", std::vector<std::int64_t>{2, 3});
  m.initializer(i64_tensor("shape", {2}, {4, 2}));
  m.node("Reshape", "rs", {"x", "shape"}, {"y"});
  m.output("y");
  EXPECT_QERROR(load(m), ErrorCode::kShapeMismatch, label("rs", "Reshape"), "[2,3]", "[4,2]");

  // On a constant (folded at import).
  OnnxModel c;
  c.initializer(f32_tensor("w", {2, 3}, std::vector<float>(6, 1.0f)));
  c.initializer(i64_tensor("shape", {2}, {4, 2}));
  c.node("Reshape", "rs", {"w", "shape"}, {"y"});
  c.output("y");
  EXPECT_QERROR(load(c), ErrorCode::kShapeMismatch, label("rs", "Reshape"),
                "cannot reshape [2,3] (6 elements) to [4,2]");

  // -1 that cannot be inferred, two -1s, a size below -1.
  const std::vector<std::pair<std::vector<std::int64_t>, std::string>> bad = {
      {{4, -1}, "with -1 in the target"}, {{-1, -1}, "more than one -1"}, {{2, -3}, "invalid size -3"}};
  for (const auto& [shape, why] : bad) {
    OnnxModel r;
    r.input("x", std::vector<std::int64_t>{2, 3});
    r.initializer(i64_tensor("shape", {2}, shape));
    r.node("Reshape", "rs", {"x", "shape"}, {"y"});
    r.output("y");
    EXPECT_TRUE(throws_error([&] { load(r); },
                             why == "with -1 in the target" ? ErrorCode::kShapeMismatch : ErrorCode::kInvalidArgument,
                             {label("rs", "Reshape"), why}));
  }
}

TEST(OnnxImportErrors, ReshapeTargetWhoseProductOverflows) {
  // [2^62, 4, -1] and [2^62, 4, 1]: the product of the sizes is 2^64, which wraps to 0 in int64.
  for (std::int64_t last : {-1, 1}) {
    for (bool constant : {false, true}) {
      SCOPED_TRACE(std::string(constant ? "constant" : "runtime") + " input, last size " + std::to_string(last));
      OnnxModel m;
      if (constant)
        m.initializer(f32_tensor("x", {2, 3}, std::vector<float>(6, 1.0f)));
      else
        m.input("x", std::vector<std::int64_t>{2, 3});
      m.initializer(i64_tensor("shape", {3}, {std::int64_t{1} << 62, 4, last}));
      m.node("Reshape", "rs", {"x", "shape"}, {"y"});
      m.output("y");
      EXPECT_QERROR(load(m), ErrorCode::kShapeMismatch, label("rs", "Reshape"), "[2,3]");
    }
  }
}

// Ops whose attributes the quarks graph builder validates: the error still carries the ONNX context.
TEST(OnnxImportErrors, BadAxesAndPermutationsNameTheNode) {
  struct Case {
    const char* op;
    std::function<void(onnx::NodeProto&)> attrs;
  };
  const std::vector<Case> cases = {
      {"Transpose",
       [](onnx::NodeProto& n) {
         set_attr_ints(n, "perm", {0, 0});
       }},
      {"Transpose",
       [](onnx::NodeProto& n) {
         set_attr_ints(n, "perm", {0, 7});
       }},
      {"Softmax", [](onnx::NodeProto& n) { set_attr_int(n, "axis", 9); }},
      {"Softmax", [](onnx::NodeProto& n) { set_attr_int(n, "axis", std::int64_t{1} << 32); }},
      {"Concat", [](onnx::NodeProto& n) { set_attr_int(n, "axis", 5); }},
      {"Concat", [](onnx::NodeProto& n) { set_attr_int(n, "axis", -(std::int64_t{1} << 32) + 1); }},
      {"Flatten", [](onnx::NodeProto& n) { set_attr_int(n, "axis", 3); }},
      {"Gather", [](onnx::NodeProto& n) { set_attr_int(n, "axis", std::int64_t{1} << 32); }},
      {"ReduceSum", [](onnx::NodeProto& n) { set_attr_int(n, "keepdims", 1); }},
      {"Unsqueeze", [](onnx::NodeProto& n) { (void)n; }},
  };
  for (const Case& c : cases) {
    OnnxModel m;
    m.input("x", std::vector<std::int64_t>{2, 3});
    std::vector<std::string> inputs = {"x"};
    if (std::string(c.op) == "Gather") {
      m.initializer(i64_tensor("idx", {1}, {0}));
      inputs.push_back("idx");
    }
    if (std::string(c.op) == "ReduceSum") {  // axis 2^32 + 1, which is axis 1 if truncated to int
      m.initializer(i64_tensor("axes", {1}, {(std::int64_t{1} << 32) + 1}));
      inputs.push_back("axes");
    }
    if (std::string(c.op) == "Unsqueeze") {  // 9 new axes: rank 11
      m.initializer(i64_tensor("axes", {9}, {0, 1, 2, 3, 4, 5, 6, 7, 8}));
      inputs.push_back("axes");
    }
    c.attrs(m.node(c.op, "n", inputs, {"y"}));
    m.output("y");
    SCOPED_TRACE(m.graph().node(0).DebugString());
    try {
      load(m);
      ADD_FAILURE() << "no error";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(label("n", c.op)), std::string::npos) << e.what();
    }
  }
}

// --- malformed protobuf ----------------------------------------------------------------------------

TEST(OnnxImportErrors, RandomBytesAreNotAModel) {
  EXPECT_QERROR(load_string(std::string(16, '\xff')), ErrorCode::kInvalidArgument,
                "not a valid ONNX model: the protobuf does not parse");
  std::mt19937 rng(1234);
  for (int i = 0; i < 500; ++i) {
    std::string b(1 + rng() % 256, '\0');
    for (char& c : b) c = static_cast<char>(rng());
    // Random bytes may happen to parse as a ModelProto (unknown fields are kept), but they are
    // never a model quarks imports.
    EXPECT_TRUE(throws_error([&] { load_string(b); }, ErrorCode::kInvalidArgument, {})) << "case " << i;
  }
}

TEST(OnnxImportErrors, TruncatedModel) {
  OnnxModel m = relu_model();
  m.initializer(f32_tensor("unused", {4}, {1, 2, 3, 4}));
  const std::string b = m.bytes();
  EXPECT_QERROR(load_string(b.substr(0, b.size() / 2)), ErrorCode::kInvalidArgument,
                "not a valid ONNX model: the protobuf does not parse");
  // Every strict prefix: the graph's length runs past the end, or the opset import (serialized
  // after the graph) is missing.
  for (std::size_t n = 0; n < b.size(); ++n) {
    EXPECT_TRUE(throws_error([&] { load_string(b.substr(0, n)); }, ErrorCode::kInvalidArgument, {})) << n;
  }
  EXPECT_NO_THROW(load_string(b));
}

TEST(OnnxImportErrors, EmptyBuffer) {
  EXPECT_QERROR(load_string(""), ErrorCode::kInvalidArgument, "not a valid ONNX model: it has no graph");
}

TEST(OnnxImportErrors, ModelAboveTheSizeLimit) {
  OnnxImportOptions opt;
  opt.max_model_bytes = 16;
  EXPECT_QERROR(load(relu_model(), opt), ErrorCode::kResourceExhausted, "above the limit of 16");
}

// --- initializers ----------------------------------------------------------------------------------

TEST(OnnxImportErrors, InitializerRawDataShorterOrLongerThanDims) {
  for (std::size_t count : {5u, 7u}) {
    TensorProto w = f32_tensor("w", {2, 3}, std::vector<float>(count, 1.0f));
    EXPECT_QERROR(load(add_initializer_model(w)), ErrorCode::kShapeMismatch, "initializer 'w'",
                  "raw_data has " + std::to_string(4 * count) + " bytes but dims [2,3] of FLOAT need 24");
  }
  TensorProto e = f32_tensor("w", {2, 3}, {});
  e.set_raw_data("");
  EXPECT_QERROR(load(add_initializer_model(e)), ErrorCode::kShapeMismatch, "initializer 'w'", "raw_data has 0 bytes");
}

TEST(OnnxImportErrors, InitializerTypedDataCountMismatch) {
  TensorProto w;
  w.set_name("w");
  w.set_data_type(TensorProto::FLOAT);
  w.add_dims(2);
  w.add_dims(3);
  for (int i = 0; i < 5; ++i) w.add_float_data(1.0f);
  EXPECT_QERROR(load(add_initializer_model(w)), ErrorCode::kShapeMismatch, "initializer 'w'",
                "float_data has 5 values but dims [2,3] need 6");
  TensorProto i = i64_tensor("k", {4}, {1, 2, 3});
  EXPECT_QERROR(load(add_initializer_model(i)), ErrorCode::kShapeMismatch, "initializer 'k'",
                "int64_data has 3 values but dims [4] need 4");
  TensorProto none;  // no data at all
  none.set_name("w");
  none.set_data_type(TensorProto::INT32);
  none.add_dims(3);
  EXPECT_QERROR(load(add_initializer_model(none)), ErrorCode::kShapeMismatch, "initializer 'w'",
                "int32_data has 0 values but dims [3] need 3");
}

TEST(OnnxImportErrors, InitializerNegativeDim) {
  TensorProto w = f32_tensor("w", {2, -3}, std::vector<float>(6, 1.0f));
  EXPECT_QERROR(load(add_initializer_model(w)), ErrorCode::kInvalidArgument, "initializer 'w'", "negative dim -3");
}

TEST(OnnxImportErrors, InitializerHugeDims) {
  // The product overflows int64.
  TensorProto w = f32_tensor("w", {std::int64_t{1} << 40, std::int64_t{1} << 40}, {1.0f});
  EXPECT_QERROR(load(add_initializer_model(w)), ErrorCode::kInvalidArgument, "initializer 'w'", "too many elements");
  // 2^39 elements (2 TiB of f32) claimed by 4 bytes of data: refused before anything is allocated.
  TensorProto big = f32_tensor("w", {std::int64_t{1} << 20, std::int64_t{1} << 19}, {1.0f});
  EXPECT_QERROR(load(add_initializer_model(big)), ErrorCode::kShapeMismatch, "initializer 'w'", "raw_data has 4 bytes");
  TensorProto typed = i64_tensor("w", {std::int64_t{1} << 20, std::int64_t{1} << 19}, {1});
  EXPECT_QERROR(load(add_initializer_model(typed)), ErrorCode::kShapeMismatch, "initializer 'w'",
                "int64_data has 1 values");
  // A zero dim makes the tensor empty, but its other dims must still be within 2^48 elements (strides
  // over them would overflow).
  TensorProto empty = f32_tensor("w", {0, std::int64_t{1} << 62}, {});
  EXPECT_QERROR(load(add_initializer_model(empty)), ErrorCode::kInvalidArgument, label("add", "Add"),
                "constant 'w': shape [0,4611686018427387904] is too large");
}

TEST(OnnxImportErrors, InitializerRankAboveEight) {
  TensorProto w = f32_tensor("w", std::vector<std::int64_t>(9, 1), {1.0f});
  EXPECT_QERROR(load(add_initializer_model(w)), ErrorCode::kUnsupported, "initializer 'w'",
                "rank 9 exceeds the maximum of 8");
}

TEST(OnnxImportErrors, InitializerUnsupportedDataType) {
  TensorProto s;
  s.set_name("names");
  s.set_data_type(TensorProto::STRING);
  s.add_dims(1);
  s.add_string_data("hello");
  EXPECT_QERROR(load(add_initializer_model(s)), ErrorCode::kUnsupported, "initializer 'names'",
                "data type STRING is not supported");
  TensorProto h;
  h.set_name("half");
  h.set_data_type(TensorProto::FLOAT16);
  h.add_dims(2);
  h.set_raw_data(std::string(4, '\0'));
  EXPECT_QERROR(load(add_initializer_model(h)), ErrorCode::kUnsupported, "initializer 'half'",
                "data type FLOAT16 is not supported");
  TensorProto u;
  u.set_name("odd");
  u.set_data_type(999);
  EXPECT_QERROR(load(add_initializer_model(u)), ErrorCode::kUnsupported, "initializer 'odd'", "unknown type 999");
}

TEST(OnnxImportErrors, InitializerNamesAndDuplicates) {
  OnnxModel d = add_initializer_model(f32_tensor("w", {2, 3}, std::vector<float>(6, 1.0f)));
  d.initializer(f32_tensor("w", {2, 3}, std::vector<float>(6, 2.0f)));
  EXPECT_QERROR(load(d), ErrorCode::kInvalidArgument, "initializer 'w' is defined twice");
  OnnxModel n = relu_model();
  n.initializer(f32_tensor("", {1}, {1.0f}));
  EXPECT_QERROR(load(n), ErrorCode::kInvalidArgument, "an initializer has no name");
  OnnxModel s = relu_model();
  s.graph().add_sparse_initializer();
  EXPECT_QERROR(load(s), ErrorCode::kUnsupported, "sparse initializers");
  OnnxModel seg = add_initializer_model(f32_tensor("w", {2, 3}, std::vector<float>(6, 1.0f)));
  seg.graph().mutable_initializer(0)->mutable_segment()->set_begin(0);
  EXPECT_QERROR(load(seg), ErrorCode::kUnsupported, "initializer 'w'", "segmented");
}

TEST(OnnxImportErrors, ConstantAttributeTensorErrorsNameTheNode) {
  OnnxModel m;
  m.input("x", std::vector<std::int64_t>{2, 3});
  set_attr_tensor(m.node("Constant", "c", {}, {"w"}), "value", f32_tensor("", {2, 3}, {1.0f, 2.0f}));
  m.node("Add", "add", {"x", "w"}, {"y"});
  m.output("y");
  EXPECT_QERROR(load(m), ErrorCode::kShapeMismatch, label("c", "Constant"), "attribute 'value'",
                "raw_data has 8 bytes");
}

// --- external data ---------------------------------------------------------------------------------

class OnnxExternalData : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (fs::temp_directory_path() / "quarks_onnx_errors.XXXXXX").string();
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    root_ = pattern;
    dir_ = root_ / "model";
    fs::create_directory(dir_);
    write(dir_ / "w.bin", weights_);
    write(root_ / "outside.bin", weights_);
  }
  void TearDown() override { fs::remove_all(root_); }

  static void write(const fs::path& p, const std::vector<float>& v) {
    std::ofstream(p, std::ios::binary).write(reinterpret_cast<const char*>(v.data()), std::streamsize(v.size() * 4));
  }

  // x [2,3] + w, where w [2,3] is external data with these (key, value) entries.
  fs::path write_model(const std::vector<std::pair<std::string, std::string>>& entries) {
    TensorProto w;
    w.set_name("w");
    w.set_data_type(TensorProto::FLOAT);
    w.add_dims(2);
    w.add_dims(3);
    w.set_data_location(TensorProto::EXTERNAL);
    for (const auto& [k, v] : entries) {
      auto* e = w.add_external_data();
      e->set_key(k);
      e->set_value(v);
    }
    const fs::path p = dir_ / "model.onnx";
    std::ofstream(p, std::ios::binary) << add_initializer_model(w).bytes();
    return p;
  }

  fs::path root_, dir_;
  const std::vector<float> weights_ = {0.5f, -1.0f, 2.0f, 4.0f, -8.0f, 16.0f};
};

TEST_F(OnnxExternalData, ValidExternalDataLoadsAndRuns) {
  const Tensor x = Tensor::from_f32(Shape{2, 3}, {1, 2, 3, 4, 5, 6});
  for (const auto& entries : std::vector<std::vector<std::pair<std::string, std::string>>>{
           {{"location", "w.bin"}},
           {{"location", "w.bin"}, {"offset", "0"}, {"length", "24"}},
           {{"location", "./w.bin"}}}) {
    const auto out = run(load_onnx(write_model(entries)), {{"x", x}});
    for (int i = 0; i < 6; ++i) EXPECT_EQ(out.at("y").f32()[i], x.f32()[i] + weights_[i]) << i;
  }
  // An offset into a bigger file, in a subfolder.
  fs::create_directory(dir_ / "data");
  std::vector<float> padded = {99.0f, 99.0f};
  padded.insert(padded.end(), weights_.begin(), weights_.end());
  write(dir_ / "data" / "all.bin", padded);
  const auto out = run(load_onnx(write_model({{"location", "data/all.bin"}, {"offset", "8"}})), {{"x", x}});
  for (int i = 0; i < 6; ++i) EXPECT_EQ(out.at("y").f32()[i], x.f32()[i] + weights_[i]) << i;
}

TEST_F(OnnxExternalData, AbsoluteLocation) {
  const std::string abs = (dir_ / "w.bin").string();
  EXPECT_QERROR(load_onnx(write_model({{"location", abs}})), ErrorCode::kInvalidArgument, "model.onnx",
                "initializer 'w'", "external data location '" + abs + "' is absolute");
}

TEST_F(OnnxExternalData, LocationLeavingTheFolder) {
  for (const std::string loc : {"../outside.bin", "sub/../../outside.bin", "./../model/../outside.bin"}) {
    EXPECT_QERROR(load_onnx(write_model({{"location", loc}})), ErrorCode::kInvalidArgument, "initializer 'w'",
                  "external data location '" + loc + "' leaves the model's folder");
  }
}

TEST_F(OnnxExternalData, SymlinkPointingOutside) {
  fs::create_symlink(root_ / "outside.bin", dir_ / "link.bin");
  EXPECT_QERROR(load_onnx(write_model({{"location", "link.bin"}})), ErrorCode::kInvalidArgument, "initializer 'w'",
                "'link.bin' leaves the model's folder");
  fs::create_symlink("../outside.bin", dir_ / "relative_link.bin");
  EXPECT_QERROR(load_onnx(write_model({{"location", "relative_link.bin"}})), ErrorCode::kInvalidArgument,
                "leaves the model's folder");
  fs::create_directory_symlink(root_, dir_ / "up");
  EXPECT_QERROR(load_onnx(write_model({{"location", "up/outside.bin"}})), ErrorCode::kInvalidArgument,
                "leaves the model's folder");
  // A dangling link whose target would be outside: refused, even if the target appears later.
  fs::create_symlink(root_ / "later.bin", dir_ / "dangling.bin");
  EXPECT_TRUE(throws_error(
      [&] {
        load_onnx(write_model({{"location", "dangling.bin"}}));
      },
      ErrorCode::kInvalidArgument, {"initializer 'w'", "dangling.bin"}));
  // A symlink that stays inside the folder is fine.
  fs::create_symlink("w.bin", dir_ / "inside_link.bin");
  EXPECT_NO_THROW(load_onnx(write_model({{"location", "inside_link.bin"}})));
}

TEST_F(OnnxExternalData, NotARegularFile) {
  // A FIFO would block the reader forever; a folder is not data.
  ASSERT_EQ(mkfifo((dir_ / "pipe").c_str(), 0600), 0);
  EXPECT_QERROR(load_onnx(write_model({{"location", "pipe"}})), ErrorCode::kInvalidArgument, "initializer 'w'",
                "'pipe' is not a regular file");
  fs::create_directory(dir_ / "folder");
  EXPECT_QERROR(load_onnx(write_model({{"location", "folder"}})), ErrorCode::kInvalidArgument,
                "'folder' is not a regular file");
  EXPECT_QERROR(load_onnx(write_model({{"location", "."}})), ErrorCode::kInvalidArgument, "is not a regular file");
}

TEST_F(OnnxExternalData, RangeOutsideTheFile) {
  EXPECT_QERROR(load_onnx(write_model({{"location", "w.bin"}, {"offset", "100"}})), ErrorCode::kInvalidArgument,
                "initializer 'w'", "outside 'w.bin' (24 bytes)");
  EXPECT_QERROR(load_onnx(write_model({{"location", "w.bin"}, {"offset", "8"}, {"length", "24"}})),
                ErrorCode::kInvalidArgument, "external data range [8, +24) is outside 'w.bin' (24 bytes)");
  EXPECT_QERROR(load_onnx(write_model({{"location", "w.bin"}, {"offset", "18446744073709551615"}, {"length", "2"}})),
                ErrorCode::kInvalidArgument, "is outside 'w.bin'");
  EXPECT_QERROR(load_onnx(write_model({{"location", "w.bin"}, {"offset", "-1"}})), ErrorCode::kInvalidArgument,
                "initializer 'w'", "offset");
}

TEST_F(OnnxExternalData, LengthNotMatchingDims) {
  EXPECT_QERROR(load_onnx(write_model({{"location", "w.bin"}, {"length", "16"}})), ErrorCode::kShapeMismatch,
                "initializer 'w'", "external data has 16 bytes, the dims need 24");
  EXPECT_QERROR(load_onnx(write_model({{"location", "w.bin"}, {"offset", "4"}})), ErrorCode::kShapeMismatch,
                "external data has 20 bytes, the dims need 24");
}

TEST_F(OnnxExternalData, BadEntries) {
  EXPECT_QERROR(load_onnx(write_model({})), ErrorCode::kInvalidArgument, "initializer 'w'",
                "external data has no location");
  EXPECT_QERROR(load_onnx(write_model({{"location", "w.bin"}, {"offset", "abc"}})), ErrorCode::kInvalidArgument,
                "external data entry 'offset' is not a number: abc");
  EXPECT_QERROR(load_onnx(write_model({{"location", "w.bin"}, {"length", "99999999999999999999999"}})),
                ErrorCode::kInvalidArgument, "external data entry 'length' is not a number");
}

TEST_F(OnnxExternalData, MissingFile) {
  EXPECT_QERROR(load_onnx(write_model({{"location", "nope.bin"}})), ErrorCode::kNotFound, "initializer 'w'",
                "nope.bin");
  EXPECT_QERROR(load_onnx(dir_ / "no_model.onnx"), ErrorCode::kNotFound, "no_model.onnx");
}

TEST_F(OnnxExternalData, RefusedWhenLoadingFromBytesWithoutAFolder) {
  write_model({{"location", "w.bin"}});
  std::ifstream in(dir_ / "model.onnx", std::ios::binary);
  const std::string b((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_QERROR(load_string(b), ErrorCode::kInvalidArgument, "initializer 'w'",
                "external data is not allowed when loading from bytes");
  // With a folder given it loads.
  EXPECT_NO_THROW(load_onnx_bytes(std::as_bytes(std::span(b)), {}, dir_));
}

// --- graph structure -------------------------------------------------------------------------------

TEST(OnnxImportErrors, CycleNamesItsNodes) {
  OnnxModel m;
  m.input("x", std::vector<std::int64_t>{2, 3});
  m.node("Relu", "A", {"b"}, {"a"});
  m.node("Relu", "B", {"a"}, {"b"});
  m.output("a");
  EXPECT_QERROR(load(m), ErrorCode::kInvalidArgument, "the graph has a cycle through", label("A", "Relu"),
                label("B", "Relu"));
  OnnxModel self;
  self.input("x", std::vector<std::int64_t>{2, 3});
  self.node("Add", "loop", {"x", "c"}, {"c"});
  self.output("c");
  EXPECT_QERROR(load(self), ErrorCode::kInvalidArgument, "cycle", label("loop", "Add"));
}

TEST(OnnxImportErrors, NodesOutOfOrderAreSorted) {
  OnnxModel m;
  m.input("x", std::vector<std::int64_t>{2, 3});
  m.node("Neg", "second", {"h"}, {"y"});
  m.node("Relu", "first", {"x"}, {"h"});
  m.output("y");
  const Tensor x = Tensor::from_f32(Shape{2, 3}, {-1, 2, -3, 4, -5, 6});
  const auto out = run(load(m), {{"x", x}});
  for (int i = 0; i < 6; ++i) EXPECT_EQ(out.at("y").f32()[i], -std::max(0.0f, x.f32()[i]));
}

TEST(OnnxImportErrors, UndefinedInputName) {
  OnnxModel m;
  m.input("x", std::vector<std::int64_t>{2, 3});
  m.node("Add", "add", {"x", "nope"}, {"y"});
  m.output("y");
  EXPECT_QERROR(load(m), ErrorCode::kInvalidArgument, label("add", "Add"),
                "input 'nope' is not defined by any node, input or initializer");
}

TEST(OnnxImportErrors, TwoNodesProduceOneOutput) {
  OnnxModel m;
  m.input("x", std::vector<std::int64_t>{2, 3});
  m.node("Relu", "first", {"x"}, {"y"});
  m.node("Neg", "second", {"x"}, {"y"});
  m.output("y");
  EXPECT_QERROR(load(m), ErrorCode::kInvalidArgument, label("second", "Neg"),
                "output 'y' is also produced by " + label("first", "Relu"));
}

TEST(OnnxImportErrors, NodeOutputCollidesWithInputOrInitializer) {
  OnnxModel m = add_initializer_model(f32_tensor("w", {2, 3}, std::vector<float>(6, 1.0f)));
  m.node("Relu", "clobber", {"x"}, {"w"});
  EXPECT_QERROR(load(m), ErrorCode::kInvalidArgument, label("clobber", "Relu"),
                "output 'w' has the name of a graph input or initializer");
  OnnxModel i = relu_model();
  i.node("Neg", "clobber", {"y"}, {"x"});
  EXPECT_QERROR(load(i), ErrorCode::kInvalidArgument, label("clobber", "Neg"), "output 'x' has the name");
}

TEST(OnnxImportErrors, DuplicateGraphInput) {
  OnnxModel m = relu_model();
  m.input("x", std::vector<std::int64_t>{2, 3});
  EXPECT_QERROR(load(m), ErrorCode::kInvalidArgument, "graph input 'x' is declared twice");
  OnnxModel e = relu_model();
  e.input("", std::vector<std::int64_t>{2, 3});
  EXPECT_QERROR(load(e), ErrorCode::kInvalidArgument, "a graph input has no name");
}

TEST(OnnxImportErrors, GraphOutputs) {
  OnnxModel m = relu_model();
  m.output("z");
  EXPECT_QERROR(load(m), ErrorCode::kInvalidArgument, "graph output 'z' is not produced by any node");
  OnnxModel none = relu_model();
  none.graph().clear_output();
  EXPECT_QERROR(load(none), ErrorCode::kInvalidArgument, "the graph has no outputs");
}

// --- graph inputs and import options ------------------------------------------------------------------

TEST(OnnxImportErrors, InputWithoutShape) {
  OnnxModel m;
  m.input("x", std::nullopt);
  m.node("Relu", "relu", {"x"}, {"y"});
  m.output("y");
  EXPECT_QERROR(load(m), ErrorCode::kInvalidArgument, "graph input 'x' has no declared shape",
                "OnnxImportOptions::input_shapes");
  OnnxImportOptions opt;
  opt.input_shapes["x"] = Shape{1, 2};
  const auto out = run(load(m, opt), {{"x", Tensor::from_f32(Shape{1, 2}, {-3.0f, 3.0f})}});
  EXPECT_EQ(out.at("y").f32()[0], 0.0f);
  EXPECT_EQ(out.at("y").f32()[1], 3.0f);
}

TEST(OnnxImportErrors, InputShapesDisagreeingWithTheModel) {
  OnnxImportOptions opt;
  opt.input_shapes["x"] = Shape{2, 4};
  EXPECT_QERROR(load(relu_model(), opt), ErrorCode::kShapeMismatch,
                "graph input 'x' dim 1 is 3 but input_shapes gives [2,4]");
  opt.input_shapes["x"] = Shape{6};
  EXPECT_QERROR(load(relu_model(), opt), ErrorCode::kShapeMismatch, "graph input 'x' has rank 2",
                "input_shapes gives [6]");
  OnnxImportOptions unknown;
  unknown.input_shapes["q"] = Shape{1};
  EXPECT_QERROR(load(relu_model(), unknown), ErrorCode::kNotFound, "input_shapes names 'q'");
  // A symbolic dim takes any size.
  OnnxModel s;
  s.input("x", std::vector<std::int64_t>{-1, 3});
  s.node("Relu", "relu", {"x"}, {"y"});
  s.output("y");
  OnnxImportOptions any;
  any.input_shapes["x"] = Shape{5, 3};
  EXPECT_NO_THROW(load(s, any));
}

TEST(OnnxImportErrors, BadInputDeclarations) {
  OnnxModel neg;
  neg.input("x", std::vector<std::int64_t>{2, 3});
  neg.graph().mutable_input(0)->mutable_type()->mutable_tensor_type()->mutable_shape()->mutable_dim(1)->set_dim_value(
      -3);
  neg.node("Relu", "relu", {"x"}, {"y"});
  neg.output("y");
  EXPECT_QERROR(load(neg), ErrorCode::kInvalidArgument, "graph input 'x' has a negative dim");

  OnnxModel str;
  str.input("x", std::vector<std::int64_t>{2}, TensorProto::STRING);
  str.node("Relu", "relu", {"x"}, {"y"});
  str.output("y");
  EXPECT_QERROR(load(str), ErrorCode::kUnsupported, "graph input 'x' has element type STRING");

  OnnxModel seq;
  auto* in = seq.graph().add_input();
  in->set_name("x");
  in->mutable_type()->mutable_sequence_type();
  seq.node("Relu", "relu", {"x"}, {"y"});
  seq.output("y");
  EXPECT_QERROR(load(seq), ErrorCode::kUnsupported, "graph input 'x' is not a tensor");

  OnnxModel rank;
  rank.input("x", std::vector<std::int64_t>(9, 1));
  rank.node("Relu", "relu", {"x"}, {"y"});
  rank.output("y");
  EXPECT_TRUE(throws_error([&] { load(rank); }, ErrorCode::kInvalidArgument, {"input 'x'"}));

  // A declared shape of 2^80 elements.
  OnnxModel huge;
  huge.input("x", std::vector<std::int64_t>{std::int64_t{1} << 40, std::int64_t{1} << 40});
  huge.node("Relu", "relu", {"x"}, {"y"});
  huge.output("y");
  EXPECT_QERROR(load(huge), ErrorCode::kInvalidArgument, "graph input 'x'", "too many elements");

  // A symbolic dim bound to a negative size.
  OnnxModel sym;
  sym.input("x", std::vector<std::int64_t>{-1, 3});
  sym.node("Relu", "relu", {"x"}, {"y"});
  sym.output("y");
  OnnxImportOptions opt;
  opt.dims["d0"] = -4;
  EXPECT_TRUE(throws_error([&] { load(sym, opt); }, ErrorCode::kInvalidArgument, {"graph input 'x'"}));
}

TEST(OnnxImportErrors, ConstantInputsNamingANonInput) {
  OnnxImportOptions opt;
  opt.constant_inputs["q"] = Tensor::from_f32(Shape{1}, {1.0f});
  EXPECT_QERROR(load(relu_model(), opt), ErrorCode::kNotFound, "constant_inputs names 'q'", "not a graph input");
}

// --- Gather, Slice, Split -----------------------------------------------------------------------------

TEST(OnnxImportErrors, GatherIndicesOutOfRangeFoldedAtImport) {
  // f32 data: folded by running the quarks gather on the constants.
  OnnxModel m;
  m.initializer(f32_tensor("data", {3, 2}, std::vector<float>(6, 1.0f)));
  m.initializer(i64_tensor("idx", {1}, {5}));
  m.node("Gather", "g", {"data", "idx"}, {"y"});
  m.output("y");
  EXPECT_QERROR(load(m), ErrorCode::kInvalidArgument, label("g", "Gather"), "index 5", "out of range");
  // An i64 vector (a shape): folded on the host.
  OnnxModel s;
  s.initializer(i64_tensor("data", {3}, {7, 8, 9}));
  s.initializer(i64_tensor("idx", {1}, {-4}));
  s.node("Gather", "g", {"data", "idx"}, {"y"});
  s.output("y");
  EXPECT_QERROR(load(s), ErrorCode::kInvalidArgument, label("g", "Gather"), "index -4 is out of range for 3 elements");
}

TEST(OnnxImportErrors, GatherIndicesOutOfRangeAtRunTime) {
  // Runtime data, constant indices.
  OnnxModel m;
  m.input("x", std::vector<std::int64_t>{3, 2});
  m.initializer(i64_tensor("idx", {2}, {0, 5}));
  m.node("Gather", "g", {"x", "idx"}, {"y"});
  m.output("y");
  const Tensor x = Tensor::from_f32(Shape{3, 2}, {1, 2, 3, 4, 5, 6});
  EXPECT_QERROR(run(load(m), {{"x", x}}), ErrorCode::kInvalidArgument, "index 5", "out of range");
  // Constant data, runtime indices.
  OnnxModel r;
  r.initializer(f32_tensor("data", {3, 2}, {1, 2, 3, 4, 5, 6}));
  r.input("idx", std::vector<std::int64_t>{2}, TensorProto::INT64);
  r.node("Gather", "g", {"data", "idx"}, {"y"});
  r.output("y");
  const Graph g = load(r);
  EXPECT_QERROR(run(g, {{"idx", Tensor::from_i64(Shape{2}, std::vector<std::int64_t>{1, -9})}}),
                ErrorCode::kInvalidArgument, "index -9", "out of range");
  const auto ok = run(g, {{"idx", Tensor::from_i64(Shape{2}, std::vector<std::int64_t>{2, -3})}});
  EXPECT_EQ(ok.at("y").f32()[0], 5.0f);
  EXPECT_EQ(ok.at("y").f32()[2], 1.0f);
}

OnnxModel slice_model(bool constant_data, const std::vector<std::int64_t>& starts,
                      const std::vector<std::int64_t>& ends, std::optional<std::vector<std::int64_t>> axes,
                      std::optional<std::vector<std::int64_t>> steps) {
  OnnxModel m;
  if (constant_data)
    m.initializer(i64_tensor("x", {4}, {10, 11, 12, 13}));
  else
    m.input("x", std::vector<std::int64_t>{4});
  m.initializer(i64_tensor("starts", {static_cast<std::int64_t>(starts.size())}, starts));
  m.initializer(i64_tensor("ends", {static_cast<std::int64_t>(ends.size())}, ends));
  std::vector<std::string> inputs = {"x", "starts", "ends"};
  inputs.push_back(axes ? "axes" : "");
  if (axes) m.initializer(i64_tensor("axes", {static_cast<std::int64_t>(axes->size())}, *axes));
  if (steps) {
    m.initializer(i64_tensor("steps", {static_cast<std::int64_t>(steps->size())}, *steps));
    inputs.push_back("steps");
  }
  m.node("Slice", "sl", inputs, {"y"});
  m.output("y");
  return m;
}

TEST(OnnxImportErrors, SliceSteps) {
  for (bool constant : {false, true}) {
    SCOPED_TRACE(constant ? "constant data" : "runtime data");
    EXPECT_QERROR(load(slice_model(constant, {0}, {4}, std::vector<std::int64_t>{0}, std::vector<std::int64_t>{0})),
                  ErrorCode::kInvalidArgument, label("sl", "Slice"), "step 0");
    EXPECT_QERROR(load(slice_model(constant, {3}, {0}, std::vector<std::int64_t>{0}, std::vector<std::int64_t>{-1})),
                  ErrorCode::kUnsupported, label("sl", "Slice"), "step -1");
    // steps given with the wrong length (here: none).
    EXPECT_QERROR(load(slice_model(constant, {0}, {4}, std::vector<std::int64_t>{0}, std::vector<std::int64_t>{})),
                  ErrorCode::kInvalidArgument, label("sl", "Slice"), "one length");
    // More starts than the input has dims, no axes.
    EXPECT_QERROR(load(slice_model(constant, {0, 0}, {1, 1}, std::nullopt, std::nullopt)), ErrorCode::kInvalidArgument,
                  label("sl", "Slice"), "rank 1");
    EXPECT_QERROR(load(slice_model(constant, {0}, {1}, std::vector<std::int64_t>{1}, std::nullopt)),
                  ErrorCode::kInvalidArgument, label("sl", "Slice"), "axis 1 is out of range for rank 1");
  }
  // The working case folds to the right values.
  const auto out = run(load(slice_model(true, {1}, {std::numeric_limits<std::int64_t>::max()}, std::nullopt,
                                        std::vector<std::int64_t>{2})),
                       {});
  ASSERT_EQ(out.at("y").shape(), Shape{2});
  EXPECT_EQ(out.at("y").i64()[0], 11);
  EXPECT_EQ(out.at("y").i64()[1], 13);
}

TEST(OnnxImportErrors, SplitSizes) {
  auto split_model = [](const std::vector<std::int64_t>& sizes) {
    OnnxModel m;
    m.input("x", std::vector<std::int64_t>{2, 6});
    m.initializer(i64_tensor("split", {static_cast<std::int64_t>(sizes.size())}, sizes));
    set_attr_int(m.node("Split", "sp", {"x", "split"}, {"a", "b"}), "axis", 1);
    m.output("a");
    m.output("b");
    return m;
  };
  EXPECT_QERROR(load(split_model({2, 2})), ErrorCode::kShapeMismatch, label("sp", "Split"));
  EXPECT_TRUE(throws_error([&] { load(split_model({-1, 7})); }, ErrorCode::kInvalidArgument, {label("sp", "Split")}));
  EXPECT_QERROR(load(split_model({1, 2, 3})), ErrorCode::kInvalidArgument, label("sp", "Split"),
                "has 2 outputs but 3 split sizes");
  // num_outputs disagreeing with the outputs (a huge value must not be expanded first).
  for (std::int64_t parts : {std::int64_t{3}, std::int64_t{1} << 40, std::int64_t{0}}) {
    OnnxModel m(18);
    m.input("x", std::vector<std::int64_t>{2, 6});
    set_attr_int(m.node("Split", "sp", {"x"}, {"a", "b"}), "num_outputs", parts);
    m.output("a");
    m.output("b");
    EXPECT_QERROR(load(m), ErrorCode::kInvalidArgument, label("sp", "Split", 18));
  }
}

// --- generated constants: ConstantOfShape, Range, Expand -------------------------------------------------

OnnxModel constant_of_shape_model(const std::vector<std::int64_t>& shape) {
  OnnxModel m;
  m.initializer(i64_tensor("shape", {static_cast<std::int64_t>(shape.size())}, shape));
  m.node("ConstantOfShape", "cos", {"shape"}, {"y"});
  m.output("y");
  return m;
}

TEST(OnnxImportErrors, ConstantOfShapeNegativeOrEnormous) {
  EXPECT_QERROR(load(constant_of_shape_model({-1, 3})), ErrorCode::kInvalidArgument, label("cos", "ConstantOfShape"),
                "negative");
  // 2^40 elements; 2^64 elements (wraps to 0 in int64); 2^128.
  for (const auto& shape : std::vector<std::vector<std::int64_t>>{{std::int64_t{1} << 20, std::int64_t{1} << 20},
                                                                  {std::int64_t{1} << 62, 4},
                                                                  {std::int64_t{1} << 32, std::int64_t{1} << 32, 0},
                                                                  {std::int64_t{1} << 62, std::int64_t{1} << 62, 16}}) {
    EXPECT_QERROR(load(constant_of_shape_model(shape)), ErrorCode::kResourceExhausted, label("cos", "ConstantOfShape"));
  }
  // What fits is computed: [2,3] of 0.
  const auto out = run(load(constant_of_shape_model({2, 3})), {});
  ASSERT_EQ(out.at("y").shape(), (Shape{2, 3}));
  for (int i = 0; i < 6; ++i) EXPECT_EQ(out.at("y").f32()[i], 0.0f);
  // The value attribute must hold one element.
  OnnxModel v = constant_of_shape_model({2});
  set_attr_tensor(*v.graph().mutable_node(0), "value", f32_tensor("", {2}, {1.0f, 2.0f}));
  EXPECT_QERROR(load(v), ErrorCode::kInvalidArgument, label("cos", "ConstantOfShape"), "must hold one element");
}

OnnxModel range_model(const TensorProto& start, const TensorProto& limit, const TensorProto& delta) {
  OnnxModel m;
  m.initializer(start);
  m.initializer(limit);
  m.initializer(delta);
  m.node("Range", "r", {start.name(), limit.name(), delta.name()}, {"y"});
  m.output("y");
  return m;
}

TensorProto i64_scalar(const std::string& name, std::int64_t v) { return i64_tensor(name, {}, {v}); }
TensorProto f32_scalar(const std::string& name, float v) { return f32_tensor(name, {}, {v}); }

TEST(OnnxImportErrors, RangeDeltaZeroAndEnormousCounts) {
  EXPECT_QERROR(load(range_model(i64_scalar("s", 0), i64_scalar("l", 10), i64_scalar("d", 0))),
                ErrorCode::kInvalidArgument, label("r", "Range"), "delta is 0");
  EXPECT_QERROR(load(range_model(f32_scalar("s", 0), f32_scalar("l", 10), f32_scalar("d", 0))),
                ErrorCode::kInvalidArgument, label("r", "Range"), "delta is 0");
  EXPECT_QERROR(load(range_model(i64_scalar("s", 0), i64_scalar("l", std::int64_t{1} << 60), i64_scalar("d", 1))),
                ErrorCode::kResourceExhausted, label("r", "Range"));
  EXPECT_QERROR(load(range_model(f32_scalar("s", 0), f32_scalar("l", INFINITY), f32_scalar("d", 1))),
                ErrorCode::kResourceExhausted, label("r", "Range"));
  EXPECT_QERROR(load(range_model(f32_scalar("s", 0), f32_scalar("l", 1e30f), f32_scalar("d", 1e-30f))),
                ErrorCode::kResourceExhausted, label("r", "Range"));
  // Mixed element types.
  EXPECT_TRUE(throws_error([&] { load(range_model(i64_scalar("s", 0), f32_scalar("l", 4), i64_scalar("d", 1))); },
                           ErrorCode::kInvalidArgument, {label("r", "Range")}));
}

TEST(OnnxImportErrors, RangeAtTheEndsOfInt64IsExact) {
  const std::int64_t lo = std::numeric_limits<std::int64_t>::min(), hi = std::numeric_limits<std::int64_t>::max();
  const std::int64_t delta = std::int64_t{3} << 61;
  const auto out = run(load(range_model(i64_scalar("s", lo), i64_scalar("l", hi), i64_scalar("d", delta))), {});
  // Reference: step until the next value passes the limit or leaves the int64 range.
  std::vector<std::int64_t> expected;
  for (std::int64_t v = lo; v < hi;) {
    expected.push_back(v);
    if (__builtin_add_overflow(v, delta, &v)) break;
  }
  ASSERT_EQ(out.at("y").numel(), static_cast<std::int64_t>(expected.size()));
  for (std::size_t i = 0; i < expected.size(); ++i) EXPECT_EQ(out.at("y").i64()[i], expected[i]) << i;
  // Counting down.
  const auto down = run(load(range_model(i64_scalar("s", 5), i64_scalar("l", -4), i64_scalar("d", -3))), {});
  ASSERT_EQ(down.at("y").numel(), 3);
  EXPECT_EQ(down.at("y").i64()[2], -1);
}

TEST(OnnxImportErrors, ExpandOfAConstantToAnEnormousShape) {
  // 2^40 elements: folding would allocate 4 TiB.
  auto expand_model = [](const std::vector<std::int64_t>& shape) {
    OnnxModel m;
    m.initializer(f32_tensor("one", {1}, {1.0f}));
    m.initializer(i64_tensor("shape", {static_cast<std::int64_t>(shape.size())}, shape));
    m.node("Expand", "ex", {"one", "shape"}, {"y"});
    m.output("y");
    return m;
  };
  EXPECT_QERROR(load(expand_model({std::int64_t{1} << 20, std::int64_t{1} << 20})), ErrorCode::kResourceExhausted,
                label("ex", "Expand"), "would take more than");
  // 2^64 elements: the size would wrap around in int64.
  EXPECT_QERROR(load(expand_model({std::int64_t{1} << 32, std::int64_t{1} << 32})), ErrorCode::kInvalidArgument,
                label("ex", "Expand"), "too many elements");
  // What fits is folded: [2,3] of 1.
  const auto out = run(load(expand_model({2, 3})), {});
  ASSERT_EQ(out.at("y").shape(), (Shape{2, 3}));
  for (int i = 0; i < 6; ++i) EXPECT_EQ(out.at("y").f32()[i], 1.0f);
}

TEST(OnnxImportErrors, ExpandOfARuntimeInputToAnEnormousShape) {
  // Nothing is allocated at import; the shape must still not wrap around in int64 later.
  for (const auto& shape : std::vector<std::vector<std::int64_t>>{{std::int64_t{1} << 32, std::int64_t{1} << 32},
                                                                  {std::int64_t{1} << 62, 4}}) {
    OnnxModel m;
    m.input("x", std::vector<std::int64_t>{1});
    m.initializer(i64_tensor("shape", {2}, shape));
    m.node("Expand", "ex", {"x", "shape"}, {"y"});
    m.output("y");
    EXPECT_QERROR(load(m), ErrorCode::kInvalidArgument, label("ex", "Expand"), "too many elements");
  }
  // 2^36 elements (256 GiB of f32) in an intermediate: imports, but compiling with a memory cap
  // refuses it.
  OnnxModel big;
  big.input("x", std::vector<std::int64_t>{1});
  big.initializer(i64_tensor("shape", {2}, {std::int64_t{1} << 18, std::int64_t{1} << 18}));
  big.node("Expand", "ex", {"x", "shape"}, {"h"});
  set_attr_int(big.node("ReduceSum", "sum", {"h"}, {"y"}), "keepdims", 0);
  big.output("y");
  CompileOptions copt;
  copt.max_arena_bytes = std::size_t{1} << 30;
  EXPECT_QERROR(compile(load(big), copt), ErrorCode::kResourceExhausted, "max_arena_bytes");
}

TEST(OnnxImportErrors, ConstantWithASparseValue) {
  OnnxModel m;
  auto& n = m.node("Constant", "c", {}, {"y"});
  auto* a = n.add_attribute();
  a->set_name("sparse_value");
  a->set_type(AttributeProto::SPARSE_TENSOR);
  a->mutable_sparse_tensor()->add_dims(4);
  m.output("y");
  EXPECT_QERROR(load(m), ErrorCode::kUnsupported, label("c", "Constant"), "sparse");
  OnnxModel e;
  e.node("Constant", "c", {}, {"y"});
  e.output("y");
  EXPECT_QERROR(load(e), ErrorCode::kUnsupported, label("c", "Constant"), "needs one of the attributes");
}

}  // namespace
}  // namespace quarks
