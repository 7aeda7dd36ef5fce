// Spelled-out scaled-dot-product attention -> the fused attention op.
//
// What exporters write (PyTorch modules, BERT/GPT code, nn.MultiheadAttention):
//   s = matmul(q [· c1], kᵀ) [· c2 | / c2]  [+ mask | where(cond, -inf, ·)]
//   y = matmul(softmax(s, axis=-1), v)
// with kᵀ either a transpose feeding the matmul or the matmul's trans_b. Every intermediate must be read
// only by the next step. The pattern becomes attention(q, k, v, mask) with scale c1·c2 (or c1/c2). A
// constant boolean mask with a -inf (or <= -1e30) fill becomes an additive mask constant, or, when it
// hides exactly the keys after each query, the causal option (whose kernel skips those tiles).
//
// Layout: when q, k and v are head views made of a reshape and a transpose of [B, S, H·D] tensors
// (x.view(B, S, H, D).transpose(1, 2)) and the result is transposed back the same way, attention reads
// and writes the [B, S, H·D] tensors directly (its 3-D layout), so the four transposes disappear. The
// sequence-first form of nn.MultiheadAttention ([S, B·H, D] views of [S, B, E]) is the 3-D layout with
// batch 1 and B·H heads. Otherwise the 4-D form [B, H, S, D] is used as is.
#include <algorithm>
#include <cmath>
#include <limits>
#include <optional>

#include "engine/passes/graph_edit.hpp"
#include "engine/passes/passes.hpp"

namespace quarks::detail {
namespace {

// Masks with a fill at or below this are treated as -inf: a score plus such a fill is the fill in f32.
constexpr double kHiddenFill = -1e30;

class AttentionMatcher {
 public:
  explicit AttentionMatcher(GraphIR& g) : g_(g), uses_(count_uses(g)), consumer_(g.values.size(), -1) {
    for (std::size_t i = 0; i < g.nodes.size(); ++i)
      for (ValueId v : g.nodes[i].inputs) consumer_[v] = static_cast<int>(i);
    dead_.assign(g.nodes.size(), false);
  }

  void run() {
    for (std::size_t i = 0; i < g_.nodes.size(); ++i) {
      if (g_.nodes[i].op == OpKind::kMatMul) try_fuse(i);
    }
    remove_nodes(g_, dead_);
  }

 private:
  struct Core {
    std::size_t pv = 0;               // the softmax·v matmul
    ValueId q = 0, k_src = 0, v = 0;  // q, v: [.., H, S, D] head views; k_src: see k_perm_node
    int k_transpose = -1;             // node index of the transpose producing kᵀ (or -1 with trans_b)
    std::optional<ValueId> mask;
    double scale = 1.0;
    bool causal = false;
    const Node* where = nullptr;  // a where whose constant condition becomes an additive mask
    bool hide_when = true;
    std::vector<std::size_t> absorbed;  // nodes that die with the fusion
  };

  const Node* producer(ValueId v, OpKind op) const {
    const Node* n = sole_producer(g_, uses_, v, op);
    return n && !dead_[index_of(*n)] ? n : nullptr;
  }
  std::size_t index_of(const Node& n) const { return static_cast<std::size_t>(&n - g_.nodes.data()); }

  std::optional<double> scalar(ValueId v) const {
    const ValueInfo& info = g_.values[v];
    if (info.kind != ValueKind::kConstant || info.dtype != DType::kF32 || info.data.numel() != 1) return std::nullopt;
    return static_cast<double>(info.data.f32()[0]);
  }

  // x · c, c · x or x / c with c a finite, non-zero scalar constant: returns x and folds c into scale.
  std::optional<ValueId> scaled(const Node& n, double& scale) const {
    if (n.op != OpKind::kBinary) return std::nullopt;
    const BinaryOpKind op = n.attr<BinaryAttrs>().op;
    const SymShape& out = g_.values[n.outputs[0]].shape;
    for (int side = 0; side < 2; ++side) {
      const ValueId x = n.inputs[static_cast<std::size_t>(side)], c = n.inputs[static_cast<std::size_t>(1 - side)];
      const std::optional<double> s = scalar(c);
      if (!s || !std::isfinite(*s) || *s == 0.0 || !(g_.values[x].shape == out)) continue;
      if (op == BinaryOpKind::kMul) {
        scale *= *s;
        return x;
      }
      if (op == BinaryOpKind::kDiv && side == 0) {
        scale /= *s;
        return x;
      }
    }
    return std::nullopt;
  }

