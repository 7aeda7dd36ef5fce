// NumPy .npy reading and writing. Format reference: numpy/lib/format.py ("NEP 1"). A file is
//   "\x93NUMPY" major minor  header_len (u16 LE in 1.0, u32 LE in 2.0/3.0)  header  data
// where the header is a Python dict literal {'descr': ..., 'fortran_order': ..., 'shape': (...), }
// padded with spaces and a newline. Only that literal subset is parsed: strings without escapes,
// True/False and tuples of non-negative decimal integers.
#include "tools/common/npy.hpp"

#include <algorithm>
#include <bit>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <limits>
#include <optional>
#include <string_view>

namespace quarks::tools {

namespace {

constexpr char kMagic[] = "\x93NUMPY";
constexpr std::size_t kMagicSize = 6;
// Largest integer up to which every integer is exactly representable as float32.
constexpr std::int64_t kMaxExactF32Int = std::int64_t{1} << 24;
// FLT_MAX plus half an ulp: the smallest magnitude that rounds to infinity as float32.
constexpr double kF32RoundsToInf = 0x1.ffffffp+127;

[[noreturn]] void fail(ErrorCode code, const std::string& what, const std::string& message) {
  throw Error(code, what + ": " + message);
}

// Quotes text from a file for an error message: printable ASCII as is, other bytes as \xNN, long
// text cut short, so hostile headers cannot inject control characters or flood the message.
std::string printable(std::string_view text) {
  constexpr std::size_t kMaxShown = 40;
  std::string out = "'";
  for (std::size_t i = 0; i < text.size() && i < kMaxShown; ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c >= 0x20 && c < 0x7f) {
      out += static_cast<char>(c);
    } else {
      char hex[5];
      std::snprintf(hex, sizeof hex, "\\x%02x", c);
      out += hex;
    }
  }
  out += text.size() > kMaxShown ? "'..." : "'";
  return out;
}

// Python's repr of a shape tuple: "()", "(3,)", "(4, 8)".
std::string python_shape(std::span<const std::int64_t> dims) {
  std::string out = "(";
  for (std::size_t i = 0; i < dims.size(); ++i) out += (i ? ", " : "") + std::to_string(dims[i]);
  return out + (dims.size() == 1 ? ",)" : ")");
}

struct Header {
  std::string descr;
  bool fortran_order = false;
  std::vector<std::int64_t> dims;
};

// Recursive-descent parser for the header dict literal. Every read goes through peek() or
// string_view::substr, both bounds-checked, so no input can make it read outside `text_`.
class HeaderParser {
 public:
  HeaderParser(std::string_view text, const std::string& what) : text_(text), what_(what) {}

  Header parse() {
    Header header;
    bool seen_descr = false, seen_fortran = false, seen_shape = false;
    expect('{', "at the start of the header");
    while (!consume('}')) {
      const std::string key = parse_string("a key");
      expect(':', "after key " + printable(key));
      if (key == "descr" && !seen_descr) {
        skip_space();
        if (peek() == '[') {
          fail(ErrorCode::kUnsupported, what_, "structured dtypes (a list as 'descr') are not supported");
        }
        header.descr = parse_string("the 'descr' string");
        seen_descr = true;
      } else if (key == "fortran_order" && !seen_fortran) {
        header.fortran_order = parse_bool();
        seen_fortran = true;
      } else if (key == "shape" && !seen_shape) {
        header.dims = parse_shape();
        seen_shape = true;
      } else if (key == "descr" || key == "fortran_order" || key == "shape") {
        syntax_error("duplicate key " + printable(key));
      } else {
        syntax_error("unexpected key " + printable(key) + " (a .npy header has only descr, fortran_order, shape)");
      }
      if (!consume(',')) {
        expect('}', "after the value of " + printable(key));
        break;
      }
    }
    skip_space();
    if (pos_ != text_.size()) syntax_error("unexpected text after the closing '}'");
    if (!seen_descr) fail(ErrorCode::kInvalidArgument, what_, "header has no 'descr' key");
    if (!seen_fortran) fail(ErrorCode::kInvalidArgument, what_, "header has no 'fortran_order' key");
    if (!seen_shape) fail(ErrorCode::kInvalidArgument, what_, "header has no 'shape' key");
    return header;
  }

