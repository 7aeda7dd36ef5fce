// Tests of the causal band (AttentionConfig::window, a sliding window) in ops/attention/attention_kernel.hpp
// against a double-precision reference written from absolute positions: a query whose causal diagonal
// is key d sees keys j with d - window < j <= d (Hugging Face's sliding_window_causal_mask_function,
// kv_idx > q_idx - sliding_window on top of causal), on every Highway target this binary was built for and
// this CPU supports. Prefill (Sq == Sk), decode and append steps over a KV cache (the diagonal ends at
// key_lengths[b]), GQA, both layouts, windows of 1, a few keys, across tile and block edges, and >= Sk
// (bit-identical to plain causal). Also the key starts (AttentionConfig::has_key_starts: a batch's left
// padding) alone and with a band: keys before key_starts[b] are never seen. Error measure: max |y - y_ref|
// / max |y_ref|; measured on this machine (AVX3, AVX2, SSE4, SSSE3, SCALAR): at most 5.2e-7, asserted
// kTol = 2e-6.
#include <gtest/gtest.h>
#include <hwy/targets.h>
#include <tbb/task_arena.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "common/highway_target_test.hpp"
#include "ops/attention/attention_kernel.hpp"
#include "quarks/error.hpp"

namespace quarks::ops {
namespace {

constexpr double kTol = 2e-6;

// One banded problem: B = 2, q [B, Hq, Sq, D] or [B, Sq, Hq·D], k and v [B, Hkv, Sk, D] or [B, Sk, Hkv·D].
struct Band {
  std::int64_t q_heads = 4, kv_heads = 2, q_len = 1, kv_len = 1, head_dim = 16, window = 0;
  std::vector<std::int64_t> lengths;  // empty: prefill-style (diagonal ends at Sk); else a KV cache's lengths
  std::vector<std::int64_t> starts;   // empty: none; else each batch's first visible key (left padding)
  bool three_d = false;
  std::int64_t q_tile = 0, k_block = 0, kv_chunks = 0;
  int threads = 2;
  std::vector<float> q, k, v;

  static constexpr std::int64_t kBatch = 2;

  AttentionConfig config() const {
    AttentionConfig c;
    c.batch = kBatch;
    c.q_heads = q_heads;
    c.kv_heads = kv_heads;
    c.q_len = q_len;
    c.kv_len = kv_len;
    c.head_dim = head_dim;
    const auto layout = [&](std::int64_t heads, std::int64_t len) {
      return three_d ? AttentionStrides{len * heads * head_dim, head_dim, heads * head_dim}
                     : AttentionStrides{heads * len * head_dim, len * head_dim, head_dim};
    };
    c.q = c.out = layout(q_heads, q_len);
    c.k = c.v = layout(kv_heads, kv_len);
    c.scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(head_dim)));
    c.causal = true;
    c.has_key_lengths = c.causal_from_key_lengths = !lengths.empty();
    c.window = window;
    c.has_key_starts = !starts.empty();
    c.max_threads = threads;
    c.q_tile = q_tile;
    c.k_block = k_block;
    c.kv_chunks = kv_chunks;
    return c;
  }

  void fill(unsigned seed) {
    std::mt19937 rng(seed);
    std::uniform_real_distribution<float> dist(-1.5f, 1.5f);
    const auto random = [&](std::int64_t n) {
      std::vector<float> x(static_cast<std::size_t>(n));
      for (float& e : x) e = dist(rng);
      return x;
    };
    q = random(kBatch * q_heads * q_len * head_dim);
    k = random(kBatch * kv_heads * kv_len * head_dim);
    v = random(kBatch * kv_heads * kv_len * head_dim);
  }

  std::string describe() const {
    std::string s = "Hq" + std::to_string(q_heads) + " Hkv" + std::to_string(kv_heads) + " Sq" + std::to_string(q_len) +
                    " Sk" + std::to_string(kv_len) + " D" + std::to_string(head_dim) + " window " +
                    std::to_string(window) + (three_d ? " 3-D" : " 4-D") + " tile " + std::to_string(q_tile) + "/" +
                    std::to_string(k_block) + "/" + std::to_string(kv_chunks) + " threads " + std::to_string(threads);
    for (std::int64_t l : lengths) s += " len " + std::to_string(l);
    for (std::int64_t l : starts) s += " start " + std::to_string(l);
    return s;
  }
};

