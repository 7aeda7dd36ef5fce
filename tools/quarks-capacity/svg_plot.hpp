// A line chart as a standalone SVG file (no plotting library needed): one series per block variant.
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace quarks::capacity {

struct Series {
  std::string label;
  std::vector<std::pair<double, double>> points;  // (x, y)
  bool dashed = false;
};

// The chart's SVG text: axes with ticks, the series as polylines with markers, and a legend.
std::string svg_line_chart(const std::string& title, const std::string& x_label, const std::string& y_label,
                           const std::vector<Series>& series);

}  // namespace quarks::capacity
