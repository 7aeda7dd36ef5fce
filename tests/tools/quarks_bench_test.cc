// quarks-bench --model: the input planning (tools::plan_inputs) directly, then the tool spawned on the
// committed ONNX fixtures of tests/onnx/models (inputs from files, made up, symbolic dims from --dim;
// the product flops it reports against the fixtures' architectures, counted by hand) and on every
// error path, checking the exit status and the exact message.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "quarks/quarks.hpp"
#include "tools/common/inputs.hpp"
#include "tools/tool_test.hpp"

namespace fs = std::filesystem;

namespace quarks::tools {
namespace {

const fs::path kModels = QUARKS_ONNX_MODELS;
const fs::path kEmbedding = fs::path(QUARKS_RUN_FIXTURES) / "embedding_mask";

// --- plan_inputs -------------------------------------------------------------------------------------

// x f32 [batch, seq, 8], mask f32 [batch, 1, seq], ids i64 [batch, seq], fixed f32 [4].
Graph mixed_graph() {
  GraphBuilder g;
  const Value x = g.input("x", {"batch", "seq", 8});
  const Value mask = g.input("mask", {"batch", 1, "seq"});
  const Value ids = g.input("ids", {"batch", "seq"}, DType::kI64);
  const Value fixed = g.input("fixed", {4});
  g.output("y", g.activation("relu", x, Activation::relu()));
  g.output("m", g.activation("m", mask, Activation::relu()));
  g.output("ids_f", g.cast("ids_f", ids, DType::kF32));
  g.output("f", g.activation("f", fixed, Activation::relu()));
  return g.build();
}

InputFile ids_file(Shape shape = {3, 5}) { return {"ids", "ids.npy", NpyDType::kInt64, std::move(shape)}; }

TEST(PlanInputs, MakesUpFloatInputsWithDimsFromFilesAndDimArguments) {
  const Graph graph = mixed_graph();
  std::vector<MadeUpInput> made_up;
  // batch and seq from the ids file.
  ASSERT_EQ(plan_inputs(graph, {ids_file()}, {}, made_up), "");
  ASSERT_EQ(made_up.size(), 3u);
  EXPECT_EQ(made_up[0].name, "x");
  EXPECT_EQ(made_up[0].shape, (Shape{3, 5, 8}));
  EXPECT_EQ(made_up[1].name, "mask");
  EXPECT_EQ(made_up[1].shape, (Shape{3, 1, 5}));
  EXPECT_EQ(made_up[2].name, "fixed");
  EXPECT_EQ(made_up[2].shape, (Shape{4}));
  // --dim sizes agree with the file; every given input is left out.
  ASSERT_EQ(plan_inputs(graph, {ids_file(), {"x", "x.npy", NpyDType::kFloat64, Shape{3, 5, 8}}},
                        {{"batch", 3}, {"seq", 5}}, made_up),
            "");
  ASSERT_EQ(made_up.size(), 2u);
  EXPECT_EQ(made_up[0].name, "mask");
  EXPECT_EQ(made_up[1].name, "fixed");
}

TEST(PlanInputs, OnlyFloatInputsAreMadeUp) {
  const Graph graph = mixed_graph();
  std::vector<MadeUpInput> made_up{{"stale", Shape{1}}};
  EXPECT_EQ(plan_inputs(graph, {}, {{"batch", 2}, {"seq", 3}}, made_up),
            "input 'ids' is int64: give --input ids=FILE.npy (only float32 inputs are made up)");
  EXPECT_TRUE(made_up.empty());
  GraphBuilder g;
  g.output("y", g.cast("y", g.input("keep", {2}, DType::kBool), DType::kF32));
  EXPECT_EQ(plan_inputs(g.build(), {}, {}, made_up),
            "input 'keep' is bool: give --input keep=FILE.npy (only float32 inputs are made up)");
}

TEST(PlanInputs, NamesTheSymbolicDimNobodySets) {
  const Graph graph = mixed_graph();
  std::vector<MadeUpInput> made_up;
  EXPECT_EQ(plan_inputs(graph, {ids_file()}, {}, made_up), "");
  GraphBuilder g;
  g.output("y", g.activation("relu", g.input("x", {"batch", "seq", 8}), Activation::relu()));
  const Graph only_x = g.build();
  EXPECT_EQ(plan_inputs(only_x, {}, {{"batch", 2}}, made_up),
            "input 'x' has the symbolic dim 'seq' ([batch,seq,8]): give --dim seq=N, or --input x=FILE.npy");
  EXPECT_EQ(plan_inputs(only_x, {}, {}, made_up),
            "input 'x' has the symbolic dim 'batch' ([batch,seq,8]): give --dim batch=N, or --input x=FILE.npy");
}

TEST(PlanInputs, UnknownNamesAndDims) {
  const Graph graph = mixed_graph();
  std::vector<MadeUpInput> made_up;
  EXPECT_EQ(plan_inputs(graph, {{"foo", "foo.npy", NpyDType::kFloat32, Shape{1}}}, {}, made_up),
            "unknown input 'foo' (the model's inputs: x, mask, ids, fixed)");
  EXPECT_EQ(plan_inputs(graph, {ids_file()}, {{"sequence", 4}}, made_up),
            "unknown dim 'sequence' (the model's symbolic dims: batch, seq)");
  GraphBuilder g;
  g.output("y", g.activation("relu", g.input("v", {5}), Activation::relu()));
  EXPECT_EQ(plan_inputs(g.build(), {}, {{"batch", 1}}, made_up),
            "unknown dim 'batch' (the model has no symbolic dims)");
}

TEST(PlanInputs, FilesMustFitDtypesShapesAndDims) {
  const Graph graph = mixed_graph();
  std::vector<MadeUpInput> made_up;
  EXPECT_EQ(plan_inputs(graph, {{"ids", "ids.npy", NpyDType::kFloat32, Shape{3, 5}}}, {}, made_up),
            "input 'ids': file ids.npy has dtype float32 but the model expects int64 (int64 or int32 files are "
            "accepted)");
  EXPECT_EQ(plan_inputs(graph, {ids_file()}, {{"seq", 4}}, made_up),
            "input 'ids': file ids.npy has shape (3, 5) but the model expects [batch,seq], and --dim gives seq = 4");
  EXPECT_EQ(plan_inputs(graph, {ids_file({3, 5, 1})}, {}, made_up),
            "input 'ids': file ids.npy has shape (3, 5, 1) but the model expects [batch,seq] (rank 2)");
  EXPECT_EQ(plan_inputs(graph, {ids_file(), {"x", "x.npy", NpyDType::kFloat32, Shape{2, 5, 8}}}, {}, made_up),
            "input 'x': file x.npy has shape (2, 5, 8) but the model expects [batch,seq,8], and input 'ids' gives "
            "batch = 3");
}

// --- the tool ----------------------------------------------------------------------------------------

using quarks::test::read_text;
using quarks::test::shell_quote;
using quarks::test::ToolResult;

// stderr without the warnings about other processes' CPU use (this machine may be busy).
std::string without_load_warnings(const std::string& err) {
  std::stringstream in(err);
  std::string out;
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("quarks-bench: warning: other processes used ", 0) != 0) out += line + "\n";
  }
  return out;
}

