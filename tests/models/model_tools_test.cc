// quarks-generate and quarks-run on a model directory, spawned as a user would, against the float64
// references of tests/models/fixtures (make_checkpoints.py): the greedy ids, the JSON fields, the
// streamed output, logits.npy, and each error path's exit status and message.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "quarks/quarks.hpp"
#include "tools/common/npy.hpp"
#include "tools/tool_test.hpp"

namespace quarks {
namespace {

namespace fs = std::filesystem;

const fs::path kFixtures = QUARKS_MODEL_FIXTURES;

nlohmann::json reference(const std::string& model) {
  std::ifstream in(kFixtures / model / "reference.json");
  return nlohmann::json::parse(in);
}

std::string ids_text(const std::vector<std::int64_t>& ids) {
  std::string s;
  for (std::int64_t id : ids) s += (s.empty() ? "" : ",") + std::to_string(id);
  return s;
}

class ModelTools : public test::ToolTest {
 protected:
  test::ToolResult generate(const std::vector<std::string>& args) const { return run_tool(QUARKS_GENERATE_EXE, args); }
  test::ToolResult run_model(const std::vector<std::string>& args) const { return run_tool(QUARKS_RUN_EXE, args); }
  test::ToolResult bench(const std::vector<std::string>& args) const { return run_tool(QUARKS_BENCH_EXE, args); }
};

// quarks-bench --model DIR: pp and tg rows, their bytes from the plan against the checkpoint's size (an
// f32 checkpoint whose every weight a token reads once; the embedding table is read as the tied LM
// head, the activations and the 2-layer KV cache add little), and the roofline against a made-up
// machine: memory-bound decode at 12 GB/s.
TEST_F(ModelTools, BenchModelDirectoryReportsPromptAndGenerationRows) {
  const fs::path machine = tmp_ / "machine.json";
  std::ofstream(machine) << R"({"cpu": "made up", "threads": 2, "l2_bytes": 1, "l3_bytes": 1048576,
      "f32_gflops_1": 40, "f32_gflops_n": 70, "bf16_gflops_1": "unsupported", "bf16_gflops_n": "unsupported",
      "mem_gbps_1": 8, "mem_gbps_n": 12, "l2_gbps_1": 100, "l2_gbps_n": 200, "measured_at": "2026-01-01T00:00:00Z"})";
  const fs::path dir = kFixtures / "qwen2";
  const test::ToolResult r = bench({"--model", dir.string(), "--prompt-tokens", "8", "--gen-tokens", "4", "--iters",
                                    "2", "--threads", "2", "--format", "json", "--machine-file", machine.string()});
  ASSERT_EQ(r.status, 0) << r.err;
  const nlohmann::json j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["architecture"], "Qwen2ForCausalLM");
  const double file_bytes = static_cast<double>(fs::file_size(dir / "model.safetensors"));
  EXPECT_EQ(j["weight_file_bytes"].get<double>(), file_bytes);
  ASSERT_EQ(j["runs"].size(), 2u);
  const nlohmann::json& pp = j["runs"][0];
  const nlohmann::json& tg = j["runs"][1];
  EXPECT_EQ(pp["test"], "pp8");
  EXPECT_EQ(tg["test"], "tg4");
  for (const nlohmann::json& run : {pp, tg}) {
    EXPECT_EQ(run["samples_ms"].size(), 2u);
    EXPECT_GT(run["tokens_per_s"].get<double>(), 0.0);
    EXPECT_GT(run["limit_tokens_per_s"].get<double>(), 0.0);
  }
  EXPECT_EQ(tg["limit"], "memory");
  const double tg_bytes = tg["bytes_per_token"].get<double>();
  EXPECT_GT(tg_bytes, 0.9 * file_bytes);
  EXPECT_LT(tg_bytes, 1.3 * file_bytes);
  EXPECT_NEAR(tg["limit_tokens_per_s"].get<double>(), 12e9 / tg_bytes, 1e-6 * 12e9 / tg_bytes);
  EXPECT_LT(pp["bytes_per_token"].get<double>(), tg_bytes / 4);  // a prompt reads the weights once for 8 tokens

  EXPECT_EQ(bench({"--model", dir.string(), "--profile"}).status, 2);
  const test::ToolResult zero = bench({"--model", dir.string(), "--prompt-tokens", "0", "--gen-tokens", "0"});
  EXPECT_EQ(zero.status, 2);
  EXPECT_NE(zero.err.find("leave nothing to run"), std::string::npos) << zero.err;
}

