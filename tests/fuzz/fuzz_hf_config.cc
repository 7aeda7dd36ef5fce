// libFuzzer target: the Hugging Face config.json reader (parse_decoder_config). Seeds: corpus/hf_config.
#include "fuzz/fuzz_target.hpp"

QUARKS_FUZZ_TARGET(quarks::fuzz::fuzz_hf_config_text(bytes))
