// End-to-end: the sync's error paths that no other test reaches. A Graph
// that answers later than --graph-timeout-ms (the user's status shows the
// timeout; the sync recovers once Graph is quick again), a notification
// body that is no notification collection (400 bad_notification), Graph's
// reauthorizationRequired lifecycle event (the node reauthorizes its
// subscription at Graph), and a resync of a user whose sync is off (409
// sync_disabled).
#include <catch2/catch.hpp>

#include <string>

#include "tests/e2e/sync_fixture.hpp"
#include "tests/support/eventually.hpp"

using namespace crmsync::e2e;
using crmsync::test::eventually;

namespace {

/// The last_error of a sync status ("" when null).
std::string last_error(const api_response& s) {
  return s.is_null("/last_error") ? std::string{} : s.str("/last_error");
}

/// The emulator's one live subscription (REQUIREs exactly one).
struct graph_subscription {
  std::string id;
  std::string expires; ///< expirationDateTime, "YYYY-MM-DDTHH:MM:SS.mmmZ"
};

graph_subscription the_subscription(sync_env& env) {
  auto r = env.o365().emulator().get("", "/_emulator/subscriptions");
  E2E_REQUIRE_STATUS(r, 200);
  INFO("the emulator's subscriptions: " << r.body);
  REQUIRE(r.size("/value") == 1);
  return {r.str("/value/0/id"), r.str("/value/0/expirationDateTime")};
}

/// Change notifications the node has taken in (its metric), or -1.
double notifications_received(sync_env& env, const std::string& kind) {
  auto r = env.node().get(admin_token, "/metrics");
  E2E_REQUIRE_STATUS(r, 200);
  const std::string series = "crmsync_notifications_total{kind=\"" + kind
                             + "\",outcome=\"received\"} ";
  auto at = r.body.find("\n" + series);
  if (at == std::string::npos)
    return -1;
  return std::stod(r.body.substr(at + 1 + series.size()));
}

} // namespace

TEST_CASE("a Graph answer slower than --graph-timeout-ms shows in the user's "
          "sync status, and the sync recovers when Graph is quick again",
          "[sync][errors][timeout]") {
  sync_options o;
  // A failed run is tried again after at most the reconcile interval.
  o.reconcile_interval_s = 2;
  o.node_args = {"--graph-timeout-ms", "500"};
  sync_env env{o};
  env.enable_and_wait();

  // Every Graph answer now comes 2 s late, four times the node's timeout.
  env.set_faults(R"({"latency_ms":2000})");
  auto title = "Sent while Graph is slow";
  env.create_event(title, hours_from_now(24), hours_from_now(25));
  auto failed = env.wait_for_status(
      [](const api_response& s) {
        return last_error(s).find("timed out after 500 ms")
               != std::string::npos;
      },
      "the Graph timeout in the status", std::chrono::seconds(40));
  CHECK(failed.str("/state") == "active");
  CHECK(failed.u64("/outbox") >= 1); // the event still waits to be sent

  env.set_faults(R"({"latency_ms":0})");
  auto recovered = env.wait_for_status(
      [](const api_response& s) {
        return s.str("/state") == "active" && s.u64("/outbox") == 0
               && s.is_null("/last_error");
      },
      "the sync to recover", std::chrono::seconds(30));
  CHECK(recovered.u64("/outbox") == 0);
  // The event reached Office 365 exactly once, retries and all.
  env.wait_in_sync();
  size_t copies = 0;
  for (auto& e : env.o365_events(env.crm_calendar_id()))
    copies += e.subject == title ? 1 : 0;
  CHECK(copies == 1);
}

TEST_CASE("a notification body that is no notification collection is "
          "refused with 400 bad_notification",
          "[sync][errors][webhook]") {
  sync_env env;
  env.enable_and_wait();
  auto sub = env.subscription();
  auto lifecycle_target = sub.target;
  lifecycle_target.replace(0, std::string{"/webhooks/graph"}.size(),
                           "/webhooks/graph/lifecycle");
  REQUIRE(lifecycle_target.rfind("/webhooks/graph/lifecycle?", 0) == 0);
  auto change_before = notifications_received(env, "change");
  auto lifecycle_before = notifications_received(env, "lifecycle");
  REQUIRE(change_before >= 0);
  REQUIRE(lifecycle_before >= 0);

  for (const std::string& target : {sub.target, lifecycle_target})
    for (const std::string& body :
         {std::string{"this is not JSON"}, std::string{R"({"value":42})"},
          std::string{R"({"values":[]})"}, std::string{R"([{"value":[]}])"}}) {
      INFO(target << " <- " << body);
      auto r = env.node().post("", target, body);
      E2E_REQUIRE_STATUS(r, 400);
      CHECK(r.error_code() == "bad_notification");
    }
  // Nothing of them was taken in...
  CHECK(notifications_received(env, "change") == change_before);
  CHECK(notifications_received(env, "lifecycle") == lifecycle_before);
  // ...and a well-formed one still is.
  auto good = env.notify(sub, "updated", "AAMkNotThere");
  E2E_REQUIRE_STATUS(good, 202);
}

TEST_CASE("Graph's reauthorizationRequired makes the node reauthorize its "
          "subscription at Graph",
          "[sync][errors][lifecycle]") {
  sync_env env;
  env.enable_and_wait();
  auto before = the_subscription(env);

  auto sent = env.o365().emulator().post(
      "", "/_emulator/subscriptions/" + before.id + "/lifecycle",
      R"({"lifecycleEvent":"reauthorizationRequired"})");
  E2E_REQUIRE_STATUS(sent, 202);

  // Reauthorized at Graph: the same subscription, its expiry pushed on
  // (the node renews only when half its lifetime is gone, so nothing but
  // the lifecycle event moves it in this test). Both times are UTC in the
  // same fixed-width form, so they order as strings.
  graph_subscription now;
  bool renewed = eventually([&] {
    now = the_subscription(env);
    return now.expires > before.expires;
  });
  INFO("before: " << before.id << " until " << before.expires
                  << "; now: " << now.id << " until " << now.expires);
  INFO(env.o365().node_process().log_tail());
  REQUIRE(renewed);
  CHECK(now.id == before.id);
  auto s = env.status();
  CHECK(s.str("/subscription_id") == before.id);
  CHECK(s.is_null("/last_error"));
}

TEST_CASE("a resync of a user whose sync is off answers 409 sync_disabled",
          "[sync][errors]") {
  sync_env env;
  auto resync = "/admin/v1/users/" + env.org().admin_id + "/resync";

  auto never_on = env.node().post(admin_token, resync, "");
  E2E_REQUIRE_STATUS(never_on, 409);
  CHECK(never_on.error_code() == "sync_disabled");

  env.enable_and_wait();
  auto on = env.node().post(admin_token, resync, "");
  E2E_REQUIRE_STATUS(on, 202);
  CHECK(on.str("/user") == env.org().admin_id);

  env.set_sync(false);
  env.wait_for_state("disabled");
  auto turned_off = env.node().post(admin_token, resync, "");
  E2E_REQUIRE_STATUS(turned_off, 409);
  CHECK(turned_off.error_code() == "sync_disabled");
}
