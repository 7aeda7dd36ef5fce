// Fused (flash-style) attention: y = softmax(Q·Kᵀ·scale + mask)·V per (batch, query head), without ever
// materialising the [Sq, Sk] score matrix.
//
// Work is split into tasks of (batch, query head, tile of up to q_tile queries). A task walks the keys in
// blocks of k_block: the block's scores (a [k_block, q_tile] tile, stored transposed so that the softmax
// runs down columns with vertical vector ops, and in base 2 so that it needs exp2 only), an online
// softmax with a running max and sum per query (the accumulator is rescaled when the max grows), and the
// accumulator += P·V_block. Key blocks past the causal limit (or before a window's band) are skipped and
// the causal triangle of a diagonal block is trimmed from both products (the band's edge from P·V). Wide tiles
// accumulate the context transposed, Oᵀ += Vᵀ·P (P and V read in place), and transpose it into the output at the end;
// tiles of a few queries accumulate in the output itself. A task's private scratch is the scaled query tile, the score
// tile, the transposed context and four numbers per query (attention_simd.hpp: tile_scratch_floats).
//
// Both products are Highway register tiles (attention_simd.cc). On this machine's (AVX2) tiles of the
// kernel, [128, 64]·[64, 64] scores and the [64, 128]·[128, 64] transposed context, they ran at 88 and 83
// GFLOP/s against 88 and 86 for single-threaded dnnl_sgemm in the same run (earlier: at or above
// prebuilt oneDNN matmul primitives); see bench/attention_bench, BM_Tile*. oneDNN thus brings no speed
// here, while sgemm allocates a packing buffer per call and primitives need one per tile shape (the
// last key block, key lengths and causal limits make many) and per-call setup. Tile sizes of 32-128
// queries × 64-256 keys measured within noise of each other; 64 × 128 keeps enough tasks for short
// sequences and the tiles in L1/L2.
//
// Decode (a tile of at most 4 queries): the scores are dot products along D, reading each key row once,
// and when there are fewer (batch, head) tasks than the arena can run, the keys are also split into
// chunks, each task producing a partial (max, sum, unnormalised output) per query that a second pass
// merges (log-sum-exp).
//
// Semantics, per query row:
//   - keys at positions < key_starts[b] and >= key_lengths[b] are ignored (key_starts: the left padding
//     of a batch of prompts of different lengths; the causal diagonal stays where key_lengths puts it); causal hides
//     keys j > i + (Sk - Sq) (Sk is the tensor's length, also with key_lengths), or with causal_from_key_lengths keys j
//     > i + (L_b - Sq) where L_b = key_lengths[b] (a KV cache of capacity Sk holding L_b valid rows: no work is spent
//     on the rows past L_b, and the key split divides the L_b valid keys, not Sk);
//   - with a window W (needs causal) a row whose causal diagonal is key d also hides keys j <= d - W: it
//     sees at most W keys, its own included (Hugging Face's sliding window: kv_idx > q_idx - W). A tile
//     starts at its first row's band and the band's edge is trimmed like the causal triangle, so a row
//     costs O(W) keys and never multiplies a key hidden by the band into V; a key split divides the band;
//   - a row that sees no key (key length 0, causal rows before the first key, every mask entry -inf)
//     outputs zeros, never NaN;
//   - a NaN or +inf score (NaN/inf in q or k, NaN or +inf in the mask) makes the row NaN, as softmax does.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

