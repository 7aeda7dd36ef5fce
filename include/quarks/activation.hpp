// quarks — the activation functions f that the quark ops apply: O = f(S).
#pragma once

#include <string>
#include <vector>

namespace quarks {

/// The closed list of activation functions. Every op that takes an Activation (dense, activation,
/// multiplex, output_gate) accepts each of these.
enum class ActivationKind {
  kIdentity,    ///< f(s) = s
  kRelu,        ///< max(s, 0)
  kLeakyRelu,   ///< s >= 0 ? s : alpha·s
  kSigmoid,     ///< 1 / (1 + e^-s)
  kTanh,        ///< tanh(s)
  kGeluErf,     ///< s/2 · (1 + erf(s/√2))            (exact GELU)
  kGeluTanh,    ///< s/2 · (1 + tanh(√(2/π)(s + 0.044715 s³)))
  kSilu,        ///< s · sigmoid(s)                    (a.k.a. swish)
  kSquare,      ///< s²                                (the quadratic activation)
  kPolynomial,  ///< Σ_i coeffs[i]·s^i                 (coeffs[0] is the constant term)
  kSign,        ///< +1 if s >= 0 else -1              (±1 threshold gate; NaN stays NaN)
  kHeaviside,   ///< 1 if s >= 0 else 0                (0/1 threshold gate; NaN stays NaN)
};
inline constexpr int kActivationKindCount = 12;

/// An activation function with its parameters.
struct Activation {
  ActivationKind kind = ActivationKind::kIdentity;
  float alpha = 0.01f;        ///< negative slope, kLeakyRelu only
  std::vector<float> coeffs;  ///< kPolynomial only: coeffs[i] multiplies s^i; at most 16 terms

  static Activation identity() { return {ActivationKind::kIdentity}; }
  static Activation relu() { return {ActivationKind::kRelu}; }
  static Activation leaky_relu(float alpha) { return {ActivationKind::kLeakyRelu, alpha}; }
  static Activation sigmoid() { return {ActivationKind::kSigmoid}; }
  static Activation tanh() { return {ActivationKind::kTanh}; }
  static Activation gelu() { return {ActivationKind::kGeluErf}; }
  static Activation gelu_tanh() { return {ActivationKind::kGeluTanh}; }
  static Activation silu() { return {ActivationKind::kSilu}; }
  static Activation square() { return {ActivationKind::kSquare}; }
  static Activation polynomial(std::vector<float> c) { return {ActivationKind::kPolynomial, 0.0f, std::move(c)}; }
  static Activation sign() { return {ActivationKind::kSign}; }
  static Activation heaviside() { return {ActivationKind::kHeaviside}; }

  /// "relu", "leaky_relu(0.1)", "polynomial(3 terms)", ...
  std::string to_string() const;
  friend bool operator==(const Activation&, const Activation&) = default;
};

/// Short name of a kind: "identity", "relu", "leaky_relu", "sigmoid", "tanh", "gelu", "gelu_tanh",
/// "silu", "square", "polynomial", "sign", "heaviside".
const char* to_string(ActivationKind kind) noexcept;

}  // namespace quarks
