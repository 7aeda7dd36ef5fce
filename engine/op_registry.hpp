// The registry: one OpSchema per OpKind.
#pragma once

#include "ops/contract/op_schema.hpp"

namespace quarks::detail {

const OpSchema& schema_of(OpKind op);

}  // namespace quarks::detail
