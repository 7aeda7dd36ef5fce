// Validation at build, compile and run time: every error names the node, the op and the reason.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <vector>

#include "engine/test_util.hpp"
#include "ops/contract/graph_ir.hpp"

namespace quarks {
namespace {

using test::random_tensor;
using ::testing::HasSubstr;

// Runs `fn`, expecting quarks::Error with `code` and a message containing every fragment.
template <class Fn>
void expect_error(Fn fn, ErrorCode code, std::initializer_list<const char*> fragments) {
  try {
    fn();
    FAIL() << "expected quarks::Error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), code) << e.what();
    for (const char* f : fragments) EXPECT_THAT(e.what(), HasSubstr(f));
  }
}

TEST(GraphValidation, DenseInnerDimMismatchNamesNodeOpInputAndK) {
  GraphBuilder g;
  auto x = g.input("x", {4, 512});
  auto w = g.constant("ffn.up.w", random_tensor({768, 3072}, 1));
  expect_error([&] { g.dense("ffn.up", x, w); }, ErrorCode::kShapeMismatch,
               {"node 'ffn.up' (dense): input 'x' has shape [4,512] but the weight 'ffn.up.w' expects K=768"});
}

TEST(GraphValidation, DenseWeightMustBeConstant) {
  GraphBuilder g;
  auto x = g.input("x", {4, 8});
  auto w = g.input("w", {8, 8});
  expect_error([&] { g.dense("d", x, w); }, ErrorCode::kInvalidArgument, {"node 'd' (dense)", "must be a constant"});
}

TEST(GraphValidation, BroadcastMismatchNamesBothInputs) {
  GraphBuilder g;
  auto a = g.input("a", {4, 3});
  auto b = g.input("b", {5, 3});
  expect_error([&] { g.add("sum", a, b); }, ErrorCode::kShapeMismatch,
               {"node 'sum' (binary)", "'a' [4,3]", "'b' [5,3]", "do not broadcast"});
}

TEST(GraphValidation, AttributeErrors) {
  GraphBuilder g;
  auto x = g.input("x", {2, 3});
  expect_error([&] { g.softmax("sm", x, 2); }, ErrorCode::kInvalidArgument, {"node 'sm' (softmax)", "axis 2"});
  expect_error(
      [&] {
        g.transpose("t", x, {0, 0});
      },
      ErrorCode::kInvalidArgument, {"node 't' (transpose)", "permutation"});
  expect_error(
      [&] {
        g.reshape("r", x, {4, -1});
      },
      ErrorCode::kShapeMismatch, {"node 'r' (reshape)", "cannot reshape"});
  expect_error([&] { g.split("s", x, 1, {1, 1}); }, ErrorCode::kShapeMismatch, {"node 's' (split)", "sum to 2"});
  expect_error([&] { g.activation("p", x, Activation::polynomial({})); }, ErrorCode::kInvalidArgument,
               {"node 'p' (activation)", "coefficients"});
  expect_error([&] { g.slice("sl", x, {0}, {1}, {1}, {0}); }, ErrorCode::kInvalidArgument,
               {"node 'sl' (slice)", "step"});
}

TEST(GraphValidation, DuplicateAndEmptyNames) {
  GraphBuilder g;
  auto x = g.input("x", {2});
  g.activation("a", x, Activation::relu());
  expect_error([&] { g.activation("a", x, Activation::relu()); }, ErrorCode::kInvalidArgument,
               {"node 'a'", "already exists"});
  expect_error([&] { g.input("x", {2}); }, ErrorCode::kInvalidArgument, {"input 'x'", "already used"});
  expect_error([&] { g.activation("x", x, Activation::relu()); }, ErrorCode::kInvalidArgument, {"'x'", "already used"});
}

TEST(GraphValidation, BuildNeedsOutputs) {
  GraphBuilder g;
  g.input("x", {2});
  expect_error([&] { g.build(); }, ErrorCode::kInvalidArgument, {"no outputs"});
}

TEST(GraphValidation, SymbolicDimsAreCheckedAtRunTime) {
  GraphBuilder g;
  auto a = g.input("a", {"batch", 4});
  auto b = g.input("b", {"batch", 4});
  g.output("y", g.add("sum", a, b));
  Session s(compile(g.build()));
  Tensor ta = random_tensor({3, 4}, 1), tb = random_tensor({2, 4}, 2), tc = random_tensor({3, 5}, 3);
  expect_error(
      [&] {
        s.run({{"a", ta}, {"b", tb}});
      },
      ErrorCode::kShapeMismatch, {"symbol 'batch' is 3 in input 'a' but 2 in input 'b'"});
  expect_error(
      [&] {
        s.run({{"a", ta}, {"b", tc}});
      },
      ErrorCode::kShapeMismatch, {"input 'b' has shape [3,5] but the graph declares [batch,4]"});
  expect_error([&] { s.run({{"a", ta}}); }, ErrorCode::kNotFound, {"input 'b' is missing"});
  expect_error([&] { s.run({{"a", ta}, {"b", ta}, {"c", ta}}); }, ErrorCode::kNotFound, {"unknown input 'c'"});
  // A valid run after the errors still works.
  auto out = s.run({{"a", ta}, {"b", ta}});
  EXPECT_EQ(out.at("y").shape(), (Shape{3, 4}));
}

TEST(GraphValidation, OutputBufferOfWrongShapeIsRejected) {
  GraphBuilder g;
  auto x = g.input("x", {2, 3});
  g.output("y", g.activation("a", x, Activation::relu()));
  Session s(compile(g.build()));
  Tensor in = random_tensor({2, 3}, 1), wrong(DType::kF32, {3, 2});
  const NamedInput inputs[] = {{"x", in}};
  const NamedOutput outputs[] = {{"y", wrong.view()}};
  expect_error([&] { s.run(inputs, outputs); }, ErrorCode::kShapeMismatch,
               {"output 'y' buffer is f32 [3,2] but the output is f32 [2,3]"});
}

TEST(GraphValidation, ArenaCapIsEnforcedAtCompileTime) {
  GraphBuilder g;
  auto x = g.input("x", {1024, 1024});
  auto h = g.activation("a", x, Activation::relu());
  g.output("y", g.activation("b", h, Activation::tanh()));
  CompileOptions o;
  o.max_arena_bytes = 1 << 20;
  // The need (the 4 MiB intermediate), the shapes and the cap.
  expect_error([&] { compile(g.build(), o); }, ErrorCode::kResourceExhausted,
               {"the activation arena needs 4194304 bytes for input shapes [1024,1024]", "max_arena_bytes = 1048576"});
}

TEST(GraphValidation, ArenaCapWithSymbolicShapesIsEnforcedWhenAShapeIsFirstPlanned) {
  GraphBuilder g;
  auto x = g.input("x", {"rows", 1024});
  g.output("y", g.activation("b", g.activation("a", x, Activation::relu()), Activation::tanh()));
  CompileOptions o;
  o.max_arena_bytes = 1 << 20;
  const Model model = compile(g.build(), o);  // no shapes yet: nothing to plan
  Session s(model);
  const Tensor big(DType::kF32, Shape{1024, 1024});
  expect_error(
      [&] {
        s.run({{"x", big}});
      },
      ErrorCode::kResourceExhausted, {"needs 4194304 bytes for input shapes [1024,1024]", "max_arena_bytes = 1048576"});
  EXPECT_EQ(s.arena_bytes(), 0u);  // nothing was allocated
  // Shapes under the cap run, on the same Session.
  const Tensor small = test::random_tensor({16, 1024}, 1);
  const Tensor y = s.run({{"x", small}}).at("y");
  for (std::int64_t i = 0; i < y.numel(); i += 97) {
    EXPECT_NEAR(y.f32()[i], std::tanh(std::max(0.0, static_cast<double>(small.f32()[i]))), 1e-6) << i;
  }
  EXPECT_LE(s.arena_bytes(), std::size_t{1} << 20);
}

// Session::run(inputs) allocates the outputs: they are held to the cap too (fuzz_graph_build found a
// capped Session allocating a 144 GB output of an expand).
TEST(GraphValidation, ArenaCapHoldsForOutputsThatRunAllocates) {
  GraphBuilder g;
  auto x = g.input("x", {"n"});
  g.output("y", g.expand("wide", x, {1 << 16, 1}));
  CompileOptions o;
  o.max_arena_bytes = 1 << 20;
  Session s(compile(g.build(), o));
  const Tensor small(DType::kF32, Shape{1});
  EXPECT_EQ(s.run({{"x", small}}).at("y").shape(), Shape({1 << 16, 1}));  // 256 kB: within the cap
  const Tensor in(DType::kF32, Shape{8});
  expect_error(
      [&] {
        s.run({{"x", in}});
      },
      ErrorCode::kResourceExhausted,
      {"output 'y' of shape [65536,8] needs 2097152 bytes, above the cap max_arena_bytes = 1048576"});
}

// Shapes whose element count (zero dims counted as 1) passes 2^48 are refused with an Error, at build
// time when the dims are fixed and at run time when symbols make them so (found by fuzz_graph_build:
// such shapes overflowed 64-bit element, stride and tile arithmetic).
TEST(GraphValidation, HugeShapesAreRefused) {
  constexpr std::int64_t k32 = std::int64_t{1} << 32;
  GraphBuilder g;
  expect_error(
      [&] {
        g.input("big", {k32, k32});
      },
      ErrorCode::kInvalidArgument, {"input 'big': shape [4294967296,4294967296] is too large", "2^48 elements"});
  expect_error([&] { g.input("long", {1, INT64_MAX, 3}); }, ErrorCode::kInvalidArgument, {"input 'long'"});
  expect_error(
      [&] {
        g.constant("empty", Tensor(DType::kF32, Shape{0, k32, k32}));
      },
      ErrorCode::kInvalidArgument, {"constant 'empty': shape [0,4294967296,4294967296] is too large"});
  auto x = g.input("x", {"n"});
  auto c = g.constant("c", Tensor::from_f32({}, {1.0f}));
  expect_error(
      [&] {
        g.expand("e", c, {k32, k32, k32, k32});
      },
      ErrorCode::kInvalidArgument,
      {"node 'e' (expand): output shape [4294967296,4294967296,4294967296,4294967296] is too large"});
  auto one = g.constant("one", Tensor::from_f32({1}, {1.0f}));
  expect_error(
      [&] {
        g.reshape("r", one, {0, k32, k32, k32});
      },
      ErrorCode::kShapeMismatch, {"node 'r' (reshape): cannot reshape"});
  // Within the limit at build time, past it once the symbol is bound.
  g.output("y", g.expand("wide", x, {std::int64_t{1} << 40, 1}));
  Session s(compile(g.build()));
  const Tensor in(DType::kF32, Shape{1024});
  expect_error(
      [&] {
        s.run({{"x", in}});
      },
      ErrorCode::kInvalidArgument, {"node 'wide' (expand): output shape [1099511627776,1024] is too large"});
}

TEST(GraphPasses, DeadNodesAreDropped) {
  GraphBuilder g;
  auto x = g.input("x", {2, 3});
  g.activation("unused", x, Activation::relu());
  g.output("y", g.activation("used", x, Activation::tanh()));
  Model m = compile(g.build());
  EXPECT_EQ(m.node_count(), 1u);
  EXPECT_THAT(m.describe(), HasSubstr("used = activation[tanh]"));
}

TEST(GraphPasses, DenseBiasActivationAndGatingFuse) {
  GraphBuilder g;
  auto x = g.input("x", {"rows", 16});
  auto up = g.dense("up", x, g.constant("wu", random_tensor({16, 32}, 1)));
  auto gate =
      g.dense("gate", x, g.constant("wg", random_tensor({16, 32}, 2)), g.constant("bg", random_tensor({32}, 3)));
  auto h = g.output_gate("swiglu", gate, up, Activation::silu(), Activation::identity());
  auto d = g.dense("down", h, g.constant("wd", random_tensor({32, 16}, 4)));
  auto b = g.add("down.bias", d, g.constant("bd", random_tensor({16}, 5)));
  g.output("y", g.activation("act", b, Activation::gelu()));
  Model m = compile(g.build());
  EXPECT_EQ(m.node_count(), 2u) << m.describe();
  EXPECT_THAT(m.describe(), HasSubstr("swiglu = gated_dense[silu*identity](x, wg, wu, bg)"));
  EXPECT_THAT(m.describe(), HasSubstr("down = dense+bias+gelu(swiglu, wd, bd)"));
}

TEST(GraphPasses, OutputsAreNotFusedAway) {
  GraphBuilder g;
  auto x = g.input("x", {4, 8});
  auto d = g.dense("d", x, g.constant("w", random_tensor({8, 8}, 1)));
  g.output("pre", d);
  g.output("y", g.activation("act", d, Activation::relu()));
  Model m = compile(g.build());
  EXPECT_EQ(m.node_count(), 2u) << m.describe();
}

}  // namespace
}  // namespace quarks

