// Heap allocations of one steady-state run(), counted by replacing the global operator new
// (tests/common/allocation_counter.cc). With oneDNN products what is left is oneDNN's own per-execution
// bookkeeping (see DenseKernel in dense_kernel.hpp): the kernels themselves build no memory objects,
// argument maps or buffers per run. The matmul and the synaptic gate (packed GEMM and Highway) allocate
// nothing; the packed dense and gated dense kernels are checked in packed_gemm_test.cc.
#include <gtest/gtest.h>

#include <iostream>
#include <vector>

#include <tbb/task_arena.h>

#include "common/allocation_counter.hpp"
#include "ops/dense/dense_kernel.hpp"
#include "ops/dense/dense_test_util.hpp"
#include "ops/dense/gated_dense_kernel.hpp"
#include "ops/dense/matmul_kernel.hpp"
#include "ops/dense/synaptic_gate_kernel.hpp"

namespace quarks::ops {
namespace {

// Allocations per call of `run` after warm-up (thread-local streams and memory objects exist then).
template <class Run>
double allocations_per_run(const Run& run) {
  for (int i = 0; i < 3; ++i) run();
  constexpr int kRuns = 20;
  const test::AllocationCounter counter;
  for (int i = 0; i < kRuns; ++i) run();
  return static_cast<double>(counter.count()) / kRuns;
}

// oneDNN 2.6's dnnl_primitive_execute allocates for its argument map (a std::unordered_map: buckets
// and one node per argument) and the scratchpad grantor; nothing else should allocate. The bound is
// per primitive call.
constexpr double kMaxPerPrimitiveCall = 10.0;

TEST(Allocations, DenseRun) {
  QUARKS_SKIP_WITHOUT_ALLOCATION_COUNTER();
  tbb::task_arena arena(2);
  arena.execute([] {
    DenseConfig c;
    c.m = 128;
    c.k = 64;
    c.n = 256;
    c.activation = Activation::gelu();
    c.max_threads = 2;
    const auto w = dense_test::random_values(c.k * c.n, 1);
    const auto b = dense_test::random_values(c.n, 2);
    const auto x = dense_test::random_values(c.m * c.k, 3);
    std::vector<float> y(static_cast<std::size_t>(c.m * c.n));
    const DenseKernel kernel(c, w.data(), b.data());
    dense_test::Scratch scratch(kernel.scratch_bytes());
    const double per_run = allocations_per_run([&] { kernel.run(x.data(), y.data(), scratch.data()); });
    // 4 tiles of 64 columns, one primitive call each.
    std::cout << "DenseKernel 128x64x256 (4 primitive calls): " << per_run << " heap allocations per run()\n";
    EXPECT_LE(per_run, 4 * kMaxPerPrimitiveCall);
  });
}

TEST(Allocations, GatedDenseAndMatMulRun) {
  QUARKS_SKIP_WITHOUT_ALLOCATION_COUNTER();
  tbb::task_arena arena(2);
  arena.execute([] {
    GatedDenseConfig gc;
    gc.m = 64;
    gc.k = 64;
    gc.n = 256;
    gc.f = Activation::silu();
    gc.max_threads = 2;
    const auto w = dense_test::random_values(gc.k * gc.n, 1);
    const auto x = dense_test::random_values(gc.m * gc.k, 3);
    std::vector<float> y(static_cast<std::size_t>(gc.m * gc.n));
    const GatedDenseKernel gated(gc, w.data(), nullptr, w.data(), nullptr);
    dense_test::Scratch scratch(gated.scratch_bytes());
    const double gated_per_run = allocations_per_run([&] { gated.run(x.data(), y.data(), scratch.data()); });
    std::cout << "GatedDenseKernel 64x64x256 (4 primitive calls): " << gated_per_run << " heap allocations per run()\n";
    EXPECT_LE(gated_per_run, 4 * kMaxPerPrimitiveCall);

    MatMulConfig mc;
    mc.batch = 4;
    mc.m = 16;
    mc.k = 16;
    mc.n = 16;
    mc.trans_b = true;
    mc.a_batch_stride = mc.b_batch_stride = 256;
    mc.max_threads = 2;
    const auto a = dense_test::random_values(4 * 256, 4);
    std::vector<float> yy(4 * 256);
    const MatMulKernel matmul(mc);
    dense_test::Scratch mscratch(matmul.scratch_bytes());
    const double matmul_per_run =
        allocations_per_run([&] { matmul.run(a.data(), a.data(), yy.data(), mscratch.data()); });
    // The matmul runs the packed GEMM on its scratch: nothing at all.
    EXPECT_EQ(matmul_per_run, 0.0);
  });
}

TEST(Allocations, SynapticGateRunsAllocateNothing) {
  QUARKS_SKIP_WITHOUT_ALLOCATION_COUNTER();
  tbb::task_arena arena(2);
  arena.execute([] {
    for (SynapticGateMode mode :
         {SynapticGateMode::kSynapseMask, SynapticGateMode::kPerInput, SynapticGateMode::kFull}) {
      SynapticGateConfig c;
      c.m = 40;
      c.k = 48;
      c.n = 80;
      c.mode = mode;
      c.max_threads = 2;
      const std::int64_t gate_size = mode == SynapticGateMode::kSynapseMask ? c.k * c.n
                                     : mode == SynapticGateMode::kPerInput  ? c.m * c.k
                                                                            : c.m * c.k * c.n;
      const auto w = dense_test::random_values(c.k * c.n, 1);
      const auto x = dense_test::random_values(c.m * c.k, 2);
      const auto g = dense_test::random_values(gate_size, 3);
      std::vector<float> y(static_cast<std::size_t>(c.m * c.n));
      const SynapticGateKernel kernel(c, w.data());
      dense_test::Scratch scratch(kernel.scratch_bytes());
      EXPECT_EQ(allocations_per_run([&] { kernel.run(x.data(), g.data(), y.data(), scratch.data()); }), 0.0)
          << "mode " << static_cast<int>(mode);
    }
  });
}

}  // namespace
}  // namespace quarks::ops
