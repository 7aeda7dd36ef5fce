#!/usr/bin/env bash
# Installs the built quarks into a temporary prefix and builds and runs two consumers against it: one
# with CMake's find_package(quarks CONFIG) and quarks::quarks, one with pkg-config and plain g++ (the
# C++20 flag must come from `pkg-config --cflags quarks`). Both set no C++ standard of their own.
# Usage: package_test.sh BUILD_DIR SOURCE_DIR [CXX_FLAGS] — the flags of the quarks build (a sanitizer
# build's consumers must be built with the same sanitizer).
set -euo pipefail
build_dir=$1
source_dir=$2
cxx_flags=${3:-}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
prefix=$work/prefix
cmake --install "$build_dir" --prefix "$prefix" > "$work/install.log"

# The public headers must not expose oneDNN, Highway or TBB.
if grep -rlE 'dnnl|hwy/|tbb' "$prefix/include/quarks"; then
  echo "a public header includes an internal dependency" >&2
  exit 1
fi
libdir=$(dirname "$(find "$prefix" -name 'libquarks.so*' -o -name 'libquarks.a' | head -n 1)")
# The installed tools (when built) must find the installed library.
for tool in quarks-bench quarks-run quarks-capacity; do
  if [[ -e "$prefix/bin/$tool" ]]; then
    LD_LIBRARY_PATH="$libdir" "$prefix/bin/$tool" --help > /dev/null || { echo "installed $tool does not run" >&2; exit 1; }
  fi
done

echo "== CMake consumer (find_package)"
cmake -S "$source_dir/tests/package/cmake_consumer" -B "$work/cmake" -DCMAKE_PREFIX_PATH="$prefix" \
  -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_FLAGS="$cxx_flags" > "$work/configure.log" ||
  { cat "$work/configure.log" >&2; exit 1; }
cmake --build "$work/cmake" > "$work/build.log" || { cat "$work/build.log" >&2; exit 1; }
"$work/cmake/consumer"

echo "== pkg-config consumer (g++ \$(pkg-config --cflags --libs quarks))"
export PKG_CONFIG_PATH="$libdir/pkgconfig"
pkg-config --exists --print-errors "quarks >= 0.1"
cflags=$(pkg-config --cflags quarks)
case " $cflags " in *" -std=c++20 "*) ;; *) echo "pkg-config --cflags quarks gives no -std=c++20: $cflags" >&2; exit 1 ;; esac
# shellcheck disable=SC2086  # the flags are words
g++ $cxx_flags $cflags "$source_dir/tests/package/consumer_main.cc" -o "$work/pc_consumer" $(pkg-config --libs quarks)
LD_LIBRARY_PATH="$libdir" "$work/pc_consumer"
