// LanguageModel and Generator (include/quarks/language_model.hpp): load → graph → compile, then the
// prefill / decode loop over one Session's KV caches with the sampler, for one prompt or a left-padded
// batch of them decoded in lockstep.
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
  std::vector<std::vector<std::int64_t>> held;  // per row: the tokens its cache rows hold after its padding
  std::vector<std::int64_t> padding;            // per row: the cache rows before its first token
  std::int64_t length = 0;                      // cache rows, padding included

  explicit State(std::shared_ptr<const LanguageModel::Impl> m) : lm(std::move(m)), session(lm->model) { start(1); }

  std::int64_t batch() const { return static_cast<std::int64_t>(held.size()); }
  std::int64_t vocab() const { return lm->config.vocab_size; }

  // A new conversation of `rows` rows with empty caches.
  void start(std::int64_t rows) {
    session.reset_state();
    held.assign(static_cast<std::size_t>(rows), {});
    padding.assign(static_cast<std::size_t>(rows), 0);
    length = 0;
  }

  // `where` names the prompt in errors ("" for a single one, "prompt 2: " in a batch).
  void check_ids(std::span<const std::int64_t> ids, const std::string& where = "") const {
    for (std::size_t i = 0; i < ids.size(); ++i) {
      if (ids[i] < 0 || ids[i] >= vocab()) {
        throw Error(ErrorCode::kInvalidArgument, where + "token id " + std::to_string(ids[i]) + " at position " +
                                                     std::to_string(i) + " is outside the vocabulary [0, " +
                                                     std::to_string(vocab()) + ")");
      }
    }
  }

  // A new conversation scoring `ids` (what names the caller in errors).
  void start_scoring(std::span<const std::int64_t> ids, const char* what) {
    if (ids.empty()) throw Error(ErrorCode::kInvalidArgument, std::string(what) + ": no token ids");
    start(1);
    check_ids(ids);
    check_room(static_cast<std::int64_t>(ids.size()));
  }

  void check_room(std::int64_t n) const {
    if (n > lm->max_context - length) {
      throw Error(ErrorCode::kResourceExhausted, "the context is full: it holds " + std::to_string(length) + " of " +
                                                     std::to_string(lm->max_context) + " tokens and " +
                                                     std::to_string(n) + " more do not fit (LoadOptions::max_context)");
    }
  }

  // Runs n new tokens per row (ids row-major [batch, n]) after what the caches hold: the logits of run
  // positions `rows` go to `logits` ([batch, rows, vocab]), the final hidden states to `hidden`
  // ([batch, n, hidden]) when given. A row's token at cache row r has position r - padding (0 within
  // the padding, where no query looks).
  void run(std::span<const std::int64_t> ids, std::int64_t n, std::span<const std::int64_t> rows, TensorView logits,
           const TensorView* hidden = nullptr) {
    const std::int64_t b_count = batch();
    std::vector<std::int64_t> positions(ids.size());
    for (std::int64_t b = 0; b < b_count; ++b) {
      for (std::int64_t s = 0; s < n; ++s) {
        positions[b * n + s] = std::max<std::int64_t>(0, length + s - padding[b]);
      }
    }
    const Tensor input = Tensor::from_i64({b_count, n}, ids);
    const Tensor position_ids = Tensor::from_i64({b_count, n}, positions);
    const Tensor left_padding = Tensor::from_i64({b_count}, padding);
    const Tensor logit_rows = Tensor::from_i64({static_cast<std::int64_t>(rows.size())}, rows);
    const NamedInput inputs[] = {{models::kInputIds, input},
                                 {models::kPositionIds, position_ids},
                                 {models::kLeftPadding, left_padding},
                                 {models::kLogitPositions, logit_rows}};
    std::vector<NamedOutput> outputs{{models::kLogits, logits}};
    if (hidden != nullptr) outputs.push_back({models::kLastHiddenState, *hidden});
    session.run(inputs, outputs);
    for (std::int64_t b = 0; b < b_count; ++b) {
      for (std::int64_t s = 0; s < n; ++s) {
        if (length + s >= padding[b]) held[b].push_back(ids[b * n + s]);
      }
    }
    length += n;
  }
};

namespace {

using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point t0) { return std::chrono::duration<double, std::milli>(Clock::now() - t0).count(); }

bool contains(const std::vector<std::int64_t>& v, std::int64_t t) {
  return std::find(v.begin(), v.end(), t) != v.end();
}

