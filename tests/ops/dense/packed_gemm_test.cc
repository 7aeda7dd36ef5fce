// The prepacked Highway GEMM (ops/dense/packed_gemm.hpp) against a scalar double reference, on every
// Highway target compiled and supported here: directly (strided x, c and W, several N-tiles, untouched
// memory around the tiles) and through DenseKernel and GatedDenseKernel with the packed backend forced
// (awkward sizes, large k, every activation, NaN and ±inf in x, W and the bias, 1 and 2 threads).
// Also: the oneDNN backend, still used for bf16 and on CPUs with AVX-512, keeps passing the same checks,
// and a packed run() allocates nothing.
#include "ops/dense/packed_gemm.hpp"
#include "common/highway_target_test.hpp"

#include <gtest/gtest.h>
#include <hwy/targets.h>
#include <tbb/task_arena.h>

#include <array>
#include <cmath>
#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "common/allocation_counter.hpp"
#include "ops/dense/dense_kernel.hpp"
#include "ops/dense/dense_test_util.hpp"
#include "ops/dense/gated_dense_kernel.hpp"

namespace quarks::ops {
namespace {

using dense_test::Scratch;

constexpr float kInf = std::numeric_limits<float>::infinity();
constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

// The sizes the brief asks for (m and n may be 0; k >= 1, since the kernels reject k = 0).
const std::int64_t kSizes[] = {0, 1, 5, 7, 17, 63, 65, 300};

/// One reference pre-activation s = Σ_p x[i, p]·w[p, j] + b[j] in double, with Σ|terms| for the tolerance.
struct RefDot {
  double s = 0.0, abs_sum = 0.0;
};

RefDot reference_dot(const float* x, std::int64_t ldx, const float* w, std::int64_t ldw, const float* bias,
                     std::int64_t i, std::int64_t j, std::int64_t k) {
  RefDot r;
  if (bias != nullptr) {
    r.s = bias[j];
    r.abs_sum = std::abs(r.s);
  }
  for (std::int64_t p = 0; p < k; ++p) {
    const double t = static_cast<double>(x[i * ldx + p]) * w[p * ldw + j];
    r.s += t;
    r.abs_sum += std::abs(t);
  }
  return r;
}

/// Checks got against f(dot) with the f32 accumulation tolerance propagated through f. Special values
/// must match exactly (NaN for NaN, the same infinity). Returns true if it passed.
bool close_to_reference(const Activation& f, const RefDot& dot, std::int64_t k, double got, double* ref_out) {
  const double ref = dense_test::reference_activation(f, dot.s);
  *ref_out = ref;
  if (std::isnan(ref)) return std::isnan(got);
  if (std::isinf(ref)) return got == ref;
  const double pre = dense_test::f32_dot_tolerance(k, dot.abs_sum);
  if (dense_test::near_jump(f, dot.s, pre)) return true;
  const double tol = dense_test::activation_slope(f, dot.s, pre) * pre + 1e-5 * std::abs(ref) + 1e-6;
  return std::abs(got - ref) <= tol;
}

// Runs a DenseKernel and checks every output; `what` names the case in failure messages.
void check_dense(const DenseConfig& c, const std::vector<float>& x, const std::vector<float>& w, const float* bias,
                 const std::string& what) {
  const DenseKernel kernel(c, w.data(), bias);
  std::vector<float> y(static_cast<std::size_t>(c.m * c.n), -12345.0f);
  Scratch scratch(kernel.scratch_bytes());
  kernel.run(x.data(), y.data(), scratch.data());
  int failures = 0;
  for (std::int64_t i = 0; i < c.m && failures < 5; ++i) {
    for (std::int64_t j = 0; j < c.n && failures < 5; ++j) {
      const RefDot dot = reference_dot(x.data(), c.k, w.data(), c.n, bias, i, j, c.k);
      double ref = 0.0;
      const double got = y[static_cast<std::size_t>(i * c.n + j)];
      if (!close_to_reference(c.activation, dot, c.k, got, &ref)) {
        ++failures;
        ADD_FAILURE() << what << " m=" << c.m << " k=" << c.k << " n=" << c.n << " act=" << c.activation.to_string()
                      << (bias ? " bias" : "") << " threads=" << c.max_threads << " at [" << i << "," << j << "]: got "
                      << got << ", want " << ref;
      }
    }
  }
}

void check_gated(const GatedDenseConfig& c, const std::vector<float>& x, const std::vector<float>& w1, const float* b1,
                 const std::vector<float>& w2, const float* b2, const std::string& what) {
  const GatedDenseKernel kernel(c, w1.data(), b1, w2.data(), b2);
  std::vector<float> y(static_cast<std::size_t>(c.m * c.n), -12345.0f);
  Scratch scratch(kernel.scratch_bytes());
  kernel.run(x.data(), y.data(), scratch.data());
  int failures = 0;
  for (std::int64_t i = 0; i < c.m && failures < 5; ++i) {
    for (std::int64_t j = 0; j < c.n && failures < 5; ++j) {
      const RefDot d1 = reference_dot(x.data(), c.k, w1.data(), c.n, b1, i, j, c.k);
      const RefDot d2 = reference_dot(x.data(), c.k, w2.data(), c.n, b2, i, j, c.k);
      const double f1 = dense_test::reference_activation(c.f, d1.s);
      const double g2 = dense_test::reference_activation(c.g, d2.s);
      const double ref = f1 * g2;
      const double got = y[static_cast<std::size_t>(i * c.n + j)];
      bool ok;
      if (std::isnan(ref) || std::isinf(ref)) {
        ok = std::isnan(ref) ? std::isnan(got) : got == ref;
      } else {
        const double e1 = dense_test::f32_dot_tolerance(c.k, d1.abs_sum);
        const double e2 = dense_test::f32_dot_tolerance(c.k, d2.abs_sum);
        const double t1 = dense_test::activation_slope(c.f, d1.s, e1) * e1 + 1e-5 * std::abs(f1) + 1e-6;
        const double t2 = dense_test::activation_slope(c.g, d2.s, e2) * e2 + 1e-5 * std::abs(g2) + 1e-6;
        // |f1·g2 - F1·G2| <= |f1|·t2 + |g2|·t1 + t1·t2
        ok = dense_test::near_jump(c.f, d1.s, e1) || dense_test::near_jump(c.g, d2.s, e2) ||
             std::abs(got - ref) <= std::abs(f1) * t2 + std::abs(g2) * t1 + t1 * t2;
      }
      if (!ok) {
        ++failures;
        ADD_FAILURE() << what << " m=" << c.m << " k=" << c.k << " n=" << c.n << " f=" << c.f.to_string()
                      << " g=" << c.g.to_string() << " threads=" << c.max_threads << " at [" << i << "," << j
                      << "]: got " << got << ", want " << ref;
      }
    }
  }
}

DenseConfig dense_config(std::int64_t m, std::int64_t k, std::int64_t n, const Activation& f, int threads,
                         DenseBackend backend = DenseBackend::kPackedGemm) {
  DenseConfig c;
  c.m = m;
  c.k = k;
  c.n = n;
  c.activation = f;
  c.max_threads = threads;
  c.backend = backend;
  return c;
}

GatedDenseConfig gated_config(std::int64_t m, std::int64_t k, std::int64_t n, const Activation& f, const Activation& g,
                              int threads) {
  GatedDenseConfig c;
  c.m = m;
  c.k = k;
  c.n = n;
  c.f = f;
  c.g = g;
  c.max_threads = threads;
  c.backend = DenseBackend::kPackedGemm;
  return c;
}

class PackedGemmTest : public test::HighwayTargetTest {};
QUARKS_INSTANTIATE_ON_HIGHWAY_TARGETS(PackedGemmTest);

// gemm_tile on its own: W read with a row stride wider than n, x with one wider than k, c with one wider
// than n; several N-tiles with a narrow last one; everything around the tiles in c must stay untouched.
TEST_P(PackedGemmTest, TilesWithStridesLeaveTheRestAlone) {
  const Activation gelu = Activation::gelu();
  for (const std::int64_t m : {1, 13, 150}) {
    for (const std::int64_t k : {1, 9, 385, 800}) {
      for (const std::int64_t n : {1, 20, 70, 200}) {
        const std::int64_t ldw = n + 3, ldx = k + 5, ldc = n + 7;
        const auto w = dense_test::random_values(k * ldw, 1);
        const auto x = dense_test::random_values(m * ldx, 2);
        const auto bias = dense_test::random_values(n, 3);
        for (const bool with_bias : {false, true}) {
          for (const Activation* act : {static_cast<const Activation*>(nullptr), &gelu}) {
            // N-tiles of 64 columns (the last one narrower unless n is a multiple), one task per tile.
            const dense_detail::TileGrid grid = dense_detail::plan_tile_grid(m, n, 1, 64, m);
            const dense_detail::PackedWeights packed(grid, k, w.data(), ldw, with_bias ? bias.data() : nullptr);
            constexpr float kSentinel = -7777.0f;
            std::vector<float> c(static_cast<std::size_t>(m * ldc), kSentinel);
            Scratch pack(dense_detail::gemm_pack_bytes(k));
            for (int i = 0; i < grid.task_count(); ++i) {
              const dense_detail::TileTask t = grid.task(i);
              dense_detail::GemmTile tile;
              tile.x = x.data() + t.row0 * ldx;
              tile.ldx = ldx;
              tile.rows = t.rows;
              tile.k = k;
              tile.cols = t.cols;
              tile.panels = packed.panels(t.n_tile);
              tile.bias = packed.bias(t.n_tile);
              tile.c = c.data() + t.row0 * ldc + t.col0;
              tile.ldc = ldc;
              tile.act = act;
              tile.pack = reinterpret_cast<float*>(pack.data());
              dense_detail::gemm_tile(tile);
            }
            const Activation f = act ? *act : Activation::identity();
            int failures = 0;
            for (std::int64_t i = 0; i < m && failures < 5; ++i) {
              for (std::int64_t j = 0; j < ldc && failures < 5; ++j) {
                const double got = c[static_cast<std::size_t>(i * ldc + j)];
                if (j >= n) {
                  if (got != kSentinel) ++failures;
                  EXPECT_EQ(got, kSentinel) << "wrote outside the tile at [" << i << "," << j << "]";
                  continue;
                }
                const RefDot dot =
                    reference_dot(x.data(), ldx, w.data(), ldw, with_bias ? bias.data() : nullptr, i, j, k);
                double ref = 0.0;
                if (!close_to_reference(f, dot, k, got, &ref)) {
                  ++failures;
                  ADD_FAILURE() << "m=" << m << " k=" << k << " n=" << n << (with_bias ? " bias" : "")
                                << (act ? " gelu" : "") << " at [" << i << "," << j << "]: got " << got << ", want "
                                << ref;
                }
              }
            }
          }
        }
      }
    }
  }
}

// Every combination of m, n in {0, 1, 5, 7, 17, 63, 65, 300} and k in the same set without 0, with and
// without bias, in arenas of 1 and 2 threads.
TEST_P(PackedGemmTest, DenseSizeSweep) {
  dense_test::for_each_arena([&](int threads) {
    for (const std::int64_t m : kSizes) {
      for (const std::int64_t k : kSizes) {
        if (k == 0) continue;
        for (const std::int64_t n : kSizes) {
          const auto x = dense_test::random_values(m * k, 1);
          const auto w = dense_test::random_values(k * n, 2);
          const auto b = dense_test::random_values(n, 3);
          const bool with_bias = (m + k + n) % 2 == 0;
          check_dense(dense_config(m, k, n, Activation::identity(), threads), x, w, with_bias ? b.data() : nullptr,
                      "sweep");
        }
      }
    }
  });
}

// k well past one k-block (uneven blocks, and x rows whose stride is a multiple of 4 KiB), rows past one
// row block.
TEST_P(PackedGemmTest, DenseLargeK) {
  dense_test::for_each_arena([&](int threads) {
    for (const auto& [m, k, n] : {std::array<std::int64_t, 3>{7, 4099, 37}, {300, 1024, 70}, {140, 3072, 17}}) {
      const auto x = dense_test::random_values(m * k, 4);
      const auto w = dense_test::random_values(k * n, 5);
      const auto b = dense_test::random_values(n, 6);
      check_dense(dense_config(m, k, n, Activation::gelu(), threads), x, w, b.data(), "large k");
    }
  });
}

TEST_P(PackedGemmTest, DenseEveryActivation) {
  for (const Activation& f : dense_test::all_activations()) {
    dense_test::for_each_arena([&](int threads) {
      for (const auto& [m, k, n] : {std::array<std::int64_t, 3>{17, 65, 130}, {5, 7, 5}, {64, 300, 63}}) {
        const auto x = dense_test::random_values(m * k, 7);
        const auto w = dense_test::random_values(k * n, 8);
        const auto b = dense_test::random_values(n, 9);
        check_dense(dense_config(m, k, n, f, threads), x, w, b.data(), "activation");
      }
    });
  }
}

// NaN and ±inf in x, in W and in the bias: each output is NaN or ±inf exactly as the double reference
// says (inf·0 = NaN, inf - inf = NaN, ...), through every activation; the rest stays finite and accurate.
TEST_P(PackedGemmTest, DenseSpecialValues) {
  for (const Activation& f : dense_test::all_activations()) {
    dense_test::for_each_arena([&](int threads) {
      const std::int64_t m = 9, k = 70, n = 37;
      auto x = dense_test::random_values(m * k, 10);
      auto w = dense_test::random_values(k * n, 11);
      auto b = dense_test::random_values(n, 12);
      for (std::int64_t p = 0; p < k; ++p) x[1 * k + p] = x[2 * k + p] = x[3 * k + p] = 0.0f;
      x[1 * k + 5] = kNaN;
      x[2 * k + 9] = kInf;
      x[3 * k + 9] = -kInf;
      x[4 * k + 20] = kInf;   // meets W's column 3 (+inf) and 4 (-inf) below
      w[20 * n + 3] = kInf;   // row 20: x[4, 20] = inf gives inf (or NaN where another inf cancels)
      w[21 * n + 4] = -kInf;  // rows 1, 2, 3 have zeros at p = 21: 0·(-inf) = NaN
      w[30 * n + 36] = kNaN;  // a NaN weight poisons every row of column 36 (the narrow last panel)
      b[7] = kInf;
      b[8] = -kInf;
      b[10] = kNaN;
      check_dense(dense_config(m, k, n, f, threads), x, w, b.data(), "special values");
    });
  }
}

TEST_P(PackedGemmTest, GatedSizeSweep) {
  const Activation silu = Activation::silu(), identity = Activation::identity(), gelu = Activation::gelu(),
                   sigmoid = Activation::sigmoid();
  dense_test::for_each_arena([&](int threads) {
    for (const std::int64_t m : kSizes) {
      for (const std::int64_t k : {1, 7, 65, 300}) {
        for (const std::int64_t n : kSizes) {
          const auto x = dense_test::random_values(m * k, 13);
          const auto w1 = dense_test::random_values(k * n, 14);
          const auto w2 = dense_test::random_values(k * n, 15);
          const auto b1 = dense_test::random_values(n, 16);
          const auto b2 = dense_test::random_values(n, 17);
          const bool swiglu = (m + n) % 2 == 0;
          const GatedDenseConfig c = gated_config(m, k, n, swiglu ? silu : gelu, swiglu ? identity : sigmoid, threads);
          // Biases: both, only b2, only b1, none, in turn.
          const int bias_case = static_cast<int>((m + k + n) % 4);
          check_gated(c, x, w1, bias_case == 0 || bias_case == 2 ? b1.data() : nullptr, w2,
                      bias_case <= 1 ? b2.data() : nullptr, "gated sweep");
        }
      }
    }
  });
}

TEST_P(PackedGemmTest, GatedLargeKAndSpecialValues) {
  dense_test::for_each_arena([&](int threads) {
    const std::int64_t m = 70, k = 1500, n = 40;
    auto x = dense_test::random_values(m * k, 18);
    auto w1 = dense_test::random_values(k * n, 19);
    const auto w2 = dense_test::random_values(k * n, 20);
    const auto b1 = dense_test::random_values(n, 21);
    const auto b2 = dense_test::random_values(n, 22);
    x[3 * k + 100] = kNaN;
    x[5 * k + 7] = kInf;
    w1[400 * n + 33] = -kInf;
    check_gated(gated_config(m, k, n, Activation::silu(), Activation::identity(), threads), x, w1, b1.data(), w2,
                b2.data(), "gated large k");
  });
}

// The oneDNN backend (bf16, CPUs with AVX-512) still computes the f32 products the same way.
TEST(PackedGemm, OneDnnBackendStillMatches) {
  dense_test::for_each_arena([&](int threads) {
    for (const auto& [m, k, n] : {std::array<std::int64_t, 3>{17, 65, 130}, {1, 300, 63}, {65, 7, 5}}) {
      const auto x = dense_test::random_values(m * k, 23);
      const auto w = dense_test::random_values(k * n, 24);
      const auto b = dense_test::random_values(n, 25);
      check_dense(dense_config(m, k, n, Activation::gelu(), threads, DenseBackend::kOneDnn), x, w, b.data(), "onednn");
      GatedDenseConfig g = gated_config(m, k, n, Activation::silu(), Activation::identity(), threads);
      g.backend = DenseBackend::kOneDnn;
      check_gated(g, x, w, b.data(), w, nullptr, "onednn gated");
    }
  });
}

// No heap allocation in a packed run(), dense or gated, in a 2-thread arena.
TEST(PackedGemm, RunDoesNotAllocate) {
  QUARKS_SKIP_WITHOUT_ALLOCATION_COUNTER();
  tbb::task_arena arena(2);
  arena.execute([] {
    const std::int64_t m = 100, k = 400, n = 300;
    const auto x = dense_test::random_values(m * k, 26);
    const auto w = dense_test::random_values(k * n, 27);
    const auto b = dense_test::random_values(n, 28);
    std::vector<float> y(static_cast<std::size_t>(m * n));
    const DenseKernel dense(dense_config(m, k, n, Activation::gelu(), 2), w.data(), b.data());
    const GatedDenseKernel gated(gated_config(m, k, n, Activation::silu(), Activation::identity(), 2), w.data(),
                                 b.data(), w.data(), nullptr);
    Scratch dense_scratch(dense.scratch_bytes()), gated_scratch(gated.scratch_bytes());
    for (int i = 0; i < 3; ++i) {  // warm-up: TBB's workers and their task pools exist afterwards
      dense.run(x.data(), y.data(), dense_scratch.data());
      gated.run(x.data(), y.data(), gated_scratch.data());
    }
    const test::AllocationCounter counter;
    for (int i = 0; i < 10; ++i) {
      dense.run(x.data(), y.data(), dense_scratch.data());
      gated.run(x.data(), y.data(), gated_scratch.data());
    }
    EXPECT_EQ(counter.count(), 0);
  });
}

}  // namespace
}  // namespace quarks::ops
