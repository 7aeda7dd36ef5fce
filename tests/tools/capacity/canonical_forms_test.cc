// The vectorised canonical forms (tools/capacity/canonical_forms.hpp) against the group listed
// element by element (SmallGroup: each element's point map, applied bit by bit).
#include "tools/capacity/canonical_forms.hpp"

#include <gtest/gtest.h>

#include <array>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "quarks/error.hpp"
#include "tools/capacity/symmetry.hpp"

namespace quarks::capacity {
namespace {

// The walk, applied to the labels of the points, reaches each group element's point map exactly once.
TEST(GroupWalk, VisitsEveryElementOnce) {
  for (int n = 0; n <= kCanonicalFormMaxN; ++n) {
    const std::uint32_t points = num_points(n);
    std::string state(points, '\0');
    for (std::uint32_t p = 0; p < points; ++p) state[p] = static_cast<char>(p);
    std::set<std::string> visited = {state};
    for (const DeltaSwap& s : group_walk(n)) {
      for (std::uint32_t p = 0; p < points; ++p)
        if (s.mask >> p & 1u) std::swap(state[p], state[p + s.shift]);
      EXPECT_TRUE(visited.insert(state).second) << "n = " << n << ": an element visited twice";
    }
    EXPECT_EQ(visited.size(), group_order(n)) << "n = " << n;
    // The same set as the group's own point maps (where the image of point p comes from).
    const SmallGroup group(n);
    std::set<std::string> maps;
    for (std::size_t e = 0; e < group.size(); ++e) {
      std::string m(points, '\0');
      for (std::uint32_t p = 0; p < points; ++p)
        for (std::uint32_t q = 0; q < points; ++q)
          if (group.apply(e, std::uint64_t{1} << q) == (std::uint64_t{1} << p)) m[p] = static_cast<char>(q);
      maps.insert(m);
    }
    EXPECT_EQ(visited, maps) << "n = " << n;
  }
}

TEST(CanonicalForms, LeastImageAndStabiliserMatchTheListedGroup) {
  std::mt19937 rng(7);
  for (int n = 0; n <= kCanonicalFormMaxN; ++n) {
    const SmallGroup group(n);
    const std::uint64_t all = n == 5 ? 0xffffffffu : (std::uint64_t{1} << num_points(n)) - 1;
    // Random tables, plus symmetric ones (constants, parity, majority-like) with large stabilisers.
    std::vector<std::uint32_t> tables = {0u, static_cast<std::uint32_t>(all),
                                         static_cast<std::uint32_t>(all & 0x96696996u),
                                         static_cast<std::uint32_t>(all & 0xfee8e880u), 1u};
    for (int i = 0; i < 300; ++i) tables.push_back(static_cast<std::uint32_t>(rng() & all));
    std::vector<std::uint32_t> least(tables.size()), stabiliser(tables.size());
    canonical_forms(tables, n, least, stabiliser);
    for (std::size_t i = 0; i < tables.size(); ++i) {
      std::uint64_t expected = ~std::uint64_t{0};
      std::uint32_t count = 0;
      for (std::size_t e = 0; e < group.size(); ++e) {
        const std::uint64_t image = group.apply(e, tables[i]);
        if (image < expected) {
          expected = image;
          count = 1;
        } else if (image == expected) {
          ++count;
        }
      }
      ASSERT_EQ(least[i], expected) << "n = " << n << ", table " << tables[i];
      ASSERT_EQ(stabiliser[i], count) << "n = " << n << ", table " << tables[i];
    }
  }
}

TEST(CanonicalForms, RejectsBadArguments) {
  std::vector<std::uint32_t> t = {0x10u}, a(1), b(1);
  EXPECT_THROW(canonical_forms(t, 6, a, b), Error);
  EXPECT_THROW(canonical_forms(t, 2, a, b), Error);  // a bit at point 4 of a 4-point table
  std::vector<std::uint32_t> short_output;
  EXPECT_THROW(canonical_forms(t, 3, short_output, b), Error);
}

}  // namespace
}  // namespace quarks::capacity