  static bool is_last_axis(int axis, std::size_t rank) { return axis == -1 || axis == static_cast<int>(rank) - 1; }

  bool match_core(std::size_t pv_index, Core& c) {
    const Node& pv = g_.nodes[pv_index];
    const MatMulAttrs& pva = pv.attr<MatMulAttrs>();
    if (pva.trans_a || pva.trans_b) return false;
    const std::size_t rank = g_.values[pv.outputs[0]].shape.size();
    if (rank != 3 && rank != 4) return false;
    if (g_.values[pv.inputs[0]].shape.size() != rank || g_.values[pv.inputs[1]].shape.size() != rank) return false;
    const Node* sm = producer(pv.inputs[0], OpKind::kSoftmax);
    if (!sm || !is_last_axis(sm->attr<AxisAttrs>().axis, rank)) return false;
    c.pv = pv_index;
    c.v = pv.inputs[1];
    c.absorbed = {index_of(*sm)};
    ValueId s = sm->inputs[0];
    const SymShape& scores_shape = g_.values[s].shape;

    // Mask: add of an f32 tensor, or where(constant cond, fill, s) / where(cond, s, fill).
    if (const Node* add = producer(s, OpKind::kBinary); add && add->attr<BinaryAttrs>().op == BinaryOpKind::kAdd) {
      for (int side = 0; side < 2 && !c.mask; ++side) {
        const ValueId x = add->inputs[static_cast<std::size_t>(side)],
                      m = add->inputs[static_cast<std::size_t>(1 - side)];
        if (!(g_.values[x].shape == scores_shape) || g_.values[m].dtype != DType::kF32) continue;
        if (g_.values[m].shape.size() > rank) continue;
        if (!producer(x, OpKind::kMatMul) && !producer(x, OpKind::kBinary)) continue;
        c.mask = m;
        c.absorbed.push_back(index_of(*add));
        s = x;
      }
    } else if (const Node* w = producer(s, OpKind::kWhere)) {
      const std::optional<ValueId> x = where_mask(*w, scores_shape, c);
      if (!x) return false;
      c.absorbed.push_back(index_of(*w));
      s = *x;
    }

    // Scale after the product.
    if (const Node* b = producer(s, OpKind::kBinary)) {
      const std::optional<ValueId> x = scaled(*b, c.scale);
      if (!x) return false;
      c.absorbed.push_back(index_of(*b));
      s = *x;
    }
    const Node* qk = producer(s, OpKind::kMatMul);
    if (!qk || qk->attr<MatMulAttrs>().trans_a) return false;
    c.absorbed.push_back(index_of(*qk));
    ValueId q = qk->inputs[0];
    if (g_.values[q].shape.size() != rank || g_.values[qk->inputs[1]].shape.size() != rank) return false;
    // Scale on q before the product.
    if (const Node* b = producer(q, OpKind::kBinary)) {
      if (const std::optional<ValueId> x = scaled(*b, c.scale)) {
        c.absorbed.push_back(index_of(*b));
        q = *x;
      }
    }
    c.q = q;
    if (qk->attr<MatMulAttrs>().trans_b) {
      c.k_src = qk->inputs[1];
      c.k_transpose = -1;
    } else {
      const Node* t = producer(qk->inputs[1], OpKind::kTranspose);
      if (!t) return false;
      c.k_src = t->inputs[0];
      c.k_transpose = static_cast<int>(index_of(*t));
    }
    if (!std::isfinite(c.scale)) return false;
    return true;
  }

