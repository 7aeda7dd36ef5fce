// Fuzz body of graph building and compiling: the bytes are a little program of GraphBuilder calls.
//
// Encoding (every read past the end gives 0, so any byte string is a program):
//   header  [inputs-1 (mod 3)] [size of symbol "a" (mod 5)] [size of symbol "b" (mod 5)] [flags]
//           flags bit 0..2 == 0: bf16 precision; bit 3: fill the inputs with varied values (else zeros)
//   inputs  per input: [rank (mod 5)] then per dim [dim byte] (see dim()), then [dtype byte]
//   ops     [opcode (mod kOpCount)] and the op's operand bytes, until the bytes run out or kMaxOps.
// Operands: values are picked among those made so far (a byte 255 gives a handle that is not a value
// of this builder); constants get shapes that mostly fit their op (taken from the operand's known dims)
// and sometimes do not; numbers come from small ranges mixed with extreme values (INT64_MIN, NaN, inf).
// Each builder call that throws quarks::Error is skipped (the builder must stay usable). Then build,
// compile (threads 1, arena and state capped) and, when the inputs are small, two runs (the second
// one exercises KV caches that already hold rows).
#include <cmath>
#include <cstdint>
#include <iostream>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "fuzz/fuzz_bodies.hpp"
#include "quarks/quarks.hpp"

namespace quarks::fuzz {
namespace {

constexpr int kMaxOps = 48;
constexpr std::int64_t kMaxConstantElements = 4096;
constexpr std::int64_t kMaxRunElements = 1 << 16;
constexpr std::size_t kMaxArenaBytes = std::size_t{64} << 20;
constexpr std::size_t kMaxStateBytes = std::size_t{64} << 20;

constexpr std::int64_t kBigInts[] = {std::numeric_limits<std::int64_t>::min(),
                                     std::numeric_limits<std::int64_t>::max(),
                                     std::int64_t{1} << 31,
                                     -(std::int64_t{1} << 31),
                                     std::int64_t{1} << 32,
                                     std::int64_t{1} << 62,
                                     1 << 20,
                                     -1000};

class ByteReader {
 public:
  explicit ByteReader(std::span<const std::byte> bytes) : bytes_(bytes) {}
  bool done() const { return pos_ >= bytes_.size(); }
  std::uint8_t u8() { return done() ? 0 : std::to_integer<std::uint8_t>(bytes_[pos_++]); }
  std::size_t pick(std::size_t n) { return n == 0 ? 0 : u8() % n; }
  bool bit() { return u8() & 1; }
  // A dim: mostly 0-5, sometimes up to 16, rarely an extreme value.
  std::int64_t dim() {
    const std::uint8_t b = u8();
    if (b < 200) return b % 6;
    if (b < 240) return b % 17;
    return kBigInts[b % std::size(kBigInts)];
  }
  // An integer attribute or index: mostly -4..11, sometimes extreme.
  std::int64_t i64() {
    const std::uint8_t b = u8();
    return b < 224 ? static_cast<std::int64_t>(b % 16) - 4 : kBigInts[b % std::size(kBigInts)];
  }
  int axis() { return static_cast<int>(u8() % 12) - 6; }
  float f32() {
    static const float special[] = {0.0f,
                                    -0.0f,
                                    std::numeric_limits<float>::infinity(),
                                    -std::numeric_limits<float>::infinity(),
                                    std::numeric_limits<float>::quiet_NaN(),
                                    1e30f,
                                    -1e30f,
                                    1e-30f,
                                    std::numeric_limits<float>::max(),
                                    std::numeric_limits<float>::denorm_min()};
    const std::uint8_t b = u8();
    return b < 216 ? static_cast<float>(static_cast<int>(b % 72) - 36) / 8.0f : special[b % std::size(special)];
  }

