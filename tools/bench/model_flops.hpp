// Work of a Session's plan's products, for quarks-bench --model's GFLOP/s.
#pragma once

#include "quarks/model.hpp"

namespace quarks::bench {

/// Floating-point operations of one run of the plan `session` last ran: the sum of its
/// Session::plan_steps() flops (2 per multiply-add; dense, gated_dense, synaptic_gate, matmul and
/// attention products after fusion; elementwise work, norms and softmax are not counted). 0 before the
/// first run.
double product_flops(const Session& session);

}  // namespace quarks::bench
