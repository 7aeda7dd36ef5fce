// Intra-op parallelism: split [0, n) into blocks for the TBB threads of the current arena.
#pragma once

#include <cstdint>

#include <oneapi/tbb/blocked_range.h>
#include <oneapi/tbb/parallel_for.h>

namespace quarks::detail {

/// Elements per task for memory-bound elementwise work: 16K floats = 64 KiB per stream, large enough
/// to amortise task overhead and small enough to balance two threads on 1 MiB tensors.
inline constexpr std::int64_t kElementwiseGrain = 16384;

/// Calls fn(begin, end) over blocks of [0, n) of at least `grain` items, in parallel when n > grain.
template <class Fn>
void parallel_blocks(std::int64_t n, std::int64_t grain, const Fn& fn) {
  if (n <= 0) return;
  if (n <= grain) {
    fn(std::int64_t{0}, n);
    return;
  }
  tbb::parallel_for(tbb::blocked_range<std::int64_t>(0, n, grain),
                    [&](const tbb::blocked_range<std::int64_t>& r) { fn(r.begin(), r.end()); });
}

/// Rows per task so that one task handles about kElementwiseGrain elements.
inline std::int64_t row_grain(std::int64_t row_length) {
  return row_length >= kElementwiseGrain ? 1 : kElementwiseGrain / (row_length > 0 ? row_length : 1);
}

}  // namespace quarks::detail
