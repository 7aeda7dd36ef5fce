// The fixtures of tests/models/fixtures/<name>/ and their reference.json (written with the checkpoints by
// make_checkpoints.py from a float64 PyTorch forward): the 40-token prompt, its logits, the greedy ids.
#pragma once

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <vector>

#include <nlohmann/json.hpp>

#include "quarks/tensor.hpp"

namespace quarks::test {

inline const std::filesystem::path kFixtures = QUARKS_MODEL_FIXTURES;

struct Reference {
  std::vector<std::int64_t> prompt, greedy;
  std::vector<std::vector<double>> logits;  // [40][vocab]
  double min_gap = 0;
};

inline Reference read_reference(const std::filesystem::path& dir) {
  std::ifstream in(dir / "reference.json");
  const nlohmann::json j = nlohmann::json::parse(in);
  Reference r;
  r.prompt = j.at("prompt").get<std::vector<std::int64_t>>();
  r.greedy = j.at("greedy").get<std::vector<std::int64_t>>();
  r.logits = j.at("logits").get<std::vector<std::vector<double>>>();
  r.min_gap = j.at("min_gap").get<double>();
  return r;
}

// max |got - want| / max |want| over the rows of `got` ([rows, vocab]) against want[first_row ...].
inline double scaled_error(const Tensor& got, const std::vector<std::vector<double>>& want) {
  const std::int64_t rows = got.shape()[0], vocab = got.shape()[1];
  double err = 0, scale = 0;
  for (std::int64_t r = 0; r < rows; ++r) {
    for (std::int64_t v = 0; v < vocab; ++v) {
      err = std::max<double>(err, std::abs(got.f32()[r * vocab + v] - want[r][v]));
      scale = std::max(scale, std::abs(want[r][v]));
    }
  }
  return err / scale;
}

}  // namespace quarks::test
