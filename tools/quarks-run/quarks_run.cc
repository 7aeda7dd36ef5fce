// quarks-run: runs an ONNX model on NumPy inputs and writes every graph output as a .npy file.
//
//   quarks-run MODEL.onnx --input NAME=FILE.npy ... --output-dir DIR [--threads N] [--precision f32|bf16]
//              [--max-arena-mb N]
//   quarks-run MODEL.onnx --print-graph                    # only the graph after fusion
//   quarks-run MODEL_DIR --input input_ids=IDS.npy --output-dir DIR   # a Hugging Face decoder LM: logits.npy
//
// Every input's shape is taken from its file and given to the importer, so the model is compiled with
// static shapes. Exit status: 0 success, 1 a problem with the model, the inputs or the run (one line on
// stderr), 2 a usage error.
#include <charconv>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include "quarks/onnx.hpp"
#include "quarks/quarks.hpp"
#include "tools/common/cli.hpp"
#include "tools/common/inputs.hpp"
#include "tools/common/npy.hpp"
#include "tools/quarks-run/output_files.hpp"
#include "tools/quarks-run/run_model_dir.hpp"

namespace {

namespace fs = std::filesystem;
using quarks::tools::InputFile;

constexpr int kExitError = 1;
constexpr int kExitUsage = 2;

constexpr const char* kFooter = R"(Inputs:
  Give every graph input once as --input NAME=FILE.npy (NAME is everything before the first '=').
  Each file's shape becomes the input's shape, so the model runs with static shapes. Accepted dtypes:
    float32 input: float32, or float64 (rounded to nearest; a finite value beyond float32's range is
                   an error)
    int64 input:   int64, or int32
    bool input:    bool
  Files may be C or Fortran order and either byte order.

Outputs:
  Every graph output is written to DIR/<name>.npy in C order (DIR is created if missing): float32,
  int64 or bool. A name is made a safe file name first: characters other than ASCII letters, digits,
  '_', '-' and '.' (so '/', '\' and ':') become '_', a leading '.' becomes '_', and if two outputs
  then share a name, the later ones get _2, _3, ... appended. One line per output on stdout says
  where it went.

Model directories:
  MODEL may be a Hugging Face decoder LM's folder (config.json, *.safetensors; the architectures of
  include/quarks/language_model.hpp). Inputs by Hugging Face's names: input_ids (int64 or int32,
  [batch, seq] or [seq]); attention_mask optional (per row 0s of left padding, then 1s, then 0s of
  right padding); position_ids optional (default 0 .. seq-1 in every row, as Hugging Face's forward;
  give cumsum(attention_mask) - 1 for the positions generation uses). The outputs are DIR/logits.npy,
  float32 [batch, seq, vocab], and DIR/last_hidden_state.npy, float32 [batch, seq, hidden].

Exit status:
  0 success; 1 a problem with the model, an input file or the run (one line on stderr,
  "quarks-run: error: ..."); 2 a usage error (unknown option, missing MODEL, malformed --input).)";

// An error for the user: printed as "quarks-run: error: <message>", exit status 1.
struct RunError {
  std::string message;
};

struct Options {
  std::string model;
  std::vector<std::string> input_args;
  std::string output_dir;
  int threads = 0;
  std::string precision = "f32";
  std::size_t max_arena_mb = 0;  ///< CompileOptions::max_arena_bytes in MiB; 0 = no cap
  bool print_graph = false;
};

// Problems found in `inputs` using the model's declared (symbolic) input shapes, or "" when there are
// none or the model cannot be imported without static shapes. Only called after an import or compile
// with static shapes failed, to explain the failure in terms of the files given.
std::string diagnose(const Options& opt, const std::vector<InputFile>& inputs) {
  try {
    return quarks::tools::check_inputs(quarks::load_onnx(opt.model), inputs);
  } catch (const quarks::Error&) {
    return "";
  }
}

