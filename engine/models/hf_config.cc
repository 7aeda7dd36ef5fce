// config.json / generation_config.json -> DecoderConfig (see hf_config.hpp).
#include "engine/models/hf_config.hpp"

#include <cmath>
#include <fstream>
#include <numbers>
#include <sstream>

#include <nlohmann/json.hpp>

#include "quarks/error.hpp"

namespace quarks::models {
namespace {

using nlohmann::json;

// Reads fields of one JSON object, each error naming the file and the field.
class Fields {
 public:
  Fields(const json& j, std::string where) : j_(j), where_(std::move(where)) {
    if (!j_.is_object()) fail("the file is not a JSON object");
  }
  [[noreturn]] void fail(const std::string& message) const {
    throw Error(ErrorCode::kInvalidArgument, where_ + ": " + message);
  }
  [[noreturn]] void unsupported(const std::string& message) const {
    throw Error(ErrorCode::kUnsupported, where_ + ": " + message);
  }
  bool has(const char* key) const { return j_.contains(key) && !j_.at(key).is_null(); }
  const json& raw(const char* key) const { return j_.at(key); }

  std::int64_t integer(const char* key) const {
    if (!has(key)) fail(std::string("field '") + key + "' is missing");
    const json& v = j_.at(key);
    if (!v.is_number_integer()) fail(std::string("field '") + key + "' must be an integer, got " + v.dump());
    return v.get<std::int64_t>();
  }
  std::int64_t integer(const char* key, std::int64_t fallback) const { return has(key) ? integer(key) : fallback; }
  std::int64_t positive(const char* key) const { return positive(key, integer(key)); }
  std::int64_t positive(const char* key, std::int64_t value) const {
    if (value < 1 || value > (std::int64_t{1} << 31))
      fail(std::string("field '") + key + "' must be in [1, 2^31], got " + std::to_string(value));
    return value;
  }
  double number(const char* key, double fallback) const {
    if (!has(key)) return fallback;
    const json& v = j_.at(key);
    if (!v.is_number()) fail(std::string("field '") + key + "' must be a number, got " + v.dump());
    const double d = v.get<double>();
    if (!std::isfinite(d)) fail(std::string("field '") + key + "' must be finite");
    return d;
  }
  bool boolean(const char* key, bool fallback) const {
    if (!has(key)) return fallback;
    const json& v = j_.at(key);
    if (!v.is_boolean()) fail(std::string("field '") + key + "' must be true or false, got " + v.dump());
    return v.get<bool>();
  }
  std::string text(const char* key, const std::string& fallback) const {
    if (!has(key)) return fallback;
    const json& v = j_.at(key);
    if (!v.is_string()) fail(std::string("field '") + key + "' must be a string, got " + v.dump());
    return v.get<std::string>();
  }
  /// An int or a list of ints (eos_token_id); empty when absent.
  std::vector<std::int64_t> ids(const char* key) const {
    std::vector<std::int64_t> out;
    if (!has(key)) return out;
    const json& v = j_.at(key);
    if (v.is_number_integer()) return {v.get<std::int64_t>()};
    if (!v.is_array()) fail(std::string("field '") + key + "' must be an integer or a list of integers");
    for (std::size_t i = 0; i < v.size(); ++i) {
      if (!v[i].is_number_integer())
        fail(std::string("field '") + key + "[" + std::to_string(i) + "]' must be an integer, got " + v[i].dump());
      out.push_back(v[i].get<std::int64_t>());
    }
    return out;
  }
  const std::string& where() const { return where_; }

