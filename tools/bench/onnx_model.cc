#include "tools/bench/onnx_model.hpp"

#include <algorithm>
#include <random>

#include "quarks/onnx.hpp"
#include "tools/common/inputs.hpp"
#include "tools/common/npy.hpp"

namespace quarks::bench {

namespace {

// Uniform in [-1, 1], seeded by the input's position so that every run sees the same data.
Tensor made_up_tensor(const Shape& shape, std::uint32_t seed) {
  Tensor t(DType::kF32, shape);
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  float* p = t.f32();
  for (std::int64_t i = 0; i < t.numel(); ++i) p[i] = dist(rng);
  return t;
}

}  // namespace

LoadedModel load_model(const ModelRequest& request) {
  // Files first: a bad file is reported without a slow import.
  std::vector<tools::InputFile> files;
  std::vector<tools::NpyArray> arrays;
  for (const auto& [name, file] : request.inputs) {
    try {
      arrays.push_back(tools::read_npy(file));
    } catch (const Error& e) {
      throw Error(e.code(), "input '" + name + "': " + e.what());
    }
    files.push_back({name, file, arrays.back().dtype, arrays.back().shape});
  }

  // The declared (symbolic) input shapes, to resolve the shapes of the inputs no file gives. A model
  // that imports only with concrete shapes is imported with the files' shapes and the --dim sizes.
  std::map<std::string, std::int64_t> dims = request.dims;
  Graph declared;
  try {
    declared = load_onnx(request.path);
  } catch (const Error&) {
    OnnxImportOptions options;
    for (const tools::InputFile& f : files) options.input_shapes[f.name] = f.shape;
    options.dims = dims;
    declared = load_onnx(request.path, options);
    dims.clear();  // applied by the import
  }
  std::vector<tools::MadeUpInput> made_up;
  if (const std::string problem = tools::plan_inputs(declared, files, dims, made_up); !problem.empty()) {
    throw Error(ErrorCode::kInvalidArgument, problem);
  }

  OnnxImportOptions options;
  for (const tools::InputFile& f : files) options.input_shapes[f.name] = f.shape;
  for (const tools::MadeUpInput& m : made_up) options.input_shapes[m.name] = m.shape;
  LoadedModel result;
  result.block.graph = load_onnx(request.path, options);

  std::uint32_t seed = 1;
  for (const std::string& name : result.block.graph.input_names()) {
    const auto file =
        std::find_if(files.begin(), files.end(), [&](const tools::InputFile& f) { return f.name == name; });
    Tensor t;
    if (file != files.end()) {
      const std::size_t i = static_cast<std::size_t>(file - files.begin());
      try {
        t = tools::to_tensor(arrays[i], file->file);
      } catch (const Error& e) {
        throw Error(e.code(), "input '" + name + "': " + e.what());
      }
      arrays[i] = {};  // the tensor holds the data now
      result.inputs.push_back({name, t.dtype(), t.shape(), file->file});
    } else {
      t = made_up_tensor(options.input_shapes.at(name), seed);
      result.inputs.push_back({name, t.dtype(), t.shape(), ""});
    }
    ++seed;
    result.block.inputs.emplace_back(name, std::move(t));
  }
  for (const ModelInput& in : result.inputs) {
    result.block.shape += (result.block.shape.empty() ? "" : " ") + in.name + "=" + in.shape.to_string();
  }
  return result;
}

}  // namespace quarks::bench
