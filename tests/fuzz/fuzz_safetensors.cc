// libFuzzer target: the safetensors reader (Checkpoint::from_bytes, to_f32, view_f32). Seeds: corpus/safetensors.
#include "fuzz/fuzz_target.hpp"

QUARKS_FUZZ_TARGET(quarks::fuzz::fuzz_safetensors_bytes(bytes))
