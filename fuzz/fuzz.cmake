# The libFuzzer targets (fuzz/*_fuzz.cpp), included from the top-level
# CMakeLists.txt instead of the rest of the project when configured with
# -DCRMSYNC_FUZZ=ON and clang (scripts/fuzz.sh does both, in build-fuzz/).
#
# Only what the targets reach is compiled: common/ and protocol/ as they
# are, plus the decoders of storage/, graph/, sync/ and http/ from their own
# sources (their libraries would pull in RocksDB, the actors and the Graph
# client). Everything is built with coverage for libFuzzer, AddressSanitizer
# and UBSan; any UBSan finding aborts, so it counts as a crash.
if(NOT CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
  message(FATAL_ERROR "CRMSYNC_FUZZ needs clang (libFuzzer): configure "
                      "with -DCMAKE_CXX_COMPILER=clang++")
endif()

find_package(Threads REQUIRED)
find_package(Boost 1.74 REQUIRED)
find_package(OpenSSL REQUIRED)
find_package(simdjson CONFIG REQUIRED)
find_package(CAF REQUIRED)
find_package(date CONFIG REQUIRED)
find_package(prometheus-cpp CONFIG REQUIRED)
# The logger's sinks (common/log.cpp; Debian's libspdlog-dev).
find_package(spdlog CONFIG REQUIRED)
find_package(PkgConfig REQUIRED)
pkg_check_modules(SODIUM REQUIRED IMPORTED_TARGET libsodium)

set(crmsync_fuzz_flags -fsanitize=address,undefined
    -fno-sanitize-recover=all -fno-omit-frame-pointer -g)
add_compile_options(-fsanitize=fuzzer-no-link ${crmsync_fuzz_flags})
add_link_options(${crmsync_fuzz_flags})

add_subdirectory(common)
add_subdirectory(protocol)

add_library(crmsync_fuzz_decoders STATIC
  ${PROJECT_SOURCE_DIR}/graph/wire.cpp
  ${PROJECT_SOURCE_DIR}/http/server.cpp
  ${PROJECT_SOURCE_DIR}/http/url.cpp
  ${PROJECT_SOURCE_DIR}/storage/codec.cpp
  ${PROJECT_SOURCE_DIR}/sync/graph_event.cpp
  ${PROJECT_SOURCE_DIR}/sync/notifications.cpp)
target_include_directories(crmsync_fuzz_decoders PUBLIC ${PROJECT_SOURCE_DIR})
target_link_libraries(crmsync_fuzz_decoders
  PUBLIC crmsync_protocol crmsync_common simdjson::simdjson Threads::Threads
  PRIVATE Boost::headers OpenSSL::SSL OpenSSL::Crypto)

set(crmsync_fuzz_targets
  graph_batch_fuzz
  graph_delta_fuzz
  graph_event_fuzz
  http_request_fuzz
  rest_json_fuzz
  storage_codec_fuzz
  webhook_fuzz)
foreach(t IN LISTS crmsync_fuzz_targets)
  add_executable(${t} ${PROJECT_SOURCE_DIR}/fuzz/${t}.cpp)
  target_link_libraries(${t} PRIVATE crmsync_fuzz_decoders)
  target_link_options(${t} PRIVATE -fsanitize=fuzzer)
endforeach()

# Writes the storage seed corpus with the encoders themselves.
add_executable(storage_codec_seeds ${PROJECT_SOURCE_DIR}/fuzz/storage_codec_seeds.cpp)
target_link_libraries(storage_codec_seeds PRIVATE crmsync_fuzz_decoders)

add_custom_target(fuzz_targets DEPENDS ${crmsync_fuzz_targets})
