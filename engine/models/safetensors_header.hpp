// The JSON header of a safetensors file, parsed and checked (internal to safetensors.cc and its tests).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "engine/models/safetensors.hpp"

namespace quarks::models::detail {

/// A header entry that passed every check; `tensor.data` is still empty (the caller points it into
/// the data section at [begin, end)).
struct HeaderEntry {
  StoredTensor tensor;
  std::uint64_t begin = 0, end = 0;
};

struct Header {
  std::vector<HeaderEntry> tensors;  ///< in the order of the header
  std::map<std::string, std::string> metadata;
};

/// Parses the header text of `file`, whose data section holds `data_size` bytes, and checks it as
/// safetensors.hpp describes (entries, dtypes, shapes, sizes, ranges inside the data section and
/// without overlaps). Throws quarks::Error naming the file and the tensor.
Header parse_header(std::string_view text, const std::string& file, std::uint64_t data_size);

/// Bytes per element of a dtype name as in the header ("BF16" -> 2); 0 for an unknown name.
std::size_t dtype_bytes(std::string_view dtype) noexcept;

/// `text` in single quotes for a message: control bytes as \xNN, cut after 120 bytes ("'...'...").
std::string in_quotes(std::string_view text);

/// Throws Error(code, "file <file>: <message>").
[[noreturn]] void fail(ErrorCode code, const std::string& file, const std::string& message);

}  // namespace quarks::models::detail
