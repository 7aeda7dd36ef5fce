// Safetensors checkpoints: files read into read-only memory of 2 MiB pages, sharded folders through
// their index, and the conversions to f32. The header checks are in safetensors_header.cc.
//
// Why read instead of mmap: a language model's decode step streams every weight once per token, and
// with the file's 4 KiB page-cache pages the TLB misses cost a third of the bandwidth. Measured on a
// 2-core AMD EPYC Zen 5, quarks-generate on a Llama-3.2-1B-shape bf16 checkpoint, 1 thread, decode
// tokens/s mapped vs read into 2 MiB pages, two alternating runs: 5.2 vs 10.2 and 7.3 vs 8.9. The
// memory is still the weights' only copy in the process (the page cache's is the kernel's), and it is
// made read-only after reading, as the mapping was.
#include "engine/models/safetensors.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <bit>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>
#include <set>

#include "engine/models/safetensors_header.hpp"

namespace quarks::models {

// The data is little-endian and F32 tensors are handed out in place (view_f32, to_f32's copy).
static_assert(std::endian::native == std::endian::little, "safetensors data is read in place: little-endian only");

namespace fs = std::filesystem;
using detail::fail;
using detail::in_quotes;

namespace {

constexpr std::uint64_t kLengthBytes = 8;

// Exact: every f16 is a float (normals rebias the exponent, subnormals are normalised, inf and NaN
// keep their payload).
float f16_to_f32(std::uint16_t h) {
  const std::uint32_t sign = static_cast<std::uint32_t>(h & 0x8000u) << 16;
  const std::uint32_t exponent = (h >> 10) & 0x1fu;
  const std::uint32_t mantissa = h & 0x3ffu;
  std::uint32_t bits = sign;
  if (exponent == 0x1f) {
    bits |= 0x7f800000u | (mantissa << 13);
  } else if (exponent != 0) {
    bits |= ((exponent + 127 - 15) << 23) | (mantissa << 13);
  } else if (mantissa != 0) {
    // mantissa · 2^-24 = 1.f · 2^(top - 24), top being the highest set bit of the mantissa.
    const int top = std::bit_width(mantissa) - 1;
    bits |= (static_cast<std::uint32_t>(top - 24 + 127) << 23) | ((mantissa << (23 - top)) & 0x7fffffu);
  }
  return std::bit_cast<float>(bits);
}

// bf16 is the upper half of an f32.
float bf16_to_f32(std::uint16_t h) { return std::bit_cast<float>(static_cast<std::uint32_t>(h) << 16); }

template <float (*Widen)(std::uint16_t)>
void widen(const std::byte* src, float* dst, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) {
    std::uint16_t h;
    std::memcpy(&h, src + 2 * i, 2);
    dst[i] = Widen(h);
  }
}

void check_shape(const StoredTensor& t, const Shape& expected) {
  if (t.shape != expected) {
    throw Error(ErrorCode::kShapeMismatch, "file " + t.file + ": tensor " + in_quotes(t.name) + " has shape " +
                                               t.shape.to_string() + " but the config needs " + expected.to_string());
  }
}

// True if `rel`, a shard path from an index, stays inside the model folder: relative, without "..".
bool stays_inside(const fs::path& rel) {
  if (rel.empty() || rel.is_absolute() || rel.has_root_name() || rel.has_root_directory()) return false;
  for (const fs::path& part : rel)
    if (part == "..") return false;
  return true;
}

// "an array", "a number", ... for a JSON type name.
std::string with_article(const char* type) {
  return (std::strchr("aeiou", type[0]) ? "an " : "a ") + std::string(type);
}

std::string read_small_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(ErrorCode::kNotFound, path.string(), "cannot be opened");
  std::string text;
  char buffer[1 << 16];
  while (in.read(buffer, sizeof buffer) || in.gcount() > 0) {
    text.append(buffer, static_cast<std::size_t>(in.gcount()));
    if (text.size() > kMaxHeaderBytes) {
      fail(ErrorCode::kInvalidArgument, path.string(),
           "is above the cap of " + std::to_string(kMaxHeaderBytes) + " bytes");
    }
  }
  return text;
}

}  // namespace

