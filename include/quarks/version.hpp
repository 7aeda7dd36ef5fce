// The version of the quarks headers. The top-level CMakeLists.txt reads it from here (the one place it
// is written), so the library, its CMake package and quarks.pc carry the same version.
#pragma once

#define QUARKS_VERSION_MAJOR 0
#define QUARKS_VERSION_MINOR 1
#define QUARKS_VERSION_PATCH 0

#define QUARKS_DETAIL_STRINGIFY_TEXT(x) #x
#define QUARKS_DETAIL_STRINGIFY(x) QUARKS_DETAIL_STRINGIFY_TEXT(x)
/// "MAJOR.MINOR.PATCH" of these headers; quarks::version() returns the library's, which must match.
#define QUARKS_VERSION_STRING                   \
  QUARKS_DETAIL_STRINGIFY(QUARKS_VERSION_MAJOR) \
  "." QUARKS_DETAIL_STRINGIFY(QUARKS_VERSION_MINOR) "." QUARKS_DETAIL_STRINGIFY(QUARKS_VERSION_PATCH)
/// One number that grows with every release: MAJOR·10000 + MINOR·100 + PATCH.
#define QUARKS_VERSION (QUARKS_VERSION_MAJOR * 10000 + QUARKS_VERSION_MINOR * 100 + QUARKS_VERSION_PATCH)
