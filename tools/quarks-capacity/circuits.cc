#include "tools/quarks-capacity/circuits.hpp"

#include <algorithm>
#include <cmath>
#include <functional>
#include <random>

#include "quarks/quarks.hpp"

namespace quarks::capacity {
namespace {

// Builds graphs from dense layers over an input [P, k], counting depth, units and parameters.
class Net {
 public:
  Net(const std::string& model, int inputs) : x_(g_.input("x", {Dim("points"), inputs})), width_(inputs) {
    version_.model = model;
  }
  // y = f(v W + b), W [width, m] given column by column (cols[j] = weights of unit j).
  Value dense(Value v, int width, const std::vector<std::vector<float>>& cols, const std::vector<float>& bias,
              const Activation& f) {
    const int m = static_cast<int>(cols.size());
    std::vector<float> w(static_cast<std::size_t>(width) * m);
    for (int j = 0; j < m; ++j)
      for (int i = 0; i < width; ++i) w[static_cast<std::size_t>(i) * m + j] = cols[j][i];
    const std::string id = std::to_string(layer_++);
    const Value wc = g_.constant("w" + id, Tensor::from_f32({width, m}, w));
    const Value bc = g_.constant("b" + id, Tensor::from_f32({m}, bias));
    version_.parameters += static_cast<std::int64_t>(width) * m + m;
    for (const float v : w) version_.nonzero += v != 0.0f;
    for (const float v : bias) version_.nonzero += v != 0.0f;
    return g_.dense("dense" + id, v, wc, bc, f);
  }
  GraphBuilder& graph() { return g_; }
  Value x() const { return x_; }
  int width() const { return width_; }
  CircuitVersion& version() { return version_; }

  // Runs the graph on the rows of `points` and compares output y [P, 1] with `reference`.
  void check(Value y, const std::vector<std::vector<float>>& points,
             const std::function<double(const std::vector<float>&)>& reference) {
    g_.output("y", y);
    const Model model = compile(g_.build());
    std::vector<float> data;
    for (const auto& p : points) data.insert(data.end(), p.begin(), p.end());
    const Tensor in = Tensor::from_f32({static_cast<std::int64_t>(points.size()), width_}, data);
    const Tensor out = Session(model).run({{"x", in}}).at("y");
    version_.points = points.size();
    for (std::size_t r = 0; r < points.size(); ++r)
      version_.max_error = std::max(version_.max_error, std::abs(out.f32()[r] - reference(points[r])));
  }