// One row of `logits` [rows, vocab] as a span.
std::span<const float> row_of(const Tensor& logits, std::int64_t row, std::int64_t vocab) {
  return {logits.f32() + row * vocab, static_cast<std::size_t>(vocab)};
}

}  // namespace

Generator::Generator(const LanguageModel& model) {
  if (!model.impl_) throw Error(ErrorCode::kInvalidArgument, "Generator: the LanguageModel is empty (not loaded)");
  s_ = std::make_unique<State>(model.impl_);
}
Generator::~Generator() = default;
Generator::Generator(Generator&&) noexcept = default;
Generator& Generator::operator=(Generator&&) noexcept = default;

void Generator::reset() { s_->start(1); }

std::int64_t Generator::length() const { return s_->length; }
std::vector<PlanStep> Generator::plan_steps() const { return s_->session.plan_steps(); }

Tensor Generator::append(std::span<const std::int64_t> ids) {
  if (ids.empty()) throw Error(ErrorCode::kInvalidArgument, "append: no token ids");
  if (s_->batch() != 1) {
    throw Error(ErrorCode::kInvalidArgument, "append: the conversation is a batch of " + std::to_string(s_->batch()) +
                                                 " prompts (generate_batch); reset() to start one of a single prompt");
  }
  s_->check_ids(ids);
  s_->check_room(static_cast<std::int64_t>(ids.size()));
  const std::int64_t last = static_cast<std::int64_t>(ids.size()) - 1, vocab = s_->vocab();
  Tensor out(DType::kF32, {1, 1, vocab});
  s_->run(ids, last + 1, std::span<const std::int64_t>(&last, 1), out.view());
  return Tensor::from_f32({vocab}, row_of(out, 0, vocab));
}

Tensor Generator::logits(std::span<const std::int64_t> ids) {
  s_->start_scoring(ids, "logits");
  const auto n = static_cast<std::int64_t>(ids.size());
  std::vector<std::int64_t> rows(ids.size());
  std::iota(rows.begin(), rows.end(), std::int64_t{0});
  Tensor out(DType::kF32, {1, n, s_->vocab()});
  s_->run(ids, n, rows, out.view());
  return Tensor::from_f32({n, s_->vocab()}, std::span<const float>(out.f32(), static_cast<std::size_t>(out.numel())));
}

Tensor Generator::hidden_states(std::span<const std::int64_t> ids) {
  s_->start_scoring(ids, "hidden_states");
  const auto n = static_cast<std::int64_t>(ids.size());
  const std::int64_t last = n - 1, hidden_size = s_->lm->config.hidden_size;
  Tensor logits(DType::kF32, {1, 1, s_->vocab()});
  Tensor hidden(DType::kF32, {1, n, hidden_size});
  const TensorView hidden_view = hidden.view();
  s_->run(ids, n, std::span<const std::int64_t>(&last, 1), logits.view(), &hidden_view);
  return Tensor::from_f32({n, hidden_size},
                          std::span<const float>(hidden.f32(), static_cast<std::size_t>(hidden.numel())));
}

GenerationResult Generator::generate(std::span<const std::int64_t> prompt, const GenerateOptions& options,
                                     const std::function<bool(std::int64_t)>& on_token) {
  if (prompt.empty()) throw Error(ErrorCode::kInvalidArgument, "generate: the prompt has no token ids");
  const std::vector<std::int64_t> one[] = {std::vector<std::int64_t>(prompt.begin(), prompt.end())};
  std::function<bool(std::size_t, std::int64_t)> row_callback;
  if (on_token) row_callback = [&on_token](std::size_t, std::int64_t token) { return on_token(token); };
  return std::move(generate_batch(one, options, row_callback).front());
}

