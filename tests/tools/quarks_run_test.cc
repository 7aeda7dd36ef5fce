// quarks-run: the input checks and output file names directly, then the tool itself, spawned on the
// committed ONNX fixtures (tests/onnx/models: PyTorch and NumPy references; data/quarks_run: integer
// and boolean inputs and outputs, NumPy references) and on every error path, checking the exit status
// and the exact message.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "onnx/onnx_test_util.hpp"
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
  for (const std::string needle : {"--input", "--output-dir", "--threads", "--precision", "--print-graph",
                                   "float64 (rounded to nearest", "int32", "become '_'", "Exit status"}) {
    EXPECT_NE(r.out.find(needle), std::string::npos) << needle << "\n" << r.out;
  }
  const ToolResult v = run({"--version"});
  EXPECT_EQ(v.status, 0);
  EXPECT_EQ(v.out, std::string(quarks::version()) + "\n");
}

}  // namespace
}  // namespace quarks::tools