 private:
  GraphBuilder g_;
  Value x_;
  int width_;
  int layer_ = 0;
  CircuitVersion version_;
};

std::vector<float> unit_vector(int width, int i, float value = 1.0f) {
  std::vector<float> v(static_cast<std::size_t>(width), 0.0f);
  v[static_cast<std::size_t>(i)] = value;
  return v;
}

std::vector<std::vector<float>> cube(int n) {
  std::vector<std::vector<float>> points;
  for (std::uint32_t p = 0; p < (1u << n); ++p) {
    std::vector<float> x;
    for (int i = 0; i < n; ++i) x.push_back((p >> i & 1u) ? 1.0f : -1.0f);
    points.push_back(x);
  }
  return points;
}

// Output gating of two selected coordinates: f(v_a) g(v_b), one gated unit per pair (depth 1).
Value gated_pairs(Net& net, Value v, int width, const std::vector<std::pair<int, int>>& pairs, const Activation& f,
                  std::vector<float> bias2 = {}) {
  std::vector<std::vector<float>> c1, c2;
  for (const auto& [a, b] : pairs) {
    c1.push_back(unit_vector(width, a));
    c2.push_back(b < 0 ? std::vector<float>(static_cast<std::size_t>(width), 0.0f) : unit_vector(width, b));
  }
  if (bias2.empty()) bias2.assign(pairs.size(), 0.0f);
  const Value s1 = net.dense(v, width, c1, std::vector<float>(pairs.size(), 0.0f), Activation::identity());
  const Value s2 = net.dense(v, width, c2, bias2, Activation::identity());
  net.version().units += static_cast<int>(pairs.size());
  return net.graph().output_gate("gate" + std::to_string(net.version().units), s1, s2, f, f);
}

// ReLU units relu(c.v - t_k) for the knots of the square interpolation of u = c.v on [-2, 2], and their
// output weights: g(u) = t_0^2 + s_0 relu(u - t_0) + sum_k (s_k - s_{k-1}) relu(u - t_k), s_k = t_k + t_{k+1}.
void square_units(const std::vector<float>& c, int segments, double scale, std::vector<std::vector<float>>& cols,
                  std::vector<float>& bias, std::vector<float>& out_weights, double& out_bias) {
  const double h = 4.0 / segments;
  for (int k = 0; k < segments; ++k) {
    const double t = -2.0 + k * h, slope = 2 * t + h, prev = k == 0 ? 0.0 : 2 * (t - h) + h;
    cols.push_back(c);
    bias.push_back(static_cast<float>(-t));
    out_weights.push_back(static_cast<float>(scale * (slope - prev)));
  }
  out_bias += scale * 4.0;  // t_0^2
}

}  // namespace

std::vector<Circuit> build_and_check_circuits(int n, int segments) {
  std::vector<Circuit> out;
  // XOR(x1, x2) = -x1 x2: +1 where the inputs differ.
  {
    Circuit c{"xor", "2 inputs in {-1,1}", {}, {}};
    Net s("standard", 2);
    const Value h = s.dense(s.x(), 2, {{1, -1}, {-1, 1}}, {-1, -1}, Activation::sign());
    const Value y = s.dense(h, 2, {{1, 1}}, {1}, Activation::sign());
    s.version().depth = 2;
    s.version().units = 3;
    s.check(y, cube(2), [](const std::vector<float>& x) { return -x[0] * x[1]; });
    Net g("gating", 2);
    // sign(x1) sign(-x2)
    std::vector<std::vector<float>> c1{{1, 0}}, c2{{0, -1}};
    const Value s1 = g.dense(g.x(), 2, c1, {0}, Activation::identity());
    const Value s2 = g.dense(g.x(), 2, c2, {0}, Activation::identity());
    g.version().depth = 1;
    g.version().units = 1;
    g.check(g.graph().output_gate("gate", s1, s2, Activation::sign(), Activation::sign()), cube(2),
            [](const std::vector<float>& x) { return -x[0] * x[1]; });
    c.standard = s.version();
    c.gating = g.version();
    out.push_back(c);
  }
  // Parity prod x_i. Standard: h_k = [m >= k] (m = inputs at +1), k = 1..n, then a sign unit.
  {
    Circuit c{"parity", std::to_string(n) + " inputs in {-1,1}", {}, {}};
    const auto reference = [](const std::vector<float>& x) {
      double p = 1;
      for (const float v : x) p *= v;
      return p;
    };
    Net s("standard", n);
    std::vector<std::vector<float>> cols;
    std::vector<float> bias, w2;
    double b2 = (n % 2 == 0) ? 1.0 : -1.0;  // alpha_0 = (-1)^n
    for (int k = 1; k <= n; ++k) {
      cols.emplace_back(static_cast<std::size_t>(n), 1.0f);
      bias.push_back(static_cast<float>(n + 1 - 2 * k));
      const double alpha = ((n - k) % 2 == 0) ? 2.0 : -2.0;
      w2.push_back(static_cast<float>(alpha / 2));
      b2 += alpha / 2;
    }
    const Value h = s.dense(s.x(), n, cols, bias, Activation::sign());
    const Value y = s.dense(h, n, {w2}, {static_cast<float>(b2)}, Activation::sign());
    s.version().depth = 2;
    s.version().units = n + 1;
    s.check(y, cube(n), reference);
    // Gating: a tree of gated units sign(v_a) sign(v_b); an odd one out is gated by sign(+1).
    Net g("gating", n);
    Value v = g.x();
    int width = n;
    if (n == 1) {
      v = gated_pairs(g, v, 1, {{0, -1}}, Activation::sign(), {1.0f});
      g.version().depth = 1;
    }
    while (width > 1) {
      std::vector<std::pair<int, int>> pairs;
      std::vector<float> bias2;
      for (int i = 0; i < width; i += 2) {
        pairs.emplace_back(i, i + 1 < width ? i + 1 : -1);
        bias2.push_back(i + 1 < width ? 0.0f : 1.0f);
      }
      v = gated_pairs(g, v, width, pairs, Activation::sign(), bias2);
      width = static_cast<int>(pairs.size());
      ++g.version().depth;
    }
    g.check(v, cube(n), reference);
    c.standard = s.version();
    c.gating = g.version();
    out.push_back(c);
  }
  // Products of reals: a b exactly by one gated unit, or ((a+b)^2 - (a-b)^2)/4 by ReLU interpolation.
  // Interpolating u^2 with step h errs by at most h^2/4, so a product by at most h^2/8.
  const double h = 4.0 / segments, bound = h * h / 8 + 1e-5;
  for (const bool dot : {false, true}) {
    const int pairs = dot ? n : 1, width = 2 * pairs;
    Circuit c{dot ? "dot product" : "product of two reals",
              dot ? std::to_string(n) + " + " + std::to_string(n) + " reals in [-1,1]" : "2 reals in [-1,1]",
              {},
              {}};
    std::vector<std::vector<float>> points;
    if (!dot) {
      for (int i = 0; i <= 100; ++i)
        for (int j = 0; j <= 100; ++j) points.push_back({-1.0f + i / 50.0f, -1.0f + j / 50.0f});
    } else {
      std::mt19937 rng(1234);
      std::uniform_real_distribution<float> u(-1.0f, 1.0f);
      for (int r = 0; r < 4096; ++r) {
        std::vector<float> p;
        for (int i = 0; i < width; ++i) p.push_back(u(rng));
        points.push_back(p);
      }
    }
    const auto reference = [pairs](const std::vector<float>& x) {
      double sum = 0;
      for (int i = 0; i < pairs; ++i) sum += static_cast<double>(x[i]) * x[pairs + i];
      return sum;
    };
    Net s("standard", width);
    std::vector<std::vector<float>> cols;
    std::vector<float> bias, w2;
    double b2 = 0;
    for (int i = 0; i < pairs; ++i) {
      std::vector<float> plus(static_cast<std::size_t>(width), 0.0f), minus = plus;
      plus[i] = plus[pairs + i] = 1;
      minus[i] = 1;
      minus[pairs + i] = -1;
      square_units(plus, segments, 0.25, cols, bias, w2, b2);
      square_units(minus, segments, -0.25, cols, bias, w2, b2);
    }
    const Value hidden = s.dense(s.x(), width, cols, bias, Activation::relu());
    const Value y =
        s.dense(hidden, static_cast<int>(cols.size()), {w2}, {static_cast<float>(b2)}, Activation::identity());
    s.version().depth = 2;
    s.version().units = static_cast<int>(cols.size()) + 1;
    s.version().tolerance = pairs * bound;
    s.check(y, points, reference);
    Net g("gating", width);
    std::vector<std::pair<int, int>> sel;
    for (int i = 0; i < pairs; ++i) sel.emplace_back(i, pairs + i);
    Value v = gated_pairs(g, g.x(), width, sel, Activation::identity());
    g.version().depth = 1;
    if (dot) {
      v = g.dense(v, pairs, {std::vector<float>(static_cast<std::size_t>(pairs), 1.0f)}, {0}, Activation::identity());
      ++g.version().units;
      g.version().depth = 2;
    }
    g.version().tolerance = 1e-5 * pairs;  // f32 rounding
    g.check(v, points, reference);
    c.standard = s.version();
    c.gating = g.version();
    out.push_back(c);
  }
  return out;
}

}  // namespace quarks::capacity
