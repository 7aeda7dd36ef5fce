// Tests of ops/attention/attention_kernel.hpp against a naive double-precision reference that
// materialises the scores, takes the softmax and multiplies by V, on every Highway target this binary was
// built for and this CPU supports (AVX2, SSE4, SSSE3, SCALAR here), in arenas of 1 and 2 threads.
//
// Error measure: max |y - y_ref| over the output, divided by max |y_ref| (the output's scale; V is in
// [-1, 1]). Measured on this machine (AVX2 best target): at most 4e-7 over the size sweep (Sq, Sk in
// {1, 3, 17, 64, 65, 200}, D in {1, 8, 64, 80}, both layouts, causal or not), the masks, key lengths, GQA
// and the key split; each test asserts kTol = 2e-6.
#include "ops/attention/attention_kernel.hpp"
#include "common/highway_target_test.hpp"

#include <gtest/gtest.h>
#include <hwy/targets.h>
#include <tbb/task_arena.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "ops/attention/attention_simd.hpp"
#include "ops/attention/kv_cache_kernel.hpp"
#include "quarks/error.hpp"

namespace quarks::ops {
namespace {

constexpr double kTol = 2e-6;
constexpr float kInf = std::numeric_limits<float>::infinity();
constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

std::vector<float> uniform(std::size_t n, float lo, float hi, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

// One attention problem with its inputs, laid out 4-D [B, H, S, D] or 3-D [B, S, H·D].
struct Problem {
  std::int64_t batch = 1, q_heads = 2, kv_heads = 2, q_len = 5, kv_len = 7, head_dim = 8;
  bool three_d = false, causal = false;
  bool causal_from_key_lengths = false;  // the causal diagonal ends at key_lengths[b] (a KV cache)
  std::optional<float> scale;
  std::vector<std::int64_t> mask_shape;   // empty: no mask
  std::vector<std::int64_t> key_lengths;  // empty: none
  std::int64_t q_tile = 0, k_block = 0, kv_chunks = 0;
  int threads = 1;

  std::vector<float> q, k, v, mask;

  AttentionStrides strides(std::int64_t heads, std::int64_t len) const {
    return three_d ? AttentionStrides{len * heads * head_dim, head_dim, heads * head_dim}
                   : AttentionStrides{heads * len * head_dim, len * head_dim, head_dim};
  }
  float used_scale() const { return scale ? *scale : static_cast<float>(1.0 / std::sqrt(double(head_dim))); }

  void fill(unsigned seed) {
    q = uniform(static_cast<std::size_t>(batch * q_heads * q_len * head_dim), -2.0f, 2.0f, seed);
    k = uniform(static_cast<std::size_t>(batch * kv_heads * kv_len * head_dim), -2.0f, 2.0f, seed + 1);
    v = uniform(static_cast<std::size_t>(batch * kv_heads * kv_len * head_dim), -1.0f, 1.0f, seed + 2);
    if (!mask_shape.empty()) {
      std::size_t n = 1;
      for (std::int64_t d : mask_shape) n *= static_cast<std::size_t>(d);
      mask = uniform(n, -3.0f, 1.0f, seed + 3);
    }
  }

  // Mask strides for [B, Hq, Sq, Sk] (right-aligned, 0 for broadcast dims).
  std::array<std::int64_t, 4> mask_strides() const {
    std::array<std::int64_t, 4> s{};
    std::int64_t stride = 1;
    const int r = static_cast<int>(mask_shape.size());
    for (int j = r - 1; j >= 0; --j) {
      s[4 - r + j] = mask_shape[j] == 1 ? 0 : stride;
      stride *= mask_shape[j];
    }
    return s;
  }

  AttentionConfig config() const {
    AttentionConfig c;
    c.batch = batch;
    c.q_heads = q_heads;
    c.kv_heads = kv_heads;
    c.q_len = q_len;
    c.kv_len = kv_len;
    c.head_dim = head_dim;
    c.q = c.out = strides(q_heads, q_len);
    c.k = c.v = strides(kv_heads, kv_len);
    c.scale = used_scale();
    c.causal = causal;
    c.causal_from_key_lengths = causal_from_key_lengths;
    c.has_mask = !mask_shape.empty();
    c.mask_strides = mask_strides();
    c.has_key_lengths = !key_lengths.empty();
    c.max_threads = threads;
    c.q_tile = q_tile;
    c.k_block = k_block;
    c.kv_chunks = kv_chunks;
    return c;
  }

  std::string describe() const {
    std::string s = "B" + std::to_string(batch) + " Hq" + std::to_string(q_heads) + " Hkv" + std::to_string(kv_heads) +
                    " Sq" + std::to_string(q_len) + " Sk" + std::to_string(kv_len) + " D" + std::to_string(head_dim) +
                    (three_d ? " 3-D" : " 4-D") + (causal ? " causal" : "") +
                    (causal_from_key_lengths ? " to key lengths" : "") + " threads " + std::to_string(threads);
    if (!key_lengths.empty()) {
      s += " lengths";
      for (std::int64_t l : key_lengths) s += " " + std::to_string(l);
    }
    if (!mask_shape.empty()) {
      s += " mask [";
      for (std::size_t i = 0; i < mask_shape.size(); ++i) s += (i ? "," : "") + std::to_string(mask_shape[i]);
      s += "]";
    }
    if (q_tile || k_block || kv_chunks) {
      s += " tile " + std::to_string(q_tile) + "/" + std::to_string(k_block) + "/" + std::to_string(kv_chunks);
    }
    return s;
  }
};

struct Reference {
  std::vector<double> y;
  /// max over visible (i, j) of |scale|·Σ_d |q_id·k_jd|: the size of the terms a score is summed from.
  double score_scale = 0.0;
};

// The reference: for each (b, h, i) all scores in double, softmax over the visible keys, times V. A row
// with no visible key, or whose visible scores are all -inf, is 0; a NaN or +inf score makes it NaN.
Reference reference(const Problem& p) {
  const AttentionConfig c = p.config();
  Reference ref;
  std::vector<double>& y = ref.y;
  y.assign(p.q.size(), 0.0);
  std::vector<double> s(static_cast<std::size_t>(p.kv_len));
  const std::int64_t group = p.q_heads / p.kv_heads;
  for (std::int64_t b = 0; b < p.batch; ++b) {
    const std::int64_t len = p.key_lengths.empty() ? p.kv_len : p.key_lengths[b];
    for (std::int64_t h = 0; h < p.q_heads; ++h) {
      for (std::int64_t i = 0; i < p.q_len; ++i) {
        const float* qi = p.q.data() + b * c.q.batch + h * c.q.head + i * c.q.row;
        double m = -INFINITY;
        bool bad = false;
        std::vector<bool> visible(static_cast<std::size_t>(p.kv_len), false);
        for (std::int64_t j = 0; j < p.kv_len; ++j) {
          const std::int64_t causal_end = p.causal_from_key_lengths ? len : p.kv_len;
          if (j >= len || (p.causal && j > i + (causal_end - p.q_len))) continue;
          visible[j] = true;
          const float* kj = p.k.data() + b * c.k.batch + (h / group) * c.k.head + j * c.k.row;
          double dot = 0.0, magnitude = 0.0;
          for (std::int64_t d = 0; d < p.head_dim; ++d) {
            dot += double(qi[d]) * kj[d];
            magnitude += std::fabs(double(qi[d]) * kj[d]);
          }
          if (std::isfinite(magnitude)) {
            ref.score_scale = std::max(ref.score_scale, magnitude * std::fabs(p.used_scale()));
          }
          s[j] = dot * p.used_scale();
          if (!p.mask.empty()) {
            const auto& ms = c.mask_strides;
            s[j] += p.mask[b * ms[0] + h * ms[1] + i * ms[2] + j * ms[3]];
          }
          bad = bad || std::isnan(s[j]) || s[j] == INFINITY;
          m = std::max(m, s[j]);
        }
        double* yi = y.data() + b * c.out.batch + h * c.out.head + i * c.out.row;
        if (bad) {
          std::fill(yi, yi + p.head_dim, NAN);
          continue;
        }
        if (m == -INFINITY) continue;  // nothing visible: zeros
        double sum = 0.0;
        for (std::int64_t j = 0; j < p.kv_len; ++j) {
          if (!visible[j]) continue;
          const double w = std::exp(s[j] - m);
          sum += w;
          const float* vj = p.v.data() + b * c.v.batch + (h / group) * c.v.head + j * c.v.row;
          for (std::int64_t d = 0; d < p.head_dim; ++d) yi[d] += w * vj[d];
        }
        for (std::int64_t d = 0; d < p.head_dim; ++d) yi[d] /= sum;
      }
    }
  }
  return ref;
}

// The bound a test asserts: kTol, or a few f32 ulps of the score terms when those are large. A score is a
// sum of products rounded in f32, so it carries an absolute error of about 2^-24·Σ|q·k|·scale, which the
// softmax turns into the same relative error in the weights (and in the output); no f32 kernel avoids it.
double tolerance(const Reference& ref) { return std::max(kTol, 0x1p-22 * ref.score_scale); }

std::vector<float> run_kernel(const Problem& p, std::size_t* scratch_bytes = nullptr, std::int64_t* chunks = nullptr) {
  const AttentionKernel kernel(p.config());
  if (scratch_bytes) *scratch_bytes = kernel.scratch_bytes();
  if (chunks) *chunks = kernel.kv_chunks();
  std::vector<float> y(p.q.size(), -777.0f);  // every element must be written
  std::vector<float> scratch(kernel.scratch_bytes() / sizeof(float) + 16);
  auto* aligned = reinterpret_cast<std::byte*>((reinterpret_cast<std::uintptr_t>(scratch.data()) + 63) / 64 * 64);
  tbb::task_arena arena(p.threads);
  arena.execute([&] {
    kernel.run(p.q.data(), p.k.data(), p.v.data(), p.mask.empty() ? nullptr : p.mask.data(),
               p.key_lengths.empty() ? nullptr : p.key_lengths.data(), y.data(), aligned);
  });
  return y;
}

// max |got - want| / max |want| (NaN must meet NaN).
double relative_error(const std::vector<float>& got, const std::vector<double>& want) {
  double scale = 0.0, worst = 0.0;
  for (double w : want) {
    if (!std::isnan(w)) scale = std::max(scale, std::fabs(w));
  }
  for (std::size_t i = 0; i < got.size(); ++i) {
    if (std::isnan(want[i]) != std::isnan(got[i])) return INFINITY;
    if (std::isnan(want[i])) continue;
    worst = std::max(worst, std::fabs(got[i] - want[i]));
  }
  return scale > 0.0 ? worst / scale : worst;
}

// Runs the kernel and the reference; returns the relative error divided by the tolerance (so < 1 passes)
// and records the largest relative error seen.
double check(const Problem& p, double* largest = nullptr) {
  const Reference ref = reference(p);
  const double err = relative_error(run_kernel(p), ref.y);
  if (largest) *largest = std::max(*largest, err);
  return err / tolerance(ref);
}

class AttentionKernelTest : public test::HighwayTargetTest {};
QUARKS_INSTANTIATE_ON_HIGHWAY_TARGETS(AttentionKernelTest);

// ----- sizes, layouts, causal -------------------------------------------------------------------------

TEST_P(AttentionKernelTest, SizeSweepBothLayoutsCausalOrNot) {
  const std::int64_t lens[] = {1, 3, 17, 64, 65, 200};
  const std::int64_t dims[] = {1, 8, 64, 80};
  double largest = 0.0;
  unsigned seed = 1;
  for (std::int64_t sq : lens) {
    for (std::int64_t sk : lens) {
      for (std::int64_t d : dims) {
        for (int variant = 0; variant < 4; ++variant) {
          Problem p;
          p.q_len = sq;
          p.kv_len = sk;
          p.head_dim = d;
          p.three_d = variant & 1;
          p.causal = variant & 2;
          p.threads = 1 + (seed % 2);
          p.fill(seed++);
          ASSERT_LT(check(p, &largest), 1.0) << p.describe();
        }
      }
    }
  }
  std::printf("[ %s ] size sweep: largest relative error %.3g\n", hwy::TargetName(GetParam()), largest);
}

TEST_P(AttentionKernelTest, CausalDecodeAndPrefillAlignToTheEnd) {
  // Sq < Sk (a decode step over a KV cache, several queries), Sq == Sk, and Sq > Sk (leading rows see no
  // key and are zero), across tile and block boundaries.
  double largest = 0.0;
  for (auto [sq, sk] : {std::pair<std::int64_t, std::int64_t>{1, 200},
                        {4, 130},
                        {17, 200},
                        {100, 100},
                        {130, 129},
                        {200, 65},
                        {70, 3}}) {
    for (std::int64_t tile : {0, 16}) {
      Problem p;
      p.q_len = sq;
      p.kv_len = sk;
      p.head_dim = 16;
      p.causal = true;
      p.q_tile = tile;
      p.k_block = tile ? 32 : 0;
      p.threads = 2;
      p.fill(static_cast<unsigned>(sq * 7 + sk));
      ASSERT_LT(check(p, &largest), 1.0) << p.describe();
      if (sq > sk) {  // rows before the first key: exactly zero
        const std::vector<float> y = run_kernel(p);
        for (std::int64_t i = 0; i < sq - sk; ++i) EXPECT_EQ(y[i * p.head_dim], 0.0f) << i;
      }
    }
  }
  std::printf("causal alignment: largest relative error %.3g\n", largest);
}

// ----- masks, key lengths --------------------------------------------------------------------------------

TEST_P(AttentionKernelTest, MasksOfEveryBroadcastShape) {
  const std::int64_t b = 2, h = 3, sq = 17, sk = 65;
  const std::vector<std::vector<std::int64_t>> shapes = {
      {b, 1, 1, sk}, {1, 1, sq, sk}, {sq, sk}, {b, h, sq, sk}, {1, h, 1, sk}, {b, 1, sq, 1}, {sk}, {1}, {}};
  double largest = 0.0;
  for (const auto& shape : shapes) {
    for (bool three_d : {false, true}) {
      Problem p;
      p.batch = b;
      p.q_heads = p.kv_heads = h;
      p.q_len = sq;
      p.kv_len = sk;
      p.head_dim = 24;
      p.three_d = three_d;
      p.mask_shape = shape.empty() ? std::vector<std::int64_t>{1, 1, 1, 1} : shape;
      p.threads = 2;
      p.fill(11);
      ASSERT_LT(check(p, &largest), 1.0) << p.describe();
    }
  }
  std::printf("masks: largest relative error %.3g\n", largest);
}

TEST_P(AttentionKernelTest, MinusInfinityMaskEntriesAndFullyMaskedRows) {
  for (bool causal : {false, true}) {
    for (std::int64_t k_block : {0, 16}) {
      Problem p;
      p.batch = 2;
      p.q_len = 40;
      p.kv_len = 70;
      p.head_dim = 8;
      p.causal = causal;
      p.k_block = k_block;
      p.mask_shape = {2, 1, 40, 70};
      p.fill(21);
      for (std::int64_t i = 0; i < 40; ++i) {
        for (std::int64_t j = 0; j < 70; ++j) {
          float& m = p.mask[(i * 70 + j)];   // batch 0
          if ((i + j) % 3 == 0) m = -kInf;   // scattered -inf
          if (i == 5 || i == 39) m = -kInf;  // fully masked rows
          if (i == 7 && j != 69) m = -kInf;  // only the last key left (hidden by causal for early rows)
        }
        for (std::int64_t j = 0; j < 70; ++j) {
          if (j < 60) p.mask[(40 + i) * 70 + j] = -kInf;  // batch 1: only keys 60..69, in the last block
        }
      }
      const std::vector<float> y = run_kernel(p);
      const Reference ref = reference(p);
      EXPECT_LT(relative_error(y, ref.y), tolerance(ref)) << p.describe();
      for (std::int64_t h = 0; h < 2; ++h) {
        for (std::int64_t i : {5, 39}) {
          for (std::int64_t d = 0; d < 8; ++d) {
            ASSERT_EQ(y[(h * 40 + i) * 8 + d], 0.0f) << "fully masked row " << i << " head " << h;
          }
        }
      }
      for (float x : y) ASSERT_FALSE(std::isnan(x));
    }
  }
}

TEST_P(AttentionKernelTest, KeyLengthsIncludingZeroAndFull) {
  double largest = 0.0;
  for (bool causal : {false, true}) {
    for (bool three_d : {false, true}) {
      Problem p;
      p.batch = 5;
      p.q_len = 33;
      p.kv_len = 65;
      p.head_dim = 64;
      p.causal = causal;
      p.three_d = three_d;
      p.key_lengths = {0, 65, 1, 64, 30};
      p.mask_shape = {5, 1, 1, 65};
      p.threads = 2;
      p.fill(31);
      const std::vector<float> y = run_kernel(p);
      const Reference ref = reference(p);
      const double err = relative_error(y, ref.y);
      largest = std::max(largest, err);
      ASSERT_LT(err, tolerance(ref)) << p.describe();
      const AttentionConfig c = p.config();
      for (std::int64_t h = 0; h < p.q_heads; ++h) {  // batch 0 has no keys: zeros
        for (std::int64_t i = 0; i < p.q_len; ++i) {
          for (std::int64_t d = 0; d < p.head_dim; ++d) ASSERT_EQ(y[h * c.out.head + i * c.out.row + d], 0.0f);
        }
      }
    }
  }
  std::printf("key lengths: largest relative error %.3g\n", largest);
}

TEST(AttentionKernel, KeyLengthOutOfRangeThrowsAndWritesNothing) {
  for (std::int64_t bad : {-1, 8}) {
    Problem p;
    p.batch = 3;
    p.kv_len = 7;
    p.key_lengths = {7, bad, 0};
    p.fill(41);
    const AttentionKernel kernel(p.config());
    std::vector<float> y(p.q.size(), 5.0f), scratch(kernel.scratch_bytes() / 4 + 16);
    auto* aligned = reinterpret_cast<std::byte*>((reinterpret_cast<std::uintptr_t>(scratch.data()) + 63) / 64 * 64);
    try {
      kernel.run(p.q.data(), p.k.data(), p.v.data(), nullptr, p.key_lengths.data(), y.data(), aligned);
      ADD_FAILURE() << "no error for key length " << bad;
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
      EXPECT_NE(std::string(e.what()).find("key_lengths[1] = " + std::to_string(bad) + " is outside [0, 7]"),
                std::string::npos)
          << e.what();
    }
    for (float x : y) ASSERT_EQ(x, 5.0f);
  }
  const std::int64_t ok[] = {0, 3, 3}, not_ok[] = {0, 4, -2};
  EXPECT_EQ(first_bad_key_length(ok, 3, 3), -1);
  EXPECT_EQ(first_bad_key_length(not_ok, 3, 3), 1);
}

// ----- GQA, scale, special values -------------------------------------------------------------------------

TEST_P(AttentionKernelTest, GroupedQueryAttentionAndGivenScale) {
  double largest = 0.0;
  for (bool three_d : {false, true}) {
    for (bool causal : {false, true}) {
      for (std::optional<float> scale : {std::optional<float>{}, std::optional<float>{0.5f}}) {
        Problem p;
        p.batch = 2;
        p.q_heads = 8;
        p.kv_heads = 2;
        p.q_len = 65;
        p.kv_len = 200;
        p.head_dim = 64;
        p.three_d = three_d;
        p.causal = causal;
        p.scale = scale;
        p.threads = 2;
        p.fill(51);
        ASSERT_LT(check(p, &largest), 1.0) << p.describe();
      }
    }
  }
  // The scale really is used: scale 0 is a plain average of the visible values.
  Problem p;
  p.q_len = 3;
  p.kv_len = 4;
  p.head_dim = 2;
  p.q_heads = p.kv_heads = 1;
  p.scale = 0.0f;
  p.fill(52);
  const std::vector<float> y = run_kernel(p);
  for (std::int64_t d = 0; d < 2; ++d) {
    double mean = 0.0;
    for (std::int64_t j = 0; j < 4; ++j) mean += p.v[j * 2 + d] / 4.0;
    EXPECT_NEAR(y[d], mean, 1e-6);
  }
  std::printf("GQA and scale: largest relative error %.3g\n", largest);
}

// Packed QKV (GraphBuilder::attention_qkv): one [B, S, (Hq + 2·Hkv)·D] buffer, q, k and v read in place at
// column offsets 0, Hq·D and (Hq + Hkv)·D with the row stride of the whole packed row.
TEST_P(AttentionKernelTest, PackedQkvReadInPlaceMatchesSeparateInputs) {
  double largest = 0.0;
  struct Case {
    std::int64_t batch, q_heads, kv_heads, len, head_dim;
    bool causal;
    std::vector<std::int64_t> mask_shape, key_lengths;
  };
  const std::vector<Case> cases = {
      {2, 4, 4, 9, 16, false, {}, {}},
      {3, 6, 2, 65, 12, true, {}, {65, 1, 40}},
      {2, 8, 1, 130, 8, false, {2, 1, 1, 130}, {130, 77}},
      {1, 5, 5, 17, 64, true, {17, 17}, {}},
      {2, 3, 3, 1, 7, false, {}, {1, 0}},
  };
  unsigned seed = 500;
  for (const Case& cs : cases) {
    for (int threads : {1, 2}) {
      Problem p;
      p.batch = cs.batch;
      p.q_heads = cs.q_heads;
      p.kv_heads = cs.kv_heads;
      p.q_len = p.kv_len = cs.len;
      p.head_dim = cs.head_dim;
      p.three_d = true;
      p.causal = cs.causal;
      p.mask_shape = cs.mask_shape;
      p.key_lengths = cs.key_lengths;
      p.threads = threads;
      p.fill(seed++);
      const std::vector<float> separate = run_kernel(p);

      // Pack the 3-D q [B, S, Hq·D], k and v [B, S, Hkv·D] into rows of width W.
      const std::int64_t dq = p.q_heads * p.head_dim, dkv = p.kv_heads * p.head_dim, width = dq + 2 * dkv;
      std::vector<float> qkv(static_cast<std::size_t>(p.batch * p.q_len * width));
      for (std::int64_t r = 0; r < p.batch * p.q_len; ++r) {
        float* row = qkv.data() + r * width;
        std::copy_n(p.q.data() + r * dq, dq, row);
        std::copy_n(p.k.data() + r * dkv, dkv, row + dq);
        std::copy_n(p.v.data() + r * dkv, dkv, row + dq + dkv);
      }
      AttentionConfig c = p.config();
      c.q = c.k = c.v = AttentionStrides{p.q_len * width, p.head_dim, width};
      const AttentionKernel kernel(c);
      std::vector<float> packed(p.q.size(), -777.0f);
      std::vector<float> scratch(kernel.scratch_bytes() / sizeof(float) + 16);
      auto* aligned = reinterpret_cast<std::byte*>((reinterpret_cast<std::uintptr_t>(scratch.data()) + 63) / 64 * 64);
      tbb::task_arena arena(threads);
      arena.execute([&] {
        kernel.run(qkv.data(), qkv.data() + dq, qkv.data() + dq + dkv, p.mask.empty() ? nullptr : p.mask.data(),
                   p.key_lengths.empty() ? nullptr : p.key_lengths.data(), packed.data(), aligned);
      });
      const Reference ref = reference(p);
      const double err = relative_error(packed, ref.y);
      largest = std::max(largest, err);
      ASSERT_LT(err, tolerance(ref)) << p.describe();
      // The same products in the same order: identical to the separate inputs, bit for bit.
      for (std::size_t i = 0; i < packed.size(); ++i) ASSERT_EQ(packed[i], separate[i]) << p.describe() << " " << i;
    }
  }
  std::printf("packed qkv: largest relative error %.3g\n", largest);
}

TEST_P(AttentionKernelTest, NaNAndInfinityPoisonOnlyTheirRows) {
  Problem p;
  p.q_len = 20;
  p.kv_len = 150;
  p.head_dim = 8;
  p.q_heads = p.kv_heads = 1;
  p.mask_shape = {20, 150};
  p.k_block = 32;
  p.fill(61);
  p.q[3 * 8 + 2] = kNaN;         // query 3
  p.mask[9 * 150 + 140] = kInf;  // query 9, last block
  p.mask[12 * 150 + 10] = kNaN;  // query 12, first block
  p.mask[15 * 150 + 4] = -kInf;  // query 15: just hides one key
  const std::vector<float> y = run_kernel(p);
  const Reference ref = reference(p);
  EXPECT_LT(relative_error(y, ref.y), tolerance(ref));
  for (std::int64_t i = 0; i < 20; ++i) {
    const bool poisoned = i == 3 || i == 9 || i == 12;
    for (std::int64_t d = 0; d < 8; ++d) EXPECT_EQ(std::isnan(y[i * 8 + d]), poisoned) << i;
  }
}

TEST_P(AttentionKernelTest, CausalNonFiniteKeysAndValuesReachOnlyTheQueriesThatSeeThem) {
  // A NaN or an infinity in V (or K) at key `pos` may reach only the queries i >= pos (causal, Sq == Sk).
  // A hidden key's weight is exactly 0 and 0 * NaN = NaN, so a kernel that multiplies hidden keys in
  // anyway (a register block run over its last row's keys) poisons earlier queries. Positions at and
  // between the edges of register blocks, column panels and key blocks, through the three ways a tile
  // is computed: wide tiles (transposed context), a few rows, and narrow tiles (dot-product scores).
  int cases = 0;
  for (const bool three_d : {false, true}) {
    for (const std::int64_t q_tile : {0, 8, 4}) {
      for (const std::int64_t pos : {0, 5, 6, 13, 15, 16, 31, 32, 47, 63, 64, 99}) {
        for (const float poison : {kNaN, kInf, -kInf}) {
          for (const bool in_keys : {false, true}) {
            Problem p;
            p.q_len = p.kv_len = 100;
            p.head_dim = 20;
            p.q_heads = p.kv_heads = 1;
            p.three_d = three_d;
            p.causal = true;
            p.q_tile = q_tile;
            p.k_block = 32;
            p.fill(static_cast<unsigned>(900 + pos));
            const AttentionConfig c = p.config();
            constexpr std::int64_t kDim = 7;
            (in_keys ? p.k : p.v)[pos * c.k.row + kDim] = poison;
            const std::vector<float> y = run_kernel(p);
            const Reference ref = reference(p);
            const std::string what =
                p.describe() + " pos " + std::to_string(pos) + (in_keys ? " in K " : " in V ") + std::to_string(poison);
            ASSERT_LT(relative_error(y, ref.y), tolerance(ref)) << what;
            for (std::int64_t i = 0; i < p.q_len; ++i) {
              for (std::int64_t d = 0; d < p.head_dim; ++d) {
                // Which later entries are NaN or infinite follows the reference (a poisoned key's score
                // is NaN, +inf or -inf by the sign of q); a poisoned value always reaches its column.
                const float got = y[i * c.out.row + d];
                const std::string at = what + " row " + std::to_string(i) + " d " + std::to_string(d);
                if (i < pos) {
                  ASSERT_TRUE(std::isfinite(got)) << at;
                }
                if (!in_keys && i >= pos && d == kDim) {
                  ASSERT_FALSE(std::isfinite(got)) << at;
                }
                ASSERT_EQ(std::isfinite(got), std::isfinite(ref.y[i * c.out.row + d])) << at;
              }
            }
            ++cases;
          }
        }
      }
    }
  }
  EXPECT_EQ(cases, 432);
}

TEST_P(AttentionKernelTest, NonFiniteScoresWithoutMaskOrCausal) {
  // No mask and no causal triangle: the score product also finds the block maxima, and the softmax
  // must still flag every query whose scores hold a NaN or +inf (a NaN or +-inf in q poisons its row,
  // in K the rows whose score with that key is NaN or +inf), in any key block and on both the wide and
  // the narrow tile paths.
  for (const std::int64_t q_tile : {0, 4}) {
    for (const std::int64_t key : {0, 40, 127, 128, 199}) {
      for (const float poison : {kNaN, kInf, -kInf}) {
        Problem p;
        p.q_len = 70;
        p.kv_len = 200;
        p.head_dim = 16;
        p.q_heads = p.kv_heads = 1;
        p.q_tile = q_tile;
        p.fill(static_cast<unsigned>(300 + key));
        p.q[3 * 16 + 5] = poison;
        p.q[66 * 16 + 0] = poison;
        p.k[key * 16 + 9] = poison;
        const std::vector<float> y = run_kernel(p);
        const Reference ref = reference(p);
        ASSERT_LT(relative_error(y, ref.y), tolerance(ref)) << p.describe() << " key " << key << " " << poison;
        for (std::size_t i = 0; i < y.size(); ++i) {
          ASSERT_EQ(std::isnan(y[i]), std::isnan(ref.y[i])) << p.describe() << " key " << key << " at " << i;
        }
      }
    }
  }
}

TEST_P(AttentionKernelTest, LargeScoresDoNotOverflow) {
  // Scores in the hundreds: exp would overflow without the running max.
  Problem p;
  p.q_len = 17;
  p.kv_len = 300;
  p.head_dim = 64;
  p.scale = 30.0f;
  p.causal = true;
  p.fill(71);
  EXPECT_LT(check(p), 1.0) << p.describe();
}

// ----- decode: the key split ------------------------------------------------------------------------------

TEST_P(AttentionKernelTest, KeySplitMatchesUnsplit) {
  double largest = 0.0, largest_vs_unsplit = 0.0;
  for (std::int64_t sq : {1, 2, 4}) {
    for (std::int64_t chunks : {2, 3, 7}) {
      for (bool causal : {false, true}) {
        Problem p;
        p.batch = 2;
        p.q_heads = 4;
        p.kv_heads = 2;
        p.q_len = sq;
        p.kv_len = 1000;
        p.head_dim = 64;
        p.causal = causal;
        p.three_d = chunks == 3;
        p.key_lengths = {1000, 333};
        p.mask_shape = {2, 1, 1, 1000};
        p.threads = 2;
        p.fill(81);
        for (std::int64_t j = 0; j < 400; ++j)
          p.mask[1000 + j] = -kInf;  // batch 1: every key within its length 333 is hidden
        const std::vector<float> unsplit = run_kernel(p);
        p.kv_chunks = chunks;
        std::int64_t used = 0;
        const std::vector<float> split = run_kernel(p, nullptr, &used);
        ASSERT_EQ(used, chunks);
        const Reference ref = reference(p);
        const double err = relative_error(split, ref.y);
        largest = std::max(largest, err);
        ASSERT_LT(err, tolerance(ref)) << p.describe();
        const double diff = relative_error(split, std::vector<double>(unsplit.begin(), unsplit.end()));
        largest_vs_unsplit = std::max(largest_vs_unsplit, diff);
        ASSERT_LT(diff, tolerance(ref)) << p.describe();
        // Batch 1 sees no key (the mask hides 0..399, its length is 333): zeros on both paths.
        const AttentionConfig c = p.config();
        for (std::int64_t h = 0; h < 4; ++h) {
          for (std::int64_t d = 0; d < 64; ++d) ASSERT_EQ(split[c.out.batch + h * c.out.head + d], 0.0f);
        }
      }
    }
  }
  std::printf("key split: largest relative error %.3g vs reference, %.3g vs unsplit\n", largest, largest_vs_unsplit);
}

// ----- a KV cache: causal to the valid length, nothing read past it --------------------------------------

// Sets the keys and values of rows >= key_lengths[b] to NaN: a kernel that read any of them (or spent a
// product on them) would make its rows NaN.
void poison_past_lengths(Problem& p) {
  const AttentionConfig c = p.config();
  for (std::int64_t b = 0; b < p.batch; ++b) {
    for (std::int64_t h = 0; h < p.kv_heads; ++h) {
      for (std::int64_t j = p.key_lengths[b]; j < p.kv_len; ++j) {
        for (std::int64_t d = 0; d < p.head_dim; ++d) {
          p.k[b * c.k.batch + h * c.k.head + j * c.k.row + d] = kNaN;
          p.v[b * c.v.batch + h * c.v.head + j * c.v.row + d] = kNaN;
        }
      }
    }
  }
}

TEST_P(AttentionKernelTest, CausalFromKeyLengthsOverACache) {
  // A cache of capacity Sk holding key_lengths[b] rows; this run's Sq queries are its last Sq positions:
  // query i sees keys j <= i + (L_b - Sq). L_b < Sq leaves the first queries without keys (zeros).
  double largest = 0.0;
  for (std::int64_t sq : {1, 4, 17, 70}) {
    for (std::int64_t tile : {0, 16}) {
      for (bool three_d : {false, true}) {
        Problem p;
        p.batch = 3;
        p.q_heads = 4;
        p.kv_heads = 2;
        p.q_len = sq;
        p.kv_len = 300;
        p.head_dim = 24;
        p.three_d = three_d;
        p.causal = p.causal_from_key_lengths = true;
        p.key_lengths = {300, std::max<std::int64_t>(sq, 137), 5};
        p.q_tile = tile;
        p.k_block = tile ? 32 : 0;
        p.threads = 2;
        p.fill(static_cast<unsigned>(111 + sq));
        poison_past_lengths(p);
        const std::vector<float> y = run_kernel(p);
        const Reference ref = reference(p);
        const double err = relative_error(y, ref.y);
        largest = std::max(largest, err);
        ASSERT_LT(err, tolerance(ref)) << p.describe();
        for (float x : y) ASSERT_FALSE(std::isnan(x)) << p.describe();
      }
    }
  }
  // Not the same as aligning to the tensor's end: with L_b < Sk the two differ.
  Problem p;
  p.q_len = 3;
  p.kv_len = 50;
  p.causal = p.causal_from_key_lengths = true;
  p.key_lengths = {20};
  p.fill(120);
  Problem end_aligned = p;
  end_aligned.causal_from_key_lengths = false;
  EXPECT_GT(relative_error(run_kernel(p), reference(end_aligned).y), 1e-3);
  std::printf("causal to key lengths: largest relative error %.3g\n", largest);
}

TEST_P(AttentionKernelTest, KeySplitDividesTheValidKeysOfACache) {
  // Decode over a 4096-row cache: the split is planned for the capacity (2 chunks: two tasks per thread
  // over 2 batches) but a run divides each batch's valid keys, so 600 valid rows make two chunks of 300
  // instead of one chunk holding them all and one empty chunk. The NaN
  // rows past the lengths prove that nothing past them is read.
  double largest = 0.0;
  for (std::int64_t forced : {0, 3}) {
    for (bool causal : {false, true}) {
      Problem p;
      p.batch = 2;
      p.q_heads = p.kv_heads = 1;
      p.q_len = 1;
      p.kv_len = 4096;
      p.head_dim = 64;
      p.causal = p.causal_from_key_lengths = causal;
      p.key_lengths = {600, 2};
      p.kv_chunks = forced;
      p.threads = 2;
      p.fill(131);
      poison_past_lengths(p);
      std::int64_t chunks = 0;
      const std::vector<float> y = run_kernel(p, nullptr, &chunks);
      EXPECT_EQ(chunks, forced ? 3 : 2) << p.describe();
      const Reference ref = reference(p);
      const double err = relative_error(y, ref.y);
      largest = std::max(largest, err);
      ASSERT_LT(err, tolerance(ref)) << p.describe();
    }
  }
  std::printf("key split over a cache: largest relative error %.3g\n", largest);
}

TEST(AttentionKernel, CausalFromKeyLengthsNeedsCausalAndLengths) {
  AttentionConfig c;
  c.causal_from_key_lengths = true;
  c.causal = true;
  EXPECT_THROW(AttentionKernel{c}, Error);
  c.has_key_lengths = true;
  EXPECT_NO_THROW(AttentionKernel{c});
  c.causal = false;
  EXPECT_THROW(AttentionKernel{c}, Error);
}

TEST(AttentionKernel, KeySplitIsChosenForDecodeWithFewTasks) {
  Problem p;
  p.batch = 1;
  p.q_heads = p.kv_heads = 1;
  p.q_len = 1;
  p.kv_len = 4096;
  p.head_dim = 64;
  p.threads = 2;
  p.fill(91);
  std::int64_t chunks = 0;
  const std::vector<float> y = run_kernel(p, nullptr, &chunks);
  EXPECT_EQ(chunks, 4);  // two tasks per thread
  const Reference ref = reference(p);
  EXPECT_LT(relative_error(y, ref.y), tolerance(ref));
  // Not for one thread, several queries tiles, or enough tasks.
  p.threads = 1;
  EXPECT_EQ(AttentionKernel(p.config()).kv_chunks(), 1);
  p.threads = 2;
  p.q_len = 100;
  EXPECT_EQ(AttentionKernel(p.config()).kv_chunks(), 1);
  p.q_len = 1;
  p.q_heads = p.kv_heads = 4;
  EXPECT_EQ(AttentionKernel(p.config()).kv_chunks(), 1);
  p.q_heads = p.kv_heads = 1;
  p.kv_len = 300;  // too short to share
  EXPECT_EQ(AttentionKernel(p.config()).kv_chunks(), 1);
}

// ----- scratch, configuration -------------------------------------------------------------------------------

TEST(AttentionKernel, ScratchIsTilesNotScores) {
  // Sq = Sk = 4096: the scores would be 4096² floats (64 MiB); the kernel needs a few tiles per thread.
  Problem p;
  p.batch = 1;
  p.q_heads = p.kv_heads = 12;
  p.q_len = p.kv_len = 4096;
  p.head_dim = 64;
  p.threads = 2;
  const AttentionKernel kernel(p.config());
  const std::size_t scores = std::size_t{4096} * 4096 * sizeof(float);
  std::printf("scratch for Sq = Sk = 4096, D = 64, 2 threads: %zu bytes (scores would be %zu)\n",
              kernel.scratch_bytes(), scores);
  EXPECT_LT(kernel.scratch_bytes(), scores / 256);
  EXPECT_EQ(kernel.scratch_bytes(),
            2 * sizeof(float) * static_cast<std::size_t>(attention_detail::tile_scratch_floats(64, 128, 64)));
}

TEST(AttentionKernel, EmptyProblemsWriteNothingOrZeros) {
  for (auto [b, sq, sk] : {std::tuple<std::int64_t, std::int64_t, std::int64_t>{0, 5, 5}, {2, 0, 5}, {2, 5, 0}}) {
    Problem p;
    p.batch = b;
    p.q_len = sq;
    p.kv_len = sk;
    p.fill(101);
    const std::vector<float> y = run_kernel(p);
    for (float x : y) ASSERT_EQ(x, 0.0f);  // Sk = 0: no key, zeros
  }
}

TEST(AttentionKernel, InvalidConfigurationsThrow) {
  const auto expect_invalid = [](AttentionConfig c, const char* what) {
    try {
      AttentionKernel kernel(c);
      ADD_FAILURE() << "no error: " << what;
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument) << what;
      EXPECT_NE(std::string(e.what()).find(what), std::string::npos) << e.what();
    }
  };
  AttentionConfig c;
  c.q_heads = 3;
  c.kv_heads = 2;
  expect_invalid(c, "Hq must be a multiple of Hkv");
  c = AttentionConfig{};
  c.head_dim = 0;
  expect_invalid(c, "Hq, Hkv and D must be >= 1");
  c = AttentionConfig{};
  c.scale = kInf;
  expect_invalid(c, "the scale must be finite");
  c = AttentionConfig{};
  c.kv_len = -1;
  expect_invalid(c, "B, Sq and Sk must be >= 0");
  c = AttentionConfig{};
  c.max_threads = 0;
  expect_invalid(c, "max_threads must be >= 1");
}

// ----- kv_cache_append -------------------------------------------------------------------------------------

TEST(KvCacheAppend, WritesOnlyTheNewRowsInBothLayouts) {
  for (bool head_major : {false, true}) {
    for (int threads : {1, 2}) {
      KvAppendConfig c;
      c.batch = 2;
      c.kv_heads = 3;
      c.head_dim = 5;
      c.new_len = 4;
      c.max_len = 11;
      c.head_major = head_major;
      const std::int64_t past = 6;
      const std::vector<float> src = uniform(static_cast<std::size_t>(2 * 4 * 3 * 5), -1, 1, 141);
      std::vector<float> cache(static_cast<std::size_t>(2 * 3 * 11 * 5), 9.0f);  // sentinel
      tbb::task_arena arena(threads);
      arena.execute([&] { kv_cache_append(c, src.data(), cache.data(), past); });
      for (std::int64_t b = 0; b < 2; ++b) {
        for (std::int64_t h = 0; h < 3; ++h) {
          for (std::int64_t j = 0; j < 11; ++j) {
            for (std::int64_t d = 0; d < 5; ++d) {
              const float got = cache[((b * 3 + h) * 11 + j) * 5 + d];
              if (j < past || j >= past + 4) {
                ASSERT_EQ(got, 9.0f) << "row " << j << " was written";
                continue;
              }
              const std::int64_t s = j - past;
              const std::int64_t from = head_major ? ((b * 3 + h) * 4 + s) * 5 + d : ((b * 4 + s) * 3 + h) * 5 + d;
              ASSERT_EQ(got, src[from]) << b << " " << h << " " << j << " " << d;
            }
          }
        }
      }
    }
  }
}

// ----- the tile product ---------------------------------------------------------------------------------------

TEST_P(AttentionKernelTest, TileProductWithStridesAndRescale) {
  for (std::int64_t m : {1, 5, 6, 7, 64}) {
    for (std::int64_t n : {1, 7, 8, 16, 17, 33, 80}) {
      for (std::int64_t k : {1, 3, 64}) {
        for (bool transposed_a : {false, true}) {
          const std::int64_t a_row = transposed_a ? 1 : k + 3, a_col = transposed_a ? m + 2 : 1;
          const std::vector<float> a = uniform(static_cast<std::size_t>((m + 2) * (k + 3)), -1, 1, 1);
          const std::int64_t ldb = n + 5, ldc = n + 1;
          const std::vector<float> b = uniform(static_cast<std::size_t>(k * ldb), -1, 1, 2);
          const std::vector<float> c0 = uniform(static_cast<std::size_t>(m * ldc), -1, 1, 3);
          const std::vector<float> alpha = uniform(static_cast<std::size_t>(m), 0, 1, 4);
          for (const bool accumulate : {false, true}) {
            std::vector<float> c = c0;
            attention_detail::tile_product(a.data(), a_row, a_col, b.data(), ldb, c.data(), ldc, m, n, k,
                                           accumulate ? alpha.data() : nullptr);
            double worst = 0.0;
            for (std::int64_t i = 0; i < m; ++i) {
              for (std::int64_t j = 0; j < ldc; ++j) {
                double want = c0[i * ldc + j];  // columns past n are untouched
                if (j < n) {
                  want = accumulate ? double(alpha[i]) * c0[i * ldc + j] : 0.0;
                  for (std::int64_t p = 0; p < k; ++p) want += double(a[i * a_row + p * a_col]) * b[p * ldb + j];
                }
                worst = std::max(worst, std::fabs(c[i * ldc + j] - want));
              }
            }
            ASSERT_LT(worst, 1e-5) << m << "x" << n << "x" << k << " transposed " << transposed_a << " accumulate "
                                   << accumulate;
          }
        }
      }
    }
  }
}

TEST_P(AttentionKernelTest, ContextProductWithStridesAndRescale) {
  // ot[dim, qp] (= | alpha[j]·ot[:, j] +) vᵀ·p: row blocks of D past and short of the register tile,
  // column panels of one and two vectors (qp is a multiple of kColumnPad), columns past qp untouched.
  for (std::int64_t dim : {1, 5, 6, 7, 64, 80}) {
    for (std::int64_t qp : {16, 32, 48, 64}) {
      for (std::int64_t kv : {1, 3, 128}) {
        const std::int64_t v_row = dim + 3, ldp = qp + 5, ldo = qp + 16;
        const std::vector<float> v = uniform(static_cast<std::size_t>(kv * v_row), -1, 1, 11);
        const std::vector<float> p = uniform(static_cast<std::size_t>(kv * ldp), 0, 1, 12);
        const std::vector<float> o0 = uniform(static_cast<std::size_t>(dim * ldo), -1, 1, 13);
        const std::vector<float> alpha = uniform(static_cast<std::size_t>(qp), 0, 1, 14);
        for (const bool accumulate : {false, true}) {
          std::vector<float> ot = o0;
          attention_detail::context_product(v.data(), v_row, p.data(), ldp, ot.data(), ldo, dim, qp, kv,
                                            accumulate ? alpha.data() : nullptr);
          double worst = 0.0;
          for (std::int64_t d = 0; d < dim; ++d) {
            for (std::int64_t j = 0; j < ldo; ++j) {
              double want = o0[d * ldo + j];  // columns past qp are untouched
              if (j < qp) {
                want = accumulate ? double(alpha[j]) * o0[d * ldo + j] : 0.0;
                for (std::int64_t key = 0; key < kv; ++key) want += double(v[key * v_row + d]) * p[key * ldp + j];
              }
              worst = std::max(worst, std::fabs(ot[d * ldo + j] - want));
            }
          }
          ASSERT_LT(worst, 1e-4) << dim << "x" << qp << "x" << kv << " accumulate " << accumulate;
        }
      }
    }
  }
}

}  // namespace
}  // namespace quarks::ops
