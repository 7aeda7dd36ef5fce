// The .npy reader and writer of the command-line tools: files written by real NumPy (fixtures from
// data/npy/make_fixtures.py), round trips through write_npy, conversions to tensors, every kind of
// hostile input, and random mutations of valid files (every outcome must be an array or an Error).
#include "tools/common/npy.hpp"

#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace quarks::tools {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

const std::string kFixtures = QUARKS_NPY_FIXTURES;

std::vector<std::byte> load_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::vector<char> chars((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<std::byte> bytes(chars.size());
  if (!bytes.empty()) std::memcpy(bytes.data(), chars.data(), chars.size());
  return bytes;
}

// A .npy file with the given header text (used verbatim, no padding) and payload.
std::vector<std::byte> make_npy(const std::string& header, std::size_t payload_bytes, int major = 1) {
  std::string file = std::string("\x93NUMPY") + static_cast<char>(major) + '\0';
  const std::size_t length_bytes = major == 1 ? 2 : 4;
  for (std::size_t i = 0; i < length_bytes; ++i) file += static_cast<char>((header.size() >> (8 * i)) & 0xff);
  file += header;
  std::vector<std::byte> bytes(file.size() + payload_bytes, std::byte{0});
  std::memcpy(bytes.data(), file.data(), file.size());
  return bytes;
}

std::string dict(const std::string& descr, const std::string& shape, const std::string& fortran = "False") {
  return "{'descr': '" + descr + "', 'fortran_order': " + fortran + ", 'shape': " + shape + ", }\n";
}

template <typename T>
std::vector<T> values_of(const NpyArray& array) {
  std::vector<T> out(array.data.size() / sizeof(T));
  if (!out.empty()) std::memcpy(out.data(), array.data.data(), out.size() * sizeof(T));
  return out;
}

template <typename T>
std::vector<T> values_of(const Tensor& tensor) {
  std::vector<T> out(static_cast<std::size_t>(tensor.numel()));
  if (!out.empty()) std::memcpy(out.data(), tensor.data(), out.size() * sizeof(T));
  return out;
}

// Expects `bytes` to be refused with `code` and a message "x.npy: ..." containing `fragment`.
void expect_refused(const std::vector<std::byte>& bytes, ErrorCode code, const std::string& fragment) {
  try {
    read_npy_bytes(bytes, "x.npy");
    ADD_FAILURE() << "accepted a file that should fail with: " << fragment;
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), code) << e.what();
    EXPECT_THAT(e.what(), StartsWith("x.npy: "));
    EXPECT_THAT(e.what(), HasSubstr(fragment));
  }
}

// ---- Files written by NumPy ----

TEST(NpyFixtures, EveryDtype) {
  const NpyArray f32 = read_npy(kFixtures + "/f32_3x4.npy");
  EXPECT_EQ(f32.dtype, NpyDType::kFloat32);
  EXPECT_EQ(f32.shape, Shape({3, 4}));
  const auto f32_values = values_of<float>(f32);
  ASSERT_EQ(f32_values.size(), 12u);
  for (int i = 0; i < 12; ++i) EXPECT_EQ(f32_values[i], i * 0.25f - 1) << i;

  const NpyArray f64 = read_npy(kFixtures + "/f64_2x3.npy");
  EXPECT_EQ(f64.dtype, NpyDType::kFloat64);
  EXPECT_EQ(f64.shape, Shape({2, 3}));
  const auto f64_values = values_of<double>(f64);
  for (int i = 0; i < 6; ++i) EXPECT_EQ(f64_values[i], i * 0.1 - 0.2) << i;

  const NpyArray i32 = read_npy(kFixtures + "/i32_5.npy");
  EXPECT_EQ(i32.dtype, NpyDType::kInt32);
  EXPECT_EQ(i32.shape, Shape({5}));
  EXPECT_EQ(values_of<std::int32_t>(i32), (std::vector<std::int32_t>{-3, 4, 11, 18, 25}));

  const NpyArray i64 = read_npy(kFixtures + "/i64_2x2x2.npy");
  EXPECT_EQ(i64.dtype, NpyDType::kInt64);
  EXPECT_EQ(i64.shape, Shape({2, 2, 2}));
  const auto i64_values = values_of<std::int64_t>(i64);
  for (int i = 0; i < 8; ++i) EXPECT_EQ(i64_values[i], i * 1000 - 4000) << i;

  const NpyArray b = read_npy(kFixtures + "/bool_4.npy");
  EXPECT_EQ(b.dtype, NpyDType::kBool);
  EXPECT_EQ(b.shape, Shape({4}));
  EXPECT_EQ(values_of<std::uint8_t>(b), (std::vector<std::uint8_t>{1, 0, 0, 1}));
}

