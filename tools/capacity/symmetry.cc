#include "tools/capacity/symmetry.hpp"

#include <algorithm>

namespace quarks::capacity {

bool is_positive_regular(const TruthTable& f, int n) {
  for (int i = 0; i < n; ++i) {
    const std::uint32_t bit = std::uint32_t{1} << i;
    for (std::uint32_t p = 0; p < num_points(n); ++p)
      if (!(p & bit) && f.get(p) && !f.get(p | bit)) return false;
  }
  for (int i = 0; i + 1 < n; ++i) {
    const std::uint32_t bi = std::uint32_t{1} << i, bj = std::uint32_t{1} << (i + 1);
    for (std::uint32_t p = 0; p < num_points(n); ++p)
      if (!(p & bi) && (p & bj) && f.get(p) && !f.get((p | bi) & ~bj)) return false;
  }
  return true;
}

std::uint64_t regular_orbit_size(const TruthTable& f, int n) {
  const std::uint64_t group = group_order(n);
  std::uint64_t stabiliser = 1;
  for (int i = 0; i < n; ++i)
    if (!depends_on(f, n, i)) stabiliser *= 2;
  int run = 1;
  for (int i = 1; i <= n; ++i) {
    if (i < n && symmetric_in(f, n, i - 1, i)) {
      ++run;
    } else {
      for (int k = 2; k <= run; ++k) stabiliser *= static_cast<std::uint64_t>(k);
      run = 1;
    }
  }
  return group / stabiliser;
}

std::vector<TruthTable> orbit(const TruthTable& f, int n, const std::vector<GroupElement>& group) {
  std::vector<TruthTable> out;
  out.reserve(group.size());
  for (const GroupElement& g : group) out.push_back(apply(g, f, n));
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

SmallGroup::SmallGroup(int n) : n_(n), elements_(hyperoctahedral_group(n)) {
  const std::uint32_t points = num_points(n);
  point_maps_.resize(elements_.size() * points);
  for (std::size_t e = 0; e < elements_.size(); ++e)
    for (std::uint32_t p = 0; p < points; ++p)
      point_maps_[e * points + p] = static_cast<std::uint8_t>(elements_[e].map_point(p, n));
}

std::uint64_t SmallGroup::apply(std::size_t element, std::uint64_t table) const {
  const std::uint32_t points = num_points(n_);
  const std::uint8_t* map = &point_maps_[element * points];
  std::uint64_t out = 0;
  for (std::uint32_t p = 0; p < points; ++p) out |= ((table >> map[p]) & 1u) << p;
  return out;
}

}  // namespace quarks::capacity