void Checkpoint::Unmap::operator()(std::byte* p) const noexcept { ::munmap(p, size); }

Checkpoint::Checkpoint(Checkpoint&&) noexcept = default;
Checkpoint& Checkpoint::operator=(Checkpoint&&) noexcept = default;
Checkpoint::~Checkpoint() = default;

Checkpoint Checkpoint::open(const fs::path& model_dir) {
  Checkpoint c;
  c.label_ = model_dir.string();
  const fs::path single = model_dir / "model.safetensors";
  const fs::path index = model_dir / "model.safetensors.index.json";
  std::error_code ec;
  if (fs::exists(single, ec)) {
    c.add_file(single);
  } else if (fs::exists(index, ec)) {
    c.add_shards(model_dir, index);
  } else {
    throw Error(ErrorCode::kNotFound,
                "model folder " + c.label_ + " has neither model.safetensors nor model.safetensors.index.json");
  }
  return c;
}

Checkpoint Checkpoint::open_file(const fs::path& file) {
  Checkpoint c;
  c.label_ = file.string();
  c.add_file(file);
  return c;
}

Checkpoint Checkpoint::from_bytes(std::span<const std::byte> bytes, std::string label) {
  Checkpoint c;
  c.label_ = std::move(label);
  c.add_image(bytes, c.label_);
  return c;
}

void Checkpoint::add_file(const fs::path& path) {
  const std::string file = path.string();
  // O_NONBLOCK: opening a FIFO must not wait for a writer (it is then refused as not a regular file).
  const int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) {
    const int err = errno;
    fail(err == ENOENT ? ErrorCode::kNotFound : ErrorCode::kInvalidArgument, file,
         std::string("cannot be opened: ") + std::strerror(err));
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    fail(ErrorCode::kInvalidArgument, file, "is not a regular file");
  }
  const auto size = static_cast<std::uint64_t>(st.st_size);
  if (size < kLengthBytes) {
    ::close(fd);
    fail(ErrorCode::kInvalidArgument, file,
         "is " + std::to_string(size) + " bytes, shorter than the 8-byte header length");
  }
  // Anonymous memory aligned to 2 MiB (the slack around it unmapped), huge pages requested.
  constexpr std::uint64_t kHuge = 2u << 20;
  const std::uint64_t rounded = (size + kHuge - 1) / kHuge * kHuge;
  void* region = ::mmap(nullptr, rounded + kHuge, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (region == MAP_FAILED) {
    const int err = errno;
    ::close(fd);
    fail(ErrorCode::kResourceExhausted, file,
         "cannot be read: " + std::to_string(size) + " bytes of memory: " + std::strerror(err));
  }
  const auto start = reinterpret_cast<std::uintptr_t>(region);
  const std::uintptr_t aligned = (start + kHuge - 1) / kHuge * kHuge;
  if (aligned > start) ::munmap(region, aligned - start);
  if (start + kHuge > aligned) ::munmap(reinterpret_cast<void*>(aligned + rounded), start + kHuge - aligned);
  auto* data = reinterpret_cast<std::byte*>(aligned);
  mappings_.emplace_back(data, Unmap{rounded});
  ::madvise(data, rounded, MADV_HUGEPAGE);  // a hint: without it the data is the same, only slower
  for (std::uint64_t done = 0; done < size;) {
    const ::ssize_t got =
        ::pread(fd, data + done, static_cast<std::size_t>(std::min<std::uint64_t>(size - done, 1u << 30)),
                static_cast<off_t>(done));
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) {
      const int err = got < 0 ? errno : 0;
      ::close(fd);
      fail(ErrorCode::kInvalidArgument, file,
           "cannot be read at byte " + std::to_string(done) + " of " + std::to_string(size) + ": " +
               (got < 0 ? std::strerror(err) : "the file ended early (changed while it was read)"));
    }
    done += static_cast<std::uint64_t>(got);
  }
  ::close(fd);
  ::mprotect(data, rounded, PROT_READ);
  add_image({data, size}, file);
}

