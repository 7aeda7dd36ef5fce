// The safetensors reader on hostile files and folders: every malformed header, lying size, overlap,
// duplicate and escaping shard path is a quarks::Error naming the file and the tensor, with the
// fragment of the message each case asserts.
#include <sys/stat.h>

#include <fstream>

#include "engine/models/safetensors.hpp"
#include "models/safetensors_writer.hpp"

namespace quarks::models {
namespace {

using testing::bytes_of;
using testing::expect_error;
using testing::SafetensorsWriter;
using testing::TempDir;

struct BadHeader {
  const char* what;
  std::string header;      // the JSON text (its true length is written before it)
  std::size_t data_bytes;  // zero bytes after the header
  ErrorCode code;
  std::string fragment;
};

// An entry of "t" with the given fields.
std::string entry(const std::string& fields) { return "{\"t\":{" + fields + "}}"; }
const std::string kDtype = R"("dtype":"F32",)";
const std::string kShape = R"("shape":[2],)";
const std::string kOffsets = R"("data_offsets":[0,8])";

const ErrorCode kInvalid = ErrorCode::kInvalidArgument;

const BadHeader kBadHeaders[] = {
    {"not JSON", "{\"t\": {", 0, kInvalid, "header is not valid JSON: [json.exception.parse_error"},
    {"empty header", "", 0, kInvalid, "header is not valid JSON"},
    {"trailing text", "{} x", 0, kInvalid, "header is not valid JSON"},
    {"invalid UTF-8", "{\"\xff\":1}", 0, kInvalid, "header is not valid JSON"},
    {"array header", "[1,2]", 0, kInvalid, "header is an array, not a JSON object"},
    {"number header", "42", 0, kInvalid, "header is the integer 42, not a JSON object"},
    {"entry not an object", R"({"t":[1]})", 0, kInvalid, "tensor 't': the entry is an array, not an object"},
    {"entry a string", R"({"t":"F32"})", 0, kInvalid, "tensor 't': the entry is the string 'F32', not an object"},
    {"no dtype", entry(kShape + kOffsets), 8, kInvalid, "tensor 't': the entry has no 'dtype'"},
    {"no shape", entry(kDtype + kOffsets), 8, kInvalid, "tensor 't': the entry has no 'shape'"},
    {"no data_offsets", entry(kDtype + R"("shape":[2])"), 8, kInvalid, "tensor 't': the entry has no 'data_offsets'"},
    {"dtype a number", entry(R"("dtype":7,)" + kShape + kOffsets), 8, kInvalid,
     "'dtype' is the integer 7, not a string"},
    {"dtype an array", entry(R"("dtype":["F32"],)" + kShape + kOffsets), 8, kInvalid,
     "'dtype' is an array, not a string"},
    {"shape a string", entry(kDtype + R"("shape":"[2]",)" + kOffsets), 8, kInvalid,
     "'shape' is the string '[2]', not an array of integers"},
    {"shape an object", entry(kDtype + R"("shape":{"0":2},)" + kOffsets), 8, kInvalid,
     "'shape' is an object, not an array of integers"},
    {"offsets a number", entry(kDtype + kShape + R"("data_offsets":8)"), 8, kInvalid,
     "'data_offsets' is the integer 8, not an array of integers"},
    {"negative dim", entry(kDtype + R"("shape":[2,-3],)" + kOffsets), 8, kInvalid,
     "dim 1 of 'shape' is -3; dims must be >= 0"},
    {"fractional dim", entry(kDtype + R"("shape":[2.5],)" + kOffsets), 8, kInvalid,
     "dim 0 of 'shape' is the number 2.5, not an integer"},
    {"dim written 2.0", entry(kDtype + R"("shape":[2.0],)" + kOffsets), 8, kInvalid,
     "dim 0 of 'shape' is the number 2.0"},
    {"string dim", entry(kDtype + R"("shape":["2"],)" + kOffsets), 8, kInvalid, "dim 0 of 'shape' is the string '2'"},
    {"nested dim", entry(kDtype + R"("shape":[[2]],)" + kOffsets), 8, kInvalid, "dim 0 of 'shape' is an array"},
    {"null dim", entry(kDtype + R"("shape":[null],)" + kOffsets), 8, kInvalid, "dim 0 of 'shape' is null"},
    {"dim above int64", entry(kDtype + R"("shape":[9223372036854775808],)" + kOffsets), 8, kInvalid,
     "dim 0 of 'shape' is 9223372036854775808, above 2^63 - 1"},
    {"dim beyond uint64", entry(kDtype + R"("shape":[18446744073709551616],)" + kOffsets), 8, kInvalid,
     "not an integer"},
    {"rank 9", entry(kDtype + R"("shape":[1,1,1,1,1,1,1,1,2],)" + kOffsets), 8, kInvalid,
     "'shape' has more than 8 dims"},
    {"unknown dtype", entry(R"("dtype":"F128",)" + kShape + kOffsets), 8, ErrorCode::kUnsupported,
     "dtype 'F128' is not one of F64 F32 F16 BF16 I64 I32 I16 I8 U64 U32 U16 U8 BOOL F8_E4M3 F8_E5M2"},
    {"lower-case dtype", entry(R"("dtype":"f32",)" + kShape + kOffsets), 8, ErrorCode::kUnsupported, "dtype 'f32'"},
    {"one offset", entry(kDtype + kShape + R"("data_offsets":[8])"), 8, kInvalid,
     "'data_offsets' holds 1 numbers, not two"},
    {"three offsets", entry(kDtype + kShape + R"("data_offsets":[0,8,8])"), 8, kInvalid,
     "'data_offsets' holds more than two numbers"},
    {"negative offset", entry(kDtype + kShape + R"("data_offsets":[-8,0])"), 8, kInvalid,
     "'data_offsets' holds the negative number -8, not an integer >= 0"},
    {"fractional offset", entry(kDtype + kShape + R"("data_offsets":[0,8.5])"), 8, kInvalid,
     "'data_offsets' holds the number 8.5"},
    {"offsets reversed", entry(kDtype + R"("shape":[0],"data_offsets":[8,0])"), 8, kInvalid,
     "data_offsets [8, 0] end before they begin"},
    {"range past the data", entry(kDtype + kShape + R"("data_offsets":[4,12])"), 8, kInvalid,
     "tensor 't': data_offsets [4, 12] run past the end of the data section (8 bytes)"},
    {"size too small", entry(kDtype + R"("shape":[3],)" + kOffsets), 8, kInvalid,
     "tensor 't': shape [3] of F32 needs 12 bytes but data_offsets [0, 8] hold 8"},
    {"size of bf16", entry(R"("dtype":"BF16",)" + kShape + kOffsets), 8, kInvalid,
     "shape [2] of BF16 needs 4 bytes but data_offsets [0, 8] hold 8"},
    {"element count overflows", entry(kDtype + R"("shape":[1099511627776,1099511627776],)" + kOffsets), 8, kInvalid,
     "shape [1099511627776,1099511627776] of F32 needs more than 2^63 bytes but data_offsets [0, 8] hold 8"},
    {"bytes overflow", entry(R"("dtype":"F64","shape":[2305843009213693952],)" + kOffsets), 8, kInvalid,
     "needs more than 2^63 bytes"},
    {"zero after an overflow",
     entry(kDtype + R"("shape":[4294967296,4294967296,4294967296,0],)" + R"("data_offsets":[0,0])"), 0, kInvalid,
     "needs more than 2^63 bytes"},
    {"overlap",
     R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
     12, kInvalid, "the data of tensors 'a' [0, 8] and 'b' [4, 12] overlap"},
    {"overlap inside a long range",
     R"({"a":{"dtype":"U8","shape":[12],"data_offsets":[0,12]},"b":{"dtype":"U8","shape":[1],"data_offsets":[2,3]},"c":{"dtype":"U8","shape":[1],"data_offsets":[9,10]}})",
     12, kInvalid, "the data of tensors 'a' [0, 12] and 'b' [2, 3] overlap"},
    {"same range twice",
     R"({"b":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})",
     8, kInvalid, "and 'b' [0, 8] overlap"},
    {"duplicate tensor",
     R"({"t":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"t":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
     8, kInvalid, "tensor 't' appears twice in the header"},
    {"duplicate field", entry(kDtype + R"("dtype":"F16",)" + kShape + kOffsets), 8, kInvalid,
     "tensor 't': the key 'dtype' appears twice"},
    {"duplicate metadata", R"({"__metadata__":{},"__metadata__":{}})", 0, kInvalid, "'__metadata__' appears twice"},
    {"duplicate metadata key", R"({"__metadata__":{"a":"1","a":"2"}})", 0, kInvalid,
     "'__metadata__' has the key 'a' twice"},
    {"metadata an array", R"({"__metadata__":["format"]})", 0, kInvalid, "'__metadata__' is an array, not an object"},
    {"metadata a string", R"({"__metadata__":"pt"})", 0, kInvalid, "'__metadata__' is the string 'pt', not an object"},
    {"metadata value a number", R"({"__metadata__":{"total_size":16}})", 0, kInvalid,
     "'__metadata__' value of 'total_size' is the integer 16, not a string"},
    {"metadata value an object", R"({"__metadata__":{"a":{}}})", 0, kInvalid,
     "'__metadata__' value of 'a' is an object"},
    {"control bytes in a name", R"({"a\u0001b\nc":5})", 0, kInvalid,
     "tensor 'a\\x01b\\x0ac': the entry is the integer 5"},
};

TEST(SafetensorsErrors, EachBadHeaderNamesTheFileTensorAndProblem) {
  for (const BadHeader& c : kBadHeaders) {
    SCOPED_TRACE(c.what);
    const auto file = testing::image(c.header, std::vector<std::byte>(c.data_bytes));
    expect_error([&] { Checkpoint::from_bytes(file, "bad.safetensors"); }, c.code,
                 {"file bad.safetensors: ", c.fragment});
  }
}

TEST(SafetensorsErrors, LengthFieldAndHeaderSize) {
  const std::vector<std::byte> five(5);
  expect_error([&] { Checkpoint::from_bytes(five, "short"); }, kInvalid,
               {"file short: is 5 bytes, shorter than the 8-byte header length"});
  expect_error([&] { Checkpoint::from_bytes({}, "empty"); }, kInvalid, {"file empty: is 0 bytes"});
  // The length is little-endian: 0x0000000000000100 = 256, not 2^48.
  const auto past = testing::raw_image(256, "{}");
  expect_error([&] { Checkpoint::from_bytes(past, "past"); }, kInvalid,
               {"file past: header length 256 runs past the end of the file (2 bytes follow the length)"});
  const auto huge = testing::raw_image(~std::uint64_t{0}, "{}");
  expect_error([&] { Checkpoint::from_bytes(huge, "huge"); }, kInvalid,
               {"header length 18446744073709551615 runs past"});
  // A shorter length than the text: the JSON is cut.
  const auto cut = testing::raw_image(3, R"({"a":1})");
  expect_error([&] { Checkpoint::from_bytes(cut, "cut"); }, kInvalid, {"file cut: header is not valid JSON"});
}

TEST(SafetensorsErrors, HeaderAboveTheCapIsRefusedBeforeParsing) {
  TempDir dir;
  const auto path = dir / "big.safetensors";
  // A sparse file: 100 MB + 1 of header claimed and present, none of it on disk.
  const std::uint64_t length = kMaxHeaderBytes + 1;
  SafetensorsWriter::write_file(path, testing::raw_image(length, "{"));
  std::filesystem::resize_file(path, 8 + length);
  expect_error([&] { Checkpoint::open_file(path); }, kInvalid,
               {"file " + path.string() + ": header length 100000001 is above the cap of 100000000"});
}

TEST(SafetensorsErrors, FilesThatCannotBeRead) {
  TempDir dir;
  expect_error([&] { Checkpoint::open_file(dir / "absent.safetensors"); }, ErrorCode::kNotFound,
               {(dir / "absent.safetensors").string() + ": cannot be opened"});
  SafetensorsWriter::write_file(dir / "empty.safetensors", {});
  expect_error([&] { Checkpoint::open_file(dir / "empty.safetensors"); }, kInvalid,
               {"empty.safetensors: is 0 bytes, shorter than the 8-byte header length"});
  SafetensorsWriter::write_file(dir / "seven.safetensors", std::vector<std::byte>(7));
  expect_error([&] { Checkpoint::open_file(dir / "seven.safetensors"); }, kInvalid, {"is 7 bytes"});
  expect_error([&] { Checkpoint::open_file(dir.path()); }, kInvalid, {"is not a regular file"});
  // A FIFO would block a reader waiting for a writer: it is refused without reading.
  ASSERT_EQ(::mkfifo((dir / "fifo").c_str(), 0600), 0);
  expect_error([&] { Checkpoint::open_file(dir / "fifo"); }, kInvalid, {"fifo: is not a regular file"});
}

// A folder with shards a.safetensors (tensor "a") and b.safetensors (tensor "b") and the given index text.
void write_sharded(const TempDir& dir, const std::string& index) {
  SafetensorsWriter().tensor("a", "F32", "[1]", bytes_of(std::vector<float>{1})).write(dir / "a.safetensors");
  SafetensorsWriter().tensor("b", "F32", "[1]", bytes_of(std::vector<float>{2})).write(dir / "b.safetensors");
  std::ofstream(dir / "model.safetensors.index.json") << index;
}

struct BadIndex {
  const char* what;
  std::string index;
  ErrorCode code;
  std::string fragment;
};

const BadIndex kBadIndexes[] = {
    {"not JSON", R"({"weight_map": )", kInvalid, "model.safetensors.index.json: is not valid JSON"},
    {"not an object", R"(["a.safetensors"])", kInvalid, "is a JSON array, not an object"},
    {"no weight_map", R"({"metadata": {}})", kInvalid, "has no 'weight_map'"},
    {"weight_map an array", R"({"weight_map": ["a.safetensors"]})", kInvalid,
     "'weight_map' is an array, not an object"},
    {"shard not a string", R"({"weight_map": {"a": 1}})", kInvalid,
     "'weight_map' gives tensor 'a' a number, not a shard file name"},
    {"absolute shard", R"({"weight_map": {"a": "/etc/passwd"}})", kInvalid,
     "shard '/etc/passwd' (listed for tensor 'a') is not a relative path inside the model folder"},
    {"shard leaving the folder", R"({"weight_map": {"a": "../a.safetensors"}})", kInvalid,
     "shard '../a.safetensors' (listed for tensor 'a') is not a relative path"},
    {"shard leaving further down", R"({"weight_map": {"a": "x/../../a.safetensors"}})", kInvalid,
     "is not a relative path inside the model folder"},
    {"empty shard name", R"({"weight_map": {"a": ""}})", kInvalid, "shard '' (listed for tensor 'a')"},
    {"missing shard", R"({"weight_map": {"a": "a.safetensors", "c": "c.safetensors"}})", ErrorCode::kNotFound,
     "shard 'c.safetensors' (listed for tensor 'c') does not exist"},
    {"tensor absent from its shard", R"({"weight_map": {"a": "a.safetensors", "z": "a.safetensors"}})",
     ErrorCode::kNotFound, "tensor 'z' is listed in shard 'a.safetensors' but that shard does not hold it"},
    {"tensor listed in the other shard", R"({"weight_map": {"a": "b.safetensors", "b": "b.safetensors"}})",
     ErrorCode::kNotFound, "tensor 'a' is listed in shard 'b.safetensors' but that shard does not hold it"},
    {"weight_map twice", R"({"weight_map": {"a": "a.safetensors"}, "weight_map": {}})", kInvalid,
     "the key 'weight_map' appears twice"},
    {"tensor listed twice", R"({"weight_map": {"a": "a.safetensors", "a": "b.safetensors"}})", kInvalid,
     "tensor 'a' appears twice in 'weight_map'"},
};

TEST(SafetensorsErrors, EachBadIndexNamesTheIndexAndProblem) {
  for (const BadIndex& c : kBadIndexes) {
    SCOPED_TRACE(c.what);
    TempDir dir;
    write_sharded(dir, c.index);
    expect_error([&] { Checkpoint::open(dir.path()); }, c.code,
                 {"file " + (dir / "model.safetensors.index.json").string() + ": ", c.fragment});
  }
}

TEST(SafetensorsErrors, TensorInTwoShards) {
  TempDir dir;
  write_sharded(dir, R"({"weight_map": {"a": "a.safetensors", "b": "b.safetensors"}})");
  SafetensorsWriter()
      .tensor("b", "F32", "[1]", bytes_of(std::vector<float>{2}))
      .tensor("a", "F32", "[1]", bytes_of(std::vector<float>{3}))
      .write(dir / "b.safetensors");
  expect_error(
      [&] { Checkpoint::open(dir.path()); }, kInvalid,
      {"file " + (dir / "b.safetensors").string() + ": tensor 'a' is also in " + (dir / "a.safetensors").string()});
}

TEST(SafetensorsErrors, BadShardIsNamedByItsOwnPath) {
  TempDir dir;
  write_sharded(dir, R"({"weight_map": {"a": "a.safetensors", "b": "b.safetensors"}})");
  SafetensorsWriter::write_file(dir / "b.safetensors", testing::image(R"({"b":{"dtype":"F32"}})"));
  expect_error([&] { Checkpoint::open(dir.path()); }, kInvalid,
               {"file " + (dir / "b.safetensors").string() + ": tensor 'b': the entry has no 'shape'"});
}

}  // namespace
}  // namespace quarks::models
