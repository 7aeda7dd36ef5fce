// libFuzzer target: the .npy reader of the tools (read_npy_bytes and conversions). Seeds: corpus/npy_reader.
#include "fuzz/fuzz_target.hpp"

QUARKS_FUZZ_TARGET(quarks::fuzz::fuzz_npy_file(bytes))
