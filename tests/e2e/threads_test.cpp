// End-to-end: the node's threads on its default flags (t13-async). No
// code path waits on Graph or on a cluster lookup, so the node has no
// Office 365 pool ("graph-pool", once --graph-threads) and a fixed, small
// set of threads. Read from /proc of the started process, after the
// flows that used the pool ran: no timing is assumed (every pool of the
// node is started before it announces itself, and none grows).
#include <dirent.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "tests/e2e/office365_fixture.hpp"

using namespace crmsync::e2e;

namespace {

/// The names of a process's threads (/proc/PID/task/*/comm).
std::vector<std::string> thread_names(pid_t pid) {
  std::vector<std::string> out;
  auto dir = "/proc/" + std::to_string(pid) + "/task";
  DIR* d = ::opendir(dir.c_str());
  REQUIRE(d != nullptr);
  while (auto* e = ::readdir(d)) {
    std::string tid = e->d_name;
    if (tid == "." || tid == "..")
      continue;
    std::ifstream comm{dir + "/" + tid + "/comm"};
    std::string name;
    std::getline(comm, name);
    out.push_back(name);
  }
  ::closedir(d);
  return out;
}

std::string describe(const std::vector<std::string>& names) {
  std::map<std::string, int> by_name;
  for (auto& n : names)
    ++by_name[n];
  std::string out;
  for (auto& [n, k] : by_name)
    out += n + " " + std::to_string(k) + ", ";
  return out;
}

} // namespace

TEST_CASE("office365: a node on its default flags has no graph-pool and at "
          "most 16 threads",
          "[e2e][office365][threads]") {
  office365_env env;
  // The install and a sign-in ran their continuations on the pool before.
  env.install("admin@contoso.com");
  env.session_of("bob@contoso.com");
  auto names = thread_names(env.node_process().process().pid());
  INFO("threads: " << describe(names));
  CHECK(std::count(names.begin(), names.end(), "graph-pool") == 0);
  CHECK(names.size() <= 16);
  // Every thread says whose it is: only the main thread has the
  // process's name (RocksDB's timer is named rocksdb:timer).
  CHECK(std::count(names.begin(), names.end(), "crmsyncd") == 1);
  CHECK(std::count(names.begin(), names.end(), "rocksdb:timer") == 1);
}
