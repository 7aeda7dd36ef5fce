// LanguageModel and Generator (include/quarks/language_model.hpp): load → graph → compile, then the
// prefill / decode loop over one Session's KV caches with the sampler.
#include "quarks/language_model.hpp"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <numeric>

#include "engine/models/decoder_graph.hpp"
#include "engine/models/hf_config.hpp"
#include "engine/models/safetensors.hpp"
#include "engine/models/sampler.hpp"
#include "quarks/error.hpp"

namespace quarks {

struct LanguageModel::Impl {
  models::DecoderConfig config;
  models::GenerationDefaults defaults;
  std::int64_t max_context = 0;
  Model model;
};

LanguageModel LanguageModel::load(const std::filesystem::path& model_dir, const LoadOptions& options) {
  if (!std::filesystem::is_directory(model_dir)) {
    throw Error(ErrorCode::kNotFound, model_dir.string() + ": not a model directory");
  }
  auto impl = std::make_shared<Impl>();
  impl->config = models::read_decoder_config(model_dir);
  models::read_generation_config(model_dir, impl->config, impl->defaults);
  const models::DecoderConfig& c = impl->config;
  if (options.max_context < 0) {
    throw Error(ErrorCode::kInvalidArgument, "max_context " + std::to_string(options.max_context) + " is < 0");
  }
  std::int64_t context = options.max_context;
  if (context == 0) context = std::min<std::int64_t>(c.max_position_embeddings, 4096);
  impl->max_context = context;
  Graph graph;
  {
    // A bf16 checkpoint at precision bf16 is read in place: the graph keeps the checkpoint (its memory is
    // the weights' only copy). Otherwise the weights are converted and the checkpoint is freed here.
    auto weights = std::make_shared<const models::Checkpoint>(models::Checkpoint::open(model_dir));
    const bool in_place = options.precision == Precision::kBF16 && models::linear_weights_are_bf16(c, *weights);
    graph = models::build_decoder_graph(c, std::move(weights), context, in_place);
  }
  CompileOptions co;
  co.threads = options.threads;
  co.precision = options.precision;
  impl->model = compile(graph, co);
  LanguageModel lm;
  lm.impl_ = std::move(impl);
  return lm;
}

const std::string& LanguageModel::architecture() const { return impl_->config.architecture; }
std::int64_t LanguageModel::vocab_size() const { return impl_->config.vocab_size; }
std::int64_t LanguageModel::max_context() const { return impl_->max_context; }
int LanguageModel::num_layers() const { return impl_->config.num_layers; }
const std::vector<std::int64_t>& LanguageModel::eos_token_ids() const { return impl_->config.eos_token_ids; }
const Model& LanguageModel::model() const { return impl_->model; }

struct Generator::State {
  std::shared_ptr<const LanguageModel::Impl> lm;
  Session session;
  std::vector<std::int64_t> history;  // the tokens the KV caches hold
  Tensor last_logits;                 // [1, 1, vocab]: where append() runs write

  explicit State(std::shared_ptr<const LanguageModel::Impl> m)
      : lm(std::move(m)), session(lm->model), last_logits(DType::kF32, {1, 1, lm->config.vocab_size}) {}

  void check_ids(std::span<const std::int64_t> ids) const {
    const std::int64_t vocab = lm->config.vocab_size;
    for (std::size_t i = 0; i < ids.size(); ++i) {
      if (ids[i] < 0 || ids[i] >= vocab) {
        throw Error(ErrorCode::kInvalidArgument, "token id " + std::to_string(ids[i]) + " at position " +
                                                     std::to_string(i) + " is outside the vocabulary [0, " +
                                                     std::to_string(vocab) + ")");
      }
    }
    const auto held = static_cast<std::int64_t>(history.size()), n = static_cast<std::int64_t>(ids.size());
    if (n > lm->max_context - held) {
      throw Error(ErrorCode::kResourceExhausted, "the context is full: it holds " + std::to_string(held) + " of " +
                                                     std::to_string(lm->max_context) + " tokens and " +
                                                     std::to_string(n) + " more do not fit (LoadOptions::max_context)");
    }
  }