class QuarksBench : public quarks::test::ToolTest {
 protected:
  // Runs quarks-bench with `args` (and few, short runs unless `args` says otherwise).
  ToolResult run(const std::vector<std::string>& args) const {
    // A machine file of the user's (~/.cache/quarks/machine.json) must not change the reports.
    return run_tool(QUARKS_BENCH_EXE, args, "XDG_CACHE_HOME=" + shell_quote(tmp_.string()) + " ");
  }

  // The JSON report of a --model run that must succeed.
  nlohmann::json run_json(std::vector<std::string> args) const {
    for (const char* a : {"--format", "json", "--iters", "2", "--warmup", "1"}) args.emplace_back(a);
    const ToolResult r = run(args);
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(without_load_warnings(r.err), "");
    try {
      return nlohmann::json::parse(r.out);
    } catch (const std::exception& e) {
      ADD_FAILURE() << e.what() << "\n" << r.out;
      return {};
    }
  }
};

std::string model(const std::string& name) { return (kModels / name / "model.onnx").string(); }
std::string input(const std::string& model_name, const std::string& input_name) {
  return input_name + "=" + (kModels / model_name / "inputs" / (input_name + ".npy")).string();
}

void expect_runs(const nlohmann::json& j, const std::vector<int>& threads, double flops) {
  ASSERT_EQ(j["runs"].size(), threads.size()) << j.dump();
  for (std::size_t i = 0; i < threads.size(); ++i) {
    const nlohmann::json& r = j["runs"][i];
    EXPECT_EQ(r["threads"], threads[i]);
    EXPECT_EQ(r["precision"], "f32");
    EXPECT_GT(r["p50_ms"].get<double>(), 0.0);
    EXPECT_LE(r["min_ms"].get<double>(), r["p50_ms"].get<double>());
    EXPECT_LE(r["p50_ms"].get<double>(), r["max_ms"].get<double>());
    ASSERT_TRUE(r.contains("gflops")) << r.dump();
    EXPECT_NEAR(r["gflops"].get<double>(), flops / (r["p50_ms"].get<double>() / 1e3) / 1e9, 1e-6 * flops);
  }
}

