// libFuzzer target: GraphBuilder call sequences decoded from the bytes, built, compiled and run
// (encoding: graph_build_body.cc). Seeds: corpus/graph_build.
#include "fuzz/fuzz_target.hpp"

QUARKS_FUZZ_TARGET(quarks::fuzz::fuzz_graph_build(bytes, nullptr, quarks::fuzz::verbosity()))
