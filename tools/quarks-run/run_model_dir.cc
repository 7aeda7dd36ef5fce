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

// Row b's left padding from attention_mask: its leading zeros. The mask of a row must be zeros, ones,
// zeros (left and/or right padding; right padding needs nothing, causal attention never looks ahead).
std::vector<std::int64_t> left_padding(const Tensor& mask, std::int64_t batch, std::int64_t seq) {
  std::vector<std::int64_t> pad(static_cast<std::size_t>(batch), 0);
  if (mask.numel() == 0) return pad;
  for (std::int64_t b = 0; b < batch; ++b) {
    const std::int64_t* m = mask.i64() + b * seq;
    std::int64_t s = 0;
    while (s < seq && m[s] == 0) ++s;
    pad[b] = s;
    if (s == seq) {
      throw Error(ErrorCode::kInvalidArgument, "attention_mask row " + std::to_string(b) + " is all zeros: no token");
    }
    for (; s < seq && m[s] == 1; ++s) {
    }
    for (; s < seq && m[s] == 0; ++s) {
    }
    if (s < seq) {
      throw Error(ErrorCode::kInvalidArgument,
                  "attention_mask[" + std::to_string(b) + ", " + std::to_string(s) + "] = " + std::to_string(m[s]) +
                      ": a row must be 0s (left padding), then 1s, then 0s (right padding), each entry 0 or 1");
    }
  }
  return pad;
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
  for (const auto& [t, what] : {std::pair{&mask_file, "attention_mask"}, std::pair{&positions_file, "position_ids"}}) {
    if (*t && !((*t)->shape() == ids.shape())) {
      throw Error(ErrorCode::kShapeMismatch, std::string(what) + " has shape " + (*t)->shape().to_string() +
                                                 " but input_ids has " + ids.shape().to_string());
    }
  }
  const std::vector<std::int64_t> pad = left_padding(mask_file.value_or(Tensor(DType::kI64, {0})), batch, seq);
  // Hugging Face's forward without position_ids: 0 .. seq-1 in every row, padding or not.
  Tensor positions;
  if (positions_file) {
    positions = *positions_file;
  } else {
    std::vector<std::int64_t> pos(static_cast<std::size_t>(batch * seq));
    for (std::size_t i = 0; i < pos.size(); ++i) pos[i] = static_cast<std::int64_t>(i) % seq;
    positions = Tensor::from_i64({batch, seq}, pos);
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
  // The graph's own interface (LanguageModel::model): logits for every position.
  std::vector<std::int64_t> all(static_cast<std::size_t>(seq));
  std::iota(all.begin(), all.end(), std::int64_t{0});
  const Tensor rows = Tensor::from_i64({seq}, all);
  const Tensor padding = Tensor::from_i64({batch}, pad);
  const NamedInput in[] = {
      {"input_ids", ids}, {"position_ids", positions}, {"left_padding", padding}, {"logit_positions", rows}};
  Session session(lm.model());
  const std::map<std::string, Tensor> out = session.run(in);
  for (const char* name : {"logits", "last_hidden_state"}) {
    const Tensor& t = out.at(name);
    const std::string path = (dir / (std::string(name) + ".npy")).string();
    write_npy(path, t);
    fmt::print("{}: {} {} -> {}\n", name, numpy_name(t.dtype()), t.shape().to_string(), path);
  }
}

}  // namespace quarks::tools