TEST_F(QuarksBench, MadeUpInputWithDims) {
  // SwiGLU 64 -> 128 -> 64 without biases at batch 2, seq 16: gate, up and down products.
  const nlohmann::json j =
      run_json({"--model", model("swiglu_mlp"), "--dim", "batch=2", "--dim", "seq=16", "--threads", "1,2"});
  EXPECT_EQ(j["model"], model("swiglu_mlp"));
  EXPECT_EQ(j["shape"], "x=[2,16,64]");
  ASSERT_EQ(j["inputs"].size(), 1u);
  EXPECT_EQ(j["inputs"][0], nlohmann::json::parse(R"({"name": "x", "dtype": "float32", "shape": [2, 16, 64],
                                                      "source": "random"})"));
  const double rows = 2 * 16;
  const double flops = 2 * rows * 64 * 128 * 2 + 2 * rows * 128 * 64;
  EXPECT_EQ(j["flops"].get<double>(), flops);
  expect_runs(j, {1, 2}, flops);
}

TEST_F(QuarksBench, FileInputFixesDimsOfMadeUpInputs) {
  // BERT-style layer, d 64, 4 heads of 16, FFN 128: x from its file [2,16,64] gives batch and seq to
  // the made-up attention_mask [batch,1,1,seq].
  const nlohmann::json j =
      run_json({"--model", model("bert_encoder_layer"), "--input", input("bert_encoder_layer", "x"), "--threads", "2"});
  ASSERT_EQ(j["inputs"].size(), 2u);
  EXPECT_EQ(j["inputs"][0]["name"], "x");
  EXPECT_EQ(j["inputs"][0]["source"], (kModels / "bert_encoder_layer" / "inputs" / "x.npy").string());
  EXPECT_EQ(j["inputs"][1]["name"], "attention_mask");
  EXPECT_EQ(j["inputs"][1]["shape"], nlohmann::json::parse("[2, 1, 1, 16]"));
  EXPECT_EQ(j["inputs"][1]["source"], "random");
  const double b = 2, s = 16, d = 64, heads = 4, hd = 16, ffn = 128;
  const double projections = 4 * 2 * b * s * d * d;           // q, k, v, out
  const double attention = 2 * (2 * b * heads * s * s * hd);  // Q·Kᵀ and P·V
  const double feed_forward = 2 * (2 * b * s * d * ffn);
  EXPECT_EQ(j["flops"].get<double>(), projections + attention + feed_forward);
  expect_runs(j, {2}, projections + attention + feed_forward);
}

TEST_F(QuarksBench, StaticModelNeedsNoArguments) {
  const nlohmann::json j = run_json({"--model", model("bert_encoder_layer_static"), "--threads", "1"});
  EXPECT_EQ(j["shape"], "x=[2,16,64] attention_mask=[2,1,1,16]");
  EXPECT_GT(j["flops"].get<double>(), 0.0);
}

TEST_F(QuarksBench, IntegerAndBoolInputsFromFiles) {
  // An embedding lookup: no products, so no GFLOP/s.
  const ToolResult r =
      run({"--model", (kEmbedding / "model.onnx").string(), "--input",
           "ids=" + (kEmbedding / "inputs" / "ids.npy").string(), "--input",
           "mask=" + (kEmbedding / "inputs" / "mask.npy").string(), "--threads", "1", "--iters", "2", "--warmup", "0"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out.rfind("model " + (kEmbedding / "model.onnx").string() + "\n  input ids int64 [2,5] (" +
                            (kEmbedding / "inputs" / "ids.npy").string() + ")\n  input mask bool [2,5,1] (" +
                            (kEmbedding / "inputs" / "mask.npy").string() +
                            ")\n  (no dense, matmul or attention products counted)\nthreads precision     p50 ms",
                        0),
            0u)
      << r.out;
}

TEST_F(QuarksBench, TableNamesInputsAndTheirSource) {
  const ToolResult r = run({"--model", model("swiglu_mlp"), "--input", input("swiglu_mlp", "x"), "--threads", "1",
                            "--iters", "2", "--warmup", "0"});
  ASSERT_EQ(r.status, 0) << r.err;
  const std::string expected_head = "model " + model("swiglu_mlp") + "\n  input x float32 [2,16,64] (" +
                                    (kModels / "swiglu_mlp" / "inputs" / "x.npy").string() + ")\n";
  EXPECT_EQ(r.out.rfind(expected_head, 0), 0u) << r.out;
  EXPECT_NE(r.out.find("threads precision     p50 ms"), std::string::npos) << r.out;
  EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 4) << r.out;  // model, input, header, one run
}

