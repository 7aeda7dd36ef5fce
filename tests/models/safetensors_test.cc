// The safetensors reader on valid checkpoints: values of every convertible dtype (all 65536 f16 and
// bf16 bit patterns against references computed another way), shapes, metadata, sharded folders,
// zero-copy views inside the file mapping, and the shape and dtype checks of the conversions.
#include "engine/models/safetensors.hpp"

#include <bit>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "models/safetensors_writer.hpp"

namespace quarks::models {
namespace {

using testing::bytes_of;
using ::testing::ElementsAre;
using testing::expect_error;
using testing::SafetensorsWriter;
using testing::TempDir;

std::vector<float> values(const Tensor& t) { return {t.f32(), t.f32() + t.numel()}; }

std::vector<std::uint16_t> every_16_bit_pattern() {
  std::vector<std::uint16_t> bits(65536);
  for (std::size_t i = 0; i < bits.size(); ++i) bits[i] = static_cast<std::uint16_t>(i);
  return bits;
}

// IEEE binary16 by its definition: (-1)^s · 2^(e-15) · (1 + m/1024), subnormals 2^-14 · m/1024.
float f16_reference(std::uint16_t h) {
  const int e = (h >> 10) & 0x1f, m = h & 0x3ff;
  const double sign = (h & 0x8000) ? -1.0 : 1.0;
  if (e == 0x1f) return m == 0 ? static_cast<float>(sign * HUGE_VAL) : std::copysign(NAN, static_cast<float>(sign));
  const double magnitude = e == 0 ? std::ldexp(m, -24) : std::ldexp(1024 + m, e - 25);
  return static_cast<float>(sign * magnitude);
}

TEST(Safetensors, RoundTripsF32Bf16AndF16Values) {
  TempDir dir;
  const std::vector<float> f32 = {1.5f, -2.25f, 0.0f, 3e38f, -1e-40f, 7.0f};
  // bf16 of 1, -2, 0.5, 65536; f16 of 1, -2, 0.5, 65504 (the largest f16), 2^-24 (the smallest).
  const std::vector<std::uint16_t> bf16 = {0x3f80, 0xc000, 0x3f00, 0x4780};
  const std::vector<std::uint16_t> f16 = {0x3c00, 0xc000, 0x3800, 0x7bff, 0x0001};
  SafetensorsWriter()
      .tensor("a.f32", "F32", "[2,3]", bytes_of(f32))
      .tensor("b.bf16", "BF16", "[2,2]", bytes_of(bf16))
      .tensor("c.f16", "F16", "[5]", bytes_of(f16))
      .write(dir / "model.safetensors");
  const Checkpoint c = Checkpoint::open_file(dir / "model.safetensors");
  EXPECT_THAT(c.names(), ElementsAre("a.f32", "b.bf16", "c.f16"));
  EXPECT_EQ(values(c.to_f32("a.f32", Shape{2, 3})), f32);
  EXPECT_THAT(values(c.to_f32("b.bf16", Shape{2, 2})), ElementsAre(1.0f, -2.0f, 0.5f, 65536.0f));
  EXPECT_THAT(values(c.to_f32("c.f16")), ElementsAre(1.0f, -2.0f, 0.5f, 65504.0f, std::ldexp(1.0f, -24)));
  const StoredTensor& b = c.at("b.bf16");
  EXPECT_EQ(b.dtype, "BF16");
  EXPECT_EQ(b.shape, (Shape{2, 2}));
  EXPECT_EQ(b.data.size(), 8u);
  EXPECT_EQ(b.file, (dir / "model.safetensors").string());
}

TEST(Safetensors, WidensEveryBf16BitPatternExactly) {
  const auto bits = every_16_bit_pattern();
  const auto file = SafetensorsWriter().tensor("w", "BF16", "[65536]", bytes_of(bits)).bytes();
  const Tensor t = Checkpoint::from_bytes(file, "bf16.safetensors").to_f32("w", Shape{65536});
  for (std::uint32_t i = 0; i < 65536; ++i) {
    ASSERT_EQ(std::bit_cast<std::uint32_t>(t.f32()[i]), i << 16) << "bf16 0x" << std::hex << i;
  }
}

TEST(Safetensors, WidensEveryF16BitPatternExactly) {
  const auto bits = every_16_bit_pattern();
  const auto file = SafetensorsWriter().tensor("w", "F16", "[65536]", bytes_of(bits)).bytes();
  const Tensor t = Checkpoint::from_bytes(file, "f16.safetensors").to_f32("w");
  int subnormals = 0, nans = 0;
  for (std::uint32_t i = 0; i < 65536; ++i) {
    const float got = t.f32()[i], want = f16_reference(static_cast<std::uint16_t>(i));
    if (std::isnan(want)) {
      ++nans;
      ASSERT_TRUE(std::isnan(got)) << "f16 0x" << std::hex << i;
      ASSERT_EQ(std::signbit(got), std::signbit(want)) << "f16 0x" << std::hex << i;
      // The payload stays in the top mantissa bits, as hardware conversions (F16C) keep it.
      ASSERT_EQ((std::bit_cast<std::uint32_t>(got) >> 13) & 0x3ff, i & 0x3ff) << "f16 0x" << std::hex << i;
    } else {
      subnormals += std::fpclassify(want) != FP_ZERO && ((i >> 10) & 0x1f) == 0;
      ASSERT_EQ(std::bit_cast<std::uint32_t>(got), std::bit_cast<std::uint32_t>(want)) << "f16 0x" << std::hex << i;
    }
  }
  EXPECT_EQ(subnormals, 2 * 1023);
  EXPECT_EQ(nans, 2 * 1023);
}

TEST(Safetensors, ScalarAndZeroSizedShapes) {
  const auto file = SafetensorsWriter()
                        .tensor("scalar", "F32", "[]", bytes_of(std::vector<float>{42.0f}))
                        .tensor("empty", "F32", "[0,3]", {})
                        .tensor("empty.middle", "BF16", "[3,0,2]", {})
                        .tensor("flag", "BOOL", "[2]", bytes_of(std::vector<std::uint8_t>{1, 0}))
                        .bytes();
  const Checkpoint c = Checkpoint::from_bytes(file, "shapes");
  EXPECT_EQ(c.at("scalar").shape.rank(), 0);
  EXPECT_THAT(values(c.to_f32("scalar", Shape{})), ElementsAre(42.0f));
  EXPECT_EQ(c.to_f32("empty", Shape{0, 3}).numel(), 0);
  EXPECT_EQ(c.to_f32("empty.middle").shape(), (Shape{3, 0, 2}));
  EXPECT_TRUE(c.at("empty").data.empty());
  EXPECT_EQ(c.at("flag").data.size(), 2u);
  // Empty ranges share no byte with anything, so they may sit at any offset inside a tensor's range.
  const auto inside = SafetensorsWriter()
                          .tensor("a", "F32", "[2]", bytes_of(std::vector<float>{1, 2}))
                          .entry("z", R"({"dtype":"F32","shape":[0],"data_offsets":[4,4]})")
                          .bytes();
  EXPECT_EQ(Checkpoint::from_bytes(inside, "inside").size(), 2u);
}

TEST(Safetensors, MetadataNamesAndLookup) {
  const auto file = SafetensorsWriter()
                        .metadata(R"({"format":"pt","note":"caf\u00e9"})")
                        .tensor("z", "F32", "[1]", bytes_of(std::vector<float>{1}))
                        .tensor("a", "F32", "[1]", bytes_of(std::vector<float>{2}))
                        .entry("m", R"({"dtype":"I64","shape":[1],"data_offsets":[8,16],"extra":{"x":[[1]]}})")
                        .data(bytes_of(std::vector<std::int64_t>{5}))
                        .bytes();
  const Checkpoint c = Checkpoint::from_bytes(file, "meta.safetensors");
  EXPECT_EQ(c.metadata(), (std::map<std::string, std::string>{{"format", "pt"}, {"note", "caf\xc3\xa9"}}));
  EXPECT_THAT(c.names(), ElementsAre("a", "m", "z"));
  EXPECT_EQ(c.find("__metadata__"), nullptr);
  EXPECT_EQ(c.find("b"), nullptr);
  ASSERT_NE(c.find("a"), nullptr);
  EXPECT_EQ(c.find("a")->name, "a");
  EXPECT_EQ(c.label(), "meta.safetensors");
  expect_error([&] { c.at("model.norm.weight"); }, ErrorCode::kNotFound,
               {"checkpoint meta.safetensors has no tensor 'model.norm.weight'"});
}

TEST(Safetensors, ConversionsCheckShapeAndDtype) {
  const auto file = SafetensorsWriter()
                        .tensor("model.norm.weight", "F32", "[2048]", bytes_of(std::vector<float>(2048)))
                        .tensor("ids", "I64", "[2]", bytes_of(std::vector<std::int64_t>{1, 2}))
                        .tensor("q", "F8_E4M3", "[4]", std::vector<std::byte>(4))
                        .tensor("h", "BF16", "[2]", std::vector<std::byte>(4))
                        .bytes();
  const Checkpoint c = Checkpoint::from_bytes(file, "F");
  expect_error([&] { c.to_f32("model.norm.weight", Shape{4096}); }, ErrorCode::kShapeMismatch,
               {"file F: tensor 'model.norm.weight' has shape [2048] but the config needs [4096]"});
  expect_error(
      [&] {
        c.view_f32("model.norm.weight", Shape{1, 2048});
      },
      ErrorCode::kShapeMismatch, {"has shape [2048] but the config needs [1,2048]"});
  // Known dtypes that to_f32 does not convert load as records and are refused by name.
  EXPECT_EQ(c.at("ids").dtype, "I64");
  expect_error([&] { c.to_f32("ids"); }, ErrorCode::kUnsupported, {"file F: tensor 'ids' has dtype I64", "F32, F16"});
  expect_error([&] { c.to_f32("q", Shape{4}); }, ErrorCode::kUnsupported, {"tensor 'q' has dtype F8_E4M3"});
  expect_error([&] { c.view_f32("h", Shape{2}); }, ErrorCode::kTypeMismatch, {"tensor 'h' has dtype BF16"});
  expect_error([&] { c.to_f32("absent"); }, ErrorCode::kNotFound, {"no tensor 'absent'"});
}

// The permissions /proc/self/maps shows for the mapping that holds `p` ("r--p"), or "" if none does.
std::string mapping_permissions(const void* p) {
  const auto address = reinterpret_cast<std::uintptr_t>(p);
  std::ifstream maps("/proc/self/maps");
  for (std::string line; std::getline(maps, line);) {
    std::uintptr_t begin = 0, end = 0;
    char perms[5] = {};
    if (std::sscanf(line.c_str(), "%lx-%lx %4s", &begin, &end, perms) == 3 && address >= begin && address < end) {
      return perms;
    }
  }
  return "";
}

// A file is read into read-only memory that starts on a 2 MiB boundary (huge pages for the weights);
// view_f32 points into it, and the checkpoint's destructor releases it.
TEST(Safetensors, ViewF32PointsIntoTheCheckpointsReadOnlyMemory) {
  TempDir dir;
  const std::vector<float> w = {1, 2, 3, 4, 5, 6};
  SafetensorsWriter().tensor("w", "F32", "[3,2]", bytes_of(w)).write(dir / "w.safetensors");
  const void* data = nullptr;
  {
    const Checkpoint c = Checkpoint::open_file(dir / "w.safetensors");
    const ConstTensorView v = c.view_f32("w", Shape{3, 2});
    data = v.data();
    EXPECT_EQ(data, static_cast<const void*>(c.at("w").data.data()));
    EXPECT_EQ(std::vector<float>(v.f32(), v.f32() + 6), w);
    const auto file_start =
        reinterpret_cast<std::uintptr_t>(data) - std::filesystem::file_size(dir / "w.safetensors") + 24;
    EXPECT_EQ(file_start % (2u << 20), 0u);
    EXPECT_EQ(mapping_permissions(data), "r--p");
  }
  EXPECT_EQ(mapping_permissions(data), "") << "the destructor releases the checkpoint's memory";
}

TEST(Safetensors, ViewF32OfBytesAndMisalignedData) {
  const auto file = SafetensorsWriter().tensor("w", "F32", "[2]", bytes_of(std::vector<float>{1, 2})).bytes();
  const Checkpoint c = Checkpoint::from_bytes(file, "view");
  const auto* p = static_cast<const std::byte*>(c.view_f32("w", Shape{2}).data());
  EXPECT_EQ(p, file.data() + file.size() - 8) << "the view is the caller's bytes, not a copy";
  // A header padded to 8 + 4k + 2 bytes puts the data at an odd address for floats (the vector's
  // storage is 16-byte aligned): to_f32 copies it, view_f32 refuses it.
  std::string header = R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})";
  while ((8 + header.size()) % 4 != 2) header += ' ';
  const std::vector<std::byte> odd = testing::image(header, bytes_of(std::vector<float>{3}));
  ASSERT_EQ(reinterpret_cast<std::uintptr_t>(odd.data()) % 4, 0u);
  const Checkpoint m = Checkpoint::from_bytes(odd, "odd");
  EXPECT_THAT(values(m.to_f32("w")), ElementsAre(3.0f));
  expect_error([&] { m.view_f32("w", Shape{1}); }, ErrorCode::kUnsupported,
               {"file odd: tensor 'w' is not 4-byte aligned"});
}

