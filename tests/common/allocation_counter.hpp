// Counting heap allocations in tests. Linking allocation_counter.cc into a test binary replaces every
// form of the global operator new/delete (so oneDNN's and TBB's C++ allocations are seen too) with
// malloc-based versions that count while an AllocationCounter is alive.
//
// Not under ThreadSanitizer: clang links TSan's runtime whole, and it defines the global operator
// new/delete itself, so a TSan build cannot replace them. There the tests that count allocations skip
// (QUARKS_SKIP_WITHOUT_ALLOCATION_COUNTER); they run in every other build (release, asan).
#pragma once

#include "ops/contract/sanitizers.hpp"

namespace quarks::test {

/// Counts operator new calls from any thread between construction and destruction. One at a time.
class AllocationCounter {
 public:
  AllocationCounter();
  ~AllocationCounter();
  AllocationCounter(const AllocationCounter&) = delete;
  AllocationCounter& operator=(const AllocationCounter&) = delete;
  long count() const;
  /// False where operator new cannot be replaced (ThreadSanitizer builds).
  static constexpr bool available() { return !detail::kThreadSanitizer; }
};

}  // namespace quarks::test

/// At the start of a test that counts allocations: skips it, saying why, where counting is unavailable.
#define QUARKS_SKIP_WITHOUT_ALLOCATION_COUNTER()                                                       \
  if (!::quarks::test::AllocationCounter::available())                                                 \
  GTEST_SKIP() << "ThreadSanitizer defines operator new itself: allocations are counted in the other " \
                  "builds"
