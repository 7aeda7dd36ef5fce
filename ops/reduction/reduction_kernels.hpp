// Kernels of the reduction family: sum, mean, max and min of an f32 tensor over any set of its axes.
//
// A Reduction is planned once for a shape and a set of axes (size-1 dims dropped, neighbouring reduced or
// kept dims merged) and then run on any number of tensors of that shape. It picks one of:
//   - rows: the reduced axes end the shape, so every output element reduces contiguous runs (for the last
//     axis alone, one run per output element: the fast path). Highway vectors over each run;
//   - columns: the last axis is kept, so the output elements of one row reduce the same input rows
//     element by element. Highway vectors across the row, in chunks of kColumnChunk columns whose
//     accumulators stay in L1;
//   - copy: only size-1 axes are reduced (y = x); fill: an axis of size 0 is reduced (sum 0, mean NaN).
//
// Contract:
//   - run() is single-threaded over the work items [begin, end) it is given and writes exactly the output
//     elements of those items; items() and item_size() let the caller split the work across threads;
//   - x and y must not overlap; no alignment is required; no heap allocation in run();
//   - bad arguments (rank above Shape::kMaxRank, negative dims, an axis out of range or given twice) throw
//     Error(kInvalidArgument), and so does max or min over zero elements (they have no identity).
//
// Accuracy and special values: sums accumulate in f32 vectors over bounded blocks (at most kSumBlock
// elements of a run, or kColumnBlock rows of a column) and add the block results in double, so long axes do
// not degrade them; the mean is that double sum divided by the count. A NaN anywhere in a reduced set makes
// its output NaN for every op (max and min propagate NaN, unlike std::max); inf - inf gives NaN in sums as
// IEEE says. A sum of zero elements is 0 and a mean of zero elements is NaN (0 / 0). A sum whose f32 block
// partial overflows gives inf even if the exact total would fit (only near FLT_MAX); a sum of several zeros
// is +0, whatever their signs.
#pragma once

#include <cstdint>
#include <span>

namespace quarks::ops {

enum class ReduceOp { kSum, kMean, kMax, kMin };

/// "sum", "mean", "max", "min".
const char* reduce_op_name(ReduceOp op) noexcept;

/// A reduction planned for one input shape; see the file comment.
class Reduction {
 public:
  static constexpr int kMaxRank = 8;  // Shape::kMaxRank
  static constexpr std::int64_t kColumnChunk = 512;

  /// Plans op(x) over `axes` of a row-major tensor of shape `shape`. Axes are in [0, rank), distinct, in any
  /// order; an empty list reduces nothing (each output element is its input element).
  Reduction(ReduceOp op, std::span<const std::int64_t> shape, std::span<const int> axes);

  enum class Mode { kRows, kColumns, kCopy, kFill };
  Mode mode() const noexcept { return mode_; }
  /// Number of output elements (the product of the kept dims).
  std::int64_t output_size() const noexcept { return out_numel_; }
  /// Number of input elements that each output element reduces.
  std::int64_t reduced_count() const noexcept { return count_; }
  /// Units of work: output elements (rows, copy, fill) or (output row, column chunk) pairs (columns).
  std::int64_t items() const noexcept { return items_; }
  /// Input elements read per work item (at least 1), for choosing a grain.
  std::int64_t item_size() const noexcept { return item_size_; }

  /// Writes the output elements of work items [begin, end); requires 0 <= begin <= end <= items().
  void run(const float* x, float* y, std::int64_t begin, std::int64_t end) const;
  void run(const float* x, float* y) const { run(x, y, 0, items_); }

  /// The plan, for the per-target implementations.
  struct Groups {
    int kept_rank = 0;  // outer kept groups, outermost first
    std::int64_t kept_size[kMaxRank] = {}, kept_stride[kMaxRank] = {};
    int red_rank = 0;  // reduced groups walked by an odometer (rows: all but the trailing run)
    std::int64_t red_size[kMaxRank] = {}, red_stride[kMaxRank] = {};
    std::int64_t run = 1;     // rows: length of the trailing reduced run; columns: length of the kept last axis
    bool contiguous = false;  // rows: the output elements reduce consecutive runs of x
  };

 private:
  ReduceOp op_;
  Mode mode_ = Mode::kCopy;
  std::int64_t out_numel_ = 1, count_ = 1, items_ = 0, item_size_ = 1;
  Groups g_;
};

/// One-shot helper: op over `axes` of x (shape `shape`) into y, single-threaded.
inline void reduce(ReduceOp op, const float* x, std::span<const std::int64_t> shape, std::span<const int> axes,
                   float* y) {
  Reduction(op, shape, axes).run(x, y);
}

}  // namespace quarks::ops
