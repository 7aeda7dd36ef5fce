#include "tools/capacity/truth_table.hpp"

#include <algorithm>
#include <numeric>

namespace quarks::capacity {

TruthTable constant_table(int n, bool value) {
  TruthTable t;
  if (!value) return t;
  for (std::uint32_t p = 0; p < num_points(n); ++p) t.set(p, true);
  return t;
}

TruthTable join(const TruthTable& g, const TruthTable& h, int n) {
  TruthTable f;
  if (n < 6) {
    f.words[0] = g.words[0] | (h.words[0] << num_points(n));
  } else {
    const std::uint32_t words = num_points(n) / 64;  // words per half
    for (std::uint32_t i = 0; i < words; ++i) {
      f.words[i] = g.words[i];
      f.words[i + words] = h.words[i];
    }
  }
  return f;
}

TruthTable lower_half(const TruthTable& f, int n) {
  TruthTable t;
  if (n <= 6) {
    t.words[0] = f.words[0] & all_ones(n - 1);
  } else {
    for (std::uint32_t i = 0; i < num_points(n - 1) / 64; ++i) t.words[i] = f.words[i];
  }
  return t;
}

TruthTable upper_half(const TruthTable& f, int n) {
  TruthTable t;
  if (n <= 6) {
    t.words[0] = (f.words[0] >> num_points(n - 1)) & all_ones(n - 1);
  } else {
    const std::uint32_t words = num_points(n - 1) / 64;
    for (std::uint32_t i = 0; i < words; ++i) t.words[i] = f.words[i + words];
  }
  return t;
}

TruthTable product(const TruthTable& f, const TruthTable& g, int n) {
  TruthTable t;
  for (int i = 0; i < 4; ++i) t.words[i] = ~(f.words[i] ^ g.words[i]);
  if (n < 8) {
    const std::uint32_t points = num_points(n);
    for (std::uint32_t i = 0; i < 4; ++i) {
      if (points >= 64 * (i + 1)) continue;
      t.words[i] = points <= 64 * i ? 0 : t.words[i] & ((std::uint64_t{1} << (points - 64 * i)) - 1);
    }
  }
  return t;
}

TruthTable bit_and(const TruthTable& f, const TruthTable& g) {
  TruthTable t;
  for (int i = 0; i < 4; ++i) t.words[i] = f.words[i] & g.words[i];
  return t;
}

bool depends_on(const TruthTable& f, int n, int var) {
  const std::uint32_t bit = std::uint32_t{1} << var;
  for (std::uint32_t p = 0; p < num_points(n); ++p)
    if (!(p & bit) && f.get(p) != f.get(p | bit)) return true;
  return false;
}

bool symmetric_in(const TruthTable& f, int n, int i, int j) {
  const std::uint32_t bi = std::uint32_t{1} << i, bj = std::uint32_t{1} << j;
  for (std::uint32_t p = 0; p < num_points(n); ++p)
    if ((p & bi) && !(p & bj) && f.get(p) != f.get((p & ~bi) | bj)) return false;
  return true;
}

std::uint32_t GroupElement::map_point(std::uint32_t p, int n) const {
  std::uint32_t q = 0;
  for (int i = 0; i < n; ++i) {
    const std::uint32_t bit = ((p >> perm[i]) & 1u) ^ ((flips >> i) & 1u);
    q |= bit << i;
  }
  return q;
}

std::vector<GroupElement> hyperoctahedral_group(int n) {
  std::vector<GroupElement> group;
  std::array<std::uint8_t, kMaxVars> perm{};
  std::iota(perm.begin(), perm.begin() + n, std::uint8_t{0});
  do {
    for (std::uint32_t flips = 0; flips < num_points(n); ++flips) group.push_back({perm, flips});
  } while (std::next_permutation(perm.begin(), perm.begin() + n));
  return group;
}

TruthTable apply(const GroupElement& g, const TruthTable& f, int n) {
  TruthTable t;
  for (std::uint32_t p = 0; p < num_points(n); ++p)
    if (f.get(g.map_point(p, n))) t.set(p, true);
  return t;
}

}  // namespace quarks::capacity