std::vector<GenerationResult> Generator::generate_batch(
    std::span<const std::vector<std::int64_t>> prompts, const GenerateOptions& options,
    const std::function<bool(std::size_t row, std::int64_t token)>& on_token) {
  const models::GenerationDefaults& d = s_->lm->defaults;
  const std::int64_t max_new = options.max_new_tokens.value_or(d.max_new_tokens > 0 ? d.max_new_tokens : 64);
  if (max_new < 0) throw Error(ErrorCode::kInvalidArgument, "max_new_tokens " + std::to_string(max_new) + " is < 0");
  if (prompts.empty()) throw Error(ErrorCode::kInvalidArgument, "generate_batch: no prompts");
  const bool single = prompts.size() == 1;
  std::int64_t longest = 0;
  for (std::size_t r = 0; r < prompts.size(); ++r) {
    const std::string where = single ? "" : "prompt " + std::to_string(r) + ": ";
    if (prompts[r].empty()) throw Error(ErrorCode::kInvalidArgument, where + "the prompt has no token ids");
    s_->check_ids(prompts[r], where);
    longest = std::max(longest, static_cast<std::int64_t>(prompts[r].size()));
  }
  if (longest > s_->lm->max_context - max_new) {
    throw Error(ErrorCode::kResourceExhausted,
                std::string(single ? "a prompt" : "the longest prompt") + " of " + std::to_string(longest) +
                    " tokens plus max_new_tokens " + std::to_string(max_new) + " exceeds the context of " +
                    std::to_string(s_->lm->max_context) + " tokens (LoadOptions::max_context)");
  }
  models::SamplerSettings ss;
  ss.temperature = options.temperature.value_or(d.do_sample ? d.temperature : 0.0);
  ss.top_k = options.top_k.value_or(d.do_sample ? d.top_k : 0);
  ss.top_p = options.top_p.value_or(d.do_sample ? d.top_p : 1.0);
  ss.repetition_penalty = options.repetition_penalty.value_or(d.repetition_penalty);
  // Every row draws from its own copy of one seeded sampler: a row gives what it gives alone.
  const auto rows = static_cast<std::int64_t>(prompts.size());
  std::vector<models::Sampler> samplers(prompts.size(), models::Sampler(ss, options.seed));

  std::vector<GenerationResult> results(prompts.size());
  for (GenerationResult& r : results) r.stop_reason = "max_new_tokens";
  s_->start(rows);
  if (max_new == 0) return results;
  // Left padding to the longest prompt, filled with the row's first token (any id would do: no query
  // sees the padding rows).
  std::vector<std::int64_t> ids(static_cast<std::size_t>(rows * longest));
  for (std::int64_t b = 0; b < rows; ++b) {
    const std::vector<std::int64_t>& p = prompts[b];
    const std::int64_t pad = longest - static_cast<std::int64_t>(p.size());
    s_->padding[b] = pad;
    std::fill_n(ids.begin() + b * longest, pad, p.front());
    std::copy(p.begin(), p.end(), ids.begin() + b * longest + pad);
  }
  const std::int64_t vocab = s_->vocab(), last = longest - 1, first_row = 0;
  Tensor logits(DType::kF32, {rows, 1, vocab});
  const auto t0 = Clock::now();
  s_->run(ids, longest, std::span<const std::int64_t>(&last, 1), logits.view());
  const double prefill_ms = ms_since(t0);
  for (GenerationResult& r : results) r.prefill_ms = prefill_ms;

  const std::vector<std::int64_t>& eos = s_->lm->config.eos_token_ids;
  std::vector<std::int64_t> next(prompts.size());  // what each row feeds the next step (done rows: their last)
  std::vector<bool> done(prompts.size(), false);
  std::int64_t active = rows;
  for (;;) {
    for (std::int64_t b = 0; b < rows; ++b) {
      if (done[b]) continue;
      GenerationResult& r = results[b];
      const std::int64_t token = samplers[b].next(row_of(logits, b, vocab), s_->held[b]);
      r.ids.push_back(token);
      next[b] = token;
      const bool go_on = !on_token || on_token(static_cast<std::size_t>(b), token);
      if (!options.ignore_eos && contains(eos, token)) {
        r.stop_reason = "eos";
      } else if (contains(options.stop_ids, token)) {
        r.stop_reason = "stop_id";
      } else if (!go_on) {
        r.stop_reason = "callback";
      } else if (static_cast<std::int64_t>(r.ids.size()) < max_new) {
        continue;
      }
      done[b] = true;
      --active;
    }
    if (active == 0) break;
    const auto t1 = Clock::now();
    s_->run(next, 1, std::span<const std::int64_t>(&first_row, 1), logits.view());
    const double step_ms = ms_since(t1);
    for (std::int64_t b = 0; b < rows; ++b) {
      if (done[b]) continue;
      results[b].decode_ms += step_ms;
      ++results[b].decode_tokens;
    }
  }
  return results;
}

}  // namespace quarks
