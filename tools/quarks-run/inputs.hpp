// quarks-run: matching .npy files to a model's graph inputs — which file dtypes an input accepts, and
// a check of names, dtypes and shapes that explains a mismatch in terms of the files the user gave.
#pragma once

#include <string>
#include <vector>

#include "quarks/graph.hpp"
#include "quarks/tensor.hpp"
#include "tools/common/npy.hpp"

namespace quarks::tools {

/// One --input NAME=FILE, with what its file holds.
struct InputFile {
  std::string name;
  std::string file;
  NpyDType dtype = NpyDType::kFloat32;
  Shape shape;
};

/// NumPy's name of a quarks dtype: "float32", "int64", "bool", "bfloat16".
const char* numpy_name(DType t) noexcept;

/// Whether a file of `file` dtype may feed an input of `model` dtype: f32 takes float32 and float64
/// (rounded to nearest), i64 takes int64 and int32 (exact), bool takes bool.
bool accepts(DType model, NpyDType file) noexcept;

/// The first problem with `inputs` as the inputs of `graph`, as a one-line message, or "" if none.
/// Checked in this order: names the graph does not have ("unknown input 'foo' (the model's inputs: x,
/// mask)"), graph inputs not given ("missing input ..."), dtypes (see accepts), then shapes against
/// the declared ones: rank, fixed dims, and symbolic dims that two files give different sizes.
/// `graph` may have symbolic input dims (then shapes are checked against them) or the files' shapes.
std::string check_inputs(const Graph& graph, const std::vector<InputFile>& inputs);

}  // namespace quarks::tools
