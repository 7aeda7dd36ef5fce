// Dtype-generic elementwise kernels (see typed_kernels.hpp). Each public function resolves the element
// type and the stride case once, so the loops below see compile-time strides and can be vectorised.
#include "ops/elementwise/typed_kernels.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <initializer_list>
#include <limits>
#include <string>

#include "quarks/error.hpp"

namespace quarks::ops {
namespace {

// Reads element i of an operand whose stride is 1 (kRun) or 0.
template <bool kRun, class T>
inline T at(const T* p, std::size_t i) {
  return p[kRun ? i : 0];
}

// --- equal ---------------------------------------------------------------------------------------

template <class T>
inline bool same(T a, T b) {
  return a == b;
}
template <>
inline bool same(std::uint8_t a, std::uint8_t b) {  // bool: any nonzero byte is true
  return (a != 0) == (b != 0);
}

template <class T, bool kARun, bool kBRun>
void EqualLoop(const T* a, const T* b, std::uint8_t* y, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) y[i] = same(at<kARun>(a, i), at<kBRun>(b, i)) ? 1 : 0;
}

template <class T>
void EqualTyped(const void* a_raw, std::size_t a_stride, const void* b_raw, std::size_t b_stride, std::uint8_t* y,
                std::size_t n) {
  const T* a = static_cast<const T*>(a_raw);
  const T* b = static_cast<const T*>(b_raw);
  if (a_stride && b_stride) return EqualLoop<T, true, true>(a, b, y, n);
  if (a_stride) return EqualLoop<T, true, false>(a, b, y, n);
  if (b_stride) return EqualLoop<T, false, true>(a, b, y, n);
  return EqualLoop<T, false, false>(a, b, y, n);
}

// --- where ---------------------------------------------------------------------------------------

template <class T, bool kCRun, bool kXRun, bool kZRun>
void WhereLoop(const std::uint8_t* c, const T* x, const T* z, T* y, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) y[i] = at<kCRun>(c, i) ? at<kXRun>(x, i) : at<kZRun>(z, i);
}

template <class T>
void WhereTyped(const std::uint8_t* c, std::size_t c_stride, const void* x_raw, std::size_t x_stride, const void* z_raw,
                std::size_t z_stride, void* y_raw, std::size_t n) {
  const T* x = static_cast<const T*>(x_raw);
  const T* z = static_cast<const T*>(z_raw);
  T* y = static_cast<T*>(y_raw);
  switch ((c_stride ? 4 : 0) | (x_stride ? 2 : 0) | (z_stride ? 1 : 0)) {
    case 0: return WhereLoop<T, false, false, false>(c, x, z, y, n);
    case 1: return WhereLoop<T, false, false, true>(c, x, z, y, n);
    case 2: return WhereLoop<T, false, true, false>(c, x, z, y, n);
    case 3: return WhereLoop<T, false, true, true>(c, x, z, y, n);
    case 4: return WhereLoop<T, true, false, false>(c, x, z, y, n);
    case 5: return WhereLoop<T, true, false, true>(c, x, z, y, n);
    case 6: return WhereLoop<T, true, true, false>(c, x, z, y, n);
    default: return WhereLoop<T, true, true, true>(c, x, z, y, n);
  }
}

// --- cast ----------------------------------------------------------------------------------------

// Saturating, NaN -> 0. The bounds are exact in f32: -2^63 converts exactly, 2^63 is out of range.
inline std::int64_t F32ToI64(float v) {
  if (std::isnan(v)) return 0;
  if (v >= 0x1p63f) return std::numeric_limits<std::int64_t>::max();
  if (v < -0x1p63f) return std::numeric_limits<std::int64_t>::min();
  return static_cast<std::int64_t>(v);
}

template <class From, class To, class Convert>
void ConvertLoop(const void* x_raw, void* y_raw, std::size_t n, const Convert& convert) {
  const From* x = static_cast<const From*>(x_raw);
  To* y = static_cast<To*>(y_raw);
  for (std::size_t i = 0; i < n; ++i) y[i] = convert(x[i]);
}

void check_strides(const char* op, std::initializer_list<std::size_t> strides) {
  for (std::size_t s : strides) {
    if (s > 1) {
      throw Error(ErrorCode::kInvalidArgument,
                  std::string("elementwise ") + op + ": operand strides must be 0 or 1, got " + std::to_string(s));
    }
  }
}

}  // namespace

