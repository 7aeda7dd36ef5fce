#include "tools/bench/model_flops.hpp"

namespace quarks::bench {

double product_flops(const Session& session) {
  double total = 0;
  for (const PlanStep& step : session.plan_steps()) total += step.flops;
  return total;
}

}  // namespace quarks::bench
