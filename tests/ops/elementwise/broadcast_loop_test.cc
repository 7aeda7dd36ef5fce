// BroadcastLoop against naive NumPy-broadcast indexing, over random shapes and random sub-ranges.
#include <gtest/gtest.h>

#include <random>
#include <vector>

#include "ops/elementwise/broadcast.hpp"

namespace quarks::ops {
namespace {

// Offset of output element `flat` in an operand of shape `s` broadcast to `out`.
std::int64_t naive_offset(const Shape& out, const Shape& s, std::int64_t flat) {
  std::int64_t off = 0, stride = 1;
  for (int d = out.rank() - 1, sd = s.rank() - 1; d >= 0; --d, --sd) {
    const std::int64_t idx = flat % out[d];
    flat /= out[d];
    if (sd < 0) continue;
    if (s[sd] != 1) off += idx * stride;
    stride *= s[sd];
  }
  return off;
}

TEST(BroadcastLoop, MatchesNaiveIndexingOnRandomShapes) {
  std::mt19937 rng(3);
  for (int trial = 0; trial < 300; ++trial) {
    const int rank = 1 + static_cast<int>(rng() % 5);
    Shape out, a, b;
    for (int d = 0; d < rank; ++d) out.push_back(1 + static_cast<std::int64_t>(rng() % 4));
    // Each operand: a suffix of the output's dims, each kept or set to 1.
    for (Shape* s : {&a, &b}) {
      const int r = static_cast<int>(rng() % (rank + 1));
      for (int d = rank - r; d < rank; ++d) s->push_back(rng() % 3 == 0 ? 1 : out[d]);
    }
    const BroadcastLoop loop(out, {a, b});
    ASSERT_EQ(loop.total(), out.numel());
    const std::int64_t begin = static_cast<std::int64_t>(rng() % (out.numel() + 1));
    const std::int64_t end = begin + static_cast<std::int64_t>(rng() % (out.numel() - begin + 1));
    std::vector<int> seen(static_cast<std::size_t>(out.numel()), 0);
    loop.for_each_run(
        begin, end, [&](const std::int64_t* off, const std::int64_t* stride, std::int64_t y, std::int64_t n) {
          ASSERT_TRUE(stride[0] == 0 || stride[0] == 1);
          ASSERT_TRUE(stride[1] == 0 || stride[1] == 1);
          for (std::int64_t i = 0; i < n; ++i) {
            ++seen[static_cast<std::size_t>(y + i)];
            ASSERT_EQ(off[0] + i * stride[0], naive_offset(out, a, y + i)) << out.to_string() << a.to_string();
            ASSERT_EQ(off[1] + i * stride[1], naive_offset(out, b, y + i)) << out.to_string() << b.to_string();
          }
        });
    for (std::int64_t i = 0; i < out.numel(); ++i)
      EXPECT_EQ(seen[static_cast<std::size_t>(i)], i >= begin && i < end ? 1 : 0);
  }
}

TEST(BroadcastLoop, OneAndThreeOperandsMatchNaiveIndexing) {
  std::mt19937 rng(4);
  for (int trial = 0; trial < 300; ++trial) {
    const int rank = static_cast<int>(rng() % 6);
    Shape out;
    for (int d = 0; d < rank; ++d) out.push_back(1 + static_cast<std::int64_t>(rng() % 4));
    Shape ops[3];
    for (Shape& s : ops) {
      const int r = static_cast<int>(rng() % (rank + 1));
      for (int d = rank - r; d < rank; ++d) s.push_back(rng() % 3 == 0 ? 1 : out[d]);
    }
    const bool three = trial % 2 == 0;
    const BroadcastLoop loop = three ? BroadcastLoop(out, {ops[0], ops[1], ops[2]}) : BroadcastLoop(out, {ops[0]});
    const int count = three ? 3 : 1;
    std::vector<int> seen(static_cast<std::size_t>(out.numel()), 0);
    loop.for_each_run(0, out.numel(),
                      [&](const std::int64_t* off, const std::int64_t* stride, std::int64_t y, std::int64_t n) {
                        for (int k = 0; k < count; ++k) ASSERT_TRUE(stride[k] == 0 || stride[k] == 1);
                        for (std::int64_t i = 0; i < n; ++i) {
                          ++seen[static_cast<std::size_t>(y + i)];
                          for (int k = 0; k < count; ++k) {
                            ASSERT_EQ(off[k] + i * stride[k], naive_offset(out, ops[k], y + i))
                                << out.to_string() << " operand " << k << " " << ops[k].to_string();
                          }
                        }
                      });
    for (int v : seen) EXPECT_EQ(v, 1);
  }
  EXPECT_THROW(BroadcastLoop(Shape{2}, {Shape{2}, Shape{2}, Shape{2}, Shape{2}}), Error);
}

TEST(BroadcastLoop, ZeroSizedAndScalarShapes) {
  const BroadcastLoop empty(Shape{3, 0}, {Shape{3, 0}, Shape{1}});
  EXPECT_EQ(empty.total(), 0);
  int calls = 0;
  empty.for_each_run(0, 0, [&](const std::int64_t*, const std::int64_t*, std::int64_t, std::int64_t) { ++calls; });
  EXPECT_EQ(calls, 0);
  const BroadcastLoop scalar(Shape{}, {Shape{}, Shape{}});
  EXPECT_EQ(scalar.total(), 1);
  scalar.for_each_run(0, 1, [&](const std::int64_t* off, const std::int64_t*, std::int64_t y, std::int64_t n) {
    EXPECT_EQ(off[0], 0);
    EXPECT_EQ(off[1], 0);
    EXPECT_EQ(y, 0);
    EXPECT_EQ(n, 1);
    ++calls;
  });
  EXPECT_EQ(calls, 1);
}

}  // namespace
}  // namespace quarks::ops
