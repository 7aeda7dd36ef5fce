// quarks — tensors: element types, shapes, owning tensors and non-owning views.
//
// All tensors are dense and row-major (C order). A Shape holds its dimensions inline (no heap), so
// views can be built and passed to Session::run without allocating.
#pragma once

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "quarks/error.hpp"

namespace quarks {

/// Element types. f32 is what every op computes in today; bf16 is used for weights in bf16
/// precision mode; i64 and boolean are reserved for shapes, indices and masks.
enum class DType : std::uint8_t { kF32, kBF16, kI64, kBool };

/// Size in bytes of one element of `t`.
std::size_t dtype_size(DType t) noexcept;
/// "f32", "bf16", "i64", "bool".
const char* to_string(DType t) noexcept;

/// A tensor shape: up to kMaxRank dimensions, each >= 0, stored inline.
class Shape {
 public:
  static constexpr int kMaxRank = 8;

  Shape() = default;
  /// Throws Error(kInvalidArgument) for more than kMaxRank dims or a negative dim.
  Shape(std::initializer_list<std::int64_t> dims);
  explicit Shape(std::span<const std::int64_t> dims);

  int rank() const noexcept { return rank_; }
  std::int64_t operator[](int i) const noexcept { return dims_[i]; }
  std::int64_t& operator[](int i) noexcept { return dims_[i]; }
  const std::int64_t* begin() const noexcept { return dims_; }
  const std::int64_t* end() const noexcept { return dims_ + rank_; }
  std::span<const std::int64_t> dims() const noexcept { return {dims_, static_cast<std::size_t>(rank_)}; }
  /// Product of the dims (1 for rank 0); saturates at INT64_MAX instead of overflowing.
  std::int64_t numel() const noexcept;
  /// Appends a dim; throws Error(kInvalidArgument) past kMaxRank.
  void push_back(std::int64_t d);
  /// "[4,512]".
  std::string to_string() const;

  friend bool operator==(const Shape& a, const Shape& b) noexcept;

 private:
  std::int64_t dims_[kMaxRank] = {};
  int rank_ = 0;
};

/// A read-only, non-owning view of a row-major tensor. The caller keeps the data alive.
class ConstTensorView {
 public:
  ConstTensorView() = default;
  ConstTensorView(const void* data, DType dtype, const Shape& shape) : data_(data), dtype_(dtype), shape_(shape) {}
  ConstTensorView(const float* data, const Shape& shape) : data_(data), dtype_(DType::kF32), shape_(shape) {}

  const void* data() const noexcept { return data_; }
  /// Typed pointer; throws Error(kTypeMismatch) unless the dtype is f32.
  const float* f32() const;
  DType dtype() const noexcept { return dtype_; }
  const Shape& shape() const noexcept { return shape_; }
  std::int64_t numel() const noexcept { return shape_.numel(); }
  std::size_t bytes() const noexcept { return static_cast<std::size_t>(numel()) * dtype_size(dtype_); }

 private:
  const void* data_ = nullptr;
  DType dtype_ = DType::kF32;
  Shape shape_;
};

/// A writable, non-owning view of a row-major tensor. The caller keeps the data alive.
class TensorView {
 public:
  TensorView() = default;
  TensorView(void* data, DType dtype, const Shape& shape) : data_(data), dtype_(dtype), shape_(shape) {}
  TensorView(float* data, const Shape& shape) : data_(data), dtype_(DType::kF32), shape_(shape) {}

  void* data() const noexcept { return data_; }
  /// Typed pointer; throws Error(kTypeMismatch) unless the dtype is f32.
  float* f32() const;
  DType dtype() const noexcept { return dtype_; }
  const Shape& shape() const noexcept { return shape_; }
  std::int64_t numel() const noexcept { return shape_.numel(); }
  std::size_t bytes() const noexcept { return static_cast<std::size_t>(numel()) * dtype_size(dtype_); }
  operator ConstTensorView() const noexcept { return {data_, dtype_, shape_}; }

 private:
  void* data_ = nullptr;
  DType dtype_ = DType::kF32;
  Shape shape_;
};

/// An owning tensor with shared, 64-byte-aligned storage. Copies share the data (like a
/// shared_ptr); use clone() for a deep copy.
class Tensor {
 public:
  Tensor() = default;
  /// Zero-filled tensor. Throws Error(kResourceExhausted) when the memory cannot be allocated.
  Tensor(DType dtype, const Shape& shape);
  /// f32 tensor holding `values`; throws Error(kShapeMismatch) if the count differs from the shape.
  static Tensor from_f32(const Shape& shape, std::span<const float> values);
  static Tensor from_f32(const Shape& shape, std::initializer_list<float> values);
  /// i64 tensor (indices, shapes) holding `values`.
  static Tensor from_i64(const Shape& shape, std::span<const std::int64_t> values);
  /// bool tensor (masks) holding `values`, one byte per element, 0 or 1.
  static Tensor from_bool(const Shape& shape, std::span<const bool> values);
  /// A tensor over memory it does not own — such as a checkpoint read into read-only memory, so that
  /// constants are not copied. `owner` keeps `data` valid and is held while any copy of the tensor
  /// lives. data must be aligned to the element size; the memory may be read-only, so the tensor must
  /// not be written. Throws Error(kInvalidArgument) for a null or misaligned data pointer.
  static Tensor external(std::shared_ptr<const void> owner, const void* data, DType dtype, const Shape& shape);

  void* data() const noexcept { return data_.get(); }
  /// Typed pointer; throws Error(kTypeMismatch) unless the dtype is f32.
  float* f32() const;
  /// Typed pointer; throws Error(kTypeMismatch) unless the dtype is i64.
  std::int64_t* i64() const;
  /// Bool elements, one byte each (0 or 1); throws Error(kTypeMismatch) unless the dtype is bool.
  std::uint8_t* boolean() const;
  DType dtype() const noexcept { return dtype_; }
  const Shape& shape() const noexcept { return shape_; }
  std::int64_t numel() const noexcept { return shape_.numel(); }
  std::size_t bytes() const noexcept { return static_cast<std::size_t>(numel()) * dtype_size(dtype_); }
  bool empty_storage() const noexcept { return data_ == nullptr; }

  TensorView view() const noexcept { return {data_.get(), dtype_, shape_}; }
  operator ConstTensorView() const noexcept { return {data_.get(), dtype_, shape_}; }
  Tensor clone() const;

 private:
  std::shared_ptr<std::byte> data_;
  DType dtype_ = DType::kF32;
  Shape shape_;
};

}  // namespace quarks
