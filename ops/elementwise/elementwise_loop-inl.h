// Per-target loop skeleton of the elementwise kernels (binary ops, activations, multiplex, output gate):
// y[i] = fn(in_0[i], in_1[i], ...) over any n, where each input is a contiguous run or one broadcast value.
//
// Include this from a file compiled once per Highway target (HWY_TARGET_INCLUDE + hwy/foreach_target.h);
// the toggled include guard below lets it be re-included for every target.
//
// Tails: Highway 1.0.3 has no LoadN/StoreN, and MaskedLoad is not tail safe on SSE targets (it may
// read past the end). The last partial vector is therefore copied into a zero-padded stack buffer,
// computed as one full vector, and the valid lanes copied back: one vector op instead of up to
// Lanes-1 single-lane ops of a possibly expensive function (gelu), and no out-of-bounds access.
//
// Aliasing: every vector is loaded from all inputs before its result is stored, so y may alias any
// input exactly (in place).

#if defined(QUARKS_OPS_ELEMENTWISE_ELEMENTWISE_LOOP_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef QUARKS_OPS_ELEMENTWISE_ELEMENTWISE_LOOP_INL_H_
#undef QUARKS_OPS_ELEMENTWISE_ELEMENTWISE_LOOP_INL_H_
#else
#define QUARKS_OPS_ELEMENTWISE_ELEMENTWISE_LOOP_INL_H_
#endif

#include <algorithm>
#include <cstddef>

#include "hwy/cache_control.h"
#include "hwy/highway.h"

HWY_BEFORE_NAMESPACE();
namespace quarks::ops::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

/// Software prefetch distance of the streaming inputs. The activation math of a vector (exp, a
/// reciprocal) fills the out-of-order window, so the core stops issuing the loads of later vectors
/// and the hardware prefetcher alone does not keep enough lines in flight; asking 2 KiB ahead does.
inline constexpr std::size_t kPrefetchFloats = 512;

/// An input that advances with i (stride 1).
struct Run {
  const float* p;

  template <class D>
  HWY_INLINE hn::Vec<D> Load(D d, std::size_t i) const {
    return hn::LoadU(d, p + i);
  }
  /// Asks for the cache line kPrefetchFloats ahead of i (prefetching never faults, even past the end).
  HWY_INLINE void Prefetch(std::size_t i) const { hwy::Prefetch(p + i + kPrefetchFloats); }
  /// The `valid` elements from i, zero padded to a full vector.
  template <class D>
  HWY_INLINE hn::Vec<D> LoadTail(D d, std::size_t i, std::size_t valid) const {
    HWY_ALIGN float padded[hn::MaxLanes(D())] = {};
    std::copy_n(p + i, valid, padded);
    return hn::Load(d, padded);
  }
};

/// An input that is one value for every i (stride 0).
struct Broadcast {
  float value;

  template <class D>
  HWY_INLINE hn::Vec<D> Load(D d, std::size_t /*i*/) const {
    return hn::Set(d, value);
  }
  HWY_INLINE void Prefetch(std::size_t /*i*/) const {}
  template <class D>
  HWY_INLINE hn::Vec<D> LoadTail(D d, std::size_t /*i*/, std::size_t /*valid*/) const {
    return hn::Set(d, value);
  }
};

/// y[i] = fn(d, in.Load(d, i)...) for i in [0, n), one full vector at a time plus a padded tail.
/// `fn` is a (generic) callable taking the tag and one vector per input; it is inlined into the loop,
/// so the caller selects the operation once, outside the loop.
template <class Fn, class... Inputs>
HWY_INLINE void ForEachVector(float* y, std::size_t n, const Fn& fn, const Inputs&... in) {
  const hn::ScalableTag<float> d;
  const std::size_t lanes = hn::Lanes(d);
  std::size_t i = 0;
  for (; i + lanes <= n; i += lanes) {
    if (i % 16 == 0) (in.Prefetch(i), ...);  // once per 64-byte line
    hn::StoreU(fn(d, in.Load(d, i)...), d, y + i);
  }
  if (i < n) {
    const std::size_t valid = n - i;
    HWY_ALIGN float out[hn::MaxLanes(decltype(d)())];
    hn::Store(fn(d, in.LoadTail(d, i, valid)...), d, out);
    std::copy_n(out, valid, y + i);
  }
}

}  // namespace quarks::ops::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#endif  // QUARKS_OPS_ELEMENTWISE_ELEMENTWISE_LOOP_INL_H_ toggle