 private:
  const json& j_;
  std::string where_;
};

json parse_json(const std::string& text, const std::string& where) {
  try {
    return json::parse(text);
  } catch (const json::exception& e) {  // parse_error, and out_of_range for a number beyond double (1e705)
    throw Error(ErrorCode::kInvalidArgument, where + ": not valid JSON (" + e.what() + ")");
  }
}

std::string read_text(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw Error(ErrorCode::kNotFound, file.string() + ": cannot open the file");
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

Activation activation_named(const Fields& f, const char* key, const std::string& name) {
  if (name == "silu" || name == "swish") return Activation::silu();
  if (name == "gelu") return Activation::gelu();
  if (name == "gelu_pytorch_tanh" || name == "gelu_new" || name == "gelu_fast") return Activation::gelu_tanh();
  if (name == "relu") return Activation::relu();
  f.unsupported(std::string("field '") + key + "' is '" + name +
                "', which quarks does not run (it runs silu, gelu, gelu_pytorch_tanh, gelu_new, gelu_fast, relu)");
}

void read_rope(const Fields& f, DecoderConfig& c) {
  c.rope_theta = f.number("rope_theta", 10000.0);
  if (!(c.rope_theta > 0)) f.fail("field 'rope_theta' must be > 0");
  if (f.number("partial_rotary_factor", 1.0) != 1.0)
    f.unsupported("field 'partial_rotary_factor' is not 1: quarks rotates the whole head");
  if (!f.has("rope_scaling")) return;
  const Fields s(f.raw("rope_scaling"), f.where() + ": field 'rope_scaling'");
  const std::string type = s.has("rope_type") ? s.text("rope_type", "") : s.text("type", "default");
  if (type == "default") return;
  if (type != "llama3") {
    f.unsupported("rope_scaling type '" + type + "' is not supported (quarks runs 'default' and 'llama3')");
  }
  Llama3RopeScaling l;
  l.factor = s.number("factor", 8.0);
  l.low_freq_factor = s.number("low_freq_factor", 1.0);
  l.high_freq_factor = s.number("high_freq_factor", 4.0);
  l.original_max_position_embeddings = s.number("original_max_position_embeddings", 8192.0);
  if (!(l.factor > 0) || !(l.low_freq_factor > 0) || !(l.high_freq_factor > l.low_freq_factor) ||
      !(l.original_max_position_embeddings > 0)) {
    s.fail("needs factor > 0, 0 < low_freq_factor < high_freq_factor and original_max_position_embeddings > 0");
  }
  c.llama3_scaling = l;
}

// Llama and the architectures that extend it (Mistral, Qwen2, Qwen3, Gemma).
void read_llama_like(const Fields& f, DecoderConfig& c) {
  c.vocab_size = f.positive("vocab_size");
  c.hidden_size = f.positive("hidden_size");
  c.intermediate_size = f.positive("intermediate_size");
  c.num_layers = static_cast<int>(f.positive("num_hidden_layers"));
  c.num_heads = static_cast<int>(f.positive("num_attention_heads"));
  c.num_kv_heads = static_cast<int>(f.positive("num_key_value_heads", f.integer("num_key_value_heads", c.num_heads)));
  c.max_position_embeddings = f.positive("max_position_embeddings", f.integer("max_position_embeddings", 2048));
  c.norm_eps = f.number("rms_norm_eps", 1e-6);
  if (!(c.norm_eps > 0)) f.fail("field 'rms_norm_eps' must be > 0");
  read_rope(f, c);
  c.activation = activation_named(f, "hidden_act", f.text("hidden_act", "silu"));
  c.qkv_bias = c.o_bias = f.boolean("attention_bias", false);
  c.mlp_bias = f.boolean("mlp_bias", false);
  c.tie_word_embeddings = f.boolean("tie_word_embeddings", false);
  if (c.hidden_size % c.num_heads != 0 && !f.has("head_dim"))
    f.fail("hidden_size " + std::to_string(c.hidden_size) +
           " is not a multiple of num_attention_heads and no head_dim is given");
  c.head_dim = static_cast<int>(f.positive("head_dim", f.integer("head_dim", c.hidden_size / c.num_heads)));
}

void no_sliding_window(const Fields& f) {
  if (f.boolean("use_sliding_window", false))
    f.unsupported("field 'use_sliding_window' is true: quarks runs Qwen models with full attention only");
}

}  // namespace

DecoderConfig parse_decoder_config(const std::string& json_text, const std::string& where) {
  const json j = parse_json(json_text, where);
  const Fields f(j, where);
  if (!f.has("architectures") || !f.raw("architectures").is_array() || f.raw("architectures").size() != 1 ||
      !f.raw("architectures")[0].is_string()) {
    f.fail("field 'architectures' must be a list of one architecture name");
  }
  DecoderConfig c;
  c.architecture = f.raw("architectures")[0].get<std::string>();
  const std::string& a = c.architecture;
  if (a == "LlamaForCausalLM") {
    read_llama_like(f, c);
  } else if (a == "MistralForCausalLM") {
    read_llama_like(f, c);
    c.sliding_window = f.has("sliding_window") ? f.positive("sliding_window") : 0;
  } else if (a == "Qwen2ForCausalLM") {
    read_llama_like(f, c);
    no_sliding_window(f);
    c.qkv_bias = true;  // Qwen2 always has q, k and v biases and none on o
    c.o_bias = false;
  } else if (a == "Qwen3ForCausalLM") {
    read_llama_like(f, c);
    no_sliding_window(f);
    c.qk_norm = true;
  } else if (a == "GemmaForCausalLM") {
    read_llama_like(f, c);
    c.norm = NormKind::kRmsOnePlus;
    c.embed_scale = true;
    c.tie_word_embeddings = true;  // Gemma's head is always its embedding
    // Hugging Face runs Gemma's MLP with hidden_activation, defaulting to the tanh GELU whatever
    // hidden_act says.
    c.activation = activation_named(f, "hidden_activation", f.text("hidden_activation", "gelu_pytorch_tanh"));
  } else if (a == "GPT2LMHeadModel") {
    c.vocab_size = f.positive("vocab_size");
    c.hidden_size = f.positive("n_embd");
    c.num_layers = static_cast<int>(f.positive("n_layer"));
    c.num_heads = c.num_kv_heads = static_cast<int>(f.positive("n_head"));
    if (c.hidden_size % c.num_heads != 0) f.fail("n_embd is not a multiple of n_head");
    c.head_dim = static_cast<int>(c.hidden_size / c.num_heads);
    c.intermediate_size = f.has("n_inner") ? f.positive("n_inner") : 4 * c.hidden_size;
    c.max_position_embeddings = f.positive("n_positions");
    c.norm = NormKind::kLayer;
    c.norm_eps = f.number("layer_norm_epsilon", 1e-5);
    if (!(c.norm_eps > 0)) f.fail("field 'layer_norm_epsilon' must be > 0");
    c.positions = PositionKind::kLearned;
    c.qkv_bias = c.o_bias = c.mlp_bias = true;
    c.gated_mlp = false;
    c.activation = activation_named(f, "activation_function", f.text("activation_function", "gelu_new"));
    c.tie_word_embeddings = true;
    if (!f.boolean("scale_attn_weights", true))
      f.unsupported("field 'scale_attn_weights' is false: quarks scales attention scores by 1/sqrt(head_dim)");
    if (f.boolean("scale_attn_by_inverse_layer_idx", false))
      f.unsupported("field 'scale_attn_by_inverse_layer_idx' is true, which quarks does not implement");
  } else {
    f.unsupported("architecture '" + a +
                  "' is not supported (quarks runs LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM, "
                  "Qwen3ForCausalLM, GemmaForCausalLM, GPT2LMHeadModel)");
  }
  if (c.num_heads % c.num_kv_heads != 0) {
    f.fail("num_attention_heads " + std::to_string(c.num_heads) + " is not a multiple of num_key_value_heads " +
           std::to_string(c.num_kv_heads));
  }
  if (c.head_dim % 2 != 0 && c.positions == PositionKind::kRope)
    f.fail("head_dim " + std::to_string(c.head_dim) + " must be even for rotary embeddings");
  c.eos_token_ids = f.ids("eos_token_id");
  if (f.has("bos_token_id")) c.bos_token_id = f.integer("bos_token_id");
  for (std::int64_t id : c.eos_token_ids) {
    if (id < 0 || id >= c.vocab_size)
      f.fail("eos_token_id " + std::to_string(id) + " is outside the vocabulary [0, " + std::to_string(c.vocab_size) +
             ")");
  }
  return c;
}

DecoderConfig read_decoder_config(const std::filesystem::path& model_dir) {
  const std::filesystem::path file = model_dir / "config.json";
  return parse_decoder_config(read_text(file), file.string());
}

void read_generation_config(const std::filesystem::path& model_dir, DecoderConfig& config,
                            GenerationDefaults& defaults) {
  const std::filesystem::path file = model_dir / "generation_config.json";
  if (!std::filesystem::exists(file)) return;
  const json j = parse_json(read_text(file), file.string());
  const Fields f(j, file.string());
  const std::vector<std::int64_t> eos = f.ids("eos_token_id");
  if (!eos.empty()) config.eos_token_ids = eos;
  defaults.do_sample = f.boolean("do_sample", defaults.do_sample);
  defaults.temperature = f.number("temperature", defaults.temperature);
  defaults.top_k = static_cast<int>(f.integer("top_k", defaults.top_k));
  defaults.top_p = f.number("top_p", defaults.top_p);
  defaults.repetition_penalty = f.number("repetition_penalty", defaults.repetition_penalty);
  defaults.max_new_tokens = f.integer("max_new_tokens", defaults.max_new_tokens);
  if (defaults.temperature < 0 || defaults.top_k < 0 || !(defaults.top_p > 0 && defaults.top_p <= 1) ||
      !(defaults.repetition_penalty > 0) || defaults.max_new_tokens < 0) {
    f.fail("needs temperature >= 0, top_k >= 0, 0 < top_p <= 1, repetition_penalty > 0, max_new_tokens >= 0");
  }
}

std::vector<double> rope_inverse_frequencies(const DecoderConfig& c) {
  const int half = c.head_dim / 2;
  std::vector<double> f(static_cast<std::size_t>(half));
  for (int d = 0; d < half; ++d) f[d] = std::pow(c.rope_theta, -2.0 * d / c.head_dim);
  if (!c.llama3_scaling) return f;
  const Llama3RopeScaling& s = *c.llama3_scaling;
  const double low_wavelen = s.original_max_position_embeddings / s.low_freq_factor;
  const double high_wavelen = s.original_max_position_embeddings / s.high_freq_factor;
  for (double& inv : f) {
    const double wavelen = 2 * std::numbers::pi / inv;
    if (wavelen > low_wavelen) {
      inv /= s.factor;  // low frequencies: interpolated
    } else if (wavelen >= high_wavelen) {
      // between: smooth interpolation of the two
      const double smooth =
          (s.original_max_position_embeddings / wavelen - s.low_freq_factor) / (s.high_freq_factor - s.low_freq_factor);
      inv = (1 - smooth) * inv / s.factor + smooth * inv;
    }  // high frequencies: unchanged
  }
  return f;
}

}  // namespace quarks::models
