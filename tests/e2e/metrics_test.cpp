// End-to-end: GET /metrics of a real crmsyncd synced with a real
// graph-emulator. API calls, a calendar sync both ways, a throttled Graph
// and a forged notification must each move the counters of the contract
// (issue 6) by what happened, and the gauges must describe the node.
#include <catch2/catch.hpp>

#include <algorithm>
#include <sstream>
#include <string>

#include "tests/e2e/sync_fixture.hpp"

using namespace crmsync::e2e;

namespace {

/// One scrape: the text exposition, read with the admin token.
struct scrape {
  std::string text;

  /// The value of one series written exactly as exposed, or -1.
  double at(const std::string& series) const {
    std::istringstream in{text};
    std::string line;
    while (std::getline(in, line))
      if (line.rfind(series + " ", 0) == 0)
        return std::stod(line.substr(series.size() + 1));
    return -1;
  }

  /// The sum of every series of `name` whose labels contain `has`.
  double sum(const std::string& name, const std::string& has = {}) const {
    std::istringstream in{text};
    std::string line;
    double total = 0;
    while (std::getline(in, line)) {
      if (line.rfind(name, 0) != 0 || line.size() <= name.size()
          || (line[name.size()] != '{' && line[name.size()] != ' '))
        continue;
      auto space = line.rfind(' ');
      if (!has.empty() && line.substr(0, space).find(has) == std::string::npos)
        continue;
      total += std::stod(line.substr(space + 1));
    }
    return total;
  }
};

scrape get_metrics(sync_env& env) {
  auto r = env.node().get(admin_token, "/metrics");
  INFO(r.describe());
  REQUIRE(r.status == 200);
  REQUIRE(r.header("Content-Type")
          == "text/plain; version=0.0.4; charset=utf-8");
  return scrape{r.body};
}

const std::string rejected_change
    = "crmsync_notifications_total{kind=\"change\",outcome=\"rejected\"}";
const std::string received_change
    = "crmsync_notifications_total{kind=\"change\",outcome=\"received\"}";
const std::string acknowledged_change
    = "crmsync_notifications_total{kind=\"change\",outcome=\"acknowledged\"}";

} // namespace

TEST_CASE("metrics count requests, Graph calls, notifications, actors and "
          "sync lag",
          "[sync][metrics]") {
  sync_env env;
  auto& org = env.org();
  auto before = get_metrics(env);
  // Nothing about tenants in it.
  CHECK(before.text.find(org.id) == std::string::npos);

  // -- HTTP by route pattern -------------------------------------------------
  E2E_REQUIRE_STATUS(env.node().get(org.token, "/api/v1/orgs/" + org.id), 200);
  E2E_REQUIRE_STATUS(env.node().get(org.token, "/api/v1/orgs/" + org.id), 200);
  E2E_REQUIRE_STATUS(env.node().get(org.token, "/no/such/path"), 404);
  E2E_REQUIRE_STATUS(env.node().del(org.token, "/healthz"), 405);
  auto http = get_metrics(env);
  std::string org_route = "route=\"/api/v1/orgs/{org}\"";
  auto org_ok = "crmsync_http_requests_total{method=\"GET\"," + org_route
                + ",status=\"200\"}";
  CHECK(http.at(org_ok) == std::max(0.0, before.at(org_ok)) + 2);
  CHECK(http.sum("crmsync_http_requests_total", "route=\"unmatched\"")
        == before.sum("crmsync_http_requests_total", "route=\"unmatched\"")
               + 2);
  CHECK(http.at("crmsync_http_requests_total{method=\"GET\",route="
                "\"unmatched\",status=\"404\"}")
        >= 1);
  CHECK(http.at("crmsync_http_requests_total{method=\"DELETE\",route="
                "\"unmatched\",status=\"405\"}")
        >= 1);
  // Ids never become labels: only the pattern does.
  CHECK(http.text.find(org.id) == std::string::npos);
  CHECK(
      http.at("crmsync_http_request_duration_seconds_count{" + org_route + "}")
      >= 2);
  CHECK(http.at("crmsync_http_request_duration_seconds_bucket{" + org_route
                + ",le=\"+Inf\"}")
        == http.at("crmsync_http_request_duration_seconds_count{" + org_route
                   + "}"));

  // -- a sync: Graph calls, actors, gauges ----------------------------------
  env.create_event("Before sync", hours_from_now(30), hours_from_now(31));
  env.enable_and_wait();
  auto synced = get_metrics(env);
  CHECK(synced.sum("crmsync_graph_requests_total", "status=\"20")
        > before.sum("crmsync_graph_requests_total", "status=\"20"));
  CHECK(synced.at("crmsync_graph_request_duration_seconds_count")
        == synced.sum("crmsync_graph_requests_total"));
  CHECK(synced.at("crmsync_actor_activations_total{kind=\"tenant\"}") >= 1);
  CHECK(synced.at("crmsync_actor_activations_total{kind=\"calendar\"}") >= 1);
  CHECK(synced.at("crmsync_actors_active{kind=\"tenant\"}") >= 1);
  CHECK(synced.at("crmsync_subscriptions{state=\"live\"}") == 1);
  CHECK(synced.at("crmsync_subscriptions{state=\"expiring\"}") == 0);
  CHECK(synced.at("crmsync_sync_users{state=\"active\"}") == 1);
  CHECK(synced.at("crmsync_sync_outbox_depth") == 0);

  // -- CRM -> Office 365 through the outbox: lag to_office365 ---------------
  auto lag_out = "crmsync_sync_lag_seconds_count{direction=\"to_office365\"}";
  env.create_event("After sync", hours_from_now(40), hours_from_now(41));
  env.wait_in_sync();
  CHECK(get_metrics(env).at(lag_out) >= synced.at(lag_out) + 1);

  // -- Office 365 -> CRM: a real notification, acknowledged, lag to_crm -----
  auto lag_in = "crmsync_sync_lag_seconds_count{direction=\"to_crm\"}";
  auto pre_outlook = get_metrics(env);
  env.outlook_create(env.crm_calendar_id(), "From Outlook", hours_from_now(50),
                     hours_from_now(51));
  env.wait_in_sync();
  REQUIRE(crmsync::test::eventually([&] {
    auto m = get_metrics(env);
    return m.at(acknowledged_change) > pre_outlook.at(acknowledged_change)
           && m.at(lag_in) > pre_outlook.at(lag_in);
  }));
  auto outlook = get_metrics(env);
  CHECK(outlook.at(received_change) > pre_outlook.at(received_change));
  CHECK(outlook.at(rejected_change) == pre_outlook.at(rejected_change));

  // -- a forged notification: received and rejected, not acknowledged -------
  auto sub = env.subscription();
  sub.client_state = "not-the-secret";
  E2E_REQUIRE_STATUS(env.notify(sub, "updated", "AAMkAforged"), 202);
  auto forged = get_metrics(env);
  CHECK(forged.at(rejected_change) == outlook.at(rejected_change) + 1);
  CHECK(forged.at(received_change) == outlook.at(received_change) + 1);
  CHECK(forged.at(acknowledged_change) == outlook.at(acknowledged_change));

  // -- Graph throttles every call: 429s counted -----------------------------
  env.set_faults(R"({"throttle_rate":1})");
  env.create_event("While throttled", hours_from_now(60), hours_from_now(61));
  REQUIRE(crmsync::test::eventually([&] {
    auto m = get_metrics(env);
    return m.at("crmsync_graph_throttled_total")
               > forged.at("crmsync_graph_throttled_total")
           && m.at("crmsync_graph_requests_total{status=\"429\"}") >= 1;
  }));
  env.set_faults(R"({"throttle_rate":0})");
  env.wait_in_sync();
  // The echo notification of the last push may still be on its way into
  // the inbox when both sides agree: the queues drain to 0 soon after.
  scrape last;
  CHECK(crmsync::test::eventually([&] {
    last = get_metrics(env);
    return last.at("crmsync_sync_outbox_depth") == 0
           && last.at("crmsync_sync_inbox_depth") == 0;
  }));
  CHECK(last.at("crmsync_sync_outbox_depth") == 0);
  CHECK(last.at("crmsync_sync_inbox_depth") == 0);
}

