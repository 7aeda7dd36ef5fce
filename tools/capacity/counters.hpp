// Exact counts of the Boolean functions {-1,1}^n -> {-1,1} each building block realises. Every counted
// function has a certificate (integer weights) that was checked at every point of the cube.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "tools/capacity/truth_table.hpp"

namespace quarks::capacity {

// A function with its checked certificate (weights over the monomials of its block, constant first).
struct Realised {
  TruthTable table;
  std::vector<std::int64_t> weights;
};

struct CountResult {
  std::uint64_t count = 0;                 // realisable functions of n (or fewer) variables
  std::uint64_t classes = 0;               // of them, classes under input permutations and sign flips
  std::uint64_t lp_solves = 0;             // LPs solved
  std::uint64_t certificates_checked = 0;  // exact certificate checks that passed
};

// Progress of a long count: (stage, done, total) with done <= total; called from the counting threads
// (serialised), at most a few times per second is the caller's business.
using Progress = std::function<void(const std::string& stage, std::uint64_t done, std::uint64_t total)>;

// Largest n each counter accepts.
inline constexpr int kThresholdMaxN = 8;
inline constexpr int kPolynomialThresholdMaxN = 4;
inline constexpr int kOutputGatingMaxN = 5;
inline constexpr int kOutputGatingListMaxN = 4;  // output_gating_functions
inline constexpr int kMultiplexingMaxN = 5;
inline constexpr int kSynapticSharedMaxN = 5;
inline constexpr int kSynapticSharedListMaxN = 4;  // synaptic_gating_functions, shared
inline constexpr int kSynapticPerSynapseMaxN = 3;

// The positive regular threshold functions (one per class) on k = 0..n variables, each with weights
// w_0 (the bias) then w_1 >= ... not necessarily sorted, checked. levels[k] is sorted by table.
// Built level by level: f on k variables restricted to x_k = -1 and +1 gives two functions of level k-1
// with f- <= f+; every such pair that keeps x_{k-1} >= x_k is tried by LP.
std::vector<std::vector<Realised>> canonical_threshold_functions(int n, const Progress& progress = {},
                                                                 CountResult* stats = nullptr);

// sign(w.x + b): the sum of the orbit sizes of the canonical functions.
CountResult count_threshold(int n, const Progress& progress = {});

// Every threshold function on n <= 5 variables with its certificate (the canonical ones moved by the group).
std::vector<Realised> all_threshold_functions(int n);

// sign(P(x)), P of degree <= d: one LP per class of all 2^(2^n) functions (n <= 4).
CountResult count_polynomial_threshold(int n, int degree);

enum class GateOutput { kPm1, k01 };
// Output gating of two threshold gates on the same inputs: {f g} (pm1) or {f AND g} (01, +1 = true).
// Counted by orbits: the products r·h of every canonical threshold function r with every threshold
// function h (each pair's integer weights checked at every point) are brought to canonical form under
// the cube's symmetries (canonical_forms.hpp), and each orbit adds 2^n n! / |stabiliser|. n <= 5.
CountResult count_output_gating(int n, GateOutput output, const Progress& progress = {});
// The tables of the functions output gating realises (n <= 4), sorted: every pair of gates, listed.
std::vector<std::uint64_t> output_gating_functions(int n, GateOutput output, CountResult* stats = nullptr);

// Multiplexing, the lower-bound construction for output gating (n >= 1): the product of
// sign(w.x' + b + L(1 + x_1)) and sign(v.x' + c + L(1 - x_1)), x' = (x_2..x_n), with L larger than
// |w.x' + b| and |v.x' + c| everywhere: the product is sign(v.x' + c) where x_1 = +1 and sign(w.x' + b)
// where x_1 = -1, so it reaches T(n-1)^2 functions. Each is built with integer weights (L = 1 + the
// largest |sum|) and the product of the two n-input gates is checked at every point.
CountResult count_multiplexing(int n);
std::vector<std::uint64_t> multiplexing_functions(int n, CountResult* stats = nullptr);

// Synaptic gating: a threshold unit whose synapses are multiplied by threshold gates A = sign(u.x + c)
// on the same inputs; the bias is not a synapse and is not gated.
//   shared:      sign(A(x) (w.x) + b)                      (one gate for every synapse; n <= 5)
//   per-synapse: sign(sum_j w_j A_j(x) x_j + b)            (a gate A_j per synapse;      n <= 3)
enum class SynapticGates { kShared, kPerSynapse };
// shared is counted by orbits like output gating (n <= 5); per-synapse lists every gate tuple (n <= 3).
CountResult count_synaptic_gating(int n, SynapticGates gates, const Progress& progress = {});
std::vector<std::uint64_t> synaptic_gating_functions(int n, SynapticGates gates, CountResult* stats = nullptr);

// log2 of a count (0 for 0).
double log2_count(std::uint64_t count);

}  // namespace quarks::capacity
