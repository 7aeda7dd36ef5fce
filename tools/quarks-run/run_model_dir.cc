// quarks-run MODEL_DIR: the logits of every position of input_ids from a decoder LM's compiled graph.
#include "tools/quarks-run/run_model_dir.hpp"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <numeric>
#include <optional>
#include <utility>

#include <fmt/format.h>

#include "quarks/quarks.hpp"
#include "tools/common/inputs.hpp"
#include "tools/common/npy.hpp"

namespace quarks::tools {
namespace {

// An int64 input as [batch, seq] (a 1-D file is one sequence).
Tensor ids_input(const std::string& name, const std::string& file) {
  const NpyArray a = read_npy(file);
  Tensor t = to_tensor(a, file);
  if (t.dtype() != DType::kI64) {
    throw Error(ErrorCode::kTypeMismatch, "input '" + name + "' (" + file + ") must be int64 or int32 token data");
  }
  if (t.shape().rank() == 1) return Tensor::from_i64({1, t.shape()[0]}, {t.i64(), static_cast<std::size_t>(t.numel())});
  if (t.shape().rank() != 2 || t.shape()[1] < 1) {
    throw Error(ErrorCode::kShapeMismatch,
                "input '" + name + "' (" + file + ") has shape " + t.shape().to_string() + " but must be [batch, seq]");
  }
  return t;
}

}  // namespace

void run_model_dir(const ModelDirRun& run) {
  std::optional<Tensor> ids_file, mask_file, positions_file;
  for (const auto& [name, file] : run.inputs) {
    if (name == "input_ids") {
      ids_file = ids_input(name, file);
    } else if (name == "attention_mask") {
      mask_file = ids_input(name, file);
    } else if (name == "position_ids") {
      positions_file = ids_input(name, file);
    } else {
      throw Error(ErrorCode::kNotFound,
                  "input '" + name + "': a model directory takes input_ids, attention_mask and position_ids");
    }
  }
  if (!ids_file) throw Error(ErrorCode::kNotFound, "input 'input_ids' is missing (--input input_ids=FILE.npy)");
  const Tensor& ids = *ids_file;
  const std::int64_t batch = ids.shape()[0], seq = ids.shape()[1];
  const Tensor mask = mask_file.value_or(Tensor(DType::kI64, {0}));
  const Tensor positions = positions_file.value_or(Tensor(DType::kI64, {0}));
  for (const auto& [t, what] : {std::pair{&mask_file, "attention_mask"}, std::pair{&positions_file, "position_ids"}}) {
    if (*t && !((*t)->shape() == ids.shape())) {
      throw Error(ErrorCode::kShapeMismatch, std::string(what) + " has shape " + (*t)->shape().to_string() +
                                                 " but input_ids has " + ids.shape().to_string());
    }
  }
  for (std::int64_t i = 0; i < mask.numel(); ++i) {
    if (mask.i64()[i] != 1) {
      throw Error(ErrorCode::kUnsupported, "attention_mask has a 0 (row " + std::to_string(i / seq) +
                                               "): padded batches are not supported yet; give sequences of one length");
    }
  }
  for (std::int64_t i = 0; i < positions.numel(); ++i) {
    if (positions.i64()[i] != i % seq) {
      throw Error(ErrorCode::kUnsupported, "position_ids must be 0 .. seq-1 in every row (row " +
                                               std::to_string(i / seq) + " has " + std::to_string(positions.i64()[i]) +
                                               " at " + std::to_string(i % seq) + ")");
    }
  }
  LoadOptions load;
  load.threads = run.threads;
  load.precision = run.bf16 ? Precision::kBF16 : Precision::kF32;
  load.max_context = seq;
  const LanguageModel lm = LanguageModel::load(run.model_dir, load);
  const std::filesystem::path dir = run.output_dir;
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec || !std::filesystem::is_directory(dir)) {
    throw Error(ErrorCode::kInvalidArgument, "cannot create output directory '" + run.output_dir + "'");
  }
  // The graph's own interface: every row at positions 0 .. seq-1, logits for every position.
  std::vector<std::int64_t> all(static_cast<std::size_t>(seq));
  std::iota(all.begin(), all.end(), std::int64_t{0});
  const Tensor rows = Tensor::from_i64({seq}, all);
  std::vector<std::int64_t> pos(static_cast<std::size_t>(batch * seq));
  for (std::size_t i = 0; i < pos.size(); ++i) pos[i] = static_cast<std::int64_t>(i) % seq;
  const Tensor pos_t = Tensor::from_i64({batch, seq}, pos);
  std::vector<NamedInput> in{{"input_ids", ids}, {"logit_positions", rows}};
  const std::vector<std::string> names = lm.model().input_names();
  if (std::find(names.begin(), names.end(), "position_ids") != names.end()) in.push_back({"position_ids", pos_t});
  Session session(lm.model());
  const std::map<std::string, Tensor> out = session.run(in);
  const Tensor& logits = out.at("logits");
  const std::string path = (dir / "logits.npy").string();
  write_npy(path, logits);
  fmt::print("logits: {} {} -> {}\n", numpy_name(logits.dtype()), logits.shape().to_string(), path);
}

}  // namespace quarks::tools
