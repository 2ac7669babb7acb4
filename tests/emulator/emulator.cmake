# emulator_tests: graph-emulator's HTTP service (emulator/service.hpp) over
# real sockets. Included from tests/CMakeLists.txt. Each TEST_CASE runs its
# own service and HTTP server on 127.0.0.1 port 0 inside the test process,
# with an injected clock, and talks to it with crmsync::http::client.
include(Catch)
add_executable(emulator_tests ${CMAKE_CURRENT_LIST_DIR}/service_test.cpp)
target_include_directories(emulator_tests PRIVATE ${PROJECT_SOURCE_DIR})
target_link_libraries(emulator_tests
  PRIVATE crmsync_emulator crmsync_http_client crmsync_test_support
          simdjson::simdjson Catch2::Catch2WithMain)
# The prefix lets `ctest -R emulator` select exactly these tests.
catch_discover_tests(emulator_tests TEST_PREFIX "emulator: "
  PROPERTIES TIMEOUT 60)
