// quarks-run: file names for graph outputs. A graph output's name comes from the model file, which may
// be hostile or just unusual ("/encoder/Add_output_0", "onnx::MatMul_12", "../y"), so it is reduced to
// a safe file name that cannot leave the output directory.
#pragma once

#include <set>
#include <string>
#include <vector>

namespace quarks::tools {

/// `name` as a file name stem: ASCII letters, digits, '_', '-' and '.' are kept, every other byte
/// (including '/', '\\', ':' and non-ASCII bytes) becomes '_'; a leading '.' becomes '_' (so no stem
/// is ".", ".." or a hidden file); an empty name becomes "_".
inline std::string output_file_stem(const std::string& name) {
  std::string stem;
  for (const char c : name) {
    const bool safe =
        (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '.';
    stem += safe ? c : '_';
  }
  if (stem.empty()) {
    stem = "_";
  } else if (stem.front() == '.') {
    stem.front() = '_';
  }
  return stem;
}

/// One stem per output, in order: output_file_stem(name), and when that collides with an earlier
/// output's stem (e.g. "a/b" and "a_b"), "<stem>_2", "<stem>_3", ... (the first unused).
inline std::vector<std::string> output_file_stems(const std::vector<std::string>& names) {
  std::vector<std::string> stems;
  std::set<std::string> used;
  for (const std::string& name : names) {
    const std::string base = output_file_stem(name);
    std::string stem = base;
    for (int k = 2; used.count(stem); ++k) stem = base + "_" + std::to_string(k);
    used.insert(stem);
    stems.push_back(stem);
  }
  return stems;
}

}  // namespace quarks::tools
