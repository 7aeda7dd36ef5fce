#include "engine/memory_planner.hpp"

#include <algorithm>
#include <cstdint>
#include <numeric>

namespace quarks::detail {

ArenaLayout plan_arena(const std::vector<BufferLifetime>& buffers) {
  auto aligned = [](std::size_t b) { return (b + kArenaAlignment - 1) / kArenaAlignment * kArenaAlignment; };
  std::vector<std::size_t> order(buffers.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](std::size_t a, std::size_t b) { return buffers[a].bytes > buffers[b].bytes; });

  ArenaLayout layout;
  layout.offsets.assign(buffers.size(), 0);
  struct Placed {
    std::size_t begin, end;
  };
  std::vector<std::size_t> placed;  // indices of buffers already given an offset
  std::vector<Placed> conflicts;
  for (std::size_t i : order) {
    const BufferLifetime& b = buffers[i];
    const std::size_t size = aligned(b.bytes);
    if (size == 0) {
      continue;  // empty tensors need no memory; offset 0 is never dereferenced
    }
    conflicts.clear();
    for (std::size_t j : placed) {
      const BufferLifetime& o = buffers[j];
      if (o.first <= b.last && b.first <= o.last)
        conflicts.push_back({layout.offsets[j], layout.offsets[j] + aligned(o.bytes)});
    }
    std::sort(conflicts.begin(), conflicts.end(), [](const Placed& x, const Placed& y) { return x.begin < y.begin; });
    // Best fit: the smallest gap between conflicting buffers that holds this one, else the end.
    std::size_t best = SIZE_MAX, best_gap = SIZE_MAX, cursor = 0;
    for (const Placed& c : conflicts) {
      if (c.begin > cursor && c.begin - cursor >= size && c.begin - cursor < best_gap) {
        best = cursor;
        best_gap = c.begin - cursor;
      }
      cursor = std::max(cursor, c.end);
    }
    if (best == SIZE_MAX) best = cursor;
    layout.offsets[i] = best;
    layout.total_bytes = std::max(layout.total_bytes, best + size);
    placed.push_back(i);
  }
  return layout;
}

}  // namespace quarks::detail
