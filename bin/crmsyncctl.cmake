# crmsyncctl: the admin console (bin/crmsyncctl.cpp, bin/ctl/): one-shot
# commands and an interactive console on libedit (Debian libedit-dev, the
# BSD editline library: line editing, history and completion behind a
# readline-style API, so the console has no terminal code of its own).
# Included from bin/CMakeLists.txt. The formatting helpers are compiled
# again into ctl_tests (tests/ctl/ctl.cmake), so this snippet defines no
# library.
pkg_check_modules(LIBEDIT REQUIRED IMPORTED_TARGET libedit)
add_executable(crmsyncctl
  ${CMAKE_CURRENT_LIST_DIR}/crmsyncctl.cpp
  ${CMAKE_CURRENT_LIST_DIR}/ctl/commands.cpp
  ${CMAKE_CURRENT_LIST_DIR}/ctl/completion.cpp
  ${CMAKE_CURRENT_LIST_DIR}/ctl/console.cpp
  ${CMAKE_CURRENT_LIST_DIR}/ctl/doctor.cpp
  ${CMAKE_CURRENT_LIST_DIR}/ctl/format.cpp
  ${CMAKE_CURRENT_LIST_DIR}/ctl/render.cpp
  ${CMAKE_CURRENT_LIST_DIR}/ctl/table.cpp)
target_include_directories(crmsyncctl PRIVATE ${CMAKE_CURRENT_LIST_DIR})
target_link_libraries(crmsyncctl
  PRIVATE crmsync_http_client crmsync_backup crmsync_common CLI11::CLI11
          simdjson::simdjson
          PkgConfig::LIBEDIT)
