// Hugging Face safetensors checkpoints: a bounds-checked reader of single files and of sharded folders
// (model.safetensors.index.json), with the tensors in read-only memory (each file read into 2 MiB pages:
// decode streams the weights every token, safetensors.cc has the measurement) and widened to f32 on request.
//
// A file is an 8-byte little-endian header length N, N bytes of JSON
//   {"<tensor>": {"dtype": "BF16", "shape": [4096, 2048], "data_offsets": [begin, end]}, ...,
//    "__metadata__": {"format": "pt"}}
// and then the data section, which the offsets index (relative to its first byte, i.e. the byte after
// the header). Checkpoints come from anywhere, so the header is untrusted: every malformed entry is a
// quarks::Error whose message starts with "file <path>: " and names the tensor and what was expected
// and found, e.g.
//   file model.safetensors: tensor 'model.norm.weight': shape [4096] of BF16 needs 8192 bytes but
//   data_offsets [0, 4096] hold 4096
// Codes: kNotFound for a missing file, shard or tensor; kUnsupported for a dtype this reader does not
// know (or, in to_f32, cannot convert); kShapeMismatch for a shape other than the one expected;
// kTypeMismatch for view_f32 of a non-F32 tensor; kInvalidArgument for everything else.
//
// What is checked (each file on opening, before any tensor is read): the file holds at least the
// 8-byte length; the header fits in the file and is at most kMaxHeaderBytes; it is a JSON object
// without duplicate keys (nlohmann keeps the last duplicate silently, so keys are counted while
// parsing); each entry is an object with a string "dtype" among the known ones, a "shape" of at most
// Shape::kMaxRank non-negative integers and "data_offsets" of two integers begin <= end inside the data
// section; the element count times the dtype's size equals end - begin (overflow-checked: [2^40, 2^40]
// is an error, not a wrap-around); no two tensors' byte ranges overlap; "__metadata__" is an object of
// strings. Unknown keys inside an entry are ignored, and so are bytes of the data section that no
// tensor uses. A file that shrinks while it is read is an error.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "quarks/tensor.hpp"

namespace quarks::models {

/// Headers above this size are refused before they are parsed (100 MB, the limit of the reference
/// implementation; real headers are a few hundred kB even for the largest checkpoints).
inline constexpr std::uint64_t kMaxHeaderBytes = 100'000'000;

/// One tensor as stored in a checkpoint. `data` lies inside the Checkpoint's read-only copy of its file (or
/// the bytes given to from_bytes) and holds exactly shape.numel() elements of `dtype`, little-endian.
struct StoredTensor {
  std::string name;
  std::string dtype;  ///< as in the header: F64 F32 F16 BF16 I64 I32 I16 I8 U64 U32 U16 U8 BOOL F8_E4M3 F8_E5M2
  Shape shape;
  std::span<const std::byte> data;
  std::string file;  ///< path of the .safetensors file (or from_bytes' label), for messages
};

/// The tensors of one checkpoint: one .safetensors file or all shards of a sharded folder. Movable,
/// not copyable; owns the files' memory, so every StoredTensor and view stays valid while it lives.
class Checkpoint {
 public:
  /// `model_dir`/model.safetensors if it exists, else every shard named by
  /// `model_dir`/model.safetensors.index.json: the order transformers' from_pretrained uses, so a
  /// folder holding both is read as transformers reads it. Index checks: valid JSON with a
  /// "weight_map" object of strings; each shard a relative path without ".." (checked lexically:
  /// symlinks are followed, as in the Hugging Face cache, whose snapshot files link to ../../blobs);
  /// each shard present; each listed tensor present in its shard; no tensor in two shards. Tensors a
  /// shard holds beyond those the index lists are kept. Throws Error(kNotFound) if neither file exists.
  static Checkpoint open(const std::filesystem::path& model_dir);
  /// One .safetensors file.
  static Checkpoint open_file(const std::filesystem::path& file);
  /// Parses an in-memory image; `label` stands for the file in messages. Nothing is copied: `bytes`
  /// must outlive the Checkpoint (and every StoredTensor and view taken from it).
  static Checkpoint from_bytes(std::span<const std::byte> bytes, std::string label);

  Checkpoint(Checkpoint&&) noexcept;
  Checkpoint& operator=(Checkpoint&&) noexcept;
  Checkpoint(const Checkpoint&) = delete;
  Checkpoint& operator=(const Checkpoint&) = delete;
  ~Checkpoint();

  /// The tensor called `name`, or nullptr.
  const StoredTensor* find(std::string_view name) const;
  /// The tensor called `name`; Error(kNotFound) naming it and the checkpoint otherwise.
  const StoredTensor& at(std::string_view name) const;
  /// Every tensor name, sorted.
  std::vector<std::string> names() const;
  /// Number of tensors.
  std::size_t size() const noexcept { return tensors_.size(); }
  /// The "__metadata__" strings (of every shard, merged; the first shard in name order wins a clash).
  const std::map<std::string, std::string>& metadata() const noexcept { return metadata_; }
  /// What the checkpoint was opened from (folder, file or label), as messages name it.
  const std::string& label() const noexcept { return label_; }

  /// The tensor as a new f32 tensor: F32 copied, BF16 and F16 widened exactly (subnormals, ±inf and
  /// NaN payloads included). Error(kShapeMismatch) unless its shape is `expected`, e.g.
  ///   file F: tensor 'model.norm.weight' has shape [2048] but the config needs [4096]
  /// and Error(kUnsupported) naming the dtype for the others (I64, F8_E4M3, ...).
  Tensor to_f32(std::string_view name, const Shape& expected) const;
  /// The same without the shape check.
  Tensor to_f32(std::string_view name) const;
  /// A zero-copy view of an F32 tensor of shape `expected` into the checkpoint's memory. Error(kTypeMismatch) for
  /// other dtypes, Error(kShapeMismatch) for another shape, Error(kUnsupported) when the data is not
  /// 4-byte aligned in memory (a header whose length is not a multiple of 4, or an odd offset; to_f32
  /// copies such tensors).
  ConstTensorView view_f32(std::string_view name, const Shape& expected) const;
  /// The tensor of shape `expected` in place: a Tensor::external over the checkpoint's memory, BF16 as bf16 and F32
  /// as f32, holding `self` (this checkpoint) alive — nothing is copied, so weights read this way are in
  /// memory once. F16 tensors and data not aligned to its elements are widened
  /// to a new f32 tensor instead (to_f32). Errors as to_f32's.
  static Tensor in_place(const std::shared_ptr<const Checkpoint>& self, std::string_view name, const Shape& expected);

 private:
  struct Unmap {
    std::size_t size = 0;
    void operator()(std::byte* p) const noexcept;
  };
  using Mapping = std::unique_ptr<std::byte, Unmap>;

  Checkpoint() = default;
  /// Parses the image `bytes` of `file` and adds its tensors (refusing names already present) and metadata.
  void add_image(std::span<const std::byte> bytes, const std::string& file);
  /// Reads `file` into read-only memory, keeps it and adds its tensors.
  void add_file(const std::filesystem::path& file);
  void add_shards(const std::filesystem::path& model_dir, const std::filesystem::path& index);

  std::string label_;
  std::vector<Mapping> mappings_;
  std::map<std::string, StoredTensor, std::less<>> tensors_;
  std::map<std::string, std::string> metadata_;
};

}  // namespace quarks::models
