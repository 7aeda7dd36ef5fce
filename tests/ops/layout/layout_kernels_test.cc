// Tests of ops/layout/layout_kernels.hpp against naive per-element loops. Values are distinct per element,
// and whole destination buffers (including the gaps between strided elements, which must keep their
// sentinel) are compared exactly.
#include "ops/layout/layout_kernels.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <numeric>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "quarks/error.hpp"

namespace quarks::ops {
namespace {

using Dims = std::vector<std::int64_t>;

std::int64_t numel(const Dims& shape) {
  return std::accumulate(shape.begin(), shape.end(), std::int64_t{1}, std::multiplies<>());
}

std::string to_string(const Dims& d) {
  std::string s = "[";
  for (std::size_t i = 0; i < d.size(); ++i) s += (i ? "," : "") + std::to_string(d[i]);
  return s + "]";
}

// The reference: visits every index of `shape` in row-major order.
template <class T>
void naive_copy(const T* src, const Dims& shape, const Dims& src_strides, T* dst, const Dims& dst_strides) {
  const std::int64_t n = numel(shape);
  for (std::int64_t flat = 0; flat < n; ++flat) {
    std::int64_t rest = flat;
    std::int64_t s = 0;
    std::int64_t d = 0;
    for (std::size_t k = shape.size(); k-- > 0;) {
      const std::int64_t i = rest % shape[k];
      rest /= shape[k];
      s += i * src_strides[k];
      d += i * dst_strides[k];
    }
    dst[d] = src[s];
  }
}

// A strided view of `shape` inside a buffer: axes laid out in a random memory order, each with a random
// step (1..3), some reversed (negative stride), and random padding between axes.
struct View {
  Dims strides;
  std::int64_t origin = 0;  // buffer index of element [0, ..., 0]
  std::int64_t buffer_size = 1;
};

View random_view(const Dims& shape, std::mt19937& rng, bool allow_negative) {
  const std::size_t rank = shape.size();
  std::vector<std::size_t> order(rank);
  std::iota(order.begin(), order.end(), 0);
  std::shuffle(order.begin(), order.end(), rng);
  View v;
  v.strides.assign(rank, 0);
  std::int64_t extent = 1;  // elements spanned by the axes placed so far
  for (const std::size_t axis : order) {
    const std::int64_t step = std::uniform_int_distribution<std::int64_t>(1, 3)(rng);
    const std::int64_t pad = std::uniform_int_distribution<std::int64_t>(0, 2)(rng);
    const bool reversed = allow_negative && std::uniform_int_distribution<int>(0, 3)(rng) == 0;
    const std::int64_t stride = extent * step;
    v.strides[axis] = reversed ? -stride : stride;
    if (reversed) v.origin += (shape[axis] - 1) * stride;
    extent = std::max<std::int64_t>(1, shape[axis]) * stride + pad;
  }
  v.buffer_size = extent;
  return v;
}

Dims contiguous_strides(const Dims& shape) {
  Dims strides(shape.size());
  std::int64_t s = 1;
  for (std::size_t k = shape.size(); k-- > 0;) {
    strides[k] = s;
    s *= shape[k];
  }
  return strides;
}

template <class T>
std::vector<T> distinct_values(std::int64_t n, T first) {
  std::vector<T> v(static_cast<std::size_t>(n));
  for (std::size_t i = 0; i < v.size(); ++i) v[i] = static_cast<T>(first + static_cast<T>(i * 7 + 1));
  return v;
}

// Random shapes of the given rank with mostly small dims, some 1s, and occasionally an awkward larger one
// (15, 16, 17, 33: around the tile size), at most `max_numel` elements in all.
Dims random_shape(std::mt19937& rng, std::size_t rank, std::int64_t max_numel = 20000) {
  const std::int64_t awkward[] = {15, 16, 17, 33};
  for (;;) {
    Dims shape(rank);
    for (auto& d : shape) {
      const int pick = std::uniform_int_distribution<int>(0, 9)(rng);
      d = pick == 0   ? 1
          : pick == 1 ? awkward[std::uniform_int_distribution<int>(0, 3)(rng)]
                      : std::uniform_int_distribution<std::int64_t>(2, 6)(rng);
    }
    if (numel(shape) <= max_numel) return shape;
  }
}

template <class T>
void check_random_strided_copies(unsigned seed) {
  std::mt19937 rng(seed);
  for (int trial = 0; trial < 150; ++trial) {
    // Views multiply the footprint by up to 4 per axis (step 3, padding): keep the buffers small.
    const Dims shape = random_shape(rng, 1 + trial % 6, 3000);
    const View src = random_view(shape, rng, /*allow_negative=*/true);
    const View dst = trial % 3 == 0 ? View{contiguous_strides(shape), 0, numel(shape)}
                                    : random_view(shape, rng, /*allow_negative=*/true);
    SCOPED_TRACE("shape " + to_string(shape) + " src strides " + to_string(src.strides) + " dst strides " +
                 to_string(dst.strides));
    const std::vector<T> in = distinct_values<T>(src.buffer_size, T{3});
    std::vector<T> expected(static_cast<std::size_t>(dst.buffer_size), T{0});
    std::vector<T> out = expected;
    naive_copy(in.data() + src.origin, shape, src.strides, expected.data() + dst.origin, dst.strides);
    strided_copy(in.data() + src.origin, shape, src.strides, out.data() + dst.origin, dst.strides, sizeof(T));
    ASSERT_EQ(out, expected);
  }
}

TEST(StridedCopy, RandomViewsEveryElementSize) {
  check_random_strided_copies<std::uint8_t>(1);
  check_random_strided_copies<std::uint16_t>(2);
  check_random_strided_copies<float>(3);
  check_random_strided_copies<std::int64_t>(4);
}

TEST(StridedCopy, SliceWithStepsAndReversal) {
  // x[1:6:2, ::-1, 2:] of a [7, 5, 33] tensor, as the slice op would issue it.
  const Dims shape_in = {7, 5, 33};
  const std::vector<float> x = distinct_values<float>(numel(shape_in), 0.0f);
  const Dims out_shape = {3, 5, 31};
  const Dims in_strides = contiguous_strides(shape_in);
  const Dims src_strides = {2 * in_strides[0], -in_strides[1], in_strides[2]};
  const float* origin = x.data() + 1 * in_strides[0] + 4 * in_strides[1] + 2;
  std::vector<float> y(static_cast<std::size_t>(numel(out_shape)));
  strided_copy(origin, out_shape, src_strides, y.data(), contiguous_strides(out_shape));
  for (std::int64_t i = 0; i < 3; ++i) {
    for (std::int64_t j = 0; j < 5; ++j) {
      for (std::int64_t k = 0; k < 31; ++k) {
        const float want = x[static_cast<std::size_t>((1 + 2 * i) * 165 + (4 - j) * 33 + (2 + k))];
        ASSERT_EQ(y[static_cast<std::size_t>((i * 5 + j) * 31 + k)], want) << i << "," << j << "," << k;
      }
    }
  }
}

TEST(StridedCopy, ConcatAndSplitThroughOffsetViews) {
  // Concatenate [2, a_i, 17] inputs along axis 1, then split the result back.
  const std::vector<std::int64_t> widths = {3, 1, 16, 33};
  const std::int64_t total = std::accumulate(widths.begin(), widths.end(), std::int64_t{0});
  const Dims out_shape = {2, total, 17};
  const Dims out_strides = contiguous_strides(out_shape);
  std::vector<std::vector<float>> inputs;
  std::vector<float> out(static_cast<std::size_t>(numel(out_shape)), -1.0f);
  std::int64_t offset = 0;
  for (std::size_t i = 0; i < widths.size(); ++i) {
    const Dims shape = {2, widths[i], 17};
    inputs.push_back(distinct_values<float>(numel(shape), 1000.0f * static_cast<float>(i)));
    strided_copy(inputs[i].data(), shape, contiguous_strides(shape), out.data() + offset * out_strides[1], out_strides);
    offset += widths[i];
  }
  std::vector<float> expected;
  for (std::int64_t b = 0; b < 2; ++b) {
    for (std::size_t i = 0; i < widths.size(); ++i) {
      const auto begin = inputs[i].begin() + b * widths[i] * 17;
      expected.insert(expected.end(), begin, begin + widths[i] * 17);
    }
  }
  ASSERT_EQ(out, expected);

  offset = 0;
  for (std::size_t i = 0; i < widths.size(); ++i) {
    const Dims shape = {2, widths[i], 17};
    std::vector<float> part(static_cast<std::size_t>(numel(shape)));
    strided_copy(out.data() + offset * out_strides[1], shape, out_strides, part.data(), contiguous_strides(shape));
    EXPECT_EQ(part, inputs[i]) << "split part " << i;
    offset += widths[i];
  }
}

TEST(StridedCopy, BroadcastSourceAndLongRuns) {
  // A zero source stride repeats a row (expand); then one contiguous run of 100003 elements.
  const std::vector<float> row = distinct_values<float>(1000, 0.5f);
  std::vector<float> y(3 * 1000);
  strided_copy(row.data(), Dims{3, 1000}, Dims{0, 1}, y.data(), Dims{1000, 1});
  for (std::size_t i = 0; i < y.size(); ++i) ASSERT_EQ(y[i], row[i % 1000]);

  const std::vector<float> big = distinct_values<float>(100003, 0.0f);
  std::vector<float> copy(big.size());
  strided_copy(big.data(), Dims{100003}, Dims{1}, copy.data(), Dims{1});
  EXPECT_EQ(copy, big);
}

TEST(StridedCopy, EmptyAndRankZero) {
  const float src = 42.0f;
  float dst = 0.0f;
  strided_copy(&src, Dims{}, Dims{}, &dst, Dims{});
  EXPECT_EQ(dst, 42.0f);
  std::vector<float> out(4, -1.0f);
  strided_copy(&src, Dims{4, 0, 3}, Dims{0, 0, 0}, out.data(), Dims{1, 1, 1});  // a zero dim: nothing
  EXPECT_EQ(out, std::vector<float>(4, -1.0f));
}

TEST(StridedCopy, RejectsBadArguments) {
  float v = 0.0f;
  EXPECT_THROW(strided_copy(&v, Dims{1, 1}, Dims{1}, &v, Dims{1, 1}), Error);
  EXPECT_THROW(strided_copy(&v, Dims{-1}, Dims{1}, &v, Dims{1}), Error);
  EXPECT_THROW(strided_copy(&v, Dims(9, 1), Dims(9, 1), &v, Dims(9, 1)), Error);
  EXPECT_THROW(strided_copy(&v, Dims{1}, Dims{1}, &v, Dims{1}, 3), Error);
}

// ----- transpose -------------------------------------------------------------------------------------

template <class T>
std::vector<T> naive_transpose(const std::vector<T>& x, const Dims& shape, const std::vector<int>& perm) {
  Dims out_shape(shape.size());
  Dims src_strides(shape.size());
  const Dims in_strides = contiguous_strides(shape);
  for (std::size_t i = 0; i < perm.size(); ++i) {
    out_shape[i] = shape[static_cast<std::size_t>(perm[i])];
    src_strides[i] = in_strides[static_cast<std::size_t>(perm[i])];
  }
  std::vector<T> y(x.size());
  naive_copy(x.data(), out_shape, src_strides, y.data(), contiguous_strides(out_shape));
  return y;
}

template <class T>
void check_transpose(const Dims& shape, const std::vector<int>& perm) {
  const std::vector<T> x = distinct_values<T>(numel(shape), T{1});
  std::vector<T> y(x.size(), T{0});
  transpose(x.data(), shape, perm, y.data(), sizeof(T));
  ASSERT_EQ(y, naive_transpose(x, shape, perm)) << "shape " << to_string(shape) << " elem " << sizeof(T);
}

TEST(Transpose, RandomPermutationsRanks1To6) {
  std::mt19937 rng(5);
  for (int trial = 0; trial < 240; ++trial) {
    const std::size_t rank = 1 + static_cast<std::size_t>(trial % 6);
    const Dims shape = random_shape(rng, rank);
    std::vector<int> perm(rank);
    std::iota(perm.begin(), perm.end(), 0);
    std::shuffle(perm.begin(), perm.end(), rng);
    std::string p;
    for (const int a : perm) p += std::to_string(a);
    SCOPED_TRACE("perm " + p);
    switch (trial % 4) {
      case 0: check_transpose<std::uint8_t>(shape, perm); break;
      case 1: check_transpose<std::uint16_t>(shape, perm); break;
      case 2: check_transpose<float>(shape, perm); break;
      default: check_transpose<std::int64_t>(shape, perm); break;
    }
  }
}

TEST(Transpose, TypicalAttentionAndMatrixShapes) {
  check_transpose<float>({2, 17, 12, 64}, {0, 2, 1, 3});  // [b,s,h,d] -> [b,h,s,d]: runs of d
  check_transpose<float>({2, 12, 17, 64}, {0, 1, 3, 2});  // K^T: the last axis moves
  check_transpose<float>({1000, 1003}, {1, 0});           // several tiles plus edges
  check_transpose<float>({33, 17}, {1, 0});
  check_transpose<float>({1, 100003}, {1, 0});  // size-1 axes: a plain copy
  check_transpose<float>({5, 1, 3}, {2, 1, 0});
  check_transpose<std::int64_t>({31, 15, 2}, {2, 0, 1});
  check_transpose<float>({3, 0, 4}, {2, 0, 1});  // empty
}

TEST(Transpose, RowRangesComposeToTheWhole) {
  const Dims shape = {6, 7, 33};
  const std::vector<int> perm = {2, 0, 1};  // 33 output rows
  const std::vector<float> x = distinct_values<float>(numel(shape), 0.0f);
  std::vector<float> whole(x.size());
  transpose(x.data(), shape, perm, whole.data());
  std::vector<float> pieces(x.size(), -1.0f);
  for (const auto& [begin, end] :
       std::vector<std::pair<std::int64_t, std::int64_t>>{{0, 5}, {5, 5}, {5, 17}, {17, 33}}) {
    transpose_rows(x.data(), shape, perm, pieces.data(), sizeof(float), begin, end);
  }
  EXPECT_EQ(pieces, whole);
  float v = 0.0f;
  EXPECT_THROW(transpose_rows(x.data(), shape, perm, pieces.data(), sizeof(float), 20, 34), Error);
  EXPECT_THROW(transpose_rows(&v, Dims{}, std::vector<int>{}, &v, sizeof(float), 0, 0), Error);
}

TEST(Transpose, RankZeroAndBadPermutations) {
  const float src = 7.0f;
  float dst = 0.0f;
  transpose(&src, Dims{}, std::vector<int>{}, &dst);
  EXPECT_EQ(dst, 7.0f);
  float v = 0.0f;
  EXPECT_THROW(transpose(&v, Dims{1, 1}, std::vector<int>{0, 0}, &v), Error);
  EXPECT_THROW(transpose(&v, Dims{1, 1}, std::vector<int>{0, 2}, &v), Error);
  EXPECT_THROW(transpose(&v, Dims{1, 1}, std::vector<int>{0}, &v), Error);
}

// ----- i64 and bool values ------------------------------------------------------------------------------

TEST(StridedCopy, I64ValuesBeyondFloatPrecisionAndBoolMasks) {
  // i64 values that no float or double could hold exactly, and 0/1 bytes: the copies move bits, not numbers.
  const Dims shape = {5, 17, 7};
  const Dims in_strides = contiguous_strides(shape);
  std::vector<std::int64_t> x64(static_cast<std::size_t>(numel(shape)));
  std::vector<std::uint8_t> xb(x64.size());
  for (std::size_t i = 0; i < x64.size(); ++i) {
    x64[i] = (std::int64_t{1} << 62) + static_cast<std::int64_t>(i) * 3 - 1;
    xb[i] = static_cast<std::uint8_t>((i * 7 / 3) % 2);
  }
  // x[::2, ::-1, 1:6] into a contiguous [3, 17, 5].
  const Dims out_shape = {3, 17, 5};
  const Dims src_strides = {2 * in_strides[0], -in_strides[1], 1};
  const std::int64_t origin = 16 * in_strides[1] + 1;
  std::vector<std::int64_t> y64(static_cast<std::size_t>(numel(out_shape))), want64(y64.size());
  std::vector<std::uint8_t> yb(y64.size()), wantb(y64.size());
  strided_copy(x64.data() + origin, out_shape, src_strides, y64.data(), contiguous_strides(out_shape),
               sizeof(std::int64_t));
  strided_copy(xb.data() + origin, out_shape, src_strides, yb.data(), contiguous_strides(out_shape), 1);
  for (std::int64_t i = 0; i < 3; ++i) {
    for (std::int64_t j = 0; j < 17; ++j) {
      for (std::int64_t k = 0; k < 5; ++k) {
        const auto src = static_cast<std::size_t>(2 * i * in_strides[0] + (16 - j) * in_strides[1] + 1 + k);
        want64[static_cast<std::size_t>((i * 17 + j) * 5 + k)] = x64[src];
        wantb[static_cast<std::size_t>((i * 17 + j) * 5 + k)] = xb[src];
      }
    }
  }
  EXPECT_EQ(y64, want64);
  EXPECT_EQ(yb, wantb);
  check_transpose<std::int64_t>({17, 1000}, {1, 0});
  check_transpose<std::uint8_t>({1000, 17}, {1, 0});
  check_transpose<std::uint8_t>({3, 65, 129}, {2, 0, 1});
}

// ----- gather -----------------------------------------------------------------------------------------

// The reference: data viewed as [outer, axis_len, inner], every output element on its own.
template <class T>
std::vector<T> naive_gather(const std::vector<T>& data, std::int64_t outer, std::int64_t axis_len, std::int64_t inner,
                            const std::vector<std::int64_t>& indices) {
  const auto count = static_cast<std::int64_t>(indices.size());
  std::vector<T> y(static_cast<std::size_t>(outer * count * inner));
  for (std::int64_t o = 0; o < outer; ++o) {
    for (std::int64_t i = 0; i < count; ++i) {
      const std::int64_t k =
          indices[static_cast<std::size_t>(i)] + (indices[static_cast<std::size_t>(i)] < 0 ? axis_len : 0);
      for (std::int64_t j = 0; j < inner; ++j) {
        y[static_cast<std::size_t>((o * count + i) * inner + j)] =
            data[static_cast<std::size_t>((o * axis_len + k) * inner + j)];
      }
    }
  }
  return y;
}

template <class T>
void check_gather(std::int64_t outer, std::int64_t axis_len, std::int64_t inner, std::int64_t count,
                  std::mt19937& rng) {
  SCOPED_TRACE("outer " + std::to_string(outer) + " axis " + std::to_string(axis_len) + " inner " +
               std::to_string(inner) + " indices " + std::to_string(count) + " elem " + std::to_string(sizeof(T)));
  const std::vector<T> data = distinct_values<T>(outer * axis_len * inner, T{5});
  std::vector<std::int64_t> indices(static_cast<std::size_t>(count));
  std::uniform_int_distribution<std::int64_t> pick(-axis_len, axis_len - 1);  // negatives count from the end
  for (auto& k : indices) k = pick(rng);
  const std::vector<T> want = naive_gather(data, outer, axis_len, inner, indices);
  std::vector<T> y(want.size(), T{0});
  gather(data.data(), outer, axis_len, inner, indices.data(), count, y.data(), sizeof(T));
  ASSERT_EQ(y, want);
  // Row ranges compose to the whole.
  std::vector<T> pieces(want.size(), T{0});
  const std::int64_t rows = outer * count;
  for (const auto& [b, e] : std::vector<std::pair<std::int64_t, std::int64_t>>{
           {0, rows / 3}, {rows / 3, rows / 3}, {rows / 3, rows - rows / 4}, {rows - rows / 4, rows}}) {
    gather_rows(data.data(), outer, axis_len, inner, indices.data(), count, pieces.data(), sizeof(T), b, e);
  }
  ASSERT_EQ(pieces, want);
}

TEST(Gather, AwkwardSizesEveryElementSize) {
  std::mt19937 rng(11);
  const std::int64_t sizes[][4] = {{1, 1, 1, 1},    {1, 7, 1, 17}, {3, 17, 1, 7}, {2, 7, 17, 1}, {1, 1000, 1, 1003},
                                   {4, 5, 1030, 3}, {17, 3, 7, 0}, {0, 5, 3, 4},  {2, 1, 64, 9}, {5, 33, 2, 40}};
  for (const auto& s : sizes) {
    check_gather<std::uint8_t>(s[0], s[1], s[2], s[3], rng);
    check_gather<std::uint16_t>(s[0], s[1], s[2], s[3], rng);
    check_gather<float>(s[0], s[1], s[2], s[3], rng);
    check_gather<std::int64_t>(s[0], s[1], s[2], s[3], rng);
  }
}

TEST(Gather, EmptyRowsStillCheckTheirIndices) {
  // inner == 0: nothing is copied, but an index outside the axis is still an error.
  const std::vector<std::int64_t> ok = {0, -3, 2};
  const std::vector<std::int64_t> bad = {0, 3};
  gather(nullptr, 2, 3, 0, ok.data(), 3, nullptr, sizeof(float));
  EXPECT_THROW(gather(nullptr, 2, 3, 0, bad.data(), 2, nullptr, sizeof(float)), Error);
}

TEST(Gather, OutOfRangeIndicesThrowAndAreFound) {
  // Indices just outside [-axis_len, axis_len), and the extremes of i64: each throws naming its position
  // and value, and first_bad_index finds the first one.
  const std::vector<float> data = distinct_values<float>(2 * 5 * 3, 0.0f);
  const std::int64_t extremes[] = {5, -6, 1000, std::numeric_limits<std::int64_t>::max(),
                                   std::numeric_limits<std::int64_t>::min()};
  for (const std::int64_t bad : extremes) {
    const std::vector<std::int64_t> indices = {4, -5, bad, 0};
    EXPECT_EQ(first_bad_index(indices.data(), 4, 5), 2);
    std::vector<float> y(2 * 4 * 3, -1.0f);
    try {
      gather(data.data(), 2, 5, 3, indices.data(), 4, y.data(), sizeof(float));
      ADD_FAILURE() << "index " << bad << " did not throw";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
      EXPECT_NE(std::string(e.what()).find("index " + std::to_string(bad) + " at position 2"), std::string::npos)
          << e.what();
      EXPECT_NE(std::string(e.what()).find("[-5, 5)"), std::string::npos) << e.what();
    }
  }
  const std::vector<std::int64_t> good = {4, -5, 0};
  EXPECT_EQ(first_bad_index(good.data(), 3, 5), -1);
  EXPECT_EQ(first_bad_index(good.data(), 3, 0), 0);  // an empty axis has no valid index
  EXPECT_EQ(first_bad_index(good.data(), 0, 0), -1);
}

TEST(Gather, RejectsBadArguments) {
  const std::vector<std::int64_t> idx = {0};
  float v = 0.0f;
  EXPECT_THROW(gather_rows(&v, 1, 1, 1, idx.data(), 1, &v, sizeof(float), 0, 2), Error);
  EXPECT_THROW(gather_rows(&v, 1, 1, 1, idx.data(), 1, &v, sizeof(float), 1, 0), Error);
  EXPECT_THROW(gather(&v, -1, 1, 1, idx.data(), 1, &v, sizeof(float)), Error);
  EXPECT_THROW(gather(&v, 1, 1, 1, idx.data(), 1, &v, 3), Error);
}

}  // namespace
}  // namespace quarks::ops
