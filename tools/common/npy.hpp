// NumPy .npy files for quarks' command-line tools: a bounds-checked reader for versions 1.0, 2.0 and
// 3.0 of the format, conversions to quarks::Tensor, and a version-1.0 writer.
//
// The reader is meant for files from anywhere (user inputs, fuzzers): every malformed, truncated or
// unsupported file throws quarks::Error whose message starts with the file name (or the `what` given)
// and says what is wrong, e.g.
//   x.npy: data has 96 bytes but shape (4, 8) of float32 needs 128
// Codes: kNotFound for a missing file, kUnsupported for a well-formed file in a dtype or format
// version quarks does not read, kInvalidArgument for everything else. Sizes are checked against the
// bytes actually present before anything is allocated, so a header claiming 2^40 elements costs nothing.
//
// Accepted dtypes: float32 '<f4', float64 '<f8', int32 '<i4', int64 '<i8', bool '|b1'. The byte-order
// mark may be '<' (little-endian), '>' (big-endian: converted to native order on reading), '=' or
// '|' (native). fortran_order True arrays are converted to C order on reading.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "quarks/tensor.hpp"

namespace quarks::tools {

/// Element types a .npy file can hold that quarks reads.
enum class NpyDType : std::uint8_t { kFloat32, kFloat64, kInt32, kInt64, kBool };

/// NumPy's name: "float32", "float64", "int32", "int64", "bool".
const char* to_string(NpyDType t) noexcept;
/// Bytes per element: 4, 8, 4, 8, 1.
std::size_t npy_dtype_size(NpyDType t) noexcept;

/// An array as read from a .npy file, normalised to C order and native byte order.
struct NpyArray {
  NpyDType dtype = NpyDType::kFloat32;
  Shape shape;
  /// shape.numel() * npy_dtype_size(dtype) bytes. Bool elements are stored as found (normally 0 or 1).
  std::vector<std::byte> data;
};

/// Reads the .npy file at `path`. Error messages start with `path`.
NpyArray read_npy(const std::string& path);
/// Parses a .npy file held in memory. Error messages start with `what`.
NpyArray read_npy_bytes(std::span<const std::byte> data, const std::string& what);

/// Converts to an f32 tensor for use as an inference input. The rule: a conversion is allowed when
/// it cannot silently change what the model sees beyond float32 rounding —
///   float32: copied bit for bit;
///   float64: rounded to nearest; NaN and ±inf are kept, but a finite value outside float32's range
///            is an error (it would become inf);
///   int32/int64: must be exactly representable, i.e. |v| <= 2^24, else an error naming the element;
///   bool: 0 -> 0.0f, anything else -> 1.0f.
/// Errors (kInvalidArgument) start with `what` and name the first offending element's flat index.
Tensor to_f32_tensor(const NpyArray& array, const std::string& what);

/// Converts keeping integer and boolean data integral: float32 and float64 become DType::kF32 (float64
/// by the rule of to_f32_tensor), int32 and int64 become DType::kI64 (exact), bool becomes DType::kBool
/// with every nonzero byte stored as 1.
Tensor to_tensor(const NpyArray& array, const std::string& what);

/// Writes `tensor` as a version-1.0, C-order .npy file: f32 as '<f4', i64 as '<i8', bool as '|b1'
/// (on a big-endian host the mark is '>', as the data is written in native order). bf16 is widened to
/// '<f4', which is exact. Errors start with `path` (kNotFound if its directory does not exist).
void write_npy(const std::string& path, const Tensor& tensor);

}  // namespace quarks::tools