  // where(cond, fill, s) or where(cond, s, fill) with cond a constant bool and fill a hiding scalar:
  // records the mask in c (built by make_where_mask once the whole pattern matched) and returns s.
  std::optional<ValueId> where_mask(const Node& w, const SymShape& scores_shape, Core& c) const {
    const ValueInfo& cond = g_.values[w.inputs[0]];
    if (cond.kind != ValueKind::kConstant || cond.dtype != DType::kBool) return std::nullopt;
    if (cond.shape.size() > scores_shape.size()) return std::nullopt;
    for (int side = 1; side <= 2; ++side) {
      const ValueId fill = w.inputs[static_cast<std::size_t>(side)], x = w.inputs[static_cast<std::size_t>(3 - side)];
      const std::optional<double> f = scalar(fill);
      if (!f || !(*f <= kHiddenFill) || !(g_.values[x].shape == scores_shape)) continue;
      // Hidden where cond is true (fill in the 'then' branch) or false (fill in the 'else' branch).
      const bool hide_when = side == 1;
      if (is_causal(cond.data.shape(), cond.data.boolean(), hide_when, scores_shape)) {
        c.causal = true;
      } else {
        c.where = &w;
        c.hide_when = hide_when;
      }
      return x;
    }
    return std::nullopt;
  }

  // The additive mask of a where: -inf where keys are hidden, 0 elsewhere.
  ValueId make_where_mask(const Node& w, bool hide_when) {
    const Tensor& cond = g_.values[w.inputs[0]].data;
    Tensor m(DType::kF32, cond.shape());
    const std::uint8_t* cv = cond.boolean();
    float* mv = m.f32();
    for (std::int64_t i = 0; i < m.numel(); ++i)
      mv[i] = (cv[i] != 0) == hide_when ? -std::numeric_limits<float>::infinity() : 0.0f;
    ValueInfo info;
    info.name = w.name + ".additive_mask";
    info.kind = ValueKind::kConstant;
    info.shape = to_sym(cond.shape());
    info.dtype = DType::kF32;
    info.data = std::move(m);
    uses_.push_back(1);
    consumer_.push_back(-1);
    return g_.add_value(std::move(info));
  }

  // True if the mask hides exactly the keys j > i + (Sk - Sq) of every query i and broadcasts over
  // the leading dims (all of size 1), with Sq and Sk the scores' last two dims.
  static bool is_causal(const Shape& cshape, const std::uint8_t* cv, bool hide_when, const SymShape& scores) {
    const std::size_t r = scores.size();
    if (!scores[r - 2].known() || !scores[r - 1].known()) return false;
    const std::int64_t sq = scores[r - 2].value, sk = scores[r - 1].value;
    const std::size_t cr = cshape.rank();
    if (cr < 2 || cshape[cr - 2] != sq || cshape[cr - 1] != sk) return false;
    for (std::size_t i = 0; i + 2 < cr; ++i)
      if (cshape[i] != 1) return false;
    for (std::int64_t i = 0; i < sq; ++i)
      for (std::int64_t j = 0; j < sk; ++j)
        if (((cv[i * sk + j] != 0) == hide_when) != (j > i + (sk - sq))) return false;
    return true;
  }

  // --- layout ---------------------------------------------------------------------------------------
  // A head view x.view(B, S, H, D).transpose(1, 2) (rank 4) or x.view(S, N, D).transpose(0, 1) (rank 3):
  // the reshape and transpose nodes, and the 3-D layout it corresponds to.
  struct HeadView {
    const Node* reshape = nullptr;
    const Node* transpose = nullptr;
    SymDim batch, seq;
    std::int64_t heads = 0, head_dim = 0;
  };

  // perm_kt: the transpose's permutation when it directly produces kᵀ.
  std::optional<HeadView> head_view(const Node* t, bool transposed_k) const {
    if (!t) return std::nullopt;
    const std::vector<int>& perm = t->attr<TransposeAttrs>().perm;
    const Node* r = producer(t->inputs[0], OpKind::kReshape);
    if (!r) return std::nullopt;
    const SymShape& rs = g_.values[r->outputs[0]].shape;
    HeadView h;
    h.reshape = r;
    h.transpose = t;
    if (rs.size() == 4) {
      const std::vector<int> want = transposed_k ? std::vector<int>{0, 2, 3, 1} : std::vector<int>{0, 2, 1, 3};
      if (perm != want || !rs[2].known() || !rs[3].known()) return std::nullopt;
      h.batch = rs[0];
      h.seq = rs[1];
      h.heads = rs[2].value;
      h.head_dim = rs[3].value;
    } else if (rs.size() == 3) {
      const std::vector<int> want = transposed_k ? std::vector<int>{1, 2, 0} : std::vector<int>{1, 0, 2};
      if (perm != want || !rs[1].known() || !rs[2].known()) return std::nullopt;
      h.batch = SymDim{1, {}};
      h.seq = rs[0];
      h.heads = rs[1].value;
      h.head_dim = rs[2].value;
    } else {
      return std::nullopt;
    }
    return h;
  }

