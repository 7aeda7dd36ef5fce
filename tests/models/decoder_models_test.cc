// Whole decoder LMs from Hugging Face checkpoint directories (include/quarks/language_model.hpp) against
// the float64 PyTorch reference forward of tests/models/make_checkpoints.py, one small random-weight
// checkpoint per architecture in tests/models/fixtures/<name>/ (config.json, generation_config.json,
// safetensors, reference.json):
//   - logits of a 40-token prompt within 1e-4 of the reference, scaled by max |logit|;
//   - greedy generation of 32 tokens identical to the reference's (whose top-two gaps the generator
//     checked to be > 1e-3 of max |logit|, far above f32 rounding);
//   - decoding token by token through the KV caches equals scoring the whole sequence (1e-5).
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "models/decoder_reference.hpp"
#include "ops/dense/gemv_bf16_simd.hpp"
#include "quarks/language_model.hpp"

namespace quarks {
namespace {

namespace fs = std::filesystem;
using namespace test;  // the fixtures and their references (decoder_reference.hpp)

class DecoderModels : public ::testing::TestWithParam<std::string> {};

TEST_P(DecoderModels, LogitsMatchTheFloat64Reference) {
  const fs::path dir = kFixtures / GetParam();
  const Reference ref = read_reference(dir);
  const LanguageModel lm = LanguageModel::load(dir, {.threads = 2});
  Generator gen(lm);
  const Tensor logits = gen.logits(ref.prompt);
  ASSERT_EQ(logits.shape(), (Shape{40, lm.vocab_size()}));
  const double err = scaled_error(logits, ref.logits);
  EXPECT_LT(err, 1e-4) << GetParam();
  std::printf("%s (%s): logits error %.2e of max |logit|\n", GetParam().c_str(), lm.architecture().c_str(), err);
}

TEST_P(DecoderModels, GreedyGenerationEqualsTheReference) {
  const fs::path dir = kFixtures / GetParam();
  const Reference ref = read_reference(dir);
  const LanguageModel lm = LanguageModel::load(dir, {.threads = 1});
  Generator gen(lm);
  std::vector<std::int64_t> streamed;
  const GenerationResult r = gen.generate(ref.prompt, {.max_new_tokens = 32, .temperature = 0.0},
                                          [&](std::int64_t t) { return streamed.push_back(t), true; });
  EXPECT_EQ(r.ids, ref.greedy) << GetParam() << " (reference min gap " << ref.min_gap << ")";
  EXPECT_EQ(streamed, r.ids);
  EXPECT_EQ(r.stop_reason, "max_new_tokens");
  EXPECT_EQ(r.decode_tokens, 31);
  EXPECT_EQ(gen.length(), 40 + 31);  // the last token is returned, not run
}

TEST_P(DecoderModels, DecodingThroughTheCacheEqualsScoringTheSequence) {
  const fs::path dir = kFixtures / GetParam();
  const Reference ref = read_reference(dir);
  const LanguageModel lm = LanguageModel::load(dir, {.threads = 2});
  Generator whole(lm), steps(lm);
  const Tensor all = whole.logits(ref.prompt);
  const std::int64_t vocab = lm.vocab_size();
  // A prefill of 7 tokens, then one token at a time.
  const Tensor first = steps.append(std::span<const std::int64_t>(ref.prompt.data(), 7));
  double err = 0, scale = 0;
  for (std::int64_t v = 0; v < vocab; ++v)
    err = std::max<double>(err, std::abs(first.f32()[v] - all.f32()[6 * vocab + v]));
  for (std::size_t i = 7; i < ref.prompt.size(); ++i) {
    const Tensor step = steps.append(std::span<const std::int64_t>(&ref.prompt[i], 1));
    for (std::int64_t v = 0; v < vocab; ++v) {
      err = std::max<double>(err, std::abs(step.f32()[v] - all.f32()[static_cast<std::int64_t>(i) * vocab + v]));
      scale = std::max<double>(scale, std::abs(all.f32()[static_cast<std::int64_t>(i) * vocab + v]));
    }
  }
  EXPECT_LT(err / scale, 1e-5) << GetParam();
  EXPECT_EQ(steps.length(), 40);
}

INSTANTIATE_TEST_SUITE_P(Architectures, DecoderModels,
                         ::testing::Values("llama", "llama_bf16", "mistral", "qwen2", "qwen3", "gemma", "gpt2"));

TEST(DecoderModel, SeededSamplingIsReproducible) {
  const fs::path dir = kFixtures / "llama";
  const Reference ref = read_reference(dir);
  const LanguageModel lm = LanguageModel::load(dir, {.threads = 1});
  Generator a(lm), b(lm);
  const GenerateOptions o{
      .max_new_tokens = 24, .temperature = 1.5, .top_k = 40, .top_p = 0.95, .seed = 7, .ignore_eos = true};
  const GenerationResult ra = a.generate(ref.prompt, o), rb = b.generate(ref.prompt, o);
  EXPECT_EQ(ra.ids, rb.ids);
  EXPECT_EQ(a.generate(ref.prompt, o).ids, ra.ids);  // the same Generator again
  GenerateOptions other = o;
  other.seed = 8;
  EXPECT_NE(a.generate(ref.prompt, other).ids, ra.ids);
  // At temperature 1.5 over 24 tokens, not the greedy path.
  EXPECT_NE(ra.ids, std::vector<std::int64_t>(ref.greedy.begin(), ref.greedy.begin() + 24));
}

TEST(DecoderModel, StopsAtEosAStopIdOrTheCallback) {
  const fs::path dir = kFixtures / "llama";
  const Reference ref = read_reference(dir);
  const LanguageModel lm = LanguageModel::load(dir, {.threads = 1});
  ASSERT_EQ(lm.eos_token_ids(), std::vector<std::int64_t>{2});
  Generator gen(lm);
  const std::int64_t fifth = ref.greedy[4];
  GenerationResult r = gen.generate(ref.prompt, {.max_new_tokens = 32, .stop_ids = {fifth}});
  const auto at = std::find(ref.greedy.begin(), ref.greedy.end(), fifth) - ref.greedy.begin();
  EXPECT_EQ(r.ids, std::vector<std::int64_t>(ref.greedy.begin(), ref.greedy.begin() + at + 1));
  EXPECT_EQ(r.stop_reason, "stop_id");
  int calls = 0;
  r = gen.generate(ref.prompt, {.max_new_tokens = 32}, [&](std::int64_t) { return ++calls < 3; });
  EXPECT_EQ(r.ids.size(), 3u);
  EXPECT_EQ(r.stop_reason, "callback");
}

TEST(DecoderModel, ContextOverflowAndBadIdsAreClearErrors) {
  const fs::path dir = kFixtures / "llama";
  const LanguageModel lm = LanguageModel::load(dir, {.threads = 1, .max_context = 48});
  EXPECT_EQ(lm.max_context(), 48);
  Generator gen(lm);
  const std::vector<std::int64_t> prompt(40, 5);
  try {
    gen.generate(prompt, {.max_new_tokens = 9});
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kResourceExhausted);
    EXPECT_NE(std::string(e.what()).find("plus max_new_tokens 9 exceeds the context of 48 tokens"), std::string::npos)
        << e.what();
  }
  EXPECT_EQ(gen.generate(prompt, {.max_new_tokens = 8, .ignore_eos = true}).ids.size(), 8u);
  const std::vector<std::int64_t> bad{3, 96};
  try {
    gen.logits(bad);
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("token id 96 at position 1 is outside the vocabulary [0, 96)"),
              std::string::npos)
        << e.what();
  }
}