namespace quarks::ops {

/// Element strides of one tensor operand: between batches, between heads, between positions (rows).
/// The head_dim elements of a row are contiguous. The 4-D layout [B, H, S, D] has {H·S·D, S·D, D}; the
/// 3-D layout [B, S, H·D] has {S·H·D, D, H·D}.
struct AttentionStrides {
  std::int64_t batch = 0, head = 0, row = 0;
};

struct AttentionConfig {
  std::int64_t batch = 1;     ///< B, >= 0
  std::int64_t q_heads = 1;   ///< Hq, >= 1
  std::int64_t kv_heads = 1;  ///< Hkv, >= 1, divides Hq; query head h reads kv head h / (Hq / Hkv)
  std::int64_t q_len = 0;     ///< Sq, >= 0
  std::int64_t kv_len = 0;    ///< Sk, >= 0
  std::int64_t head_dim = 1;  ///< D, >= 1
  AttentionStrides q, k, v, out;
  float scale = 1.0f;  ///< finite
  bool causal = false;
  /// Additive f32 mask broadcast to [B, Hq, Sq, Sk]: element strides for b, h, i, j (0 broadcasts).
  bool has_mask = false;
  std::array<std::int64_t, 4> mask_strides{};
  bool has_key_lengths = false;  ///< i64 [B]: keys at positions >= key_lengths[b] are ignored
  bool has_key_starts = false;   ///< i64 [B]: keys at positions < key_starts[b] are ignored
  /// Causal diagonal aligned to key_lengths[b] instead of kv_len (needs causal and has_key_lengths).
  bool causal_from_key_lengths = false;
  /// Causal band (needs causal): a query whose causal diagonal is key d sees keys d - window < j <= d,
  /// at most `window` of them (Hugging Face's sliding window: kv_idx > q_idx - sliding_window). 0 = none.
  std::int64_t window = 0;
  int max_threads = 1;       ///< threads of the caller's arena; decides the task split
  std::int64_t q_tile = 0;   ///< queries per task; 0 = default (64)
  std::int64_t k_block = 0;  ///< keys per block; 0 = default (128)
  /// Key chunks per (batch, head, q-tile) task: 0 = chosen from max_threads (only when a single q tile
  /// covers Sq <= 16 queries and there are fewer tasks than the arena can run); >= 1 forces that many
  /// (tests use it to compare the split path against the unsplit one).
  std::int64_t kv_chunks = 0;
};

/// Index b of the first key length outside [0, kv_len], or -1 when all are valid.
std::int64_t first_bad_key_length(const std::int64_t* key_lengths, std::int64_t batch, std::int64_t kv_len) noexcept;
/// Index b of the first key start outside [0, kv_len], or -1 when all are valid. A start past the
/// row's key length is valid: the row then sees no key and outputs zeros.
inline std::int64_t first_bad_key_start(const std::int64_t* key_starts, std::int64_t batch,
                                        std::int64_t kv_len) noexcept {
  return first_bad_key_length(key_starts, batch, kv_len);
}

/// y = attention(q, k, v, mask, key_lengths). run() is const and safe to call concurrently from several
/// threads as long as each call has its own scratch buffer.
class AttentionKernel {
 public:
  /// Throws Error(kInvalidArgument) for an invalid configuration.
  explicit AttentionKernel(const AttentionConfig& config);

  const AttentionConfig& config() const noexcept { return config_; }
  std::int64_t q_tile() const noexcept { return q_tile_; }
  std::int64_t k_block() const noexcept { return k_block_; }
  /// Key chunks per task actually used (1 = no split). With key lengths, a run divides each batch's
  /// valid keys into at most this many chunks (fewer for short lengths when the split is automatic).
  std::int64_t kv_chunks() const noexcept { return chunks_; }
  /// Bytes of scratch one run() needs, 64-aligned: per worker slot a [D, q_tile] query tile, a
  /// [k_block, q_tile] score tile and the per-query state; with a key split also the partial results.
  std::size_t scratch_bytes() const noexcept { return scratch_bytes_; }

  /// q, k, v, out: as the config's strides describe (out must not overlap the inputs); mask: null unless
  /// has_mask; key_lengths: null unless has_key_lengths; key_starts: null unless has_key_starts. Throws
  /// Error(kInvalidArgument) if a key length or start is outside [0, kv_len] (nothing is written then).
  /// scratch: scratch_bytes() bytes, 64-byte aligned.
  void run(const float* q, const float* k, const float* v, const float* mask, const std::int64_t* key_lengths,
           float* out, std::byte* scratch, const std::int64_t* key_starts = nullptr) const;

 private:
  void run_task(std::int64_t task, const float* q, const float* k, const float* v, const float* mask,
                const std::int64_t* key_lengths, const std::int64_t* key_starts, float* out, float* slot_scratch,
                float* partials) const;
  void merge(std::int64_t row_task, float* out, const float* partials) const;

  AttentionConfig config_;
  std::int64_t q_tile_ = 64, k_block_ = 128, q_tiles_ = 0, chunks_ = 1, chunk_keys_ = 0;
  std::int64_t row_tasks_ = 0, tasks_ = 0, slots_ = 0;
  std::size_t slot_floats_ = 0, partial_floats_ = 0, scratch_bytes_ = 0;
};

}  // namespace quarks::ops
