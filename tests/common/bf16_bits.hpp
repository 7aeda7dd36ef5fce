// bf16 values for tests: the bits of a float's high half, and back. Truncation, not rounding: tests only
// need values that bf16 holds exactly (the product kernels' own rounding is tested where it is done).
#pragma once

#include <cstdint>
#include <cstring>

namespace quarks::test {

inline std::uint16_t bf16_bits(float v) {
  std::uint32_t u;
  std::memcpy(&u, &v, sizeof u);
  return static_cast<std::uint16_t>(u >> 16);
}

inline double bf16_value(std::uint16_t bits) {
  const std::uint32_t u = static_cast<std::uint32_t>(bits) << 16;
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

/// The bf16 value nearest to v (ties to the even one), found by comparing its two neighbours in double —
/// independent of the bit trick kernels use. For finite v.
inline double bf16_nearest(float v) {
  const std::uint16_t down = bf16_bits(v);  // truncation: toward zero
  const std::uint16_t up = static_cast<std::uint16_t>(down + 1);
  const double d = bf16_value(down), u = bf16_value(up);
  const double dd = (static_cast<double>(v) - d) * (v < 0 ? -1 : 1),
               du = (u - static_cast<double>(v)) * (v < 0 ? -1 : 1);
  if (dd != du) return dd < du ? d : u;
  return (down & 1) == 0 ? d : u;
}

}  // namespace quarks::test
