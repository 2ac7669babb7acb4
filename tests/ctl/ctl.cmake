# ctl_tests: unit tests for crmsyncctl's table, format and render helpers.
# Included from tests/CMakeLists.txt; compiles the helper sources from bin/ctl
# directly, so it needs neither the HTTP client nor a running node.
include(Catch)
set(CRMSYNC_CTL_DIR ${CMAKE_CURRENT_LIST_DIR}/../../bin)
add_executable(ctl_tests
  ${CMAKE_CURRENT_LIST_DIR}/table_test.cpp
  ${CMAKE_CURRENT_LIST_DIR}/console_render_test.cpp
  ${CRMSYNC_CTL_DIR}/ctl/completion.cpp
  ${CRMSYNC_CTL_DIR}/ctl/format.cpp
  ${CRMSYNC_CTL_DIR}/ctl/render.cpp
  ${CRMSYNC_CTL_DIR}/ctl/table.cpp)
target_include_directories(ctl_tests PRIVATE ${CRMSYNC_CTL_DIR})
target_link_libraries(ctl_tests
  PRIVATE Catch2::Catch2WithMain simdjson::simdjson)
catch_discover_tests(ctl_tests EXTRA_ARGS --warn NoTests)