TEST_F(QuarksBench, ModelErrors) {
  const std::string swiglu = model("swiglu_mlp"), bert = model("bert_encoder_layer");
  const std::string embedding = (kEmbedding / "model.onnx").string();
  const std::string ids = "ids=" + (kEmbedding / "inputs" / "ids.npy").string();
  const fs::path x_file = kModels / "bert_encoder_layer" / "inputs" / "x.npy";
  const fs::path missing = tmp_ / "missing.npy";
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"--model", swiglu},
       "input 'x' has the symbolic dim 'batch' ([batch,seq,64]): give --dim batch=N, or --input x=FILE.npy"},
      {{"--model", swiglu, "--dim", "batch=1"},
       "input 'x' has the symbolic dim 'seq' ([batch,seq,64]): give --dim seq=N, or --input x=FILE.npy"},
      {{"--model", embedding, "--dim", "batch=1", "--dim", "seq=4"},
       "input 'ids' is int64: give --input ids=FILE.npy (only float32 inputs are made up)"},
      {{"--model", embedding, "--input", ids},
       "input 'mask' is bool: give --input mask=FILE.npy (only float32 inputs are made up)"},
      {{"--model", swiglu, "--dim", "batch=1", "--dim", "sequence=4"},
       "unknown dim 'sequence' (the model's symbolic dims: batch, seq)"},
      {{"--model", model("bert_encoder_layer_static"), "--dim", "seq=4"},
       "unknown dim 'seq' (the model has no symbolic dims)"},
      {{"--model", swiglu, "--input", "y=" + x_file.string()}, "unknown input 'y' (the model's inputs: x)"},
      {{"--model", bert, "--input", "x=" + x_file.string(), "--dim", "seq=8"},
       "input 'x': file " + x_file.string() +
           " has shape (2, 16, 64) but the model expects [batch,seq,64], and --dim gives seq = 8"},
      {{"--model", embedding, "--input", "ids=" + x_file.string()},
       "input 'ids': file " + x_file.string() +
           " has dtype float32 but the model expects int64 (int64 or int32 files are accepted)"},
      {{"--model", swiglu, "--input", "x=" + missing.string()}, "input 'x': " + missing.string() + ": no such file"},
      {{"--block", "encoder", "--dmodel", "100", "--heads", "3"},
       "block encoder: --dmodel 100 is not a multiple of --heads 3"},
  };
  for (const auto& [args, message] : cases) {
    std::string shown;
    for (const std::string& a : args) shown += a + " ";
    const ToolResult r = run(args);
    EXPECT_EQ(r.status, 1) << shown << "\n" << r.err;
    EXPECT_EQ(r.err, "quarks-bench: error: " + message + "\n") << shown;
    EXPECT_EQ(r.out, "") << shown;
  }
}

TEST_F(QuarksBench, UnreadableModel) {
  for (const bool exists : {false, true}) {
    const fs::path path = tmp_ / "model.onnx";
    if (exists) std::ofstream(path) << "this is not a protobuf";
    const ToolResult r = run({"--model", path.string()});
    EXPECT_EQ(r.status, 1) << exists;
    EXPECT_EQ(r.err.rfind("quarks-bench: error: ", 0), 0u) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    EXPECT_NE(r.err.find("model.onnx"), std::string::npos) << r.err;
  }
}

