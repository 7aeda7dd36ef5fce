// Names of activations (public API).
#include <string>

#include "quarks/activation.hpp"

namespace quarks {

const char* to_string(ActivationKind kind) noexcept {
  switch (kind) {
    case ActivationKind::kIdentity: return "identity";
    case ActivationKind::kRelu: return "relu";
    case ActivationKind::kLeakyRelu: return "leaky_relu";
    case ActivationKind::kSigmoid: return "sigmoid";
    case ActivationKind::kTanh: return "tanh";
    case ActivationKind::kGeluErf: return "gelu";
    case ActivationKind::kGeluTanh: return "gelu_tanh";
    case ActivationKind::kSilu: return "silu";
    case ActivationKind::kSquare: return "square";
    case ActivationKind::kPolynomial: return "polynomial";
    case ActivationKind::kSign: return "sign";
    case ActivationKind::kHeaviside: return "heaviside";
  }
  return "?";
}

std::string Activation::to_string() const {
  std::string s = quarks::to_string(kind);
  if (kind == ActivationKind::kLeakyRelu) s += "(" + std::to_string(alpha) + ")";
  if (kind == ActivationKind::kPolynomial) s += "(" + std::to_string(coeffs.size()) + " terms)";
  return s;
}

}  // namespace quarks