  // Reshape target for [batch, seq, heads·head_dim] of input x: known dims as numbers, others copied
  // (0) from the same position of x or inferred (-1, once).
  std::optional<std::vector<std::int64_t>> target_3d(const HeadView& h, ValueId x) const {
    const SymShape& xs = g_.values[x].shape;
    const SymDim dims[3] = {h.batch, h.seq, SymDim{h.heads * h.head_dim, {}}};
    std::vector<std::int64_t> t;
    bool inferred = false;
    for (std::size_t i = 0; i < 3; ++i) {
      if (dims[i].known()) {
        t.push_back(dims[i].value);
      } else if (i < xs.size() && xs[i] == dims[i] && !dims[i].symbol.empty()) {
        t.push_back(0);
      } else if (!inferred) {
        inferred = true;
        t.push_back(-1);
      } else {
        return std::nullopt;
      }
    }
    return t;
  }

  static bool same(const SymDim& a, const SymDim& b) { return a == b && (a.known() || !a.symbol.empty()); }

  // When the q, k and v views are of the three outputs of one split of x [B, S, (Hq + 2·Hkv)·D] along its
  // last axis (a fused QKV projection, as GPT code writes it) and q and k have one length: x.
  std::optional<ValueId> packed_source(const HeadView* const (&views)[3]) const {
    if (views[0]->reshape->inputs.empty() || g_.values[views[0]->reshape->outputs[0]].shape.size() != 4) {
      return std::nullopt;
    }
    const Node* split = producer_any(views[0]->reshape->inputs[0], OpKind::kSplit);
    if (!split || split->outputs.size() != 3) return std::nullopt;
    for (int i = 0; i < 3; ++i) {
      const ValueId in = views[i]->reshape->inputs[0];
      if (in != split->outputs[static_cast<std::size_t>(i)] || uses_[in] != 1 || is_graph_output(g_, in)) {
        return std::nullopt;
      }
    }
    const ValueId x = split->inputs[0];
    const SymShape& xs = g_.values[x].shape;
    const SplitAttrs& sa = split->attr<SplitAttrs>();
    if (xs.size() != 3 || (sa.axis != 2 && sa.axis != -1)) return std::nullopt;
    const std::int64_t dim = views[0]->head_dim;
    const std::vector<std::int64_t> want = {views[0]->heads * dim, views[1]->heads * dim, views[2]->heads * dim};
    if (sa.sizes != want) return std::nullopt;
    if (!same(xs[0], views[0]->batch) || !same(xs[1], views[0]->seq) || !same(views[0]->seq, views[1]->seq)) {
      return std::nullopt;
    }
    return x;
  }

  // The producer of v if it is of kind op (whatever v's other readers).
  const Node* producer_any(ValueId v, OpKind op) const {
    const ValueInfo& info = g_.values[v];
    if (info.kind != ValueKind::kIntermediate || info.producer < 0) return nullptr;
    const Node& n = g_.nodes[static_cast<std::size_t>(info.producer)];
    return n.op == op && !dead_[static_cast<std::size_t>(info.producer)] ? &n : nullptr;
  }