TEST(Safetensors, ShardedFolderThroughItsIndex) {
  TempDir dir;
  SafetensorsWriter()
      .metadata(R"({"format":"pt"})")
      .tensor("model.embed_tokens.weight", "BF16", "[2,2]", bytes_of(std::vector<std::uint16_t>{0x3f80, 0, 0, 0x4000}))
      .tensor("model.layers.0.mlp.up_proj.weight", "F32", "[1]", bytes_of(std::vector<float>{5}))
      .write(dir / "model-00001-of-00002.safetensors");
  std::filesystem::create_directories(dir / "sub");
  SafetensorsWriter()
      .metadata(R"({"format":"pt","shard":"2"})")
      .tensor("model.norm.weight", "F16", "[2]", bytes_of(std::vector<std::uint16_t>{0x3c00, 0xbc00}))
      .write(dir / "sub/model-00002-of-00002.safetensors");
  std::ofstream(dir / "model.safetensors.index.json") << R"({"metadata": {"total_size": 16}, "weight_map": {
      "model.embed_tokens.weight": "model-00001-of-00002.safetensors",
      "model.layers.0.mlp.up_proj.weight": "model-00001-of-00002.safetensors",
      "model.norm.weight": "sub/model-00002-of-00002.safetensors"}})";
  Checkpoint moved = Checkpoint::open(dir.path());
  const StoredTensor* norm = moved.find("model.norm.weight");
  const Checkpoint c = std::move(moved);
  EXPECT_EQ(c.find("model.norm.weight"), norm) << "moving keeps the records in place";
  EXPECT_EQ(c.size(), 3u);
  EXPECT_EQ(c.label(), dir.path().string());
  EXPECT_EQ(c.at("model.norm.weight").file, (dir / "sub/model-00002-of-00002.safetensors").string());
  EXPECT_THAT(values(c.to_f32("model.norm.weight", Shape{2})), ElementsAre(1.0f, -1.0f));
  EXPECT_THAT(values(c.to_f32("model.embed_tokens.weight", Shape{2, 2})), ElementsAre(1.0f, 0.0f, 0.0f, 2.0f));
  EXPECT_THAT(values(c.to_f32("model.layers.0.mlp.up_proj.weight")), ElementsAre(5.0f));
  EXPECT_EQ(c.metadata(), (std::map<std::string, std::string>{{"format", "pt"}, {"shard", "2"}}));
}

