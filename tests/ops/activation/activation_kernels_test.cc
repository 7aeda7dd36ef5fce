// Tests of the activation family's Highway kernels (activation, multiplex, output_gate) against the
// double-precision reference in activation_reference.hpp.
#include "ops/activation/activation_kernels.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "hwy/targets.h"
#include "ops/activation/activation_reference.hpp"
#include "quarks/error.hpp"

namespace quarks::ops {
namespace {

using test::reference_activation;
using test::reference_slope_bound;

constexpr float kInf = std::numeric_limits<float>::infinity();
constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
constexpr double kUlpHalf = 0x1p-24;  // unit roundoff of f32
// Tail factors below this (e^-87.33, 0.6% above FLT_MIN) are flushed to 0 by the kernels.
constexpr double kSmallestKept = 1.18e-38;

// Sizes around every vector width (4, 8, 16 lanes) and a long odd run.
const std::size_t kSizes[] = {0, 1, 3, 15, 16, 17, 31, 33, 1000, 100003};
// Trailing elements that must not be written.
constexpr std::size_t kGuard = 17;
constexpr float kSentinel = 12345.0f;

std::vector<Activation> all_activations() {
  return {Activation::identity(),       Activation::relu(),
          Activation::leaky_relu(0.1f), Activation::sigmoid(),
          Activation::tanh(),           Activation::gelu(),
          Activation::gelu_tanh(),      Activation::silu(),
          Activation::square(),         Activation::polynomial({0.5f, -1.0f, 0.25f, 0.125f}),
          Activation::sign(),           Activation::heaviside()};
}

bool is_smooth_transcendental(ActivationKind kind) {
  return kind == ActivationKind::kSigmoid || kind == ActivationKind::kTanh || kind == ActivationKind::kGeluErf ||
         kind == ActivationKind::kGeluTanh || kind == ActivationKind::kSilu;
}

// Allowed |kernel - reference| at x. Transcendental kinds: the 1e-6 absolute acceptance bound. The
// piecewise-linear kinds and square are one IEEE operation: exact after rounding to f32, i.e. half an
// ulp of the result. Polynomial: the Horner (FMA) error bound, one rounding per coefficient.
double activation_tolerance(const Activation& f, double x) {
  const double ref = reference_activation(f, x);
  if (is_smooth_transcendental(f.kind)) return 1e-6;
  if (f.kind == ActivationKind::kPolynomial) {
    double magnitude = 0.0;
    for (std::size_t i = 0; i < f.coeffs.size(); ++i) magnitude += std::fabs(f.coeffs[i]) * std::pow(std::fabs(x), i);
    return 2.0 * static_cast<double>(f.coeffs.size() + 1) * kUlpHalf * magnitude;
  }
  return kUlpHalf * std::fabs(ref);
}

std::vector<float> uniform(std::size_t n, float lo, float hi, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

std::vector<float> with_guard(std::size_t n) { return std::vector<float>(n + kGuard, kSentinel); }

void expect_guard_intact(const std::vector<float>& y, std::size_t n, const std::string& what) {
  for (std::size_t i = n; i < y.size(); ++i) ASSERT_EQ(y[i], kSentinel) << what << ": wrote past n at " << i;
}

// NaN-aware equality with -0 == +0 (the sign of a zero result is not part of the contract).
bool same_value(float a, float b) { return (std::isnan(a) && std::isnan(b)) || a == b; }

// Runs body once per Highway target that this CPU supports and the kernels were compiled for (e.g.
// AVX3, AVX2, SSE4, scalar: 16, 8, 4 and 1 lanes, so every tail path), then restores the best target.
const char* current_target = "";  // for the measured-error printouts

void on_every_target(const std::function<void()>& body) {
  for (const std::int64_t target : hwy::SupportedAndGeneratedTargets()) {
    hwy::SetSupportedTargetsForTest(target);
    current_target = hwy::TargetName(target);
    SCOPED_TRACE(std::string("Highway target ") + hwy::TargetName(target));
    body();
  }
  hwy::SetSupportedTargetsForTest(0);
}

TEST(Activation, EveryKindMatchesReferenceAtAwkwardSizes) {
  on_every_target([] {
    for (const Activation& f : all_activations()) {
      for (std::size_t n : kSizes) {
        const std::vector<float> x = uniform(n, -8.0f, 8.0f, static_cast<unsigned>(n) + 1);
        std::vector<float> y = with_guard(n);
        activation(f, x.data(), y.data(), n);
        for (std::size_t i = 0; i < n; ++i) {
          const double ref = reference_activation(f, x[i]);
          ASSERT_LE(std::fabs(y[i] - ref), activation_tolerance(f, x[i]))
              << f.to_string() << " n=" << n << " x=" << x[i] << " got " << y[i] << " want " << ref;
        }
        expect_guard_intact(y, n, f.to_string() + " n=" + std::to_string(n));
      }
    }
  });
}

TEST(Activation, InPlaceEqualsOutOfPlace) {
  on_every_target([] {
    for (const Activation& f : all_activations()) {
      for (std::size_t n : {std::size_t{17}, std::size_t{1000}}) {
        const std::vector<float> x = uniform(n, -30.0f, 30.0f, 7);
        std::vector<float> expected(n);
        activation(f, x.data(), expected.data(), n);
        std::vector<float> y = x;
        activation(f, y.data(), y.data(), n);
        for (std::size_t i = 0; i < n; ++i) ASSERT_TRUE(same_value(y[i], expected[i])) << f.to_string() << " i=" << i;
      }
    }
  });
}

TEST(Activation, ZeroLengthTouchesNothing) {
  for (const Activation& f : all_activations()) activation(f, nullptr, nullptr, 0);
}

// Dense sweep of [-20, 20] (1e6 + 1 points). Measured maximum absolute errors, the same on every target
// of this machine (AVX2, SSE4, SSSE3, scalar):
//   sigmoid 1.1e-7, tanh 8.9e-8, gelu 2.4e-7, gelu_tanh 2.4e-7, silu 9.5e-7 (at x = 16.7).
// For |x| in [16, 20] half an ulp of the result itself is 9.5e-7, so silu (and gelu) must be nearly
// correctly rounded there, which the form x - x·Q gives (x·Q is small there, so its rounding is too).
TEST(Activation, TranscendentalAbsoluteErrorOnDenseSweep) {
  on_every_target([] {
    constexpr std::size_t kPoints = 1000001;
    std::vector<float> x(kPoints);
    for (std::size_t i = 0; i < kPoints; ++i)
      x[i] = static_cast<float>(-20.0 + 40.0 * static_cast<double>(i) / (kPoints - 1));
    std::vector<float> y(kPoints);
    for (const Activation& f :
         {Activation::sigmoid(), Activation::tanh(), Activation::gelu(), Activation::gelu_tanh(), Activation::silu()}) {
      activation(f, x.data(), y.data(), kPoints);
      double max_error = 0.0;
      float worst_x = 0.0f;
      for (std::size_t i = 0; i < kPoints; ++i) {
        const double error = std::fabs(y[i] - reference_activation(f, x[i]));
        if (error > max_error) {
          max_error = error;
          worst_x = x[i];
        }
      }
      std::printf("  %-6s %-10s max abs error on [-20, 20]: %.3g at x = %.9g\n", current_target, f.to_string().c_str(),
                  max_error, static_cast<double>(worst_x));
      EXPECT_LE(max_error, 1e-6) << f.to_string() << " worst at x=" << worst_x;
    }
  });
}

// Relative error on a log-spaced sweep of |x| in [1e-30, 1e4], both signs, wherever the result and, for
// silu and the gelus, its factor f(x)/x (σ(x), Φ(x)) are at least 1.18e-38: this covers the tails
// (sigmoid(-87) ≈ 1.6e-38, gelu(-13) ≈ -8e-38) and tiny arguments. Below that (just above FLT_MIN) the
// kernels' exponential flushes the tail factor to 0, e.g. silu(-90) gives -0 instead of -7e-38.
// Measured maxima
// (all targets): sigmoid 2.4e-7, tanh 2.1e-7, silu 2.8e-7, gelu 1.5e-5 and gelu_tanh 1.1e-5 — in the deep
// negative tail only, from the f32 rounding of the exponent (-x²/2 resp. v, up to ≈ -87 there; an
// absolute error δ in an exponent is a relative error δ in the result).
TEST(Activation, TranscendentalRelativeErrorInTails) {
  on_every_target([] {
    struct Case {
      Activation f;
      double bound;
    };
    const Case cases[] = {{Activation::sigmoid(), 1e-6},
                          {Activation::tanh(), 1e-6},
                          {Activation::gelu(), 3e-5},
                          {Activation::gelu_tanh(), 3e-5},
                          {Activation::silu(), 1e-6}};
    std::vector<float> x;
    for (double e = -30.0; e <= 4.0; e += 1e-4) {
      x.push_back(static_cast<float>(std::pow(10.0, e)));
      x.push_back(-static_cast<float>(std::pow(10.0, e)));
    }
    std::vector<float> y(x.size());
    for (const Case& c : cases) {
      activation(c.f, x.data(), y.data(), x.size());
      double max_error = 0.0;
      float worst_x = 0.0f;
      for (std::size_t i = 0; i < x.size(); ++i) {
        const double ref = reference_activation(c.f, x[i]);
        const bool factor_flushed = c.f.kind != ActivationKind::kSigmoid && c.f.kind != ActivationKind::kTanh &&
                                    std::fabs(ref / x[i]) < kSmallestKept;
        if (std::fabs(ref) < kSmallestKept || factor_flushed) continue;
        const double error = std::fabs(y[i] - ref) / std::fabs(ref);
        if (error > max_error) {
          max_error = error;
          worst_x = x[i];
        }
      }
      std::printf("  %-6s %-10s max rel error (|x| in [1e-30, 1e4]): %.3g at x = %.9g\n", current_target,
                  c.f.to_string().c_str(), max_error, static_cast<double>(worst_x));
      EXPECT_LE(max_error, c.bound) << c.f.to_string() << " worst at x=" << worst_x;
    }
  });
}

struct SpecialCase {
  Activation f;
  float x;
  float expected;  // NaN means "must be NaN"
};

TEST(Activation, SpecialValuesAndLimits) {
  on_every_target([] {
    const Activation sig = Activation::sigmoid(), th = Activation::tanh(), ge = Activation::gelu(),
                     gt = Activation::gelu_tanh(), si = Activation::silu();
    std::vector<SpecialCase> cases = {
        {sig, kInf, 1.0f},
        {sig, -kInf, 0.0f},
        {sig, 0.0f, 0.5f},
        {sig, -0.0f, 0.5f},
        {sig, 1e4f, 1.0f},
        {sig, -1e4f, 0.0f},
        {sig, 200.0f, 1.0f},
        {sig, -200.0f, 0.0f},
        {th, kInf, 1.0f},
        {th, -kInf, -1.0f},
        {th, 1e4f, 1.0f},
        {th, -1e4f, -1.0f},
        {th, 0.0f, 0.0f},
        {ge, kInf, kInf},
        {ge, -kInf, 0.0f},
        {ge, 1e4f, 1e4f},
        {ge, -1e4f, 0.0f},
        {ge, FLT_MAX, FLT_MAX},
        {ge, -FLT_MAX, 0.0f},
        {ge, 0.0f, 0.0f},
        {gt, kInf, kInf},
        {gt, -kInf, 0.0f},
        {gt, 1e4f, 1e4f},
        {gt, -1e4f, 0.0f},
        {gt, FLT_MAX, FLT_MAX},
        {gt, -FLT_MAX, 0.0f},
        {si, kInf, kInf},
        {si, -kInf, 0.0f},
        {si, 1e4f, 1e4f},
        {si, -1e4f, 0.0f},
        {si, FLT_MAX, FLT_MAX},
        {si, -FLT_MAX, 0.0f},
        {si, 0.0f, 0.0f},
        {Activation::relu(), -kInf, 0.0f},
        {Activation::relu(), kInf, kInf},
        {Activation::leaky_relu(0.1f), -kInf, -kInf},
        {Activation::leaky_relu(0.5f), -2.0f, -1.0f},
        {Activation::square(), -kInf, kInf},
        {Activation::square(), 1e20f, kInf},
        {Activation::sign(), 0.0f, 1.0f},
        {Activation::sign(), -0.0f, 1.0f},
        {Activation::sign(), -kInf, -1.0f},
        {Activation::sign(), kInf, 1.0f},
        {Activation::sign(), -FLT_TRUE_MIN, -1.0f},
        {Activation::heaviside(), 0.0f, 1.0f},
        {Activation::heaviside(), -0.0f, 1.0f},
        {Activation::heaviside(), -FLT_TRUE_MIN, 0.0f},
        {Activation::heaviside(), -kInf, 0.0f},
        {Activation::heaviside(), kInf, 1.0f},
        {Activation::polynomial({1.0f, 2.0f}), kInf, kInf},
    };
    // NaN in -> NaN out for every kind (a polynomial of degree >= 1).
    for (const Activation& f : all_activations()) cases.push_back({f, kNaN, kNaN});
    // Subnormal inputs: the smooth functions are ~linear (or 1/2) there.
    cases.push_back({sig, FLT_TRUE_MIN, 0.5f});
    cases.push_back({th, -FLT_TRUE_MIN, -FLT_TRUE_MIN});

    // Each case runs at lane 0 and in the padded tail of a 19-element call (every lane position).
    for (const SpecialCase& c : cases) {
      for (std::size_t pos : {std::size_t{0}, std::size_t{16}, std::size_t{18}}) {
        std::vector<float> x(19, 0.25f);
        x[pos] = c.x;
        std::vector<float> y(19);
        activation(c.f, x.data(), y.data(), x.size());
        EXPECT_TRUE(same_value(y[pos], c.expected))
            << c.f.to_string() << "(" << c.x << ") = " << y[pos] << ", want " << c.expected << " (lane " << pos << ")";
      }
    }
  });
}

TEST(Activation, PolynomialOfEveryDegreeUpTo15) {
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> coeff(-1.0f, 1.0f);
  const std::vector<float> x = uniform(1000, -1.5f, 1.5f, 11);
  std::vector<float> y(x.size());
  for (std::size_t terms = 0; terms <= 16; ++terms) {
    std::vector<float> c(terms);
    for (float& v : c) v = coeff(rng);
    const Activation f = Activation::polynomial(c);
    activation(f, x.data(), y.data(), x.size());
    for (std::size_t i = 0; i < x.size(); ++i) {
      ASSERT_LE(std::fabs(y[i] - reference_activation(f, x[i])), activation_tolerance(f, x[i]) + 1e-30)
          << terms << " terms, x=" << x[i];
    }
  }
}

TEST(Activation, LeakyReluUsesAlpha) {
  const float x[] = {-4.0f, -1.0f, 0.0f, 3.0f};
  float y[4];
  activation(Activation::leaky_relu(0.25f), x, y, 4);
  EXPECT_EQ(y[0], -1.0f);
  EXPECT_EQ(y[1], -0.25f);
  EXPECT_EQ(y[2], 0.0f);
  EXPECT_EQ(y[3], 3.0f);
}

TEST(Activation, RejectsInvalidActivations) {
  float v = 0.0f;
  const Activation too_long = Activation::polynomial(std::vector<float>(17, 1.0f));
  Activation unknown;
  unknown.kind = static_cast<ActivationKind>(kActivationKindCount);
  for (const Activation& f : {too_long, unknown}) {
    try {
      activation(f, &v, &v, 1);
      ADD_FAILURE() << "no error for " << static_cast<int>(f.kind);
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
      EXPECT_NE(std::string(e.what()).find("activation"), std::string::npos) << e.what();
    }
    EXPECT_THROW(multiplex(f, &v, &v, 1, 1.0f, &v, 1), Error);
    EXPECT_THROW(output_gate(Activation::identity(), f, &v, &v, &v, 1), Error);
    EXPECT_THROW(output_gate(f, Activation::sigmoid(), &v, &v, &v, 1), Error);
  }
  EXPECT_NO_THROW(activation(Activation::polynomial(std::vector<float>(16, 1.0f)), &v, &v, 1));
}

// ---- multiplex ---------------------------------------------------------------------------------

// The kernel computes the argument s + λ·a in f32 (fused on FMA targets, two roundings otherwise): the
// reference uses the exact argument, and the tolerance adds |f'| times the argument's rounding.
double multiplex_tolerance(const Activation& f, float s, float a, float lambda) {
  const double arg = static_cast<double>(s) + static_cast<double>(lambda) * a;
  const double rounding = 2.0 * kUlpHalf * (std::fabs(arg) + std::fabs(static_cast<double>(lambda) * a));
  return activation_tolerance(f, arg) + reference_slope_bound(f, arg) * rounding;
}

TEST(Multiplex, EveryKindBothStridesAndLambdas) {
  on_every_target([] {
    for (const Activation& f : all_activations()) {
      for (std::size_t a_stride : {std::size_t{0}, std::size_t{1}}) {
        for (float lambda : {0.0f, 1.0f, -2.5f}) {
          for (std::size_t n : kSizes) {
            const std::vector<float> s = uniform(n, -6.0f, 6.0f, 100 + static_cast<unsigned>(n));
            const std::vector<float> a =
                uniform(std::max<std::size_t>(n, 1), -2.0f, 2.0f, 200 + static_cast<unsigned>(n));
            std::vector<float> y = with_guard(n);
            multiplex(f, s.data(), a.data(), a_stride, lambda, y.data(), n);
            for (std::size_t i = 0; i < n; ++i) {
              const float ai = a[i * a_stride];
              const double ref = reference_activation(f, static_cast<double>(s[i]) + static_cast<double>(lambda) * ai);
              ASSERT_LE(std::fabs(y[i] - ref), multiplex_tolerance(f, s[i], ai, lambda))
                  << f.to_string() << " a_stride=" << a_stride << " lambda=" << lambda << " n=" << n << " i=" << i;
            }
            expect_guard_intact(y, n, f.to_string() + " multiplex");
          }
        }
      }
    }
  });
}

TEST(Multiplex, InPlaceOnEitherInput) {
  const std::size_t n = 1003;
  const std::vector<float> s = uniform(n, -6.0f, 6.0f, 1);
  const std::vector<float> a = uniform(n, -6.0f, 6.0f, 2);
  for (const Activation& f : {Activation::gelu(), Activation::sigmoid(), Activation::relu()}) {
    std::vector<float> expected(n);
    multiplex(f, s.data(), a.data(), 1, 0.5f, expected.data(), n);
    std::vector<float> y = s;
    multiplex(f, y.data(), a.data(), 1, 0.5f, y.data(), n);
    for (std::size_t i = 0; i < n; ++i) ASSERT_TRUE(same_value(y[i], expected[i])) << "y == s, i=" << i;
    y = a;
    multiplex(f, s.data(), y.data(), 1, 0.5f, y.data(), n);
    for (std::size_t i = 0; i < n; ++i) ASSERT_TRUE(same_value(y[i], expected[i])) << "y == a, i=" << i;
  }
}

TEST(Multiplex, BroadcastSpecialValues) {
  on_every_target([] {
    const std::vector<float> s = {1.0f, -1.0f, 0.0f, kInf};
    std::vector<float> y(s.size());
    const float nan_attention = kNaN;
    multiplex(Activation::sigmoid(), s.data(), &nan_attention, 0, 1.0f, y.data(), s.size());
    for (float v : y) EXPECT_TRUE(std::isnan(v));
    const float huge_attention = -kInf;
    multiplex(Activation::silu(), s.data(), &huge_attention, 0, 2.0f, y.data(), 3);
    for (std::size_t i = 0; i < 3; ++i) EXPECT_EQ(y[i], 0.0f);
  });
}

TEST(Multiplex, RejectsStrideOtherThanZeroOrOne) {
  float v = 0.0f;
  try {
    multiplex(Activation::relu(), &v, &v, 2, 1.0f, &v, 1);
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
    EXPECT_NE(std::string(e.what()).find("multiplex"), std::string::npos) << e.what();
  }
  multiplex(Activation::relu(), nullptr, nullptr, 0, 1.0f, nullptr, 0);
}

// ---- output_gate -------------------------------------------------------------------------------

// |f(s1)·g(s2) - ref| bound: each factor's own error times the other factor, plus the product rounding.
double gate_tolerance(const Activation& f, const Activation& g, float s1, float s2) {
  const double fv = reference_activation(f, s1), gv = reference_activation(g, s2);
  const double ef = activation_tolerance(f, s1), eg = activation_tolerance(g, s2);
  return ef * (std::fabs(gv) + eg) + eg * std::fabs(fv) + 2.0 * kUlpHalf * std::fabs(fv * gv);
}

void check_gate(const Activation& f, const Activation& g, std::size_t n, unsigned seed) {
  const std::vector<float> s1 = uniform(n, -6.0f, 6.0f, seed);
  const std::vector<float> s2 = uniform(n, -6.0f, 6.0f, seed + 1);
  std::vector<float> y = with_guard(n);
  output_gate(f, g, s1.data(), s2.data(), y.data(), n);
  for (std::size_t i = 0; i < n; ++i) {
    const double ref = reference_activation(f, s1[i]) * reference_activation(g, s2[i]);
    ASSERT_LE(std::fabs(y[i] - ref), gate_tolerance(f, g, s1[i], s2[i]))
        << f.to_string() << "·" << g.to_string() << " n=" << n << " i=" << i << " s1=" << s1[i] << " s2=" << s2[i];
  }
  expect_guard_intact(y, n, f.to_string() + "·" + g.to_string());
}

// The gating pairs of real models, in both orders (O = f(S1)·g(S2)): GLU sigmoid·identity, SwiGLU
// silu·identity, GEGLU gelu·identity, ReGLU relu·identity, bilinear identity·identity, LSTM tanh·sigmoid.
TEST(OutputGate, ModelPairsInBothOrdersAtAwkwardSizes) {
  on_every_target([] {
    const Activation id = Activation::identity();
    const std::pair<Activation, Activation> pairs[] = {{Activation::sigmoid(), id},
                                                       {Activation::silu(), id},
                                                       {Activation::gelu(), id},
                                                       {Activation::gelu_tanh(), id},
                                                       {Activation::relu(), id},
                                                       {id, id},
                                                       {Activation::tanh(), Activation::sigmoid()}};
    for (const auto& [f, g] : pairs) {
      for (std::size_t n : kSizes) {
        check_gate(f, g, n, 5 + static_cast<unsigned>(n));
        check_gate(g, f, n, 9 + static_cast<unsigned>(n));
      }
    }
  });
}

TEST(OutputGate, EveryPairOfKinds) {
  for (const Activation& f : all_activations()) {
    for (const Activation& g : all_activations()) check_gate(f, g, 2500, 77);  // > one internal chunk
  }
}

TEST(OutputGate, InPlaceOnEitherInputFusedAndChunked) {
  on_every_target([] {
    const std::size_t n = 3001;
    const std::vector<float> s1 = uniform(n, -6.0f, 6.0f, 1);
    const std::vector<float> s2 = uniform(n, -6.0f, 6.0f, 2);
    const std::pair<Activation, Activation> pairs[] = {{Activation::identity(), Activation::sigmoid()},
                                                       {Activation::silu(), Activation::identity()},
                                                       {Activation::tanh(), Activation::sigmoid()}};
    for (const auto& [f, g] : pairs) {
      std::vector<float> expected(n);
      output_gate(f, g, s1.data(), s2.data(), expected.data(), n);
      std::vector<float> y = s1;
      output_gate(f, g, y.data(), s2.data(), y.data(), n);
      for (std::size_t i = 0; i < n; ++i) ASSERT_TRUE(same_value(y[i], expected[i])) << "y == s1, i=" << i;
      y = s2;
      output_gate(f, g, s1.data(), y.data(), y.data(), n);
      for (std::size_t i = 0; i < n; ++i) ASSERT_TRUE(same_value(y[i], expected[i])) << "y == s2, i=" << i;
    }
  });
}

TEST(OutputGate, SpecialValues) {
  on_every_target([] {
    const Activation id = Activation::identity(), sig = Activation::sigmoid();
    // GLU: s1·σ(s2).
    const float s1[] = {kNaN, 2.0f, kInf, 3.0f, 0.0f, -5.0f};
    const float s2[] = {1.0f, kNaN, 0.0f, -kInf, kInf, kInf};
    const float want[] = {kNaN, kNaN, kInf, 0.0f, 0.0f, -5.0f};
    float y[6];
    output_gate(id, sig, s1, s2, y, 6);
    for (int i = 0; i < 6; ++i) EXPECT_TRUE(same_value(y[i], want[i])) << i << ": " << y[i];
    // IEEE: inf·0 is NaN, also when the zero comes out of an activation.
    const float big[] = {kInf};
    const float neg[] = {-1.0f};
    output_gate(id, Activation::relu(), big, neg, y, 1);
    EXPECT_TRUE(std::isnan(y[0]));
    output_gate(Activation::tanh(), sig, nullptr, nullptr, nullptr, 0);
  });
}

}  // namespace
}  // namespace quarks::ops
