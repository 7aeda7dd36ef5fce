// Memory planning: buffers with lifetimes -> offsets in one arena. Knows nothing about ops.
#pragma once

#include <cstddef>
#include <vector>

namespace quarks::detail {

/// A buffer that must exist from step `first` to step `last` (inclusive).
struct BufferLifetime {
  std::size_t bytes = 0;
  int first = 0;
  int last = 0;
};

struct ArenaLayout {
  std::vector<std::size_t> offsets;  ///< one per buffer, multiples of kArenaAlignment
  std::size_t total_bytes = 0;
};

inline constexpr std::size_t kArenaAlignment = 64;

/// Places every buffer so that two buffers whose lifetimes overlap never overlap in memory. Greedy
/// best fit, largest first: for each buffer, the lowest offset that fits between the already placed
/// buffers it coexists with.
ArenaLayout plan_arena(const std::vector<BufferLifetime>& buffers);

}  // namespace quarks::detail
