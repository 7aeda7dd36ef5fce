// Matching .npy files to a model's graph inputs (quarks-run, quarks-bench --model): which file dtypes an
// input accepts, and checks of names, dtypes and shapes that explain a mismatch in terms of the files
// and --dim values the user gave.
#pragma once

#include <cstdint>
#include <map>
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

/// A graph input no file gives, to be filled with made-up data of this (concrete) shape.
struct MadeUpInput {
  std::string name;
  Shape shape;
};

/// quarks-bench --model: `files` give some of `graph`'s inputs, `dims` sizes of its symbolic dims
/// (--dim NAME=VALUE); every other input is made up, which only float32 inputs can be. Returns the
/// first problem as a one-line message, or "" and sets `made_up` to the inputs no file gives, in the
/// graph's order, with their shapes. Checked in this order: unknown input names, dims in `dims` that
/// no input has ("unknown dim 'foo' (the model's symbolic dims: batch, seq)"), file dtypes, file shapes
/// (as check_inputs, with `dims` binding their symbols first), then inputs without a file: a non-float
/// input ("input 'ids' is int64: give --input ids=FILE.npy ..."), or a symbolic dim that neither
/// `dims` nor a file sets ("input 'x' has the symbolic dim 'seq' ([batch,seq,64]): give --dim seq=N
/// ..."). `graph` should keep the model's declared symbolic dims (loaded without input shapes).
std::string plan_inputs(const Graph& graph, const std::vector<InputFile>& files,
                        const std::map<std::string, std::int64_t>& dims, std::vector<MadeUpInput>& made_up);

}  // namespace quarks::tools
