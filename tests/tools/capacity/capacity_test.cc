// tools/capacity: the counters against independent references — OEIS A000609 for threshold gates,
// brute force over all 2^(2^n) functions (one LP each, no symmetry), threshold functions enumerated from
// small integer weights (no LP at all), and the exact certificate check on wrong certificates.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <random>
#include <set>
#include <vector>

#include "quarks/error.hpp"
#include "tools/capacity/counters.hpp"
#include "tools/capacity/realise.hpp"
#include "tools/capacity/symmetry.hpp"
#include "tools/capacity/truth_table.hpp"

namespace quarks::capacity {
namespace {

TruthTable small_table(std::uint64_t bits) {
  TruthTable t;
  t.words[0] = bits;
  return t;
}

// Every function on n <= 4 variables that the monomials realise, by one LP per function.
std::vector<std::uint64_t> brute_force(int n, const std::vector<std::uint32_t>& monomials) {
  LpRealiser lp(n, monomials);
  std::vector<std::uint64_t> out;
  for (std::uint64_t u = 0; u < (std::uint64_t{1} << num_points(n)); ++u) {
    const TruthTable f = small_table(u);
    if (const auto w = lp.realise(f)) {
      EXPECT_TRUE(check_certificate(f, n, monomials, *w));
      out.push_back(u);
    }
  }
  return out;
}

// Threshold functions from every integer weight vector in [-3,3]^n and bias in [-13,13] whose sum is
// never 0 on the cube: for n <= 4 these small weights reach every threshold function.
std::set<std::uint64_t> from_small_weights(int n) {
  std::set<std::uint64_t> out;
  std::vector<int> w(static_cast<std::size_t>(n), -3);
  while (true) {
    for (int b = -13; b <= 13; ++b) {
      std::uint64_t table = 0;
      bool zero = false;
      for (std::uint32_t p = 0; p < num_points(n); ++p) {
        int sum = b;
        for (int i = 0; i < n; ++i)
          sum += (p >> i & 1u) ? w[static_cast<std::size_t>(i)] : -w[static_cast<std::size_t>(i)];
        zero = zero || sum == 0;
        if (sum > 0) table |= std::uint64_t{1} << p;
      }
      if (!zero) out.insert(table);
    }
    int i = 0;
    while (i < n && w[static_cast<std::size_t>(i)] == 3) w[static_cast<std::size_t>(i++)] = -3;
    if (i == n) break;
    ++w[static_cast<std::size_t>(i)];
  }
  return out;
}

TEST(Threshold, ReproducesOeisA000609UpToSix) {
  // OEIS A000609: threshold functions of n or fewer variables.
  const std::uint64_t expected[] = {2, 4, 14, 104, 1882, 94572, 15028134};
  for (int n = 0; n <= 6; ++n) {
    const CountResult r = count_threshold(n);
    EXPECT_EQ(r.count, expected[n]) << "n = " << n;
    EXPECT_GE(r.certificates_checked, r.classes);
  }
}

TEST(Threshold, MatchesBruteForceLpAndSmallIntegerWeights) {
  for (int n = 0; n <= 4; ++n) {
    const auto lp = brute_force(n, monomials_up_to_degree(n, 1));
    const std::set<std::uint64_t> weights = from_small_weights(n);
    EXPECT_EQ(std::set<std::uint64_t>(lp.begin(), lp.end()), weights) << "n = " << n;
    EXPECT_EQ(count_threshold(n).count, lp.size()) << "n = " << n;
  }
}

TEST(Threshold, CanonicalFunctionsArePositiveRegularAndTheirOrbitsPartitionTheCount) {
  for (int n = 1; n <= 4; ++n) {
    const auto levels = canonical_threshold_functions(n);
    const auto group = hyperoctahedral_group(n);
    std::set<TruthTable> covered;
    std::uint64_t total = 0;
    for (const Realised& f : levels.back()) {
      EXPECT_TRUE(is_positive_regular(f.table, n));
      EXPECT_TRUE(check_certificate(f.table, n, monomials_up_to_degree(n, 1), f.weights));
      const auto members = orbit(f.table, n, group);
      EXPECT_EQ(members.size(), regular_orbit_size(f.table, n));
      for (const TruthTable& m : members) EXPECT_TRUE(covered.insert(m).second) << "orbits overlap at n = " << n;
      total += members.size();
    }
    const auto all = all_threshold_functions(n);
    EXPECT_EQ(total, all.size());
    for (const Realised& f : all) EXPECT_TRUE(covered.count(f.table));
  }
}

TEST(PolynomialThreshold, MatchesBruteForceLp) {
  for (int n = 1; n <= 3; ++n)
    for (int d = 1; d <= n; ++d)
      EXPECT_EQ(count_polynomial_threshold(n, d).count, brute_force(n, monomials_up_to_degree(n, d)).size())
          << "n = " << n << ", d = " << d;
  EXPECT_EQ(count_polynomial_threshold(4, 2).count, brute_force(4, monomials_up_to_degree(4, 2)).size());
  // Degree 1 is the threshold gate; degree n realises every function.
  EXPECT_EQ(count_polynomial_threshold(4, 1).count, 1882u);
  EXPECT_EQ(count_polynomial_threshold(4, 4).count, 65536u);
}

TEST(OutputGating, MatchesProductsOfBruteForceThresholdFunctions) {
  for (int n = 0; n <= 4; ++n) {
    const auto gates = brute_force(n, monomials_up_to_degree(n, 1));
    std::set<std::uint64_t> products, ands;
    for (const std::uint64_t f : gates)
      for (const std::uint64_t g : gates) {
        products.insert(~(f ^ g) & all_ones(n));
        ands.insert(f & g);
      }
    EXPECT_EQ(count_output_gating(n, GateOutput::kPm1).count, products.size()) << "n = " << n;
    EXPECT_EQ(count_output_gating(n, GateOutput::k01).count, ands.size()) << "n = " << n;
  }
}

TEST(OutputGating, ProductsLieBetweenThresholdAndDegreeTwo) {
  // sign(S1) sign(S2) = sign(S1 S2): every product is a degree-2 polynomial threshold function; from
  // n = 2 on (XOR) gating realises more than one gate.
  for (int n = 2; n <= 4; ++n) {
    const std::uint64_t products = count_output_gating(n, GateOutput::kPm1).count;
    EXPECT_GT(products, count_threshold(n).count) << "n = " << n;
    EXPECT_LE(products, count_polynomial_threshold(n, 2).count) << "n = " << n;
  }
}

TEST(OutputGating, EveryProductIsADegreeTwoPolynomialThresholdFunction) {
  for (int n = 1; n <= 4; ++n) {
    const auto ptf2 = brute_force(n, monomials_up_to_degree(n, 2));
    for (const std::uint64_t t : output_gating_functions(n, GateOutput::kPm1))
      EXPECT_TRUE(std::binary_search(ptf2.begin(), ptf2.end(), t)) << "n = " << n << ", table " << t;
  }
}

TEST(Multiplexing, ReachesTheSquareOfTheThresholdCountInsideOutputGating) {
  for (int n = 1; n <= 5; ++n) {
    const std::uint64_t t = count_threshold(n - 1).count;
    const auto mux = multiplexing_functions(n);
    EXPECT_EQ(mux.size(), t * t) << "n = " << n;
    if (n > kOutputGatingListMaxN) continue;
    const auto gating = output_gating_functions(n, GateOutput::kPm1);
    for (const std::uint64_t f : mux) EXPECT_TRUE(std::binary_search(gating.begin(), gating.end(), f));
  }
  EXPECT_THROW(count_multiplexing(0), Error);
}

// sign(sum of int sums) with zero sums skipped: the table, or nothing when some point sums to 0.
template <typename Sum>
bool table_of(int n, Sum sum, std::uint64_t& table) {
  table = 0;
  for (std::uint32_t p = 0; p < num_points(n); ++p) {
    const int s = sum(p);
    if (s == 0) return false;
    if (s > 0) table |= std::uint64_t{1} << p;
  }
  return true;
}

int dot(const std::vector<int>& w, std::uint32_t p) {  // w[0] + sum_i w[i+1] x_i
  int s = w[0];
  for (std::size_t i = 1; i < w.size(); ++i) s += (p >> (i - 1) & 1u) ? w[i] : -w[i];
  return s;
}

// Every integer vector (bias in [-bias, bias], weights in [-2, 2]) of n + 1 entries.
std::vector<std::vector<int>> small_weight_vectors(int n, int bias) {
  std::vector<std::vector<int>> out;
  std::vector<int> w(static_cast<std::size_t>(n) + 1, -2);
  w[0] = -bias;
  while (true) {
    out.push_back(w);
    std::size_t i = 0;
    while (i < w.size() && w[i] == (i == 0 ? bias : 2)) w[i] = i == 0 ? -bias : -2, ++i;
    if (i == w.size()) break;
    ++w[i];
  }
  return out;
}

TEST(SynapticGating, SharedGateMatchesSmallIntegerWeights) {
  // For n <= 3 weights in [-2, 2] reach every threshold function, so they reach every shared-gated one.
  for (int n = 1; n <= 3; ++n) {
    const auto vectors = small_weight_vectors(n, 2 * n + 1);
    std::set<std::uint64_t> reference;
    for (const auto& u : vectors) {
      std::uint64_t gate = 0;
      if (!table_of(
              n, [&](std::uint32_t p) { return dot(u, p); }, gate))
        continue;
      for (const auto& w : vectors) {
        std::uint64_t t = 0;
        const auto unit = [&](std::uint32_t p) {
          const int a = (gate >> p & 1u) ? 1 : -1;
          return a * (dot(w, p) - w[0]) + w[0];
        };
        if (table_of(n, unit, t)) reference.insert(t);
      }
    }
    const auto counted = synaptic_gating_functions(n, SynapticGates::kShared);
    EXPECT_EQ(std::set<std::uint64_t>(counted.begin(), counted.end()), reference) << "n = " << n;
  }
}

// The orbit count (pairs of a canonical gate and any unit, by canonical forms) equals the plain list of
// every (gate, unit) pair.
TEST(SynapticGating, SharedOrbitCountMatchesTheListOfAllPairs) {
  for (int n = 0; n <= kSynapticSharedListMaxN; ++n)
    EXPECT_EQ(count_synaptic_gating(n, SynapticGates::kShared).count,
              synaptic_gating_functions(n, SynapticGates::kShared).size())
        << "n = " << n;
}

TEST(SynapticGating, PerSynapseGatesMatchSmallIntegerWeights) {
  const int n = 2;
  const auto vectors = small_weight_vectors(n, 5);
  std::vector<std::uint64_t> gates;
  for (const auto& u : vectors) {
    std::uint64_t t = 0;
    if (table_of(
            n, [&](std::uint32_t p) { return dot(u, p); }, t))
      gates.push_back(t);
  }
  std::set<std::uint64_t> reference;
  for (const std::uint64_t a1 : std::set<std::uint64_t>(gates.begin(), gates.end()))
    for (const std::uint64_t a2 : std::set<std::uint64_t>(gates.begin(), gates.end()))
      for (const auto& w : vectors) {
        std::uint64_t t = 0;
        const auto unit = [&](std::uint32_t p) {
          const int z1 = ((a1 >> p & 1u) ? 1 : -1) * ((p & 1u) ? 1 : -1);
          const int z2 = ((a2 >> p & 1u) ? 1 : -1) * ((p & 2u) ? 1 : -1);
          return w[0] + w[1] * z1 + w[2] * z2;
        };
        if (table_of(n, unit, t)) reference.insert(t);
      }
  const auto counted = synaptic_gating_functions(n, SynapticGates::kPerSynapse);
  EXPECT_EQ(std::set<std::uint64_t>(counted.begin(), counted.end()), reference);
  // Per-synapse gates contain the shared gate (all A_j equal), which contains the plain threshold gate.
  for (int k = 1; k <= 2; ++k) {
    EXPECT_GE(count_synaptic_gating(k, SynapticGates::kPerSynapse).count,
              count_synaptic_gating(k, SynapticGates::kShared).count);
    EXPECT_GE(count_synaptic_gating(k, SynapticGates::kShared).count, count_threshold(k).count);
  }
}

TEST(Certificate, RejectsWrongCertificates) {
  const int n = 3;
  const auto monomials = monomials_up_to_degree(n, 1);
  // Majority of three: weights (b; w1, w2, w3) = (0; 1, 1, 1).
  TruthTable maj;
  for (std::uint32_t p = 0; p < 8; ++p) maj.set(p, __builtin_popcount(p) >= 2);
  EXPECT_TRUE(check_certificate(maj, n, monomials, {0, 1, 1, 1}));
  EXPECT_FALSE(check_certificate(maj, n, monomials, {0, 1, 1, -1}));  // wrong sign somewhere
  EXPECT_FALSE(check_certificate(maj, n, monomials, {1, 1, 1, 0}));   // zero at x = (+1, -1, .)
  EXPECT_FALSE(check_certificate(maj, n, monomials, {0, 1, 1}));      // too few weights
  TruthTable flipped = maj;
  flipped.set(5, !flipped.get(5));
  EXPECT_FALSE(check_certificate(flipped, n, monomials, {0, 1, 1, 1}));
  // An LP certificate stops passing when one point of the function changes.
  LpRealiser lp(n, monomials);
  const auto w = lp.realise(maj);
  ASSERT_TRUE(w.has_value());
  EXPECT_TRUE(check_certificate(maj, n, monomials, *w));
  EXPECT_FALSE(check_certificate(flipped, n, monomials, *w));
  // XOR is no threshold function: the LP finds nothing.
  TruthTable x;
  for (std::uint32_t p = 0; p < 4; ++p) x.set(p, __builtin_popcount(p) == 1);
  LpRealiser lp2(2, monomials_up_to_degree(2, 1));
  EXPECT_FALSE(lp2.realise(x).has_value());
  LpRealiser lp3(2, monomials_up_to_degree(2, 2));
  EXPECT_TRUE(lp3.realise(x).has_value());
}

TEST(Symmetry, MovedCertificatesRealiseMovedFunctions) {
  std::mt19937 rng(7);
  for (int n = 2; n <= 4; ++n) {
    const auto group = hyperoctahedral_group(n);
    const SmallGroup small(n);
    ASSERT_EQ(small.size(), group.size());
    for (const int d : {1, 2}) {
      const auto monomials = monomials_up_to_degree(n, d);
      LpRealiser lp(n, monomials);
      for (int trial = 0; trial < 20; ++trial) {
        const TruthTable f = small_table(rng() & all_ones(n));
        const auto w = lp.realise(f);
        if (!w) continue;
        const std::size_t e = rng() % group.size();
        const TruthTable moved = apply(group[e], f, n);
        EXPECT_EQ(moved.words[0], small.apply(e, f.words[0]));
        EXPECT_TRUE(check_certificate(moved, n, monomials, transform_certificate(group[e], monomials, *w)));
      }
    }
  }
}

TEST(Counters, RejectNOutsideTheirRange) {
  EXPECT_THROW(count_threshold(kThresholdMaxN + 1), Error);
  EXPECT_THROW(count_polynomial_threshold(kPolynomialThresholdMaxN + 1, 2), Error);
  EXPECT_THROW(count_output_gating(kOutputGatingMaxN + 1, GateOutput::kPm1), Error);
  EXPECT_THROW(output_gating_functions(kOutputGatingListMaxN + 1, GateOutput::kPm1), Error);
  EXPECT_THROW(count_multiplexing(kMultiplexingMaxN + 1), Error);
  EXPECT_THROW(count_synaptic_gating(kSynapticSharedMaxN + 1, SynapticGates::kShared), Error);
  EXPECT_THROW(synaptic_gating_functions(kSynapticSharedListMaxN + 1, SynapticGates::kShared), Error);
  EXPECT_THROW(count_synaptic_gating(kSynapticPerSynapseMaxN + 1, SynapticGates::kPerSynapse), Error);
}

}  // namespace
}  // namespace quarks::capacity
