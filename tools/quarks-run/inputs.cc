#include "tools/quarks-run/inputs.hpp"

#include <algorithm>
#include <map>
#include <optional>

namespace quarks::tools {

namespace {

// "x, mask", or "the model has no inputs".
std::string input_list(const std::vector<std::string>& names) {
  if (names.empty()) return "the model has no inputs";
  std::string out = "the model's inputs: ";
  for (std::size_t i = 0; i < names.size(); ++i) out += (i ? ", " : "") + names[i];
  return out;
}

// Python's repr of a shape, as NumPy prints a file's shape: "()", "(3,)", "(4, 8)".
std::string python_shape(const Shape& shape) {
  std::string out = "(";
  for (int i = 0; i < shape.rank(); ++i) out += (i ? ", " : "") + std::to_string(shape[i]);
  return out + (shape.rank() == 1 ? ",)" : ")");
}

// One declared dim from Graph::input_shape_string: a size, or a symbol ("?" for an unnamed one).
struct DeclaredDim {
  std::optional<std::int64_t> size;
  std::string symbol;
};

// Parses "[batch,128]"; nullopt if the text is not of that form.
std::optional<std::vector<DeclaredDim>> parse_declared(const std::string& text) {
  if (text.size() < 2 || text.front() != '[' || text.back() != ']') return std::nullopt;
  std::vector<DeclaredDim> dims;
  const std::string body = text.substr(1, text.size() - 2);
  if (body.empty()) return dims;
  std::size_t start = 0;
  while (true) {
    const std::size_t comma = body.find(',', start);
    const std::string token = body.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    if (token.empty()) return std::nullopt;
    DeclaredDim d;
    if (std::all_of(token.begin(), token.end(), [](char c) { return c >= '0' && c <= '9'; }) && token.size() < 19) {
      d.size = std::stoll(token);
    } else {
      d.symbol = token;
    }
    dims.push_back(std::move(d));
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return dims;
}

}  // namespace

const char* numpy_name(DType t) noexcept {
  switch (t) {
    case DType::kF32: return "float32";
    case DType::kBF16: return "bfloat16";
    case DType::kI64: return "int64";
    case DType::kBool: return "bool";
  }
  return "?";
}

bool accepts(DType model, NpyDType file) noexcept {
  switch (model) {
    case DType::kF32: return file == NpyDType::kFloat32 || file == NpyDType::kFloat64;
    case DType::kI64: return file == NpyDType::kInt64 || file == NpyDType::kInt32;
    case DType::kBool: return file == NpyDType::kBool;
    case DType::kBF16: return false;
  }
  return false;
}

std::string check_inputs(const Graph& graph, const std::vector<InputFile>& inputs) {
  const std::vector<std::string> names = graph.input_names();
  const auto has = [&](const std::string& n) { return std::find(names.begin(), names.end(), n) != names.end(); };
  for (const InputFile& in : inputs) {
    if (!has(in.name)) return "unknown input '" + in.name + "' (" + input_list(names) + ")";
  }
  for (const std::string& n : names) {
    const bool given = std::any_of(inputs.begin(), inputs.end(), [&](const InputFile& in) { return in.name == n; });
    if (!given) return "missing input '" + n + "' (" + input_list(names) + "); give --input " + n + "=FILE.npy";
  }
  for (const InputFile& in : inputs) {
    const DType want = graph.input_dtype(in.name);
    if (!accepts(want, in.dtype)) {
      std::string message = "input '" + in.name + "': file " + in.file + " has dtype " + to_string(in.dtype) +
                            " but the model expects " + numpy_name(want);
      if (want == DType::kF32) message += " (float32 or float64 files are accepted)";
      if (want == DType::kI64) message += " (int64 or int32 files are accepted)";
      return message;
    }
  }
  // Shapes. A symbolic dim takes its size from the first file that has it; later files must agree.
  struct Binding {
    std::int64_t size;
    std::string input;
  };
  std::map<std::string, Binding> symbols;
  for (const InputFile& in : inputs) {
    const std::string declared_text = graph.input_shape_string(in.name);
    const auto declared = parse_declared(declared_text);
    if (!declared) continue;  // not the expected form: leave the shape to quarks' own checks
    const std::string prefix = "input '" + in.name + "': file " + in.file + " has shape " + python_shape(in.shape) +
                               " but the model expects " + declared_text;
    if (static_cast<int>(declared->size()) != in.shape.rank()) {
      return prefix + " (rank " + std::to_string(declared->size()) + ")";
    }
    for (int i = 0; i < in.shape.rank(); ++i) {
      const DeclaredDim& d = (*declared)[static_cast<std::size_t>(i)];
      if (d.size) {
        if (*d.size != in.shape[i])
          return prefix + " (dim " + std::to_string(i) + " is " + std::to_string(*d.size) + ")";
        continue;
      }
      if (d.symbol == "?") continue;  // unnamed: nothing to agree with
      const auto [it, fresh] = symbols.emplace(d.symbol, Binding{in.shape[i], in.name});
      if (!fresh && it->second.size != in.shape[i]) {
        return prefix + ", and input '" + it->second.input + "' gives " + d.symbol + " = " +
               std::to_string(it->second.size);
      }
    }
  }
  return "";
}

}  // namespace quarks::tools
