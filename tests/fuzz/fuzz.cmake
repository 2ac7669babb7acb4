# Every libFuzzer target (fuzz/) runs for a few seconds over its seed
# corpus (fuzz/corpus/) as part of the suite: the targets are built with
# clang in build-fuzz/ once (scripts/fuzz.sh --build-only, a fixture), then
# each runs on its own. Included from tests/CMakeLists.txt.
set(crmsync_fuzz_seconds 5)
add_test(NAME fuzz_build
  COMMAND bash ${PROJECT_SOURCE_DIR}/scripts/fuzz.sh --build-only
  WORKING_DIRECTORY ${PROJECT_SOURCE_DIR})
# The first build of build-fuzz/ (no ccache hits) takes minutes; alone, so
# that it does not slow down the timing-sensitive end-to-end tests.
set_tests_properties(fuzz_build PROPERTIES
  FIXTURES_SETUP fuzz_targets TIMEOUT 1200 RUN_SERIAL TRUE)
file(GLOB crmsync_fuzz_corpora LIST_DIRECTORIES true RELATIVE
  ${PROJECT_SOURCE_DIR}/fuzz/corpus ${PROJECT_SOURCE_DIR}/fuzz/corpus/*)
foreach(t IN LISTS crmsync_fuzz_corpora)
  add_test(NAME "fuzz: ${t}"
    COMMAND bash ${PROJECT_SOURCE_DIR}/scripts/fuzz.sh --no-build
            ${crmsync_fuzz_seconds} ${t}
    WORKING_DIRECTORY ${PROJECT_SOURCE_DIR})
  set_tests_properties("fuzz: ${t}" PROPERTIES
    FIXTURES_REQUIRED fuzz_targets TIMEOUT 120)
endforeach()
