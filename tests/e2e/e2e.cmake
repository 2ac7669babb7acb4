# e2e_tests: end-to-end tests against real crmsyncd processes (real sockets,
# real RocksDB in temporary directories). Included from tests/CMakeLists.txt.
# Each TEST_CASE starts its own node on port 0 in its own /tmp directory;
# the Office 365 tests (office365_*_test.cpp) also start a graph-emulator.
include(Catch)
add_executable(e2e_tests
  ${CMAKE_CURRENT_LIST_DIR}/orgs_users_test.cpp
  ${CMAKE_CURRENT_LIST_DIR}/authorization_test.cpp
  ${CMAKE_CURRENT_LIST_DIR}/events_test.cpp
  ${CMAKE_CURRENT_LIST_DIR}/isolation_test.cpp
  ${CMAKE_CURRENT_LIST_DIR}/errors_test.cpp
  ${CMAKE_CURRENT_LIST_DIR}/robustness_test.cpp
  ${CMAKE_CURRENT_LIST_DIR}/persistence_test.cpp
  ${CMAKE_CURRENT_LIST_DIR}/admin_test.cpp
  ${CMAKE_CURRENT_LIST_DIR}/memory_test.cpp
  ${CMAKE_CURRENT_LIST_DIR}/office365_install_test.cpp
  ${CMAKE_CURRENT_LIST_DIR}/office365_invite_test.cpp
  ${CMAKE_CURRENT_LIST_DIR}/office365_join_test.cpp
  ${CMAKE_CURRENT_LIST_DIR}/office365_limits_test.cpp
  ${CMAKE_CURRENT_LIST_DIR}/office365_people_test.cpp
  ${CMAKE_CURRENT_LIST_DIR}/office365_pages_test.cpp
  ${CMAKE_CURRENT_LIST_DIR}/office365_cookie_test.cpp
  ${CMAKE_CURRENT_LIST_DIR}/error_paths_test.cpp
  ${CMAKE_CURRENT_LIST_DIR}/user_lifecycle_test.cpp
  ${CMAKE_CURRENT_LIST_DIR}/user_deletion_test.cpp
  ${CMAKE_CURRENT_LIST_DIR}/api_tokens_test.cpp
  ${CMAKE_CURRENT_LIST_DIR}/office365_resolve_test.cpp
  ${CMAKE_CURRENT_LIST_DIR}/password_setup_test.cpp
  ${CMAKE_CURRENT_LIST_DIR}/backup_test.cpp
  ${CMAKE_CURRENT_LIST_DIR}/threads_test.cpp
  ${CMAKE_CURRENT_LIST_DIR}/office365_forget_test.cpp

  ${CMAKE_CURRENT_LIST_DIR}/request_ids_test.cpp
  ${CMAKE_CURRENT_LIST_DIR}/doctor_test.cpp)
target_include_directories(e2e_tests PRIVATE ${PROJECT_SOURCE_DIR})
# crmsync_storage to count rows in a stopped node's database (limits tests).
target_link_libraries(e2e_tests
  PRIVATE Catch2::Catch2WithMain crmsync_test_processes
          crmsync_storage)
add_dependencies(e2e_tests crmsyncd graph-emulator crmsyncctl)
# The prefix lets `ctest -R e2e` select exactly these tests.
catch_discover_tests(e2e_tests EXTRA_ARGS --warn NoTests TEST_PREFIX "e2e: " PROPERTIES TIMEOUT 120
  ${crmsync_recorded_test_properties})

# console_e2e_tests: crmsyncctl's console driven by a script on stdin and
# on a pseudo terminal (forkpty), against a real crmsyncd and graph-emulator
# (the sync_env fixture).
add_executable(console_e2e_tests
  ${CMAKE_CURRENT_LIST_DIR}/console_test.cpp)
target_include_directories(console_e2e_tests PRIVATE ${PROJECT_SOURCE_DIR})
# forkpty is in libutil (glibc 2.34+: libc; -lutil still links).
target_link_libraries(console_e2e_tests
  PRIVATE Catch2::Catch2WithMain crmsync_test_processes
          Threads::Threads util)
add_dependencies(console_e2e_tests crmsyncd graph-emulator crmsyncctl)
catch_discover_tests(console_e2e_tests EXTRA_ARGS --warn NoTests TEST_PREFIX "e2e: "
  PROPERTIES TIMEOUT 180 ${crmsync_recorded_test_properties})
