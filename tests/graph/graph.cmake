# graph_tests: the Graph client (graph/client.hpp) against graph-emulator's
# service over real sockets. Included from tests/CMakeLists.txt. Each test
# case starts its own in-process emulator (the suite's one fixture,
# tests/support/emulator.hpp, seeded by fixture.hpp) on 127.0.0.1 port 0,
# with an HTTPS listener and a throwaway CA (openssl CLI) when it needs one.
include(Catch)
add_executable(graph_tests
  ${CMAKE_CURRENT_LIST_DIR}/fixture.cpp
  ${CMAKE_CURRENT_LIST_DIR}/async_client_test.cpp
  ${CMAKE_CURRENT_LIST_DIR}/async_graph_test.cpp
  ${CMAKE_CURRENT_LIST_DIR}/check_test.cpp
  ${CMAKE_CURRENT_LIST_DIR}/client_test.cpp
  ${CMAKE_CURRENT_LIST_DIR}/identity_test.cpp
  ${CMAKE_CURRENT_LIST_DIR}/tls_test.cpp
  ${CMAKE_CURRENT_LIST_DIR}/wire_test.cpp)
target_include_directories(graph_tests PRIVATE ${PROJECT_SOURCE_DIR})
target_link_libraries(graph_tests
  PRIVATE crmsync_graph crmsync_sync crmsync_test_processes simdjson::simdjson
          Catch2::Catch2WithMain)
# The prefix lets `ctest -R "graph:"` select exactly these tests.
catch_discover_tests(graph_tests EXTRA_ARGS --warn NoTests TEST_PREFIX "graph: "
  PROPERTIES TIMEOUT 120)
