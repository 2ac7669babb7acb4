# The OpenAPI document (api/openapi/openapi.json) with tools from npm,
# pinned in package-lock.json (run.sh installs them with `npm ci`):
# Redocly's lint, and a typed client (openapi-typescript + openapi-fetch,
# compiled with tsc) that drives a flow against a real crmsyncd and
# graph-emulator (Office 365 included) while ajv validates every answer
# against the document, and the check of the end-to-end suites' answers
# (with a test of the check itself). Included from
# tests/CMakeLists.txt; `ctest -L openapi` selects these (not the check of
# the suites' answers, which runs after them) and api_tests' route-table
# test.
add_test(NAME "openapi: the document lints clean (redocly)"
  COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/run.sh lint)
set_tests_properties("openapi: the document lints clean (redocly)"
  PROPERTIES TIMEOUT 300 LABELS openapi)
add_test(NAME "openapi: a typed client drives crmsyncd, answers validated"
  COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/run.sh flow $<TARGET_FILE:crmsyncd>
          $<TARGET_FILE:graph-emulator>)
# Both tests install into tests/openapi/node_modules: never at once.
set_tests_properties("openapi: a typed client drives crmsyncd, answers validated"
  PROPERTIES TIMEOUT 300 LABELS openapi
  RESOURCE_LOCK crmsync_openapi_node_modules)
set_tests_properties("openapi: the document lints clean (redocly)"
  PROPERTIES RESOURCE_LOCK crmsync_openapi_node_modules)
add_test(NAME "openapi: the answer check tells right answers from wrong ones"
  COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/run.sh answer-check)
set_tests_properties(
  "openapi: the answer check tells right answers from wrong ones"
  PROPERTIES TIMEOUT 300 LABELS openapi
  RESOURCE_LOCK crmsync_openapi_node_modules)

# The answers the end-to-end suites got (e2e, sync, cluster: every test
# there requires the fixture crmsync_answer_records, see
# tests/CMakeLists.txt) checked against the document after the last of
# them, also with ctest -j: statuses, JSON bodies (ajv), content types, the
# Error shape. The names hold neither "openapi" nor a suite's prefix, so
# `ctest -R openapi` does not run the check without the suites; `ctest -R
# e2e` (or sync, cluster) runs it after them.
add_test(NAME "answers: the record directory cleared"
  COMMAND ${CMAKE_COMMAND} -E rm -rf ${crmsync_answer_records})
set_tests_properties("answers: the record directory cleared"
  PROPERTIES FIXTURES_SETUP crmsync_answer_records)
add_test(NAME "answers: every recorded answer matches the OpenAPI document"
  COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/run.sh validate
          ${crmsync_answer_records})
set_tests_properties(
  "answers: every recorded answer matches the OpenAPI document"
  PROPERTIES FIXTURES_CLEANUP crmsync_answer_records TIMEOUT 300
  RESOURCE_LOCK crmsync_openapi_node_modules)
