# Cluster tests: unit tests of the shard map, and end-to-end tests of a
# three-node cluster on loopback (real crmsyncd processes talking over
# CAF's middleman, one graph-emulator). Included from tests/CMakeLists.txt.
include(Catch)
add_executable(cluster_unit_tests ${CMAKE_CURRENT_LIST_DIR}/shards_test.cpp
  ${CMAKE_CURRENT_LIST_DIR}/etcd_test.cpp
  ${CMAKE_CURRENT_LIST_DIR}/replication_test.cpp
  ${CMAKE_CURRENT_LIST_DIR}/rebalance_test.cpp
  ${CMAKE_CURRENT_LIST_DIR}/pem_test.cpp)
target_link_libraries(cluster_unit_tests PRIVATE
  crmsync_cluster crmsync_test_support Catch2::Catch2WithMain)
target_compile_definitions(cluster_unit_tests PRIVATE
  CLUSTER_CA_SCRIPT="${PROJECT_SOURCE_DIR}/scripts/cluster-ca.sh")
catch_discover_tests(cluster_unit_tests EXTRA_ARGS --warn NoTests TEST_PREFIX "cluster-unit: "
  PROPERTIES TIMEOUT 60)

add_executable(cluster_e2e_tests
  ${CMAKE_CURRENT_LIST_DIR}/cluster_fixture.cpp
  ${CMAKE_CURRENT_LIST_DIR}/cluster_test.cpp
  ${CMAKE_CURRENT_LIST_DIR}/etcd_cluster_test.cpp
  ${CMAKE_CURRENT_LIST_DIR}/etcd_ops_test.cpp
  ${CMAKE_CURRENT_LIST_DIR}/replication_cluster_test.cpp
  ${CMAKE_CURRENT_LIST_DIR}/transport_test.cpp)
target_include_directories(cluster_e2e_tests PRIVATE ${PROJECT_SOURCE_DIR})
target_link_libraries(cluster_e2e_tests
  PRIVATE Catch2::Catch2WithMain crmsync_test_processes crmsync_cluster
          CAF::openssl)
add_dependencies(cluster_e2e_tests crmsyncd crmsyncctl graph-emulator)
catch_discover_tests(cluster_e2e_tests EXTRA_ARGS --warn NoTests TEST_PREFIX "cluster: "
  PROPERTIES TIMEOUT 240 ${crmsync_recorded_test_properties})

# t15-jepsen: the history checker (tests/cluster/history.{hpp,cpp}), its
# unit tests on hand-made histories, and the failover under mixed load that
# records its operations into it.
add_library(crmsync_test_history STATIC ${CMAKE_CURRENT_LIST_DIR}/history.cpp)
target_include_directories(crmsync_test_history PUBLIC ${PROJECT_SOURCE_DIR})
target_sources(cluster_unit_tests PRIVATE
  ${CMAKE_CURRENT_LIST_DIR}/history_test.cpp)
target_link_libraries(cluster_unit_tests PRIVATE crmsync_test_history)
target_sources(cluster_e2e_tests PRIVATE
  ${CMAKE_CURRENT_LIST_DIR}/failover_history_test.cpp)
target_link_libraries(cluster_e2e_tests PRIVATE crmsync_test_history)

# t15-sessions: a browser's page session through a failover.
target_sources(cluster_e2e_tests PRIVATE
  ${CMAKE_CURRENT_LIST_DIR}/session_failover_test.cpp)
