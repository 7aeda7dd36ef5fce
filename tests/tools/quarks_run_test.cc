// quarks-run: the input checks and output file names directly, then the tool itself, spawned on the
// committed ONNX fixtures (tests/onnx/models: PyTorch and NumPy references; data/quarks_run: integer
// and boolean inputs and outputs, NumPy references) and on every error path, checking the exit status
// and the exact message.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <random>
#include <sstream>

#include "onnx/onnx_model_builder.hpp"
#include "onnx/onnx_test_util.hpp"
#include "ops/contract/sanitizers.hpp"
#include "quarks/quarks.hpp"
#include "tools/common/inputs.hpp"
#include "tools/common/npy.hpp"
#include "tools/quarks-run/output_files.hpp"
#include "tools/tool_test.hpp"

namespace fs = std::filesystem;

namespace quarks::tools {
namespace {

// The acceptance bound of the ONNX fixtures: max |quarks - reference| <= 1e-4 · max |reference|.
constexpr double kScaledTolerance = 1e-4;

const fs::path kModels = QUARKS_ONNX_MODELS;
const fs::path kEmbedding = fs::path(QUARKS_RUN_FIXTURES) / "embedding_mask";

// --- output file names -------------------------------------------------------------------------------

TEST(OutputFileStem, KeepsSafeNamesAndReplacesEverythingElse) {
  EXPECT_EQ(output_file_stem("y"), "y");
  EXPECT_EQ(output_file_stem("output.1"), "output.1");
  EXPECT_EQ(output_file_stem("Y_sign-2"), "Y_sign-2");
  EXPECT_EQ(output_file_stem("emb/out"), "emb_out");
  EXPECT_EQ(output_file_stem("/encoder/Add_output_0"), "_encoder_Add_output_0");
  EXPECT_EQ(output_file_stem("onnx::MatMul_12"), "onnx__MatMul_12");
  EXPECT_EQ(output_file_stem("a\\b c\td\n"), "a_b_c_d_");
  EXPECT_EQ(output_file_stem("\xc3\xbc"), "__");  // "ü" in UTF-8: two bytes
}

TEST(OutputFileStem, NeverLeavesTheFolder) {
  EXPECT_EQ(output_file_stem(""), "_");
  EXPECT_EQ(output_file_stem("."), "_");
  EXPECT_EQ(output_file_stem(".."), "_.");
  EXPECT_EQ(output_file_stem("../x"), "_._x");
  EXPECT_EQ(output_file_stem("../../etc/passwd"), "_._.._etc_passwd");
  EXPECT_EQ(output_file_stem(".hidden"), "_hidden");
  for (const std::string name : {"", ".", "..", "../x", "a/../../b", "/abs", "..\\..\\x", ".a/.b"}) {
    const std::string stem = output_file_stem(name);
    EXPECT_EQ(stem.find('/'), std::string::npos) << name;
    EXPECT_NE(stem.front(), '.') << name;
    EXPECT_EQ(fs::path("out") / (stem + ".npy"), (fs::path("out") / (stem + ".npy")).lexically_normal()) << name;
  }
}

TEST(OutputFileStem, CollisionsGetNumbered) {
  EXPECT_EQ(output_file_stems({"a/b", "a_b", "a:b", "a_b_2", "c"}),
            (std::vector<std::string>{"a_b", "a_b_2", "a_b_3", "a_b_2_2", "c"}));
  EXPECT_EQ(output_file_stems({}), std::vector<std::string>{});
}

// --- input checks ------------------------------------------------------------------------------------

// x f32 [batch, 8], ids i64 [batch, seq], mask bool [batch, seq, 1].
Graph three_input_graph() {
  GraphBuilder g;
  const Value x = g.input("x", {"batch", 8});
  const Value ids = g.input("ids", {"batch", "seq"}, DType::kI64);
  const Value mask = g.input("mask", {"batch", "seq", 1}, DType::kBool);
  g.output("y", g.activation("relu", x, Activation::relu()));
  g.output("ids_f", g.cast("ids_f", ids, DType::kF32));
  g.output("mask_f", g.cast("mask_f", mask, DType::kF32));
  return g.build();
}

std::vector<InputFile> good_inputs() {
  return {{"x", "x.npy", NpyDType::kFloat32, Shape{3, 8}},
          {"ids", "ids.npy", NpyDType::kInt64, Shape{3, 5}},
          {"mask", "mask.npy", NpyDType::kBool, Shape{3, 5, 1}}};
}

TEST(CheckInputs, AcceptsMatchingFilesInAnyOrder) {
  const Graph graph = three_input_graph();
  EXPECT_EQ(check_inputs(graph, good_inputs()), "");
  std::vector<InputFile> reordered = good_inputs();
  std::swap(reordered[0], reordered[2]);
  EXPECT_EQ(check_inputs(graph, reordered), "");
}

TEST(CheckInputs, AcceptsTheWideningConversions) {
  const Graph graph = three_input_graph();
  std::vector<InputFile> in = good_inputs();
  in[0].dtype = NpyDType::kFloat64;
  in[1].dtype = NpyDType::kInt32;
  EXPECT_EQ(check_inputs(graph, in), "");
}

TEST(CheckInputs, NamesUnknownAndMissingInputs) {
  const Graph graph = three_input_graph();
  std::vector<InputFile> in = good_inputs();
  in.push_back({"foo", "foo.npy", NpyDType::kFloat32, Shape{1}});
  EXPECT_EQ(check_inputs(graph, in), "unknown input 'foo' (the model's inputs: x, ids, mask)");
  in.pop_back();
  in.erase(in.begin() + 1);
  EXPECT_EQ(check_inputs(graph, in),
            "missing input 'ids' (the model's inputs: x, ids, mask); give --input ids=FILE.npy");
  EXPECT_EQ(check_inputs(graph, {}), "missing input 'x' (the model's inputs: x, ids, mask); give --input x=FILE.npy");
}

TEST(CheckInputs, RefusesOtherDtypes) {
  const Graph graph = three_input_graph();
  const auto with = [](int i, NpyDType t) {
    std::vector<InputFile> in = good_inputs();
    in[static_cast<std::size_t>(i)].dtype = t;
    return in;
  };
  EXPECT_EQ(check_inputs(graph, with(1, NpyDType::kFloat32)),
            "input 'ids': file ids.npy has dtype float32 but the model expects int64 (int64 or int32 files are "
            "accepted)");
  EXPECT_EQ(check_inputs(graph, with(0, NpyDType::kInt64)),
            "input 'x': file x.npy has dtype int64 but the model expects float32 (float32 or float64 files are "
            "accepted)");
  EXPECT_EQ(check_inputs(graph, with(2, NpyDType::kInt64)),
            "input 'mask': file mask.npy has dtype int64 but the model expects bool");
  for (const NpyDType t : {NpyDType::kFloat32, NpyDType::kFloat64, NpyDType::kInt32, NpyDType::kInt64}) {
    EXPECT_NE(check_inputs(graph, with(2, t)), "") << to_string(t);
  }
  for (const NpyDType t : {NpyDType::kInt32, NpyDType::kInt64, NpyDType::kBool}) {
    EXPECT_NE(check_inputs(graph, with(0, t)), "") << to_string(t);
  }
  for (const NpyDType t : {NpyDType::kFloat32, NpyDType::kFloat64, NpyDType::kBool}) {
    EXPECT_NE(check_inputs(graph, with(1, t)), "") << to_string(t);
  }
}

TEST(CheckInputs, ExplainsShapeMismatches) {
  const Graph graph = three_input_graph();
  std::vector<InputFile> in = good_inputs();
  in[0].shape = Shape{3, 8, 1};
  EXPECT_EQ(check_inputs(graph, in),
            "input 'x': file x.npy has shape (3, 8, 1) but the model expects [batch,8] (rank 2)");
  in[0].shape = Shape{};
  EXPECT_EQ(check_inputs(graph, in), "input 'x': file x.npy has shape () but the model expects [batch,8] (rank 2)");
  in[0].shape = Shape{3, 7};
  EXPECT_EQ(check_inputs(graph, in),
            "input 'x': file x.npy has shape (3, 7) but the model expects [batch,8] (dim 1 is 8)");
  in = good_inputs();
  in[2].shape = Shape{3, 4, 1};
  EXPECT_EQ(check_inputs(graph, in),
            "input 'mask': file mask.npy has shape (3, 4, 1) but the model expects [batch,seq,1], and input 'ids' "
            "gives seq = 5");
  in = good_inputs();
  in[1].shape = Shape{2, 5};
  EXPECT_EQ(check_inputs(graph, in),
            "input 'ids': file ids.npy has shape (2, 5) but the model expects [batch,seq], and input 'x' gives "
            "batch = 3");
}

TEST(CheckInputs, StaticGraphChecksFixedDims) {
  GraphBuilder g;
  g.output("y", g.activation("relu", g.input("v", {5}), Activation::relu()));
  const Graph graph = g.build();
  EXPECT_EQ(check_inputs(graph, {{"v", "v.npy", NpyDType::kFloat32, Shape{5}}}), "");
  EXPECT_EQ(check_inputs(graph, {{"v", "v.npy", NpyDType::kFloat32, Shape{6}}}),
            "input 'v': file v.npy has shape (6,) but the model expects [5] (dim 0 is 5)");
}

// --- the tool ----------------------------------------------------------------------------------------

using quarks::test::read_text;
using quarks::test::shell_quote;
using quarks::test::ToolResult;

// A fresh folder per test, removed afterwards.
class QuarksRun : public quarks::test::ToolTest {
 protected:
  // Runs quarks-run with `args`, capturing stdout and stderr.
  ToolResult run(const std::vector<std::string>& args) const { return run_tool(QUARKS_RUN_EXE, args); }