// Softmax over the keys in the band of each query, in double. Query i of batch b sits at absolute position
// d = i + (L - Sq) with L = key_lengths[b] (or Sk): it sees keys j <= d with d - j < window (all j <= d
// for window 0), j < L and j >= key_starts[b]. A row that sees no key is 0.
std::vector<double> reference(const Band& p) {
  const AttentionConfig c = p.config();
  std::vector<double> y(p.q.size(), 0.0), w(static_cast<std::size_t>(p.kv_len));
  for (std::int64_t b = 0; b < Band::kBatch; ++b) {
    const std::int64_t len = p.lengths.empty() ? p.kv_len : p.lengths[b];
    for (std::int64_t h = 0; h < p.q_heads; ++h) {
      const std::int64_t kvh = h / (p.q_heads / p.kv_heads);
      for (std::int64_t i = 0; i < p.q_len; ++i) {
        const std::int64_t diag = i + len - p.q_len;
        std::int64_t first = p.window > 0 ? std::max<std::int64_t>(0, diag - p.window + 1) : 0;
        if (!p.starts.empty()) first = std::max(first, p.starts[b]);
        const std::int64_t last = std::min(diag, len - 1);
        if (last < first) continue;
        const float* qi = p.q.data() + b * c.q.batch + h * c.q.head + i * c.q.row;
        double max = -INFINITY, sum = 0.0;
        for (std::int64_t j = first; j <= last; ++j) {
          const float* kj = p.k.data() + b * c.k.batch + kvh * c.k.head + j * c.k.row;
          double dot = 0.0;
          for (std::int64_t e = 0; e < p.head_dim; ++e) dot += double(qi[e]) * kj[e];
          w[j] = dot * c.scale;
          max = std::max(max, w[j]);
        }
        double* yi = y.data() + b * c.out.batch + h * c.out.head + i * c.out.row;
        for (std::int64_t j = first; j <= last; ++j) {
          const double e = std::exp(w[j] - max);
          sum += e;
          const float* vj = p.v.data() + b * c.v.batch + kvh * c.v.head + j * c.v.row;
          for (std::int64_t x = 0; x < p.head_dim; ++x) yi[x] += e * vj[x];
        }
        for (std::int64_t x = 0; x < p.head_dim; ++x) yi[x] /= sum;
      }
    }
  }
  return y;
}

std::vector<float> run(const Band& p) {
  const AttentionKernel kernel(p.config());
  std::vector<float> y(p.q.size(), -777.0f);  // every element must be written
  std::vector<float> scratch(kernel.scratch_bytes() / sizeof(float) + 16);
  auto* aligned = reinterpret_cast<std::byte*>((reinterpret_cast<std::uintptr_t>(scratch.data()) + 63) / 64 * 64);
  tbb::task_arena arena(p.threads);
  arena.execute([&] {
    kernel.run(p.q.data(), p.k.data(), p.v.data(), nullptr, p.lengths.empty() ? nullptr : p.lengths.data(), y.data(),
               aligned, p.starts.empty() ? nullptr : p.starts.data());
  });
  return y;
}

// max |y - ref| / max |ref|.
double error(const Band& p) {
  const std::vector<double> want = reference(p);
  const std::vector<float> got = run(p);
  double scale = 0.0, worst = 0.0;
  for (std::size_t i = 0; i < want.size(); ++i) {
    scale = std::max(scale, std::fabs(want[i]));
    worst = std::max(worst, std::isnan(got[i]) ? INFINITY : std::fabs(got[i] - want[i]));
  }
  return scale > 0 ? worst / scale : worst;
}

class AttentionWindowTest : public test::HighwayTargetTest {};
QUARKS_INSTANTIATE_ON_HIGHWAY_TARGETS(AttentionWindowTest);

TEST_P(AttentionWindowTest, PrefillBandAgainstReference) {
  // Sq == Sk across the default 64-query tiles and 128-key blocks and the small 16/32 ones; windows of 1,
  // a few keys, a tile, more than a block, and >= Sk.
  double largest = 0.0;
  unsigned seed = 1;
  for (std::int64_t len : {1, 5, 17, 64, 65, 130, 200}) {
    for (std::int64_t window : {1, 3, 16, 33, 64, 129, 300}) {
      for (int variant = 0; variant < 3; ++variant) {
        Band p;
        p.q_len = p.kv_len = len;
        p.window = window;
        p.head_dim = variant == 2 ? 80 : 16;
        p.three_d = variant == 1;
        p.q_tile = variant == 1 ? 16 : 0;
        p.k_block = variant == 1 ? 32 : 0;
        p.threads = 1 + static_cast<int>(seed % 2);
        p.fill(seed++);
        const double e = error(p);
        largest = std::max(largest, e);
        ASSERT_LT(e, kTol) << p.describe();
      }
    }
  }
  std::printf("[ %s ] prefill band: largest relative error %.3g\n", hwy::TargetName(GetParam()), largest);
}