TEST_CASE("the sync health list shows each synced user with its state",
          "[sync][metrics][admin]") {
  sync_env env;
  auto& org = env.org();
  auto empty = env.node().get(admin_token, "/admin/v1/sync");
  E2E_REQUIRE_STATUS(empty, 200);
  CHECK(empty.size("/items") == 0);
  env.create_event("One", hours_from_now(3), hours_from_now(4));
  env.enable_and_wait();

  auto list = env.node().get(admin_token, "/admin/v1/sync");
  E2E_REQUIRE_STATUS(list, 200);
  REQUIRE(list.size("/items") == 1);
  CHECK(list.str("/items/0/org") == org.id);
  CHECK(list.str("/items/0/user") == org.admin_id);
  CHECK(list.str("/items/0/email").find('@') != std::string::npos);
  CHECK(list.str("/items/0/sync/state") == "active");
  CHECK_FALSE(list.is_null("/items/0/sync/subscription_expires"));
  CHECK_FALSE(list.is_null("/items/0/sync/last_sync"));
  CHECK(list.u64("/items/0/sync/to_office365/created") == 1);
  CHECK(list.u64("/summary/users/active") == 1);
  CHECK(list.u64("/summary/subscriptions/live") == 1);
  CHECK(list.is_null("/next_cursor"));

  auto only_errors
      = env.node().get(admin_token, "/admin/v1/sync?state=error&limit=5");
  E2E_REQUIRE_STATUS(only_errors, 200);
  CHECK(only_errors.size("/items") == 0);

  // Paging: a cursor from the listing goes on after that user.
  auto page = env.node().get(admin_token, "/admin/v1/sync?limit=1");
  E2E_REQUIRE_STATUS(page, 200);
  CHECK(page.size("/items") == 1);
  auto after = env.node().get(admin_token, "/admin/v1/sync?cursor=" + org.id
                                               + "." + org.admin_id);
  E2E_REQUIRE_STATUS(after, 200);
  CHECK(after.size("/items") == 0);

  // Bad input and bad tokens get clear errors.
  auto bad_cursor = env.node().get(admin_token, "/admin/v1/sync?cursor=zz");
  E2E_REQUIRE_STATUS(bad_cursor, 400);
  CHECK(bad_cursor.error_field() == "cursor");
  E2E_REQUIRE_STATUS(env.node().get(admin_token, "/admin/v1/sync?limit=0"),
                     400);
  E2E_REQUIRE_STATUS(env.node().get("wrong-token", "/admin/v1/sync"), 401);
  E2E_REQUIRE_STATUS(env.node().get(org.token, "/admin/v1/sync"), 403);
}
