# sync_e2e_tests: end-to-end tests of calendar sync (R13-R21) against real
# processes: a graph-emulator child (Microsoft Graph) and a crmsyncd child.
# Included from tests/CMakeLists.txt. Each TEST_CASE starts its own
# emulator and node on port 0 in its own /tmp directory.
include(Catch)
file(GLOB sync_e2e_test_sources CONFIGURE_DEPENDS
  ${CMAKE_CURRENT_LIST_DIR}/sync_*_test.cpp)
add_executable(sync_e2e_tests
  ${CMAKE_CURRENT_LIST_DIR}/metrics_test.cpp
  ${CMAKE_CURRENT_LIST_DIR}/chart_history_test.cpp
  ${CMAKE_CURRENT_LIST_DIR}/../web/page_test.cpp
  ${sync_e2e_test_sources})
target_include_directories(sync_e2e_tests PRIVATE ${PROJECT_SOURCE_DIR})
target_link_libraries(sync_e2e_tests
  PRIVATE Catch2::Catch2WithMain crmsync_test_processes)
add_dependencies(sync_e2e_tests crmsyncd graph-emulator)
# The prefix lets `ctest -R sync` select exactly these tests.
catch_discover_tests(sync_e2e_tests EXTRA_ARGS --warn NoTests TEST_PREFIX "sync: " PROPERTIES TIMEOUT 180
  ${crmsync_recorded_test_properties})
