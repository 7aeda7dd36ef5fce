// Tensor, Shape and DType basics of the public API.
#include <sys/mman.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <new>
#include <sstream>

#include "quarks/tensor.hpp"

#include "ops/contract/sanitizers.hpp"

namespace quarks {

const char* to_string(ErrorCode code) noexcept {
  switch (code) {
    case ErrorCode::kInvalidArgument: return "invalid argument";
    case ErrorCode::kShapeMismatch: return "shape mismatch";
    case ErrorCode::kTypeMismatch: return "type mismatch";
    case ErrorCode::kNotFound: return "not found";
    case ErrorCode::kUnsupported: return "unsupported";
    case ErrorCode::kResourceExhausted: return "resource exhausted";
    case ErrorCode::kInternal: return "internal error";
  }
  return "unknown error";
}

std::size_t dtype_size(DType t) noexcept {
  switch (t) {
    case DType::kF32: return 4;
    case DType::kBF16: return 2;
    case DType::kI64: return 8;
    case DType::kBool: return 1;
  }
  return 0;
}

const char* to_string(DType t) noexcept {
  switch (t) {
    case DType::kF32: return "f32";
    case DType::kBF16: return "bf16";
    case DType::kI64: return "i64";
    case DType::kBool: return "bool";
  }
  return "?";
}

Shape::Shape(std::initializer_list<std::int64_t> dims)
    : Shape(std::span<const std::int64_t>(dims.begin(), dims.size())) {}

Shape::Shape(std::span<const std::int64_t> dims) {
  for (std::int64_t d : dims) push_back(d);
}

void Shape::push_back(std::int64_t d) {
  if (rank_ >= kMaxRank) {
    throw Error(ErrorCode::kInvalidArgument, "shape has more than " + std::to_string(kMaxRank) + " dims");
  }
  if (d < 0) throw Error(ErrorCode::kInvalidArgument, "shape dim " + std::to_string(d) + " is negative");
  dims_[rank_++] = d;
}

std::int64_t Shape::numel() const noexcept {
  std::int64_t n = 1;
  for (int i = 0; i < rank_; ++i) {
    if (__builtin_mul_overflow(n, dims_[i], &n)) return INT64_MAX;  // saturates; no tensor can be that big
  }
  return n;
}

std::string Shape::to_string() const {
  std::string s = "[";
  for (int i = 0; i < rank_; ++i) {
    if (i) s += ",";
    s += std::to_string(dims_[i]);
  }
  return s + "]";
}

bool operator==(const Shape& a, const Shape& b) noexcept {
  if (a.rank_ != b.rank_) return false;
  for (int i = 0; i < a.rank_; ++i)
    if (a.dims_[i] != b.dims_[i]) return false;
  return true;
}

namespace {
[[noreturn]] void wrong_dtype(DType t, DType expected) {
  throw Error(ErrorCode::kTypeMismatch,
              std::string("tensor has dtype ") + to_string(t) + ", expected " + to_string(expected));
}
[[noreturn]] void not_f32(DType t) { wrong_dtype(t, DType::kF32); }

void check_count(const Shape& shape, std::size_t count) {
  if (static_cast<std::int64_t>(count) != shape.numel()) {
    throw Error(ErrorCode::kShapeMismatch, "tensor of shape " + shape.to_string() + " needs " +
                                               std::to_string(shape.numel()) + " values, got " + std::to_string(count));
  }
}

// From this size on, buffers are mapped directly, 2 MiB-aligned and with transparent huge pages asked
// for: the kernel hands them out zeroed, and one fault per 2 MiB instead of per 4 KiB is what makes
// loading a model's gigabytes of weights fast (on a 1.2 B-parameter checkpoint, page faults and
// memset were two thirds of the load time with 4 KiB pages).
#if !defined(QUARKS_ADDRESS_SANITIZER)  // under ASan every buffer comes from its heap, to be checked
constexpr std::size_t kHugePage = std::size_t{2} << 20;

std::shared_ptr<std::byte> allocate_mapped(std::size_t bytes) {
  const std::size_t length = (bytes + kHugePage - 1) / kHugePage * kHugePage;
  void* raw = mmap(nullptr, length + kHugePage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (raw == MAP_FAILED) throw std::bad_alloc();
  // Trim to a 2 MiB-aligned start, so that every 2 MiB of the buffer can be one huge page.
  const auto start = reinterpret_cast<std::uintptr_t>(raw);
  const std::uintptr_t aligned = (start + kHugePage - 1) / kHugePage * kHugePage;
  if (aligned > start) munmap(raw, aligned - start);
  const std::uintptr_t end = start + length + kHugePage;
  if (end > aligned + length) munmap(reinterpret_cast<void*>(aligned + length), end - (aligned + length));
  void* p = reinterpret_cast<void*>(aligned);
  madvise(p, length, MADV_HUGEPAGE);  // advice only: without THP the buffer is still valid
  return std::shared_ptr<std::byte>(static_cast<std::byte*>(p), [length](std::byte* q) { munmap(q, length); });
}
#endif

std::shared_ptr<std::byte> allocate_zeroed(std::size_t bytes) {
#if !defined(QUARKS_ADDRESS_SANITIZER)
  if (bytes >= kHugePage) return allocate_mapped(bytes);
#endif
  const std::size_t rounded = (bytes + 63) / 64 * 64;
  void* p = std::aligned_alloc(64, rounded == 0 ? 64 : rounded);
  if (!p) throw std::bad_alloc();
  std::memset(p, 0, rounded == 0 ? 64 : rounded);
  return std::shared_ptr<std::byte>(static_cast<std::byte*>(p), [](std::byte* q) { std::free(q); });
}
}  // namespace

const float* ConstTensorView::f32() const {
  if (dtype_ != DType::kF32) not_f32(dtype_);
  return static_cast<const float*>(data_);
}

float* TensorView::f32() const {
  if (dtype_ != DType::kF32) not_f32(dtype_);
  return static_cast<float*>(data_);
}

float* Tensor::f32() const {
  if (dtype_ != DType::kF32) not_f32(dtype_);
  return reinterpret_cast<float*>(data_.get());
}

namespace {
std::shared_ptr<std::byte> allocate_tensor(DType dtype, const Shape& shape) {
  std::size_t bytes = 0;
  const auto n = static_cast<std::uint64_t>(shape.numel());
  if (n > (std::uint64_t{1} << 50) || __builtin_mul_overflow(static_cast<std::size_t>(n), dtype_size(dtype), &bytes)) {
    throw Error(ErrorCode::kResourceExhausted, "a tensor of shape " + shape.to_string() + " is too large to allocate");
  }
  try {
    return allocate_zeroed(bytes);
  } catch (const std::bad_alloc&) {
    throw Error(ErrorCode::kResourceExhausted, "cannot allocate " + std::to_string(bytes) + " bytes for a " +
                                                   to_string(dtype) + " tensor of shape " + shape.to_string());
  }
}
}  // namespace

Tensor::Tensor(DType dtype, const Shape& shape) : data_(allocate_tensor(dtype, shape)), dtype_(dtype), shape_(shape) {}

std::int64_t* Tensor::i64() const {
  if (dtype_ != DType::kI64) wrong_dtype(dtype_, DType::kI64);
  return reinterpret_cast<std::int64_t*>(data_.get());
}

std::uint8_t* Tensor::boolean() const {
  if (dtype_ != DType::kBool) wrong_dtype(dtype_, DType::kBool);
  return reinterpret_cast<std::uint8_t*>(data_.get());
}

Tensor Tensor::from_i64(const Shape& shape, std::span<const std::int64_t> values) {
  check_count(shape, values.size());
  Tensor t(DType::kI64, shape);
  if (!values.empty()) std::memcpy(t.data(), values.data(), values.size() * sizeof(std::int64_t));
  return t;
}

Tensor Tensor::from_bool(const Shape& shape, std::span<const bool> values) {
  check_count(shape, values.size());
  Tensor t(DType::kBool, shape);
  for (std::size_t i = 0; i < values.size(); ++i) t.boolean()[i] = values[i] ? 1 : 0;
  return t;
}

Tensor Tensor::external(std::shared_ptr<const void> owner, const void* data, DType dtype, const Shape& shape) {
  if (data == nullptr && shape.numel() > 0) {
    throw Error(ErrorCode::kInvalidArgument, "external tensor " + shape.to_string() + ": the data pointer is null");
  }
  if (reinterpret_cast<std::uintptr_t>(data) % dtype_size(dtype) != 0) {
    throw Error(ErrorCode::kInvalidArgument, std::string("external ") + quarks::to_string(dtype) + " tensor " +
                                                 shape.to_string() + ": the data is not aligned to its " +
                                                 std::to_string(dtype_size(dtype)) + "-byte elements");
  }
  Tensor t;
  t.data_ = std::shared_ptr<std::byte>(std::const_pointer_cast<void>(std::move(owner)),
                                       static_cast<std::byte*>(const_cast<void*>(data)));
  t.dtype_ = dtype;
  t.shape_ = shape;
  return t;
}

Tensor Tensor::from_f32(const Shape& shape, std::span<const float> values) {
  check_count(shape, values.size());
  Tensor t(DType::kF32, shape);
  if (!values.empty()) std::memcpy(t.data(), values.data(), values.size() * sizeof(float));
  return t;
}

Tensor Tensor::from_f32(const Shape& shape, std::initializer_list<float> values) {
  return from_f32(shape, std::span<const float>(values.begin(), values.size()));
}

Tensor Tensor::clone() const {
  Tensor t(dtype_, shape_);
  if (bytes()) std::memcpy(t.data(), data(), bytes());
  return t;
}

}  // namespace quarks
