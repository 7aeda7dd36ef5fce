#!/usr/bin/env bash
# Installs the Debian 12 packages quarks builds, tests and benchmarks with. Idempotent: a second run
# installs nothing new. Needs root (or sudo) and Debian's package archive.
set -euo pipefail

packages=(
  cmake ninja-build g++
  libdnnl-dev ocl-icd-opencl-dev    # oneDNN; Debian's oneDNN CMake config requires OpenCL headers
  libhwy-dev                        # Google Highway (SIMD kernels)
  libtbb-dev                        # oneTBB (threads)
  libglpk-dev                       # GLPK: LP feasibility in tools/capacity (quarks-capacity)
  libgtest-dev libgmock-dev         # tests
  libbenchmark-dev                  # microbenchmarks
  libcli11-dev                      # command-line parsing in tools/
  nlohmann-json3-dev                # JSON output in tools/
  libfmt-dev                        # formatting
  pkgconf                           # pkg-config: the installed-package test builds a consumer with quarks.pc
  libonnx-dev libprotobuf-dev       # ONNX import (onnx_proto: the ONNX protobuf classes)
  libonnx-testdata                  # ONNX's node tests, run by tests/onnx (label onnx-conformance)
  clang-14 libclang-rt-14-dev libomp-14-dev  # the fuzz preset: libFuzzer targets of tests/fuzz
)

sudo_cmd=()
if [ "$(id -u)" != 0 ]; then sudo_cmd=(sudo); fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get -o DPkg::Lock::Timeout=300 update -qq
"${sudo_cmd[@]}" apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends "${missing[@]}"
