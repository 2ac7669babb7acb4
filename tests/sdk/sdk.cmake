# Conformance of graph-emulator with Microsoft's JavaScript SDK
# (@microsoft/microsoft-graph-client, pinned in package-lock.json) over
# HTTPS. Included from tests/CMakeLists.txt. run.sh installs node/npm when
# missing and the SDK with `npm ci` when tests/sdk/node_modules is missing
# or stale, makes a throwaway CA, starts the emulator on loopback and runs
# sdk_test.mjs; `ctest -R sdk` selects it.
add_test(NAME "sdk: microsoft-graph-client against graph-emulator"
  COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/run.sh $<TARGET_FILE:graph-emulator>)
set_tests_properties("sdk: microsoft-graph-client against graph-emulator"
  PROPERTIES TIMEOUT 300 LABELS sdk)
