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
# The installed tools (when built) must find the installed library.
for tool in quarks-bench quarks-run; do
  if [[ -e "$work/prefix/bin/$tool" ]]; then
    LD_LIBRARY_PATH="$(dirname "$(find "$work/prefix" -name 'libquarks.so*' | head -n 1)")" \
      "$work/prefix/bin/$tool" --help > /dev/null || { echo "installed $tool does not run" >&2; exit 1; }
  fi
done
cmake -S "$source_dir/tests/tools/consumer" -B "$work/build" -DCMAKE_PREFIX_PATH="$work/prefix" -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_CXX_FLAGS="$cxx_flags" > "$work/configure.log"
cmake --build "$work/build" > "$work/build.log"
"$work/build/consumer"
