#include "tools/common/inputs.hpp"

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

namespace {

// A symbolic dim's size and who set it: "input 'ids' gives" or "--dim gives".
struct Binding {
  std::int64_t size;
  std::string source;
};
using Bindings = std::map<std::string, Binding>;

std::string check_names(const std::vector<std::string>& names, const std::vector<InputFile>& inputs) {
  for (const InputFile& in : inputs) {
    if (std::find(names.begin(), names.end(), in.name) == names.end()) {
      return "unknown input '" + in.name + "' (" + input_list(names) + ")";
    }
  }
  return "";
}

std::string check_dtypes(const Graph& graph, const std::vector<InputFile>& inputs) {
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
  return "";
}

// The files' shapes against the declared ones. A symbolic dim takes its size from `symbols` (--dim) or
// the first file that has it; later files must agree.
std::string check_shapes(const Graph& graph, const std::vector<InputFile>& inputs, Bindings& symbols) {
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
      const auto [it, fresh] = symbols.emplace(d.symbol, Binding{in.shape[i], "input '" + in.name + "' gives"});
      if (!fresh && it->second.size != in.shape[i]) {
        return prefix + ", and " + it->second.source + " " + d.symbol + " = " + std::to_string(it->second.size);
      }
    }
  }
  return "";
}

}  // namespace

std::string check_inputs(const Graph& graph, const std::vector<InputFile>& inputs) {
  const std::vector<std::string> names = graph.input_names();
  if (std::string problem = check_names(names, inputs); !problem.empty()) return problem;
  for (const std::string& n : names) {
    const bool given = std::any_of(inputs.begin(), inputs.end(), [&](const InputFile& in) { return in.name == n; });
    if (!given) return "missing input '" + n + "' (" + input_list(names) + "); give --input " + n + "=FILE.npy";
  }
  if (std::string problem = check_dtypes(graph, inputs); !problem.empty()) return problem;
  Bindings symbols;
  return check_shapes(graph, inputs, symbols);
}

std::string plan_inputs(const Graph& graph, const std::vector<InputFile>& files,
                        const std::map<std::string, std::int64_t>& dims, std::vector<MadeUpInput>& made_up) {
  made_up.clear();
  const std::vector<std::string> names = graph.input_names();
  if (std::string problem = check_names(names, files); !problem.empty()) return problem;

  // Every named symbolic dim of the declared shapes, in order of first appearance.
  std::vector<std::string> symbols_in_order;
  for (const std::string& n : names) {
    const auto declared = parse_declared(graph.input_shape_string(n));
    if (!declared) continue;
    for (const DeclaredDim& d : *declared) {
      if (d.size || d.symbol == "?") continue;
      if (std::find(symbols_in_order.begin(), symbols_in_order.end(), d.symbol) == symbols_in_order.end()) {
        symbols_in_order.push_back(d.symbol);
      }
    }
  }
  Bindings symbols;
  for (const auto& [dim, size] : dims) {
    if (std::find(symbols_in_order.begin(), symbols_in_order.end(), dim) == symbols_in_order.end()) {
      std::string known = "the model has no symbolic dims";
      if (!symbols_in_order.empty()) {
        known = "the model's symbolic dims: ";
        for (std::size_t i = 0; i < symbols_in_order.size(); ++i) known += (i ? ", " : "") + symbols_in_order[i];
      }
      return "unknown dim '" + dim + "' (" + known + ")";
    }
    symbols.emplace(dim, Binding{size, "--dim gives"});
  }
  if (std::string problem = check_dtypes(graph, files); !problem.empty()) return problem;
  if (std::string problem = check_shapes(graph, files, symbols); !problem.empty()) return problem;

  std::vector<MadeUpInput> result;
  for (const std::string& n : names) {
    if (std::any_of(files.begin(), files.end(), [&](const InputFile& in) { return in.name == n; })) continue;
    const DType dtype = graph.input_dtype(n);
    if (dtype != DType::kF32) {
      return "input '" + n + "' is " + numpy_name(dtype) + ": give --input " + n +
             "=FILE.npy (only float32 inputs are made up)";
    }
    const std::string declared_text = graph.input_shape_string(n);
    const auto declared = parse_declared(declared_text);
    if (!declared) return "input '" + n + "' has the shape " + declared_text + ": give --input " + n + "=FILE.npy";
    MadeUpInput in{n, {}};
    for (std::size_t i = 0; i < declared->size(); ++i) {
      const DeclaredDim& d = (*declared)[i];
      if (d.size) {
        in.shape.push_back(*d.size);
      } else if (d.symbol == "?") {
        return "input '" + n + "' has an unnamed symbolic dim (dim " + std::to_string(i) + " of " + declared_text +
               "): give --input " + n + "=FILE.npy";
      } else if (const auto it = symbols.find(d.symbol); it != symbols.end()) {
        in.shape.push_back(it->second.size);
      } else {
        return "input '" + n + "' has the symbolic dim '" + d.symbol + "' (" + declared_text + "): give --dim " +
               d.symbol + "=N, or --input " + n + "=FILE.npy";
      }
    }
    result.push_back(std::move(in));
  }
  made_up = std::move(result);
  return "";
}

}  // namespace quarks::tools
