// End-to-end: what one Graph notification POST may cost the node. A POST
// with more notifications than --max-notifications-per-post is refused
// whole (413) before anything is looked up or stored; one at the limit is
// taken as before.
#include <catch2/catch.hpp>

#include <string>

#include "tests/e2e/sync_fixture.hpp"

using namespace crmsync::e2e;

namespace {

/// A change notification collection of `n` items for the subscription.
std::string collection(const sync_env::subscription_info& s,
                       const std::string& tenant, int n) {
  std::string body = "{\"value\":[";
  for (int i = 0; i < n; ++i) {
    if (i)
      body += ",";
    body += "{\"subscriptionId\":" + json_str(s.id)
            + ",\"clientState\":" + json_str(s.client_state)
            + ",\"changeType\":\"updated\",\"resource\":"
            + json_str("Users/x/Events/AAMk" + std::to_string(i))
            + ",\"tenantId\":" + json_str(tenant) + "}";
  }
  return body + "]}";
}

/// Notifications the node has taken in (its metric), or -1.
double received(sync_env& env) {
  auto r = env.node().get(admin_token, "/metrics");
  E2E_REQUIRE_STATUS(r, 200);
  const std::string series
      = "crmsync_notifications_total{kind=\"change\",outcome=\"received\"} ";
  auto at = r.body.find("\n" + series);
  if (at == std::string::npos)
    return -1;
  return std::stod(r.body.substr(at + 1 + series.size()));
}

} // namespace

TEST_CASE("a notification POST over the per-POST limit is refused whole",
          "[sync][webhook][security]") {
  sync_options o;
  o.node_args = {"--max-notifications-per-post", "3"};
  sync_env env{o};
  env.enable_and_wait();
  auto sub = env.subscription();
  auto tenant = env.o365().tenant();
  auto before = received(env);
  REQUIRE(before >= 0);

  auto over = env.node().post("", sub.target, collection(sub, tenant, 4));
  E2E_REQUIRE_STATUS(over, 413);
  CHECK(over.str("/error/code") == "too_many_notifications");
  CHECK(received(env) == before); // nothing of it was taken

  auto at_limit = env.node().post("", sub.target, collection(sub, tenant, 3));
  E2E_REQUIRE_STATUS(at_limit, 202);
  CHECK(received(env) == before + 3);
}
