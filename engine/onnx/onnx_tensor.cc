// TensorProto decoding. A hostile file may claim any dims and any data type, so the element count
// is computed with overflow checks and compared with the bytes or values really present before
// anything is copied.
#include "engine/onnx/onnx_tensor.hpp"

#include <onnx/onnx_pb.h>

#include <charconv>
#include <cstring>
#include <fstream>
#include <limits>

namespace quarks::onnx_import {
namespace {

using onnx::TensorProto;

[[noreturn]] void fail(ErrorCode code, const std::string& what, const std::string& message) {
  throw Error(code, what + ": " + message);
}

// Element size as stored in raw_data, or 0 for types quarks cannot import.
std::size_t raw_element_size(int t) {
  switch (t) {
    case TensorProto::FLOAT: return 4;
    case TensorProto::DOUBLE: return 8;
    case TensorProto::INT64: return 8;
    case TensorProto::INT32: return 4;
    case TensorProto::INT16: return 2;
    case TensorProto::INT8: return 1;
    case TensorProto::UINT8: return 1;
    case TensorProto::BOOL: return 1;
    default: return 0;
  }
}

DType quarks_dtype(int t) {
  switch (t) {
    case TensorProto::FLOAT:
    case TensorProto::DOUBLE: return DType::kF32;
    case TensorProto::BOOL: return DType::kBool;
    default: return DType::kI64;
  }
}

// Reads the tensor's external data (location/offset/length entries) into `bytes`.
std::string read_external(const TensorProto& p, const std::string& what, const std::filesystem::path& base_dir,
                          std::size_t expected) {
  if (base_dir.empty()) fail(ErrorCode::kInvalidArgument, what, "external data is not allowed when loading from bytes");
  std::string location;
  std::uint64_t offset = 0, length = std::numeric_limits<std::uint64_t>::max();
  // Offsets and lengths are plain decimal numbers (no sign, no spaces).
  auto number = [&](const std::string& key, const std::string& text) {
    std::uint64_t v = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
    if (text.empty() || ec != std::errc() || end != text.data() + text.size()) {
      fail(ErrorCode::kInvalidArgument, what, "external data entry '" + key + "' is not a number: " + text);
    }
    return v;
  };
  for (const auto& kv : p.external_data()) {
    if (kv.key() == "location") location = kv.value();
    if (kv.key() == "offset") offset = number(kv.key(), kv.value());
    if (kv.key() == "length") length = number(kv.key(), kv.value());
  }
  if (location.empty()) fail(ErrorCode::kInvalidArgument, what, "external data has no location");
  const std::filesystem::path rel(location);
  if (rel.is_absolute())
    fail(ErrorCode::kInvalidArgument, what, "external data location '" + location + "' is absolute");
  // weakly_canonical resolves every symlink along the existing part of the path, so a link inside the
  // folder that points outside it is caught here.
  std::error_code base_ec, file_ec;
  const auto base = std::filesystem::weakly_canonical(base_dir, base_ec);
  const auto file = std::filesystem::weakly_canonical(base_dir / rel, file_ec);
  const auto [b_end, f_it] = std::mismatch(base.begin(), base.end(), file.begin(), file.end());
  if (base_ec || file_ec || b_end != base.end()) {
    fail(ErrorCode::kInvalidArgument, what, "external data location '" + location + "' leaves the model's folder");
  }
  // Only regular files: a FIFO would block the reader, a dangling link may be created later.
  std::error_code st_ec;
  const auto status = std::filesystem::symlink_status(file, st_ec);
  if (status.type() == std::filesystem::file_type::not_found) {
    fail(ErrorCode::kNotFound, what, "cannot open external data file '" + location + "': it does not exist");
  }
  if (status.type() != std::filesystem::file_type::regular) {
    fail(ErrorCode::kInvalidArgument, what, "external data location '" + location + "' is not a regular file");
  }
  std::ifstream in(file, std::ios::binary);
  if (!in) fail(ErrorCode::kNotFound, what, "cannot open external data file '" + location + "'");
  in.seekg(0, std::ios::end);
  const std::streamoff end = in.tellg();
  if (end < 0) fail(ErrorCode::kInvalidArgument, what, "cannot read external data from '" + location + "'");
  const auto size = static_cast<std::uint64_t>(end);
  if (length == std::numeric_limits<std::uint64_t>::max()) length = size >= offset ? size - offset : 0;
  if (offset > size || length > size - offset) {
    fail(ErrorCode::kInvalidArgument, what,
         "external data range [" + std::to_string(offset) + ", +" + std::to_string(length) + ") is outside '" +
             location + "' (" + std::to_string(size) + " bytes)");
  }
  if (length != expected) {
    fail(ErrorCode::kShapeMismatch, what,
         "external data has " + std::to_string(length) + " bytes, the dims need " + std::to_string(expected));
  }
  std::string bytes(expected, '\0');
  in.seekg(static_cast<std::streamoff>(offset));
  in.read(bytes.data(), static_cast<std::streamsize>(expected));
  if (!in) fail(ErrorCode::kInvalidArgument, what, "cannot read external data from '" + location + "'");
  return bytes;
}

template <class Src>
void store(Tensor& t, std::int64_t i, Src v) {
  switch (t.dtype()) {
    case DType::kF32: t.f32()[i] = static_cast<float>(v); break;
    case DType::kI64: t.i64()[i] = static_cast<std::int64_t>(v); break;
    case DType::kBool: t.boolean()[i] = v != Src{} ? 1 : 0; break;
    case DType::kBF16: break;
  }
}

// Decodes little-endian raw bytes of ONNX type `t` into `out`.
void from_raw(Tensor& out, int t, const char* p, std::int64_t n) {
  for (std::int64_t i = 0; i < n; ++i) {
    switch (t) {
      case TensorProto::FLOAT: {
        float v;
        std::memcpy(&v, p + 4 * i, 4);
        store(out, i, v);
        break;
      }
      case TensorProto::DOUBLE: {
        double v;
        std::memcpy(&v, p + 8 * i, 8);
        store(out, i, v);
        break;
      }
      case TensorProto::INT64: {
        std::int64_t v;
        std::memcpy(&v, p + 8 * i, 8);
        store(out, i, v);
        break;
      }
      case TensorProto::INT32: {
        std::int32_t v;
        std::memcpy(&v, p + 4 * i, 4);
        store(out, i, v);
        break;
      }
      case TensorProto::INT16: {
        std::int16_t v;
        std::memcpy(&v, p + 2 * i, 2);
        store(out, i, v);
        break;
      }
      case TensorProto::INT8: store(out, i, static_cast<std::int8_t>(p[i])); break;
      case TensorProto::UINT8:
      case TensorProto::BOOL: store(out, i, static_cast<std::uint8_t>(p[i])); break;
      default: break;
    }
  }
}

}  // namespace

std::string onnx_dtype_name(int data_type) {
  if (TensorProto::DataType_IsValid(data_type))
    return TensorProto::DataType_Name(static_cast<TensorProto::DataType>(data_type));
  return "unknown type " + std::to_string(data_type);
}

Tensor tensor_from_proto(const TensorProto& p, const std::string& what, const std::filesystem::path& base_dir) {
  const int t = p.data_type();
  const std::size_t esize = raw_element_size(t);
  if (esize == 0) {
    fail(ErrorCode::kUnsupported, what,
         "data type " + onnx_dtype_name(t) +
             " is not supported (float, double, int64, int32, int16, int8, uint8, bool)");
  }
  if (p.dims_size() > Shape::kMaxRank) {
    fail(ErrorCode::kUnsupported, what,
         "rank " + std::to_string(p.dims_size()) + " exceeds the maximum of " + std::to_string(Shape::kMaxRank));
  }
  Shape shape;
  std::int64_t n = 1;
  constexpr std::int64_t kMaxElements = std::int64_t{1} << 40;
  for (std::int64_t d : p.dims()) {
    if (d < 0) fail(ErrorCode::kInvalidArgument, what, "has a negative dim " + std::to_string(d));
    shape.push_back(d);
    if (d != 0 && n > kMaxElements / d) fail(ErrorCode::kInvalidArgument, what, "has too many elements");
    n *= d;
  }
  if (p.has_segment()) fail(ErrorCode::kUnsupported, what, "segmented tensors are not supported");
  const std::size_t bytes = static_cast<std::size_t>(n) * esize;

  // Every count is checked against the data present before the tensor is allocated: the dims of a
  // hostile file may claim terabytes.
  const bool external = p.data_location() == TensorProto::EXTERNAL;
  if (external || p.has_raw_data()) {
    const std::string ext = external ? read_external(p, what, base_dir, bytes) : std::string();
    const std::string& raw = external ? ext : p.raw_data();
    if (raw.size() != bytes) {
      fail(ErrorCode::kShapeMismatch, what,
           "raw_data has " + std::to_string(raw.size()) + " bytes but dims " + shape.to_string() + " of " +
               onnx_dtype_name(t) + " need " + std::to_string(bytes));
    }
    Tensor out(quarks_dtype(t), shape);
    from_raw(out, t, raw.data(), n);
    return out;
  }
  // Typed fields: float_data (FLOAT), double_data (DOUBLE), int64_data (INT64), int32_data (INT32,
  // INT16, INT8, UINT8, BOOL).
  auto check_count = [&](int count, const char* field) {
    if (count != n) {
      fail(ErrorCode::kShapeMismatch, what,
           std::string(field) + " has " + std::to_string(count) + " values but dims " + shape.to_string() + " need " +
               std::to_string(n));
    }
  };
  switch (t) {
    case TensorProto::FLOAT: check_count(p.float_data_size(), "float_data"); break;
    case TensorProto::DOUBLE: check_count(p.double_data_size(), "double_data"); break;
    case TensorProto::INT64: check_count(p.int64_data_size(), "int64_data"); break;
    default: check_count(p.int32_data_size(), "int32_data"); break;
  }
  Tensor out(quarks_dtype(t), shape);
  for (std::int64_t i = 0; i < n; ++i) {
    const int k = static_cast<int>(i);
    switch (t) {
      case TensorProto::FLOAT: store(out, i, p.float_data(k)); break;
      case TensorProto::DOUBLE: store(out, i, p.double_data(k)); break;
      case TensorProto::INT64: store(out, i, p.int64_data(k)); break;
      default: store(out, i, p.int32_data(k)); break;
    }
  }
  return out;
}

}  // namespace quarks::onnx_import
