// Elementwise chains that spell out an activation or a normalisation, as ONNX exporters write them,
// collapsed into the one quarks op:
//   x·0.5·(1 + erf(x/√2))                          -> activation gelu(x)
//   0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))     -> activation gelu_tanh(x)
//   x · 1/sqrt(mean(x²) + eps) [· w]               -> rms_norm(x, w, eps)
//   (x - mean(x)) / sqrt(mean((x - mean(x))²) + eps) [· γ] [+ β]  -> layer_norm(x, γ, β, eps)
// Operands of commutative ops may come in either order. Every intermediate value must be read only
// inside the chain (else the chain's partial results are needed elsewhere and nothing is fused).
#include <cmath>
#include <optional>

#include "engine/passes/graph_edit.hpp"
#include "engine/passes/passes.hpp"

namespace quarks::detail {
namespace {

class Matcher {
 public:
  explicit Matcher(GraphIR& g) : g_(g), uses_(count_uses(g)), dead_(g.nodes.size(), false) {}

  // The node producing `v` if it has kind `op`, is not yet consumed by a fusion, and (unless `shared`)
  // `v` is read only once and is not a graph output.
  const Node* producer(ValueId v, OpKind op, bool shared = false) const {
    const ValueInfo& info = g_.values[v];
    if (info.kind != ValueKind::kIntermediate || info.producer < 0) return nullptr;
    const Node& n = g_.nodes[info.producer];
    if (n.op != op || dead_[info.producer]) return nullptr;
    if (!shared && (uses_[v] != 1 || is_graph_output(g_, v))) return nullptr;
    return &n;
  }
  const Node* binary(ValueId v, BinaryOpKind k) const {
    const Node* n = producer(v, OpKind::kBinary);
    return n && n->attr<BinaryAttrs>().op == k ? n : nullptr;
  }
  const Node* unary(ValueId v, UnaryOpKind k) const {
    const Node* n = producer(v, OpKind::kUnary);
    return n && n->attr<UnaryAttrs>().op == k ? n : nullptr;
  }
  const Node* activation(ValueId v, ActivationKind k) const {
    const Node* n = producer(v, OpKind::kActivation);
    return n && n->attr<ActivationAttrs>().f.kind == k ? n : nullptr;
  }
  // A mean over the last axis with kept dims.
  const Node* mean_last_axis(ValueId v) const {
    const Node* n = producer(v, OpKind::kReduce);
    if (!n) return nullptr;
    const ReduceAttrs& a = n->attr<ReduceAttrs>();
    const int rank = static_cast<int>(g_.values[n->inputs[0]].shape.size());
    if (a.op != ReduceOpKind::kMean || !a.keepdims || a.axes.size() != 1) return nullptr;
    return a.axes[0] == -1 || a.axes[0] == rank - 1 ? n : nullptr;
  }
  // A one-element f32 constant's value.
  std::optional<float> scalar(ValueId v) const {
    const ValueInfo& info = g_.values[v];
    if (info.kind != ValueKind::kConstant || info.dtype != DType::kF32 || info.data.numel() != 1) return std::nullopt;
    return info.data.f32()[0];
  }
  bool is_scalar(ValueId v, double expected, double tol = 1e-6) const {
    const auto s = scalar(v);
    return s && std::abs(*s - expected) <= tol * std::max(1.0, std::abs(expected));
  }
  // For a commutative binary node: the operand that is not `known` (or nullopt if neither is).
  static std::optional<ValueId> other(const Node& n, ValueId known) {
    if (n.inputs[0] == known) return n.inputs[1];
    if (n.inputs[1] == known) return n.inputs[0];
    return std::nullopt;
  }
  // For a commutative binary node with one scalar operand equal to `c`: the other operand.
  std::optional<ValueId> with_scalar(const Node& n, double c, double tol = 1e-6) const {
    if (is_scalar(n.inputs[1], c, tol)) return n.inputs[0];
    if (is_scalar(n.inputs[0], c, tol)) return n.inputs[1];
    return std::nullopt;
  }
  // True when every read of `v` is by one of `nodes` (and `v` is not a graph output).
  bool only_read_by(ValueId v, const std::vector<const Node*>& nodes) const {
    int reads = 0;
    for (const Node* n : nodes)
      for (ValueId in : n->inputs) reads += in == v ? 1 : 0;
    return reads == uses_[v] && !is_graph_output(g_, v);
  }
  bool is_dead(const Node& n) const { return dead_[static_cast<std::size_t>(&n - g_.nodes.data())]; }
  void consume(const Node* n) { dead_[static_cast<std::size_t>(n - g_.nodes.data())] = true; }
  // A constant vector [C] matching x's last dim (a norm's scale or bias).
  bool is_channel_vector(ValueId v, ValueId x) const {
    const ValueInfo& c = g_.values[v];
    const SymShape& xs = g_.values[x].shape;
    return c.kind == ValueKind::kConstant && c.dtype == DType::kF32 && c.shape.size() == 1 && !xs.empty() &&
           c.shape[0] == xs.back();
  }
  void finish() { remove_nodes(g_, dead_); }
  GraphIR& g() { return g_; }

