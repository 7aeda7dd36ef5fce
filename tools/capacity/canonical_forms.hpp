// Canonical forms of small truth tables (n <= 5 variables: one 32-bit word) under the hyperoctahedral
// group B_n (input permutations and sign flips, 2^n n! elements), for many tables at once: each table's
// least image under the group and how many elements map it there, which is the size of that image's
// stabiliser, so its orbit has 2^n n! / stabiliser members.
//
// The group is walked, not listed: a sequence of delta swaps (each exchanges the bits of two sets of
// points: one variable's sign flip, or two variables swapped) whose running products visit every group
// element exactly once — 3839 steps for n = 5. The walk runs on many tables at once with Highway (8 per
// AVX2 vector), in parallel over TBB tasks.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace quarks::capacity {

inline constexpr int kCanonicalFormMaxN = 5;

/// One step of the walk: x ^= t ^ (t << shift) where t = ((x >> shift) ^ x) & mask.
struct DeltaSwap {
  std::uint32_t shift;
  std::uint32_t mask;
};

/// The steps whose running products visit every element of B_n once, starting from the identity:
/// Gray-code sign flips inside each coset of the flips, and Heap's swaps of variables between cosets.
std::vector<DeltaSwap> group_walk(int n);

/// Applies one step to a table (the scalar reference of the vector kernel).
inline std::uint32_t apply_step(const DeltaSwap& s, std::uint32_t x) {
  const std::uint32_t t = ((x >> s.shift) ^ x) & s.mask;
  return x ^ t ^ (t << s.shift);
}

/// For each table on n <= 5 variables (bits at points >= 2^n zero): its least image under B_n
/// (`canonical`) and the number of group elements mapping it there (`stabiliser`). Outputs have the
/// size of `tables`. Throws Error(kInvalidArgument) for n outside 0..5 or a table with bits above 2^n.
void canonical_forms(std::span<const std::uint32_t> tables, int n, std::span<std::uint32_t> canonical,
                     std::span<std::uint32_t> stabiliser);

}  // namespace quarks::capacity
