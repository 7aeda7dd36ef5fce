#include "tools/capacity/realise.hpp"

#include <glpk.h>

#include <algorithm>
#include <cmath>
#include <string>

#include "quarks/error.hpp"

namespace quarks::capacity {

std::vector<std::uint32_t> monomials_up_to_degree(int n, int d) {
  std::vector<std::uint32_t> out;
  for (int degree = 0; degree <= std::min(n, d); ++degree)
    for (std::uint32_t m = 0; m < num_points(n); ++m)
      if (__builtin_popcount(m) == degree) out.push_back(m);
  return out;
}

bool check_certificate(const TruthTable& f, int n, const std::vector<std::uint32_t>& monomials,
                       const std::vector<std::int64_t>& weights) {
  if (weights.size() != monomials.size()) return false;
  // |w_j| < 2^40 and at most 256 monomials: every sum fits in 64 bits.
  for (const std::int64_t w : weights)
    if (w >= (std::int64_t{1} << 40) || w <= -(std::int64_t{1} << 40)) return false;
  for (std::uint32_t p = 0; p < num_points(n); ++p) {
    std::int64_t sum = 0;
    for (std::size_t j = 0; j < monomials.size(); ++j) sum += monomial_value(monomials[j], p) * weights[j];
    if (sum == 0 || (sum > 0) != f.get(p)) return false;
  }
  return true;
}

LpRealiser::LpRealiser(int n, std::vector<std::uint32_t> monomials) : n_(n), monomials_(std::move(monomials)) {
  glp_term_out(GLP_OFF);
  lp_ = glp_create_prob();
  glp_set_obj_dir(lp_, GLP_MIN);
  const int rows = static_cast<int>(num_points(n)), cols = static_cast<int>(monomials_.size());
  glp_add_rows(lp_, rows);
  glp_add_cols(lp_, cols);
  for (int j = 1; j <= cols; ++j) {
    glp_set_col_bnds(lp_, j, GLP_FR, 0.0, 0.0);
    glp_set_obj_coef(lp_, j, 0.0);
  }
  // Row p: P(x_p) = sum_j m_j(x_p) w_j, bounded per function.
  std::vector<int> ia{0}, ja{0};
  std::vector<double> ar{0.0};
  for (int p = 0; p < rows; ++p)
    for (int j = 0; j < cols; ++j) {
      ia.push_back(p + 1);
      ja.push_back(j + 1);
      ar.push_back(monomial_value(monomials_[j], static_cast<std::uint32_t>(p)));
    }
  glp_load_matrix(lp_, static_cast<int>(ia.size()) - 1, ia.data(), ja.data(), ar.data());
  glp_std_basis(lp_);
}

LpRealiser::~LpRealiser() { glp_delete_prob(lp_); }

bool LpRealiser::solve(const TruthTable& f, std::vector<double>& solution) {
  ++solves_;
  const int rows = static_cast<int>(num_points(n_));
  for (int p = 0; p < rows; ++p) {
    if (f.get(static_cast<std::uint32_t>(p)))
      glp_set_row_bnds(lp_, p + 1, GLP_LO, 1.0, 0.0);
    else
      glp_set_row_bnds(lp_, p + 1, GLP_UP, 0.0, -1.0);
  }
  glp_smcp parm;
  glp_init_smcp(&parm);
  parm.msg_lev = GLP_MSG_OFF;
  parm.meth = GLP_DUALP;  // the objective is 0, so every basis is dual feasible: the dual simplex starts anywhere
  parm.presolve = GLP_OFF;
  int ret = glp_simplex(lp_, &parm);
  if (ret != 0) {  // a singular or ill-conditioned carried-over basis: start again from the standard one
    glp_std_basis(lp_);
    ret = glp_simplex(lp_, &parm);
  }
  if (ret != 0) throw Error(ErrorCode::kInternal, "GLPK simplex failed (code " + std::to_string(ret) + ")");
  const int status = glp_get_status(lp_);
  if (status != GLP_OPT && status != GLP_FEAS) return false;
  solution.resize(monomials_.size());
  for (std::size_t j = 0; j < monomials_.size(); ++j) solution[j] = glp_get_col_prim(lp_, static_cast<int>(j) + 1);
  return true;
}

std::optional<std::vector<std::int64_t>> LpRealiser::realise(const TruthTable& f) {
  std::vector<double> solution;
  if (!solve(f, solution)) return std::nullopt;
  std::vector<std::int64_t> weights(solution.size());
  // Scale k = #monomials: rounding moves P by < k/2 + tolerance, the margin is k.
  for (const double scale : {static_cast<double>(monomials_.size()), 16.0 * monomials_.size(), 1024.0}) {
    for (std::size_t j = 0; j < solution.size(); ++j) weights[j] = std::llround(solution[j] * scale);
    if (check_certificate(f, n_, monomials_, weights)) return weights;
  }
  throw Error(ErrorCode::kInternal, "LP found weights for a function on " + std::to_string(n_) +
                                        " variables but no rounding of them passed the exact check");
}

std::vector<std::int64_t> transform_certificate(const GroupElement& g, const std::vector<std::uint32_t>& monomials,
                                                const std::vector<std::int64_t>& weights) {
  // (g f)(x) = f(y), and sum_j w_j m_j(y) = sum_j w_j sign_j m'_j(x).
  std::vector<std::int64_t> out(weights.size(), 0);
  for (std::size_t j = 0; j < monomials.size(); ++j) {
    std::uint32_t image = 0;
    int sign = 1;
    for (int i = 0; i < kMaxVars; ++i) {
      if (!((monomials[j] >> i) & 1u)) continue;
      image |= std::uint32_t{1} << g.perm[i];
      if ((g.flips >> i) & 1u) sign = -sign;
    }
    const auto it = std::find(monomials.begin(), monomials.end(), image);
    if (it == monomials.end()) throw Error(ErrorCode::kInternal, "monomial set is not closed under permutations");
    out[static_cast<std::size_t>(it - monomials.begin())] += sign * weights[j];
  }
  return out;
}

}  // namespace quarks::capacity