TEST_P(AttentionWindowTest, CacheDecodeAndAppendBandAgainstReference) {
  // A KV cache of capacity 300 holding 257 and 40 rows; the run's Sq queries are its last Sq positions.
  // Sq 1 and 4 (decode, the narrow path), 17 and 70 (appended chunks, 70 in two tiles); the automatic key
  // split at two threads and forced splits into 3 chunks (which also exercise the merge of several
  // causal tiles' chunks); window 0 is plain causal.
  double largest = 0.0;
  unsigned seed = 100;
  for (std::int64_t sq : {1, 4, 17, 70}) {
    for (std::int64_t window : {0, 1, 7, 16, 100, 256, 300}) {
      for (std::int64_t chunks : {0, 3}) {
        Band p;
        p.q_len = sq;
        p.kv_len = 300;
        p.lengths = {257, 40 + sq};
        p.window = window;
        p.kv_chunks = chunks;
        p.three_d = chunks == 3;
        p.k_block = chunks == 3 ? 32 : 0;
        p.fill(seed++);
        const double e = error(p);
        largest = std::max(largest, e);
        ASSERT_LT(e, kTol) << p.describe();
      }
    }
  }
  std::printf("[ %s ] cache band: largest relative error %.3g\n", hwy::TargetName(GetParam()), largest);
}

TEST_P(AttentionWindowTest, LongCacheDecodeSplitsTheBandNotTheCache) {
  // Decode over 3000 valid keys with a window of 600 at two threads: the automatic split divides the
  // band's keys (two chunks of 300), and the result matches the reference.
  Band p;
  p.q_heads = p.kv_heads = 1;
  p.q_len = 1;
  p.kv_len = 3000;
  p.lengths = {3000, 2000};
  p.window = 600;
  p.head_dim = 32;
  p.fill(7);
  EXPECT_GT(AttentionKernel(p.config()).kv_chunks(), 1);
  EXPECT_LT(error(p), kTol) << p.describe();
}

TEST_P(AttentionWindowTest, WindowOfAtLeastTheKeysIsPlainCausal) {
  // Bit for bit: a window that hides nothing visits the same keys in the same blocks as causal alone.
  for (bool cache : {false, true}) {
    for (std::int64_t sq : {1, 3, 64, 100}) {
      Band p;
      p.q_len = sq;
      p.kv_len = cache ? 150 : sq;
      if (cache) p.lengths = {150, sq + 20};
      p.fill(static_cast<unsigned>(sq));
      const std::vector<float> plain = run(p);
      for (std::int64_t window : {p.kv_len, p.kv_len + 1, std::int64_t{1} << 40}) {
        p.window = window;
        const std::vector<float> banded = run(p);
        EXPECT_EQ(std::memcmp(plain.data(), banded.data(), plain.size() * sizeof(float)), 0)
            << p.describe() << " cache " << cache;
      }
    }
  }
}

TEST_P(AttentionWindowTest, KeysBeforeTheBandCannotPoisonTheRow) {
  // NaN and inf in keys and values that the band hides from a query never reach it: keys before every
  // query's band (never visited), and key 45 of a 40-query step at positions 50..89, which queries 0..4
  // see (they become NaN) and the later ones of the same tile visit but must not see: its score is
  // hidden, and no row multiplies a hidden key's weight of 0 into V (0 · NaN is NaN).
  const float nan = std::numeric_limits<float>::quiet_NaN(), inf = std::numeric_limits<float>::infinity();
  for (std::int64_t sq : {1, 40}) {
    for (std::int64_t q_tile : {0, 8, 4}) {
      Band p;
      p.q_heads = p.kv_heads = 1;
      p.q_len = sq;
      p.kv_len = 90;
      p.lengths = {90, 90};
      p.window = 10;
      p.q_tile = q_tile;
      p.fill(3);
      const std::vector<double> want = reference(p);
      const std::int64_t before = 90 - sq - p.window + 1;  // keys [0, before) are outside every band
      for (std::int64_t j = 0; j < before; ++j) {
        p.k[static_cast<std::size_t>(j * p.head_dim)] = nan;
        p.k[static_cast<std::size_t>(j * p.head_dim + 1)] = inf;
        p.v[static_cast<std::size_t>(j * p.head_dim)] = nan;
      }
      if (sq == 40)
        p.k[static_cast<std::size_t>(45 * p.head_dim)] = p.v[static_cast<std::size_t>(45 * p.head_dim)] = nan;
      const std::vector<float> got = run(p);
      for (std::size_t i = 0; i < got.size(); ++i) {
        const std::int64_t row = static_cast<std::int64_t>(i) / p.head_dim % sq;
        if (sq == 40 && i < got.size() / 2 && row < 5) {
          EXPECT_TRUE(std::isnan(got[i])) << p.describe() << " row " << row;
        } else {
          EXPECT_NEAR(got[i], want[i], kTol) << p.describe() << " element " << i;
        }
      }
    }
  }
}

