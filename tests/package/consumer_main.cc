// The README's embedding example, built against the installed package (by CMake's find_package and
// by pkg-config with plain g++, tests/package/package_test.sh): a gated (GLU) unit, checked against
// its closed form, and the headers' version against the library's.
#include <cmath>
#include <cstdio>
#include <cstring>

#include <quarks/quarks.hpp>

int main() {
  quarks::GraphBuilder g;
  auto x = g.input("x", {"batch", 2});
  auto w = g.constant("w", quarks::Tensor::from_f32({2, 2}, {1, 0, 0, 1}));
  auto s1 = g.dense("value", x, w);
  auto s2 = g.dense("gate", x, w);
  g.output("y", g.output_gate("glu", s1, s2, quarks::Activation::identity(), quarks::Activation::sigmoid()));
  quarks::Model model = quarks::compile(g.build(), {.threads = 1});
  quarks::Session session(model);
  quarks::Tensor in = quarks::Tensor::from_f32({1, 2}, {2.0f, -1.0f});
  auto out = session.run({{"x", in}});
  const float* y = out.at("y").f32();
  const double want0 = 2.0 / (1.0 + std::exp(-2.0)), want1 = -1.0 / (1.0 + std::exp(1.0));
  const bool ok = std::fabs(y[0] - want0) < 1e-5 && std::fabs(y[1] - want1) < 1e-5;
  if (std::strcmp(quarks::version(), QUARKS_VERSION_STRING) != 0) {
    std::printf("library version %s but headers %s\n", quarks::version(), QUARKS_VERSION_STRING);
    return 1;
  }
  std::printf("quarks %s: y = [%g, %g] %s\n", quarks::version(), y[0], y[1], ok ? "ok" : "WRONG");
  return ok ? 0 : 1;
}
