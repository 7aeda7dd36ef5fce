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

/// Scores every position: input_ids [batch, seq] (or [seq]) int64/int32 from its file, attention_mask
/// (all ones: padding is not supported yet) and position_ids (0 .. seq-1, the only positions a fresh
/// cache has) optional; writes logits.npy, float32 [batch, seq, vocab]. Throws quarks::Error naming the
/// input or file that is wrong.
void run_model_dir(const ModelDirRun& run);

}  // namespace quarks::tools
