#include "tools/capacity/canonical_forms.hpp"

#include <tbb/parallel_for.h>

#include <algorithm>
#include <string>

#include "ops/contract/parallel.hpp"
#include "quarks/error.hpp"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "tools/capacity/canonical_forms.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep

#include "hwy/highway.h"

HWY_BEFORE_NAMESPACE();
namespace quarks::capacity::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// One vector of tables through the whole walk: the running least image and how often it was met.
void CanonicalFormsImpl(const std::uint32_t* tables, std::size_t count, const DeltaSwap* steps, std::size_t num_steps,
                        std::uint32_t* canonical, std::uint32_t* stabiliser) {
  const hn::ScalableTag<std::uint32_t> d;
  const std::size_t lanes = hn::Lanes(d);
  const auto one = hn::Set(d, 1u);
  HWY_ALIGN std::uint32_t in[hn::MaxLanes(d)], out_min[hn::MaxLanes(d)], out_count[hn::MaxLanes(d)];
  for (std::size_t i = 0; i < count; i += lanes) {
    const std::size_t n = std::min(lanes, count - i);
    std::fill(in, in + lanes, tables[i]);  // the tail repeats a real table
    std::copy(tables + i, tables + i + n, in);
    auto x = hn::Load(d, in);
    auto least = x, met = one;
    for (std::size_t s = 0; s < num_steps; ++s) {
      const int shift = static_cast<int>(steps[s].shift);
      const auto t = hn::And(hn::Xor(hn::ShiftRightSame(x, shift), x), hn::Set(d, steps[s].mask));
      x = hn::Xor(hn::Xor(x, t), hn::ShiftLeftSame(t, shift));
      const auto below = hn::Lt(x, least);
      met = hn::IfThenElse(below, one, hn::Add(met, hn::IfThenElseZero(hn::Eq(x, least), one)));
      least = hn::Min(x, least);
    }
    hn::Store(least, d, out_min);
    hn::Store(met, d, out_count);
    std::copy(out_min, out_min + n, canonical + i);
    std::copy(out_count, out_count + n, stabiliser + i);
  }
}

}  // namespace quarks::capacity::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace quarks::capacity {

HWY_EXPORT(CanonicalFormsImpl);

std::vector<DeltaSwap> group_walk(int n) {
  if (n < 0 || n > kCanonicalFormMaxN)
    throw Error(ErrorCode::kInvalidArgument,
                "canonical forms: n = " + std::to_string(n) + " is outside 0.." + std::to_string(kCanonicalFormMaxN));
  // Points p with bit `bit` clear; points with bit a set and bit b clear.
  const auto points_where = [n](auto keep) {
    std::uint32_t mask = 0;
    for (std::uint32_t p = 0; p < (1u << n); ++p)
      if (keep(p)) mask |= 1u << p;
    return mask;
  };
  std::vector<DeltaSwap> flips;  // a Gray code over the 2^n sign-flip sets: flip variable ctz(k) at step k
  for (std::uint32_t k = 1; k < (1u << n); ++k) {
    const int v = __builtin_ctz(k);
    flips.push_back({1u << v, points_where([v](std::uint32_t p) { return !(p >> v & 1u); })});
  }
  const auto swap_variables = [&](int a, int b) {  // a < b: points with x_a = +1, x_b = -1 move up
    return DeltaSwap{(1u << b) - (1u << a),
                     points_where([a, b](std::uint32_t p) { return (p >> a & 1u) && !(p >> b & 1u); })};
  };
  std::vector<DeltaSwap> walk(flips);
  // Heap's algorithm: each swap of two variables moves to a new coset of the flip subgroup (the flips
  // are normal in B_n, so the Gray code then covers that coset).
  std::vector<int> c(static_cast<std::size_t>(n), 0);
  for (int i = 1; i < n;) {
    if (c[static_cast<std::size_t>(i)] < i) {
      const int j = i % 2 == 0 ? 0 : c[static_cast<std::size_t>(i)];
      walk.push_back(swap_variables(std::min(i, j), std::max(i, j)));
      walk.insert(walk.end(), flips.begin(), flips.end());
      ++c[static_cast<std::size_t>(i)];
      i = 1;
    } else {
      c[static_cast<std::size_t>(i)] = 0;
      ++i;
    }
  }
  return walk;
}

void canonical_forms(std::span<const std::uint32_t> tables, int n, std::span<std::uint32_t> canonical,
                     std::span<std::uint32_t> stabiliser) {
  const std::vector<DeltaSwap> walk = group_walk(n);
  if (canonical.size() != tables.size() || stabiliser.size() != tables.size())
    throw Error(ErrorCode::kInvalidArgument, "canonical forms: the outputs must have one entry per table");
  const std::uint32_t outside = n == 5 ? 0u : ~((1u << (1u << n)) - 1u);
  for (std::size_t i = 0; i < tables.size(); ++i)
    if (tables[i] & outside)
      throw Error(ErrorCode::kInvalidArgument,
                  "canonical forms: table " + std::to_string(i) + " has bits at points beyond 2^" + std::to_string(n));
  const auto run = [&](const tbb::blocked_range<std::size_t>& r) {
    HWY_DYNAMIC_DISPATCH(CanonicalFormsImpl)
    (tables.data() + r.begin(), r.size(), walk.data(), walk.size(), canonical.data() + r.begin(),
     stabiliser.data() + r.begin());
  };
  const tbb::blocked_range<std::size_t> all(0, tables.size(), 1024);
  // Serial under ThreadSanitizer, as the engine's kernels (ops/contract/parallel.hpp).
  if (quarks::detail::kSerialIntraOp) {
    run(all);
  } else {
    tbb::parallel_for(all, run);
  }
}

}  // namespace quarks::capacity
#endif  // HWY_ONCE
