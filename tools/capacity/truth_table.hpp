// Truth tables of Boolean functions {-1,1}^n -> {-1,1} for n <= 8, and the hyperoctahedral group
// (input permutations and sign flips) acting on them.
#pragma once

#include <array>
#include <compare>
#include <cstdint>
#include <vector>

namespace quarks::capacity {

inline constexpr int kMaxVars = 8;

// Point p of the cube: bit i of p is 1 iff x_{i+1} = +1. Bit p of the table is 1 iff f(p) = +1.
// Bits at p >= 2^n are always 0, so tables of the same n compare as sets.
struct TruthTable {
  std::array<std::uint64_t, 4> words{};

  bool get(std::uint32_t p) const { return (words[p >> 6] >> (p & 63)) & 1u; }
  void set(std::uint32_t p, bool value) {
    const std::uint64_t bit = std::uint64_t{1} << (p & 63);
    words[p >> 6] = value ? (words[p >> 6] | bit) : (words[p >> 6] & ~bit);
  }
  friend bool operator==(const TruthTable&, const TruthTable&) = default;
  friend auto operator<=>(const TruthTable&, const TruthTable&) = default;
};

inline std::uint32_t num_points(int n) { return std::uint32_t{1} << n; }

// The constant function on n variables.
TruthTable constant_table(int n, bool value);
// f(x_1..x_n, x_{n+1}) = g(x) where x_{n+1} = -1 and h(x) where x_{n+1} = +1; g and h on n variables.
TruthTable join(const TruthTable& g, const TruthTable& h, int n);
// f on n variables restricted to x_n = -1 (lower) or x_n = +1 (upper): n-1 variables.
TruthTable lower_half(const TruthTable& f, int n);
TruthTable upper_half(const TruthTable& f, int n);
// f <= g at every point (with -1 < +1).
inline bool leq(const TruthTable& f, const TruthTable& g) {
  return ((f.words[0] & ~g.words[0]) | (f.words[1] & ~g.words[1]) | (f.words[2] & ~g.words[2]) |
          (f.words[3] & ~g.words[3])) == 0;
}
// Pointwise product of +-1 functions (XNOR of the bits) and AND (of the 0/1 outputs), on n variables.
TruthTable product(const TruthTable& f, const TruthTable& g, int n);
TruthTable bit_and(const TruthTable& f, const TruthTable& g);
// Whether f changes when x_{var+1} flips (var counts from 0).
bool depends_on(const TruthTable& f, int n, int var);
// Whether f is unchanged when x_{i+1} and x_{j+1} swap.
bool symmetric_in(const TruthTable& f, int n, int i, int j);

// Small tables (n <= 6) as one 64-bit word, for the brute-force counters and tests.
inline std::uint64_t all_ones(int n) { return n == 6 ? ~std::uint64_t{0} : (std::uint64_t{1} << num_points(n)) - 1; }

// An element of the hyperoctahedral group B_n: y_i = s_i * x_{perm[i]} (s_i = -1 where bit i of flips is
// set). It acts on functions by (g f)(x) = f(y), and on a point p (the x) as the point of y.
struct GroupElement {
  std::array<std::uint8_t, kMaxVars> perm{};
  std::uint32_t flips = 0;
  std::uint32_t map_point(std::uint32_t p, int n) const;
};

// All 2^n * n! elements, identity first.
std::vector<GroupElement> hyperoctahedral_group(int n);
// Its order, 2^n n!.
inline std::uint64_t group_order(int n) {
  std::uint64_t order = std::uint64_t{1} << n;
  for (int i = 2; i <= n; ++i) order *= static_cast<std::uint64_t>(i);
  return order;
}
// g f for n <= 8.
TruthTable apply(const GroupElement& g, const TruthTable& f, int n);

}  // namespace quarks::capacity
