// Fuzz body of the .npy reader.
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "fuzz/fuzz_bodies.hpp"
#include "tools/common/npy.hpp"

namespace quarks::fuzz {
namespace {

constexpr char kName[] = "fuzz.npy";

[[noreturn]] void fail(const char* what, const char* detail) {
  std::fprintf(stderr, "fuzz_npy_file: %s: %s\n", what, detail);
  std::abort();
}

// Errors must name the file first, as the reader promises.
void check_message(const Error& e) {
  if (std::strncmp(e.what(), "fuzz.npy: ", 10) != 0) fail("an error does not start with the file name", e.what());
}

}  // namespace

void fuzz_npy_file(std::span<const std::byte> bytes, FuzzStats* stats) {
  FuzzStats unused;
  FuzzStats& st = stats ? *stats : unused;
  ++st.cases;
  tools::NpyArray array;
  try {
    array = tools::read_npy_bytes(bytes, kName);
  } catch (const Error& e) {
    return check_message(e);
  }
  ++st.loaded;
  if (array.data.size() != static_cast<std::size_t>(array.shape.numel()) * tools::npy_dtype_size(array.dtype)) {
    fail("the data size disagrees with the shape", array.shape.to_string().c_str());
  }
  for (auto convert : {&tools::to_f32_tensor, &tools::to_tensor}) {
    try {
      const Tensor t = convert(array, kName);
      if (t.shape() != array.shape) fail("a converted tensor has another shape", t.shape().to_string().c_str());
      ++st.compiled;
    } catch (const Error& e) {
      check_message(e);
    }
  }
}

}  // namespace quarks::fuzz
