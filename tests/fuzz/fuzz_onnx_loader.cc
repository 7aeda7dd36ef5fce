// libFuzzer target: ONNX import (load_onnx_bytes), then compile and run. Seeds: corpus/onnx_loader.
#include "fuzz/fuzz_target.hpp"

QUARKS_FUZZ_TARGET(quarks::fuzz::fuzz_onnx_model(bytes, nullptr, quarks::fuzz::verbosity()))
