// The arena planner: buffers that coexist never overlap, and buffers that don't may share memory.
#include <gtest/gtest.h>

#include <random>

#include "engine/memory_planner.hpp"

namespace quarks::detail {
namespace {

void expect_valid(const std::vector<BufferLifetime>& buffers, const ArenaLayout& layout) {
  for (std::size_t i = 0; i < buffers.size(); ++i) {
    EXPECT_EQ(layout.offsets[i] % kArenaAlignment, 0u);
    if (buffers[i].bytes) {
      EXPECT_LE(layout.offsets[i] + buffers[i].bytes, layout.total_bytes);
    }
    for (std::size_t j = i + 1; j < buffers.size(); ++j) {
      const auto& a = buffers[i];
      const auto& b = buffers[j];
      if (!a.bytes || !b.bytes || a.last < b.first || b.last < a.first) continue;
      const bool disjoint =
          layout.offsets[i] + a.bytes <= layout.offsets[j] || layout.offsets[j] + b.bytes <= layout.offsets[i];
      EXPECT_TRUE(disjoint) << "buffers " << i << " and " << j << " overlap";
    }
  }
}

TEST(MemoryPlanner, ChainReusesMemory) {
  // a -> b -> c -> d: each buffer lives two steps; a and c may share, b and d may share.
  std::vector<BufferLifetime> buffers = {{1000, 0, 1}, {1000, 1, 2}, {1000, 2, 3}, {1000, 3, 4}};
  ArenaLayout layout = plan_arena(buffers);
  expect_valid(buffers, layout);
  EXPECT_EQ(layout.total_bytes, 2 * 1024u);
}

TEST(MemoryPlanner, RandomLifetimesNeverOverlap) {
  std::mt19937 rng(7);
  for (int trial = 0; trial < 200; ++trial) {
    std::vector<BufferLifetime> buffers;
    const int n = 1 + static_cast<int>(rng() % 40);
    std::size_t sum = 0;
    for (int i = 0; i < n; ++i) {
      const int first = static_cast<int>(rng() % 20);
      buffers.push_back({rng() % 5000, first, first + static_cast<int>(rng() % 6)});
      sum += (buffers.back().bytes + 63) / 64 * 64;
    }
    ArenaLayout layout = plan_arena(buffers);
    expect_valid(buffers, layout);
    EXPECT_LE(layout.total_bytes, sum);
  }
}

TEST(MemoryPlanner, EmptyInput) {
  ArenaLayout layout = plan_arena({});
  EXPECT_EQ(layout.total_bytes, 0u);
}

}  // namespace
}  // namespace quarks::detail