 private:
  std::span<const std::byte> bytes_;
  std::size_t pos_ = 0;
};

enum Op {
  kConstant,
  kDense,
  kMatmul,
  kActivation,
  kMultiplex,
  kOutputGate,
  kSynapticGate,
  kAttention,
  kAttentionQkv,
  kRopeConst,
  kRopeValue,
  kKvCache,
  kKvCacheAppend,
  kBinary,
  kUnary,
  kClip,
  kHardSigmoid,
  kReduce,
  kGather,
  kWhere,
  kEqual,
  kCast,
  kExpand,
  kSoftmax,
  kNorm,
  kReshape,
  kTranspose,
  kConcat,
  kSplit,
  kSlice,
  kOutput,
  kOpCount
};

struct InputDecl {
  std::string name;
  std::vector<Dim> dims;
  DType dtype;
};

class Program {
 public:
  Program(std::span<const std::byte> bytes, int verbose) : r_(bytes), verbose_(verbose) {}

  void run(FuzzStats& st);

 private:
  ByteReader r_;
  int verbose_;
  GraphBuilder b_;
  std::vector<Value> values_;
  std::vector<KvCache> caches_;
  std::vector<InputDecl> inputs_;
  int names_ = 0, outputs_ = 0;

  std::string name() {
    const std::uint8_t b = r_.u8();
    if (b == 255) return "n0";  // a name already taken (if n0 exists)
    if (b == 254) return "";
    return "n" + std::to_string(names_++);
  }
  Value val() {
    const std::uint8_t b = r_.u8();
    if (values_.empty() || b == 255) return Value{static_cast<std::uint32_t>(values_.size() + 1000)};
    return values_[b % values_.size()];
  }
  std::optional<Value> opt_val() {
    if (!r_.bit()) return std::nullopt;
    return val();
  }
  // A known dim of `v` (from the end when `from_end`), or a dim from the bytes when it is not known.
  std::int64_t dim_of(Value v, int index_from_end) {
    try {
      const std::vector<Dim> d = b_.dims(v);
      const int i = static_cast<int>(d.size()) - 1 - index_from_end;
      if (i >= 0 && !d[i].is_symbolic()) return d[i].value;
    } catch (const Error&) {
    }
    return r_.dim();
  }
  Activation act() {
    const auto kind = static_cast<ActivationKind>(r_.pick(kActivationKindCount));
    Activation a{kind};
    if (kind == ActivationKind::kLeakyRelu) a.alpha = r_.f32();
    if (kind == ActivationKind::kPolynomial) {
      for (std::size_t k = r_.pick(20); k > 0; --k) a.coeffs.push_back(r_.f32());
    }
    return a;
  }
  DType dtype() {
    const std::uint8_t b = r_.u8();
    if (b < 192) return DType::kF32;
    if (b < 224) return DType::kI64;
    if (b < 254) return DType::kBool;
    return DType::kBF16;  // refused everywhere it is not allowed
  }
  // A constant of `shape` (elements capped) filled from the bytes; nullopt when it would be too big.
  std::optional<Value> constant(const std::vector<std::int64_t>& shape, DType t) {
    Shape s;
    std::int64_t n = 1;
    for (std::int64_t d : shape) {
      if (d < 0 || d > kMaxConstantElements || n * d > kMaxConstantElements) return std::nullopt;
      n *= d;
    }
    try {
      s = Shape(std::span<const std::int64_t>(shape));
    } catch (const Error&) {
      return std::nullopt;
    }
    Tensor tensor(t == DType::kBF16 ? DType::kF32 : t, s);
    for (std::int64_t i = 0; i < n; ++i) {
      if (t == DType::kI64) {
        tensor.i64()[i] = r_.i64();
      } else if (t == DType::kBool) {
        tensor.boolean()[i] = r_.bit();
      } else {
        tensor.f32()[i] = r_.f32();
      }
    }
    try {
      return b_.constant("c" + std::to_string(names_++), tensor);
    } catch (const Error&) {
      return std::nullopt;
    }
  }
  std::vector<std::int64_t> int_list(std::size_t max_len) {
    std::vector<std::int64_t> v(r_.pick(max_len + 1));
    for (auto& x : v) x = r_.i64();
    return v;
  }
  std::vector<int> axis_list(std::size_t max_len) {
    std::vector<int> v(r_.pick(max_len + 1));
    for (auto& x : v) x = r_.axis();
    return v;
  }
  AttentionOptions attention_options() {
    AttentionOptions o;
    const std::uint8_t flags = r_.u8();
    o.causal = flags & 1;
    o.causal_from_key_lengths = flags & 2;
    if (flags & 4) o.scale = r_.f32();
    o.num_heads = static_cast<int>(r_.pick(5));
    o.num_kv_heads = static_cast<int>(r_.pick(4));
    return o;
  }
  RopeOptions rope_options() {
    RopeOptions o;
    o.num_heads = static_cast<int>(r_.pick(5));
    o.head_dim = static_cast<int>(r_.pick(10));
    if (r_.bit()) o.theta = r_.f32();
    o.layout = r_.bit() ? HeadLayout::kHeadMajor : HeadLayout::kTokenMajor;
    return o;
  }
  void push(Value v) { values_.push_back(v); }
  void op(int code);
};

void Program::op(int code) {
  switch (code) {
    case kConstant: {
      std::vector<std::int64_t> shape(r_.pick(4));
      for (auto& d : shape) d = r_.dim();
      if (auto c = constant(shape, dtype())) push(*c);
      break;
    }
    case kDense: {
      const Value x = val();
      const std::int64_t k = r_.pick(8) ? dim_of(x, 0) : r_.dim(), n = 1 + r_.pick(6);
      const std::string nm = name();
      const auto w = constant({k, n}, r_.pick(16) ? DType::kF32 : dtype());
      if (!w) break;
      std::optional<Value> bias;
      if (r_.bit()) bias = constant({r_.pick(8) ? n : r_.dim()}, DType::kF32);
      push(b_.dense(nm, x, *w, bias, act()));
      break;
    }
    case kMatmul: {
      const std::string nm = name();
      const Value a = val(), c = val();
      const std::uint8_t t = r_.u8();
      push(b_.matmul(nm, a, c, t & 1, t & 2));
      break;
    }
    case kActivation: {
      const std::string nm = name();
      const Value x = val();
      push(b_.activation(nm, x, act()));
      break;
    }
    case kMultiplex: {
      const std::string nm = name();
      const Value s = val(), a = val();
      const float lambda = r_.f32();
      push(b_.multiplex(nm, s, a, lambda, act()));
      break;
    }
    case kOutputGate: {
      const std::string nm = name();
      const Value s1 = val(), s2 = val();
      const Activation f = act(), g = act();
      push(b_.output_gate(nm, s1, s2, f, g));
      break;
    }
    case kSynapticGate: {
      const std::string nm = name();
      const Value x = val();
      const std::int64_t k = r_.pick(8) ? dim_of(x, 0) : r_.dim(), n = 1 + r_.pick(4);
      const auto w = constant({k, n}, DType::kF32);
      if (!w) break;
      push(b_.synaptic_gate(nm, x, *w, val()));
      break;
    }
    case kAttention: {
      const std::string nm = name();
      const Value q = val(), k = val(), v = val();
      const auto mask = opt_val(), lengths = opt_val();
      push(b_.attention(nm, q, k, v, mask, lengths, attention_options()));
      break;
    }
    case kAttentionQkv: {
      const std::string nm = name();
      const Value qkv = val();
      const auto mask = opt_val(), lengths = opt_val();
      push(b_.attention_qkv(nm, qkv, mask, lengths, attention_options()));
      break;
    }
    case kRopeConst: {
      const std::string nm = name();
      const Value x = val();
      const std::int64_t offset = r_.i64();
      push(b_.rope(nm, x, offset, rope_options()));
      break;
    }
    case kRopeValue: {
      const std::string nm = name();
      const Value x = val(), offset = val();
      push(b_.rope(nm, x, offset, rope_options()));
      break;
    }
    case kKvCache: {
      const std::string nm = name();
      KvCacheOptions o;
      o.num_kv_heads = static_cast<int>(r_.pick(4));
      o.head_dim = static_cast<int>(r_.pick(9));
      o.max_len = r_.pick(8) ? static_cast<std::int64_t>(r_.pick(17)) : r_.i64();
      const KvCache cache = b_.kv_cache(nm, o);
      caches_.push_back(cache);
      push(b_.kv_cache_length(cache));
      break;
    }
    case kKvCacheAppend: {
      const std::string nm = name();
      const KvCache cache = caches_.empty() || r_.u8() == 255 ? KvCache{} : caches_[r_.pick(caches_.size())];
      const Value k = val(), v = val();
      const KvCacheView view = b_.kv_cache_append(nm, cache, k, v);
      push(view.keys);
      push(view.values);
      push(view.key_lengths);
      break;
    }
    case kBinary: {
      const std::string nm = name();
      const auto kind = static_cast<BinaryOpKind>(r_.pick(7));
      const Value a = val(), c = val();
      push(b_.binary(nm, kind, a, c));
      break;
    }
    case kUnary: {
      const std::string nm = name();
      const auto kind = static_cast<UnaryOpKind>(r_.pick(9));
      push(b_.unary(nm, kind, val()));
      break;
    }
    case kClip: {
      const std::string nm = name();
      const Value x = val();
      const float lo = r_.f32(), hi = r_.f32();
      push(b_.clip(nm, x, lo, hi));
      break;
    }
    case kHardSigmoid: {
      const std::string nm = name();
      const Value x = val();
      const float alpha = r_.f32(), beta = r_.f32();
      push(b_.hard_sigmoid(nm, x, alpha, beta));
      break;
    }
    case kReduce: {
      const std::string nm = name();
      const auto kind = static_cast<ReduceOpKind>(r_.pick(4));
      const Value x = val();
      const std::vector<int> axes = axis_list(3);
      push(b_.reduce(nm, kind, x, axes, r_.bit()));
      break;
    }
    case kGather: {
      const std::string nm = name();
      const Value data = val();
      Value indices = val();
      if (r_.bit()) {  // constant indices, mostly in range
        std::vector<std::int64_t> shape(r_.pick(3));
        for (auto& d : shape) d = r_.pick(4);
        if (auto c = constant(shape, DType::kI64)) indices = *c;
      }
      push(b_.gather(nm, data, indices, r_.axis()));
      break;
    }
    case kWhere: {
      const std::string nm = name();
      const Value c = val(), x = val(), y = val();
      push(b_.where(nm, c, x, y));
      break;
    }
    case kEqual: {
      const std::string nm = name();
      const Value a = val(), c = val();
      push(b_.equal(nm, a, c));
      break;
    }
    case kCast: {
      const std::string nm = name();
      const Value x = val();
      push(b_.cast(nm, x, dtype()));
      break;
    }
    case kExpand: {
      const std::string nm = name();
      const Value x = val();
      std::vector<std::int64_t> shape(r_.pick(5));
      for (auto& d : shape) d = r_.pick(4) ? static_cast<std::int64_t>(r_.pick(4)) : r_.i64();
      push(b_.expand(nm, x, shape));
      break;
    }
    case kSoftmax: {
      const std::string nm = name();
      const Value x = val();
      const int axis = r_.axis();
      push(r_.bit() ? b_.log_softmax(nm, x, axis) : b_.softmax(nm, x, axis));
      break;
    }
    case kNorm: {
      const std::string nm = name();
      const Value x = val();
      const std::int64_t c = r_.pick(8) ? dim_of(x, 0) : r_.dim();
      std::optional<Value> scale, bias;
      if (r_.bit()) scale = constant({c}, DType::kF32);
      if (r_.bit()) bias = constant({c}, DType::kF32);
      const float eps = r_.f32();
      push(r_.bit() ? b_.rms_norm(nm, x, scale, bias, eps) : b_.layer_norm(nm, x, scale, bias, eps));
      break;
    }
    case kReshape: {
      const std::string nm = name();
      const Value x = val();
      std::vector<std::int64_t> shape(r_.pick(5));
      for (std::size_t i = 0; i < shape.size(); ++i) {
        const std::uint8_t how = r_.u8() % 4;
        shape[i] = how == 0 ? -1 : how == 1 ? 0 : how == 2 ? dim_of(x, static_cast<int>(i)) : r_.i64();
      }
      push(b_.reshape(nm, x, shape));
      break;
    }
    case kTranspose: {
      const std::string nm = name();
      const Value x = val();
      std::vector<int> perm;
      if (r_.pick(4)) {  // a permutation of x's rank, shuffled by the bytes
        int rank = 0;
        try {
          rank = static_cast<int>(b_.dims(x).size());
        } catch (const Error&) {
        }
        for (int i = 0; i < rank; ++i) perm.push_back(i);
        for (int i = rank - 1; i > 0; --i) std::swap(perm[i], perm[r_.pick(i + 1)]);
      } else {
        perm = axis_list(5);
      }
      push(b_.transpose(nm, x, perm));
      break;
    }
    case kConcat: {
      const std::string nm = name();
      std::vector<Value> xs(r_.pick(4));
      for (auto& x : xs) x = val();
      push(b_.concat(nm, xs, r_.axis()));
      break;
    }
    case kSplit: {
      const std::string nm = name();
      const Value x = val();
      const int axis = r_.axis();
      std::vector<std::int64_t> sizes(r_.pick(4));
      for (auto& s : sizes) s = r_.pick(6) ? static_cast<std::int64_t>(r_.pick(5)) : r_.i64();
      for (Value v : b_.split(nm, x, axis, sizes)) push(v);
      break;
    }
    case kSlice: {
      const std::string nm = name();
      const Value x = val();
      const std::size_t n = r_.pick(4);
      std::vector<std::int64_t> starts(n), ends(n), steps;
      std::vector<int> axes(n);
      for (std::size_t i = 0; i < n; ++i) {
        starts[i] = r_.i64();
        ends[i] = r_.i64();
        axes[i] = r_.axis();
      }
      if (r_.bit()) steps = int_list(n);
      push(b_.slice(nm, x, starts, ends, axes, steps));
      break;
    }
    default: {  // kOutput
      const std::uint8_t b = r_.u8();
      const std::string nm = b == 255 ? "out0" : b == 254 ? "" : "out" + std::to_string(outputs_);
      b_.output(nm, val());
      ++outputs_;
      break;
    }
  }
}

// Fills `t` from a small generator: varied values of every sign (i64: -2..5, bool: 0/1) or zeros.
void fill(Tensor& t, std::uint32_t seed, bool varied) {
  if (!varied) return;
  std::uint32_t s = seed * 2654435761u + 1;
  auto next = [&s] {
    s = s * 1664525u + 1013904223u;
    return s >> 8;
  };
  for (std::int64_t i = 0; i < t.numel(); ++i) {
    if (t.dtype() == DType::kF32) {
      t.f32()[i] = static_cast<float>(static_cast<int>(next() % 2001) - 1000) / 250.0f;
    } else if (t.dtype() == DType::kI64) {
      t.i64()[i] = static_cast<std::int64_t>(next() % 8) - 2;
    } else if (t.dtype() == DType::kBool) {
      t.boolean()[i] = next() & 1;
    }
  }
}

void Program::run(FuzzStats& st) {
  ++st.cases;
  const int n_inputs = 1 + static_cast<int>(r_.pick(3));
  const std::int64_t sym_a = static_cast<std::int64_t>(r_.pick(5)), sym_b = static_cast<std::int64_t>(r_.pick(5));
  const std::uint8_t flags = r_.u8();
  for (int i = 0; i < n_inputs; ++i) {
    InputDecl in;
    in.name = "in" + std::to_string(i);
    for (std::size_t k = r_.pick(5); k > 0; --k) {
      const std::uint8_t how = r_.u8();
      if (how % 5 == 0)
        in.dims.emplace_back(how % 2 ? "a" : "b");
      else
        in.dims.emplace_back(r_.dim());
    }
    in.dtype = dtype();
    try {
      push(b_.input(in.name, in.dims, in.dtype));
      inputs_.push_back(std::move(in));
    } catch (const Error& e) {
      if (verbose_ >= 2) std::cerr << "  input: " << e.what() << "\n";
    }
  }
  for (int n = 0; n < kMaxOps && !r_.done(); ++n) {
    const int code = static_cast<int>(r_.pick(kOpCount));
    try {
      op(code);
    } catch (const Error& e) {
      if (verbose_ >= 2) std::cerr << "  op " << code << ": " << e.what() << "\n";
    }
  }
  if (outputs_ == 0 && !values_.empty()) {
    try {
      b_.output("out", values_.back());
    } catch (const Error&) {
    }
  }
  Graph graph;
  try {
    graph = b_.build();
  } catch (const Error& e) {
    if (verbose_ >= 2) std::cerr << "  build: " << e.what() << "\n";
    return;
  }
  if (verbose_) std::cerr << graph.to_string() << "\n";
  ++st.loaded;
  CompileOptions copt;
  copt.threads = 1;
  copt.max_arena_bytes = kMaxArenaBytes;
  copt.max_state_bytes = kMaxStateBytes;
  copt.precision = (flags & 7) == 0 ? Precision::kBF16 : Precision::kF32;
  Model model;
  try {
    model = compile(graph, copt);
  } catch (const Error& e) {
    if (verbose_ >= 2) std::cerr << "  compile: " << e.what() << "\n";
    return;
  }
  ++st.compiled;
  // Inputs that survived build (dead-node elimination may drop some), with the symbols bound.
  std::vector<Tensor> tensors;
  std::vector<NamedInput> named;
  const std::vector<std::string> names = graph.input_names();
  tensors.reserve(names.size());
  for (const std::string& nm : names) {
    const InputDecl* decl = nullptr;
    for (const InputDecl& in : inputs_)
      if (in.name == nm) decl = &in;
    if (!decl) std::abort();  // the graph has an input the program did not declare
    Shape shape;
    std::int64_t n = 1;
    for (const Dim& d : decl->dims) {
      const std::int64_t v = d.is_symbolic() ? (d.symbol == "a" ? sym_a : sym_b) : d.value;
      if (v < 0 || v > kMaxRunElements || (v > 0 && n > kMaxRunElements / v)) return;
      n *= v;
      shape.push_back(v);
    }
    tensors.emplace_back(decl->dtype, shape);
    fill(tensors.back(), static_cast<std::uint32_t>(tensors.size()), flags & 8);
    named.push_back({nm, tensors.back()});
  }
  try {
    Session session(model);
    session.run(named);
    session.run(named);  // with KV caches: a second step appends after the first
    ++st.ran;
  } catch (const Error& e) {
    if (verbose_ >= 2) std::cerr << "  run: " << e.what() << "\n";
  }
}

}  // namespace

void fuzz_graph_build(std::span<const std::byte> bytes, FuzzStats* stats, int verbose) {
  FuzzStats unused;
  Program(bytes, verbose).run(stats ? *stats : unused);
}

}  // namespace quarks::fuzz
