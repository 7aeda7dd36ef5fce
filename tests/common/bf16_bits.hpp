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

}  // namespace quarks::test
