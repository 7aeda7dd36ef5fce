// Activation epilogues of the dense kernels (see epilogue.hpp).
#include "ops/dense/epilogue.hpp"

#include <cstddef>

#include "ops/activation/activation_kernels.hpp"

namespace quarks::ops::dense_detail {

bool append_exact_post_op(const Activation& f, dnnl::post_ops& ops) {
  using alg = dnnl::algorithm;
  switch (f.kind) {
    case ActivationKind::kIdentity: return true;
    case ActivationKind::kTanh: ops.append_eltwise(1.0f, alg::eltwise_tanh, 0.0f, 0.0f); return true;
    case ActivationKind::kSigmoid: ops.append_eltwise(1.0f, alg::eltwise_logistic, 0.0f, 0.0f); return true;
    case ActivationKind::kSquare: ops.append_eltwise(1.0f, alg::eltwise_square, 0.0f, 0.0f); return true;
    case ActivationKind::kLeakyRelu:
      // With a zero slope oneDNN switches to the NaN-dropping max(s, 0).
      if (f.alpha == 0.0f) return false;
      ops.append_eltwise(1.0f, alg::eltwise_relu, f.alpha, 0.0f);
      return true;
    case ActivationKind::kRelu:
    case ActivationKind::kGeluErf:
    case ActivationKind::kGeluTanh:
    case ActivationKind::kSilu:
    case ActivationKind::kPolynomial:
    case ActivationKind::kSign:
    case ActivationKind::kHeaviside: return false;
  }
  return false;
}

void apply_activation(const Activation& f, float* y, std::int64_t rows, std::int64_t cols, std::int64_t ld) {
  for (std::int64_t r = 0; r < rows; ++r) {
    float* row = y + r * ld;
    activation(f, row, row, static_cast<std::size_t>(cols));
  }
}

}  // namespace quarks::ops::dense_detail
