# api_tests: the API's description against the API (t16-openapi). The
# route table comes from a real http::api object (its constructor installs
# every route), the document from the bytes embedded in the binary.
# `ctest -R openapi` selects these with the lint (tests/openapi).
add_executable(api_tests ${CMAKE_CURRENT_LIST_DIR}/openapi_test.cpp
  ${CMAKE_CURRENT_LIST_DIR}/history_test.cpp)
target_include_directories(api_tests PRIVATE ${PROJECT_SOURCE_DIR})
target_link_libraries(api_tests PRIVATE crmsync_api crmsync_storage
  crmsync_test_support simdjson::simdjson Catch2::Catch2WithMain)
catch_discover_tests(api_tests EXTRA_ARGS --warn NoTests TEST_PREFIX "api: " PROPERTIES TIMEOUT 60
  LABELS openapi)
