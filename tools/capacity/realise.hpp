// Realisability of a Boolean function as the sign of a polynomial with given monomials (a threshold
// gate: the constant and the n variables), decided by an LP (GLPK) and proved by an integer certificate
// that is checked exactly on every point of the cube.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "tools/capacity/truth_table.hpp"

struct glp_prob;

namespace quarks::capacity {

// A monomial is a set of variables (bit i = x_{i+1}); its value at a point is the product of those
// x_i in {-1,1} (the empty set is the constant 1).
inline int monomial_value(std::uint32_t monomial, std::uint32_t point) {
  return (__builtin_popcount(monomial & ~point) & 1) ? -1 : 1;
}
// Every monomial of degree <= d in n variables, by degree then mask (the constant first).
std::vector<std::uint32_t> monomials_up_to_degree(int n, int d);

// Integer weights w (one per monomial) realise f when P(x) = sum_j w_j m_j(x) is nonzero at every point
// and sign(P(x)) = f(x). Checked exactly in 64-bit integers (the weights are bounded so nothing overflows).
bool check_certificate(const TruthTable& f, int n, const std::vector<std::uint32_t>& monomials,
                       const std::vector<std::int64_t>& weights);

// Decides realisability for one n and one monomial set, reusing one LP (bounds change per function,
// the basis carries over): find real w with P(x) >= 1 where f = +1 and P(x) <= -1 where f = -1; if
// there is one, scale by the number of monomials and round (the rounding moves P by at most half that,
// less than the margin), then check the integer certificate. Not thread-safe: one per thread.
class LpRealiser {
 public:
  LpRealiser(int n, std::vector<std::uint32_t> monomials);
  ~LpRealiser();
  LpRealiser(const LpRealiser&) = delete;
  LpRealiser& operator=(const LpRealiser&) = delete;

  // The checked certificate, or nullopt when the LP is infeasible. Throws quarks::Error (kInternal) when
  // the LP claims feasibility but no rounding of its solution passes the exact check.
  std::optional<std::vector<std::int64_t>> realise(const TruthTable& f);

  int n() const { return n_; }
  const std::vector<std::uint32_t>& monomials() const { return monomials_; }
  std::uint64_t solves() const { return solves_; }

 private:
  bool solve(const TruthTable& f, std::vector<double>& solution);

  int n_;
  std::vector<std::uint32_t> monomials_;
  glp_prob* lp_ = nullptr;
  std::uint64_t solves_ = 0;
};

// The certificate of g f from one of f: y_i = s_i x_{perm[i]} maps monomial m to the monomial of the
// perm[i] for i in m, with the sign prod_{i in m} s_i.
std::vector<std::int64_t> transform_certificate(const GroupElement& g, const std::vector<std::uint32_t>& monomials,
                                                const std::vector<std::int64_t>& weights);

}  // namespace quarks::capacity
