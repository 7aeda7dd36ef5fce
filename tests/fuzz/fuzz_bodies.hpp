// The bodies of quarks' fuzz targets, shared by the libFuzzer entry points (fuzz_*.cc, built with
// QUARKS_FUZZ) and by the GoogleTests that replay inputs (tests/fuzz/fuzz_inputs_test.cc,
// tests/onnx/onnx_fuzz_test.cc). Each body takes arbitrary bytes and must either succeed or throw
// quarks::Error, which it catches itself: anything else it throws (another exception type,
// std::bad_alloc included) is a finding, and so is a crash or undefined behaviour under the sanitizers.
#pragma once

#include <cstddef>
#include <span>

namespace quarks::fuzz {

/// How far inputs got: loaded (imported, parsed or built), compiled (for .npy and safetensors: converted
/// to a tensor), ran.
struct FuzzStats {
  long cases = 0, loaded = 0, compiled = 0, ran = 0;
};

/// ONNX import of `bytes` (load_onnx_bytes; retried with every symbolic input dim bound to 2 when the
/// first import needs concrete shapes), then compile and a run on zero-filled inputs when the inputs
/// are small. verbose >= 2 prints each quarks::Error to stderr.
void fuzz_onnx_model(std::span<const std::byte> bytes, FuzzStats* stats = nullptr, int verbose = 0);

/// read_npy_bytes on `bytes`; a file that parses must hold exactly shape × dtype bytes and is then
/// converted with to_f32_tensor and to_tensor. Every Error must start with the name given ("fuzz.npy: ").
/// Aborts if an invariant fails (so libFuzzer and the GoogleTest both see it).
void fuzz_npy_file(std::span<const std::byte> bytes, FuzzStats* stats = nullptr);

/// Checkpoint::from_bytes of `bytes` as a safetensors file, then to_f32 of every tensor (and view_f32
/// of the F32 ones). Every Error must start with "file fuzz.safetensors: "; a tensor that parsed must
/// lie inside the bytes, hold exactly its shape's elements and convert unless its dtype is one to_f32
/// refuses. Aborts if an invariant fails.
void fuzz_safetensors_bytes(std::span<const std::byte> bytes, FuzzStats* stats = nullptr);

/// parse_decoder_config of `bytes` as a config.json. Every Error must start with "fuzz/config.json"; a
/// config that parses must describe a buildable decoder (positive sizes, grouped heads, an even head
/// dim, finite positive constants and rotary frequencies). Aborts if an invariant fails.
void fuzz_hf_config_text(std::span<const std::byte> bytes, FuzzStats* stats = nullptr);

/// Decodes `bytes` into a sequence of GraphBuilder calls (inputs with fixed or symbolic dims,
/// constants, ops with attributes, outputs), builds and compiles the graph (threads = 1, arena and
/// state capped) and, if it compiles and its inputs are small, runs it on inputs filled from the bytes.
/// See graph_build_body.cc for the encoding.
void fuzz_graph_build(std::span<const std::byte> bytes, FuzzStats* stats = nullptr, int verbose = 0);

}  // namespace quarks::fuzz
