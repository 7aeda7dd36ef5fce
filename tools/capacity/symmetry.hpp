// Orbits of Boolean functions under the hyperoctahedral group B_n (input permutations and sign flips,
// order 2^n n!), which leaves every block's set of realisable functions invariant.
#pragma once

#include <cstdint>
#include <vector>

#include "tools/capacity/truth_table.hpp"

namespace quarks::capacity {

// f is positive (monotone non-decreasing in every x_i) and regular (x_1 >= x_2 >= ... >= x_n in
// desirability: swapping a +1 at x_i and a -1 at x_{i+1} to the other way never raises f).
bool is_positive_regular(const TruthTable& f, int n);

// Orbit size of a positive regular *threshold* function: 2^n n! / |stabiliser|. The stabiliser of such a
// function flips only the k variables it ignores and permutes only symmetric variables, which form runs
// of adjacent indices: |stabiliser| = 2^k * prod over runs of (run length)!.
std::uint64_t regular_orbit_size(const TruthTable& f, int n);

// The orbit {g f : g in group} as a sorted list without repeats.
std::vector<TruthTable> orbit(const TruthTable& f, int n, const std::vector<GroupElement>& group);

// Orbits of small tables (n <= 6) as 64-bit words: point maps precomputed once per group element.
class SmallGroup {
 public:
  explicit SmallGroup(int n);
  std::uint64_t apply(std::size_t element, std::uint64_t table) const;
  std::size_t size() const { return elements_.size(); }
  const GroupElement& element(std::size_t i) const { return elements_[i]; }

 private:
  int n_;
  std::vector<GroupElement> elements_;
  std::vector<std::uint8_t> point_maps_;  // element-major, 2^n points each
};

}  // namespace quarks::capacity