 private:
  // The next character, or '\0' at the end (a NUL inside the header is never valid syntax either).
  char peek() const { return pos_ < text_.size() ? text_[pos_] : '\0'; }

  void skip_space() {
    while (pos_ < text_.size() && (peek() == ' ' || peek() == '\t' || peek() == '\n' || peek() == '\r')) ++pos_;
  }

  bool consume(char c) {
    skip_space();
    if (pos_ < text_.size() && peek() == c) {
      ++pos_;
      return true;
    }
    return false;
  }

  void expect(char c, const std::string& where) {
    if (!consume(c)) syntax_error(std::string("expected '") + c + "' " + where);
  }

  [[noreturn]] void syntax_error(const std::string& message) const {
    fail(ErrorCode::kInvalidArgument, what_,
         "header is not a valid .npy dict literal: " + message + " at header offset " + std::to_string(pos_) +
             (pos_ < text_.size() ? " (next: " + printable(text_.substr(pos_)) + ")" : " (the end)"));
  }

  std::string parse_string(const std::string& name) {
    skip_space();
    const char quote = peek();
    if (quote != '\'' && quote != '"') syntax_error("expected " + name + " in quotes");
    const std::size_t start = ++pos_;
    while (pos_ < text_.size() && peek() != quote) {
      if (peek() == '\\') syntax_error("escape sequences are not supported in strings");
      ++pos_;
    }
    if (pos_ == text_.size()) syntax_error("unterminated string");
    return std::string(text_.substr(start, pos_++ - start));
  }

  bool parse_bool() {
    skip_space();
    if (text_.substr(pos_, 4) == "True") {
      pos_ += 4;
      return true;
    }
    if (text_.substr(pos_, 5) == "False") {
      pos_ += 5;
      return false;
    }
    syntax_error("'fortran_order' must be True or False");
  }

  std::int64_t parse_dim() {
    skip_space();
    if (peek() == '-') syntax_error("negative dimension in 'shape'");
    if (peek() < '0' || peek() > '9') syntax_error("expected a dimension in 'shape'");
    std::int64_t value = 0;
    while (peek() >= '0' && peek() <= '9') {
      const int digit = peek() - '0';
      if (value > (std::numeric_limits<std::int64_t>::max() - digit) / 10) {
        syntax_error("dimension in 'shape' does not fit in 64 bits");
      }
      value = value * 10 + digit;
      ++pos_;
    }
    return value;
  }

  // A Python tuple: "()", "(3,)", "(3, 4)" or "(3, 4,)". "(3)" is an int in Python, so it is refused.
  std::vector<std::int64_t> parse_shape() {
    expect('(', "to start the 'shape' tuple");
    std::vector<std::int64_t> dims;
    while (!consume(')')) {
      if (dims.size() == static_cast<std::size_t>(Shape::kMaxRank)) {
        fail(ErrorCode::kInvalidArgument, what_,
             "'shape' has more than " + std::to_string(Shape::kMaxRank) + " dimensions, the most quarks supports");
      }
      dims.push_back(parse_dim());
      if (consume(',')) continue;
      if (dims.size() == 1) syntax_error("a one-element 'shape' needs a trailing comma, as in (3,)");
      expect(')', "or ',' in the 'shape' tuple");
      break;
    }
    return dims;
  }