// bf16 checkpoints at precision bf16 read their weights in place (linear products on the checkpoint's memory;
// ops/dense/linear_bf16_kernel.hpp). A prompt runs through oneDNN's bf16 matmuls with the activations
// rounded to bf16 before every product (about 2^-9 relative each): its logits stay within 2e-2 of max
// |logit| of the float64 reference on the same weights. Needs AVX-512 (oneDNN 2.6).
class Bf16DecoderModels : public ::testing::TestWithParam<std::string> {};

TEST_P(Bf16DecoderModels, PromptLogitsStayWithinTheBf16Bound) {
  const fs::path dir = kFixtures / GetParam();
  const Reference ref = read_reference(dir);
  LanguageModel lm;
  try {
    lm = LanguageModel::load(dir, {.threads = 2, .precision = Precision::kBF16});
    Generator gen(lm);
    const double err = scaled_error(gen.logits(ref.prompt), ref.logits);
    EXPECT_LT(err, 2e-2) << GetParam();
    std::printf("%s in bf16: prompt logits error %.2e of max |logit|\n", GetParam().c_str(), err);
  } catch (const Error& e) {
    if (e.code() != ErrorCode::kUnsupported) throw;
    GTEST_SKIP() << "no bf16 matmuls on this CPU (oneDNN 2.6 needs AVX-512): " << e.what();
  }
}

