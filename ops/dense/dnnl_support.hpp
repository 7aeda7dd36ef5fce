// Internal plumbing shared by the dense kernels: the oneDNN engine, OpenMP pinning, per-thread memory
// objects and an allocation-lean primitive execution.
//
// Why per-thread memory objects: a dnnl::memory's data handle is mutable state, so one memory object
// cannot describe the x (or y, or scratchpad) of two run() calls that overlap in time. A thread, on the
// other hand, executes one oneDNN primitive at a time — no tile body waits on TBB, so no other tile can
// start on the same thread while one is running. Memory objects owned by the executing thread can
// therefore be re-pointed right before each execution. Each thread keeps one memory object per
// distinct memory descriptor (descriptors get process-wide ids at kernel construction) and argument
// slot, created on first use; in steady state execute() creates none.
#pragma once

#include <omp.h>

#include <cstddef>
#include <initializer_list>

#include <oneapi/dnnl/dnnl.hpp>

#include "ops/contract/parallel.hpp"

namespace quarks::ops::dense_detail {

/// The CPU engine of every dense kernel. Created on first use and intentionally never destroyed:
/// TBB workers' thread-local streams and memory objects refer to it until those threads exit, which
/// can be after static destruction.
const dnnl::engine& cpu_engine();

/// OpenMP must never start a team inside a TBB worker. oneDNN (OpenMP build) runs a primitive on
/// omp_get_max_threads() threads and also picks its blocking for that count at creation, so the
/// count must be 1 both when primitives are created and wherever they execute. The setting is a
/// per-thread OpenMP ICV: reading it is a thread-local load, so checking at every tile is free.
/// TBB workers are left at 1 (they belong to the engine); calling threads are restored by
/// OmpSingleThreadScope.
inline void limit_omp_to_one_thread() noexcept {
  if (omp_get_max_threads() != 1) omp_set_num_threads(1);
}

/// Limits OpenMP to one thread on the calling thread and restores the caller's setting on exit.
class OmpSingleThreadScope {
 public:
  OmpSingleThreadScope() noexcept : saved_(omp_get_max_threads()) {
    if (saved_ != 1) omp_set_num_threads(1);
  }
  ~OmpSingleThreadScope() {
    if (omp_get_max_threads() != saved_) omp_set_num_threads(saved_);
  }
  OmpSingleThreadScope(const OmpSingleThreadScope&) = delete;
  OmpSingleThreadScope& operator=(const OmpSingleThreadScope&) = delete;

 private:
  int saved_;
};

/// Runs body(i) for i in [0, count) in the caller's TBB arena, one task per index, with OpenMP limited
/// to one thread on every thread that runs a task (the calling thread's setting is restored after).
template <class Body>
void parallel_tasks(std::int64_t count, const Body& body) {
  OmpSingleThreadScope caller;
  quarks::detail::parallel_tasks(count, [&](std::int64_t i) {
    limit_omp_to_one_thread();
    body(i);
  });
}

/// A memory descriptor whose data pointer changes per call (x, y, a tile buffer, a scratchpad), with
/// its process-wide id for the per-thread memory object cache.
class RuntimeMemory {
 public:
  RuntimeMemory() = default;
  explicit RuntimeMemory(const dnnl::memory::desc& md);
  std::size_t id() const noexcept { return id_; }
  const dnnl_memory_desc_t& desc() const noexcept { return desc_; }

 private:
  std::size_t id_ = 0;
  dnnl_memory_desc_t desc_{};
};

/// An argument bound to a kernel-owned memory object (prepacked weights, bias) that is never re-pointed.
/// A null memory leaves the argument out (an optional bias).
struct BoundArg {
  int arg;
  const dnnl::memory* memory;
};

/// An argument whose data pointer is given per call. A null memory leaves the argument out (a primitive
/// that needs no scratchpad).
struct PointerArg {
  int arg;
  const RuntimeMemory* memory;
  const void* data;
};

/// Executes `primitive` synchronously on the calling thread, which must have OpenMP pinned to one
/// thread. Goes through the C API with a stack array of arguments (at most 4 pointer arguments, 8 in
/// all); throws Error(kInternal) naming `what` if oneDNN fails.
void execute(const dnnl::primitive& primitive, std::initializer_list<BoundArg> bound,
             std::initializer_list<PointerArg> pointers, const char* what);

/// Rounds `bytes` up to a multiple of 64 (the alignment of every scratch region).
constexpr std::size_t align64(std::size_t bytes) noexcept { return (bytes + 63) / 64 * 64; }

}  // namespace quarks::ops::dense_detail
