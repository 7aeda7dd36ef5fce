// quarks-generate: continues a prompt of token ids with a Hugging Face decoder LM.
//
//   quarks-generate MODEL_DIR --ids 1,2,3 [--max-new-tokens N] [--temperature T] [--top-k K] [--top-p P]
//                   [--repetition-penalty R] [--seed S] [--stop-ids 2,7] [--ignore-eos] [--threads N]
//                   [--precision f32|bf16] [--max-context N] [--json]
//
// Without --json the new ids go to stdout as they come, separated by spaces, then a newline; with --json
// one object {"prompt_ids", "ids", "stop_reason", "prefill_ms", "decode_tokens_per_s", "decode_tokens",
// "load_ms", "architecture"} at the end.
// Sampling flags not given take generation_config.json's values (greedy when it does not sample);
// --temperature 0 is greedy. Exit status: 0 success, 1 a problem with the model or the ids (one line
// on stderr), 2 a usage error.
#include <chrono>
#include <cstdio>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "quarks/quarks.hpp"
#include "tools/common/cli.hpp"

namespace {

int usage_error(const std::string& message) {
  std::fprintf(stderr, "quarks-generate: error: %s (see quarks-generate --help)\n", message.c_str());
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"quarks-generate: continue a prompt of token ids with a Hugging Face decoder LM", "quarks-generate"};
  std::string model_dir, precision = "f32";
  std::vector<std::int64_t> ids, stop_ids;
  quarks::LoadOptions load;
  quarks::GenerateOptions gen;
  std::optional<std::int64_t> max_new;
  std::optional<double> temperature, top_p, repetition_penalty;
  std::optional<int> top_k;
  bool json = false;
  app.add_option("model_dir", model_dir, "model directory (config.json, *.safetensors)")->required();
  app.add_option("--ids", ids, "prompt token ids, e.g. 1,2,3")->delimiter(',')->required();
  app.add_option("--max-new-tokens", max_new, "tokens to generate at most (generation_config, else 64)")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--temperature", temperature, "0 = greedy")->check(CLI::NonNegativeNumber);
  app.add_option("--top-k", top_k, "keep the k most likely tokens (0 = off)")->check(CLI::NonNegativeNumber);
  app.add_option("--top-p", top_p, "keep the most likely tokens up to this probability (1 = off)")
      ->check(CLI::Range(0.0, 1.0));
  app.add_option("--repetition-penalty", repetition_penalty, "1 = off")->check(CLI::PositiveNumber);
  app.add_option("--seed", gen.seed, "seed of the sampling draws");
  app.add_option("--stop-ids", stop_ids, "token ids that end generation, besides eos_token_id")->delimiter(',');
  app.add_flag("--ignore-eos", gen.ignore_eos, "do not stop at the model's eos_token_id");
  app.add_option("--threads", load.threads, "threads (0 = all)")->check(CLI::NonNegativeNumber);
  app.add_option("--precision", precision, "f32 or bf16")->check(CLI::IsMember({"f32", "bf16"}));
  app.add_option("--max-context", load.max_context, "KV cache positions (0 = the model's, at most 4096)")
      ->check(CLI::NonNegativeNumber);
  app.add_flag("--json", json, "print one JSON object at the end instead of streaming ids");
  if (const auto status = quarks::tools::parse_command_line(app, argc, argv, usage_error)) return *status;

  gen.max_new_tokens = max_new;
  gen.temperature = temperature;
  gen.top_k = top_k;
  gen.top_p = top_p;
  gen.repetition_penalty = repetition_penalty;
  gen.stop_ids = stop_ids;
  load.precision = precision == "bf16" ? quarks::Precision::kBF16 : quarks::Precision::kF32;
  try {
    const auto load_start = std::chrono::steady_clock::now();
    const quarks::LanguageModel lm = quarks::LanguageModel::load(model_dir, load);
    const double load_ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - load_start).count();
    quarks::Generator generator(lm);
    bool first = true;
    const quarks::GenerationResult r = generator.generate(ids, gen, [&](std::int64_t token) {
      if (!json) {
        fmt::print("{}{}", first ? "" : " ", token);
        std::fflush(stdout);
        first = false;
      }
      return true;
    });
    const double tokens_per_s = r.decode_ms > 0 ? 1e3 * static_cast<double>(r.decode_tokens) / r.decode_ms : 0.0;
    if (json) {
      const nlohmann::ordered_json out = {{"prompt_ids", ids},
                                          {"ids", r.ids},
                                          {"stop_reason", r.stop_reason},
                                          {"prefill_ms", r.prefill_ms},
                                          {"decode_tokens_per_s", tokens_per_s},
                                          {"decode_tokens", r.decode_tokens},
                                          {"load_ms", load_ms},
                                          {"architecture", lm.architecture()}};
      std::cout << out.dump() << "\n";
    } else {
      fmt::print("\n");
      std::fprintf(stderr, "quarks-generate: %zu tokens (%s); load %.1f ms, prefill %.1f ms, decode %.1f tokens/s\n",
                   r.ids.size(), r.stop_reason.c_str(), load_ms, r.prefill_ms, tokens_per_s);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "quarks-generate: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
