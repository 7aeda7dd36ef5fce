// Counting heap allocations in tests. Linking allocation_counter.cc into a test binary replaces every
// form of the global operator new/delete (so oneDNN's and TBB's C++ allocations are seen too) with
// malloc-based versions that count while an AllocationCounter is alive.
#pragma once

namespace quarks::test {

/// Counts operator new calls from any thread between construction and destruction. One at a time.
class AllocationCounter {
 public:
  AllocationCounter();
  ~AllocationCounter();
  AllocationCounter(const AllocationCounter&) = delete;
  AllocationCounter& operator=(const AllocationCounter&) = delete;
  long count() const;
};

}  // namespace quarks::test