  // Rewrites the fusion to the 3-D layout; false (nothing changed) when the pattern does not fit.
  bool fuse_3d(const Core& c, AttentionAttrs attrs) {
    const Node& pv = g_.nodes[c.pv];
    const std::optional<HeadView> hq = head_view(producer(c.q, OpKind::kTranspose), false);
    const std::optional<HeadView> hv = head_view(producer(c.v, OpKind::kTranspose), false);
    std::optional<HeadView> hk;
    if (c.k_transpose >= 0) {
      hk = head_view(&g_.nodes[static_cast<std::size_t>(c.k_transpose)], true);
    } else {
      hk = head_view(producer(c.k_src, OpKind::kTranspose), false);
    }
    if (!hq || !hk || !hv) return false;
    if (!same(hq->batch, hk->batch) || !same(hq->batch, hv->batch) || !same(hk->seq, hv->seq)) return false;
    if (hq->head_dim != hk->head_dim || hq->head_dim != hv->head_dim || hk->heads != hv->heads) return false;
    if (hk->heads <= 0 || hq->heads % hk->heads != 0) return false;
    // The output: transpose back, read only by a reshape (whatever its target, it reads the same bytes).
    const ValueId y = pv.outputs[0];
    if (uses_[y] != 1 || is_graph_output(g_, y) || consumer_[y] < 0) return false;
    Node& out_t = g_.nodes[static_cast<std::size_t>(consumer_[y])];
    if (out_t.op != OpKind::kTranspose) return false;
    const std::vector<int> want =
        g_.values[y].shape.size() == 4 ? std::vector<int>{0, 2, 1, 3} : std::vector<int>{1, 0, 2};
    if (out_t.attr<TransposeAttrs>().perm != want) return false;
    const ValueId z = out_t.outputs[0];
    if (uses_[z] != 1 || is_graph_output(g_, z) || consumer_[z] < 0) return false;
    const Node& out_r = g_.nodes[static_cast<std::size_t>(consumer_[z])];
    if (out_r.op != OpKind::kReshape) return false;
    // A 0 in its target copies a dim of its input, which changes from [B, S, H, D] to [B, S, H·D] (only the
    // first two stay) or from [S, N, D] to [1, S, N·D] (none stay).
    const std::vector<std::int64_t>& target = out_r.attr<ReshapeAttrs>().shape;
    const std::size_t kept_dims = want.size() == 4 ? 2 : 0;
    for (std::size_t i = kept_dims; i < target.size(); ++i)
      if (target[i] == 0) return false;
    // Every head view becomes a reshape to [batch, seq, heads·head_dim].
    const HeadView* views[3] = {&*hq, &*hk, &*hv};
    std::vector<std::int64_t> targets[3];
    for (int i = 0; i < 3; ++i) {
      const std::optional<std::vector<std::int64_t>> t = target_3d(*views[i], views[i]->reshape->inputs[0]);
      if (!t) return false;
      targets[i] = *t;
    }
    const std::optional<ValueId> packed = packed_source(views);
    ValueId sources[3];
    for (int i = 0; i < 3; ++i) {
      if (packed) {
        // The views and the split die: attention reads q, k and v from the split's input.
        dead_[index_of(*views[i]->reshape)] = true;
        dead_[index_of(*views[i]->transpose)] = true;
        continue;
      }
      Node& r = g_.nodes[index_of(*views[i]->reshape)];
      r.attrs = ReshapeAttrs{targets[i]};
      g_.values[r.outputs[0]].shape = {views[i]->batch, views[i]->seq,
                                       SymDim{views[i]->heads * views[i]->head_dim, {}}};
      sources[i] = r.outputs[0];
      dead_[index_of(*views[i]->transpose)] = true;
    }
    attrs.num_heads = static_cast<int>(hq->heads);
    attrs.num_kv_heads = static_cast<int>(hk->heads);
    for (std::size_t n : c.absorbed) dead_[n] = true;
    dead_[c.pv] = true;
    // The transpose back becomes the attention, writing [batch, seq, Hq·D] in place of [B, S, H, D].
    out_t.op = OpKind::kAttention;
    out_t.name = pv.name;
    if (packed) {
      dead_[static_cast<std::size_t>(g_.values[views[0]->reshape->inputs[0]].producer)] = true;
      attrs.packed_qkv = true;
      out_t.inputs = {*packed};
    } else {
      out_t.inputs = {sources[0], sources[1], sources[2]};
    }
    if (c.mask) out_t.inputs.push_back(*c.mask);
    out_t.attrs = attrs;
    g_.values[z].shape = {hq->batch, hq->seq, SymDim{hq->heads * hq->head_dim, {}}};
    g_.values[z].name = g_.values[y].name;
    return true;
  }