TEST(NpyFixtures, ScalarEmptyAndRank8) {
  const NpyArray scalar = read_npy(kFixtures + "/f32_scalar.npy");
  EXPECT_EQ(scalar.shape.rank(), 0);
  EXPECT_EQ(values_of<float>(scalar), std::vector<float>{3.5f});

  const NpyArray empty = read_npy(kFixtures + "/f32_empty_0x3.npy");
  EXPECT_EQ(empty.shape, Shape({0, 3}));
  EXPECT_TRUE(empty.data.empty());

  const NpyArray rank8 = read_npy(kFixtures + "/i64_rank8.npy");
  EXPECT_EQ(rank8.shape, Shape({1, 2, 1, 2, 1, 2, 1, 2}));
  const auto values = values_of<std::int64_t>(rank8);
  for (int i = 0; i < 16; ++i) EXPECT_EQ(values[i], i);
}

TEST(NpyFixtures, FortranOrderIsConvertedToCOrder) {
  const NpyArray two_d = read_npy(kFixtures + "/f32_fortran_2x3.npy");
  EXPECT_EQ(two_d.shape, Shape({2, 3}));
  EXPECT_EQ(values_of<float>(two_d), (std::vector<float>{0, 1, 2, 3, 4, 5}));

  const NpyArray three_d = read_npy(kFixtures + "/f64_fortran_2x3x4.npy");
  EXPECT_EQ(three_d.shape, Shape({2, 3, 4}));
  const auto values = values_of<double>(three_d);
  for (int i = 0; i < 24; ++i) EXPECT_EQ(values[i], i) << i;
}

TEST(NpyFixtures, BigEndianIsConverted) {
  const NpyArray f32 = read_npy(kFixtures + "/f32_bigendian_2x2.npy");
  EXPECT_EQ(f32.dtype, NpyDType::kFloat32);
  EXPECT_EQ(values_of<float>(f32), (std::vector<float>{0.5f, 1.5f, 2.5f, 3.5f}));
  const NpyArray i32 = read_npy(kFixtures + "/i32_bigendian_3.npy");
  EXPECT_EQ(values_of<std::int32_t>(i32), (std::vector<std::int32_t>{-3, 4, 11}));
}

TEST(NpyFixtures, FormatVersions2And3) {
  for (const char* name : {"/f32_v2_3.npy", "/f32_v3_3.npy"}) {
    const NpyArray array = read_npy(kFixtures + name);
    EXPECT_EQ(array.shape, Shape({3})) << name;
    EXPECT_EQ(values_of<float>(array), (std::vector<float>{0, 1, 2})) << name;
  }
}

TEST(NpyFixtures, UnsupportedDtypesAreNamed) {
  const std::pair<const char*, const char*> cases[] = {
      {"/f16_2.npy", "unsupported dtype '<f2'"},
      {"/u8_3.npy", "unsupported dtype '|u1'"},
      {"/structured_2.npy", "structured dtypes"},
  };
  for (const auto& [name, fragment] : cases) {
    const std::string path = kFixtures + name;
    try {
      read_npy(path);
      ADD_FAILURE() << name;
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kUnsupported) << e.what();
      EXPECT_THAT(e.what(), StartsWith(path + ": "));
      EXPECT_THAT(e.what(), HasSubstr(fragment));
    }
  }
}

// ---- Round trips through write_npy ----