// Runs `step`; if it throws quarks::Error and the files explain why, reports that instead.
template <typename Step>
auto explained(const Options& opt, const std::vector<InputFile>& inputs, Step step) {
  try {
    return step();
  } catch (const quarks::Error&) {
    if (!inputs.empty()) {
      const std::string problem = diagnose(opt, inputs);
      if (!problem.empty()) throw RunError{problem};
    }
    throw;
  }
}

int run(const Options& opt, const std::vector<std::pair<std::string, std::string>>& input_args) {
  const bool run_model = !opt.print_graph || !input_args.empty();

  // Read every file before touching the model: a bad file is reported without a slow import.
  std::vector<InputFile> inputs;
  std::vector<quarks::tools::NpyArray> arrays;
  for (const auto& [name, file] : input_args) {
    try {
      arrays.push_back(quarks::tools::read_npy(file));
    } catch (const quarks::Error& e) {
      throw RunError{"input '" + name + "': " + e.what()};
    }
    inputs.push_back({name, file, arrays.back().dtype, arrays.back().shape});
  }

  quarks::OnnxImportOptions import_options;
  for (const InputFile& in : inputs) import_options.input_shapes[in.name] = in.shape;
  const quarks::Graph graph = explained(opt, inputs, [&] { return quarks::load_onnx(opt.model, import_options); });
  if (run_model) {
    const std::string problem = quarks::tools::check_inputs(graph, inputs);
    if (!problem.empty()) throw RunError{problem};
  }

  quarks::CompileOptions compile_options;
  compile_options.threads = opt.threads;
  compile_options.precision = opt.precision == "bf16" ? quarks::Precision::kBF16 : quarks::Precision::kF32;
  compile_options.max_arena_bytes = opt.max_arena_mb << 20;
  const quarks::Model model = [&] {
    try {
      return explained(opt, inputs, [&] { return quarks::compile(graph, compile_options); });
    } catch (const quarks::Error& e) {
      // The planner names the cap in bytes (max_arena_bytes = ...): say which option set it.
      if (e.code() == quarks::ErrorCode::kResourceExhausted && opt.max_arena_mb > 0 &&
          std::string_view(e.what()).find("max_arena_bytes") != std::string_view::npos) {
        throw RunError{std::string(e.what()) + " (--max-arena-mb " + std::to_string(opt.max_arena_mb) + ")"};
      }
      throw;
    }
  }();
  if (opt.print_graph) {
    fmt::print("{}", model.describe());
    std::fflush(stdout);
  }
  if (!run_model) return 0;

  std::vector<quarks::Tensor> tensors;
  std::vector<quarks::NamedInput> named;
  tensors.reserve(inputs.size());
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    try {
      tensors.push_back(quarks::tools::to_tensor(arrays[i], inputs[i].file));
    } catch (const quarks::Error& e) {
      throw RunError{"input '" + inputs[i].name + "': " + e.what()};
    }
    arrays[i] = {};  // the tensor holds the data now
  }
  for (std::size_t i = 0; i < inputs.size(); ++i) named.push_back({inputs[i].name, tensors[i]});
  // Create the output folder before running, so that a bad path does not waste a long run.
  const fs::path dir = opt.output_dir;
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec || !fs::is_directory(dir)) {
    throw RunError{"cannot create output directory '" + opt.output_dir + "'" + (ec ? ": " + ec.message() : "")};
  }
  quarks::Session session(model);
  const std::map<std::string, quarks::Tensor> outputs = session.run(named);

  const std::vector<std::string> names = model.output_names();
  const std::vector<std::string> stems = quarks::tools::output_file_stems(names);
  for (std::size_t i = 0; i < names.size(); ++i) {
    const quarks::Tensor& t = outputs.at(names[i]);
    const std::string path = (dir / (stems[i] + ".npy")).string();
    quarks::tools::write_npy(path, t);
    fmt::print("{}: {} {} -> {}\n", names[i], quarks::tools::numpy_name(t.dtype()), t.shape().to_string(), path);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"quarks-run: run an ONNX model on NumPy .npy inputs and write its outputs as .npy files", "quarks-run"};
  app.footer(kFooter);
  app.set_version_flag("--version", quarks::version());
  Options opt;
  app.add_option("model", opt.model, "the ONNX model file, or a Hugging Face model directory")->required();
  app.add_option("-i,--input", opt.input_args, "a graph input and its .npy file, NAME=FILE.npy (repeat per input)")
      ->allow_extra_args(false)
      ->check(
          [](const std::string& arg) -> std::string {
            const std::size_t eq = arg.find('=');
            if (eq == std::string::npos) return "'" + arg + "' is not NAME=FILE.npy";
            if (eq == 0) return "'" + arg + "' has no input name before '='";
            if (eq + 1 == arg.size()) return "'" + arg + "' has no file after '='";
            return "";
          },
          "NAME=FILE");
  app.add_option("-o,--output-dir", opt.output_dir, "folder for the output .npy files (created if missing)");
  app.add_option("--threads", opt.threads, "threads for the run; 0 = all hardware threads")
      ->check(
          [](const std::string& arg) -> std::string {
            int value = -1;
            const auto [end, ec] = std::from_chars(arg.data(), arg.data() + arg.size(), value);
            if (ec != std::errc() || end != arg.data() + arg.size() || value < 0) {
              return "'" + arg + "' is not a thread count (0 = all hardware threads, or a positive number)";
            }
            return "";
          },
          "0..")
      ->capture_default_str();
  app.add_option("--precision", opt.precision, "precision of the dense products")
      ->check(CLI::IsMember({"f32", "bf16"}))
      ->capture_default_str();
  app.add_option("--max-arena-mb", opt.max_arena_mb,
                 "cap on the activation memory of the run, in MiB (0 = no cap); a model that needs more for the "
                 "given input shapes is an error before anything is allocated")
      ->check(
          [](const std::string& arg) -> std::string {
            std::uint64_t value = 0;
            const auto [end, ec] = std::from_chars(arg.data(), arg.data() + arg.size(), value);
            if (ec != std::errc() || end != arg.data() + arg.size() || value > (SIZE_MAX >> 20)) {
              return "'" + arg + "' is not a size in MiB (0 = no cap, or a positive number)";
            }
            return "";
          },
          "0..")
      ->capture_default_str();
  app.add_flag("--print-graph", opt.print_graph,
               "print the graph after fusion, one node per line, to stdout; without inputs, only that");

  const auto usage_error = [](const char* message) {
    std::fprintf(stderr, "quarks-run: error: %s (see quarks-run --help)\n", message);
    return kExitUsage;
  };
  if (const auto status = quarks::tools::parse_command_line(app, argc, argv, usage_error)) return *status;

  std::vector<std::pair<std::string, std::string>> input_args;
  std::set<std::string> seen;
  for (const std::string& arg : opt.input_args) {
    const std::size_t eq = arg.find('=');
    std::string name = arg.substr(0, eq);
    if (!seen.insert(name).second) {
      std::fprintf(stderr, "quarks-run: error: input '%s' is given more than once (see quarks-run --help)\n",
                   name.c_str());
      return kExitUsage;
    }
    input_args.emplace_back(std::move(name), arg.substr(eq + 1));
  }
  if ((!opt.print_graph || !input_args.empty()) && opt.output_dir.empty()) {
    std::fprintf(stderr, "quarks-run: error: --output-dir is required to run the model (see quarks-run --help)\n");
    return kExitUsage;
  }

  try {
    if (fs::is_directory(opt.model)) {
      if (opt.print_graph) {
        std::fprintf(stderr, "quarks-run: error: --print-graph takes an ONNX file, not a model directory\n");
        return kExitUsage;
      }
      quarks::tools::run_model_dir({opt.model, opt.output_dir, input_args, opt.threads, opt.precision == "bf16"});
      return 0;
    }
    return run(opt, input_args);
  } catch (const RunError& e) {
    std::fprintf(stderr, "quarks-run: error: %s\n", e.message.c_str());
  } catch (const quarks::Error& e) {
    std::fprintf(stderr, "quarks-run: error: %s\n", e.what());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "quarks-run: error: %s\n", e.what());
  }
  return kExitError;
}
