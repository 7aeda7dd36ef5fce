// Rotary position embedding (RoPE), rotate-half form as in HF Llama: for a head row x of D elements at
// position p and d < D/2, with f_d = theta^(-2d/D) and a = p·f_d,
//   y[d] = x[d]·cos a − x[d + D/2]·sin a,   y[d + D/2] = x[d + D/2]·cos a + x[d]·sin a.
//
// Accuracy: the angles are formed and reduced modulo 2π in double, and their cos/sin evaluated in double
// (Highway's f64 Sin/Cos, 3 ulp), then rounded to f32: the tables are within an f32 rounding of the exact
// values for every position below kRopeMaxPosition (at 2^31 the angle itself is still exact to ~2^-22 rad).
// An f32 angle, as a plain f32 implementation computes it, is already off by ~0.004 rad at position 10^5.
//
// The tables (cos rows, then sin rows, D/2 floats per position) are computed once per run (runtime
// offset) or once at compile time (constant offset), and shared by every batch and head. With per-token
// positions (Hugging Face's position_ids [B, S]: a batch of left-padded prompts) the table has one row
// per token of every batch, made each run.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace quarks::ops {

/// Positions rope accepts: [0, kRopeMaxPosition).
inline constexpr std::int64_t kRopeMaxPosition = std::int64_t{1} << 31;

/// f_d = theta^(-2d/D) for d < D/2, in double.
std::vector<double> rope_inverse_frequencies(std::int64_t head_dim, double theta);

/// For the `count` positions first, first + 1, ...: cos[i·half + d] = cos((first + i)·f_d) and sin likewise.
/// Single-threaded; positions must lie in [0, kRopeMaxPosition).
void rope_tables(const double* inv_freq, std::int64_t half, std::int64_t first, std::int64_t count, float* cos,
                 float* sin);

/// Rotates `rows` head rows of 2·half floats, row r read at x + r·x_row and written at y + r·y_row (y may
/// be x: in place), with the cos/sin row at cos + r·cs_row and sin + r·cs_row (cs_row 0: one position
/// for every row). Single-threaded.
void rope_rotate(const float* x, std::int64_t x_row, float* y, std::int64_t y_row, std::int64_t rows, std::int64_t half,
                 const float* cos, const float* sin, std::int64_t cs_row);

struct RopeConfig {
  std::int64_t batch = 0, heads = 1, seq = 0, head_dim = 2;  ///< B, H, S >= 0 (H >= 1), D even >= 2
  bool head_major = false;                                   ///< x is [B, H, S, D]; else [B, S, H·D]
  double theta = 10000.0;                                    ///< finite, > 0
  std::vector<double> inv_freq;  ///< head_dim/2 inverse frequencies (finite, >= 0) replacing theta's; may be empty
};

/// The op over one tensor: its positions' table and the rotation, split over the calling TBB arena.
class RopeKernel {
 public:
  /// Throws Error(kInvalidArgument) for an invalid configuration.
  explicit RopeKernel(const RopeConfig& config);

  const RopeConfig& config() const noexcept { return config_; }
  /// Floats of the table of one run: seq·head_dim (cos rows then sin rows).
  std::int64_t table_floats() const noexcept { return config_.seq * config_.head_dim; }
  /// Whether positions first .. first + seq - 1 all lie in [0, kRopeMaxPosition).
  bool positions_valid(std::int64_t first) const noexcept {
    return first >= 0 && first <= kRopeMaxPosition - config_.seq;
  }
  /// Fills `table` (table_floats() floats) for positions first .. first + seq - 1 (positions_valid).
  void fill_table(std::int64_t first, float* table) const;
  /// Floats of a per-token table: batch·seq·head_dim.
  std::int64_t positions_table_floats() const noexcept { return config_.batch * config_.seq * config_.head_dim; }
  /// Index (b·seq + s) of the first of the batch·seq positions outside [0, kRopeMaxPosition), or -1.
  std::int64_t first_bad_position(const std::int64_t* positions) const noexcept;
  /// Fills `table` (positions_table_floats() floats) for token (b, s) at positions[b·seq + s] (all valid).
  void fill_positions_table(const std::int64_t* positions, float* table) const;
  /// y = rope(x) using the table of this run's positions (per_token: made by fill_positions_table, else
  /// by fill_table); y may be x (in place), else must not overlap it.
  void run(const float* x, float* y, const float* table, bool per_token = false) const;

 private:
  RopeConfig config_;
  std::vector<double> inv_freq_;
};

}  // namespace quarks::ops
