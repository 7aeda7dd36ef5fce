// Fuzz body of the safetensors reader: Checkpoint::from_bytes, then every tensor through to_f32 (and
// view_f32 for F32), with the reader's promises checked on whatever parses.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>

#include "engine/models/safetensors.hpp"
#include "engine/models/safetensors_header.hpp"
#include "fuzz/fuzz_bodies.hpp"

namespace quarks::fuzz {
namespace {

constexpr char kName[] = "fuzz.safetensors";
constexpr char kPrefix[] = "file fuzz.safetensors: ";

[[noreturn]] void fail(const char* what, const std::string& detail) {
  std::fprintf(stderr, "fuzz_safetensors_bytes: %s: %s\n", what, detail.c_str());
  std::abort();
}

// Errors must name the file first, as the reader promises.
void check_message(const Error& e) {
  if (std::strncmp(e.what(), kPrefix, sizeof kPrefix - 1) != 0)
    fail("an error does not start with the file name", e.what());
}

// A tensor that parsed lies inside the bytes and holds exactly its shape's elements.
void check_record(const models::StoredTensor& t, std::span<const std::byte> bytes, const models::Checkpoint& c) {
  const std::byte* end = bytes.data() + bytes.size();
  if (t.data.data() < bytes.data() || t.data.data() > end ||
      t.data.size() > static_cast<std::size_t>(end - t.data.data())) {
    fail("a tensor's data lies outside the image", t.name);
  }
  if (t.file != kName) fail("a tensor names another file", t.file);
  if (c.find(t.name) != &t) fail("find disagrees with at", t.name);
  const auto element_bytes = models::detail::dtype_bytes(t.dtype);
  if (element_bytes == 0) fail("a tensor has an unknown dtype", t.dtype);
  if (t.data.size() / element_bytes != static_cast<std::uint64_t>(t.shape.numel()) || t.data.size() % element_bytes) {
    fail("a tensor's bytes are not its shape's elements", t.name + " " + t.shape.to_string());
  }
}

}  // namespace

void fuzz_safetensors_bytes(std::span<const std::byte> bytes, FuzzStats* stats) {
  FuzzStats unused;
  FuzzStats& st = stats ? *stats : unused;
  ++st.cases;
  std::optional<models::Checkpoint> checkpoint;
  try {
    checkpoint.emplace(models::Checkpoint::from_bytes(bytes, kName));
  } catch (const Error& e) {
    return check_message(e);
  }
  ++st.loaded;
  const models::Checkpoint& c = *checkpoint;
  const std::vector<std::string> names = c.names();
  if (names.size() != c.size()) fail("names() and size() disagree", std::to_string(names.size()));
  bool converted = false;
  for (const std::string& name : names) {
    const models::StoredTensor& t = c.at(name);
    check_record(t, bytes, c);
    try {
      const Tensor x = c.to_f32(name, t.shape);
      if (x.shape() != t.shape) fail("to_f32 gave another shape", x.shape().to_string());
      converted = true;
      if (t.dtype != "F32") continue;
      if (x.bytes() != t.data.size() || (x.bytes() && std::memcmp(x.data(), t.data.data(), x.bytes()) != 0)) {
        fail("to_f32 of an F32 tensor is not a copy", name);
      }
      const ConstTensorView v = c.view_f32(name, t.shape);
      if (v.data() != t.data.data()) fail("view_f32 is not the data in place", name);
    } catch (const Error& e) {
      check_message(e);
      if (e.code() != ErrorCode::kUnsupported) fail("a parsed tensor failed to convert", e.what());
    }
  }
  if (converted) ++st.compiled;
}

}  // namespace quarks::fuzz
