# The house rules for #include, run by ctest (house_includes, label house) as
#   cmake -DSOURCE_DIR=<repo> -P check_includes.cmake
# Fails, naming each file, line and include, when
#   - a file under ops/ includes a header of engine/ (kernels and schemas see the engine only through
#     the op contract in ops/contract/, never the runtime that schedules them);
#   - a public header (include/quarks/) includes anything but another public header or a header of
#     the C++ standard library (no oneDNN, Highway, TBB, protobuf, nor an internal header).
cmake_minimum_required(VERSION 3.25)
if(NOT SOURCE_DIR)
  message(FATAL_ERROR "usage: cmake -DSOURCE_DIR=<quarks checkout> -P check_includes.cmake")
endif()

set(std_headers
  algorithm any array atomic barrier bit bitset cassert cctype cerrno cfloat charconv chrono cinttypes climits
  cmath compare complex concepts condition_variable coroutine csignal cstdarg cstddef cstdint cstdio cstdlib
  cstring ctime cuchar cwchar cwctype deque exception execution expected filesystem format forward_list
  fstream functional future initializer_list iomanip ios iosfwd iostream istream iterator latch limits list
  locale map memory memory_resource mutex new numbers numeric optional ostream queue random ranges ratio regex
  scoped_allocator semaphore set shared_mutex source_location span sstream stack stdexcept stop_token
  streambuf string string_view syncstream system_error thread tuple type_traits typeindex typeinfo
  unordered_map unordered_set utility valarray variant vector version)

set(violations "")

# include_lines(FILE OUT): the #include lines of FILE as "line: text" entries.
function(include_lines file out)
  file(STRINGS "${file}" lines)
  set(found "")
  set(n 0)
  foreach(line IN LISTS lines)
    math(EXPR n "${n} + 1")
    if(line MATCHES "^[ \t]*#[ \t]*include[ \t]*([<\"][^>\"]+[>\"])")
      list(APPEND found "${n}|${CMAKE_MATCH_1}")
    endif()
  endforeach()
  set(${out} "${found}" PARENT_SCOPE)
endfunction()

file(GLOB_RECURSE op_files RELATIVE "${SOURCE_DIR}" "${SOURCE_DIR}/ops/*.cc" "${SOURCE_DIR}/ops/*.hpp"
     "${SOURCE_DIR}/ops/*.h")
foreach(f IN LISTS op_files)
  include_lines("${SOURCE_DIR}/${f}" incs)
  foreach(entry IN LISTS incs)
    string(REPLACE "|" ";" parts "${entry}")
    list(GET parts 0 line)
    list(GET parts 1 inc)
    if(inc MATCHES "^[<\"]engine/")
      list(APPEND violations "${f}:${line}: includes ${inc}: ops/ may include ops/contract/, not engine/")
    endif()
  endforeach()
endforeach()

file(GLOB_RECURSE public_headers RELATIVE "${SOURCE_DIR}" "${SOURCE_DIR}/include/*")
foreach(f IN LISTS public_headers)
  include_lines("${SOURCE_DIR}/${f}" incs)
  foreach(entry IN LISTS incs)
    string(REPLACE "|" ";" parts "${entry}")
    list(GET parts 0 line)
    list(GET parts 1 inc)
    string(REGEX REPLACE "^[<\"](.*)[>\"]$" "\\1" name "${inc}")
    if(name MATCHES "^quarks/")
      if(NOT EXISTS "${SOURCE_DIR}/include/${name}")
        list(APPEND violations "${f}:${line}: includes ${inc}, which is not a header in include/")
      endif()
    elseif(NOT inc MATCHES "^<" OR NOT name IN_LIST std_headers)
      list(APPEND violations
           "${f}:${line}: includes ${inc}: a public header may include only include/quarks/ and the C++ standard library")
    endif()
  endforeach()
endforeach()

list(LENGTH op_files n_ops)
list(LENGTH public_headers n_public)
if(violations)
  list(JOIN violations "\n" text)
  message(FATAL_ERROR "house rules broken:\n${text}")
endif()
message(STATUS "house rules hold: ${n_ops} files in ops/, ${n_public} public headers")
