// Fuzz body of the Hugging Face config reader: parse_decoder_config on arbitrary text, with the
// reader's promises checked on whatever parses (a model quarks would build from it) and on every error.
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "engine/models/hf_config.hpp"
#include "fuzz/fuzz_bodies.hpp"
#include "quarks/error.hpp"

namespace quarks::fuzz {
namespace {

constexpr char kWhere[] = "fuzz/config.json";

[[noreturn]] void fail(const char* what, const std::string& detail) {
  std::fprintf(stderr, "fuzz_hf_config_text: %s: %s\n", what, detail.c_str());
  std::abort();
}

// A config that parsed describes a decoder quarks can build: positive sizes, heads that group, an even
// head dim where rotary embeddings need one, finite positive constants and rotary frequencies.
void check_config(const models::DecoderConfig& c) {
  if (c.architecture.empty()) fail("no architecture", "");
  if (c.vocab_size < 1 || c.hidden_size < 1 || c.intermediate_size < 1 || c.num_layers < 1)
    fail("a size is < 1", c.architecture);
  if (c.num_heads < 1 || c.num_kv_heads < 1 || c.num_heads % c.num_kv_heads != 0)
    fail("query heads do not group over the KV heads",
         std::to_string(c.num_heads) + "/" + std::to_string(c.num_kv_heads));
  if (c.head_dim < 1) fail("head_dim < 1", std::to_string(c.head_dim));
  if (c.max_position_embeddings < 1) fail("max_position_embeddings < 1", "");
  if (!(c.norm_eps > 0) || !std::isfinite(c.norm_eps)) fail("norm eps not finite and > 0", "");
  if (c.sliding_window < 0) fail("sliding_window < 0", "");
  if (c.architecture != "GPT2LMHeadModel") {  // rotary embeddings: an even head dim
    if (c.head_dim < 2 || c.head_dim % 2 != 0) fail("head_dim is not even and >= 2", std::to_string(c.head_dim));
    if (!(c.rope_theta > 0) || !std::isfinite(c.rope_theta)) fail("rope_theta not finite and > 0", "");
    const std::vector<double> f = models::rope_inverse_frequencies(c);
    if (f.size() * 2 != static_cast<std::size_t>(c.head_dim)) fail("not head_dim / 2 rotary frequencies", "");
    for (double v : f)
      if (!(v >= 0) || !std::isfinite(v)) fail("a rotary frequency is not finite and >= 0", std::to_string(v));
  }
  for (std::int64_t id : c.eos_token_ids)
    if (id < 0) fail("a negative eos_token_id", std::to_string(id));
}

}  // namespace

void fuzz_hf_config_text(std::span<const std::byte> bytes, FuzzStats* stats) {
  if (stats) ++stats->cases;
  const std::string text(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  try {
    const models::DecoderConfig c = models::parse_decoder_config(text, kWhere);
    if (stats) ++stats->loaded;
    check_config(c);
  } catch (const Error& e) {
    if (std::strncmp(e.what(), kWhere, sizeof kWhere - 1) != 0) fail("an error does not start with the file", e.what());
  }
}

}  // namespace quarks::fuzz