class NpyRoundTrip : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::path(::testing::TempDir()) / ("quarks_npy_test_" + std::to_string(std::random_device{}()));
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // Writes `tensor`, checks the file layout NumPy expects, reads it back.
  NpyArray round_trip(const Tensor& tensor) {
    const std::string path = (dir_ / "t.npy").string();
    write_npy(path, tensor);
    const std::vector<std::byte> bytes = load_file(path);
    const std::size_t header_end = bytes.size() - static_cast<std::size_t>(tensor.numel()) *
                                                      (tensor.dtype() == DType::kBF16 ? 4 : dtype_size(tensor.dtype()));
    EXPECT_EQ(header_end % 64, 0u) << "data should start 64-byte aligned";
    EXPECT_EQ(bytes[header_end - 1], std::byte{'\n'});
    EXPECT_EQ(bytes[6], std::byte{1});
    return read_npy(path);
  }

  std::filesystem::path dir_;
};

const Shape kShapes[] = {Shape{}, Shape{0}, Shape{1}, Shape{3, 4}, Shape{1, 2, 1, 3, 1, 2, 1, 2}};

TEST_F(NpyRoundTrip, F32KeepsEveryBit) {
  using limits = std::numeric_limits<float>;
  const float specials[] = {
      0.0f,  -0.0f, limits::infinity(), -limits::infinity(), limits::quiet_NaN(), limits::max(), limits::denorm_min(),
      -1.5f, 3e-20f};
  for (const Shape& shape : kShapes) {
    Tensor tensor(DType::kF32, shape);
    for (std::int64_t i = 0; i < tensor.numel(); ++i) tensor.f32()[i] = specials[i % std::size(specials)] * (i + 1);
    const NpyArray array = round_trip(tensor);
    EXPECT_EQ(array.dtype, NpyDType::kFloat32);
    EXPECT_EQ(array.shape, shape) << shape.to_string();
    const Tensor back = to_tensor(array, "t.npy");
    EXPECT_EQ(back.dtype(), DType::kF32);
    EXPECT_EQ(back.shape(), shape);
    // Compared as bits: NaN payloads and the sign of zero must survive.
    const auto bits = values_of<std::uint32_t>(tensor);
    EXPECT_EQ(values_of<std::uint32_t>(array), bits) << shape.to_string();
    EXPECT_EQ(values_of<std::uint32_t>(back), bits) << shape.to_string();
  }
}

TEST_F(NpyRoundTrip, I64) {
  for (const Shape& shape : kShapes) {
    Tensor tensor(DType::kI64, shape);
    auto* data = static_cast<std::int64_t*>(tensor.data());
    for (std::int64_t i = 0; i < tensor.numel(); ++i) data[i] = (i % 2 ? -1 : 1) * (std::int64_t{1} << (i % 63));
    const NpyArray array = round_trip(tensor);
    EXPECT_EQ(array.dtype, NpyDType::kInt64);
    EXPECT_EQ(array.shape, shape);
    const Tensor back = to_tensor(array, "t.npy");
    EXPECT_EQ(back.dtype(), DType::kI64);
    EXPECT_EQ(values_of<std::int64_t>(back), values_of<std::int64_t>(tensor)) << shape.to_string();
  }
}

TEST_F(NpyRoundTrip, Bool) {
  for (const Shape& shape : kShapes) {
    Tensor tensor(DType::kBool, shape);
    auto* data = static_cast<std::uint8_t*>(tensor.data());
    for (std::int64_t i = 0; i < tensor.numel(); ++i) data[i] = i % 3 == 0;
    const NpyArray array = round_trip(tensor);
    EXPECT_EQ(array.dtype, NpyDType::kBool);
    EXPECT_EQ(array.shape, shape);
    const Tensor back = to_tensor(array, "t.npy");
    EXPECT_EQ(back.dtype(), DType::kBool);
    EXPECT_EQ(values_of<std::uint8_t>(back), values_of<std::uint8_t>(tensor)) << shape.to_string();
  }
}

TEST_F(NpyRoundTrip, Bf16IsWidenedExactlyToF32) {
  for (const Shape& shape : kShapes) {
    Tensor tensor(DType::kBF16, shape);
    auto* data = static_cast<std::uint16_t*>(tensor.data());
    for (std::int64_t i = 0; i < tensor.numel(); ++i) {
      data[i] = static_cast<std::uint16_t>(0x3f80 + 37 * i);  // 1.0, then a spread of exponents and mantissas
    }
    const NpyArray array = round_trip(tensor);
    EXPECT_EQ(array.dtype, NpyDType::kFloat32);
    EXPECT_EQ(array.shape, shape);
    const auto values = values_of<float>(array);
    for (std::size_t i = 0; i < values.size(); ++i) {
      EXPECT_EQ(std::bit_cast<std::uint32_t>(values[i]), std::uint32_t{data[i]} << 16) << i;
    }
  }
}