  std::string_view text_;
  std::size_t pos_ = 0;
  const std::string& what_;
};

struct DTypeInfo {
  NpyDType type;
  std::string_view code;  // descr without the byte-order mark
};
constexpr DTypeInfo kDTypes[] = {{NpyDType::kFloat32, "f4"},
                                 {NpyDType::kFloat64, "f8"},
                                 {NpyDType::kInt32, "i4"},
                                 {NpyDType::kInt64, "i8"},
                                 {NpyDType::kBool, "b1"}};

struct ParsedDType {
  NpyDType type;
  bool swap_bytes;  // the file's byte order differs from this machine's
};

ParsedDType parse_descr(const std::string& descr, const std::string& what) {
  std::string_view code = descr;
  char order = '=';
  if (!code.empty() && std::string_view("<>|=").find(code.front()) != std::string_view::npos) {
    order = code.front();
    code.remove_prefix(1);
  }
  // A NumPy type string is a type character followed by an optional item size, e.g. "f2", "u1", "U10",
  // "?": anything of that form is a real dtype we do not support, anything else is not a dtype at all.
  const bool dtype_like = !code.empty() && (std::isalpha(static_cast<unsigned char>(code[0])) || code[0] == '?') &&
                          code.find_first_not_of("0123456789", 1) == std::string_view::npos;
  if (!dtype_like) {
    fail(ErrorCode::kInvalidArgument, what,
         "'descr' " + printable(descr) + " is not a NumPy dtype (structured and object dtypes are not supported)");
  }
  if (code == "?") code = "b1";
  for (const DTypeInfo& info : kDTypes) {
    if (info.code != code) continue;
    const bool big_endian_file = order == '>';
    const bool swap = npy_dtype_size(info.type) > 1 && order != '|' && order != '=' &&
                      big_endian_file != (std::endian::native == std::endian::big);
    return {info.type, swap};
  }
  fail(ErrorCode::kUnsupported, what,
       "unsupported dtype " + printable(descr) +
           "; quarks reads float32 '<f4', float64 '<f8', int32 '<i4', int64 '<i8' and bool '|b1'");
}

// Bytes needed for `dims` of `element_size`, or nullopt if that overflows int64. Zero dims are
// counted as 1 so that a shape like (0, 2^62, 2^62), which holds no data but whose strides overflow,
// is refused too.
std::optional<std::int64_t> checked_bytes(std::span<const std::int64_t> dims, std::size_t element_size) {
  std::int64_t bytes = static_cast<std::int64_t>(element_size);
  bool empty = false;
  for (const std::int64_t d : dims) {
    if (d == 0) {
      empty = true;
    } else if (bytes > std::numeric_limits<std::int64_t>::max() / d) {
      return std::nullopt;
    } else {
      bytes *= d;
    }
  }
  return empty ? 0 : bytes;
}

// Copies column-major `src` into row-major `dst` for the same logical shape: walks the C-order
// multi-index like an odometer and keeps the matching Fortran-order offset up to date.
void fortran_to_c_order(std::span<const std::byte> src, std::span<std::byte> dst, std::span<const std::int64_t> dims,
                        std::size_t element_size) {
  const int rank = static_cast<int>(dims.size());
  std::int64_t fortran_stride[Shape::kMaxRank];
  std::int64_t stride = 1;
  for (int d = 0; d < rank; ++d) {
    fortran_stride[d] = stride;
    stride *= dims[d];
  }
  std::int64_t index[Shape::kMaxRank] = {};
  std::int64_t src_offset = 0;
  const std::size_t count = dst.size() / element_size;
  for (std::size_t i = 0; i < count; ++i) {
    std::memcpy(dst.data() + i * element_size, src.data() + src_offset * element_size, element_size);
    for (int d = rank - 1; d >= 0; --d) {  // advance the last C-order index, carrying leftwards
      src_offset += fortran_stride[d];
      if (++index[d] < dims[d]) break;
      src_offset -= fortran_stride[d] * dims[d];
      index[d] = 0;
    }
  }
}

void swap_byte_order(std::span<std::byte> data, std::size_t element_size) {
  for (std::size_t i = 0; i + element_size <= data.size(); i += element_size) {
    std::reverse(data.begin() + static_cast<std::ptrdiff_t>(i),
                 data.begin() + static_cast<std::ptrdiff_t>(i + element_size));
  }
}

std::uint32_t read_le(std::span<const std::byte> bytes) {
  std::uint32_t value = 0;
  for (std::size_t i = bytes.size(); i-- > 0;) value = (value << 8) | std::to_integer<std::uint32_t>(bytes[i]);
  return value;
}

// Integer element `i` as float32, exactly or not at all (see to_f32_tensor).
template <typename Int>
float exact_int_to_f32(const NpyArray& array, std::size_t i, const std::string& what) {
  Int value;
  std::memcpy(&value, array.data.data() + i * sizeof(Int), sizeof(Int));
  if (value > kMaxExactF32Int || value < -kMaxExactF32Int) {
    fail(ErrorCode::kInvalidArgument, what,
         std::string(to_string(array.dtype)) + " element " + std::to_string(i) + " = " + std::to_string(value) +
             " is not exactly representable as float32 (|v| > 2^24)");
  }
  return static_cast<float>(value);
}

float f64_to_f32(const NpyArray& array, std::size_t i, const std::string& what) {
  double value;
  std::memcpy(&value, array.data.data() + i * sizeof(double), sizeof(double));
  // Converting a finite double beyond float's range is undefined behaviour in C++, so it is checked
  // first. Values below the threshold round down to FLT_MAX, which is within float32 rounding.
  if (std::isfinite(value) && std::fabs(value) >= kF32RoundsToInf) {
    char shown[32];
    std::snprintf(shown, sizeof shown, "%.17g", value);
    fail(ErrorCode::kInvalidArgument, what,
         "float64 element " + std::to_string(i) + " = " + shown + " is outside the float32 range");
  }
  return static_cast<float>(value);
}

// NpyArray is a plain struct, so callers may have filled it by hand: check before indexing its data.
void check_size(const NpyArray& array, const std::string& what) {
  const auto needed = static_cast<std::size_t>(array.shape.numel()) * npy_dtype_size(array.dtype);
  if (array.data.size() != needed) {
    fail(ErrorCode::kInvalidArgument, what,
         "array holds " + std::to_string(array.data.size()) + " bytes but shape " + python_shape(array.shape.dims()) +
             " of " + to_string(array.dtype) + " needs " + std::to_string(needed));
  }
}

}  // namespace