TEST(Safetensors, FolderPrefersTheSingleFileAsTransformersDoes) {
  TempDir dir;
  SafetensorsWriter().tensor("single", "F32", "[1]", bytes_of(std::vector<float>{1})).write(dir / "model.safetensors");
  std::ofstream(dir / "model.safetensors.index.json") << R"({"weight_map": {"sharded": "missing.safetensors"}})";
  EXPECT_THAT(Checkpoint::open(dir.path()).names(), ElementsAre("single"));
  std::filesystem::remove(dir / "model.safetensors");
  expect_error([&] { Checkpoint::open(dir.path()); }, ErrorCode::kNotFound, {"shard 'missing.safetensors'"});
  std::filesystem::remove(dir / "model.safetensors.index.json");
  expect_error([&] { Checkpoint::open(dir.path()); }, ErrorCode::kNotFound,
               {"has neither model.safetensors nor model.safetensors.index.json"});
}

// Debian has no python3-safetensors; when a safetensors module is importable, its own writer's
// file must read back the same.
TEST(Safetensors, FileWrittenByPythonSafetensors) {
  if (std::system("/usr/bin/python3 -c 'import safetensors.numpy' >/dev/null 2>&1") != 0) {
    GTEST_SKIP() << "python3 has no safetensors module (not packaged in Debian 12)";
  }
  TempDir dir;
  const std::string path = (dir / "py.safetensors").string();
  const std::string script =
      "import numpy as np, safetensors.numpy as s; s.save_file({'x': np.arange(6, dtype=np.float16).reshape(2, 3), "
      "'y': np.array([1.5, -2], dtype=np.float32)}, '" +
      path + "', metadata={'format': 'np'})";
  ASSERT_EQ(std::system(("/usr/bin/python3 -c \"" + script + "\"").c_str()), 0);
  const Checkpoint c = Checkpoint::open_file(path);
  EXPECT_THAT(values(c.to_f32("x", Shape{2, 3})), ElementsAre(0, 1, 2, 3, 4, 5));
  EXPECT_THAT(values(c.to_f32("y", Shape{2})), ElementsAre(1.5f, -2.0f));
  EXPECT_EQ(c.metadata().at("format"), "np");
}

}  // namespace
}  // namespace quarks::models