void Checkpoint::add_image(std::span<const std::byte> bytes, const std::string& file) {
  if (bytes.size() < kLengthBytes) {
    fail(ErrorCode::kInvalidArgument, file,
         "is " + std::to_string(bytes.size()) + " bytes, shorter than the 8-byte header length");
  }
  std::uint64_t header_bytes = 0;
  for (std::uint64_t i = 0; i < kLengthBytes; ++i) header_bytes |= std::to_integer<std::uint64_t>(bytes[i]) << (8 * i);
  const std::uint64_t rest = bytes.size() - kLengthBytes;
  if (header_bytes > rest) {
    fail(ErrorCode::kInvalidArgument, file,
         "header length " + std::to_string(header_bytes) + " runs past the end of the file (" + std::to_string(rest) +
             " bytes follow the length)");
  }
  if (header_bytes > kMaxHeaderBytes) {
    fail(ErrorCode::kInvalidArgument, file,
         "header length " + std::to_string(header_bytes) + " is above the cap of " + std::to_string(kMaxHeaderBytes));
  }
  const std::string_view text(reinterpret_cast<const char*>(bytes.data() + kLengthBytes), header_bytes);
  detail::Header header = detail::parse_header(text, file, rest - header_bytes);
  const std::byte* data = bytes.data() + kLengthBytes + header_bytes;
  for (detail::HeaderEntry& e : header.tensors) {
    const std::string name = e.tensor.name;
    e.tensor.data = {data + e.begin, e.end - e.begin};
    const auto [it, added] = tensors_.try_emplace(name, std::move(e.tensor));
    if (!added) fail(ErrorCode::kInvalidArgument, file, "tensor " + in_quotes(name) + " is also in " + it->second.file);
  }
  for (auto& [key, value] : header.metadata) metadata_.try_emplace(key, std::move(value));
}

void Checkpoint::add_shards(const fs::path& model_dir, const fs::path& index_path) {
  using json = nlohmann::json;
  const std::string index = index_path.string();
  const std::string text = read_small_file(index_path);
  // A JSON tree keeps the last of two equal keys: the top level's and weight_map's keys are counted
  // while parsing.
  std::string top_key;
  std::set<std::string> top_keys, listed;
  json::parser_callback_t count_keys = [&](int depth, json::parse_event_t event, json& parsed) {
    if (event != json::parse_event_t::key) return true;
    const auto& key = parsed.get_ref<const std::string&>();
    if (depth == 1 && !top_keys.insert(key).second) {
      fail(ErrorCode::kInvalidArgument, index, "the key " + in_quotes(key) + " appears twice");
    }
    if (depth == 1) top_key = key;
    if (depth == 2 && top_key == "weight_map" && !listed.insert(key).second) {
      fail(ErrorCode::kInvalidArgument, index, "tensor " + in_quotes(key) + " appears twice in 'weight_map'");
    }
    return true;
  };
  json root;
  try {
    root = json::parse(text, count_keys);
  } catch (const json::exception& e) {
    fail(ErrorCode::kInvalidArgument, index, std::string("is not valid JSON: ") + e.what());
  }
  if (!root.is_object())
    fail(ErrorCode::kInvalidArgument, index, std::string("is a JSON ") + root.type_name() + ", not an object");
  const auto map = root.find("weight_map");
  if (map == root.end()) fail(ErrorCode::kInvalidArgument, index, "has no 'weight_map'");
  if (!map->is_object())
    fail(ErrorCode::kInvalidArgument, index, "'weight_map' is " + with_article(map->type_name()) + ", not an object");

  std::map<std::string, std::vector<std::string>> shards;  // shard -> the tensors listed in it
  for (const auto& [name, shard] : map->items()) {
    if (!shard.is_string()) {
      fail(ErrorCode::kInvalidArgument, index,
           "'weight_map' gives tensor " + in_quotes(name) + " " + with_article(shard.type_name()) +
               ", not a shard file name");
    }
    shards[shard.get<std::string>()].push_back(name);
  }
  for (const auto& [shard, names] : shards) {
    const std::string listed_for = " (listed for tensor " + in_quotes(names.front()) + ")";
    if (!stays_inside(fs::path(shard))) {
      fail(ErrorCode::kInvalidArgument, index,
           "shard " + in_quotes(shard) + listed_for + " is not a relative path inside the model folder");
    }
    const fs::path path = model_dir / shard;
    std::error_code ec;
    if (!fs::exists(path, ec)) {
      fail(ErrorCode::kNotFound, index, "shard " + in_quotes(shard) + listed_for + " does not exist");
    }
    add_file(path);
    for (const std::string& name : names) {
      const StoredTensor* t = find(name);
      if (!t || t->file != path.string()) {
        fail(ErrorCode::kNotFound, index,
             "tensor " + in_quotes(name) + " is listed in shard " + in_quotes(shard) +
                 " but that shard does not hold it");
      }
    }
  }
}