 private:
  GraphIR& g_;
  std::vector<int> uses_;
  std::vector<bool> dead_;
};

// Rewrites `root` in place into `op(inputs)` with `attrs`; the node keeps its name and output.
void rewrite(Node& root, OpKind op, std::vector<ValueId> inputs, OpAttrs attrs) {
  root.op = op;
  root.inputs = std::move(inputs);
  root.attrs = std::move(attrs);
}

// 1 + erf(x/√2) (or with x·(1/√2)), returning x.
std::optional<ValueId> match_one_plus_erf(Matcher& m, ValueId v, std::vector<const Node*>& chain) {
  const Node* add = m.binary(v, BinaryOpKind::kAdd);
  if (!add) return std::nullopt;
  const auto e = m.with_scalar(*add, 1.0);
  const Node* erf = e ? m.unary(*e, UnaryOpKind::kErf) : nullptr;
  if (!erf) return std::nullopt;
  const ValueId d = erf->inputs[0];
  std::optional<ValueId> x;
  if (const Node* div = m.binary(d, BinaryOpKind::kDiv); div && m.is_scalar(div->inputs[1], std::sqrt(2.0), 1e-6)) {
    x = div->inputs[0];
    chain.push_back(div);
  } else if (const Node* mul = m.binary(d, BinaryOpKind::kMul)) {
    x = m.with_scalar(*mul, 1.0 / std::sqrt(2.0));
    chain.push_back(mul);
  }
  if (!x) return std::nullopt;
  chain.push_back(erf);
  chain.push_back(add);
  return x;
}

// 1 + tanh(√(2/π)·(x + 0.044715·x³)), returning x. x³ is x·(x·x) or (x·x)·x.
std::optional<ValueId> match_one_plus_tanh(Matcher& m, ValueId v, std::vector<const Node*>& chain) {
  const Node* add = m.binary(v, BinaryOpKind::kAdd);
  if (!add) return std::nullopt;
  const auto t = m.with_scalar(*add, 1.0);
  const Node* tanh = t ? m.activation(*t, ActivationKind::kTanh) : nullptr;
  if (!tanh) return std::nullopt;
  const Node* scale = m.binary(tanh->inputs[0], BinaryOpKind::kMul);
  const auto inner = scale ? m.with_scalar(*scale, std::sqrt(2.0 / M_PI), 1e-5) : std::nullopt;
  const Node* sum = inner ? m.binary(*inner, BinaryOpKind::kAdd) : nullptr;
  if (!sum) return std::nullopt;
  for (int side = 0; side < 2; ++side) {
    const ValueId x = sum->inputs[side];
    const Node* cubic = m.binary(sum->inputs[1 - side], BinaryOpKind::kMul);
    const auto cube = cubic ? m.with_scalar(*cubic, 0.044715, 1e-5) : std::nullopt;
    const Node* c3 = cube ? m.binary(*cube, BinaryOpKind::kMul) : nullptr;
    if (!c3) continue;
    const auto sq = Matcher::other(*c3, x);
    const Node* c2 = sq ? m.binary(*sq, BinaryOpKind::kMul) : nullptr;
    if (!c2 || c2->inputs[0] != x || c2->inputs[1] != x) continue;
    chain.insert(chain.end(), {c2, c3, cubic, sum, scale, tanh, add});
    return x;
  }
  return std::nullopt;
}

// root = (x · A) · 0.5 or (x · 0.5) · A or 0.5 · (x · A), with A = 1 + erf/tanh(...) of the same x.
void fuse_gelu(Matcher& m) {
  GraphIR& g = m.g();
  for (auto it = g.nodes.rbegin(); it != g.nodes.rend(); ++it) {
    Node& root = *it;
    if (root.op != OpKind::kBinary || root.attr<BinaryAttrs>().op != BinaryOpKind::kMul || m.is_dead(root)) continue;
    for (int form = 0; form < 2; ++form) {
      const Node* inner = nullptr;
      std::optional<ValueId> a_value;  // the "1 + f(...)" operand
      std::optional<ValueId> x;
      if (form == 0) {  // (x · A) · 0.5
        const auto xa = m.with_scalar(root, 0.5);
        inner = xa ? m.binary(*xa, BinaryOpKind::kMul) : nullptr;
        if (!inner) continue;
        for (int side = 0; side < 2 && !a_value; ++side) {
          x = inner->inputs[side];
          a_value = inner->inputs[1 - side];
          std::vector<const Node*> probe;
          if (match_one_plus_erf(m, *a_value, probe) != x && match_one_plus_tanh(m, *a_value, probe) != x)
            a_value.reset();
        }
      } else {  // (x · 0.5) · A
        for (int side = 0; side < 2 && !a_value; ++side) {
          inner = m.binary(root.inputs[side], BinaryOpKind::kMul);
          x = inner ? m.with_scalar(*inner, 0.5) : std::nullopt;
          if (!x) continue;
          a_value = root.inputs[1 - side];
          std::vector<const Node*> probe;
          if (match_one_plus_erf(m, *a_value, probe) != x && match_one_plus_tanh(m, *a_value, probe) != x)
            a_value.reset();
        }
      }
      if (!a_value || !x) continue;
      std::vector<const Node*> chain;
      Activation f = Activation::gelu();
      if (match_one_plus_erf(m, *a_value, chain) != x) {
        chain.clear();
        match_one_plus_tanh(m, *a_value, chain);
        f = Activation::gelu_tanh();
      }
      for (const Node* n : chain) m.consume(n);
      m.consume(inner);
      rewrite(root, OpKind::kActivation, {*x}, ActivationAttrs{f});
      break;
    }
  }
}

// 1/sqrt(mean(x²) + eps) as Div(1, Sqrt(...)) or Reciprocal(Sqrt(...)); returns x and eps.
std::optional<std::pair<ValueId, float>> match_inv_rms(Matcher& m, const Node* sqrt, std::vector<const Node*>& chain) {
  if (!sqrt) return std::nullopt;
  const Node* add = m.binary(sqrt->inputs[0], BinaryOpKind::kAdd);
  if (!add) return std::nullopt;
  for (int side = 0; side < 2; ++side) {
    const auto eps = m.scalar(add->inputs[1 - side]);
    const Node* mean = eps ? m.mean_last_axis(add->inputs[side]) : nullptr;
    if (!mean) continue;
    const ValueId sq = mean->inputs[0];
    ValueId x;
    const Node* sq_node = m.activation(sq, ActivationKind::kSquare);
    if (sq_node) {
      x = sq_node->inputs[0];
    } else if ((sq_node = m.binary(sq, BinaryOpKind::kMul)) && sq_node->inputs[0] == sq_node->inputs[1]) {
      x = sq_node->inputs[0];
    } else {
      continue;
    }
    chain.insert(chain.end(), {sq_node, mean, add, sqrt});
    return std::make_pair(x, *eps);
  }
  return std::nullopt;
}

// Roots are visited from the graph's end so that the longest chain (with its weight) wins over the
// inner chain it contains.
void fuse_rms_norm(Matcher& m) {
  GraphIR& g = m.g();
  for (auto it = g.nodes.rbegin(); it != g.nodes.rend(); ++it) {
    Node& root = *it;
    if (root.op != OpKind::kBinary || m.is_dead(root)) continue;
    const BinaryOpKind k = root.attr<BinaryAttrs>().op;
    // The normalised value: x · r, r = 1/sqrt(..), or x / sqrt(..); optionally times a weight.
    auto normalised = [&](const Node& n, std::vector<const Node*>& chain) -> std::optional<std::pair<ValueId, float>> {
      if (n.op != OpKind::kBinary) return std::nullopt;
      const BinaryOpKind nk = n.attr<BinaryAttrs>().op;
      if (nk == BinaryOpKind::kDiv) {
        auto r = match_inv_rms(m, m.unary(n.inputs[1], UnaryOpKind::kSqrt), chain);
        return r && r->first == n.inputs[0] ? r : std::nullopt;
      }
      if (nk != BinaryOpKind::kMul) return std::nullopt;
      for (int side = 0; side < 2; ++side) {
        const ValueId rv = n.inputs[1 - side];
        const Node* sqrt = nullptr;
        const Node* inv = m.binary(rv, BinaryOpKind::kDiv);
        if (inv && m.is_scalar(inv->inputs[0], 1.0)) {
          sqrt = m.unary(inv->inputs[1], UnaryOpKind::kSqrt);
        } else if ((inv = m.unary(rv, UnaryOpKind::kReciprocal))) {
          sqrt = m.unary(inv->inputs[0], UnaryOpKind::kSqrt);
        }
        std::vector<const Node*> c;
        auto r = match_inv_rms(m, sqrt, c);
        if (r && r->first == n.inputs[side]) {
          c.push_back(inv);
          chain.insert(chain.end(), c.begin(), c.end());
          return r;
        }
      }
      return std::nullopt;
    };
    std::vector<const Node*> chain;
    if (auto r = normalised(root, chain)) {  // no weight
      for (const Node* n : chain) m.consume(n);
      rewrite(root, OpKind::kRmsNorm, {r->first}, NormAttrs{r->second, false, false});
      continue;
    }
    if (k != BinaryOpKind::kMul) continue;
    for (int side = 0; side < 2; ++side) {
      const Node* inner = m.binary(root.inputs[side], BinaryOpKind::kMul);
      if (!inner) inner = m.binary(root.inputs[side], BinaryOpKind::kDiv);
      chain.clear();
      const auto r = inner ? normalised(*inner, chain) : std::nullopt;
      if (!r || !m.is_channel_vector(root.inputs[1 - side], r->first)) continue;
      for (const Node* n : chain) m.consume(n);
      m.consume(inner);
      rewrite(root, OpKind::kRmsNorm, {r->first, root.inputs[1 - side]}, NormAttrs{r->second, true, false});
      break;
    }
  }
}

// d = x - mean(x); y = d / sqrt(mean(d²) + eps) [· γ] [+ β]. d is read twice (by the square and the
// division), so it is matched as a shared value.
void fuse_layer_norm(Matcher& m) {
  GraphIR& g = m.g();
  for (auto it = g.nodes.rbegin(); it != g.nodes.rend(); ++it) {
    Node& root = *it;
    if (root.op != OpKind::kBinary || m.is_dead(root)) continue;
    std::vector<const Node*> chain;
    // Peel an optional + β and · γ off the root.
    auto match_core = [&](ValueId v, bool v_is_root) -> std::optional<std::pair<ValueId, float>> {
      const Node* div = v_is_root ? (root.attr<BinaryAttrs>().op == BinaryOpKind::kDiv ? &root : nullptr)
                                  : m.binary(v, BinaryOpKind::kDiv);
      if (!div) return std::nullopt;
      const Node* sub = m.producer(div->inputs[0], OpKind::kBinary, /*shared=*/true);
      if (!sub || sub->attr<BinaryAttrs>().op != BinaryOpKind::kSub) return std::nullopt;
      const Node* mean1 = m.mean_last_axis(sub->inputs[1]);
      if (!mean1 || mean1->inputs[0] != sub->inputs[0]) return std::nullopt;
      const Node* sqrt = m.unary(div->inputs[1], UnaryOpKind::kSqrt);
      std::vector<const Node*> c;
      const auto r = match_inv_rms(m, sqrt, c);  // matches mean(d²) + eps with d = sub's output
      if (!r || r->first != div->inputs[0]) return std::nullopt;
      // d must be read only by the square and the division.
      std::vector<const Node*> readers = c;
      readers.push_back(div);
      if (!m.only_read_by(div->inputs[0], readers)) return std::nullopt;
      c.insert(c.end(), {sub, mean1});
      if (!v_is_root) c.push_back(div);
      chain.insert(chain.end(), c.begin(), c.end());
      return std::make_pair(sub->inputs[0], r->second);
    };
    std::optional<ValueId> gamma, beta;
    std::optional<std::pair<ValueId, float>> core;
    const BinaryOpKind k = root.attr<BinaryAttrs>().op;
    if (k == BinaryOpKind::kDiv) {
      core = match_core(root.outputs[0], true);
    } else if (k == BinaryOpKind::kMul || k == BinaryOpKind::kAdd) {
      for (int side = 0; side < 2 && !core; ++side) {
        chain.clear();
        gamma.reset();
        beta.reset();
        ValueId inner = root.inputs[side];
        const ValueId param = root.inputs[1 - side];
        if (k == BinaryOpKind::kAdd) {
          beta = param;
          if (const Node* scale = m.binary(inner, BinaryOpKind::kMul)) {
            for (int s2 = 0; s2 < 2 && !core; ++s2) {
              gamma = scale->inputs[1 - s2];
              core = match_core(scale->inputs[s2], false);
              if (core) chain.push_back(scale);
            }
            if (!core) gamma.reset();
          }
          if (!core) core = match_core(inner, false);
        } else {
          gamma = param;
          core = match_core(inner, false);
        }
        if (core && ((gamma && !m.is_channel_vector(*gamma, core->first)) ||
                     (beta && !m.is_channel_vector(*beta, core->first)))) {
          core.reset();
        }
      }
    }
    if (!core) continue;
    for (const Node* n : chain) m.consume(n);
    std::vector<ValueId> inputs{core->first};
    if (gamma) inputs.push_back(*gamma);
    if (beta) inputs.push_back(*beta);
    rewrite(root, OpKind::kLayerNorm, inputs, NormAttrs{core->second, gamma.has_value(), beta.has_value()});
  }
}

}  // namespace

void fuse_elementwise_patterns(GraphIR& g) {
  {
    Matcher m(g);
    fuse_gelu(m);
    m.finish();
  }
  {
    Matcher m(g);
    fuse_layer_norm(m);
    m.finish();
  }
  {
    Matcher m(g);
    fuse_rms_norm(m);
    m.finish();
  }
}

}  // namespace quarks::detail
