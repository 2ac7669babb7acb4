// End-to-end: error paths that no other test reaches, each driven through
// real HTTP against a real crmsyncd (and graph-emulator where Office 365
// is involved), asserting status and error code: a full disk under the
// node (storage refuses writes with 500 storage_failure and keeps what it
// acknowledged, also across a restart), a refused Office 365 sign-in (403
// signin_refused), a second tenant admin installing again (409
// already_installed), /readyz while the node drains (503 shutting_down), a
// full password-hashing queue (503 busy), and nonsense values of
// --graph-timeout-ms (exit 2 with a sentence).
#include <catch2/catch.hpp>

#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>

#include <cstdlib>
#include <fstream>
#include <future>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "tests/e2e/office365_fixture.hpp"
#include "tests/e2e/sync_fixture.hpp"
#include "tests/support/api_client.hpp"
#include "tests/support/eventually.hpp"
#include "tests/support/temp_dir.hpp"

using namespace crmsync::e2e;
using crmsync::test::eventually;

namespace {

std::string read_file(const std::string& path) {
  std::ifstream in{path};
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

/// Runs crmsyncd with `env_and_args` (shell words: "NAME=V" assignments
/// go before the binary) until it exits; its exit code and stderr. The
/// node is killed after 10 s, which a refused configuration never needs.
int run_crmsyncd(const std::string& env, const std::string& args,
                 std::string& stderr_text) {
  crmsync::test::temp_dir dir;
  auto err = dir.path() + "/stderr";
  auto command = "env -u CRMSYNC_GRAPH_TIMEOUT_MS " + env
                 + " timeout -s KILL 10 " + crmsyncd_path()
                 + " --listen 127.0.0.1:0 --data-dir " + dir.path() + "/data "
                 + args + " >/dev/null 2>" + err;
  int status = std::system(command.c_str());
  stderr_text = read_file(err);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/// A 30 KB description: a few such events fill a small file.
std::string big_event(const std::string& title) {
  return event_body(title, hours_from_now(24), hours_from_now(25),
                    ",\"description\":" + json_str(std::string(30000, 'x')));
}

} // namespace

TEST_CASE("nonsense values of --graph-timeout-ms are refused with exit 2 and "
          "a sentence",
          "[errors][config]") {
  for (const std::string bad : {"0", "99", "-5", "abc", "600001"}) {
    INFO("--graph-timeout-ms " << bad);
    std::string err;
    CHECK(run_crmsyncd("", "--graph-timeout-ms " + bad, err) == 2);
    CHECK(err.find("--graph-timeout-ms") != std::string::npos);
  }
  std::string err;
  INFO("CRMSYNC_GRAPH_TIMEOUT_MS=abc");
  CHECK(run_crmsyncd("CRMSYNC_GRAPH_TIMEOUT_MS=abc", "", err) == 2);
  CHECK(err.find("--graph-timeout-ms") != std::string::npos);
}

TEST_CASE("a full disk under a running node: writes are refused with 500 "
          "storage_failure and what was acknowledged stays, also after a "
          "restart with space again",
          "[errors][storage]") {
  test_node node;
  auto org = create_org(node.api(), "Acme", "admin@acme.example");
  auto events = user_events_path(org.id, org.admin_id);

  // From now on no file of the node may grow beyond 256 KiB (as if the
  // disk were full): the write-ahead log fills after a few big events.
  rlimit limit{};
  REQUIRE(::prlimit(node.process().pid(), RLIMIT_FSIZE, nullptr, &limit) == 0);
  limit.rlim_cur = 256 * 1024;
  REQUIRE(::prlimit(node.process().pid(), RLIMIT_FSIZE, &limit, nullptr) == 0);

  std::map<std::string, std::string> acknowledged; // id -> title
  api_response refused;
  for (int i = 0; i < 40 && refused.status == 0; ++i) {
    auto title = "Event " + std::to_string(i);
    auto r = node.api().post(org.admin_token, events, big_event(title));
    if (r.status == 201)
      acknowledged[r.str("/id")] = title;
    else
      refused = r;
  }
  INFO(node.log_tail());
  REQUIRE(acknowledged.size() >= 2);
  E2E_REQUIRE_STATUS(refused, 500);
  CHECK(refused.error_code() == "storage_failure");
  CHECK(refused.str("/error/message").find("File too large")
        != std::string::npos);

  // The node stays up and keeps refusing writes, small ones too, rather
  // than acknowledging what it cannot keep.
  auto small = node.api().post(
      org.admin_token, events,
      event_body("Small", hours_from_now(30), hours_from_now(31)));
  E2E_REQUIRE_STATUS(small, 500);
  CHECK(small.error_code() == "storage_failure");
  auto user = node.api().post(
      org.admin_token, users_path(org.id),
      R"({"email":"sam@acme.example","name":"Sam","profile":"standard"})");
  CHECK(user.status >= 500);
  CHECK(user.error_code() == "storage_failure");

  // What was acknowledged is there, and nothing else.
  auto check_kept = [&](api_client& api) {
    for (auto& [id, title] : acknowledged) {
      auto e = api.get(org.admin_token, event_path(org.id, id));
      E2E_REQUIRE_STATUS(e, 200);
      CHECK(e.str("/title") == title);
    }
    auto listed = walk_pages(api, org.admin_token, events, 100);
    CHECK(listed.size() == acknowledged.size());
    auto o = api.get(org.admin_token, org_path(org.id));
    E2E_REQUIRE_STATUS(o, 200);
    CHECK(o.u64("/events") == acknowledged.size());
  };
  check_kept(node.api());

  // A restart without the limit: the log is replayed, nothing is lost, and
  // writes are taken again.
  node.stop();
  node.start();
  check_kept(node.api());
  auto after = node.api().post(
      org.admin_token, events,
      event_body("After the restart", hours_from_now(30), hours_from_now(31)));
  E2E_REQUIRE_STATUS(after, 201);
}

TEST_CASE("a sign-in Office 365 refused answers 403 signin_refused",
          "[errors][office365]") {
  office365_env env;
  // The identity platform sends the browser back with error=... (here: no
  // such account) instead of a code.
  auto callback
      = env.at_emulator(env.begin("/o365/signin"), "nobody@contoso.com");
  REQUIRE(query_param(callback, "error") == "invalid_request");
  REQUIRE(query_param(callback, "code").empty());
  auto r = env.open(callback);
  E2E_REQUIRE_STATUS(r, 403);
  CHECK(r.error_code() == "signin_refused");
  CHECK(r.str("/error/message").find("invalid_request") != std::string::npos);
  CHECK_FALSE(r.has("/office365_session"));
  CHECK_FALSE(r.has("/user/token"));
}

TEST_CASE("a second administrator of an installed tenant who is not a member "
          "installing again gets 409 already_installed",
          "[errors][office365]") {
  office365_env env;
  std::map<std::string, std::string> ids;
  env.seed_tenant("fabrikam.com",
                  {{"ann@fabrikam.com", "Ann", true, true},
                   {"ben@fabrikam.com", "Ben", true, true}},
                  ids);
  auto first = env.install("ann@fabrikam.com");
  auto org = first.answer.str("/organization/id");

  auto second = env.sign_in("/o365/install", "ben@fabrikam.com");
  E2E_REQUIRE_STATUS(second.answer, 409);
  CHECK(second.answer.error_code() == "already_installed");
  CHECK(second.answer.str("/error/message").find(org) != std::string::npos);
  CHECK(second.token.empty());
  // No second organization, and Ben is not in the first one.
  auto users = env.node().get(first.token, users_path(org));
  E2E_REQUIRE_STATUS(users, 200);
  CHECK(users.size("/items") == 1);
}

TEST_CASE("/readyz answers 503 shutting_down while the node drains, and the "
          "request in flight is still answered",
          "[errors][shutdown]") {
  office365_env env;
  auto installed = env.install("admin@contoso.com");
  auto org = installed.answer.str("/organization/id");
  // A connection opened before the shutdown starts (a load balancer's).
  api_client probe{env.node().port()};
  E2E_REQUIRE_STATUS(probe.get("", "/readyz"), 200);

  // A request that waits on a slow Graph keeps the node draining.
  env.set_faults(R"({"latency_ms":1500})");
  auto slow = std::async(std::launch::async, [&] {
    return env.node().get(installed.token,
                          "/api/v1/orgs/" + org + "/office365/users");
  });
  bool in_flight = eventually([&] {
    auto s = probe.get(admin_token, "/admin/v1/status");
    return s.status == 200 && s.u64("/http/in_flight") >= 2;
  });
  REQUIRE(in_flight);
  REQUIRE(::kill(env.node_process().process().pid(), SIGTERM) == 0);

  // Asked on the probe's connection until it answers 503. An answer
  // computed just before the drain began (200) keeps the connection open,
  // so the probe always gets to ask again.
  api_response ready;
  std::string err;
  bool refused = eventually([&] {
    return probe.try_request("GET", "/readyz", "", "", ready, err)
           && ready.status == 503;
  });
  INFO("/readyz: " << ready.describe() << " " << err);
  REQUIRE(refused);
  CHECK(ready.error_code() == "shutting_down");
  CHECK(ready.header("connection") == "close");
  auto answered = slow.get();
  E2E_REQUIRE_STATUS(answered, 200);
  CHECK(env.node_process().stop() == 0);
}

TEST_CASE("password hashing beyond --hash-queue answers 503 busy",
          "[errors][limits]") {
  // One hashing thread and four places in its queue; the per-caller share
  // is out of the way, so only the queue's bound can refuse.
  test_node node{{"--hash-threads", "1", "--hash-queue", "4",
                  "--hash-queue-per-caller", "100000"}};
  std::vector<race_request> requests;
  for (int i = 0; i < 12; ++i)
    requests.push_back(
        {"POST", "/api/v1/orgs", admin_token,
         R"({"name":"Org )" + std::to_string(i) + R"(","edition":"free)"
             + R"(","admin":{"email":"boss)" + std::to_string(i)
             + R"(@example.com","name":"Boss","password":"a long secret"}})"});
  auto out = send_at_once(node.port(), requests);
  size_t created = 0, busy = 0;
  for (size_t i = 0; i < requests.size(); ++i) {
    INFO("request " << i << ": " << out.results[i].describe() << " "
                    << out.errors[i]);
    auto& r = out.results[i];
    if (r.status == 201) {
      ++created;
    } else {
      CHECK(r.status == 503);
      CHECK(r.error_code() == "busy");
      ++busy;
    }
  }
  CHECK(created >= 1);
  CHECK(busy >= 1);
}
