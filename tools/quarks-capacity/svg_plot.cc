#include "tools/quarks-capacity/svg_plot.hpp"

#include <fmt/core.h>

#include <algorithm>
#include <cmath>

namespace quarks::capacity {
namespace {

std::string escape(const std::string& text) {
  std::string out;
  for (const char c : text) {
    if (c == '<')
      out += "&lt;";
    else if (c == '>')
      out += "&gt;";
    else if (c == '&')
      out += "&amp;";
    else
      out += c;
  }
  return out;
}

}  // namespace

std::string svg_line_chart(const std::string& title, const std::string& x_label, const std::string& y_label,
                           const std::vector<Series>& series) {
  constexpr double kWidth = 760, kHeight = 480, kLeft = 70, kRight = 250, kTop = 40, kBottom = 60;
  double x_max = 1, y_max = 1;
  for (const Series& s : series)
    for (const auto& [x, y] : s.points) {
      x_max = std::max(x_max, x);
      y_max = std::max(y_max, y);
    }
  y_max = std::ceil(y_max / 5) * 5;
  const double plot_w = kWidth - kLeft - kRight, plot_h = kHeight - kTop - kBottom;
  const auto px = [&](double x) { return kLeft + x / x_max * plot_w; };
  const auto py = [&](double y) { return kTop + plot_h - y / y_max * plot_h; };
  static const char* kColours[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                                   "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};
  std::string svg = fmt::format(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{}\" font-family=\"sans-serif\" "
      "font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
      "<text x=\"{}\" y=\"22\" font-size=\"15\">{}</text>\n",
      kWidth, kHeight, kLeft, escape(title));
  // Axes, ticks and labels.
  svg += fmt::format("<path d=\"M{} {} V{} H{}\" stroke=\"black\" fill=\"none\"/>\n", kLeft, kTop, kTop + plot_h,
                     kLeft + plot_w);
  for (int x = 0; x <= static_cast<int>(x_max); ++x)
    svg +=
        fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"middle\">{}</text>\n", px(x), kTop + plot_h + 18, x);
  for (int k = 0; k <= 5; ++k) {
    const double y = y_max * k / 5;
    svg += fmt::format(
        "<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"end\">{:g}</text>\n<path d=\"M{} {:.1f} H{}\" "
        "stroke=\"#ddd\"/>\n",
        kLeft - 6, py(y) + 4, y, kLeft, py(y), kLeft + plot_w);
  }
  svg += fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"middle\">{}</text>\n", kLeft + plot_w / 2,
                     kHeight - 15, escape(x_label));
  svg += fmt::format("<text transform=\"translate(18 {:.1f}) rotate(-90)\" text-anchor=\"middle\">{}</text>\n",
                     kTop + plot_h / 2, escape(y_label));
  // Series and legend.
  for (std::size_t i = 0; i < series.size(); ++i) {
    const Series& s = series[i];
    const char* colour = kColours[i % std::size(kColours)];
    std::string points;
    for (const auto& [x, y] : s.points) points += fmt::format("{:.1f},{:.1f} ", px(x), py(y));
    svg += fmt::format("<polyline class=\"series\" points=\"{}\" stroke=\"{}\" fill=\"none\" stroke-width=\"2\"{}/>\n",
                       points, colour, s.dashed ? " stroke-dasharray=\"6 4\"" : "");
    if (!s.dashed)
      for (const auto& [x, y] : s.points)
        svg += fmt::format("<circle cx=\"{:.1f}\" cy=\"{:.1f}\" r=\"3\" fill=\"{}\"/>\n", px(x), py(y), colour);
    const double ly = kTop + 10 + 18 * static_cast<double>(i);
    svg += fmt::format(
        "<path d=\"M{} {:.1f} h24\" stroke=\"{}\" stroke-width=\"2\"{}/>\n<text x=\"{}\" y=\"{:.1f}\">{}</text>\n",
        kWidth - kRight + 20, ly, colour, s.dashed ? " stroke-dasharray=\"6 4\"" : "", kWidth - kRight + 50, ly + 4,
        escape(s.label));
  }
  return svg + "</svg>\n";
}

}  // namespace quarks::capacity