namespace quarks {
namespace {

// bf16 runs where oneDNN has bf16 matmuls (AVX-512); elsewhere compile() must say so, naming the node.
TEST(GraphValidation, Bf16EitherRunsWithinBf16ErrorOrIsRejectedClearly) {
  const std::int64_t m = 8, k = 64, n = 32;
  Tensor x = random_tensor({m, k}, 1), w = random_tensor({k, n}, 2);
  GraphBuilder g;
  g.output("y", g.dense("proj", g.input("x", {m, k}), g.constant("w", w)));
  CompileOptions o;
  o.precision = Precision::kBF16;
  try {
    Tensor y = test::run_once(g.build(), {{"x", x}}, "y", o);
    // bf16 keeps 8 significant bits: each product is off by at most ~2^-8 relative.
    EXPECT_LT(test::max_abs_diff(y, test::matmul_ref(x.f32(), w.f32(), m, k, n)), k * 2.0 / 256.0);
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kUnsupported);
    EXPECT_THAT(e.what(), HasSubstr("node 'proj' (dense): "));
    EXPECT_THAT(e.what(), HasSubstr("bf16 precision is not available on this CPU"));
  }
}

// --- dtypes and the elementwise ops that take them ---------------------------------------------------
TEST(GraphValidation, F32OnlyOpsRejectOtherDtypesNamingTheInput) {
  GraphBuilder g;
  auto x = g.input("x", {2, 3});
  auto ids = g.input("ids", {2, 3}, DType::kI64);
  auto mask = g.input("mask", {2, 3}, DType::kBool);
  expect_error([&] { g.activation("a", ids, Activation::relu()); }, ErrorCode::kTypeMismatch,
               {"node 'a' (activation): input 0 'ids' is i64 but this op takes f32 only"});
  expect_error([&] { g.add("sum", x, ids); }, ErrorCode::kTypeMismatch, {"node 'sum' (binary): input 1 'ids' is i64"});
  expect_error([&] { g.unary("u", UnaryOpKind::kExp, mask); }, ErrorCode::kTypeMismatch,
               {"node 'u' (unary): input 0 'mask' is bool"});
  expect_error([&] { g.clip("c", ids, 0, 1); }, ErrorCode::kTypeMismatch, {"node 'c' (unary)", "'ids' is i64"});
  expect_error([&] { g.softmax("sm", ids); }, ErrorCode::kTypeMismatch, {"node 'sm' (softmax)", "'ids' is i64"});
  auto c = g.constant("w", Tensor::from_i64({3, 3}, std::vector<std::int64_t>(9, 1)));
  expect_error([&] { g.dense("d", x, c); }, ErrorCode::kTypeMismatch, {"node 'd' (dense): input 1 'w' is i64"});
}

TEST(GraphValidation, TypedOpsCheckDtypes) {
  GraphBuilder g;
  auto x = g.input("x", {2, 3});
  auto ids = g.input("ids", {2, 3}, DType::kI64);
  auto mask = g.input("mask", {2, 3}, DType::kBool);
  expect_error([&] { g.equal("eq", x, ids); }, ErrorCode::kTypeMismatch,
               {"node 'eq' (equal): inputs 'x' (f32) and 'ids' (i64) have different dtypes"});
  expect_error([&] { g.where("w", x, x, x); }, ErrorCode::kTypeMismatch,
               {"node 'w' (where): the condition 'x' (f32) must be bool"});
  expect_error([&] { g.where("w", mask, x, ids); }, ErrorCode::kTypeMismatch,
               {"node 'w' (where): inputs 'x' (f32) and 'ids' (i64) have different dtypes"});
  expect_error([&] { g.cast("c", x, DType::kBF16); }, ErrorCode::kInvalidArgument,
               {"node 'c' (cast): cannot cast to bf16"});
  // The accepted combinations give the documented output dtypes.
  EXPECT_EQ(g.dtype(g.equal("eq_f", x, x)), DType::kBool);
  EXPECT_EQ(g.dtype(g.equal("eq_i", ids, ids)), DType::kBool);
  EXPECT_EQ(g.dtype(g.equal("eq_b", mask, mask)), DType::kBool);
  EXPECT_EQ(g.dtype(g.where("w_i", mask, ids, ids)), DType::kI64);
  EXPECT_EQ(g.dtype(g.where("w_b", mask, mask, mask)), DType::kBool);
  EXPECT_EQ(g.dtype(g.cast("c_i", x, DType::kI64)), DType::kI64);
  EXPECT_EQ(g.dtype(g.expand("e_b", mask, {4, 2, 3})), DType::kBool);
}

TEST(GraphValidation, ElementwiseShapeAndAttributeErrors) {
  GraphBuilder g;
  auto x = g.input("x", {3});
  auto y = g.input("y", {4});
  auto m = g.input("m", {2, 1}, DType::kBool);
  expect_error([&] { g.where("w", m, x, y); }, ErrorCode::kShapeMismatch,
               {"node 'w' (where): 'm' [2,1], 'x' [3], 'y' [4] do not broadcast", "3 vs 4"});
  expect_error(
      [&] {
        g.expand("e", x, {2, 4});
      },
      ErrorCode::kShapeMismatch, {"node 'e' (expand): input 'x' [3], the target shape [2,4] do not broadcast"});
  expect_error(
      [&] {
        g.expand("e", x, {-1, 3});
      },
      ErrorCode::kInvalidArgument, {"node 'e' (expand): target shape dims must be >= 0, got -1"});
  expect_error([&] { g.binary("p", BinaryOpKind::kPow, x, y); }, ErrorCode::kShapeMismatch,
               {"node 'p' (binary)", "'x' [3] and 'y' [4]"});
  expect_error([&] { g.unary("u", UnaryOpKind::kClip, x); }, ErrorCode::kInvalidArgument,
               {"node 'u' (unary): clip takes bounds: use GraphBuilder::clip"});
  expect_error([&] { g.unary("u", UnaryOpKind::kHardSigmoid, x); }, ErrorCode::kInvalidArgument,
               {"node 'u' (unary): hard_sigmoid takes alpha and beta: use GraphBuilder::hard_sigmoid"});
  expect_error([&] { g.unary("u", static_cast<UnaryOpKind>(42), x); }, ErrorCode::kInvalidArgument,
               {"node 'u' (unary): unknown UnaryOpKind value 42"});
  expect_error([&] { g.binary("b", static_cast<BinaryOpKind>(42), x, x); }, ErrorCode::kInvalidArgument,
               {"node 'b' (binary): unknown BinaryOpKind value 42"});
  expect_error([&] { g.clip("c", x, 2.0f, 1.0f); }, ErrorCode::kInvalidArgument,
               {"node 'c' (unary): clip needs lo <= hi, got lo = 2 and hi = 1"});
  expect_error([&] { g.clip("c", x, NAN, 1.0f); }, ErrorCode::kInvalidArgument, {"clip needs lo <= hi", "nan"});
  expect_error([&] { g.hard_sigmoid("h", x, INFINITY, 0.5f); }, ErrorCode::kInvalidArgument,
               {"node 'h' (unary): hard_sigmoid needs finite alpha and beta"});
  // One-sided and degenerate clips are fine.
  EXPECT_EQ(g.shape_string(g.clip("c1", x, -INFINITY, 0.0f)), "[3]");
  EXPECT_EQ(g.shape_string(g.clip("c2", x, 1.0f, 1.0f)), "[3]");
}

}  // namespace
}  // namespace quarks
