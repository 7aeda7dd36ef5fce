// `quarks-capacity circuits`: small functions built as quarks graphs run by the engine, once in the
// standard model (sign / ReLU units, linear outputs) and once with gating (output gates), with their
// depth, units and parameters, each checked against a double reference on every input (Boolean) or a
// dense grid / fixed random sample (reals).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace quarks::capacity {

struct CircuitVersion {
  std::string model;            // "standard" or "gating"
  int depth = 0;                // layers of units
  int units = 0;                // neurons; a gated unit (f(s1) g(s2)) counts once
  std::int64_t parameters = 0;  // entries of the weight and bias constants
  std::int64_t nonzero = 0;     // of them, the nonzero ones (selections by unit vectors are mostly zeros)
  std::uint64_t points = 0;     // inputs checked
  double max_error = 0;         // max |output - reference| over them
  double tolerance = 0;         // allowed: 0 for Boolean circuits, the approximation bound for ReLU products
  bool ok() const { return max_error <= tolerance; }
};

struct Circuit {
  std::string name, inputs;
  CircuitVersion standard, gating;
};

// XOR of two +-1 inputs (-x1 x2), parity of n +-1 inputs (prod x_i), the product of two reals in
// [-1,1] and the dot product of two n-vectors in [-1,1]^n. The standard model approximates a product
// by the ReLU interpolation of ((a+b)^2 - (a-b)^2)/4 with `segments` linear pieces per square.
std::vector<Circuit> build_and_check_circuits(int n, int segments);

}  // namespace quarks::capacity