const StoredTensor* Checkpoint::find(std::string_view name) const {
  const auto it = tensors_.find(name);
  return it == tensors_.end() ? nullptr : &it->second;
}

const StoredTensor& Checkpoint::at(std::string_view name) const {
  const StoredTensor* t = find(name);
  if (!t) throw Error(ErrorCode::kNotFound, "checkpoint " + label_ + " has no tensor " + in_quotes(name));
  return *t;
}

std::vector<std::string> Checkpoint::names() const {
  std::vector<std::string> out;
  out.reserve(tensors_.size());
  for (const auto& entry : tensors_) out.push_back(entry.first);
  return out;
}

Tensor Checkpoint::to_f32(std::string_view name, const Shape& expected) const {
  check_shape(at(name), expected);
  return to_f32(name);
}

Tensor Checkpoint::to_f32(std::string_view name) const {
  const StoredTensor& t = at(name);
  const bool f32 = t.dtype == "F32", bf16 = t.dtype == "BF16", f16 = t.dtype == "F16";
  if (!f32 && !bf16 && !f16) {
    throw Error(ErrorCode::kUnsupported, "file " + t.file + ": tensor " + in_quotes(t.name) + " has dtype " + t.dtype +
                                             ", which to_f32 does not convert (only F32, F16 and BF16)");
  }
  Tensor out(DType::kF32, t.shape);
  // The header checks made data hold exactly numel elements.
  const auto n = static_cast<std::size_t>(t.shape.numel());
  if (f32) {
    if (n) std::memcpy(out.data(), t.data.data(), n * sizeof(float));
  } else if (bf16) {
    widen<bf16_to_f32>(t.data.data(), out.f32(), n);
  } else {
    widen<f16_to_f32>(t.data.data(), out.f32(), n);
  }
  return out;
}

Tensor Checkpoint::in_place(const std::shared_ptr<const Checkpoint>& self, std::string_view name,
                            const Shape& expected) {
  const StoredTensor& t = self->at(name);
  check_shape(t, expected);
  const DType dtype = t.dtype == "BF16" ? DType::kBF16 : DType::kF32;
  const bool aligned = reinterpret_cast<std::uintptr_t>(t.data.data()) % dtype_size(dtype) == 0;
  if ((t.dtype == "BF16" || t.dtype == "F32") && aligned) return Tensor::external(self, t.data.data(), dtype, t.shape);
  return self->to_f32(name);
}

ConstTensorView Checkpoint::view_f32(std::string_view name, const Shape& expected) const {
  const StoredTensor& t = at(name);
  if (t.dtype != "F32") {
    throw Error(ErrorCode::kTypeMismatch, "file " + t.file + ": tensor " + in_quotes(t.name) + " has dtype " + t.dtype +
                                              ", but view_f32 reads F32 tensors only (to_f32 widens F16 and BF16)");
  }
  check_shape(t, expected);
  if (reinterpret_cast<std::uintptr_t>(t.data.data()) % alignof(float) != 0) {
    throw Error(ErrorCode::kUnsupported,
                "file " + t.file + ": tensor " + in_quotes(t.name) +
                    " is not 4-byte aligned in memory, so it cannot be viewed in place (to_f32 copies it)");
  }
  return {reinterpret_cast<const float*>(t.data.data()), t.shape};
}

}  // namespace quarks::models
