# mail_tests: the node's mailer (mail/mailer.hpp) against graph-emulator's
# service in process over real sockets, with a RocksDB outbox in a temporary
# directory and a real actor system. Included from tests/CMakeLists.txt.
# The emulator is seeded by graph_tests' fixture (tests/graph/fixture.hpp).
include(Catch)
add_executable(mail_tests
  ${CMAKE_CURRENT_LIST_DIR}/mailer_test.cpp
  ${CMAKE_CURRENT_LIST_DIR}/../graph/fixture.cpp)
target_include_directories(mail_tests PRIVATE ${PROJECT_SOURCE_DIR})
target_link_libraries(mail_tests
  PRIVATE crmsync_mail crmsync_graph crmsync_storage crmsync_test_processes
          Catch2::Catch2WithMain)
# The prefix lets `ctest -R "^mail:"` select exactly these tests.
catch_discover_tests(mail_tests EXTRA_ARGS --warn NoTests TEST_PREFIX "mail: "
  PROPERTIES TIMEOUT 60)