TEST_F(QuarksBench, UsageErrorsExitWith2) {
  const std::string swiglu = model("swiglu_mlp");
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{}, "give --block NAME (see --list-blocks), --model FILE.onnx or --machine"},
      {{"--block", "dense", "--affinity", "x"}, "--affinity 'x' is not a CPU list such as 0 or 0,2-3"},
      {{"--block", "dense", "--affinity", "3-1"}, "--affinity '3-1' is not a CPU list"},
      {{"--block", "decoder", "--mode", "decode", "--min-time", "1"}, "--min-time does not apply to --mode decode"},
      {{"--block", "dense", "--format", "xml"}, "--format"},
      {{"--block", "dense", "--min-time", "-1"}, "--min-time"},
      {{"--block", "dense", "--model", swiglu}, "--model"},
      {{"--block", "dense", "--input", "x=x.npy"}, "--input"},
      {{"--block", "dense", "--dim", "batch=1"}, "--dim"},
      {{"--model", swiglu, "--rows", "8"}, "--rows"},
      {{"--model", swiglu, "--elements", "8"}, "--elements"},
      {{"--model", swiglu, "--dmodel", "8"}, "--dmodel"},
      {{"--block", "square", "--dmodel", "64"}, "--dmodel does not apply to block square (it takes --elements)"},
      {{"--block", "dense", "--seq", "8"}, "--seq does not apply to block dense (it takes --rows, --batch, --dmodel)"},
      {{"--block", "encoder", "--rows", "8"}, "--rows does not apply to block encoder"},
      {{"--block", "encoder", "--mode", "decode"}, "--mode does not apply to block encoder"},
      {{"--block", "encoder", "--heads", "0"}, "--heads"},
      {{"--model", swiglu, "--input", "x"}, "'x' is not NAME=FILE.npy"},
      {{"--model", swiglu, "--input", "=x.npy"}, "'=x.npy' has no name before '='"},
      {{"--model", swiglu, "--input", "x="}, "'x=' has nothing after '='"},
      {{"--model", swiglu, "--dim", "batch"}, "'batch' is not NAME=VALUE"},
      {{"--model", swiglu, "--dim", "batch=0"}, "'batch=0': the size is not a positive integer"},
      {{"--model", swiglu, "--dim", "batch=two"}, "'batch=two': the size is not a positive integer"},
      {{"--model", swiglu, "--dim", "batch=-1"}, "'batch=-1': the size is not a positive integer"},
      {{"--model", swiglu, "--dim", "batch=1", "--dim", "batch=2"}, "dim 'batch' is given more than once"},
      {{"--model", swiglu, "--input", "x=a.npy", "--input", "x=b.npy"}, "input 'x' is given more than once"},
      {{"--model", swiglu, "--threads", "0"}, "--threads"},
      {{"--model", swiglu, "--nope"}, "--nope"},
  };
  for (const auto& [args, needle] : cases) {
    std::string shown;
    for (const std::string& a : args) shown += a + " ";
    const ToolResult r = run(args);
    EXPECT_EQ(r.status, 2) << shown << "\n" << r.err;
    EXPECT_EQ(r.err.rfind("quarks-bench: error: ", 0), 0u) << shown << "\n" << r.err;
    EXPECT_NE(r.err.find(needle), std::string::npos) << shown << "\n" << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << shown << "\n" << r.err;
    EXPECT_EQ(r.out, "") << shown;
  }
}

TEST_F(QuarksBench, HelpDocumentsModels) {
  const ToolResult r = run({"--help"});
  EXPECT_EQ(r.status, 0);
  for (const std::string needle :
       {"--model", "--input", "--dim", "uniform random in [-1, 1]", "int64 and bool inputs", "Exit status", "--profile",
        "--machine", "--machine-file", "--min-time", "--affinity", "table, json, csv or md", "roofline",
        "product of the first input's dims except the last"}) {
    EXPECT_NE(r.out.find(needle), std::string::npos) << needle << "\n" << r.out;
  }
}

// --- blocks: profile, statistics, formats -------------------------------------------------------------

// gated-mlp at 4 rows: the fused gate/up product (2 products of 768x3072) and the down product.
const double kGateUpFlops = 2.0 * 2 * 4 * 768 * 3072, kDownFlops = 2.0 * 4 * 3072 * 768;
const double kDownBytes = 4.0 * (4 * 3072 + 3072 * 768 + 4 * 768);
const std::vector<std::string> kGatedMlp = {"--block", "gated-mlp", "--rows", "4", "--threads", "1"};

