// Batches of prompts of different lengths (Generator::generate_batch and the graph's left padding) and
// the last hidden states, on every fixture architecture (tests/models/fixtures):
//   - a left-padded batch of prompts of 17, 5 and 40 tokens: each row's logits and hidden states at its
//     own positions equal its prompt scored alone (1e-5 of max |logit|), the unpadded row the float64
//     reference (1e-4);
//   - generate_batch gives each row the ids generate() gives it alone, greedy and seeded sampling, and
//     streams them per row; rows stop on their own;
//   - hidden_states · the LM head in double equal the reference's logits (1e-4 of max |logit|).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <string>
#include <vector>

#include "engine/models/safetensors.hpp"
#include "models/decoder_reference.hpp"
#include "quarks/language_model.hpp"

namespace quarks {
namespace {

namespace fs = std::filesystem;
using namespace test;  // the fixtures and their references (decoder_reference.hpp)

// Prompts of 17, 5 and 40 tokens from the reference prompt (the longest is the reference's own).
std::vector<std::vector<std::int64_t>> three_prompts(const Reference& ref) {
  const auto& p = ref.prompt;
  return {{p.begin() + 10, p.begin() + 27}, {p.begin(), p.begin() + 5}, p};
}

// Rows [first, first + n) of `t` [.., rows, width] in batch row b, as a [n, width] tensor.
Tensor rows_of(const Tensor& t, std::int64_t b, std::int64_t first, std::int64_t n) {
  const std::int64_t rows = t.shape()[1], width = t.shape()[2];
  return Tensor::from_f32(
      {n, width}, std::span<const float>(t.f32() + (b * rows + first) * width, static_cast<std::size_t>(n * width)));
}

// max |a - b| / max |b|.
double relative(const Tensor& a, const Tensor& b) {
  double err = 0, scale = 0;
  for (std::int64_t i = 0; i < b.numel(); ++i) {
    err = std::max<double>(err, std::abs(a.f32()[i] - b.f32()[i]));
    scale = std::max<double>(scale, std::abs(b.f32()[i]));
  }
  return err / scale;
}

class BatchedDecoderModels : public ::testing::TestWithParam<std::string> {};

TEST_P(BatchedDecoderModels, PaddedRowsScoreAsEachPromptAlone) {
  const fs::path dir = kFixtures / GetParam();
  const Reference ref = read_reference(dir);
  const LanguageModel lm = LanguageModel::load(dir, {.threads = 2});
  const std::vector<std::vector<std::int64_t>> prompts = three_prompts(ref);
  const std::int64_t batch = 3, seq = 40;
  std::vector<std::int64_t> ids, positions, padding, all(seq);
  for (const auto& p : prompts) {
    const std::int64_t pad = seq - static_cast<std::int64_t>(p.size());
    padding.push_back(pad);
    for (std::int64_t s = 0; s < seq; ++s) {
      ids.push_back(s < pad ? 0 : p[static_cast<std::size_t>(s - pad)]);
      positions.push_back(std::max<std::int64_t>(0, s - pad));
    }
  }
  for (std::int64_t s = 0; s < seq; ++s) all[static_cast<std::size_t>(s)] = s;
  Session session(lm.model());
  const auto out = session.run({{"input_ids", Tensor::from_i64({batch, seq}, ids)},
                                {"position_ids", Tensor::from_i64({batch, seq}, positions)},
                                {"left_padding", Tensor::from_i64({batch}, padding)},
                                {"logit_positions", Tensor::from_i64({seq}, all)}});
  const Tensor& logits = out.at("logits");
  const Tensor& hidden = out.at("last_hidden_state");
  ASSERT_EQ(logits.shape(), (Shape{batch, seq, lm.vocab_size()}));
  ASSERT_EQ(hidden.shape()[1], seq);
  Generator alone(lm);
  double worst = 0;
  for (std::int64_t b = 0; b < batch; ++b) {
    const std::vector<std::int64_t>& p = prompts[static_cast<std::size_t>(b)];
    const auto n = static_cast<std::int64_t>(p.size());
    const double err = relative(rows_of(logits, b, padding[b], n), alone.logits(p));
    const double hidden_err = relative(rows_of(hidden, b, padding[b], n), alone.hidden_states(p));
    worst = std::max({worst, err, hidden_err});
    EXPECT_LT(err, 1e-5) << GetParam() << " row " << b << " (" << n << " tokens)";
    EXPECT_LT(hidden_err, 1e-5) << GetParam() << " row " << b;
  }
  EXPECT_LT(scaled_error(rows_of(logits, 2, 0, seq), ref.logits), 1e-4) << GetParam();
  std::printf("%s: padded batch vs alone: %.2e\n", GetParam().c_str(), worst);
}

TEST_P(BatchedDecoderModels, GenerateBatchGivesEachRowWhatItGivesAlone) {
  const fs::path dir = kFixtures / GetParam();
  const Reference ref = read_reference(dir);
  const LanguageModel lm = LanguageModel::load(dir, {.threads = 2});
  const std::vector<std::vector<std::int64_t>> prompts = three_prompts(ref);
  Generator gen(lm), alone(lm);
  const GenerateOptions greedy{.max_new_tokens = 12, .temperature = 0.0, .ignore_eos = true};
  const GenerateOptions sampled{
      .max_new_tokens = 12, .temperature = 1.2, .top_k = 30, .top_p = 0.95, .seed = 3, .ignore_eos = true};
  for (const GenerateOptions& o : {greedy, sampled}) {
    std::vector<std::vector<std::int64_t>> streamed(3);
    const std::vector<GenerationResult> rs = gen.generate_batch(
        prompts, o, [&](std::size_t row, std::int64_t t) { return streamed[row].push_back(t), true; });
    ASSERT_EQ(rs.size(), 3u);
    for (std::size_t b = 0; b < 3; ++b) {
      const GenerationResult one = alone.generate(prompts[b], o);
      EXPECT_EQ(rs[b].ids, one.ids) << GetParam() << " row " << b << " temperature " << *o.temperature;
      EXPECT_EQ(streamed[b], rs[b].ids);
      EXPECT_EQ(rs[b].stop_reason, "max_new_tokens");
      EXPECT_EQ(rs[b].decode_tokens, 11);
    }
    if (*o.temperature == 0.0) {
      EXPECT_EQ(rs[2].ids, std::vector<std::int64_t>(ref.greedy.begin(), ref.greedy.begin() + 12)) << GetParam();
    }
  }
}

TEST_P(BatchedDecoderModels, HiddenStatesTimesTheHeadAreTheReferenceLogits) {
  const fs::path dir = kFixtures / GetParam();
  const Reference ref = read_reference(dir);
  const LanguageModel lm = LanguageModel::load(dir, {.threads = 2});
  Generator gen(lm);
  const Tensor hidden = gen.hidden_states(ref.prompt);
  const std::int64_t n = hidden.shape()[0], d = hidden.shape()[1], vocab = lm.vocab_size();
  ASSERT_EQ(n, 40);
  const models::Checkpoint ckpt = models::Checkpoint::open(dir);
  std::string head = "lm_head.weight";
  for (const char* name : {"lm_head.weight", "model.embed_tokens.weight", "transformer.wte.weight", "wte.weight"}) {
    if (ckpt.find(name) != nullptr) {
      head = name;
      break;
    }
  }
  const Tensor w = ckpt.to_f32(head, Shape{vocab, d});
  Tensor logits(DType::kF32, {n, vocab});
  for (std::int64_t i = 0; i < n; ++i) {
    for (std::int64_t v = 0; v < vocab; ++v) {
      double dot = 0;
      for (std::int64_t k = 0; k < d; ++k) dot += double(hidden.f32()[i * d + k]) * w.f32()[v * d + k];
      logits.f32()[i * vocab + v] = static_cast<float>(dot);
    }
  }
  EXPECT_LT(scaled_error(logits, ref.logits), 1e-4) << GetParam() << " head " << head;
}

INSTANTIATE_TEST_SUITE_P(Architectures, BatchedDecoderModels,
                         ::testing::Values("llama", "llama_bf16", "mistral", "qwen2", "qwen3", "gemma", "gpt2"));

TEST(BatchedDecoderModel, RowsStopOnTheirOwn) {
  const fs::path dir = kFixtures / "llama";
  const Reference ref = read_reference(dir);
  const LanguageModel lm = LanguageModel::load(dir, {.threads = 1});
  const std::vector<std::vector<std::int64_t>> prompts = three_prompts(ref);
  Generator gen(lm), alone(lm);
  const GenerationResult first = alone.generate(prompts[0], {.max_new_tokens = 10, .ignore_eos = true});
  const std::int64_t stop = first.ids[3];
  const auto stop_at = std::find(first.ids.begin(), first.ids.end(), stop) - first.ids.begin();
  int row1_calls = 0;
  const std::vector<GenerationResult> rs =
      gen.generate_batch(prompts, {.max_new_tokens = 10, .temperature = 0.0, .stop_ids = {stop}, .ignore_eos = true},
                         [&](std::size_t row, std::int64_t) { return row != 1 || ++row1_calls < 2; });
  EXPECT_EQ(rs[0].stop_reason, "stop_id");
  EXPECT_EQ(rs[0].ids, std::vector<std::int64_t>(first.ids.begin(), first.ids.begin() + stop_at + 1));
  EXPECT_EQ(rs[0].decode_tokens, stop_at);
  if (std::find(rs[1].ids.begin(), rs[1].ids.end(), stop) == rs[1].ids.end()) {
    EXPECT_EQ(rs[1].stop_reason, "callback");
    EXPECT_EQ(rs[1].ids.size(), 2u);
  }
  // Row 2 goes on after the others stopped, as it would alone (unless it meets the stop id too).
  const GenerationResult third = alone.generate(prompts[2], {.max_new_tokens = 10, .stop_ids = {stop}});
  EXPECT_EQ(rs[2].ids, third.ids);
  EXPECT_EQ(rs[2].stop_reason, third.stop_reason);
}

TEST(BatchedDecoderModel, BadBatchesAreClearErrors) {
  const fs::path dir = kFixtures / "llama";
  const LanguageModel lm = LanguageModel::load(dir, {.threads = 1, .max_context = 48});
  Generator gen(lm);
  const auto expect_error = [&](const std::vector<std::vector<std::int64_t>>& prompts, ErrorCode code,
                                const std::string& what) {
    try {
      gen.generate_batch(prompts, {.max_new_tokens = 8});
      ADD_FAILURE() << "no error: " << what;
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), code) << e.what();
      EXPECT_NE(std::string(e.what()).find(what), std::string::npos) << e.what();
    }
  };
  expect_error({}, ErrorCode::kInvalidArgument, "generate_batch: no prompts");
  expect_error({{1, 2}, {}}, ErrorCode::kInvalidArgument, "prompt 1: the prompt has no token ids");
  expect_error({{1, 2}, {3}, {4, 96}}, ErrorCode::kInvalidArgument,
               "prompt 2: token id 96 at position 1 is outside the vocabulary [0, 96)");
  expect_error({{1, 2}, std::vector<std::int64_t>(41, 3)}, ErrorCode::kResourceExhausted,
               "the longest prompt of 41 tokens plus max_new_tokens 8 exceeds the context of 48 tokens");
  const std::vector<std::vector<std::int64_t>> two{{1, 2}, {3}};
  const std::vector<GenerationResult> rs = gen.generate_batch(two, {.max_new_tokens = 2, .ignore_eos = true});
  EXPECT_EQ(rs[1].ids.size(), 2u);
  const std::int64_t token = 5;
  try {
    gen.append(std::span<const std::int64_t>(&token, 1));
    ADD_FAILURE() << "append continued a batch";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("the conversation is a batch of 2 prompts"), std::string::npos) << e.what();
  }
  gen.reset();
  EXPECT_EQ(gen.append(std::span<const std::int64_t>(&token, 1)).numel(), lm.vocab_size());
}

}  // namespace
}  // namespace quarks
