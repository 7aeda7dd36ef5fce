// Inputs for the microbenchmarks: reproducible uniform random floats, and aligned scratch.
#pragma once

#include <cstddef>
#include <cstdint>
#include <random>
#include <vector>

namespace quarks::bench {

/// `count` floats uniform in [lo, hi) from a Mersenne twister seeded with `seed`.
inline std::vector<float> random_values(std::size_t count, std::uint32_t seed, float lo = -1.0f, float hi = 1.0f) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(count);
  for (float& x : v) x = dist(rng);
  return v;
}

/// 64-byte-aligned scratch of at least `bytes` bytes, as the kernels require.
struct Scratch {
  explicit Scratch(std::size_t bytes) : storage(bytes / 64 + 1) {}
  std::byte* data() { return reinterpret_cast<std::byte*>(storage.data()); }
  struct alignas(64) Line {
    std::byte bytes[64];
  };
  std::vector<Line> storage;
};

}  // namespace quarks::bench