Tensor to_f32_tensor(const NpyArray& array, const std::string& what) {
  check_size(array, what);
  Tensor out(DType::kF32, array.shape);
  float* dst = out.f32();
  const auto n = static_cast<std::size_t>(array.shape.numel());
  for (std::size_t i = 0; i < n; ++i) {
    switch (array.dtype) {
      case NpyDType::kFloat32: std::memcpy(dst + i, array.data.data() + i * 4, 4); break;
      case NpyDType::kFloat64: dst[i] = f64_to_f32(array, i, what); break;
      case NpyDType::kInt32: dst[i] = exact_int_to_f32<std::int32_t>(array, i, what); break;
      case NpyDType::kInt64: dst[i] = exact_int_to_f32<std::int64_t>(array, i, what); break;
      case NpyDType::kBool: dst[i] = array.data[i] != std::byte{0} ? 1.0f : 0.0f; break;
    }
  }
  return out;
}

const char* to_string(NpyDType t) noexcept {
  switch (t) {
    case NpyDType::kFloat32: return "float32";
    case NpyDType::kFloat64: return "float64";
    case NpyDType::kInt32: return "int32";
    case NpyDType::kInt64: return "int64";
    case NpyDType::kBool: return "bool";
  }
  return "?";
}

std::size_t npy_dtype_size(NpyDType t) noexcept {
  switch (t) {
    case NpyDType::kFloat32: return 4;
    case NpyDType::kFloat64: return 8;
    case NpyDType::kInt32: return 4;
    case NpyDType::kInt64: return 8;
    case NpyDType::kBool: return 1;
  }
  return 0;
}

