# The web admin page in headless Chromium (Debian's chromium, driven by
# playwright-core from npm, pinned in package-lock.json). Included from
# tests/CMakeLists.txt after e2e/sync.cmake: the driver is the hidden
# "[web]" case of sync_e2e_tests (tests/web/page_test.cpp), which starts
# graph-emulator and crmsyncd; run.sh installs playwright-core first.
# `ctest -R web` selects it.
add_test(NAME "web: admin page in headless Chromium"
  COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/run.sh $<TARGET_FILE:sync_e2e_tests>)
set_tests_properties("web: admin page in headless Chromium"
  PROPERTIES TIMEOUT 600 LABELS web)