  // Runs ids after the history; logit rows `rows` of this run go to `out` ([1, rows, vocab]).
  void run(std::span<const std::int64_t> ids, std::span<const std::int64_t> rows, TensorView out) {
    const auto n = static_cast<std::int64_t>(ids.size());
    const Tensor input = Tensor::from_i64({1, n}, ids);
    const Tensor logit_rows = Tensor::from_i64({static_cast<std::int64_t>(rows.size())}, rows);
    std::vector<NamedInput> inputs{{models::kInputIds, input}, {models::kLogitPositions, logit_rows}};
    Tensor positions;
    if (lm->config.positions == models::PositionKind::kLearned) {
      std::vector<std::int64_t> p(ids.size());
      std::iota(p.begin(), p.end(), static_cast<std::int64_t>(history.size()));
      positions = Tensor::from_i64({1, n}, p);
      inputs.push_back({models::kPositionIds, positions});
    }
    const NamedOutput outputs[] = {{models::kLogits, out}};
    session.run(inputs, outputs);
    history.insert(history.end(), ids.begin(), ids.end());
  }
};

Generator::Generator(const LanguageModel& model) {
  if (!model.impl_) throw Error(ErrorCode::kInvalidArgument, "Generator: the LanguageModel is empty (not loaded)");
  s_ = std::make_unique<State>(model.impl_);
}
Generator::~Generator() = default;
Generator::Generator(Generator&&) noexcept = default;
Generator& Generator::operator=(Generator&&) noexcept = default;

void Generator::reset() {
  s_->session.reset_state();
  s_->history.clear();
}

std::int64_t Generator::length() const { return static_cast<std::int64_t>(s_->history.size()); }

Tensor Generator::append(std::span<const std::int64_t> ids) {
  if (ids.empty()) throw Error(ErrorCode::kInvalidArgument, "append: no token ids");
  s_->check_ids(ids);
  const std::int64_t last = static_cast<std::int64_t>(ids.size()) - 1;
  s_->run(ids, std::span<const std::int64_t>(&last, 1), s_->last_logits.view());
  const std::int64_t vocab = s_->lm->config.vocab_size;
  return Tensor::from_f32({vocab}, std::span<const float>(s_->last_logits.f32(), static_cast<std::size_t>(vocab)));
}

Tensor Generator::logits(std::span<const std::int64_t> ids) {
  if (ids.empty()) throw Error(ErrorCode::kInvalidArgument, "logits: no token ids");
  reset();
  s_->check_ids(ids);
  const auto n = static_cast<std::int64_t>(ids.size());
  std::vector<std::int64_t> rows(ids.size());
  std::iota(rows.begin(), rows.end(), std::int64_t{0});
  Tensor out(DType::kF32, {1, n, s_->lm->config.vocab_size});
  s_->run(ids, rows, out.view());
  Tensor flat(DType::kF32, {n, s_->lm->config.vocab_size});
  std::memcpy(flat.f32(), out.f32(), out.bytes());
  return flat;
}

GenerationResult Generator::generate(std::span<const std::int64_t> prompt, const GenerateOptions& options,
                                     const std::function<bool(std::int64_t)>& on_token) {
  using Clock = std::chrono::steady_clock;
  const models::GenerationDefaults& d = s_->lm->defaults;
  const std::int64_t max_new = options.max_new_tokens.value_or(d.max_new_tokens > 0 ? d.max_new_tokens : 64);
  if (max_new < 0) throw Error(ErrorCode::kInvalidArgument, "max_new_tokens " + std::to_string(max_new) + " is < 0");
  if (prompt.empty()) throw Error(ErrorCode::kInvalidArgument, "generate: the prompt has no token ids");
  if (static_cast<std::int64_t>(prompt.size()) > s_->lm->max_context - max_new) {
    throw Error(ErrorCode::kResourceExhausted, "a prompt of " + std::to_string(prompt.size()) +
                                                   " tokens plus max_new_tokens " + std::to_string(max_new) +
                                                   " exceeds the context of " + std::to_string(s_->lm->max_context) +
                                                   " tokens (LoadOptions::max_context)");
  }
  models::SamplerSettings ss;
  ss.temperature = options.temperature.value_or(d.do_sample ? d.temperature : 0.0);
  ss.top_k = options.top_k.value_or(d.do_sample ? d.top_k : 0);
  ss.top_p = options.top_p.value_or(d.do_sample ? d.top_p : 1.0);
  ss.repetition_penalty = options.repetition_penalty.value_or(d.repetition_penalty);
  models::Sampler sampler(ss, options.seed);

  GenerationResult r;
  r.stop_reason = "max_new_tokens";
  reset();
  if (max_new == 0) return r;
  const auto t0 = Clock::now();
  Tensor logits = append(prompt);
  r.prefill_ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
  const std::vector<std::int64_t>& eos = s_->lm->config.eos_token_ids;
  const auto contains = [](const std::vector<std::int64_t>& v, std::int64_t t) {
    return std::find(v.begin(), v.end(), t) != v.end();
  };
  for (;;) {
    const auto vocab = static_cast<std::size_t>(logits.numel());
    const std::int64_t token = sampler.next(std::span<const float>(logits.f32(), vocab), s_->history);
    r.ids.push_back(token);
    const bool go_on = !on_token || on_token(token);
    if (!options.ignore_eos && contains(eos, token)) {
      r.stop_reason = "eos";
      break;
    }
    if (contains(options.stop_ids, token)) {
      r.stop_reason = "stop_id";
      break;
    }
    if (!go_on) {
      r.stop_reason = "callback";
      break;
    }
    if (static_cast<std::int64_t>(r.ids.size()) == max_new) break;
    const auto t1 = Clock::now();
    logits = append(std::span<const std::int64_t>(&token, 1));
    r.decode_ms += std::chrono::duration<double, std::milli>(Clock::now() - t1).count();
    ++r.decode_tokens;
  }
  return r;
}

}  // namespace quarks
