# deploy/run-cluster.sh run for real (issue 15): CLUSTER_ETCD=1 on free
# ports with this build's binaries, a three-member etcd over TLS and three
# nodes; about a minute and a half. Included from tests/CMakeLists.txt; `ctest -L
# deploy` selects it.
add_test(NAME "deploy: run-cluster.sh with a three-member etcd serves, fails over, stops"
  COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/run_cluster_test.sh
          $<TARGET_FILE_DIR:crmsyncd>)
set_tests_properties("deploy: run-cluster.sh with a three-member etcd serves, fails over, stops"
  PROPERTIES TIMEOUT 300 LABELS deploy)
# deploy/Dockerfile's runtime stage installs every library the programs
# link (ldd, dpkg -S, apt-cache; half a minute on a busy machine).
add_test(NAME "deploy: the image's runtime packages cover every linked library"
  COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/image_libs_test.sh
          $<TARGET_FILE_DIR:crmsyncd>)
set_tests_properties("deploy: the image's runtime packages cover every linked library"
  PROPERTIES TIMEOUT 300 LABELS deploy)
# deploy/'s files name only settings crmsyncd has (its --help; seconds).
add_test(NAME "deploy: the unit, env file, manifests and config example name real settings"
  COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/flags_test.sh $<TARGET_FILE_DIR:crmsyncd>)
set_tests_properties("deploy: the unit, env file, manifests and config example name real settings"
  PROPERTIES TIMEOUT 120 LABELS deploy)