  // Writes a .npy file of any dtype NumPy's way (version 1.0, C order), for inputs the fixtures lack.
  fs::path write_raw(const std::string& name, const std::string& descr, const std::string& shape, const void* data,
                     std::size_t bytes) const {
    std::string header = "{'descr': '" + descr + "', 'fortran_order': False, 'shape': " + shape + ", }";
    header.append((64 - (10 + header.size() + 1) % 64) % 64, ' ');
    header += '\n';
    const fs::path path = tmp_ / name;
    std::ofstream f(path, std::ios::binary);
    f.write("\x93NUMPY\x01\x00", 8);
    const char length[2] = {static_cast<char>(header.size() & 0xff), static_cast<char>(header.size() >> 8)};
    f.write(length, 2);
    f.write(header.data(), static_cast<std::streamsize>(header.size()));
    f.write(static_cast<const char*>(data), static_cast<std::streamsize>(bytes));
    return path;
  }
};

// --input NAME=FILE for every .npy in `dir`, sorted by name.
std::vector<std::string> input_args(const fs::path& dir) {
  std::vector<std::string> files;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.path().extension() == ".npy") files.push_back(e.path().string());
  }
  std::sort(files.begin(), files.end());
  std::vector<std::string> args;
  for (const std::string& f : files) {
    args.push_back("--input");
    args.push_back(fs::path(f).stem().string() + "=" + f);
  }
  return args;
}

