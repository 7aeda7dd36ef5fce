#!/usr/bin/env bash
# Installs the built quarks into a temporary prefix and builds + runs a consumer that uses
# find_package(quarks CONFIG REQUIRED) and quarks::quarks.
# Usage: install_test.sh BUILD_DIR SOURCE_DIR [CXX_FLAGS] — the flags of the quarks build (a sanitizer
# build's consumer must be built with the same sanitizer).
set -euo pipefail
build_dir=$1
source_dir=$2
cxx_flags=${3:-}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cmake --install "$build_dir" --prefix "$work/prefix" > "$work/install.log"
# The public headers must not expose oneDNN, Highway or TBB.
if grep -rlE 'dnnl|hwy/|tbb' "$work/prefix/include/quarks"; then
  echo "a public header includes an internal dependency" >&2
  exit 1
fi
cmake -S "$source_dir/tests/tools/consumer" -B "$work/build" -DCMAKE_PREFIX_PATH="$work/prefix" -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_CXX_FLAGS="$cxx_flags" > "$work/configure.log"
cmake --build "$work/build" > "$work/build.log"
"$work/build/consumer"