  // Rewrites the fusion in the 4-D layout [B, H, S, D] (the pv matmul becomes the attention).
  bool fuse_4d(const Core& c, const AttentionAttrs& attrs) {
    Node& pv = g_.nodes[c.pv];
    if (g_.values[pv.outputs[0]].shape.size() != 4) return false;
    ValueId k = c.k_src;
    if (c.k_transpose >= 0) {
      // The transpose that made kᵀ makes k instead: its permutation with the last two entries swapped.
      Node& t = g_.nodes[static_cast<std::size_t>(c.k_transpose)];
      std::vector<int> perm = t.attr<TransposeAttrs>().perm;
      if (perm.size() != 4) return false;
      std::swap(perm[2], perm[3]);
      if (perm == std::vector<int>{0, 1, 2, 3}) {
        k = t.inputs[0];  // a plain kᵀ: attention reads k where it is, and the transpose dies
      } else {
        SymShape& ks = g_.values[t.outputs[0]].shape;
        std::swap(ks[2], ks[3]);
        t.attrs = TransposeAttrs{perm};
        k = t.outputs[0];
      }
    }
    for (std::size_t n : c.absorbed) dead_[n] = true;
    if (c.k_transpose >= 0) dead_[static_cast<std::size_t>(c.k_transpose)] = k == c.k_src;
    pv.op = OpKind::kAttention;
    pv.inputs = {c.q, k, c.v};
    if (c.mask) pv.inputs.push_back(*c.mask);
    pv.attrs = attrs;
    return true;
  }

  void try_fuse(std::size_t i) {
    if (dead_[i]) return;
    Core c;
    if (!match_core(i, c)) return;
    if (c.where) c.mask = make_where_mask(*c.where, c.hide_when);
    AttentionAttrs attrs;
    attrs.causal = c.causal;
    attrs.has_scale = true;
    attrs.scale = static_cast<float>(c.scale);
    attrs.has_mask = c.mask.has_value();
    if (c.k_transpose >= 0) c.absorbed.push_back(static_cast<std::size_t>(c.k_transpose));
    if (fuse_3d(c, attrs)) return;
    if (c.k_transpose >= 0) c.absorbed.pop_back();
    fuse_4d(c, attrs);
  }

  GraphIR& g_;
  std::vector<int> uses_;
  std::vector<int> consumer_;  // for values read by exactly one node input: that node
  std::vector<bool> dead_;
};

}  // namespace

void fuse_attention(GraphIR& g) { AttentionMatcher(g).run(); }

}  // namespace quarks::detail