std::vector<std::string> with(std::vector<std::string> a, const std::vector<std::string>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

TEST_F(QuarksBench, ProfileAccountsForTheRun) {
  const nlohmann::json j = run_json(with(kGatedMlp, {"--profile"}));
  ASSERT_EQ(j["runs"].size(), 1u) << j.dump();
  const nlohmann::json& r = j["runs"][0];
  EXPECT_FALSE(j.contains("machine"));
  ASSERT_EQ(r["ops"].size(), 2u) << r.dump();
  EXPECT_EQ(r["ops"][0]["op"], "gated_dense");
  EXPECT_EQ(r["ops"][0]["name"], "ffn.swiglu");
  EXPECT_EQ(r["ops"][0]["flops"].get<double>(), kGateUpFlops);
  EXPECT_EQ(r["ops"][1]["op"], "dense");
  EXPECT_EQ(r["ops"][1]["name"], "ffn.down");
  EXPECT_EQ(r["ops"][1]["flops"].get<double>(), kDownFlops);
  EXPECT_EQ(r["ops"][1]["bytes"].get<double>(), kDownBytes);
  const double p50 = r["p50_ms"].get<double>();
  double sum = 0, mean_sum = 0;
  for (const nlohmann::json& op : r["ops"]) {
    const double t = op["time_ms"].get<double>();
    EXPECT_GT(t, 0.0);
    EXPECT_GT(op["mean_ms"].get<double>(), 0.0);
    EXPECT_NEAR(op["share"].get<double>(), t / p50, 1e-9);
    EXPECT_NEAR(op["gflops"].get<double>(), op["flops"].get<double>() / t / 1e6, 1e-6);
    EXPECT_NEAR(op["gbps"].get<double>(), op["bytes"].get<double>() / t / 1e6, 1e-6);
    EXPECT_FALSE(op.contains("roofline"));  // no machine file
    sum += t;
    mean_sum += op["mean_ms"].get<double>();
  }
  EXPECT_NEAR(r["ops_sum_ms"].get<double>(), sum, 1e-9);
  EXPECT_NEAR(r["ops_mean_sum_ms"].get<double>(), mean_sum, 1e-9);
  // Means add up: the mean run is its steps plus a little binding outside them (Profiling.
  // StepTimesAccountForTheRun checks single runs closely; this machine may be busy).
  const double mean = r["mean_ms"].get<double>(), unaccounted = r["unaccounted_ms"].get<double>();
  EXPECT_NEAR(unaccounted, mean - mean_sum, 1e-9);
  EXPECT_GE(unaccounted, -1e-3 * mean);
  EXPECT_LE(unaccounted, 0.25 * mean);
  // Without --profile: no ops.
  EXPECT_FALSE(run_json(kGatedMlp)["runs"][0].contains("ops"));
}

TEST_F(QuarksBench, MachineFileGivesPeakFractionAndRoofline) {
  // A made-up machine whose L2 holds nothing, so every step is limited by memory bandwidth or by the
  // flops peak of its thread count.
  const nlohmann::json machine = nlohmann::json::parse(R"({"cpu": "made up", "threads": 2, "l2_bytes": 1,
      "l3_bytes": 1048576, "f32_gflops_1": 40, "f32_gflops_n": 70, "bf16_gflops_1": "unsupported",
      "bf16_gflops_n": "unsupported", "mem_gbps_1": 8, "mem_gbps_n": 12, "l2_gbps_1": 100, "l2_gbps_n": 200,
      "measured_at": "2026-01-01T00:00:00Z"})");
  const fs::path file = tmp_ / "m.json";
  std::ofstream(file) << machine.dump();
  const nlohmann::json j = run_json(
      {"--block", "gated-mlp", "--rows", "4", "--threads", "1,2", "--profile", "--machine-file", file.string()});
  EXPECT_EQ(j["machine"], machine);
  ASSERT_EQ(j["runs"].size(), 2u);
  for (const nlohmann::json& r : j["runs"]) {
    const int threads = r["threads"];
    const double peak = threads == 1 ? 40 : 70, bandwidth = threads == 1 ? 8 : 12;
    EXPECT_NEAR(r["peak_fraction"].get<double>(), r["gflops"].get<double>() / peak, 1e-9);
    // The run's roofline: its flops at the peak against its bytes (the steps' sum) at the bandwidth.
    double bytes = 0, flops = 0;
    for (const nlohmann::json& op : r["ops"]) {
      const double compute_ms = op["flops"].get<double>() / (peak * 1e9) * 1e3;
      const double memory_ms = op["bytes"].get<double>() / (bandwidth * 1e9) * 1e3;
      const double limit_ms = std::max(compute_ms, memory_ms);
      EXPECT_NEAR(op["roofline"].get<double>(), limit_ms / op["time_ms"].get<double>(), 1e-9) << op.dump();
      EXPECT_EQ(op["limit_pct"], op["roofline"]);
      EXPECT_EQ(op["limit"], compute_ms >= memory_ms ? "compute" : "memory") << op.dump();
      bytes += op["bytes"].get<double>();
      flops += op["flops"].get<double>();
    }
    EXPECT_NEAR(r["bytes"].get<double>(), bytes, 1e-6 * bytes);
    EXPECT_NEAR(r["gbps"].get<double>(), bytes / (r["p50_ms"].get<double>() * 1e6), 1e-9 * r["gbps"].get<double>());
    const double compute_ms = flops / (peak * 1e9) * 1e3, memory_ms = bytes / (bandwidth * 1e9) * 1e3;
    EXPECT_EQ(r["limit"], compute_ms >= memory_ms ? "compute" : "memory");
    EXPECT_NEAR(r["limit_pct"].get<double>(), std::max(compute_ms, memory_ms) / r["p50_ms"].get<double>(), 1e-9);
  }
  // The table shows the roofline column (share of the limit, and which) and the machine.
  const ToolResult t = run(with(kGatedMlp, {"--iters", "2", "--profile", "--machine-file", file.string()}));
  ASSERT_EQ(t.status, 0) << t.err;
  EXPECT_NE(t.out.find("GB/s     rows/s     of limit   runs\n"), std::string::npos) << t.out;
  EXPECT_NE(t.out.find("% memory"), std::string::npos) << t.out;
  EXPECT_NE(t.out.find("machine made up (2 threads"), std::string::npos) << t.out;
  // A broken machine file is reported and ignored.
  std::ofstream(file) << "{}";
  const ToolResult broken = run(with(kGatedMlp, {"--iters", "1", "--machine-file", file.string()}));
  EXPECT_EQ(broken.status, 0) << broken.err;
  EXPECT_NE(broken.err.find("quarks-bench: warning: machine file: field 'threads' is missing"), std::string::npos)
      << broken.err;
}

