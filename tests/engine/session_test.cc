// Session behaviour: zero heap allocations in steady state, re-planning on new shapes, and
// concurrent Sessions on one Model giving bit-identical results.
#include <gtest/gtest.h>

#include <algorithm>

#include <atomic>
#include <cstring>
#include <thread>

#include "common/allocation_counter.hpp"
#include "engine/model_impl.hpp"
#include "engine/test_util.hpp"
#include "ops/contract/sanitizers.hpp"
#include "ops/dense/packed_gemm.hpp"

namespace quarks {
namespace {

using test::random_tensor;

// A model with every non-dense op family: elementwise quarks, broadcasting, softmax, norms, layout.
Graph elementwise_model() {
  GraphBuilder g;
  auto x = g.input("x", {"rows", 96});
  auto a = g.input("a", {96});
  auto m = g.multiplex("mux", x, a, 0.5f, Activation::gelu());
  auto s = g.output_gate("gate", m, x, Activation::identity(), Activation::sigmoid());
  auto n = g.layer_norm("ln", s, g.constant("scale", random_tensor({96}, 5)));
  auto r = g.reshape("r", n, {0, 8, 12});
  auto t = g.transpose("t", r, {0, 2, 1});
  auto sm = g.softmax("sm", t, -1);
  auto q = g.activation("sq", sm, Activation::square());
  g.output("y", g.mul("scaled", q, g.constant("c", random_tensor({8}, 6))));
  return g.build();
}

// A model with dense products too.
Graph dense_model() {
  GraphBuilder g;
  auto x = g.input("x", {"rows", 64});
  auto up = g.dense("up", x, g.constant("wu", random_tensor({64, 256}, 1, -0.1f, 0.1f)));
  auto gate = g.dense("gate", x, g.constant("wg", random_tensor({64, 256}, 2, -0.1f, 0.1f)));
  auto h = g.output_gate("swiglu", gate, up, Activation::silu(), Activation::identity());
  auto y =
      g.dense("down", h, g.constant("wd", random_tensor({256, 64}, 3, -0.1f, 0.1f)), std::nullopt, Activation::relu());
  auto mm = g.matmul("mm", y, x, false, true);  // [rows, rows]
  g.output("y", g.softmax("sm", mm));
  return g.build();
}

// Heap allocations of each of 20 runs after 3 warm-up runs.
std::vector<long> allocations_per_run(const Graph& graph,
                                      std::initializer_list<std::pair<const char*, Shape>> input_shapes, int threads) {
  CompileOptions o;
  o.threads = threads;
  Model model = compile(graph, o);
  Session session(model);
  std::vector<Tensor> storage;
  std::vector<NamedInput> inputs;
  std::uint32_t seed = 1;
  for (const auto& [name, shape] : input_shapes) {
    storage.push_back(random_tensor(shape, seed++));
    inputs.push_back({name, storage.back()});
  }
  Tensor out(DType::kF32, session.output_shape(inputs, "y"));
  const NamedOutput outputs[] = {{"y", out.view()}};
  for (int i = 0; i < 3; ++i) session.run(inputs, outputs);  // warm up: plans, arena, TBB task pools
  std::vector<long> counts;
  for (int i = 0; i < 20; ++i) {
    long n = 0;
    {
      test::AllocationCounter counter;
      session.run(inputs, outputs);
      n = counter.count();
    }
    counts.push_back(n);
  }
  return counts;
}

TEST(Session, ElementwiseModelMakesNoHeapAllocationAfterTheFirstRun) {
  QUARKS_SKIP_WITHOUT_ALLOCATION_COUNTER();
  for (int threads : {1, 2}) {
    for (long n : allocations_per_run(elementwise_model(), {{"x", {200, 96}}, {"a", {96}}}, threads)) {
      EXPECT_EQ(n, 0) << threads << " threads";
    }
  }
}

// Dense, matmul and softmax. On CPUs without AVX-512 the dense products and the matmul run the packed
// GEMM: no allocation at all. Where dense uses oneDNN, quarks itself still allocates nothing, but oneDNN
// 2.6's primitive execute builds a small std::unordered_map of its arguments on every call (4-6
// allocations per primitive call, counted in tests/ops/dense/dense_alloc_test.cc) and its public API
// offers no way around it; then what this test pins down is that with one thread the count is the same
// on every run (nothing grows or leaks per run), and with two only a bound (a TBB worker that meets a
// oneDNN descriptor for the first time also creates its per-thread memory object once).
TEST(Session, DenseModelAllocatesNothingAfterTheFirstRunBesidesOneDnnArgumentMaps) {
  QUARKS_SKIP_WITHOUT_ALLOCATION_COUNTER();
  const bool packed = ops::dense_detail::prefer_packed_gemm();
  const std::vector<long> one = allocations_per_run(dense_model(), {{"x", {150, 64}}}, 1);
  for (long n : one) {
    EXPECT_EQ(n, packed ? 0 : one.front());
    EXPECT_LE(n, 200);
  }
  for (long n : allocations_per_run(dense_model(), {{"x", {150, 64}}}, 2)) EXPECT_LE(n, packed ? 0 : 200);
}

// dense_model has two weighted products after fusion (gated dense up/gate, dense down): every plan uses
// the same two packed copies, whether they run the packed GEMM or oneDNN (whose per-N-tile layouts are
// the same at these row counts), in f32 and in bf16.
void expect_plans_share_packed_weights(Precision precision) {
  const Model model = compile(dense_model(), CompileOptions{.threads = 2, .precision = precision});
  Session session(model);
  for (std::int64_t rows : {150, 7, 300, 1}) {
    const Tensor x = random_tensor({rows, 64}, 4);
    const Tensor y = session.run({{"x", x}}).at("y");
    EXPECT_EQ(std::memcmp(y.data(), Session(model).run({{"x", x}}).at("y").data(), y.bytes()), 0) << rows;
  }
  EXPECT_EQ(model.impl().plan_count(), 4u);
  EXPECT_EQ(model.impl().packed_weight_sets(), 2u);
}

TEST(Session, PlansForNewShapesShareThePackedWeights) { expect_plans_share_packed_weights(Precision::kF32); }

TEST(Session, PlansForNewShapesShareThePackedBf16Weights) {
  try {
    (void)compile(dense_model(), CompileOptions{.threads = 1, .precision = Precision::kBF16});
  } catch (const Error& e) {
    if (e.code() != ErrorCode::kUnsupported) throw;
    GTEST_SKIP() << "no bf16 matmuls on this CPU (oneDNN 2.6 needs AVX-512): " << e.what();
  }
  expect_plans_share_packed_weights(Precision::kBF16);
}

TEST(Session, ModelKeepsAtMostMaxPlansDroppingTheLeastRecentlyLookedUp) {
  const Model model = compile(elementwise_model(), CompileOptions{.threads = 1, .max_plans = 2});
  Session s(model);
  Session other(model);
  const Tensor a = random_tensor({96}, 2);
  const auto run = [&](Session& session, std::int64_t rows) {
    const Tensor x = random_tensor({rows, 96}, static_cast<std::uint32_t>(rows));
    const Tensor y = session.run({{"x", x}, {"a", a}}).at("y");
    EXPECT_EQ(y.shape(), (Shape{rows, 12, 8}));
    return y;
  };
  const auto plan_of = [&](std::int64_t rows) { return model.impl().plan_for({Shape{rows, 96}, Shape{96}}); };
  const Tensor first = run(s, 5);
  const auto plan5 = plan_of(5);
  run(other, 9);
  const auto plan9 = plan_of(9);
  run(other, 5);  // other looks 5 up again: 5 is now the most recent, 9 goes first
  run(other, 13);
  EXPECT_EQ(model.impl().plan_count(), 2u);
  // 5 was kept (the same plan, the same results); 9 was dropped and is rebuilt on demand.
  EXPECT_EQ(plan_of(5).get(), plan5.get());
  EXPECT_NE(plan_of(9).get(), plan9.get());
  const Tensor again = run(s, 5);
  EXPECT_EQ(std::memcmp(again.data(), first.data(), first.bytes()), 0);
  run(other, 9);
  EXPECT_EQ(model.impl().plan_count(), 2u);
  try {
    compile(elementwise_model(), CompileOptions{.max_plans = 0});
    ADD_FAILURE() << "max_plans = 0 accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
    EXPECT_NE(std::string(e.what()).find("max_plans"), std::string::npos) << e.what();
  }
}

TEST(Session, ReplansWhenShapesChangeAndBack) {
  Model model = compile(elementwise_model());
  Session s(model);
  Tensor a = random_tensor({96}, 2);
  for (std::int64_t rows : {5, 300, 5, 1, 0}) {
    Tensor x = random_tensor({rows, 96}, 1);
    Tensor fresh = Session(model).run({{"x", x}, {"a", a}}).at("y");
    Tensor y = s.run({{"x", x}, {"a", a}}).at("y");
    ASSERT_EQ(y.shape(), (Shape{rows, 12, 8}));
    EXPECT_EQ(std::memcmp(y.data(), fresh.data(), y.bytes()), 0) << rows;
  }
}

// Four threads, each with its own Session on one shared Model, 200 runs each with different
// inputs: every result is bit-identical to the serial run of the same input.
TEST(Session, ConcurrentSessionsAreBitIdenticalToSerial) {
  CompileOptions o;
  o.threads = 2;
  Model model = compile(dense_model(), o);
  constexpr int kThreads = 4, kRuns = 200, kDistinct = 16;
  std::vector<Tensor> inputs, expected;
  Session serial(model);
  for (int i = 0; i < kDistinct; ++i) {
    inputs.push_back(random_tensor({48 + 16 * (i % 3), 64}, 100 + i));
    expected.push_back(serial.run({{"x", inputs.back()}}).at("y"));
  }
  std::atomic<int> mismatches{0};
  std::vector<std::thread> workers;
  for (int t = 0; t < kThreads; ++t) {
    workers.emplace_back([&, t] {
      Session s(model);
      for (int r = 0; r < kRuns; ++r) {
        const int i = (r * 7 + t * 5) % kDistinct;
        Tensor y = s.run({{"x", inputs[i]}}).at("y");
        if (std::memcmp(y.data(), expected[i].data(), y.bytes()) != 0) ++mismatches;
      }
    });
  }
  for (auto& w : workers) w.join();
  EXPECT_EQ(mismatches.load(), 0);
}

}  // namespace
}  // namespace quarks

