# foundry_test(NAME name SOURCES a.cpp ... LIBS lib ... LABEL unit|integration|e2e)
# Builds one GoogleTest binary and registers its tests with ctest under LABEL.
# Tests that need root or a missing tool call GTEST_SKIP() with the reason, and
# ctest reports them as skipped (SKIP_REGULAR_EXPRESSION below).
find_package(GTest REQUIRED)
include(GoogleTest)

function(foundry_test)
  cmake_parse_arguments(T "" "NAME;LABEL;TIMEOUT" "SOURCES;LIBS" ${ARGN})
  if(NOT T_LABEL)
    set(T_LABEL unit)
  endif()
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 300)
  endif()
  add_executable(${T_NAME} ${T_SOURCES})
  target_link_libraries(${T_NAME} PRIVATE ${T_LIBS} GTest::gtest GTest::gmock GTest::gtest_main)
  target_compile_definitions(${T_NAME} PRIVATE
    FOUNDRY_SOURCE_DIR="${PROJECT_SOURCE_DIR}"
    FOUNDRY_BINARY_DIR="${PROJECT_BINARY_DIR}")
  # End-to-end tests boot guests under emulation: two at once on 2 cores
  # would starve each other past their timeouts, so they run alone.
  set(serial FALSE)
  if(T_LABEL STREQUAL "e2e")
    set(serial TRUE)
  endif()
  gtest_discover_tests(${T_NAME}
    PROPERTIES LABELS ${T_LABEL} TIMEOUT ${T_TIMEOUT} RUN_SERIAL ${serial}
               SKIP_REGULAR_EXPRESSION "\\[  SKIPPED \\]"
    DISCOVERY_TIMEOUT 60)
endfunction()