TEST_F(QuarksBench, RowsPerSecond) {
  const nlohmann::json j = run_json(kGatedMlp);
  EXPECT_EQ(j["rows"], 4);
  const nlohmann::json& r = j["runs"][0];
  EXPECT_NEAR(r["rows_per_s"].get<double>(), 4 / (r["p50_ms"].get<double>() / 1e3), 1e-6);
  EXPECT_EQ(r["runs"], 2);
  // A model: the first input's dims but the last, [2, 16, 64] -> 32 rows.
  const nlohmann::json m = run_json({"--model", model("swiglu_mlp"), "--dim", "batch=2", "--dim", "seq=16"});
  EXPECT_EQ(m["rows"], 32);
  for (const nlohmann::json& run : m["runs"]) {
    EXPECT_NEAR(run["rows_per_s"].get<double>(), 32 / (run["p50_ms"].get<double>() / 1e3), 1e-6);
  }
  // --batch, --seq, --dmodel and --heads size a transformer block: 2 sequences of 8 tokens.
  const nlohmann::json e = run_json(
      {"--block", "encoder", "--batch", "2", "--seq", "8", "--dmodel", "128", "--heads", "4", "--threads", "1"});
  EXPECT_EQ(e["rows"], 16);
  EXPECT_EQ(e["shape"], "2x8x128, 4 heads, FFN 512");
  // Elementwise blocks count no rows.
  EXPECT_FALSE(run_json({"--block", "square", "--elements", "64", "--threads", "1"}).contains("rows"));
}

TEST_F(QuarksBench, MinTimeKeepsTiming) {
  const ToolResult r = run({"--block", "output-gate", "--elements", "4096", "--threads", "1", "--iters", "1",
                            "--warmup", "0", "--min-time", "0.2", "--format", "json"});
  ASSERT_EQ(r.status, 0) << r.err;
  const nlohmann::json j = nlohmann::json::parse(r.out)["runs"][0];
  const double runs = j["runs"].get<double>();
  EXPECT_GT(runs, 2);
  EXPECT_GE(runs * j["mean_ms"].get<double>(), 0.8 * 200) << j.dump();  // the timed runs fill the time
  // Without --min-time: exactly --iters.
  EXPECT_EQ(run_json({"--block", "square", "--elements", "64", "--threads", "1"})["runs"][0]["runs"], 2);
}

std::vector<std::string> lines(const std::string& text) {
  std::vector<std::string> out;
  std::stringstream s(text);
  for (std::string line; std::getline(s, line);) out.push_back(line);
  return out;
}