NpyArray read_npy_bytes(std::span<const std::byte> data, const std::string& what) {
  // Preamble: magic, version, header length.
  const std::size_t magic_shown = std::min(data.size(), kMagicSize);
  if (std::string_view(reinterpret_cast<const char*>(data.data()), magic_shown) !=
      std::string_view(kMagic, magic_shown)) {
    fail(ErrorCode::kInvalidArgument, what, "not a .npy file (it does not start with \"\\x93NUMPY\")");
  }
  const auto check_has = [&](std::size_t bytes) {
    if (data.size() < bytes) {
      fail(ErrorCode::kInvalidArgument, what,
           "truncated: " + std::to_string(data.size()) + " bytes is too short for a .npy file");
    }
  };
  check_has(kMagicSize + 2);
  const auto major = std::to_integer<int>(data[6]), minor = std::to_integer<int>(data[7]);
  if ((major < 1 || major > 3) || minor != 0) {
    fail(ErrorCode::kUnsupported, what,
         "unsupported .npy format version " + std::to_string(major) + "." + std::to_string(minor) +
             " (quarks reads 1.0, 2.0 and 3.0)");
  }
  const std::size_t length_size = major == 1 ? 2 : 4;
  const std::size_t header_start = kMagicSize + 2 + length_size;
  check_has(header_start);
  const std::size_t header_length = read_le(data.subspan(kMagicSize + 2, length_size));
  if (header_length > data.size() - header_start) {
    fail(ErrorCode::kInvalidArgument, what,
         "header length " + std::to_string(header_length) + " runs past the end of the file (" +
             std::to_string(data.size()) + " bytes)");
  }

  // Header. Versions 1.0/2.0 are latin-1 and 3.0 is UTF-8; either way the syntax is ASCII and other
  // bytes can only appear inside strings, so the parser works on raw bytes.
  const std::string_view header_text(reinterpret_cast<const char*>(data.data() + header_start), header_length);
  const Header header = HeaderParser(header_text, what).parse();
  const ParsedDType dtype = parse_descr(header.descr, what);
  const std::size_t element_size = npy_dtype_size(dtype.type);
  const std::string shape_text = python_shape(header.dims);
  const std::optional<std::int64_t> needed = checked_bytes(header.dims, element_size);
  if (!needed) {
    fail(ErrorCode::kInvalidArgument, what,
         "shape " + shape_text + " of " + to_string(dtype.type) + " is too large (its byte size overflows int64)");
  }

  // Data: exactly the bytes the shape needs, checked before anything is allocated.
  const std::span<const std::byte> payload = data.subspan(header_start + header_length);
  if (static_cast<std::uint64_t>(*needed) != payload.size()) {
    fail(ErrorCode::kInvalidArgument, what,
         "data has " + std::to_string(payload.size()) + " bytes but shape " + shape_text + " of " +
             to_string(dtype.type) + " needs " + std::to_string(*needed));
  }
  NpyArray array;
  array.dtype = dtype.type;
  array.shape = Shape(std::span<const std::int64_t>(header.dims));
  if (header.fortran_order) {
    array.data.resize(payload.size());
    fortran_to_c_order(payload, array.data, header.dims, element_size);
  } else {
    array.data.assign(payload.begin(), payload.end());
  }
  if (dtype.swap_bytes) swap_byte_order(array.data, element_size);
  return array;
}

NpyArray read_npy(const std::string& path) {
  std::error_code ec;
  const std::filesystem::file_status status = std::filesystem::status(path, ec);
  if (!std::filesystem::exists(status)) fail(ErrorCode::kNotFound, path, "no such file");
  if (std::filesystem::is_directory(status)) fail(ErrorCode::kInvalidArgument, path, "is a directory, not a .npy file");

  // Read to the end in chunks rather than trusting the file size, so pipes work too.
  std::FILE* file = std::fopen(path.c_str(), "rb");
  if (file == nullptr) fail(ErrorCode::kInvalidArgument, path, std::string("cannot open: ") + std::strerror(errno));
  std::vector<std::byte> bytes;
  std::byte chunk[1 << 16];
  std::size_t got;
  while ((got = std::fread(chunk, 1, sizeof chunk, file)) > 0) bytes.insert(bytes.end(), chunk, chunk + got);
  const bool read_failed = std::ferror(file) != 0;
  std::fclose(file);
  if (read_failed) fail(ErrorCode::kInvalidArgument, path, "read error");
  return read_npy_bytes(bytes, path);
}

