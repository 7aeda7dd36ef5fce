// Highway kernels of the attention family (attention_simd.cc): one task's tile of queries against a
// range of keys, and the tile products it is made of (exposed for tests and benchmarks).
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>

namespace quarks::ops::attention_detail {

/// Scratch columns are padded to a multiple of this (the widest vector any Highway target uses).
inline constexpr std::int64_t kColumnPad = 16;

inline constexpr std::int64_t padded_columns(std::int64_t n) { return (n + kColumnPad - 1) / kColumnPad * kColumnPad; }

/// Floats of scratch attend_tile needs for tiles of up to q_tile queries, k_block keys and head_dim D.
inline constexpr std::int64_t tile_scratch_floats(std::int64_t q_tile, std::int64_t k_block, std::int64_t head_dim) {
  const std::int64_t columns = padded_columns(q_tile);
  return (columns + kColumnPad) * (2 * head_dim + k_block) + 4 * columns;
}

/// One task: `rows` consecutive queries of one (batch, query head) against keys [key_begin, key_end) of
/// its kv head.
struct TileArgs {
  const float* q = nullptr;  ///< query row 0 of the tile
  std::int64_t q_row = 0;    ///< elements between query rows
  const float* k = nullptr;  ///< key 0 of the kv head (not key_begin)
  std::int64_t k_row = 0;
  const float* v = nullptr;  ///< value 0 of the kv head
  std::int64_t v_row = 0;
  const float* mask = nullptr;  ///< mask entry of (tile row 0, key 0), or null
  std::int64_t mask_row = 0, mask_col = 0;
  float* o = nullptr;  ///< output row 0 of the tile (also the accumulator)
  std::int64_t o_row = 0;
  std::int64_t rows = 0;       ///< queries, 1..q_tile
  std::int64_t head_dim = 1;   ///< D >= 1
  std::int64_t key_begin = 0;  ///< keys visited: [key_begin, key_end), already cut to key_lengths
  std::int64_t key_end = 0;
  /// Causal: tile row i sees keys j <= causal_first + i (may be negative: the row sees nothing). Pass
  /// INT64_MAX / 2 or more for no causal limit.
  std::int64_t causal_first = 0;
  /// Causal band (sliding window): tile row i sees keys j >= band_first + i only; keys before the first
  /// row's band are not visited. The default (hugely negative) is no band.
  std::int64_t band_first = -(std::numeric_limits<std::int64_t>::max() / 4);
  std::int64_t k_block = 128;  ///< keys per block
  float scale = 1.0f;
  float* scratch = nullptr;  ///< tile_scratch_floats(rows rounded up, k_block, head_dim) floats, 64-byte aligned
  /// Null: o is normalised (rows that see no key are 0, poisoned rows NaN). Otherwise a partial result
  /// for a key split: o is left unnormalised and state[i], state[rows + i], state[2 * rows + i] get row i's
  /// running max of the scores in base 2, score·log2(e) (-inf if it saw no key), its sum of 2^(score·log2(e)
  /// - max), and 1 if poisoned (NaN/+inf).
  float* state = nullptr;
};

/// Runs one task (see TileArgs). Single-threaded, no allocation.
void attend_tile(const TileArgs& args);

/// c[m, n] = a[m, k]·b[k, n] (with alpha non-null: c[i, :] = alpha[i]·c[i, :] + ...) with a read through
/// element strides (a_row, a_col) and b, c row-major with row strides ldb, ldc: the register-tiled product
/// attend_tile uses for the scores and for the context of a few query rows, exposed for tests and benchmarks.
void tile_product(const float* a, std::int64_t a_row, std::int64_t a_col, const float* b, std::int64_t ldb, float* c,
                  std::int64_t ldc, std::int64_t m, std::int64_t n, std::int64_t k, const float* alpha);

/// ot[dim, qp] = vᵀ·p (with alpha non-null: ot[:, j] = alpha[j]·ot[:, j] + ...) for v [kv, dim] and p
/// [kv, qp], row-major with row strides v_row, ldp, ldo: the transposed context product attend_tile uses
/// for wide tiles (p the weights, transposed, v the values), exposed for tests and benchmarks. qp must be
/// a multiple of kColumnPad.
void context_product(const float* v, std::int64_t v_row, const float* p, std::int64_t ldp, float* ot, std::int64_t ldo,
                     std::int64_t dim, std::int64_t qp, std::int64_t kv, const float* alpha);

}  // namespace quarks::ops::attention_detail
