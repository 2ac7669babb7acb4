# emulator_tests: graph-emulator's HTTP service (emulator/service.hpp) over
# real sockets. Included from tests/CMakeLists.txt. Every test case gets the
# suite's one emulator fixture (tests/support/emulator.hpp) in process:
# one shared service and HTTP server on 127.0.0.1 port 0 per configuration,
# reset with its injected clock for every test case (harness.hpp).
include(Catch)
add_executable(emulator_tests
  ${CMAKE_CURRENT_LIST_DIR}/harness.cpp
  ${CMAKE_CURRENT_LIST_DIR}/service_test.cpp
  ${CMAKE_CURRENT_LIST_DIR}/identity_test.cpp
  ${CMAKE_CURRENT_LIST_DIR}/batch_test.cpp
  ${CMAKE_CURRENT_LIST_DIR}/throttling_test.cpp
  ${CMAKE_CURRENT_LIST_DIR}/zones_faults_test.cpp
  ${CMAKE_CURRENT_LIST_DIR}/recurrence_test.cpp
  ${CMAKE_CURRENT_LIST_DIR}/calendar_view_test.cpp
  ${CMAKE_CURRENT_LIST_DIR}/delta_test.cpp
  ${CMAKE_CURRENT_LIST_DIR}/subscriptions_test.cpp
  ${CMAKE_CURRENT_LIST_DIR}/event_fields_test.cpp)
target_include_directories(emulator_tests PRIVATE ${PROJECT_SOURCE_DIR})
# OpenSSL: identity tests verify the id_token's RS256 signature themselves.
target_link_libraries(emulator_tests
  PRIVATE crmsync_test_processes simdjson::simdjson OpenSSL::Crypto
          Catch2::Catch2WithMain)
# The prefix lets `ctest -R emulator` select exactly these tests.
catch_discover_tests(emulator_tests EXTRA_ARGS --warn NoTests TEST_PREFIX "emulator: "
  PROPERTIES TIMEOUT 60)