void equal(DType t, const void* a, std::size_t a_stride, const void* b, std::size_t b_stride, std::uint8_t* y,
           std::size_t n) {
  check_strides("equal", {a_stride, b_stride});
  if (n == 0) return;
  switch (t) {
    case DType::kF32: return EqualTyped<float>(a, a_stride, b, b_stride, y, n);
    case DType::kI64: return EqualTyped<std::int64_t>(a, a_stride, b, b_stride, y, n);
    case DType::kBool: return EqualTyped<std::uint8_t>(a, a_stride, b, b_stride, y, n);
    case DType::kBF16: break;
  }
  throw Error(ErrorCode::kInvalidArgument, std::string("elementwise equal: unsupported dtype ") + to_string(t));
}

void where(std::size_t elem_size, const std::uint8_t* cond, std::size_t c_stride, const void* x, std::size_t x_stride,
           const void* z, std::size_t z_stride, void* y, std::size_t n) {
  check_strides("where", {c_stride, x_stride, z_stride});
  if (n == 0) return;
  switch (elem_size) {
    case 1: return WhereTyped<std::uint8_t>(cond, c_stride, x, x_stride, z, z_stride, y, n);
    case 4: return WhereTyped<std::uint32_t>(cond, c_stride, x, x_stride, z, z_stride, y, n);
    case 8: return WhereTyped<std::uint64_t>(cond, c_stride, x, x_stride, z, z_stride, y, n);
    default: break;
  }
  throw Error(ErrorCode::kInvalidArgument,
              "elementwise where: unsupported element size " + std::to_string(elem_size) + " (1, 4 or 8 bytes)");
}

void broadcast_copy(std::size_t elem_size, const void* x, std::size_t x_stride, void* y, std::size_t n) {
  check_strides("broadcast copy", {x_stride});
  if (n == 0) return;
  if (x_stride == 1) {
    if (y != x) std::memcpy(y, x, n * elem_size);
    return;
  }
  switch (elem_size) {
    case 1: std::memset(y, *static_cast<const std::uint8_t*>(x), n); return;
    case 4: std::fill_n(static_cast<std::uint32_t*>(y), n, *static_cast<const std::uint32_t*>(x)); return;
    case 8: std::fill_n(static_cast<std::uint64_t*>(y), n, *static_cast<const std::uint64_t*>(x)); return;
    default:
      for (std::size_t i = 0; i < n; ++i) std::memcpy(static_cast<std::byte*>(y) + i * elem_size, x, elem_size);
  }
}

void cast(DType from, DType to, const void* x, void* y, std::size_t n) {
  if (to == DType::kBF16 || (from == DType::kBF16 && to != DType::kF32)) {
    throw Error(ErrorCode::kInvalidArgument,
                std::string("elementwise cast: unsupported dtype pair ") + to_string(from) + " -> " + to_string(to));
  }
  if (n == 0) return;
  if (from == to) {
    if (y != x) std::memcpy(y, x, n * dtype_size(from));
    return;
  }
  using B = std::uint8_t;
  using I = std::int64_t;
  switch (from) {
    case DType::kF32:
      if (to == DType::kI64) return ConvertLoop<float, I>(x, y, n, [](float v) { return F32ToI64(v); });
      return ConvertLoop<float, B>(x, y, n, [](float v) { return static_cast<B>(v != 0.0f); });
    case DType::kI64:
      if (to == DType::kF32) return ConvertLoop<I, float>(x, y, n, [](I v) { return static_cast<float>(v); });
      return ConvertLoop<I, B>(x, y, n, [](I v) { return static_cast<B>(v != 0); });
    case DType::kBool:
      if (to == DType::kF32) return ConvertLoop<B, float>(x, y, n, [](B v) { return v ? 1.0f : 0.0f; });
      return ConvertLoop<B, I>(x, y, n, [](B v) { return I{v != 0}; });
    case DType::kBF16:  // -> f32: exact (the bf16 bits are the high half of the f32's)
      return ConvertLoop<std::uint16_t, float>(x, y, n, [](std::uint16_t v) {
        const std::uint32_t u = static_cast<std::uint32_t>(v) << 16;
        float f;
        std::memcpy(&f, &u, sizeof f);
        return f;
      });
  }
}

}  // namespace quarks::ops
