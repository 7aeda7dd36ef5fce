// quarks-run on a Hugging Face model directory (run_model_dir.cc).
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace quarks::tools {

struct ModelDirRun {
  std::string model_dir, output_dir;
  std::vector<std::pair<std::string, std::string>> inputs;  ///< NAME, FILE.npy
  int threads = 0;
  bool bf16 = false;
};

/// Scores every position: input_ids [batch, seq] (or [seq]) int64/int32 from its file; attention_mask
/// optional (per row 0s of left padding, 1s, 0s of right padding; default all ones) and position_ids
/// optional (default 0 .. seq-1 in every row, as Hugging Face's forward; pass cumsum(mask) - 1 for the
/// positions generation gives a left-padded row). Writes logits.npy, float32 [batch, seq, vocab], and
/// last_hidden_state.npy, float32 [batch, seq, hidden]. Throws quarks::Error naming the input or file
/// (and the mask entry) that is wrong.
void run_model_dir(const ModelDirRun& run);

}  // namespace quarks::tools