TEST_F(ModelTools, GenerateJsonGivesTheReferenceGreedyIds) {
  for (const std::string model : {"llama", "gpt2"}) {
    const nlohmann::json ref = reference(model);
    const auto prompt = ref["prompt"].get<std::vector<std::int64_t>>();
    const test::ToolResult r = generate({(kFixtures / model).string(), "--ids", ids_text(prompt), "--max-new-tokens",
                                         "32", "--temperature", "0", "--threads", "1", "--json"});
    ASSERT_EQ(r.status, 0) << r.err;
    const nlohmann::json j = nlohmann::json::parse(r.out);
    EXPECT_EQ(j["prompt_ids"], prompt);
    EXPECT_EQ(j["ids"], ref["greedy"]) << model;
    EXPECT_GT(j["prefill_ms"].get<double>(), 0.0);
    EXPECT_GT(j["decode_tokens_per_s"].get<double>(), 0.0);
    EXPECT_EQ(j["stop_reason"], "max_new_tokens");
  }
}

TEST_F(ModelTools, GenerateStreamsIdsWithoutJson) {
  const nlohmann::json ref = reference("llama");
  const test::ToolResult r =
      generate({(kFixtures / "llama").string(), "--ids", ids_text(ref["prompt"].get<std::vector<std::int64_t>>()),
                "--max-new-tokens", "4"});  // generation_config.json: do_sample false, so greedy
  ASSERT_EQ(r.status, 0) << r.err;
  const auto greedy = ref["greedy"].get<std::vector<std::int64_t>>();
  EXPECT_EQ(r.out, std::to_string(greedy[0]) + " " + std::to_string(greedy[1]) + " " + std::to_string(greedy[2]) + " " +
                       std::to_string(greedy[3]) + "\n");
  EXPECT_NE(r.err.find("quarks-generate: 4 tokens (max_new_tokens)"), std::string::npos) << r.err;
}

TEST_F(ModelTools, GenerateErrors) {
  const std::string llama = (kFixtures / "llama").string();
  test::ToolResult r = generate({(tmp_ / "nope").string(), "--ids", "1"});
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("nope: not a model directory"), std::string::npos) << r.err;
  r = generate({llama, "--ids", "1,96"});
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("token id 96 at position 1 is outside the vocabulary [0, 96)"), std::string::npos) << r.err;
  r = generate({llama});
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.err.find("--ids is required"), std::string::npos) << r.err;
  r = generate({llama, "--ids", "1", "--top-p", "2"});
  EXPECT_EQ(r.status, 2);
  // A config quarks cannot run: the file and the field are named.
  const fs::path bad = tmp_ / "bad";
  fs::create_directories(bad);
  std::ofstream(bad / "config.json") << R"({"architectures": ["LlamaForCausalLM"], "vocab_size": 8,
      "hidden_size": 8, "intermediate_size": 8, "num_hidden_layers": 1, "num_attention_heads": 2,
      "rope_scaling": {"rope_type": "yarn", "factor": 4.0}})";
  r = generate({bad.string(), "--ids", "1"});
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("config.json: rope_scaling type 'yarn' is not supported"), std::string::npos) << r.err;
}