TEST_F(NpyRoundTrip, WriteErrorsNameThePath) {
  const std::string missing_dir = (dir_ / "no_such_dir" / "t.npy").string();
  try {
    write_npy(missing_dir, Tensor(DType::kF32, Shape{2}));
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kNotFound);
    EXPECT_THAT(e.what(), StartsWith(missing_dir + ": cannot open for writing"));
  }
  EXPECT_THROW(write_npy(dir_.string(), Tensor(DType::kF32, Shape{2})), Error);  // a directory
}

TEST_F(NpyRoundTrip, MissingFileAndDirectory) {
  const std::string missing = (dir_ / "missing.npy").string();
  try {
    read_npy(missing);
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kNotFound);
    EXPECT_EQ(std::string(e.what()), missing + ": no such file");
  }
  try {
    read_npy(dir_.string());
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
    EXPECT_THAT(e.what(), StartsWith(dir_.string() + ": is a directory"));
  }
}

// ---- Conversions ----

NpyArray array_of(NpyDType dtype, const Shape& shape, const void* values) {
  NpyArray array{dtype, shape, {}};
  array.data.resize(static_cast<std::size_t>(shape.numel()) * npy_dtype_size(dtype));
  std::memcpy(array.data.data(), values, array.data.size());
  return array;
}

void expect_conversion_error(const NpyArray& array, const std::string& fragment) {
  try {
    to_f32_tensor(array, "in.npy");
    ADD_FAILURE() << fragment;
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
    EXPECT_THAT(e.what(), StartsWith("in.npy: "));
    EXPECT_THAT(e.what(), HasSubstr(fragment));
  }
}

TEST(NpyConvert, Float64RoundsButRefusesOverflow) {
  const double inf = std::numeric_limits<double>::infinity();
  const double just_below = std::nextafter(0x1.ffffffp+127, 0.0);  // rounds down to FLT_MAX
  const double ok[] = {0.1, -0.0, inf, -inf, std::numeric_limits<double>::quiet_NaN(), just_below, -just_below, 1e-300};
  const Tensor t = to_f32_tensor(array_of(NpyDType::kFloat64, Shape{8}, ok), "in.npy");
  for (int i = 0; i < 8; ++i) {
    if (std::isnan(ok[i])) {
      EXPECT_TRUE(std::isnan(t.f32()[i]));
    } else {
      EXPECT_EQ(t.f32()[i], static_cast<float>(ok[i])) << i;
    }
  }
  EXPECT_EQ(t.f32()[5], std::numeric_limits<float>::max());
  EXPECT_TRUE(std::signbit(t.f32()[1]));

  const double too_big[] = {1.0, -0x1.ffffffp+127};
  expect_conversion_error(array_of(NpyDType::kFloat64, Shape{2}, too_big), "float64 element 1 = ");
  const double huge[] = {1e300};
  expect_conversion_error(array_of(NpyDType::kFloat64, Shape{1}, huge), "outside the float32 range");
}

TEST(NpyConvert, IntegersMustBeExactInF32) {
  const std::int32_t i32_ok[] = {0, -7, 1 << 24, -(1 << 24)};
  const Tensor t = to_f32_tensor(array_of(NpyDType::kInt32, Shape{2, 2}, i32_ok), "in.npy");
  EXPECT_EQ(values_of<float>(t), (std::vector<float>{0, -7, 16777216.0f, -16777216.0f}));
  const std::int32_t i32_bad[] = {1, 2, (1 << 24) + 1};
  expect_conversion_error(array_of(NpyDType::kInt32, Shape{3}, i32_bad), "int32 element 2 = 16777217");
  const std::int64_t i64_bad[] = {std::numeric_limits<std::int64_t>::min()};
  expect_conversion_error(array_of(NpyDType::kInt64, Shape{1}, i64_bad), "int64 element 0 = -9223372036854775808");
}

