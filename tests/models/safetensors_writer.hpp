// Writes safetensors images for the tests: a header of entries laid out one after another (or given
// as JSON text verbatim), padded with spaces as Hugging Face's writer pads it, then the data. Also a
// temporary folder that removes itself and the error expectations the tests share.
#pragma once

#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "quarks/error.hpp"

namespace quarks::models::testing {

template <class T>
std::vector<std::byte> bytes_of(const std::vector<T>& values) {
  std::vector<std::byte> out(values.size() * sizeof(T));
  if (!out.empty()) std::memcpy(out.data(), values.data(), out.size());
  return out;
}

/// 8-byte little-endian `header_length`, `header`, then `data`.
inline std::vector<std::byte> raw_image(std::uint64_t header_length, const std::string& header,
                                        std::span<const std::byte> data = {}) {
  std::vector<std::byte> out;
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<std::byte>((header_length >> (8 * i)) & 0xff));
  for (char c : header) out.push_back(static_cast<std::byte>(c));
  out.insert(out.end(), data.begin(), data.end());
  return out;
}

/// A header given as text (its true length) followed by `data`.
inline std::vector<std::byte> image(const std::string& header, std::span<const std::byte> data = {}) {
  return raw_image(header.size(), header, data);
}

class SafetensorsWriter {
 public:
  /// A tensor of `dtype` and `shape` (JSON text, e.g. "[2,3]") whose data are `bytes`, placed after
  /// the previous tensor's.
  SafetensorsWriter& tensor(const std::string& name, const std::string& dtype, const std::string& shape,
                            const std::vector<std::byte>& bytes) {
    const std::size_t begin = data_.size();
    data_.insert(data_.end(), bytes.begin(), bytes.end());
    return entry(name, "{\"dtype\":\"" + dtype + "\",\"shape\":" + shape + ",\"data_offsets\":[" +
                           std::to_string(begin) + "," + std::to_string(data_.size()) + "]}");
  }
  /// An entry written verbatim (`json` is the value of the key `name`).
  SafetensorsWriter& entry(const std::string& name, const std::string& json) {
    header_ += (header_.empty() ? "" : ",") + ("\"" + name + "\":") + json;
    return *this;
  }
  SafetensorsWriter& metadata(const std::string& json) { return entry("__metadata__", json); }
  /// Extra bytes at the end of the data section.
  SafetensorsWriter& data(const std::vector<std::byte>& bytes) {
    data_.insert(data_.end(), bytes.begin(), bytes.end());
    return *this;
  }

  /// The image, its header padded with spaces to a multiple of `align` bytes (8 in Hugging Face's
  /// writer, which aligns the data for every dtype).
  std::vector<std::byte> bytes(std::size_t align = 8) const {
    std::string header = "{" + header_ + "}";
    while (header.size() % align != 0) header += ' ';
    return image(header, data_);
  }
  void write(const std::filesystem::path& path, std::size_t align = 8) const { write_file(path, bytes(align)); }

  static void write_file(const std::filesystem::path& path, std::span<const std::byte> bytes) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
    ASSERT_TRUE(out.good()) << path;
  }

 private:
  std::string header_;
  std::vector<std::byte> data_;
};

/// A fresh folder under the system's temporary directory, removed with everything in it.
class TempDir {
 public:
  TempDir() {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    path_ = std::filesystem::temp_directory_path() /
            ("quarks_st_" + std::to_string(::getpid()) + "_" + info->test_suite_name() + "_" + info->name());
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path operator/(const std::string& name) const { return path_ / name; }

 private:
  std::filesystem::path path_;
};

/// `f` throws quarks::Error with `code` and a message containing each of `fragments`.
inline void expect_error(const std::function<void()>& f, ErrorCode code, const std::vector<std::string>& fragments) {
  try {
    f();
    ADD_FAILURE() << "no error; expected one containing '" << fragments.front() << "'";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), code) << to_string(e.code()) << ": " << e.what();
    for (const std::string& fragment : fragments) EXPECT_THAT(e.what(), ::testing::HasSubstr(fragment));
  }
}

}  // namespace quarks::models::testing