TEST_F(ModelTools, RunWritesTheLogitsOfEveryPosition) {
  const nlohmann::json ref = reference("qwen3");
  const auto prompt = ref["prompt"].get<std::vector<std::int64_t>>();
  const fs::path ids = tmp_ / "ids.npy", out = tmp_ / "out";
  tools::write_npy(ids.string(), Tensor::from_i64({1, static_cast<std::int64_t>(prompt.size())}, prompt));
  const test::ToolResult r =
      run_model({(kFixtures / "qwen3").string(), "--input", "input_ids=" + ids.string(), "--output-dir", out.string()});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("logits: float32 [1,40,96] -> "), std::string::npos) << r.out;
  const Tensor logits = tools::to_tensor(tools::read_npy((out / "logits.npy").string()), "logits.npy");
  ASSERT_EQ(logits.shape(), (Shape{1, 40, 96}));
  double err = 0, scale = 0;
  for (std::int64_t i = 0; i < 40; ++i) {
    for (std::int64_t v = 0; v < 96; ++v) {
      const double want = ref["logits"][i][v].get<double>();
      err = std::max(err, std::abs(logits.f32()[i * 96 + v] - want));
      scale = std::max(scale, std::abs(want));
    }
  }
  EXPECT_LT(err / scale, 1e-4);
  EXPECT_NE(r.out.find("last_hidden_state: float32 [1,40,64] -> "), std::string::npos) << r.out;
  const Tensor last = tools::to_tensor(tools::read_npy((out / "last_hidden_state.npy").string()), "h.npy");
  EXPECT_EQ(last.shape(), (Shape{1, 40, 64}));

  // A left-padded batch with generation's positions (cumsum(mask) - 1): row 1's real tokens score as
  // the 3-token prompt alone.
  const std::vector<std::int64_t> three{prompt[0], prompt[1], prompt[2]};
  tools::write_npy(ids.string(), Tensor::from_i64({1, 3}, three));
  ASSERT_EQ(run_model({(kFixtures / "qwen3").string(), "--input", "input_ids=" + ids.string(), "--output-dir",
                       (tmp_ / "alone").string()})
                .status,
            0);
  const Tensor alone = tools::to_tensor(tools::read_npy((tmp_ / "alone" / "logits.npy").string()), "a.npy");
  const fs::path mask = tmp_ / "mask.npy", positions = tmp_ / "positions.npy";
  tools::write_npy(ids.string(), Tensor::from_i64({2, 5}, std::vector<std::int64_t>{prompt[5], prompt[6], prompt[7],
                                                                                    prompt[8], prompt[9], 0, 0,
                                                                                    prompt[0], prompt[1], prompt[2]}));
  tools::write_npy(mask.string(), Tensor::from_i64({2, 5}, std::vector<std::int64_t>{1, 1, 1, 1, 1, 0, 0, 1, 1, 1}));
  tools::write_npy(positions.string(),
                   Tensor::from_i64({2, 5}, std::vector<std::int64_t>{0, 1, 2, 3, 4, 1, 1, 0, 1, 2}));
  const test::ToolResult padded = run_model({(kFixtures / "qwen3").string(), "--input", "input_ids=" + ids.string(),
                                             "--input", "attention_mask=" + mask.string(), "--input",
                                             "position_ids=" + positions.string(), "--output-dir", out.string()});
  ASSERT_EQ(padded.status, 0) << padded.err;
  const Tensor batch = tools::to_tensor(tools::read_npy((out / "logits.npy").string()), "logits.npy");
  ASSERT_EQ(batch.shape(), (Shape{2, 5, 96}));
  double worst = 0;
  for (std::int64_t i = 0; i < 3 * 96; ++i)
    worst = std::max<double>(worst, std::abs(batch.f32()[(5 + 2) * 96 + i] - alone.f32()[i]));
  EXPECT_LT(worst, 1e-5);
  // A hole in the mask is refused, naming the entry.
  tools::write_npy(mask.string(), Tensor::from_i64({2, 5}, std::vector<std::int64_t>{1, 1, 1, 1, 1, 0, 1, 0, 1, 1}));
  const test::ToolResult holed =
      run_model({(kFixtures / "qwen3").string(), "--input", "input_ids=" + ids.string(), "--input",
                 "attention_mask=" + mask.string(), "--output-dir", out.string()});
  EXPECT_EQ(holed.status, 1);
  EXPECT_NE(holed.err.find("attention_mask[1, 3] = 1: a row must be 0s (left padding), then 1s"), std::string::npos)
      << holed.err;
}

}  // namespace
}  // namespace quarks