TEST_F(QuarksBench, CsvFormat) {
  const ToolResult r = run({"--block", "gated-mlp", "--rows", "4", "--threads", "1,2", "--iters", "2", "--warmup", "0",
                            "--profile", "--format", "csv"});
  ASSERT_EQ(r.status, 0) << r.err;
  const std::vector<std::string> l = lines(r.out);
  ASSERT_EQ(l.size(), 1 + 2 + 1 + 1 + 4u) << r.out;  // header, 2 runs, blank, header, 2 steps per run
  EXPECT_EQ(l[0],
            "block,threads,precision,runs,p50_ms,p90_ms,p99_ms,mean_ms,min_ms,max_ms,gflops,gbps,rows_per_s,"
            "peak_fraction,others_cpu,bytes,limit,limit_pct");
  EXPECT_EQ(l[1].rfind("gated-mlp,1,f32,2,", 0), 0u) << l[1];
  EXPECT_EQ(l[2].rfind("gated-mlp,2,f32,2,", 0), 0u) << l[2];
  EXPECT_EQ(std::count(l[1].begin(), l[1].end(), ','), 17) << l[1];
  EXPECT_EQ(l[3], "");
  EXPECT_EQ(l[4], "threads,precision,step,op,name,time_ms,share,flops,bytes,gflops,gbps,roofline,limit,limit_pct");
  EXPECT_EQ(l[5].rfind("1,f32,0,gated_dense,ffn.swiglu,", 0), 0u) << l[5];
  EXPECT_EQ(l[8].rfind("2,f32,1,dense,ffn.down,", 0), 0u) << l[8];
  EXPECT_NE(l[8].find(",1.88744e+07,9.49862e+06,"), std::string::npos) << l[8];  // 2·4·3072·768, kDownBytes
}

TEST_F(QuarksBench, MarkdownAndTableProfiles) {
  const ToolResult md = run(with(kGatedMlp, {"--iters", "2", "--warmup", "0", "--profile", "--format", "md"}));
  ASSERT_EQ(md.status, 0) << md.err;
  EXPECT_EQ(md.out.rfind("## block gated-mlp (4x768->2x3072->768)\n\n| threads | precision | runs | p50 ms |", 0), 0u)
      << md.out;
  EXPECT_NE(md.out.find("\n| 1 | f32 | 2 | "), std::string::npos) << md.out;
  EXPECT_NE(md.out.find("### profile: threads 1, f32\n\n| step | op | name | ms |"), std::string::npos) << md.out;
  EXPECT_NE(md.out.find("\n| 1 | dense | ffn.down | "), std::string::npos) << md.out;

  const ToolResult table = run(with(kGatedMlp, {"--iters", "2", "--warmup", "0", "--profile"}));
  ASSERT_EQ(table.status, 0) << table.err;
  EXPECT_NE(table.out.find("profile: threads 1, f32 (median of 2 runs per step)\nstep  op "), std::string::npos)
      << table.out;
  EXPECT_NE(table.out.find("\n   0  gated_dense    ffn.swiglu "), std::string::npos) << table.out;
  EXPECT_NE(table.out.find("\n   1  dense          ffn.down "), std::string::npos) << table.out;
  EXPECT_NE(table.out.find("\nsteps: medians sum to "), std::string::npos) << table.out;
  EXPECT_NE(table.out.find(" mean run, unaccounted "), std::string::npos) << table.out;
  EXPECT_NE(table.out.find("roofline: no machine file"), std::string::npos) << table.out;
}

TEST_F(QuarksBench, AffinityRunsOnTheGivenCpus) {
  const ToolResult r = run(with(kGatedMlp, {"--iters", "1", "--warmup", "0", "--affinity", "0"}));
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("threads precision"), std::string::npos);
}

TEST_F(QuarksBench, WarnsWhenOthersUseTheCpu) {
  // This test process spins a thread while the tool times a 1-thread block for 0.5 s: at least part of a
  // core goes to a process that is not the tool.
  std::atomic<bool> stop{false};
  std::thread spinner([&] {
    volatile std::uint64_t n = 0;
    while (!stop.load(std::memory_order_relaxed)) n = n + 1;
  });
  const ToolResult r =
      run({"--block", "output-gate", "--elements", "100000", "--threads", "1", "--iters", "1", "--min-time", "0.5"});
  stop = true;
  spinner.join();
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.err.find("quarks-bench: warning: other processes used "), std::string::npos) << r.err;
  EXPECT_NE(r.err.find(" CPUs during the threads 1 f32 runs"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace quarks::tools
