# The OpenAPI document (api/openapi/openapi.json) with tools from npm,
# pinned in package-lock.json (run.sh installs them with `npm ci`):
# Redocly's lint, and a typed client (openapi-typescript + openapi-fetch,
# compiled with tsc) that drives a flow against a real crmsyncd and
# graph-emulator (Office 365 included) while ajv validates every answer
# against the document. Included from
# tests/CMakeLists.txt; `ctest -L openapi` selects these and api_tests'
# route-table test.
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
