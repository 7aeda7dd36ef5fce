// Highway-vectorised kernels of the activation family: activations, multiplex (additive activation
// attention) and output_gate (multiplicative output attention).
//
// Contract for every function here:
//   - single-threaded over the range it is given (the engine splits work across TBB threads);
//   - `y` may alias any input exactly (in place), but must not partially overlap one;
//   - n may be 0; no alignment is required; tails that are not a multiple of the vector are handled;
//   - IEEE semantics for special values: NaN in -> NaN out, ±inf give the mathematical limit.
#pragma once

#include <cstddef>

#include "quarks/activation.hpp"

namespace quarks::ops {

/// Throws quarks::Error(kInvalidArgument), naming `op`, if f cannot be applied: a kind outside the
/// ActivationKind list or a polynomial with more than 16 coefficients. Every function below calls it;
/// kernels that use ops/activation/activation_math-inl.h directly call it once at construction.
void validate_activation(const Activation& f, const char* op);

/// y[i] = f(x[i]).
void activation(const Activation& f, const float* x, float* y, std::size_t n);

/// Multiplex: y[i] = f(s[i] + lambda * a[i * a_stride]); a_stride is 1 (a full run) or 0 (one value
/// broadcast over the run).
void multiplex(const Activation& f, const float* s, const float* a, std::size_t a_stride, float lambda, float* y,
               std::size_t n);

/// Output gate: y[i] = f(s1[i]) * g(s2[i]).
void output_gate(const Activation& f, const Activation& g, const float* s1, const float* s2, float* y, std::size_t n);

}  // namespace quarks::ops
