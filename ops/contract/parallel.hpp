// Intra-op parallelism: split work into tasks for the TBB threads of the current arena.
#pragma once

#include <cstdint>

#include <oneapi/tbb/blocked_range.h>
#include <oneapi/tbb/parallel_for.h>
#include <oneapi/tbb/partitioner.h>

#include "ops/contract/sanitizers.hpp"

namespace quarks::detail {

/// Elements per task for memory-bound elementwise work: 16K floats = 64 KiB per stream, large enough
/// to amortise task overhead and small enough to balance two threads on 1 MiB tensors.
inline constexpr std::int64_t kElementwiseGrain = 16384;

/// True in ThreadSanitizer builds. Debian's libtbb is not instrumented, so TSan cannot see the
/// happens-before edges of TBB's task hand-offs and reports every parallel_for as a race (in TBB's
/// own task objects as much as in ours). Those builds therefore run intra-op tasks one after the other
/// on the calling thread and check what TSan can check: Sessions on separate threads sharing one
/// Model, its plan cache, kernels and oneDNN primitives.
inline constexpr bool kSerialIntraOp = kThreadSanitizer;

/// Calls fn(begin, end) over blocks of [0, n) of at least `grain` items, in parallel when n > grain.
template <class Fn>
void parallel_blocks(std::int64_t n, std::int64_t grain, const Fn& fn) {
  if (n <= 0) return;
  if (n <= grain || kSerialIntraOp) {
    fn(std::int64_t{0}, n);
    return;
  }
  tbb::parallel_for(tbb::blocked_range<std::int64_t>(0, n, grain),
                    [&](const tbb::blocked_range<std::int64_t>& r) { fn(r.begin(), r.end()); });
}

/// Calls body(i) for every i in [0, count), one TBB task per index (for a few coarse tasks such as
/// the tiles of a dense product, whose count the caller chose for the arena's size).
template <class Body>
void parallel_tasks(std::int64_t count, const Body& body) {
  if (count <= 0) return;
  if (count == 1 || kSerialIntraOp) {
    for (std::int64_t i = 0; i < count; ++i) body(i);
    return;
  }
  tbb::parallel_for(
      tbb::blocked_range<std::int64_t>(0, count, 1),
      [&](const tbb::blocked_range<std::int64_t>& range) {
        for (std::int64_t i = range.begin(); i != range.end(); ++i) body(i);
      },
      tbb::simple_partitioner());
}

/// Rows per task so that one task handles about kElementwiseGrain elements.
inline std::int64_t row_grain(std::int64_t row_length) {
  return row_length >= kElementwiseGrain ? 1 : kElementwiseGrain / (row_length > 0 ? row_length : 1);
}

}  // namespace quarks::detail
