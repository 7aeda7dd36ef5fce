// Host helpers for import-time folding (see host_eval.hpp).
#include "engine/onnx/host_eval.hpp"
#include "ops/contract/shape_utils.hpp"

#include <algorithm>

namespace quarks::onnx_import {

std::int64_t checked_numel(std::span<const std::int64_t> dims, std::int64_t limit) {
  std::int64_t nonzero = 1;
  bool empty = false;
  for (std::int64_t d : dims) {
    if (d == 0) empty = true;
    if (d > 1 && nonzero > limit / d) return -1;
    if (d > 1) nonzero *= d;
  }
  return nonzero > limit ? -1 : empty ? 0 : nonzero;
}

Shape broadcast_shape(const Shape& a, const Shape& b) {
  const int rank = std::max(a.rank(), b.rank());
  Shape out;
  for (int i = 0; i < rank; ++i) {
    const std::int64_t da = i < rank - a.rank() ? 1 : a[i - (rank - a.rank())];
    const std::int64_t db = i < rank - b.rank() ? 1 : b[i - (rank - b.rank())];
    if (da != db && da != 1 && db != 1) {
      throw Error(ErrorCode::kShapeMismatch, "shapes " + a.to_string() + " and " + b.to_string() + " do not broadcast");
    }
    out.push_back(da == 1 ? db : da);
  }
  return out;
}

std::vector<std::int64_t> broadcast_index(const Shape& in, const Shape& out) {
  const int rank = out.rank();
  std::vector<std::int64_t> stride(rank, 0);
  std::int64_t s = 1;
  for (int i = in.rank() - 1; i >= 0; --i) {
    const int o = i + (rank - in.rank());
    stride[o] = in[i] == 1 ? 0 : s;
    s *= in[i];
  }
  std::vector<std::int64_t> index(static_cast<std::size_t>(out.numel()));
  std::vector<std::int64_t> pos(rank, 0);
  for (std::size_t k = 0; k < index.size(); ++k) {
    std::int64_t f = 0;
    for (int d = 0; d < rank; ++d) f += pos[d] * stride[d];
    index[k] = f;
    for (int d = rank - 1; d >= 0; --d) {
      if (++pos[d] < out[d]) break;
      pos[d] = 0;
    }
  }
  return index;
}

Tensor ints_tensor(const Shape& shape, const std::vector<SymInt>& values) {
  Tensor t(DType::kI64, shape);
  for (std::size_t i = 0; i < values.size(); ++i) t.i64()[i] = values[i].known() ? values[i].value : -1;
  return t;
}

Tensor ints_tensor(const Shape& shape, const std::vector<std::int64_t>& values) {
  return Tensor::from_i64(shape, values);
}

std::vector<std::int64_t> reshape_spec(const SymShape& in, const std::vector<SymInt>& target) {
  std::vector<std::int64_t> spec;
  bool inferred = false;
  for (std::size_t i = 0; i < target.size(); ++i) {
    const SymInt& d = target[i];
    if (d.known()) {
      if (d.value == -1) inferred = true;
      spec.push_back(d.value);
    } else if (i < in.size() && d.same_as(in[i])) {
      spec.push_back(0);
    } else if (!inferred) {
      spec.push_back(-1);
      inferred = true;
    } else {
      std::string text;
      for (const SymInt& t : target)
        text += (text.empty() ? "" : ",") + (t.known()          ? std::to_string(t.value)
                                             : t.symbol.empty() ? std::string("?")
                                                                : t.symbol);
      throw Error(ErrorCode::kUnsupported, "the reshape target [" + text + "] of an input of shape " +
                                               detail::to_string(in) +
                                               " has more than one size known only at run time; give concrete input "
                                               "shapes (OnnxImportOptions::input_shapes)");
    }
  }
  return spec;
}

}  // namespace quarks::onnx_import
