// A browser's page session through a failover (ADR 0008, t15-sessions),
// with real processes: a one-member etcd, three crmsyncd nodes with
// --replication-factor 2 and a graph-emulator. A CRM user signs in to the
// pages through their organization's primary; the primary is killed with
// SIGKILL; once its follower took the shard, the same cookie opens the
// signed-in page on every surviving node and submits the page's CSRF form
// (the sign-out) through one of them; the signed-out cookie then opens
// nothing on any node, the old primary back included.
#include <catch2/catch.hpp>

#include "tests/cluster/cluster_fixture.hpp"
#include "tests/support/etcd_process.hpp"
#include "tests/support/eventually.hpp"

using namespace crmsync::e2e;
using crmsync::test::eventually;

namespace {

constexpr std::chrono::milliseconds failover_wait = std::chrono::seconds(40);

bool contains(const std::string& s, std::string_view part) {
  return s.find(part) != std::string::npos;
}

/// The cluster's nodes share one cookie jar: one browser in front of them.
api_response browser_get(api_client& node, const std::string& target) {
  return node.request("GET", target, "", "", "", {{"Accept", browser_accept}});
}

api_response browser_post(api_client& node, const std::string& target,
                          const std::string& form) {
  return node.request("POST", target, "", form,
                      "application/x-www-form-urlencoded",
                      {{"Accept", browser_accept}});
}

/// Whether node `i` shows the signed-in page for the jar's cookie.
bool signed_in_on(cluster_env& c, int i) {
  auto me = browser_get(c.node(i), "/o365/me");
  return me.status == 200 && contains(me.body, "You are signed in");
}

} // namespace

TEST_CASE("cluster (sessions): a CRM user's page session survives its "
          "primary's SIGKILL, and its sign-out through another node holds "
          "on every node",
          "[e2e][cluster][etcd][replication][sessions]") {
  crmsync::test::temp_dir dir;
  etcd_process store_proc{dir.path() + "/etcd"};
  cluster_env c({"--etcd-lease-ttl", "2"}, store_proc.url());

  // The organization, installed from Office 365 by its administrator.
  auto installed = c.sign_in("/o365/install", "admin@contoso.com");
  E2E_REQUIRE_STATUS(installed.answer, 200);
  auto org = installed.answer.str("/organization/id");
  auto primary = c.index_of(c.owner_of(org));
  REQUIRE(primary >= 0);

  // The administrator's browser signs in to the pages through the
  // organization's primary (before this change, the node that kept the
  // session).
  auto& via = c.node(primary);
  auto start = browser_get(via, "/o365/signin");
  E2E_REQUIRE_STATUS(start, 302);
  auto callback
      = sign_in_at_emulator(c.emulator(), c.emulator_url(),
                            start.header("Location"), "admin@contoso.com");
  auto landed = browser_get(via, split_url(callback).target);
  E2E_REQUIRE_STATUS(landed, 303);
  CHECK(landed.header("Location") == split_url(callback).origin + "/o365/me");
  auto cookie = via.cookies().get("crmsync_session");
  REQUIRE(cookie.size() == 43);
  auto me = browser_get(via, "/o365/me");
  E2E_REQUIRE_STATUS(me, 200);
  REQUIRE(contains(me.body, "You are signed in"));
  auto csrf = csrf_in(me.body);
  for (int i = 0; i < cluster_env::size; ++i) {
    INFO("node " << c.node_id(i));
    CHECK(signed_in_on(c, i));
  }

  c.kill9(primary);
  std::vector<int> survivors;
  for (int i = 0; i < cluster_env::size; ++i)
    if (i != primary)
      survivors.push_back(i);
  // The follower takes the shard (polled through the admin API: a page
  // that finds no session starts a sign-in, and those are rate limited).
  int owner = primary;
  REQUIRE(eventually(
      [&] {
        auto placed = c.call("GET", "/admin/v1/tenants/" + org, admin_token);
        if (placed.status == 200)
          owner = c.index_of(placed.str("/node"));
        return owner != primary;
      },
      failover_wait, std::chrono::milliseconds(200)));
  // Then the same cookie is signed in on every surviving node.
  for (int i : survivors) {
    INFO("node " << c.node_id(i) << " after " << c.node_id(primary)
                 << " was killed");
    CHECK(eventually([&] { return signed_in_on(c, i); },
                     std::chrono::seconds(10), std::chrono::milliseconds(500)));
  }
  // The form goes through the survivor that does not own the shard now.
  int other = survivors[0] == owner ? survivors[1] : survivors[0];
  auto& through = c.node(other);
  auto page = browser_get(through, "/o365/me");
  E2E_REQUIRE_STATUS(page, 200);
  // The session's CSRF token came with it.
  CHECK(csrf_in(page.body) == csrf);
  auto forged = browser_post(through, "/o365/signout",
                             "csrf=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
  CHECK(forged.status == 403);
  auto out = browser_post(through, "/o365/signout", "csrf=" + csrf);
  E2E_REQUIRE_STATUS(out, 200);
  CHECK(contains(out.body, "You signed out"));
  // The browser forgot the cookie (Max-Age=0); the same cookie sent
  // again is signed out on every node.
  CHECK(through.cookies().get("crmsync_session").empty());
  through.cookies().set("crmsync_session", cookie);
  for (int i : survivors) {
    INFO("node " << c.node_id(i));
    auto again = browser_get(c.node(i), "/o365/me");
    CHECK(again.status == 302); // off to the sign-in
    CHECK(browser_post(c.node(i), "/o365/signout", "csrf=" + csrf).status
          == 401);
  }
  // The old primary back: it holds nothing of the session either.
  c.start(primary);
  c.wait_ready();
  CHECK(browser_get(c.node(primary), "/o365/me").status == 302);
  CHECK(browser_post(c.node(primary), "/o365/signout", "csrf=" + csrf).status
        == 401);
}