TEST_P(AttentionWindowTest, KeyStartsSkipTheLeftPadding) {
  // Prefill of a left-padded batch (Sq == Sk; starts 0 and a few, a tile, more than a block, Sk — a row
  // of padding only) and decode / append steps over a cache whose rows start late; with and without a
  // band, forced key splits, small tiles. Padded query rows see nothing: zeros.
  double largest = 0.0;
  unsigned seed = 500;
  for (std::int64_t len : {5, 40, 130}) {
    for (std::int64_t start : {0, 1, 4, 33, 129}) {
      for (std::int64_t window : {0, 3, 16}) {
        for (int variant = 0; variant < 3; ++variant) {
          Band p;
          p.q_len = p.kv_len = len;
          p.starts = {std::min(start, len), len / 2};
          p.window = window;
          p.three_d = variant == 1;
          p.q_tile = variant == 1 ? 16 : 0;
          p.k_block = variant == 1 ? 32 : 0;
          p.kv_chunks = variant == 2 ? 3 : 0;
          p.fill(seed++);
          const double e = error(p);
          largest = std::max(largest, e);
          ASSERT_LT(e, kTol) << p.describe();
        }
      }
    }
  }
  for (std::int64_t sq : {1, 4, 17}) {
    for (std::int64_t window : {0, 7, 100}) {
      for (std::int64_t chunks : {0, 3}) {
        Band p;
        p.q_len = sq;
        p.kv_len = 700;
        p.lengths = {650, 40 + sq};
        p.starts = {300, 39};
        p.window = window;
        p.kv_chunks = chunks;
        p.fill(seed++);
        const double e = error(p);
        largest = std::max(largest, e);
        ASSERT_LT(e, kTol) << p.describe();
      }
    }
  }
  std::printf("[ %s ] key starts: largest relative error %.3g\n", hwy::TargetName(GetParam()), largest);
}

TEST_P(AttentionWindowTest, PaddingKeysCannotPoisonTheRow) {
  // NaN and inf in the keys and values before a row's start (what padding tokens leave in a cache) never
  // reach its output.
  const float nan = std::numeric_limits<float>::quiet_NaN(), inf = std::numeric_limits<float>::infinity();
  for (std::int64_t sq : {1, 40}) {
    Band p;
    p.q_heads = p.kv_heads = 1;
    p.q_len = sq;
    p.kv_len = 60;
    p.lengths = {60, 60};
    p.starts = {25, 0};
    p.fill(9);
    const std::vector<double> want = reference(p);
    for (std::int64_t j = 0; j < 25; ++j) {
      p.k[static_cast<std::size_t>(j * p.head_dim)] = nan;
      p.k[static_cast<std::size_t>(j * p.head_dim + 1)] = inf;
      p.v[static_cast<std::size_t>(j * p.head_dim)] = nan;
    }
    const std::vector<float> got = run(p);
    for (std::size_t i = 0; i < got.size() / 2; ++i) EXPECT_NEAR(got[i], want[i], kTol) << p.describe() << " " << i;
  }
}

TEST(AttentionWindowKernel, KeyStartsOutsideTheKeysThrowAndWriteNothing) {
  for (std::int64_t bad : {-1, 9}) {
    Band p;
    p.q_len = p.kv_len = 8;
    p.starts = {0, bad};
    p.fill(1);
    const AttentionKernel kernel(p.config());
    std::vector<float> y(p.q.size(), 5.0f), scratch(kernel.scratch_bytes() / 4 + 16);
    auto* aligned = reinterpret_cast<std::byte*>((reinterpret_cast<std::uintptr_t>(scratch.data()) + 63) / 64 * 64);
    try {
      kernel.run(p.q.data(), p.k.data(), p.v.data(), nullptr, nullptr, y.data(), aligned, p.starts.data());
      ADD_FAILURE() << "no error for key start " << bad;
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
      EXPECT_NE(std::string(e.what()).find("key_starts[1] = " + std::to_string(bad) + " is outside [0, 8]"),
                std::string::npos)
          << e.what();
    }
    EXPECT_TRUE(std::all_of(y.begin(), y.end(), [](float x) { return x == 5.0f; }));
  }
}

TEST(AttentionWindowKernel, InvalidWindows) {
  AttentionConfig c;
  c.q_len = c.kv_len = 4;
  c.window = 2;
  EXPECT_THROW(AttentionKernel{c}, Error);  // not causal
  try {
    AttentionKernel kernel(c);
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
    EXPECT_NE(std::string(e.what()).find("window needs causal"), std::string::npos) << e.what();
  }
  c.causal = true;
  c.window = -1;
  try {
    AttentionKernel kernel(c);
    ADD_FAILURE() << "window -1 was accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
    EXPECT_NE(std::string(e.what()).find("window must be >= 1"), std::string::npos) << e.what();
  }
  c.window = 1;
  EXPECT_NO_THROW(AttentionKernel{c});
}

}  // namespace
}  // namespace quarks::ops