Tensor to_tensor(const NpyArray& array, const std::string& what) {
  check_size(array, what);
  const auto n = static_cast<std::size_t>(array.shape.numel());
  switch (array.dtype) {
    case NpyDType::kFloat32:
    case NpyDType::kFloat64: return to_f32_tensor(array, what);
    case NpyDType::kInt32: {
      Tensor out(DType::kI64, array.shape);
      auto* dst = static_cast<std::int64_t*>(out.data());
      for (std::size_t i = 0; i < n; ++i) {
        std::int32_t value;
        std::memcpy(&value, array.data.data() + i * 4, 4);
        dst[i] = value;
      }
      return out;
    }
    case NpyDType::kInt64: {
      Tensor out(DType::kI64, array.shape);
      if (n > 0) std::memcpy(out.data(), array.data.data(), n * 8);
      return out;
    }
    case NpyDType::kBool: {
      Tensor out(DType::kBool, array.shape);
      auto* dst = static_cast<std::uint8_t*>(out.data());
      for (std::size_t i = 0; i < n; ++i) dst[i] = array.data[i] != std::byte{0} ? 1 : 0;
      return out;
    }
  }
  fail(ErrorCode::kInternal, what, "unknown NpyDType");
}

void write_npy(const std::string& path, const Tensor& tensor) {
  const char order = std::endian::native == std::endian::little ? '<' : '>';
  std::string descr;
  std::vector<std::byte> widened;  // bf16 data widened to f32
  std::span<const std::byte> payload(static_cast<const std::byte*>(tensor.data()), tensor.bytes());
  switch (tensor.dtype()) {
    case DType::kF32: descr = std::string(1, order) + "f4"; break;
    case DType::kI64: descr = std::string(1, order) + "i8"; break;
    case DType::kBool: descr = "|b1"; break;
    case DType::kBF16: {
      // bf16 is the top half of an f32, so widening is a 16-bit shift and exact.
      descr = std::string(1, order) + "f4";
      const auto n = static_cast<std::size_t>(tensor.numel());
      widened.resize(n * 4);
      for (std::size_t i = 0; i < n; ++i) {
        std::uint16_t half;
        std::memcpy(&half, payload.data() + i * 2, 2);
        const std::uint32_t bits = std::uint32_t{half} << 16;
        std::memcpy(widened.data() + i * 4, &bits, 4);
      }
      payload = widened;
      break;
    }
  }
  std::string header =
      "{'descr': '" + descr + "', 'fortran_order': False, 'shape': " + python_shape(tensor.shape().dims()) + ", }";
  // NumPy pads with spaces and ends with '\n' so that the data starts at a multiple of 64 bytes.
  const std::size_t preamble = kMagicSize + 2 + 2;
  const std::size_t unpadded = preamble + header.size() + 1;
  header.append((64 - unpadded % 64) % 64, ' ');
  header += '\n';

  std::string prefix(kMagic, kMagicSize);
  prefix += '\x01';
  prefix += '\x00';
  prefix += static_cast<char>(header.size() & 0xff);
  prefix += static_cast<char>(header.size() >> 8);

  std::FILE* file = std::fopen(path.c_str(), "wb");
  if (file == nullptr) {
    const int error = errno;
    fail(error == ENOENT ? ErrorCode::kNotFound : ErrorCode::kInvalidArgument, path,
         std::string("cannot open for writing: ") + std::strerror(error));
  }
  bool ok = std::fwrite(prefix.data(), 1, prefix.size(), file) == prefix.size() &&
            std::fwrite(header.data(), 1, header.size(), file) == header.size() &&
            (payload.empty() || std::fwrite(payload.data(), 1, payload.size(), file) == payload.size());
  ok = std::fclose(file) == 0 && ok;
  if (!ok) fail(ErrorCode::kInvalidArgument, path, std::string("write failed: ") + std::strerror(errno));
}

}  // namespace quarks::tools
