// quarks-bench --model: an ONNX model as a benchmark workload, with its inputs read from .npy files
// or made up (random float32 in [-1, 1]), and symbolic dims fixed by --dim.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "tools/bench/blocks.hpp"

namespace quarks::bench {

struct ModelRequest {
  std::string path;                                         ///< the .onnx file
  std::vector<std::pair<std::string, std::string>> inputs;  ///< --input NAME=FILE.npy, in the order given
  std::map<std::string, std::int64_t> dims;                 ///< --dim NAME=VALUE
};

/// Where one graph input's data came from.
struct ModelInput {
  std::string name;
  DType dtype = DType::kF32;
  Shape shape;
  std::string file;  ///< the .npy file, or "" for made-up data
};

struct LoadedModel {
  BuiltBlock block;                ///< the graph (imported with every input's shape fixed) and its inputs
  std::vector<ModelInput> inputs;  ///< in the graph's order
};

/// Reads the files, resolves every input's shape (files, then --dim for the rest; see
/// tools::plan_inputs), makes up the float32 inputs no file gives (fixed seeds, so runs repeat) and
/// imports the model with static shapes. Throws quarks::Error with a one-line message naming the input,
/// file or dim at fault.
LoadedModel load_model(const ModelRequest& request);

}  // namespace quarks::bench
