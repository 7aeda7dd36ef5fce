// AttentionKernel (see attention_kernel.hpp): task planning, the parallel loop and the merge of key chunks.
#include "ops/attention/attention_kernel.hpp"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <limits>
#include <string>

#include "ops/attention/attention_simd.hpp"
#include "ops/contract/parallel.hpp"
#include "quarks/error.hpp"

namespace quarks::ops {
namespace {

using attention_detail::padded_columns;

constexpr std::int64_t kDefaultQTile = 64;
constexpr std::int64_t kDefaultKBlock = 128;
// The automatic key split: only for a single tile of at most this many queries (decode steps)...
constexpr std::int64_t kSplitMaxQueries = 16;
// ...and with at least this many keys per chunk, so that a chunk's fixed costs (packing its queries,
// the merge) stay small against its products.
constexpr std::int64_t kMinChunkKeys = 256;
// "No causal limit" for TileArgs::causal_first, far from overflowing when row counts are added.
constexpr std::int64_t kNoCausalLimit = std::numeric_limits<std::int64_t>::max() / 4;

std::int64_t ceil_div(std::int64_t a, std::int64_t b) { return (a + b - 1) / b; }

[[noreturn]] void invalid(const AttentionConfig& c, const std::string& what) {
  throw Error(ErrorCode::kInvalidArgument,
              "attention kernel B=" + std::to_string(c.batch) + " Hq=" + std::to_string(c.q_heads) +
                  " Hkv=" + std::to_string(c.kv_heads) + " Sq=" + std::to_string(c.q_len) +
                  " Sk=" + std::to_string(c.kv_len) + " D=" + std::to_string(c.head_dim) + ": " + what);
}

void validate(const AttentionConfig& c) {
  if (c.batch < 0 || c.q_len < 0 || c.kv_len < 0) invalid(c, "B, Sq and Sk must be >= 0");
  if (c.q_heads < 1 || c.kv_heads < 1 || c.head_dim < 1) invalid(c, "Hq, Hkv and D must be >= 1");
  if (c.q_heads % c.kv_heads != 0) invalid(c, "Hq must be a multiple of Hkv");
  if (!std::isfinite(c.scale)) invalid(c, "the scale must be finite");
  if (c.max_threads < 1) invalid(c, "max_threads must be >= 1");
  if (c.q_tile < 0 || c.k_block < 0 || c.kv_chunks < 0) invalid(c, "q_tile, k_block and kv_chunks must be >= 0");
  if (c.causal_from_key_lengths && !(c.causal && c.has_key_lengths)) {
    invalid(c, "causal_from_key_lengths needs causal and key lengths");
  }
  if (c.window < 0) invalid(c, "window must be >= 1 (0 = no window)");
  if (c.window > 0 && !c.causal) invalid(c, "window needs causal");
}

}  // namespace

std::int64_t first_bad_key_length(const std::int64_t* key_lengths, std::int64_t batch, std::int64_t kv_len) noexcept {
  for (std::int64_t b = 0; b < batch; ++b) {
    if (key_lengths[b] < 0 || key_lengths[b] > kv_len) return b;
  }
  return -1;
}

AttentionKernel::AttentionKernel(const AttentionConfig& config) : config_(config) {
  const AttentionConfig& c = config_;
  validate(c);
  q_tile_ = std::min(c.q_tile > 0 ? c.q_tile : kDefaultQTile, std::max<std::int64_t>(c.q_len, 1));
  k_block_ = std::min(c.k_block > 0 ? c.k_block : kDefaultKBlock, std::max<std::int64_t>(c.kv_len, 1));
  q_tiles_ = ceil_div(c.q_len, q_tile_);
  row_tasks_ = c.batch * c.q_heads * q_tiles_;
  if (c.kv_chunks > 0) {
    chunks_ = std::min(c.kv_chunks, std::max<std::int64_t>(c.kv_len, 1));
  } else if (q_tiles_ == 1 && c.q_len <= kSplitMaxQueries && c.max_threads > 1 && row_tasks_ > 0 &&
             row_tasks_ < 2 * c.max_threads) {
    // Two tasks per thread, as the dense kernels do, when the keys are long enough to share.
    // With a window a task sees at most window + q_tile - 1 keys.
    const std::int64_t keys = c.window > 0 ? std::min(c.kv_len, c.window + q_tile_ - 1) : c.kv_len;
    chunks_ = std::max<std::int64_t>(1, std::min(ceil_div(2 * c.max_threads, row_tasks_), keys / kMinChunkKeys));
  }
  chunk_keys_ = std::max<std::int64_t>(1, ceil_div(c.kv_len, chunks_));
  tasks_ = row_tasks_ * chunks_;
  slots_ = std::min<std::int64_t>(tasks_, c.max_threads);
  slot_floats_ =
      static_cast<std::size_t>(padded_columns(attention_detail::tile_scratch_floats(q_tile_, k_block_, c.head_dim)));
  partial_floats_ = chunks_ > 1 ? static_cast<std::size_t>(padded_columns(q_tile_ * (c.head_dim + 3))) : 0;
  scratch_bytes_ = sizeof(float) * (static_cast<std::size_t>(slots_) * slot_floats_ +
                                    static_cast<std::size_t>(tasks_) * partial_floats_);
}

void AttentionKernel::run(const float* q, const float* k, const float* v, const float* mask,
                          const std::int64_t* key_lengths, float* out, std::byte* scratch,
                          const std::int64_t* key_starts) const {
  const AttentionConfig& c = config_;
  const auto check = [&](const char* what, const std::int64_t* values) {
    const std::int64_t b = first_bad_key_length(values, c.batch, c.kv_len);
    if (b >= 0) {
      invalid(c, std::string(what) + "[" + std::to_string(b) + "] = " + std::to_string(values[b]) + " is outside [0, " +
                     std::to_string(c.kv_len) + "]");
    }
  };
  if (c.has_key_lengths) check("key_lengths", key_lengths);
  if (c.has_key_starts) {
    if (key_starts == nullptr) invalid(c, "has_key_starts is set but no key_starts were given");
    check("key_starts", key_starts);
  }
  if (tasks_ == 0) return;
  float* slots = reinterpret_cast<float*>(scratch);
  float* partials = slots + static_cast<std::size_t>(slots_) * slot_floats_;
  // Each slot is one worker with its own scratch that takes tasks from a shared counter until none are
  // left: dynamic balance (causal tiles differ in cost) with scratch bounded by the arena size.
  std::atomic<std::int64_t> next{0};
  quarks::detail::parallel_tasks(slots_, [&](std::int64_t slot) {
    float* slot_scratch = slots + static_cast<std::size_t>(slot) * slot_floats_;
    for (std::int64_t t = next.fetch_add(1, std::memory_order_relaxed); t < tasks_;
         t = next.fetch_add(1, std::memory_order_relaxed)) {
      run_task(t, q, k, v, mask, key_lengths, key_starts, out, slot_scratch, partials);
    }
  });
  if (chunks_ > 1) {
    for (std::int64_t rt = 0; rt < row_tasks_; ++rt) merge(rt, out, partials);
  }
}

void AttentionKernel::run_task(std::int64_t task, const float* q, const float* k, const float* v, const float* mask,
                               const std::int64_t* key_lengths, const std::int64_t* key_starts, float* out,
                               float* slot_scratch, float* partials) const {
  const AttentionConfig& c = config_;
  const std::int64_t chunk = task % chunks_, row_task = task / chunks_;
  // Tasks of one head are adjacent (its K and V stay in cache); causal tiles go from the costliest (last)
  // to the cheapest so that the final tasks of the run are short.
  const std::int64_t bh = row_task / q_tiles_, ti = row_task % q_tiles_;
  const std::int64_t tile = c.causal ? q_tiles_ - 1 - ti : ti;
  const std::int64_t b = bh / c.q_heads, h = bh % c.q_heads, kvh = h / (c.q_heads / c.kv_heads);
  const std::int64_t i0 = tile * q_tile_;

  attention_detail::TileArgs t;
  t.rows = std::min(q_tile_, c.q_len - i0);
  t.head_dim = c.head_dim;
  t.q = q + b * c.q.batch + h * c.q.head + i0 * c.q.row;
  t.q_row = c.q.row;
  t.k = k + b * c.k.batch + kvh * c.k.head;
  t.k_row = c.k.row;
  t.v = v + b * c.v.batch + kvh * c.v.head;
  t.v_row = c.v.row;
  if (c.has_mask) {
    const auto& ms = c.mask_strides;
    t.mask = mask + b * ms[0] + h * ms[1] + i0 * ms[2];
    t.mask_row = ms[2];
    t.mask_col = ms[3];
  }
  const std::int64_t key_end = c.has_key_lengths ? key_lengths[b] : c.kv_len;
  const std::int64_t causal_end = c.causal_from_key_lengths ? key_end : c.kv_len;
  t.causal_first = c.causal ? i0 + (causal_end - c.q_len) : kNoCausalLimit;
  // The tile's keys start at the row's key start, and with a window at its first row's band (row i's
  // band: band_first + i on) when that is later.
  std::int64_t first_key = c.has_key_starts ? std::min(key_starts[b], key_end) : 0;
  if (c.window > 0) {
    t.band_first = t.causal_first - c.window + 1;
    first_key = std::clamp<std::int64_t>(t.band_first, first_key, key_end);
  }
  std::int64_t chunk_keys = chunk_keys_;
  if (chunks_ > 1 && (c.has_key_lengths || c.has_key_starts || c.window > 0)) {
    // Divide the valid keys (of the band), not the capacity: a cache of 4096 rows holding 1000 spreads
    // those 1000. An automatic split keeps chunks of at least kMinChunkKeys (the chunks past the last
    // are empty).
    const std::int64_t span = key_end - first_key;
    const std::int64_t n = c.kv_chunks > 0 ? chunks_ : std::clamp<std::int64_t>(span / kMinChunkKeys, 1, chunks_);
    chunk_keys = std::max<std::int64_t>(1, ceil_div(span, n));
  }
  t.key_begin = std::min(key_end, first_key + chunk * chunk_keys);
  t.key_end = std::min(key_end, t.key_begin + chunk_keys);
  t.k_block = k_block_;
  t.scale = c.scale;
  t.scratch = slot_scratch;
  if (chunks_ == 1) {
    t.o = out + b * c.out.batch + h * c.out.head + i0 * c.out.row;
    t.o_row = c.out.row;
  } else {
    t.o = partials + static_cast<std::size_t>(task) * partial_floats_;
    t.o_row = c.head_dim;
    t.state = t.o + q_tile_ * c.head_dim;
  }
  attention_detail::attend_tile(t);
}

// Log-sum-exp merge of one row task's chunks: with M the largest chunk max (base 2), the row is
// Σ_c 2^(m_c - M)·O_c / Σ_c 2^(m_c - M)·l_c (weights in double; a handful of terms per row).
void AttentionKernel::merge(std::int64_t row_task, float* out, const float* partials) const {
  const AttentionConfig& c = config_;
  // The tile as run_task numbers it (causal tiles run last first).
  const std::int64_t bh = row_task / q_tiles_, ti = row_task % q_tiles_;
  const std::int64_t tile = c.causal ? q_tiles_ - 1 - ti : ti;
  const std::int64_t b = bh / c.q_heads, h = bh % c.q_heads, i0 = tile * q_tile_;
  const std::int64_t rows = std::min(q_tile_, c.q_len - i0), dim = c.head_dim;
  const float* first = partials + static_cast<std::size_t>(row_task * chunks_) * partial_floats_;
  for (std::int64_t i = 0; i < rows; ++i) {
    float* o = out + b * c.out.batch + h * c.out.head + (i0 + i) * c.out.row;
    double max = -INFINITY;
    bool poisoned = false;
    for (std::int64_t ch = 0; ch < chunks_; ++ch) {
      const float* state = first + ch * partial_floats_ + q_tile_ * dim;
      poisoned = poisoned || state[2 * rows + i] != 0.0f;
      max = std::max(max, static_cast<double>(state[i]));
    }
    if (poisoned || max == -INFINITY) {
      std::fill(o, o + dim, poisoned ? std::numeric_limits<float>::quiet_NaN() : 0.0f);
      continue;
    }
    double sum = 0.0;
    for (std::int64_t ch = 0; ch < chunks_; ++ch) {
      const float* state = first + ch * partial_floats_ + q_tile_ * dim;
      sum += std::exp2(state[i] - max) * state[rows + i];
    }
    std::fill(o, o + dim, 0.0f);
    for (std::int64_t ch = 0; ch < chunks_; ++ch) {
      const float* part = first + ch * partial_floats_;
      const auto w = static_cast<float>(std::exp2(part[q_tile_ * dim + i] - max) / sum);
      if (w == 0.0f) continue;  // a chunk that saw no key of this row
      for (std::int64_t d = 0; d < dim; ++d) o[d] += w * part[i * dim + d];
    }
  }
}

}  // namespace quarks::ops
