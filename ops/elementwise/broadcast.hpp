// NumPy broadcasting as loops of contiguous runs.
//
// The output is viewed as [rows, inner] after collapsing dims; every operand has, per collapsed dim, a
// stride of 0 (broadcast) or its row-major stride, so each run of the innermost dim reads an operand
// either contiguously (stride 1) or as one repeated value (stride 0) — exactly what the kernels take.
#pragma once

#include <algorithm>
#include <cstdint>
#include <initializer_list>

#include "quarks/tensor.hpp"

namespace quarks::ops {

class BroadcastLoop {
 public:
  static constexpr int kMaxOperands = 3;  // where(cond, x, y)

  /// `out` is the broadcast shape of `operands` (the caller has checked that they broadcast).
  BroadcastLoop(const Shape& out, std::initializer_list<Shape> operand_shapes)
      : count_(static_cast<int>(operand_shapes.size())) {
    const Shape* operands = operand_shapes.begin();
    const int count = count_;
    if (count > kMaxOperands) throw Error(ErrorCode::kInternal, "BroadcastLoop: too many operands");
    // Per output dim, each operand's stride (0 where it is broadcast or missing).
    std::int64_t full_dims[Shape::kMaxRank];
    std::int64_t full_strides[kMaxOperands][Shape::kMaxRank];
    const int rank = out.rank();
    for (int k = 0; k < count; ++k) {
      const Shape& s = operands[k];
      std::int64_t stride = 1;
      for (int d = rank - 1; d >= 0; --d) {
        const int sd = d - (rank - s.rank());
        const std::int64_t dim = sd >= 0 ? s[sd] : 1;
        full_strides[k][d] = (dim == 1) ? 0 : stride;
        stride *= dim;
      }
    }
    for (int d = 0; d < rank; ++d) full_dims[d] = out[d];
    // Collapse: drop size-1 dims; merge d into the previous kept dim when every operand's strides are
    // contiguous across the two (or both zero).
    rank_ = 0;
    for (int d = 0; d < rank; ++d) {
      if (full_dims[d] == 1) continue;
      bool merge = rank_ > 0;
      for (int k = 0; k < count && merge; ++k) {
        const std::int64_t prev = strides_[k][rank_ - 1];
        merge = prev == full_strides[k][d] * full_dims[d];
      }
      if (merge) {
        dims_[rank_ - 1] *= full_dims[d];
        for (int k = 0; k < count; ++k) strides_[k][rank_ - 1] = full_strides[k][d];
      } else {
        dims_[rank_] = full_dims[d];
        for (int k = 0; k < count; ++k) strides_[k][rank_] = full_strides[k][d];
        ++rank_;
      }
    }
    if (rank_ == 0) {  // a single element
      dims_[0] = 1;
      for (int k = 0; k < count; ++k) strides_[k][0] = 1;
      rank_ = 1;
    }
    total_ = out.numel();
  }

  std::int64_t total() const noexcept { return total_; }

  /// Calls run(offsets[count], inner_strides[count], y_offset, n) for each contiguous run covering
  /// output elements [begin, end); offsets and strides are in elements, strides are 0 or 1.
  template <class Fn>
  void for_each_run(std::int64_t begin, std::int64_t end, const Fn& run) const {
    const std::int64_t inner = dims_[rank_ - 1];
    std::int64_t pos = begin;
    std::int64_t offsets[kMaxOperands];
    std::int64_t inner_strides[kMaxOperands];
    for (int k = 0; k < count_; ++k) inner_strides[k] = strides_[k][rank_ - 1];
    while (pos < end) {
      const std::int64_t row = pos / inner;
      const std::int64_t col = pos % inner;
      const std::int64_t n = std::min(inner - col, end - pos);
      for (int k = 0; k < count_; ++k) {
        std::int64_t off = col * strides_[k][rank_ - 1];
        std::int64_t r = row;
        for (int d = rank_ - 2; d >= 0; --d) {
          off += (r % dims_[d]) * strides_[k][d];
          r /= dims_[d];
        }
        offsets[k] = off;
      }
      run(offsets, inner_strides, pos, n);
      pos += n;
    }
  }

 private:
  int count_ = 0;
  int rank_ = 0;
  std::int64_t total_ = 0;
  std::int64_t dims_[Shape::kMaxRank] = {};
  std::int64_t strides_[kMaxOperands][Shape::kMaxRank] = {};
};

}  // namespace quarks::ops