namespace quarks::detail {
namespace {

// The value attention input `v` reads, looking through a reshape that does not change the shape
// (what fuse_attention leaves of a head view), and that reshape (or null).
ValueId through_identity_reshape(const GraphIR& g, const std::vector<int>& uses, ValueId v, const Node*& reshape) {
  reshape = sole_producer(g, uses, v, OpKind::kReshape);
  if (reshape && g.values[reshape->inputs[0]].shape == g.values[v].shape) return reshape->inputs[0];
  reshape = nullptr;
  return v;
}

// Concatenates the columns of row-major f32 matrices [rows, n_i].
Tensor concat_columns(const std::vector<const Tensor*>& parts, std::int64_t rows) {
  std::int64_t total = 0;
  for (const Tensor* p : parts) total += p->numel() / std::max<std::int64_t>(rows, 1);
  Tensor out(DType::kF32, rows == 1 && parts[0]->shape().rank() == 1 ? Shape{total} : Shape{rows, total});
  float* o = out.f32();
  std::int64_t col = 0;
  for (const Tensor* p : parts) {
    const std::int64_t n = p->numel() / std::max<std::int64_t>(rows, 1);
    for (std::int64_t r = 0; r < rows; ++r) std::copy_n(p->f32() + r * n, n, o + r * total + col);
    col += n;
  }
  return out;
}

}  // namespace

void fuse_qkv_projections(GraphIR& g) {
  const std::vector<int> uses = count_uses(g);
  std::vector<bool> dead(g.nodes.size(), false);
  for (std::size_t i = 0; i < g.nodes.size(); ++i) {
    Node& a = g.nodes[i];
    if (a.op != OpKind::kAttention || a.attr<AttentionAttrs>().packed_qkv) continue;
    if (g.values[a.inputs[0]].shape.size() != 3) continue;  // the [B, S, H·D] layout only
    const Node* reshapes[3];
    const Node* dense[3];
    bool ok = true;
    for (int r = 0; r < 3 && ok; ++r) {
      const ValueId src = through_identity_reshape(g, uses, a.inputs[static_cast<std::size_t>(r)], reshapes[r]);
      dense[r] = sole_producer(g, uses, src, OpKind::kDense);
      ok = dense[r] != nullptr;
    }
    if (!ok || dense[0] == dense[1] || dense[1] == dense[2] || dense[0] == dense[2]) continue;
    const ValueId x = dense[0]->inputs[0];
    const bool has_bias = dense[0]->attr<DenseAttrs>().has_bias;
    std::vector<const Tensor*> weights, biases;
    for (const Node* d : dense) {
      const DenseAttrs& da = d->attr<DenseAttrs>();
      const ValueInfo& w = g.values[d->inputs[1]];
      ok = ok && d->inputs[0] == x && da.f.kind == ActivationKind::kIdentity && da.has_bias == has_bias &&
           !da.w_transposed && w.kind == ValueKind::kConstant && w.dtype == DType::kF32 && w.data.shape().rank() == 2 &&
           w.data.shape()[0] == g.values[dense[0]->inputs[1]].data.shape()[0];
      if (!ok) break;
      weights.push_back(&w.data);
      if (has_bias) {
        const ValueInfo& b = g.values[d->inputs[2]];
        ok = b.kind == ValueKind::kConstant && b.dtype == DType::kF32 && b.data.shape().rank() == 1;
        biases.push_back(&b.data);
      }
    }
    if (!ok) continue;
    const std::int64_t k = weights[0]->shape()[0];
    auto add_constant = [&g](const std::string& name, Tensor t) {
      ValueInfo info;
      info.name = name;
      info.kind = ValueKind::kConstant;
      info.shape = to_sym(t.shape());
      info.dtype = DType::kF32;
      info.data = std::move(t);
      return g.add_value(std::move(info));
    };
    // The q projection becomes the packed one; attention reads its output as [B, S, (Hq + 2·Hkv)·D].
    Node& fused = g.nodes[static_cast<std::size_t>(g.values[dense[0]->outputs[0]].producer)];
    const std::string name = fused.name + "+" + dense[1]->name + "+" + dense[2]->name;
    // Both tensors are made before adding values (which may move the ones `weights` points into).
    Tensor w_cat = concat_columns(weights, k);
    Tensor b_cat = has_bias ? concat_columns(biases, 1) : Tensor();
    const std::int64_t n_total = w_cat.shape()[1];
    std::vector<ValueId> inputs = {x, add_constant(name + ".w", std::move(w_cat))};
    if (has_bias) inputs.push_back(add_constant(name + ".b", std::move(b_cat)));
    for (int r = 1; r < 3; ++r) dead[static_cast<std::size_t>(g.values[dense[r]->outputs[0]].producer)] = true;
    for (const Node* r : reshapes)
      if (r) dead[static_cast<std::size_t>(g.values[r->outputs[0]].producer)] = true;
    const ValueId y = fused.outputs[0];
    SymShape shape = g.values[y].shape;
    shape.back() = SymDim{n_total, {}};
    g.values[y].shape = shape;
    g.values[y].name = name;
    fused.name = name;
    fused.inputs = inputs;
    AttentionAttrs attrs = a.attr<AttentionAttrs>();
    attrs.packed_qkv = true;
    std::vector<ValueId> ain = {y};
    ain.insert(ain.end(), a.inputs.begin() + 3, a.inputs.end());
    a.inputs = ain;
    a.attrs = attrs;
  }
  remove_nodes(g, dead);
}

}  // namespace quarks::detail