std::vector<std::string> concat(std::vector<std::string> a, const std::vector<std::string>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

std::vector<std::string> file_names(const fs::path& dir) {
  std::vector<std::string> names;
  if (!fs::exists(dir)) return names;
  for (const auto& e : fs::directory_iterator(dir)) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

// Every file in `expected_dir` must be in `actual_dir` with the same dtype and shape, within the
// tolerance for float32 and exactly equal otherwise; `actual_dir` must hold nothing else.
void expect_same_outputs(const fs::path& actual_dir, const fs::path& expected_dir, double tolerance) {
  ASSERT_EQ(file_names(actual_dir), file_names(expected_dir));
  for (const std::string& name : file_names(expected_dir)) {
    SCOPED_TRACE(name);
    const NpyArray expected = read_npy((expected_dir / name).string());
    const NpyArray actual = read_npy((actual_dir / name).string());
    ASSERT_EQ(to_string(actual.dtype), to_string(expected.dtype));
    ASSERT_EQ(actual.shape, expected.shape);
    if (expected.dtype == NpyDType::kFloat32) {
      EXPECT_LE(quarks::testing::scaled_error(to_tensor(actual, name), to_tensor(expected, name)), tolerance);
    } else {
      EXPECT_TRUE(actual.data == expected.data);
    }
  }
}

class QuarksRunFixtures : public QuarksRun, public ::testing::WithParamInterface<std::string> {};

std::vector<std::string> onnx_cases() {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(kModels)) {
    if (fs::exists(e.path() / "model.onnx")) names.push_back(e.path().filename().string());
  }
  std::sort(names.begin(), names.end());
  return names;
}

TEST_P(QuarksRunFixtures, WritesTheReferenceOutputs) {
  const fs::path dir = kModels / GetParam();
  for (const std::string set : {"", "_alt"}) {
    if (!fs::exists(dir / ("inputs" + set))) continue;
    SCOPED_TRACE("inputs" + set);
    const fs::path out = tmp_ / ("out" + set);
    const ToolResult r = run(concat({(dir / "model.onnx").string(), "--output-dir", out.string(), "--threads", "2"},
                                    input_args(dir / ("inputs" + set))));
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(r.err, "");
    expect_same_outputs(out, dir / ("outputs" + set), kScaledTolerance);
  }
}

INSTANTIATE_TEST_SUITE_P(OnnxModels, QuarksRunFixtures, ::testing::ValuesIn(onnx_cases()),
                         [](const ::testing::TestParamInfo<std::string>& p) { return p.param; });

TEST_F(QuarksRun, IntegerAndBoolInputsAndOutputs) {
  const fs::path out = tmp_ / "out";
  const ToolResult r = run(concat({(kEmbedding / "model.onnx").string(), "-o", out.string(), "--threads", "1"},
                                  input_args(kEmbedding / "inputs")));
  ASSERT_EQ(r.status, 0) << r.err;
  expect_same_outputs(out, kEmbedding / "outputs", 0.0);
  // One line per output, in the model's order, naming where a renamed output went.
  EXPECT_EQ(r.out, "emb/out: float32 [2,5,4] -> " + (out / "emb_out.npy").string() + "\n../is_pad: bool [2,5] -> " +
                       (out / "_._is_pad.npy").string() + "\ntoken:type: int64 [2,5] -> " +
                       (out / "token_type.npy").string() + "\n");
  EXPECT_FALSE(fs::exists(tmp_ / "is_pad.npy"));
}

TEST_F(QuarksRun, Int32InputIsWidenedToInt64) {
  const NpyArray ids = read_npy((kEmbedding / "inputs" / "ids.npy").string());
  std::vector<std::int32_t> narrow(static_cast<std::size_t>(ids.shape.numel()));
  for (std::size_t i = 0; i < narrow.size(); ++i) {
    std::int64_t v;
    std::memcpy(&v, ids.data.data() + i * 8, 8);
    narrow[i] = static_cast<std::int32_t>(v);
  }
  const fs::path ids32 = write_raw("ids32.npy", "<i4", "(2, 5)", narrow.data(), narrow.size() * 4);
  const fs::path out = tmp_ / "out";
  const ToolResult r = run({(kEmbedding / "model.onnx").string(), "--input", "ids=" + ids32.string(), "--input",
                            "mask=" + (kEmbedding / "inputs" / "mask.npy").string(), "--output-dir", out.string()});
  ASSERT_EQ(r.status, 0) << r.err;
  expect_same_outputs(out, kEmbedding / "outputs", 0.0);
}

TEST_F(QuarksRun, Float64InputIsRoundedToFloat32) {
  const NpyArray x = read_npy((kModels / "gemm" / "inputs" / "x.npy").string());
  const Tensor xt = to_tensor(x, "x");
  std::vector<double> wide(xt.f32(), xt.f32() + xt.numel());
  const fs::path x64 = write_raw("x64.npy", "<f8", "(4, 32)", wide.data(), wide.size() * 8);
  const fs::path out = tmp_ / "out";
  const ToolResult r =
      run({(kModels / "gemm" / "model.onnx").string(), "--input", "x=" + x64.string(), "--output-dir", out.string()});
  ASSERT_EQ(r.status, 0) << r.err;
  expect_same_outputs(out, kModels / "gemm" / "outputs", kScaledTolerance);
}

TEST_F(QuarksRun, Float64BeyondFloat32IsAnError) {
  std::vector<double> wide(4 * 32, 0.5);
  wide[7] = 1e300;
  const fs::path x64 = write_raw("x64.npy", "<f8", "(4, 32)", wide.data(), wide.size() * 8);
  const ToolResult r = run({(kModels / "gemm" / "model.onnx").string(), "--input", "x=" + x64.string(), "--output-dir",
                            (tmp_ / "out").string()});
  EXPECT_EQ(r.status, 1);
  EXPECT_EQ(r.err, "quarks-run: error: input 'x': " + x64.string() +
                       ": float64 element 7 = 1.0000000000000001e+300 is outside the float32 range\n");
}

TEST_F(QuarksRun, PrecisionReachesTheCompiler) {
  const fs::path dir = kModels / "gemm";
  const auto args = input_args(dir / "inputs");
  const ToolResult f32 = run(concat({(dir / "model.onnx").string(), "-o", (tmp_ / "f32").string()}, args));
  const ToolResult bf16 =
      run(concat({(dir / "model.onnx").string(), "-o", (tmp_ / "bf16").string(), "--precision", "bf16"}, args));
  ASSERT_EQ(f32.status, 0) << f32.err;
  if (bf16.status == 0) {
    // bf16 keeps 8 significant bits: close to the reference, but not the f32 result.
    expect_same_outputs(tmp_ / "bf16", dir / "outputs", 2e-2);
    EXPECT_FALSE(read_npy((tmp_ / "bf16" / "y.npy").string()).data == read_npy((tmp_ / "f32" / "y.npy").string()).data);
  } else {
    // A CPU without bf16 matmuls: compile refuses, which it only does when asked for bf16.
    EXPECT_EQ(bf16.status, 1);
    EXPECT_NE(bf16.err.find("bf16 precision is not available on this CPU"), std::string::npos) << bf16.err;
    EXPECT_EQ(std::count(bf16.err.begin(), bf16.err.end(), '\n'), 1) << bf16.err;
  }
}

TEST_F(QuarksRun, CreatesNestedOutputDirectory) {
  const fs::path out = tmp_ / "a" / "b" / "c";
  const ToolResult r = run(concat({(kModels / "gemm" / "model.onnx").string(), "--output-dir", out.string()},
                                  input_args(kModels / "gemm" / "inputs")));
  ASSERT_EQ(r.status, 0) << r.err;
  expect_same_outputs(out, kModels / "gemm" / "outputs", kScaledTolerance);
}

TEST_F(QuarksRun, OutputDirectoryThatIsAFileIsAnError) {
  const fs::path out = tmp_ / "file";
  std::ofstream(out) << "not a folder";
  const ToolResult r = run(concat({(kModels / "gemm" / "model.onnx").string(), "--output-dir", out.string()},
                                  input_args(kModels / "gemm" / "inputs")));
  EXPECT_EQ(r.status, 1);
  EXPECT_EQ(r.err.rfind("quarks-run: error: cannot create output directory '" + out.string() + "'", 0), 0u) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
}

TEST_F(QuarksRun, PrintGraphWithoutInputsOnlyPrints) {
  const ToolResult r = run({(kModels / "quarks_mixed" / "model.onnx").string(), "--print-graph"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.err, "");
  // After fusion: the two MatMul+Add pairs and the OutputGate become one gated dense node, and the
  // ThresholdGate a multiplex (step activation of y - threshold).
  EXPECT_NE(r.out.find("= gated_dense[gelu*identity](x,"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("= multiplex("), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("= matmul("), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("= binary"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("batch"), std::string::npos) << "shapes stay symbolic:\n" << r.out;
  EXPECT_EQ(file_names(tmp_), (std::vector<std::string>{"stderr.txt", "stdout.txt"}));
}

TEST_F(QuarksRun, PrintGraphWithInputsAlsoRuns) {
  const fs::path dir = kModels / "quarks_mixed";
  const fs::path out = tmp_ / "out";
  const ToolResult r =
      run(concat({(dir / "model.onnx").string(), "--print-graph", "-o", out.string()}, input_args(dir / "inputs")));
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("gated_dense"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("batch"), std::string::npos) << "shapes come from the files:\n" << r.out;
  EXPECT_NE(r.out.find("\ny_sign: float32 [3,8] -> " + (out / "y_sign.npy").string() + "\n"), std::string::npos)
      << r.out;
  expect_same_outputs(out, dir / "outputs", kScaledTolerance);
}

TEST_F(QuarksRun, UnknownInput) {
  const fs::path x = kModels / "gemm" / "inputs" / "x.npy";
  const ToolResult r = run({(kModels / "gemm" / "model.onnx").string(), "--input", "x=" + x.string(), "--input",
                            "foo=" + x.string(), "-o", (tmp_ / "out").string()});
  EXPECT_EQ(r.status, 1);
  EXPECT_EQ(r.err, "quarks-run: error: unknown input 'foo' (the model's inputs: x)\n");
  EXPECT_FALSE(fs::exists(tmp_ / "out"));
}

TEST_F(QuarksRun, MissingInput) {
  const ToolResult r = run({(kEmbedding / "model.onnx").string(), "--input",
                            "ids=" + (kEmbedding / "inputs" / "ids.npy").string(), "-o", (tmp_ / "out").string()});
  EXPECT_EQ(r.status, 1);
  EXPECT_EQ(r.err,
            "quarks-run: error: missing input 'mask' (the model's inputs: ids, mask); give --input mask=FILE.npy\n");
  const ToolResult none = run({(kEmbedding / "model.onnx").string(), "-o", (tmp_ / "out").string()});
  EXPECT_EQ(none.status, 1);
  EXPECT_EQ(none.err,
            "quarks-run: error: missing input 'ids' (the model's inputs: ids, mask); give --input ids=FILE.npy\n");
  EXPECT_FALSE(fs::exists(tmp_ / "out"));
}

TEST_F(QuarksRun, WrongDtype) {
  const fs::path floats = kModels / "gemm" / "inputs" / "x.npy";
  const fs::path ids = kEmbedding / "inputs" / "ids.npy", mask = kEmbedding / "inputs" / "mask.npy";
  const ToolResult r = run({(kEmbedding / "model.onnx").string(), "--input", "ids=" + floats.string(), "--input",
                            "mask=" + mask.string(), "-o", (tmp_ / "out").string()});
  EXPECT_EQ(r.status, 1);
  EXPECT_EQ(r.err, "quarks-run: error: input 'ids': file " + floats.string() +
                       " has dtype float32 but the model expects int64 (int64 or int32 files are accepted)\n");
  const ToolResult m = run({(kEmbedding / "model.onnx").string(), "--input", "ids=" + ids.string(), "--input",
                            "mask=" + ids.string(), "-o", (tmp_ / "out").string()});
  EXPECT_EQ(m.status, 1);
  EXPECT_EQ(m.err,
            "quarks-run: error: input 'mask': file " + ids.string() + " has dtype int64 but the model expects bool\n");
  const ToolResult x =
      run({(kModels / "gemm" / "model.onnx").string(), "--input", "x=" + mask.string(), "-o", (tmp_ / "out").string()});
  EXPECT_EQ(x.status, 1);
  EXPECT_EQ(x.err, "quarks-run: error: input 'x': file " + mask.string() +
                       " has dtype bool but the model expects float32 (float32 or float64 files are accepted)\n");
  EXPECT_FALSE(fs::exists(tmp_ / "out"));
}

TEST_F(QuarksRun, WrongShape) {
  const std::vector<float> values(4 * 31, 0.25f);
  const fs::path narrow = write_raw("narrow.npy", "<f4", "(4, 31)", values.data(), values.size() * 4);
  const fs::path flat = write_raw("flat.npy", "<f4", "(124,)", values.data(), values.size() * 4);
  const std::string gemm = (kModels / "gemm" / "model.onnx").string();
  const ToolResult r = run({gemm, "--input", "x=" + narrow.string(), "-o", (tmp_ / "out").string()});
  EXPECT_EQ(r.status, 1);
  EXPECT_EQ(r.err, "quarks-run: error: input 'x': file " + narrow.string() +
                       " has shape (4, 31) but the model expects [batch,32] (dim 1 is 32)\n");
  const ToolResult f = run({gemm, "--input", "x=" + flat.string(), "-o", (tmp_ / "out").string()});
  EXPECT_EQ(f.status, 1);
  EXPECT_EQ(f.err, "quarks-run: error: input 'x': file " + flat.string() +
                       " has shape (124,) but the model expects [batch,32] (rank 2)\n");
  EXPECT_FALSE(fs::exists(tmp_ / "out"));
}

TEST_F(QuarksRun, InputsDisagreeOnASymbolicDim) {
  const bool mask_values[2 * 4] = {true, false, true, true, false, true, true, false};
  const fs::path mask = write_raw("mask.npy", "|b1", "(2, 4, 1)", mask_values, sizeof mask_values);
  const ToolResult r =
      run({(kEmbedding / "model.onnx").string(), "--input", "ids=" + (kEmbedding / "inputs" / "ids.npy").string(),
           "--input", "mask=" + mask.string(), "-o", (tmp_ / "out").string()});
  EXPECT_EQ(r.status, 1);
  EXPECT_EQ(r.err, "quarks-run: error: input 'mask': file " + mask.string() +
                       " has shape (2, 4, 1) but the model expects [batch,seq,1], and input 'ids' gives seq = 5\n");
}

TEST_F(QuarksRun, UnreadableInputFile) {
  const std::string gemm = (kModels / "gemm" / "model.onnx").string();
  const fs::path missing = tmp_ / "missing.npy";
  const ToolResult r = run({gemm, "--input", "x=" + missing.string(), "-o", (tmp_ / "out").string()});
  EXPECT_EQ(r.status, 1);
  EXPECT_EQ(r.err, "quarks-run: error: input 'x': " + missing.string() + ": no such file\n");

  const fs::path text = tmp_ / "text.npy";
  std::ofstream(text) << "x,y\n1,2\n";
  const ToolResult t = run({gemm, "--input", "x=" + text.string(), "-o", (tmp_ / "out").string()});
  EXPECT_EQ(t.status, 1);
  EXPECT_EQ(t.err, "quarks-run: error: input 'x': " + text.string() +
                       ": not a .npy file (it does not start with \"\\x93NUMPY\")\n");

  const ToolResult d = run({gemm, "--input", "x=" + tmp_.string(), "-o", (tmp_ / "out").string()});
  EXPECT_EQ(d.status, 1);
  EXPECT_EQ(d.err, "quarks-run: error: input 'x': " + tmp_.string() + ": is a directory, not a .npy file\n");
  EXPECT_FALSE(fs::exists(tmp_ / "out"));
}

TEST_F(QuarksRun, UnreadableModel) {
  const fs::path x = kModels / "gemm" / "inputs" / "x.npy";
  for (const bool exists : {false, true}) {
    const fs::path model = tmp_ / "model.onnx";
    if (exists) std::ofstream(model) << "this is not a protobuf";
    const ToolResult r = run({model.string(), "--input", "x=" + x.string(), "-o", (tmp_ / "out").string()});
    EXPECT_EQ(r.status, 1) << exists;
    EXPECT_EQ(r.err.rfind("quarks-run: error: ", 0), 0u) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    EXPECT_NE(r.err.find("model.onnx"), std::string::npos) << r.err;
  }
}

TEST_F(QuarksRun, UsageErrorsExitWith2) {
  const std::string gemm = (kModels / "gemm" / "model.onnx").string();
  const std::string x = "x=" + (kModels / "gemm" / "inputs" / "x.npy").string();
  const std::string out = (tmp_ / "out").string();
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{}, "model is required"},
      {{"--input", x, "-o", out}, "model is required"},
      {{gemm, "--input", x, "-o", out, "--nope"}, "--nope"},
      {{gemm, "--input", "x", "-o", out}, "--input: 'x' is not NAME=FILE.npy"},
      {{gemm, "--input", "=x.npy", "-o", out}, "has no input name before '='"},
      {{gemm, "--input", "x=", "-o", out}, "has no file after '='"},
      {{gemm, "--input", x, "--input", x, "-o", out}, "input 'x' is given more than once"},
      {{gemm, "--input", x}, "--output-dir is required to run the model"},
      {{gemm, "--input", x, "-o", out, "--precision", "f16"}, "--precision: f16 not in {f32,bf16}"},
      {{gemm, "--input", x, "-o", out, "--threads", "-1"}, "--threads: '-1' is not a thread count"},
      {{gemm, "--input", x, "-o", out, "--threads", "two"}, "--threads: 'two' is not a thread count"},
      {{gemm, "--input", x, "-o", out, "--threads", "2x"}, "--threads: '2x' is not a thread count"},
      {{gemm, gemm, "--input", x, "-o", out}, gemm},
      {{gemm, "--input", x, x, "-o", out}, x},
  };
  for (const auto& [args, needle] : cases) {
    std::string shown;
    for (const std::string& a : args) shown += a + " ";
    const ToolResult r = run(args);
    EXPECT_EQ(r.status, 2) << shown << "\n" << r.err;
    EXPECT_EQ(r.err.rfind("quarks-run: error: ", 0), 0u) << shown << "\n" << r.err;
    EXPECT_NE(r.err.find(needle), std::string::npos) << shown << "\n" << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << shown << "\n" << r.err;
    EXPECT_EQ(r.out, "") << shown;
  }
  EXPECT_FALSE(fs::exists(tmp_ / "out"));
}

TEST_F(QuarksRun, HelpDocumentsInputsOutputsAndExitStatus) {
  const ToolResult r = run({"--help"});
  EXPECT_EQ(r.status, 0);
  for (const std::string needle :
       {"--input", "--output-dir", "--threads", "--precision", "--max-arena-mb", "--print-graph",
        "float64 (rounded to nearest", "int32", "become '_'", "Exit status"}) {
    EXPECT_NE(r.out.find(needle), std::string::npos) << needle << "\n" << r.out;
  }
  const ToolResult v = run({"--version"});
  EXPECT_EQ(v.status, 0);
  EXPECT_EQ(v.out, std::string(quarks::version()) + "\n");
}

// --- hostile model files, end to end --------------------------------------------------------------------
// The importer's own tests (tests/onnx/onnx_import_errors_test.cc) check each error at the API level;
// these check what a user of quarks-run sees: exit status 1, one line naming the problem, no crash
// (std::terminate, abort, a sanitizer report), no hang and no absurd allocation (outside the sanitizer
// builds the tool runs under a 1 GiB address-space limit, and always under a time limit).

#if defined(QUARKS_ADDRESS_SANITIZER) || defined(QUARKS_THREAD_SANITIZER)
constexpr bool kSanitized = true;  // the sanitizers reserve terabytes of address space: no ulimit -v
#else
constexpr bool kSanitized = false;
#endif
constexpr int kTimeoutSeconds = 30;     // `timeout` kills a hung tool (status 124)
constexpr double kHostileSeconds = 15;  // a healthy run takes well under a second (a few under sanitizers)

using quarks::testing::add_initializer_model;
using quarks::testing::f32_tensor;
using quarks::testing::i64_tensor;
using quarks::testing::OnnxModel;
using quarks::testing::set_attr_int;

// What a crash or a sanitizer leaves on stderr.
void expect_no_crash_text(const std::string& err) {
  for (const std::string bad : {"terminate", "Aborted", "Sanitizer", "runtime error", "Segmentation", "core dumped"}) {
    EXPECT_EQ(err.find(bad), std::string::npos) << bad << " in: " << err;
  }
}

class QuarksRunHostile : public QuarksRun {
 protected:
  // quarks-run under `timeout` (status 124 when killed) and, outside sanitizer builds, `ulimit -v`.
  ToolResult run_limited(const std::vector<std::string>& args, double* seconds = nullptr) const {
    const std::string env =
        std::string(kSanitized ? "" : "ulimit -v 1048576 && ") + "timeout " + std::to_string(kTimeoutSeconds) + " ";
    const auto start = std::chrono::steady_clock::now();
    ToolResult r = run_tool(QUARKS_RUN_EXE, args, env);
    if (seconds) *seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    return r;
  }

  // An error run: status 1, one "quarks-run: error: " line holding every fragment, nothing on stdout,
  // no output file, within the time bound.
  void expect_error(const std::vector<std::string>& args, const std::vector<std::string>& fragments) const {
    double seconds = 0;
    const ToolResult r = run_limited(concat(args, {"-o", (tmp_ / "out").string(), "--threads", "2"}), &seconds);
    EXPECT_EQ(r.status, 1) << r.err;
    EXPECT_EQ(r.err.rfind("quarks-run: error: ", 0), 0u) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    for (const std::string& f : fragments) EXPECT_NE(r.err.find(f), std::string::npos) << f << " not in: " << r.err;
    expect_no_crash_text(r.err);
    EXPECT_EQ(r.out, "");
    EXPECT_LT(seconds, kHostileSeconds);
    // Nothing written (a run-time error comes after the folder is made).
    EXPECT_TRUE(!fs::exists(tmp_ / "out") || fs::is_empty(tmp_ / "out"));
  }

  // A float32 .npy of `shape` (Python tuple text) holding `count` values.
  fs::path write_f32(const std::string& name, const std::string& shape, std::size_t count) const {
    std::vector<float> v(count);
    for (std::size_t i = 0; i < count; ++i) v[i] = 0.25f * static_cast<float>(i % 7) - 0.5f;
    return write_raw(name, "<f4", shape, v.data(), v.size() * 4);
  }
};

// w [2,3] as external data with these entries.
onnx::TensorProto external_w(const std::vector<std::pair<std::string, std::string>>& entries) {
  onnx::TensorProto w;
  w.set_name("w");
  w.set_data_type(onnx::TensorProto::FLOAT);
  w.add_dims(2);
  w.add_dims(3);
  w.set_data_location(onnx::TensorProto::EXTERNAL);
  for (const auto& [k, v] : entries) {
    auto* e = w.add_external_data();
    e->set_key(k);
    e->set_value(v);
  }
  return w;
}

struct HostileModel {
  std::string name;
  // The bytes of model.onnx, given the test's folder (the model lies in <folder>/model/).
  std::function<std::string(const fs::path& folder)> bytes;
  std::string input_shape;  // x.npy's shape, e.g. "(2, 3)"
  std::vector<std::string> fragments;
};

std::vector<HostileModel> hostile_models() {
  const auto bytes_of = [](OnnxModel m) { return [m](const fs::path&) { return m.bytes(); }; };
  const std::int64_t k2_20 = std::int64_t{1} << 20, k2_40 = std::int64_t{1} << 40;
  std::vector<HostileModel> cases;

  OnnxModel valid = add_initializer_model(f32_tensor("w", {2, 3}, {1, 2, 3, 4, 5, 6}));
  const std::string valid_bytes = valid.bytes();
  cases.push_back({"truncated",
                   [valid_bytes](const fs::path&) { return valid_bytes.substr(0, valid_bytes.size() / 2); },
                   "(2, 3)",
                   {"model.onnx", "not a valid ONNX model: the protobuf does not parse"}});
  cases.push_back({"random_bytes",
                   [](const fs::path&) {
                     std::mt19937 rng(99);
                     std::string b(4096, '\0');
                     for (char& c : b) c = static_cast<char>(rng());
                     return b;
                   },
                   "(2, 3)",
                   {"model.onnx", "not a valid ONNX model"}});
  cases.push_back({"empty_file",
                   [](const fs::path&) { return std::string(); },
                   "(2, 3)",
                   {"model.onnx", "not a valid ONNX model: it has no graph"}});

  // Initializers whose dims disagree with their data, or are absurd: refused before any allocation.
  cases.push_back({"raw_data_short",
                   bytes_of(add_initializer_model(f32_tensor("w", {2, 3}, {1, 2, 3, 4, 5}))),
                   "(2, 3)",
                   {"initializer 'w'", "raw_data has 20 bytes but dims [2,3] of FLOAT need 24"}});
  cases.push_back({"dims_2e40_elements",
                   bytes_of(add_initializer_model(f32_tensor("w", {k2_20, k2_20}, {1.0f}))),
                   "(2, 3)",
                   {"initializer 'w'", "raw_data has 4 bytes but dims [1048576,1048576] of FLOAT need"}});
  cases.push_back({"dims_overflowing_int64",
                   bytes_of(add_initializer_model(f32_tensor("w", {k2_40, k2_40}, {1.0f}))),
                   "(2, 3)",
                   {"initializer 'w'", "too many elements"}});
  cases.push_back({"typed_data_short",
                   bytes_of(add_initializer_model(i64_tensor("w", {k2_20, k2_20}, {1}))),
                   "(2, 3)",
                   {"initializer 'w'", "int64_data has 1 values"}});

  // External data that would be read from outside the model's folder. outside.bin next to the folder
  // is a FIFO: had the tool opened it, it would block until the time limit.
  cases.push_back(
      {"external_parent",
       bytes_of(add_initializer_model(external_w({{"location", "../outside.bin"}}))),
       "(2, 3)",
       {"model.onnx", "initializer 'w'", "external data location '../outside.bin' leaves the model's folder"}});
  cases.push_back(
      {"external_absolute",
       [](const fs::path& folder) {
         return add_initializer_model(external_w({{"location", (folder / "outside.bin").string()}})).bytes();
       },
       "(2, 3)",
       {"initializer 'w'", "is absolute"}});
  cases.push_back({"external_symlink",
                   [](const fs::path& folder) {
                     fs::create_symlink(folder / "outside.bin", folder / "model" / "link.bin");
                     return add_initializer_model(external_w({{"location", "link.bin"}})).bytes();
                   },
                   "(2, 3)",
                   {"initializer 'w'", "'link.bin' leaves the model's folder"}});
  cases.push_back({"external_range_past_the_file",
                   [](const fs::path& folder) {
                     std::ofstream(folder / "model" / "w.bin", std::ios::binary) << std::string(24, '\0');
                     return add_initializer_model(external_w({{"location", "w.bin"}, {"offset", "16"}})).bytes();
                   },
                   "(2, 3)",
                   {"initializer 'w'", "external data has 8 bytes, the dims need 24"}});
  cases.push_back({"external_missing",
                   bytes_of(add_initializer_model(external_w({{"location", "nope.bin"}}))),
                   "(2, 3)",
                   {"initializer 'w'", "nope.bin"}});

  // Graph structure.
  OnnxModel cycle;
  cycle.input("x", std::vector<std::int64_t>{2, 3});
  cycle.node("Add", "A", {"x", "b"}, {"a"});
  cycle.node("Relu", "B", {"a"}, {"b"});
  cycle.output("a");
  cases.push_back(
      {"cycle", bytes_of(cycle), "(2, 3)", {"the graph has a cycle through", "node 'A' (Add", "node 'B' (Relu"}});
  OnnxModel undefined;
  undefined.input("x", std::vector<std::int64_t>{2, 3});
  undefined.node("Add", "add", {"x", "nope"}, {"y"});
  undefined.output("y");
  cases.push_back({"undefined_name",
                   bytes_of(undefined),
                   "(2, 3)",
                   {"node 'add' (Add", "input 'nope' is not defined by any node, input or initializer"}});
  OnnxModel twice;
  twice.input("x", std::vector<std::int64_t>{2, 3});
  twice.node("Relu", "first", {"x"}, {"y"});
  twice.node("Neg", "second", {"x"}, {"y"});
  twice.output("y");
  cases.push_back({"duplicate_output",
                   bytes_of(twice),
                   "(2, 3)",
                   {"node 'second' (Neg", "output 'y' is also produced by node 'first' (Relu"}});
  OnnxModel dup_init = add_initializer_model(f32_tensor("w", {2, 3}, std::vector<float>(6, 1.0f)));
  dup_init.initializer(f32_tensor("w", {2, 3}, std::vector<float>(6, 2.0f)));
  cases.push_back({"duplicate_initializer", bytes_of(dup_init), "(2, 3)", {"initializer 'w' is defined twice"}});
  OnnxModel dup_input = add_initializer_model(f32_tensor("w", {2, 3}, std::vector<float>(6, 1.0f)));
  dup_input.input("x", std::vector<std::int64_t>{2, 3});
  cases.push_back({"duplicate_input", bytes_of(dup_input), "(2, 3)", {"graph input 'x' is declared twice"}});
  OnnxModel unsupported;
  unsupported.input("x", std::vector<std::int64_t>{2, 3});
  unsupported.node("FooBar", "weird", {"x"}, {"y"});
  unsupported.output("y");
  cases.push_back({"unsupported_op",
                   bytes_of(unsupported),
                   "(2, 3)",
                   {"node 'weird' (FooBar", "op 'FooBar' is not supported in domain 'ai.onnx'"}});

  // Shapes: declared in the model, or coming from the input file into a model with symbolic dims.
  OnnxModel mm;
  mm.input("x", std::vector<std::int64_t>{2, 3});
  mm.initializer(f32_tensor("w", {4, 5}, std::vector<float>(20, 1.0f)));
  mm.node("MatMul", "mm", {"x", "w"}, {"y"});
  mm.output("y");
  cases.push_back(
      {"matmul_shapes", bytes_of(mm), "(2, 3)", {"node 'mm' (MatMul", "[2,3]", "the weight 'w' expects K=4"}});
  OnnxModel sym;
  sym.input("x", std::vector<std::int64_t>{-1, -1});
  sym.initializer(f32_tensor("w", {3, 5}, std::vector<float>(15, 1.0f)));
  sym.node("MatMul", "mm", {"x", "w"}, {"y"});
  sym.output("y");
  cases.push_back({"input_file_vs_weight", bytes_of(sym), "(2, 4)", {"node 'mm' (MatMul", "[2,4]", "K=3"}});
  OnnxModel reshape;
  reshape.input("x", std::vector<std::int64_t>{2, 3});
  reshape.initializer(i64_tensor("shape", {2}, {4, 2}));
  reshape.node("Reshape", "rs", {"x", "shape"}, {"y"});
  reshape.output("y");
  cases.push_back({"reshape_count", bytes_of(reshape), "(2, 3)", {"node 'rs' (Reshape", "[2,3]", "[4,2]"}});

  // Sizes that would allocate terabytes if taken at their word.
  OnnxModel expand;
  expand.input("x", std::vector<std::int64_t>{2, 3});
  expand.initializer(f32_tensor("one", {1}, {1.0f}));
  expand.initializer(i64_tensor("shape", {2}, {k2_20, k2_20}));
  expand.node("Expand", "ex", {"one", "shape"}, {"big"});
  set_attr_int(expand.node("ReduceSum", "sum", {"big"}, {"s"}), "keepdims", 0);
  expand.node("Add", "add", {"x", "s"}, {"y"});
  expand.output("y");
  cases.push_back({"expand_to_2e40", bytes_of(expand), "(2, 3)", {"node 'ex' (Expand", "would take more than"}});
  OnnxModel gather;
  gather.input("x", std::vector<std::int64_t>{2, 3});
  gather.initializer(i64_tensor("idx", {2}, {0, 5}));
  gather.node("Gather", "g", {"x", "idx"}, {"y"});
  gather.output("y");
  cases.push_back(
      {"gather_index_out_of_range", bytes_of(gather), "(2, 3)", {"node 'g' (gather)", "index 5", "out of range"}});
  return cases;
}

void PrintTo(const HostileModel& c, std::ostream* os) { *os << c.name; }

class QuarksRunHostileModels : public QuarksRunHostile, public ::testing::WithParamInterface<HostileModel> {};

TEST_P(QuarksRunHostileModels, ExitsWithStatus1AndAMessageNamingTheProblem) {
  const HostileModel& c = GetParam();
  fs::create_directory(tmp_ / "model");
  ASSERT_EQ(mkfifo((tmp_ / "outside.bin").c_str(), 0600), 0) << std::strerror(errno);
  const fs::path model = tmp_ / "model" / "model.onnx";
  const std::string bytes = c.bytes(tmp_);
  std::ofstream(model, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  // input_shape is "(a, b)".
  const int a = std::stoi(c.input_shape.substr(1)), b = std::stoi(c.input_shape.substr(c.input_shape.find(',') + 1));
  const fs::path x = write_f32("x.npy", c.input_shape, static_cast<std::size_t>(a * b));
  expect_error({model.string(), "--input", "x=" + x.string()}, c.fragments);
}

INSTANTIATE_TEST_SUITE_P(Cases, QuarksRunHostileModels, ::testing::ValuesIn(hostile_models()),
                         [](const ::testing::TestParamInfo<HostileModel>& p) { return p.param.name; });

// Byte flips anywhere in a valid model (with an initializer, a dense product and a softmax): each is
// either still a model that runs (a flip inside the weights) or exit status 1 with one line; never a
// crash or a hang. Random byte strings: always status 1.
TEST_F(QuarksRunHostile, ByteFlippedAndRandomModelsNeverCrash) {
  OnnxModel m;
  m.input("x", std::vector<std::int64_t>{2, 3});
  m.initializer(f32_tensor("w", {3, 4}, {1, -2, 3, -4, 5, -6, 7, -8, 9, -10, 11, -12}));
  m.node("MatMul", "mm", {"x", "w"}, {"h"});
  m.node("Softmax", "sm", {"h"}, {"y"});
  m.output("y");
  const std::string good = m.bytes();
  const fs::path x = write_f32("x.npy", "(2, 3)", 6);
  const fs::path model = tmp_ / "model.onnx";
  std::mt19937 rng(5);
  int ran = 0, refused = 0;
  constexpr int kFlips = 40;
  for (int i = 0; i < kFlips + 4; ++i) {
    std::string bytes = good;
    if (i < kFlips) {
      const std::size_t at = static_cast<std::size_t>(i) * bytes.size() / kFlips;
      bytes[at] = static_cast<char>(bytes[at] ^ static_cast<char>(1 + rng() % 255));
    } else {
      bytes.assign(1 + rng() % 512, '\0');
      for (char& c : bytes) c = static_cast<char>(rng());
    }
    std::ofstream(model, std::ios::binary | std::ios::trunc).write(bytes.data(), std::streamsize(bytes.size()));
    double seconds = 0;
    const ToolResult r = run_limited(
        {model.string(), "--input", "x=" + x.string(), "-o", (tmp_ / "out").string(), "--threads", "1"}, &seconds);
    SCOPED_TRACE(i < kFlips ? "flip " + std::to_string(i) : "random bytes " + std::to_string(i));
    EXPECT_TRUE(r.status == 0 || r.status == 1) << r.status << " " << r.err;
    if (i >= kFlips) {
      EXPECT_EQ(r.status, 1);
    }
    if (r.status == 1) {
      EXPECT_EQ(r.err.rfind("quarks-run: error: ", 0), 0u) << r.err;
      EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    }
    expect_no_crash_text(r.err);
    EXPECT_LT(seconds, kHostileSeconds);
    (r.status == 0 ? ran : refused)++;
  }
  EXPECT_GT(refused, 4);  // the flips in the structure are caught
}

// Garbage, truncated and lying .npy inputs: status 1 and a message naming the input and the file.
TEST_F(QuarksRunHostile, LyingNpyInputsNameTheFile) {
  const std::string gemm = (kModels / "gemm" / "model.onnx").string();  // x [batch, 32]
  std::vector<std::pair<fs::path, std::string>> cases;
  // Data shorter and longer than the shape says.
  const fs::path good = write_f32("good.npy", "(4, 32)", 4 * 32);
  const std::string good_bytes = read_text(good);
  const auto write_bytes = [&](const std::string& name, const std::string& bytes) {
    std::ofstream(tmp_ / name, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    return tmp_ / name;
  };
  cases.push_back({write_bytes("short.npy", good_bytes.substr(0, good_bytes.size() - 10)),
                   "data has 502 bytes but shape (4, 32) of float32 needs 512"});
  cases.push_back({write_f32("long.npy", "(4, 32)", 4 * 32 + 1), "data has 516 bytes but shape (4, 32) of float32"});
  // A shape of 2^40 rows over 4 bytes of data; one whose byte size overflows int64.
  cases.push_back({write_f32("huge.npy", "(1099511627776, 32)", 1), "data has 4 bytes but shape (1099511627776, 32)"});
  cases.push_back({write_f32("overflow.npy", "(4611686018427387904, 32)", 1), "is too large"});
  // The header length field points past the end; a truncated preamble; bytes that are no .npy at all.
  std::string long_header = good_bytes.substr(0, 64);
  long_header[8] = '\xff';
  long_header[9] = '\x7f';
  cases.push_back({write_bytes("header.npy", long_header), "header length 32767 runs past the end of the file"});
  cases.push_back({write_bytes("preamble.npy", good_bytes.substr(0, 7)), "truncated"});
  std::mt19937 rng(3);
  std::string garbage(300, '\0');
  for (char& c : garbage) c = static_cast<char>(rng());
  cases.push_back({write_bytes("garbage.npy", garbage), "not a .npy file"});
  std::string bad_dict = good_bytes;
  bad_dict.replace(bad_dict.find("'shape'"), 7, "'shope'");
  cases.push_back({write_bytes("dict.npy", bad_dict), "unexpected key 'shope'"});
  for (const auto& [file, fragment] : cases) {
    SCOPED_TRACE(file.filename().string());
    expect_error({gemm, "--input", "x=" + file.string()}, {"input 'x': " + file.string() + ": ", fragment});
  }
}

// --- resource limits -------------------------------------------------------------------------------------

TEST_F(QuarksRun, MaxArenaMbIsEnforcedAtCompileTime) {
  // x [1024, 1024] -> Relu -> Tanh -> y: the intermediate needs 4 MiB of arena.
  OnnxModel m;
  m.input("x", std::vector<std::int64_t>{-1, -1});
  m.node("Relu", "a", {"x"}, {"h"});
  m.node("Tanh", "b", {"h"}, {"y"});
  m.output("y");
  const fs::path model = tmp_ / "model.onnx";
  std::ofstream(model, std::ios::binary) << m.bytes();
  const std::vector<float> values(1024 * 1024, 0.5f);
  const fs::path x = write_raw("x.npy", "<f4", "(1024, 1024)", values.data(), values.size() * 4);
  const ToolResult capped =
      run({model.string(), "--input", "x=" + x.string(), "-o", (tmp_ / "out").string(), "--max-arena-mb", "1"});
  EXPECT_EQ(capped.status, 1);
  EXPECT_EQ(capped.err,
            "quarks-run: error: the activation arena needs 4194304 bytes for input shapes [1024,1024], above the cap "
            "max_arena_bytes = 1048576 (--max-arena-mb 1)\n");
  EXPECT_FALSE(fs::exists(tmp_ / "out"));
  // Under the cap, and without one, it runs.
  for (const std::string cap : {"4", "0"}) {
    const ToolResult r = run(
        {model.string(), "--input", "x=" + x.string(), "-o", (tmp_ / ("out" + cap)).string(), "--max-arena-mb", cap});
    EXPECT_EQ(r.status, 0) << cap << ": " << r.err;
    const NpyArray y = read_npy((tmp_ / ("out" + cap) / "y.npy").string());
    EXPECT_EQ(y.shape, (Shape{1024, 1024}));
  }
  for (const std::string bad : {"-1", "1.5", "mb", "17592186044416"}) {  // the last is 2^44: bytes overflow
    const ToolResult r =
        run({model.string(), "--input", "x=" + x.string(), "-o", (tmp_ / "out").string(), "--max-arena-mb", bad});
    EXPECT_EQ(r.status, 2) << bad;
    EXPECT_NE(r.err.find("--max-arena-mb: '" + bad + "' is not a size in MiB"), std::string::npos) << r.err;
  }
}

}  // namespace
}  // namespace quarks::tools
