// The libFuzzer entry point of a fuzz target: runs a body of fuzz_bodies.hpp on the input and aborts
// (a finding) if an exception escapes it. The bodies catch quarks::Error themselves, so what escapes is
// another exception type (std::bad_alloc, std::out_of_range, ...) thrown inside quarks.
// QUARKS_FUZZ_VERBOSE=1 prints the graph of each input, 2 also every quarks::Error.
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <span>
#include <typeinfo>

#include "fuzz/fuzz_bodies.hpp"

namespace quarks::fuzz {

inline int verbosity() {
  static const int v = [] {
    const char* s = std::getenv("QUARKS_FUZZ_VERBOSE");
    return s ? std::atoi(s) : 0;
  }();
  return v;
}

template <class Body>
int run_target(const std::uint8_t* data, std::size_t size, Body body) {
  try {
    body(std::as_bytes(std::span(data, size)));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "fuzz target: an exception escaped the body: %s: %s\n", typeid(e).name(), e.what());
    std::abort();
  } catch (...) {
    std::fprintf(stderr, "fuzz target: a non-std exception escaped\n");
    std::abort();
  }
  return 0;
}

}  // namespace quarks::fuzz

#define QUARKS_FUZZ_TARGET(body_call)                                                                 \
  extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {                 \
    return quarks::fuzz::run_target(data, size, [](std::span<const std::byte> bytes) { body_call; }); \
  }