TEST(NpyConvert, ToTensorKeepsIntegersAndBools) {
  const std::int32_t i32[] = {std::numeric_limits<std::int32_t>::min(), -1, 0,
                              std::numeric_limits<std::int32_t>::max()};
  const Tensor widened = to_tensor(array_of(NpyDType::kInt32, Shape{4}, i32), "in.npy");
  EXPECT_EQ(widened.dtype(), DType::kI64);
  EXPECT_EQ(values_of<std::int64_t>(widened), (std::vector<std::int64_t>{i32[0], -1, 0, i32[3]}));

  const std::int64_t i64[] = {std::int64_t{1} << 40, std::numeric_limits<std::int64_t>::min()};
  EXPECT_EQ(values_of<std::int64_t>(to_tensor(array_of(NpyDType::kInt64, Shape{2}, i64), "in.npy")),
            (std::vector<std::int64_t>{i64[0], i64[1]}));

  const std::uint8_t bools[] = {0, 1, 2, 255};  // NumPy bools are 0/1; other bytes count as true
  const Tensor as_bool = to_tensor(array_of(NpyDType::kBool, Shape{4}, bools), "in.npy");
  EXPECT_EQ(as_bool.dtype(), DType::kBool);
  EXPECT_EQ(values_of<std::uint8_t>(as_bool), (std::vector<std::uint8_t>{0, 1, 1, 1}));
  EXPECT_EQ(values_of<float>(to_f32_tensor(array_of(NpyDType::kBool, Shape{4}, bools), "in.npy")),
            (std::vector<float>{0, 1, 1, 1}));
}

TEST(NpyConvert, InconsistentArrayIsAnError) {
  NpyArray array{NpyDType::kFloat32, Shape{4, 8}, std::vector<std::byte>(96)};
  EXPECT_THROW(to_f32_tensor(array, "in.npy"), Error);
  EXPECT_THROW(to_tensor(array, "in.npy"), Error);
}

// ---- Hostile files ----

TEST(NpyHostile, PreambleAndMagic) {
  expect_refused({}, ErrorCode::kInvalidArgument, "truncated: 0 bytes");
  const std::string garbage = "hello, world, this is not numpy";
  std::vector<std::byte> bytes(garbage.size());
  std::memcpy(bytes.data(), garbage.data(), garbage.size());
  expect_refused(bytes, ErrorCode::kInvalidArgument, "not a .npy file");

  auto wrong_magic = make_npy(dict("<f4", "(1,)"), 4);
  wrong_magic[5] = std::byte{'Z'};
  expect_refused(wrong_magic, ErrorCode::kInvalidArgument, "not a .npy file");

  auto version = make_npy(dict("<f4", "(1,)"), 4);
  version[6] = std::byte{4};
  expect_refused(version, ErrorCode::kUnsupported, "format version 4.0");
  version[6] = std::byte{1};
  version[7] = std::byte{1};
  expect_refused(version, ErrorCode::kUnsupported, "format version 1.1");

  const auto valid = make_npy(dict("<f4", "(1,)"), 4);
  expect_refused({valid.begin(), valid.begin() + 9}, ErrorCode::kInvalidArgument, "truncated: 9 bytes");
  auto long_header = valid;
  long_header[8] = long_header[9] = std::byte{0xff};
  expect_refused(long_header, ErrorCode::kInvalidArgument, "header length 65535 runs past the end of the file");
  auto long_header_v2 = make_npy(dict("<f4", "(1,)"), 4, 2);
  long_header_v2[11] = std::byte{0x80};
  expect_refused(long_header_v2, ErrorCode::kInvalidArgument, "header length 2147483");
}

