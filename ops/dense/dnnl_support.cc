// oneDNN plumbing of the dense kernels (see dnnl_support.hpp for why memory objects are per thread).
#include "ops/dense/dnnl_support.hpp"

#include <mutex>
#include <string>
#include <vector>

#include "quarks/error.hpp"

namespace quarks::ops::dense_detail {
namespace {

// Every distinct runtime memory descriptor seen by any kernel; the index is the descriptor's id.
// Touched only while kernels are constructed.
struct DescriptorRegistry {
  std::mutex mutex;
  std::vector<dnnl_memory_desc_t> descs;
};

DescriptorRegistry& registry() {
  static DescriptorRegistry r;
  return r;
}

constexpr std::size_t kMaxArgs = 8;
constexpr std::size_t kMaxPointerArgs = 4;

// One stream and memory objects for the per-call pointers, owned by the executing thread.
class ThreadResources {
 public:
  ThreadResources() {
    if (dnnl_stream_create(&stream_, cpu_engine().get(), dnnl_stream_default_flags) != dnnl_success) {
      throw Error(ErrorCode::kInternal, "dense kernels: oneDNN could not create a CPU stream");
    }
  }
  ~ThreadResources() {
    for (dnnl_memory_t m : memories_) {
      if (m != nullptr) dnnl_memory_destroy(m);
    }
    dnnl_stream_destroy(stream_);
  }
  ThreadResources(const ThreadResources&) = delete;
  ThreadResources& operator=(const ThreadResources&) = delete;

  dnnl_stream_t stream() const noexcept { return stream_; }

  // The memory object for argument `slot` of the call: two arguments of one call may share a
  // descriptor (x and y of a square tile), so objects are per (descriptor, slot).
  dnnl_memory_t memory(const RuntimeMemory& rm, std::size_t slot, const void* data) {
    const std::size_t index = rm.id() * kMaxPointerArgs + slot;
    if (index >= memories_.size()) memories_.resize(index + 1, nullptr);
    dnnl_memory_t& m = memories_[index];
    // The handle is set right below; DNNL_MEMORY_NONE keeps oneDNN from allocating a buffer.
    if (m == nullptr && dnnl_memory_create(&m, &rm.desc(), cpu_engine().get(), DNNL_MEMORY_NONE) != dnnl_success) {
      m = nullptr;
      throw Error(ErrorCode::kInternal, "dense kernels: oneDNN could not create a memory object");
    }
    dnnl_memory_set_data_handle_v2(m, const_cast<void*>(data), stream_);
    return m;
  }

 private:
  dnnl_stream_t stream_ = nullptr;
  std::vector<dnnl_memory_t> memories_;
};

ThreadResources& thread_resources() {
  thread_local ThreadResources resources;
  return resources;
}

}  // namespace

const dnnl::engine& cpu_engine() {
  static const dnnl::engine* engine = new dnnl::engine(dnnl::engine::kind::cpu, 0);
  return *engine;
}

RuntimeMemory::RuntimeMemory(const dnnl::memory::desc& md) : desc_(md.data) {
  DescriptorRegistry& r = registry();
  std::lock_guard lock(r.mutex);
  for (std::size_t i = 0; i < r.descs.size(); ++i) {
    if (dnnl_memory_desc_equal(&r.descs[i], &desc_) != 0) {
      id_ = i;
      return;
    }
  }
  id_ = r.descs.size();
  r.descs.push_back(desc_);
}

void execute(const dnnl::primitive& primitive, std::initializer_list<BoundArg> bound,
             std::initializer_list<PointerArg> pointers, const char* what) {
  if (bound.size() + pointers.size() > kMaxArgs || pointers.size() > kMaxPointerArgs) {
    throw Error(ErrorCode::kInternal, std::string(what) + ": too many oneDNN arguments");
  }
  dnnl_exec_arg_t args[kMaxArgs];
  int count = 0;
  for (const BoundArg& a : bound) {
    if (a.memory != nullptr) args[count++] = {a.arg, a.memory->get()};
  }
  ThreadResources& resources = thread_resources();
  std::size_t slot = 0;
  for (const PointerArg& a : pointers) {
    if (a.memory != nullptr) args[count++] = {a.arg, resources.memory(*a.memory, slot, a.data)};
    ++slot;
  }
  const dnnl_status_t status = dnnl_primitive_execute(primitive.get(), resources.stream(), count, args);
  if (status != dnnl_success) {
    throw Error(ErrorCode::kInternal,
                std::string(what) + ": oneDNN primitive execution failed (status " + std::to_string(status) + ")");
  }
}

}  // namespace quarks::ops::dense_detail
