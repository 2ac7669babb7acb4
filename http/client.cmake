# crmsync_http_client: the blocking HTTP/1.1 client (http/client.hpp).
# Included from http/CMakeLists.txt; used by crmsyncctl, crmsync-loadgen and
# the end-to-end tests. Beast stays private to client.cpp, so dependents only
# see the plain C++ header.
add_library(crmsync_http_client STATIC ${CMAKE_CURRENT_LIST_DIR}/client.cpp
  ${CMAKE_CURRENT_LIST_DIR}/async_client.cpp)
target_include_directories(crmsync_http_client PUBLIC ${PROJECT_SOURCE_DIR})
target_compile_features(crmsync_http_client PUBLIC cxx_std_17)
target_link_libraries(crmsync_http_client
  PRIVATE Boost::headers Threads::Threads OpenSSL::SSL OpenSSL::Crypto)
