// Highway implementation of ops/reduction/reduction_kernels.hpp, compiled once per target and dispatched
// at run time (HWY_DYNAMIC_DISPATCH). Vector loops stop at the last full vector; the tail is handled one
// lane at a time (CappedTag<float, 1> in the column loops, plain scalar code in the row loops), because
// Highway 1.0.3 has no LoadN/StoreN.

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "ops/reduction/reduction_kernels.cc"
#include <hwy/foreach_target.h>  // IWYU pragma: keep

#include <hwy/highway.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>

#include "ops/reduction/reduction_kernels.hpp"
#include "quarks/error.hpp"

HWY_BEFORE_NAMESPACE();
namespace quarks::ops {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

using DF = hn::ScalableTag<float>;
using D1 = hn::CappedTag<float, 1>;
using Groups = Reduction::Groups;

constexpr float kInf = std::numeric_limits<float>::infinity();
constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

// Sums accumulate in f32 vectors over a bounded block and add the block's partial sums in double (the
// scheme of ops/normalization): a row sum sees at most kSumBlock / (4 * lanes) additions per lane and
// accumulator before its partial goes to double; a column sum at most kColumnBlock.
constexpr std::size_t kSumBlock = 1024;
constexpr std::int64_t kColumnBlock = 32;
constexpr std::size_t kChunk = static_cast<std::size_t>(Reduction::kColumnChunk);

// ---------------------------------------------------------------------------------------------------
// Walking the groups

// Input offset of output row `o` (an index over the outer kept groups, row-major).
HWY_INLINE std::int64_t KeptOffset(const Groups& g, std::int64_t o) {
  std::int64_t off = 0;
  for (int k = g.kept_rank - 1; k >= 0; --k) {
    off += (o % g.kept_size[k]) * g.kept_stride[k];
    o /= g.kept_size[k];
  }
  return off;
}

// Calls f(offset) for every index of the reduced groups, row-major (an odometer); once with 0 if none.
template <class F>
HWY_INLINE void ForEachReduced(const Groups& g, const F& f) {
  std::int64_t index[Reduction::kMaxRank] = {};
  std::int64_t off = 0;
  for (;;) {
    f(off);
    int k = g.red_rank - 1;
    for (; k >= 0; --k) {
      if (++index[k] < g.red_size[k]) {
        off += g.red_stride[k];
        break;
      }
      index[k] = 0;
      off -= g.red_stride[k] * (g.red_size[k] - 1);
    }
    if (k < 0) return;
  }
}

// ---------------------------------------------------------------------------------------------------
// Rows: reductions of contiguous runs

// Sum of x[0, n) (see kSumBlock). Four accumulators hide the latency of the vector additions.
HWY_INLINE double RunSum(const float* HWY_RESTRICT x, std::size_t n) {
  const DF d;
  const std::size_t lanes = hn::Lanes(d);
  const std::size_t step = 4 * lanes;
  const std::size_t block = std::max(step, kSumBlock - kSumBlock % step);
  const std::size_t vec4_end = n - n % step;
  double total = 0.0;
  std::size_t i = 0;
  while (i < vec4_end) {
    const std::size_t stop = std::min(vec4_end, i + block);
    auto s0 = hn::Zero(d), s1 = hn::Zero(d), s2 = hn::Zero(d), s3 = hn::Zero(d);
    for (; i < stop; i += step) {
      s0 = hn::Add(s0, hn::LoadU(d, x + i));
      s1 = hn::Add(s1, hn::LoadU(d, x + i + lanes));
      s2 = hn::Add(s2, hn::LoadU(d, x + i + 2 * lanes));
      s3 = hn::Add(s3, hn::LoadU(d, x + i + 3 * lanes));
    }
    total += hn::GetLane(hn::SumOfLanes(d, hn::Add(hn::Add(s0, s1), hn::Add(s2, s3))));
  }
  if (i + lanes <= n) {
    auto s = hn::Zero(d);
    for (; i + lanes <= n; i += lanes) s = hn::Add(s, hn::LoadU(d, x + i));
    total += hn::GetLane(hn::SumOfLanes(d, s));
  }
  for (; i < n; ++i) total += x[i];
  return total;
}

// a if it beats b for max (kMax) or min; NaN when either is NaN.
template <bool kMax>
HWY_INLINE float Pick(float a, float b) {
  if (std::isnan(a) || std::isnan(b)) return kNaN;
  return (kMax ? a > b : a < b) ? a : b;
}

// Max (kMax) or min of x[0, n), NaN if any element is NaN; -inf / +inf for n == 0. Max and Min alone may
// drop a NaN (which one survives depends on the target and operand order), so NaNs are tracked in a mask.
template <bool kMax>
HWY_INLINE float RunExtreme(const float* HWY_RESTRICT x, std::size_t n) {
  const DF d;
  const std::size_t lanes = hn::Lanes(d);
  const float init = kMax ? -kInf : kInf;
  float m = init;
  std::size_t i = 0;
  if (n >= lanes) {
    auto m0 = hn::Set(d, init), m1 = hn::Set(d, init);
    auto nan = hn::Ne(m0, m0);  // all false
    for (; i + 2 * lanes <= n; i += 2 * lanes) {
      const auto v0 = hn::LoadU(d, x + i);
      const auto v1 = hn::LoadU(d, x + i + lanes);
      m0 = kMax ? hn::Max(m0, v0) : hn::Min(m0, v0);
      m1 = kMax ? hn::Max(m1, v1) : hn::Min(m1, v1);
      nan = hn::Or(nan, hn::Or(hn::IsNaN(v0), hn::IsNaN(v1)));
    }
    for (; i + lanes <= n; i += lanes) {
      const auto v = hn::LoadU(d, x + i);
      m0 = kMax ? hn::Max(m0, v) : hn::Min(m0, v);
      nan = hn::Or(nan, hn::IsNaN(v));
    }
    if (!hn::AllFalse(d, nan)) return kNaN;
    m = kMax ? hn::GetLane(hn::MaxOfLanes(d, hn::Max(m0, m1))) : hn::GetLane(hn::MinOfLanes(d, hn::Min(m0, m1)));
  }
  for (; i < n; ++i) m = Pick<kMax>(x[i], m);
  return m;
}

template <ReduceOp kOp>
void Rows(const Groups& g, std::int64_t count, const float* x, float* y, std::int64_t begin, std::int64_t end) {
  const auto run = static_cast<std::size_t>(g.run);
  const double scale = kOp == ReduceOp::kMean ? 1.0 / static_cast<double>(count) : 1.0;
  for (std::int64_t o = begin; o < end; ++o) {
    const float* row = x + (g.contiguous ? o * g.run : KeptOffset(g, o));
    if constexpr (kOp == ReduceOp::kSum || kOp == ReduceOp::kMean) {
      double total = 0.0;
      if (g.red_rank == 0) {
        total = RunSum(row, run);
      } else {
        ForEachReduced(g, [&](std::int64_t off) { total += RunSum(row + off, run); });
      }
      // The mean divides the double sum: one rounding, at the end.
      y[o] = static_cast<float>(kOp == ReduceOp::kMean ? total * scale : total);
    } else {
      constexpr bool kMax = kOp == ReduceOp::kMax;
      if (g.red_rank == 0) {
        y[o] = RunExtreme<kMax>(row, run);
      } else {
        float m = kMax ? -kInf : kInf;
        ForEachReduced(g, [&](std::int64_t off) { m = Pick<kMax>(RunExtreme<kMax>(row + off, run), m); });
        y[o] = m;
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------------
// Columns: element-wise reductions of rows into a chunk of accumulators

template <class D>
HWY_INLINE void ColumnAdd(D d, const float* HWY_RESTRICT x, float* HWY_RESTRICT acc, std::size_t begin,
                          std::size_t end) {
  for (std::size_t j = begin; j < end; j += hn::Lanes(d)) {
    hn::StoreU(hn::Add(hn::LoadU(d, acc + j), hn::LoadU(d, x + j)), d, acc + j);
  }
}

// acc = max (kMax) or min of acc and x, keeping a NaN once seen in either.
template <bool kMax, class D>
HWY_INLINE void ColumnExtreme(D d, const float* HWY_RESTRICT x, float* HWY_RESTRICT acc, std::size_t begin,
                              std::size_t end) {
  for (std::size_t j = begin; j < end; j += hn::Lanes(d)) {
    const auto m = hn::LoadU(d, acc + j);
    const auto v = hn::LoadU(d, x + j);
    const auto take = hn::Or(kMax ? hn::Lt(m, v) : hn::Gt(m, v), hn::IsNaN(v));
    hn::StoreU(hn::IfThenElse(take, v, m), d, acc + j);
  }
}

template <ReduceOp kOp>
void Columns(const Groups& g, std::int64_t count, const float* x, float* y, std::int64_t begin, std::int64_t end) {
  const DF d;
  const D1 d1;
  const std::int64_t inner = g.run;
  const std::int64_t chunks = (inner + Reduction::kColumnChunk - 1) / Reduction::kColumnChunk;
  float acc[kChunk];
  double total[kChunk];
  for (std::int64_t item = begin; item < end; ++item) {
    const std::int64_t o = item / chunks;
    const std::int64_t col0 = (item % chunks) * Reduction::kColumnChunk;
    const auto width = static_cast<std::size_t>(std::min(Reduction::kColumnChunk, inner - col0));
    const std::size_t vec_width = width - width % hn::Lanes(d);
    const float* base = x + KeptOffset(g, o) + col0;
    float* out = y + o * inner + col0;
    if constexpr (kOp == ReduceOp::kSum || kOp == ReduceOp::kMean) {
      std::fill_n(acc, width, 0.0f);
      std::fill_n(total, width, 0.0);
      std::int64_t rows = 0;
      ForEachReduced(g, [&](std::int64_t off) {
        ColumnAdd(d, base + off, acc, 0, vec_width);
        ColumnAdd(d1, base + off, acc, vec_width, width);
        if (++rows == kColumnBlock) {
          for (std::size_t j = 0; j < width; ++j) total[j] += acc[j];
          std::fill_n(acc, width, 0.0f);
          rows = 0;
        }
      });
      const double scale = kOp == ReduceOp::kMean ? 1.0 / static_cast<double>(count) : 1.0;
      for (std::size_t j = 0; j < width; ++j) {
        const double t = total[j] + acc[j];
        out[j] = static_cast<float>(kOp == ReduceOp::kMean ? t * scale : t);
      }
    } else {
      constexpr bool kMax = kOp == ReduceOp::kMax;
      std::fill_n(acc, width, kMax ? -kInf : kInf);
      ForEachReduced(g, [&](std::int64_t off) {
        ColumnExtreme<kMax>(d, base + off, acc, 0, vec_width);
        ColumnExtreme<kMax>(d1, base + off, acc, vec_width, width);
      });
      std::copy_n(acc, width, out);
    }
  }
}

void RunRows(ReduceOp op, const Groups& g, std::int64_t count, const float* x, float* y, std::int64_t begin,
             std::int64_t end) {
  switch (op) {
    case ReduceOp::kSum: Rows<ReduceOp::kSum>(g, count, x, y, begin, end); break;
    case ReduceOp::kMean: Rows<ReduceOp::kMean>(g, count, x, y, begin, end); break;
    case ReduceOp::kMax: Rows<ReduceOp::kMax>(g, count, x, y, begin, end); break;
    case ReduceOp::kMin: Rows<ReduceOp::kMin>(g, count, x, y, begin, end); break;
  }
}

void RunColumns(ReduceOp op, const Groups& g, std::int64_t count, const float* x, float* y, std::int64_t begin,
                std::int64_t end) {
  switch (op) {
    case ReduceOp::kSum: Columns<ReduceOp::kSum>(g, count, x, y, begin, end); break;
    case ReduceOp::kMean: Columns<ReduceOp::kMean>(g, count, x, y, begin, end); break;
    case ReduceOp::kMax: Columns<ReduceOp::kMax>(g, count, x, y, begin, end); break;
    case ReduceOp::kMin: Columns<ReduceOp::kMin>(g, count, x, y, begin, end); break;
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace quarks::ops
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace quarks::ops {

HWY_EXPORT(RunRows);
HWY_EXPORT(RunColumns);

namespace {

[[noreturn]] void fail(const std::string& what) { throw Error(ErrorCode::kInvalidArgument, "reduce kernel: " + what); }

}  // namespace

const char* reduce_op_name(ReduceOp op) noexcept {
  switch (op) {
    case ReduceOp::kSum: return "sum";
    case ReduceOp::kMean: return "mean";
    case ReduceOp::kMax: return "max";
    case ReduceOp::kMin: return "min";
  }
  return "unknown";
}

Reduction::Reduction(ReduceOp op, std::span<const std::int64_t> shape, std::span<const int> axes) : op_(op) {
  const int rank = static_cast<int>(shape.size());
  if (rank > kMaxRank) fail("rank " + std::to_string(rank) + " exceeds the maximum of " + std::to_string(kMaxRank));
  bool reduced[kMaxRank] = {};
  for (const int a : axes) {
    if (a < 0 || a >= rank) fail("axis " + std::to_string(a) + " is out of range for rank " + std::to_string(rank));
    if (reduced[a]) fail("axis " + std::to_string(a) + " is given twice");
    reduced[a] = true;
  }
  std::int64_t strides[kMaxRank] = {};
  std::int64_t stride = 1;
  for (int i = rank - 1; i >= 0; --i) {
    if (shape[i] < 0) fail("dimension " + std::to_string(i) + " has negative size " + std::to_string(shape[i]));
    strides[i] = stride;
    stride *= shape[i];
    (reduced[i] ? count_ : out_numel_) *= shape[i];
  }
  if (count_ == 0) {
    if (op == ReduceOp::kMax || op == ReduceOp::kMin) {
      fail(std::string(reduce_op_name(op)) + " over zero elements (a reduced axis has size 0) has no value");
    }
    mode_ = Mode::kFill;
    items_ = out_numel_;
    return;
  }
  if (out_numel_ == 0) {  // nothing to write
    items_ = 0;
    return;
  }

  // Groups: size-1 dims dropped, neighbours of the same kind merged (x is contiguous, so a merged group's
  // stride is that of its innermost dim).
  struct Group {
    std::int64_t size, stride;
    bool reduced;
  };
  Group groups[kMaxRank];
  int n = 0;
  for (int i = 0; i < rank; ++i) {
    if (shape[i] == 1) continue;
    if (n > 0 && groups[n - 1].reduced == reduced[i]) {
      groups[n - 1].size *= shape[i];
      groups[n - 1].stride = strides[i];
    } else {
      groups[n++] = {shape[i], strides[i], reduced[i]};
    }
  }
  if (count_ == 1) {  // only size-1 axes are reduced: the output is the input
    mode_ = Mode::kCopy;
    items_ = out_numel_;
    return;
  }
  // The last group is walked by the vector loops (a reduced run, or the kept columns); the others split into
  // the outer kept groups (which output row) and the reduced ones (the odometer).
  const bool rows = groups[n - 1].reduced;
  g_.run = groups[n - 1].size;
  for (int i = 0; i < n - 1; ++i) {
    if (groups[i].reduced) {
      g_.red_size[g_.red_rank] = groups[i].size;
      g_.red_stride[g_.red_rank++] = groups[i].stride;
    } else {
      g_.kept_size[g_.kept_rank] = groups[i].size;
      g_.kept_stride[g_.kept_rank++] = groups[i].stride;
    }
  }
  if (rows) {
    mode_ = Mode::kRows;
    g_.contiguous = g_.red_rank == 0;  // then there is at most one kept group, of stride run
    items_ = out_numel_;
    item_size_ = count_;
  } else {
    mode_ = Mode::kColumns;
    const std::int64_t chunks = (g_.run + kColumnChunk - 1) / kColumnChunk;
    items_ = out_numel_ / g_.run * chunks;
    item_size_ = count_ * std::min(g_.run, kColumnChunk);
  }
}

void Reduction::run(const float* x, float* y, std::int64_t begin, std::int64_t end) const {
  if (begin < 0 || begin > end || end > items_) {
    fail("work items [" + std::to_string(begin) + ", " + std::to_string(end) + ") are not within [0, " +
         std::to_string(items_) + ")");
  }
  if (begin == end) return;
  switch (mode_) {
    case Mode::kRows: HWY_DYNAMIC_DISPATCH(RunRows)(op_, g_, count_, x, y, begin, end); break;
    case Mode::kColumns: HWY_DYNAMIC_DISPATCH(RunColumns)(op_, g_, count_, x, y, begin, end); break;
    case Mode::kCopy: std::memcpy(y + begin, x + begin, static_cast<std::size_t>(end - begin) * sizeof(float)); break;
    case Mode::kFill:
      std::fill(y + begin, y + end, op_ == ReduceOp::kSum ? 0.0f : std::numeric_limits<float>::quiet_NaN());
      break;
  }
}

}  // namespace quarks::ops
#endif  // HWY_ONCE
