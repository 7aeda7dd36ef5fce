// quarks — umbrella header: everything a service needs to build, compile and run models.
//
// quarks is a CPU inference engine built around the fundamental building blocks of attention:
// multiplexing (additive activation attention), output gating and synaptic gating. See README.md.
#pragma once

#include "quarks/activation.hpp"
#include "quarks/attention_blocks.hpp"
#include "quarks/decoder_block.hpp"
#include "quarks/error.hpp"
#include "quarks/graph.hpp"
#include "quarks/language_model.hpp"
#include "quarks/model.hpp"
#include "quarks/tensor.hpp"
#include "quarks/version.hpp"

namespace quarks {
/// Version of the library linked in, "MAJOR.MINOR.PATCH"; QUARKS_VERSION_STRING is the headers'.
const char* version() noexcept;
}  // namespace quarks