// One token at a time, every product has one row and runs the Highway matrix-vector kernel on the bf16
// weights in place with f32 activations: the logits equal those of the same checkpoint computed in f32
// (weights widened, the converted path) up to f32 summation order, 1e-5 of max |logit|, at every
// step. This path runs on every CPU. Where the CPU has AVX512_BF16 the kernel rounds x to bf16 first
// (the dot form, as oneDNN does for prompts): then the bound is the bf16 one of the prompt test.
TEST_P(Bf16DecoderModels, DecodeStepsInPlaceEqualF32ComputeOnTheSameWeights) {
  const fs::path dir = kFixtures / GetParam();
  const Reference ref = read_reference(dir);
  const LanguageModel in_place = LanguageModel::load(dir, {.threads = 2, .precision = Precision::kBF16});
  const LanguageModel widened = LanguageModel::load(dir, {.threads = 2});
  Generator a(in_place), b(widened);
  double err = 0, scale = 0;
  for (std::size_t i = 0; i < 12; ++i) {
    const std::span<const std::int64_t> token(&ref.prompt[i], 1);
    const Tensor x = a.append(token), y = b.append(token);
    for (std::int64_t v = 0; v < in_place.vocab_size(); ++v) {
      err = std::max<double>(err, std::abs(x.f32()[v] - y.f32()[v]));
      scale = std::max<double>(scale, std::abs(y.f32()[v]));
    }
  }
  const bool rounds_x = quarks::ops::dense_detail::gemv_bf16_rounds_x();
  std::printf("%s: one-token steps in place vs f32 compute: %.2e of max |logit| (x %s)\n", GetParam().c_str(),
              err / scale, rounds_x ? "rounded to bf16" : "in f32");
  EXPECT_LT(err / scale, rounds_x ? 2e-2 : 1e-5) << GetParam();
}

INSTANTIATE_TEST_SUITE_P(Checkpoints, Bf16DecoderModels, ::testing::Values("llama_bf16", "qwen3_bf16", "gemma_bf16"));

// A checkpoint that does not fit its config: the tensor, the file and both shapes are named.
TEST(DecoderModel, CheckpointsThatDoNotFitTheConfigAreClearErrors) {
  const fs::path tmp = fs::temp_directory_path() / ("quarks_decoder_models_" + std::to_string(::getpid()));
  fs::remove_all(tmp);
  fs::create_directories(tmp);
  for (const char* f : {"model.safetensors", "generation_config.json"}) fs::copy_file(kFixtures / "qwen2" / f, tmp / f);
  std::ifstream in(kFixtures / "qwen2" / "config.json");
  nlohmann::json config = nlohmann::json::parse(in);
  config["intermediate_size"] = 128;  // the checkpoint's MLP is 96 wide
  std::ofstream(tmp / "config.json") << config.dump();
  try {
    LanguageModel::load(tmp);
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kShapeMismatch);
    EXPECT_NE(std::string(e.what()).find("tensor 'model.layers.0.mlp.gate_proj.weight' has shape [96,64] but the "
                                         "config needs [128,64]"),
              std::string::npos)
        << e.what();
  }
  config["intermediate_size"] = 96;
  config["architectures"] = {"MambaForCausalLM"};
  std::ofstream(tmp / "config.json") << config.dump();
  try {
    LanguageModel::load(tmp);
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kUnsupported);
    EXPECT_NE(std::string(e.what()).find("architecture 'MambaForCausalLM' is not supported"), std::string::npos)
        << e.what();
  }
  fs::remove(tmp / "model.safetensors");
  config["architectures"] = {"Qwen2ForCausalLM"};
  std::ofstream(tmp / "config.json") << config.dump();
  EXPECT_THROW(LanguageModel::load(tmp), Error);
  fs::remove_all(tmp);
}

}  // namespace
}  // namespace quarks
