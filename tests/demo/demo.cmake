# The demo as a newcomer walks it (issue 14): scripts/run.sh on free ports
# with the built binaries, the walk-through it prints run line by line
# (scripts/demo-env.sh, scripts/outlook.sh), and a second run.sh on busy
# ports. Included from tests/CMakeLists.txt; `ctest -R demo` selects it.
add_test(NAME "demo: run.sh walk-through, outlook.sh, busy ports"
  COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/demo_test.sh
          $<TARGET_FILE_DIR:crmsyncd>)
set_tests_properties("demo: run.sh walk-through, outlook.sh, busy ports"
  PROPERTIES TIMEOUT 300 LABELS demo)