namespace quarks {
namespace {

// Buffers of 2 MiB and more are mapped (huge pages where the kernel gives them): zeroed, 64-byte
// aligned, each its own memory, released with the last Tensor that holds it — at sizes around the
// threshold and across many allocations (a leak of mappings would exhaust vm.max_map_count).
TEST(TensorAllocation, LargeBuffersAreZeroedAlignedAndIndependent) {
  for (std::int64_t floats : {(std::int64_t{2} << 20) / 4 - 1, (std::int64_t{2} << 20) / 4, std::int64_t{3} << 20}) {
    Tensor a(DType::kF32, Shape{floats});
    Tensor b(DType::kF32, Shape{floats});
    ASSERT_EQ(reinterpret_cast<std::uintptr_t>(a.data()) % 64, 0u);
    EXPECT_TRUE(std::all_of(a.f32(), a.f32() + floats, [](float v) { return v == 0.0f; })) << floats;
    std::fill(a.f32(), a.f32() + floats, 1.0f);
    EXPECT_TRUE(std::all_of(b.f32(), b.f32() + floats, [](float v) { return v == 0.0f; })) << floats;
    EXPECT_EQ(a.f32()[floats - 1], 1.0f);
  }
#if !defined(QUARKS_ADDRESS_SANITIZER)  // ASan's heap zeroes each 4 MiB buffer: 400 GB of memset
  for (int i = 0; i < 100000; ++i) Tensor t(DType::kF32, Shape{std::int64_t{1} << 20});
#endif
}

TEST(TensorAllocation, ImpossibleSizesAreResourceExhaustedErrors) {
  // 2^60 elements: refused before any allocation is attempted (no std::bad_alloc, no overflow).
  try {
    Tensor t(DType::kF32, Shape{std::int64_t{1} << 30, std::int64_t{1} << 30});
    FAIL() << "allocated " << t.bytes() << " bytes";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kResourceExhausted);
    EXPECT_NE(std::string(e.what()).find("[1073741824,1073741824]"), std::string::npos) << e.what();
  }
  // A product that overflows int64 saturates instead of wrapping to a small or negative count.
  const Shape huge{std::int64_t{1} << 40, std::int64_t{1} << 40};
  EXPECT_EQ(huge.numel(), INT64_MAX);
}

}  // namespace
}  // namespace quarks