TEST(NpyHostile, HeaderMustBeTheDictLiteral) {
  const std::pair<std::string, std::string> cases[] = {
      {"[1, 2]", "expected '{' at the start"},
      {"", "expected '{' at the start"},
      {"{'descr': '<f4', 'fortran_order': False}", "no 'shape' key"},
      {"{'shape': (1,), 'fortran_order': False}", "no 'descr' key"},
      {"{'descr': '<f4', 'shape': (1,)}", "no 'fortran_order' key"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (1,), 'extra': 1}", "unexpected key 'extra'"},
      {"{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (1,)}", "duplicate key 'descr'"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (1)}", "trailing comma"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': [1]}", "expected '(' to start the 'shape' tuple"},
      {"{'descr': '<f4', 'fortran_order': 0, 'shape': (1,)}", "must be True or False"},
      {"{'descr': '<f4, 'fortran_order': False, 'shape': (1,)}",
       "expected '}' after the value of 'descr' at header offset 17 (next: 'fortran_order"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (1,)", "expected '}'"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (1,)} x", "unexpected text after the closing '}'"},
      {"{'descr': '<f\\x34', 'fortran_order': False, 'shape': (1,)}", "escape sequences"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (1,), 'sha", "unterminated string"},
      {"{descr: '<f4', 'fortran_order': False, 'shape': (1,)}", "expected a key in quotes"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (1, x)}", "expected a dimension"},
      {"{'descr': 4, 'fortran_order': False, 'shape': (1,)}", "expected the 'descr' string in quotes"},
      {"{'descr': '<f4'#, 'fortran_order': False, 'shape': (1,)}",
       "(next: '\\x00, 'fortran_order'"},  // # becomes a NUL below
  };
  for (const auto& [header, fragment] : cases) {
    SCOPED_TRACE(header);
    std::string text = header;
    if (const auto nul = text.find('#'); nul != std::string::npos) text[nul] = '\0';
    expect_refused(make_npy(text, 4), ErrorCode::kInvalidArgument, fragment);
  }
  // Double quotes, no trailing comma, no padding and extra whitespace are all valid Python.
  const NpyArray array =
      read_npy_bytes(make_npy("{ \"shape\" : ( 1 , ) , \"fortran_order\":True,\"descr\":\"<f4\"}", 4), "x.npy");
  EXPECT_EQ(array.shape, Shape({1}));
}

TEST(NpyHostile, Dtypes) {
  expect_refused(make_npy(dict("<c8", "(1,)"), 8), ErrorCode::kUnsupported, "unsupported dtype '<c8'");
  expect_refused(make_npy(dict("|S5", "(1,)"), 5), ErrorCode::kUnsupported, "unsupported dtype '|S5'");
  expect_refused(make_npy(dict("O", "(1,)"), 8), ErrorCode::kUnsupported, "unsupported dtype 'O'");
  expect_refused(make_npy(dict("<f4x", "(1,)"), 4), ErrorCode::kInvalidArgument, "'<f4x' is not a NumPy dtype");
  expect_refused(make_npy(dict("", "(1,)"), 4), ErrorCode::kInvalidArgument, "'' is not a NumPy dtype");
  expect_refused(make_npy(dict("<", "(1,)"), 4), ErrorCode::kInvalidArgument, "'<' is not a NumPy dtype");
  // Native and alternative spellings.
  EXPECT_EQ(read_npy_bytes(make_npy(dict("=f8", "(1,)"), 8), "x.npy").dtype, NpyDType::kFloat64);
  EXPECT_EQ(read_npy_bytes(make_npy(dict("?", "(1,)"), 1), "x.npy").dtype, NpyDType::kBool);
  EXPECT_EQ(read_npy_bytes(make_npy(dict("<i4", "(1,)"), 4), "x.npy").dtype, NpyDType::kInt32);
}

TEST(NpyHostile, Shapes) {
  expect_refused(make_npy(dict("<f4", "(-1,)"), 4), ErrorCode::kInvalidArgument, "negative dimension");
  expect_refused(make_npy(dict("<f4", "(99999999999999999999,)"), 4), ErrorCode::kInvalidArgument,
                 "does not fit in 64 bits");
  expect_refused(make_npy(dict("<f4", "(1, 1, 1, 1, 1, 1, 1, 1, 1)"), 4), ErrorCode::kInvalidArgument,
                 "more than 8 dimensions");
  // Absurd sizes are refused from the header alone: nothing of that size is allocated.
  expect_refused(make_npy(dict("<f4", "(1099511627776,)"), 0), ErrorCode::kInvalidArgument,
                 "data has 0 bytes but shape (1099511627776,) of float32 needs 4398046511104");
  expect_refused(make_npy(dict("<f8", "(4294967296, 4294967296)"), 0), ErrorCode::kInvalidArgument,
                 "shape (4294967296, 4294967296) of float64 is too large");
  expect_refused(make_npy(dict("|b1", "(0, 4611686018427387904, 4)"), 0), ErrorCode::kInvalidArgument, "too large");
  // Zero-size arrays with reasonable dims are fine.
  EXPECT_EQ(read_npy_bytes(make_npy(dict("<f4", "(5, 0)"), 0), "x.npy").shape, Shape({5, 0}));
}

