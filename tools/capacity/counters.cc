#include "tools/capacity/counters.hpp"

#include <tbb/enumerable_thread_specific.h>
#include <tbb/parallel_for.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <map>
#include <memory>
#include <mutex>
#include <span>

#include "ops/contract/parallel.hpp"
#include "quarks/error.hpp"
#include "tools/capacity/canonical_forms.hpp"
#include "tools/capacity/realise.hpp"
#include "tools/capacity/symmetry.hpp"

namespace quarks::capacity {
namespace {

void check_range(const char* block, int n, int max_n) {
  if (n < 0 || n > max_n)
    throw Error(ErrorCode::kInvalidArgument, std::string(block) + ": n = " + std::to_string(n) +
                                                 " is outside the supported range 0.." + std::to_string(max_n));
}

}  // namespace

double log2_count(std::uint64_t count) { return count == 0 ? 0.0 : std::log2(static_cast<double>(count)); }

std::vector<std::vector<Realised>> canonical_threshold_functions(int n, const Progress& progress, CountResult* stats) {
  check_range("threshold", n, kThresholdMaxN);
  std::vector<std::vector<Realised>> levels(static_cast<std::size_t>(n) + 1);
  levels[0] = {{constant_table(0, false), {-1}}, {constant_table(0, true), {1}}};
  std::uint64_t solves = 0, checks = 2;
  std::mutex progress_mutex;
  for (int k = 1; k <= n; ++k) {
    const std::vector<Realised>& prev = levels[static_cast<std::size_t>(k) - 1];
    const std::vector<std::uint32_t> monomials = monomials_up_to_degree(k, 1);
    std::atomic<std::uint64_t> level_solves{0};
    tbb::enumerable_thread_specific<std::vector<Realised>> found;
    std::atomic<std::uint64_t> done{0};
    const std::string stage = "level " + std::to_string(k) + "/" + std::to_string(n);
    const auto search = [&](const tbb::blocked_range<std::size_t>& r) {
      // GLPK keeps its memory per thread: the LP lives and dies inside this task.
      LpRealiser lp(k, monomials);
      std::vector<Realised>& out = found.local();
      for (std::size_t i = r.begin(); i != r.end(); ++i) {
        const TruthTable& g = prev[i].table;  // f at x_k = -1
        const TruthTable g_hi = k >= 2 ? upper_half(g, k - 1) : TruthTable{};
        for (const Realised& hr : prev) {
          const TruthTable& h = hr.table;  // f at x_k = +1
          if (!leq(g, h)) continue;        // positive in x_k
          // Regular: x_{k-1} >= x_k, i.e. f(x_{k-1}=+1, x_k=-1) >= f(x_{k-1}=-1, x_k=+1).
          if (k >= 2 && !leq(lower_half(h, k - 1), g_hi)) continue;
          const TruthTable f = join(g, h, k - 1);
          if (auto w = lp.realise(f)) out.push_back({f, std::move(*w)});
        }
        const std::uint64_t now = ++done;
        if (progress) {
          std::unique_lock lock(progress_mutex, std::try_to_lock);
          if (lock.owns_lock()) progress(stage, now, prev.size());
        }
      }
      level_solves += lp.solves();
    };
    const tbb::blocked_range<std::size_t> all(0, prev.size(), 1);
    // Serial under ThreadSanitizer, as the engine's kernels (ops/contract/parallel.hpp): libtbb itself is not
    // instrumented, so TSan reports its scheduler's hand-offs as races.
    if (quarks::detail::kSerialIntraOp) {
      search(all);
    } else {
      tbb::parallel_for(all, search);
    }
    std::vector<Realised>& level = levels[static_cast<std::size_t>(k)];
    for (auto& part : found) level.insert(level.end(), part.begin(), part.end());
    solves += level_solves;
    std::sort(level.begin(), level.end(), [](const Realised& a, const Realised& b) { return a.table < b.table; });
    // Every pair was tried once, so repeats would be a bug; realise() checked each certificate.
    checks += level.size();
    if (std::adjacent_find(level.begin(), level.end(),
                           [](const Realised& a, const Realised& b) { return a.table == b.table; }) != level.end())
      throw Error(ErrorCode::kInternal, "threshold: a canonical function was found twice");
  }
  if (stats) {
    stats->lp_solves += solves;
    stats->certificates_checked += checks;
  }
  return levels;
}

CountResult count_threshold(int n, const Progress& progress) {
  CountResult result;
  const auto levels = canonical_threshold_functions(n, progress, &result);
  for (const Realised& f : levels.back()) result.count += regular_orbit_size(f.table, n);
  result.classes = levels.back().size();
  return result;
}

std::vector<Realised> all_threshold_functions(int n) {
  if (n > 5) check_range("all threshold functions", n, 5);
  const auto levels = canonical_threshold_functions(n);
  const std::vector<GroupElement> group = hyperoctahedral_group(n);
  const std::vector<std::uint32_t> monomials = monomials_up_to_degree(n, 1);
  std::vector<Realised> out;
  for (const Realised& c : levels.back()) {
    std::map<TruthTable, std::size_t> members;  // member -> the first group element reaching it
    for (std::size_t e = 0; e < group.size(); ++e) members.emplace(apply(group[e], c.table, n), e);
    for (const auto& [table, e] : members) {
      Realised m{table, transform_certificate(group[e], monomials, c.weights)};
      if (!check_certificate(m.table, n, monomials, m.weights))
        throw Error(ErrorCode::kInternal, "threshold: a moved certificate failed its check");
      out.push_back(std::move(m));
    }
  }
  std::sort(out.begin(), out.end(), [](const Realised& a, const Realised& b) { return a.table < b.table; });
  return out;
}

CountResult count_polynomial_threshold(int n, int degree) {
  check_range("polynomial-threshold", n, kPolynomialThresholdMaxN);
  if (degree < 1) throw Error(ErrorCode::kInvalidArgument, "polynomial-threshold: the degree must be >= 1");
  const std::vector<std::uint32_t> monomials = monomials_up_to_degree(n, degree);
  const SmallGroup group(n);
  LpRealiser lp(n, monomials);
  const std::uint64_t functions = std::uint64_t{1} << num_points(n);
  std::vector<bool> seen(functions, false);
  CountResult result;
  for (std::uint64_t u = 0; u < functions; ++u) {
    if (seen[u]) continue;
    // The orbit of u, with the group element that reaches each member.
    std::vector<std::pair<std::uint64_t, std::size_t>> members;
    for (std::size_t e = 0; e < group.size(); ++e) {
      const std::uint64_t v = group.apply(e, u);
      if (!seen[v]) {
        seen[v] = true;
        members.emplace_back(v, e);
      }
    }
    TruthTable f;
    f.words[0] = u;
    const auto w = lp.realise(f);
    if (!w) continue;
    ++result.classes;
    for (const auto& [v, e] : members) {
      TruthTable m;
      m.words[0] = v;
      if (!check_certificate(m, n, monomials, transform_certificate(group.element(e), monomials, *w)))
        throw Error(ErrorCode::kInternal, "polynomial-threshold: a moved certificate failed its check");
      ++result.certificates_checked;
    }
    result.count += members.size();
  }
  result.lp_solves = lp.solves();
  return result;
}

namespace {

// sum_j w_j m_j(x) at point p for degree-1 weights (bias, w_1..w_n).
std::int64_t linear_sum(const std::vector<std::int64_t>& w, std::uint32_t p, int n) {
  std::int64_t s = w[0];
  for (int i = 0; i < n; ++i)
    s += (p >> i & 1u) ? w[static_cast<std::size_t>(i) + 1] : -w[static_cast<std::size_t>(i) + 1];
  return s;
}

std::vector<std::uint64_t> unique_sorted(std::vector<std::uint64_t> v) {
  std::sort(v.begin(), v.end());
  v.erase(std::unique(v.begin(), v.end()), v.end());
  return v;
}

// The certificate of an output-gating function t: the two gates' integer weights, combined, give t at
// every point (and neither sum is 0 anywhere).
void check_gated_pair(const Realised& a, const Realised& b, std::uint64_t t, int n, GateOutput output) {
  for (std::uint32_t p = 0; p < num_points(n); ++p) {
    const std::int64_t s1 = linear_sum(a.weights, p, n), s2 = linear_sum(b.weights, p, n);
    const bool value = output == GateOutput::kPm1 ? ((s1 > 0) == (s2 > 0)) : (s1 > 0 && s2 > 0);
    if (s1 == 0 || s2 == 0 || value != static_cast<bool>(t >> p & 1u))
      throw Error(ErrorCode::kInternal, "output-gating: a certificate failed its check");
  }
}

CountResult from_functions(const std::vector<std::uint64_t>& functions, const CountResult& stats) {
  CountResult r = stats;
  r.count = functions.size();
  return r;
}

}  // namespace

std::vector<std::uint64_t> output_gating_functions(int n, GateOutput output, CountResult* stats) {
  check_range("output-gating (list)", n, kOutputGatingListMaxN);
  const std::vector<Realised> gates = all_threshold_functions(n);
  const std::uint64_t functions = std::uint64_t{1} << num_points(n);
  // For each realised function, the first pair of gates found (their certificates are checked).
  constexpr std::uint32_t kNone = ~std::uint32_t{0};
  std::vector<std::pair<std::uint32_t, std::uint32_t>> witness(functions, {kNone, kNone});
  for (std::uint32_t i = 0; i < gates.size(); ++i)
    for (std::uint32_t j = i; j < gates.size(); ++j) {
      const std::uint64_t a = gates[i].table.words[0], b = gates[j].table.words[0];
      const std::uint64_t t = output == GateOutput::kPm1 ? ~(a ^ b) & all_ones(n) : a & b;
      if (witness[t].first == kNone) witness[t] = {i, j};
    }
  std::vector<std::uint64_t> out;
  for (std::uint64_t t = 0; t < functions; ++t) {
    const auto [i, j] = witness[t];
    if (i == kNone) continue;
    check_gated_pair(gates[i], gates[j], t, n, output);
    if (stats) ++stats->certificates_checked;
    out.push_back(t);
  }
  return out;
}

namespace {

// Counts the functions combine(f, g) over all pairs of threshold functions f, g on n <= 5 variables, for
// a block that commutes with the cube's symmetries σ: combine(σf, σg) = σ combine(f, g). Any pair is
// the image under some σ of a pair (r, h) with r positive regular (σ takes f to its canonical form),
// so the realised functions are the orbits of {combine(r, h)} over the canonical threshold functions r
// and all threshold functions h (`canonical` and `gates`; combine takes their indexes). `check(r, h, t)` verifies the
// pair's certificate (their integer weights give t at every point) and throws if it fails. Each product is brought to
// canonical form (canonical_forms.hpp) and each orbit adds 2^n n! / |stabiliser|.
template <class Combine, class Check>
CountResult count_pair_orbits(int n, const std::vector<Realised>& canonical, const std::vector<Realised>& gates,
                              const Combine& combine, const Check& check, const Progress& progress,
                              CountResult result) {
  std::vector<std::uint32_t> products;
  products.reserve(canonical.size() * gates.size());
  for (std::size_t i = 0; i < canonical.size(); ++i) {
    for (std::size_t j = 0; j < gates.size(); ++j) {
      const auto t = static_cast<std::uint32_t>(combine(i, j));
      check(canonical[i], gates[j], t);
      products.push_back(t);
    }
    if (progress) progress("pairs", products.size(), canonical.size() * gates.size());
  }
  result.certificates_checked += products.size();
  std::sort(products.begin(), products.end());
  products.erase(std::unique(products.begin(), products.end()), products.end());
  std::vector<std::uint32_t> least(products.size()), stabiliser(products.size());
  constexpr std::size_t kChunk = std::size_t{1} << 18;  // tables per progress report
  for (std::size_t begin = 0; begin < products.size(); begin += kChunk) {
    const std::size_t size = std::min(kChunk, products.size() - begin);
    canonical_forms(std::span(products).subspan(begin, size), n, std::span(least).subspan(begin, size),
                    std::span(stabiliser).subspan(begin, size));
    if (progress) progress("canonical forms", begin + size, products.size());
  }
  std::vector<std::pair<std::uint32_t, std::uint32_t>> orbits(products.size());
  for (std::size_t i = 0; i < products.size(); ++i) orbits[i] = {least[i], stabiliser[i]};
  std::sort(orbits.begin(), orbits.end());
  orbits.erase(std::unique(orbits.begin(), orbits.end()), orbits.end());
  const std::uint64_t group = group_order(n);
  for (std::size_t i = 0; i < orbits.size(); ++i) {
    if (i > 0 && orbits[i].first == orbits[i - 1].first)
      throw Error(ErrorCode::kInternal, "one canonical form with two stabiliser sizes");
    result.count += group / orbits[i].second;
  }
  result.classes = orbits.size();
  return result;
}

// The table of g(-x) from the table of g(x): point p of -x is p with every bit flipped.
std::uint64_t negated_inputs(std::uint64_t table, int n) {
  std::uint64_t out = 0;
  for (std::uint32_t p = 0; p < num_points(n); ++p) out |= (table >> (p ^ (num_points(n) - 1)) & 1u) << p;
  return out;
}

// sign(A(x)(w.x) + b) at point p for the gate sum `gate_sum` and the unit's weights w (bias first).
std::int64_t shared_gated_sum(std::int64_t gate_sum, const std::vector<std::int64_t>& w, std::uint32_t p, int n) {
  return (gate_sum > 0 ? 1 : -1) * (linear_sum(w, p, n) - w[0]) + w[0];
}

}  // namespace

CountResult count_output_gating(int n, GateOutput output, const Progress& progress) {
  check_range("output-gating", n, kOutputGatingMaxN);
  CountResult stats;
  const std::vector<Realised> canonical = canonical_threshold_functions(n, {}, &stats).back();
  const std::vector<Realised> gates = all_threshold_functions(n);
  return count_pair_orbits(
      n, canonical, gates,
      [&](std::size_t i, std::size_t j) {
        const std::uint64_t a = canonical[i].table.words[0], b = gates[j].table.words[0];
        return output == GateOutput::kPm1 ? ~(a ^ b) & all_ones(n) : a & b;
      },
      [&](const Realised& a, const Realised& b, std::uint64_t t) { check_gated_pair(a, b, t, n, output); }, progress,
      stats);
}

std::vector<std::uint64_t> multiplexing_functions(int n, CountResult* stats) {
  check_range("multiplexing", n, kMultiplexingMaxN);
  if (n < 1) throw Error(ErrorCode::kInvalidArgument, "multiplexing: needs n >= 1 (x_1 selects the half)");
  const std::vector<Realised> gates = all_threshold_functions(n - 1);
  const int m = n - 1;
  std::vector<std::int64_t> bound(gates.size());  // max |w.x' + b| over the cube
  for (std::size_t i = 0; i < gates.size(); ++i) {
    std::int64_t b = 0;
    for (const std::int64_t w : gates[i].weights) b += w < 0 ? -w : w;
    bound[i] = b;
  }
  std::vector<std::uint64_t> out;
  out.reserve(gates.size() * gates.size());
  for (std::size_t i = 0; i < gates.size(); ++i)      // w-gate: the product where x_1 = -1
    for (std::size_t j = 0; j < gates.size(); ++j) {  // v-gate: the product where x_1 = +1
      const std::int64_t lambda = 1 + std::max(bound[i], bound[j]);
      std::uint64_t table = 0;
      for (std::uint32_t p = 0; p < num_points(n); ++p) {
        const std::uint32_t rest = p >> 1;
        const std::int64_t x1 = (p & 1u) ? 1 : -1;
        const std::int64_t s1 = linear_sum(gates[i].weights, rest, m) + lambda * (1 + x1);
        const std::int64_t s2 = linear_sum(gates[j].weights, rest, m) + lambda * (1 - x1);
        if (s1 == 0 || s2 == 0) throw Error(ErrorCode::kInternal, "multiplexing: a gate sum is 0");
        if ((s1 > 0) == (s2 > 0)) table |= std::uint64_t{1} << p;
      }
      // The construction's claim, checked: v-gate on the x_1 = +1 half, w-gate on the other.
      for (std::uint32_t p = 0; p < num_points(n); ++p) {
        const TruthTable& half = (p & 1u) ? gates[j].table : gates[i].table;
        if (static_cast<bool>(table >> p & 1u) != half.get(p >> 1))
          throw Error(ErrorCode::kInternal, "multiplexing: the product is not the selected gate");
      }
      out.push_back(table);
    }
  if (stats) stats->certificates_checked += out.size();
  return unique_sorted(std::move(out));
}

CountResult count_multiplexing(int n) {
  CountResult stats;
  const auto functions = multiplexing_functions(n, &stats);
  return from_functions(functions, stats);
}

std::vector<std::uint64_t> synaptic_gating_functions(int n, SynapticGates kind, CountResult* stats) {
  const bool shared = kind == SynapticGates::kShared;
  check_range(shared ? "synaptic-gating (shared, list)" : "synaptic-gating (per-synapse)", n,
              shared ? kSynapticSharedListMaxN : kSynapticPerSynapseMaxN);
  const std::vector<Realised> gates = all_threshold_functions(n);
  const std::uint32_t points = num_points(n);
  const std::uint64_t functions = std::uint64_t{1} << points;
  // Gate signs at every point (all certificates are checked, so no sum is 0).
  std::vector<std::vector<std::int64_t>> sums(gates.size(), std::vector<std::int64_t>(points));
  for (std::size_t i = 0; i < gates.size(); ++i)
    for (std::uint32_t p = 0; p < points; ++p) sums[i][p] = linear_sum(gates[i].weights, p, n);
  // A candidate's certificate: the gate indexes and the unit's weights; checked before it counts.
  std::vector<bool> found(functions, false);
  std::vector<std::uint64_t> out;
  const auto check_and_add = [&](std::uint64_t table, const auto& unit_sum) {
    if (found[table]) return;
    for (std::uint32_t p = 0; p < points; ++p) {
      const std::int64_t s = unit_sum(p);
      if (s == 0 || (s > 0) != static_cast<bool>(table >> p & 1u))
        throw Error(ErrorCode::kInternal, "synaptic-gating: a certificate failed its check");
    }
    found[table] = true;
    out.push_back(table);
    if (stats) ++stats->certificates_checked;
  };
  if (shared) {
    // sign(A(w.x) + b) = g(x) where A = +1 and g(-x) where A = -1, g = sign(w.x + b).
    const std::uint32_t negate = points - 1;  // the point of -x
    for (std::size_t a = 0; a < gates.size(); ++a)
      for (std::size_t g = 0; g < gates.size(); ++g) {
        std::uint64_t table = 0;
        for (std::uint32_t p = 0; p < points; ++p) {
          const bool value = gates[a].table.get(p) ? gates[g].table.get(p) : gates[g].table.get(p ^ negate);
          table |= std::uint64_t{value} << p;
        }
        if (found[table]) continue;
        const std::vector<std::int64_t>& w = gates[g].weights;
        check_and_add(table, [&](std::uint32_t p) { return shared_gated_sum(sums[a][p], w, p, n); });
      }
  } else {
    // sign(sum_j w_j A_j(x) x_j + b) = F(z) with z_j = A_j(x) x_j and F = sign(w.z + b) a threshold function.
    std::vector<std::size_t> choice(static_cast<std::size_t>(n), 0);
    std::vector<std::uint32_t> z_point(points);
    while (true) {
      for (std::uint32_t p = 0; p < points; ++p) {
        std::uint32_t q = 0;
        for (int j = 0; j < n; ++j) {
          const bool xj = p >> j & 1u, aj = gates[choice[static_cast<std::size_t>(j)]].table.get(p);
          q |= std::uint32_t{xj == aj} << j;  // z_j = +1 iff x_j and A_j agree
        }
        z_point[p] = q;
      }
      for (const Realised& unit : gates) {
        std::uint64_t table = 0;
        for (std::uint32_t p = 0; p < points; ++p) table |= std::uint64_t{unit.table.get(z_point[p])} << p;
        if (found[table]) continue;
        check_and_add(table, [&](std::uint32_t p) {
          std::int64_t s = unit.weights[0];
          for (int j = 0; j < n; ++j) {
            const std::int64_t gate = sums[choice[static_cast<std::size_t>(j)]][p] > 0 ? 1 : -1;
            const std::int64_t xj = (p >> j & 1u) ? 1 : -1;
            s += unit.weights[static_cast<std::size_t>(j) + 1] * gate * xj;
          }
          return s;
        });
      }
      int j = 0;
      while (j < n && ++choice[static_cast<std::size_t>(j)] == gates.size()) choice[static_cast<std::size_t>(j++)] = 0;
      if (j == n) break;
    }
  }
  return unique_sorted(std::move(out));
}

CountResult count_synaptic_gating(int n, SynapticGates gates, const Progress& progress) {
  if (gates == SynapticGates::kPerSynapse) {
    CountResult stats;
    const auto functions = synaptic_gating_functions(n, gates, &stats);
    return from_functions(functions, stats);
  }
  // Shared: sign(A(x)(w.x) + b) = g(x) where A = +1 and g(-x) where A = -1, g = sign(w.x + b); A(σx)
  // and g(σx) move together under a symmetry σ, so the pairs (A, g) count by orbits.
  check_range("synaptic-gating (shared)", n, kSynapticSharedMaxN);
  CountResult stats;
  const std::vector<Realised> canonical = canonical_threshold_functions(n, {}, &stats).back();
  const std::vector<Realised> all = all_threshold_functions(n);
  std::vector<std::uint64_t> negated(all.size());
  for (std::size_t j = 0; j < all.size(); ++j) negated[j] = negated_inputs(all[j].table.words[0], n);
  return count_pair_orbits(
      n, canonical, all,
      [&](std::size_t i, std::size_t j) {
        const std::uint64_t a = canonical[i].table.words[0];
        return (a & all[j].table.words[0]) | (~a & negated[j] & all_ones(n));
      },
      [&](const Realised& a, const Realised& g, std::uint64_t t) {
        for (std::uint32_t p = 0; p < num_points(n); ++p) {
          const std::int64_t s = shared_gated_sum(linear_sum(a.weights, p, n), g.weights, p, n);
          if (s == 0 || (s > 0) != static_cast<bool>(t >> p & 1u))
            throw Error(ErrorCode::kInternal, "synaptic-gating: a certificate failed its check");
        }
      },
      progress, stats);
}

}  // namespace quarks::capacity