TEST(NpyHostile, DataLengthMustMatchTheShape) {
  expect_refused(make_npy(dict("<f4", "(4, 8)"), 96), ErrorCode::kInvalidArgument,
                 "data has 96 bytes but shape (4, 8) of float32 needs 128");
  try {
    read_npy_bytes(make_npy(dict("<f4", "(4, 8)"), 96), "x.npy");
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), "x.npy: data has 96 bytes but shape (4, 8) of float32 needs 128");
  }
  expect_refused(make_npy(dict("<f4", "(4, 8)"), 132), ErrorCode::kInvalidArgument,
                 "data has 132 bytes but shape (4, 8) of float32 needs 128");
  expect_refused(make_npy(dict("<i8", "()"), 0), ErrorCode::kInvalidArgument,
                 "data has 0 bytes but shape () of int64 needs 8");
}

// Every prefix of a valid file is refused, and random byte changes give an array or an Error —
// never a crash, another exception type or an array whose data disagrees with its shape.
TEST(NpyHostile, MutatedFilesNeverCrash) {
  std::vector<std::vector<std::byte>> valid;
  for (const char* name : {"f32_3x4", "f64_fortran_2x3x4", "i32_bigendian_3", "bool_4", "f32_scalar", "f32_empty_0x3",
                           "i64_rank8", "f32_v2_3", "f32_v3_3", "structured_2"}) {
    valid.push_back(load_file(kFixtures + "/" + name + ".npy"));
    ASSERT_GT(valid.back().size(), 64u) << name;
  }
  std::mt19937 rng(12345);
  int parsed = 0, refused = 0;
  auto attempt = [&](const std::vector<std::byte>& bytes) {
    try {
      const NpyArray array = read_npy_bytes(bytes, "m.npy");
      ASSERT_EQ(array.data.size(), static_cast<std::size_t>(array.shape.numel()) * npy_dtype_size(array.dtype));
      ++parsed;
      try {
        to_tensor(array, "m.npy");
      } catch (const Error&) {
      }
    } catch (const Error& e) {
      ASSERT_THAT(e.what(), StartsWith("m.npy: "));
      ++refused;
    }
  };
  for (const auto& file : valid) {
    for (std::size_t length = 0; length < file.size(); ++length) {
      EXPECT_THROW(read_npy_bytes(std::span(file).first(length), "m.npy"), Error) << length;
    }
    // Mutations mostly hit the preamble and header, where the parsing is; a few hit the data.
    const std::size_t header_end = file[6] == std::byte{1} ? 10 + std::to_integer<std::size_t>(file[8]) +
                                                                 256 * std::to_integer<std::size_t>(file[9])
                                                           : 12 + std::to_integer<std::size_t>(file[8]);
    for (int trial = 0; trial < 3000; ++trial) {
      std::vector<std::byte> bytes = file;
      const int changes = 1 + static_cast<int>(rng() % 3);
      for (int c = 0; c < changes; ++c) {
        const std::size_t pos = rng() % std::min(bytes.size(), rng() % 8 ? header_end : bytes.size());
        static constexpr char kInteresting[] = "0123456789(),:'\"{} TrueFalse<>|=fib-\n\x00\xff";
        bytes[pos] = rng() % 2 ? std::byte(rng() & 0xff)
                               : std::byte(static_cast<unsigned char>(kInteresting[rng() % (sizeof kInteresting - 1)]));
      }
      if (rng() % 16 == 0) bytes.resize(bytes.size() + rng() % 9);  // trailing bytes
      attempt(bytes);
      if (HasFatalFailure()) return;
    }
  }
  // Both outcomes must actually occur, or the mutations are not exercising the parser.
  EXPECT_GT(parsed, 100);
  EXPECT_GT(refused, 1000);
}

}  // namespace
}  // namespace quarks::tools
