// Each user's calendar actor syncs on the node's few actor threads: a user
// whose notifications keep coming must not hold up another user's sync
// while their next run waits out the gap between runs (found by
// bench/run-steady.sh when runs were blocking threads: echo notifications
// kept every sync thread asleep in gaps).
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>

#include "tests/e2e/sync_fixture.hpp"
#include "tests/support/thread_guard.hpp"

using namespace crmsync::e2e;

TEST_CASE("sync scheduling: a flood of one user's notifications does not "
          "hold up another user's sync",
          "[e2e][sync]") {
  sync_options opts;
  opts.node_args = {"--actor-threads", "1"};
  sync_env env(opts);
  env.enable_and_wait();
  auto sub = env.subscription();
  auto& o365 = env.o365();
  const auto& org = env.org();

  // Bob joins and turns sync on.
  auto session = o365.session_of("bob@contoso.com");
  auto request = expect_status(
      o365.node().post(session, "/api/v1/join-requests", "{}"), 201);
  auto approved = expect_status(
      o365.node().post(org.token,
                       "/api/v1/orgs/" + org.id + "/join-requests/"
                           + request.str("/id") + "/approve",
                       "{}"),
      200);
  auto bob = approved.str("/user/id");
  auto bob_sync = "/api/v1/orgs/" + org.id + "/users/" + bob + "/calendar-sync";
  expect_status(o365.node().put(org.token, bob_sync, R"({"enabled":true})"),
                200);
  REQUIRE(crmsync::test::eventually([&] {
    return o365.node().get(org.token, bob_sync).str("/state") == "active";
  }));

  // Every Graph call takes 200 ms, and the admin's subscription gets a
  // notification every 5 ms: one arrives during each of the admin's runs,
  // so another run is always due after the gap. The node has one actor
  // thread; a run that waited out its gap or its Graph answers on it would
  // never let Bob's run start.
  env.set_faults(R"({"latency_ms":200})");
  std::atomic<bool> stop{false};
  std::atomic<int> accepted{0};
  // Stopped and joined however the test ends (a failed REQUIRE included).
  crmsync::test::thread_guard flood([&] { stop = true; });
  flood.spawn([&] {
    api_client c(o365.node().port());
    auto resource = "Users/" + env.oid() + "/Events/AAMkAGflood";
    auto body
        = "{\"value\":[{\"subscriptionId\":" + json_str(sub.id)
          + ",\"clientState\":" + json_str(sub.client_state)
          + ",\"changeType\":\"updated\",\"resource\":" + json_str(resource)
          + ",\"tenantId\":" + json_str(o365.tenant()) + "}]}";
    while (!stop) {
      api_response r;
      std::string err;
      if (c.try_request("POST", sub.target, "", body, r, err)
          && r.status == 202)
        ++accepted;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  });
  REQUIRE(crmsync::test::eventually([&] { return accepted >= 100; }));

  // Bob's new event still reaches his Office 365 calendar.
  expect_status(o365.node().post(
                    org.token,
                    "/api/v1/orgs/" + org.id + "/users/" + bob + "/events",
                    R"({"title":"Bob's meeting","start":")" + hours_from_now(24)
                        + R"(","end":")" + hours_from_now(25) + "\"}"),
                201);
  bool pushed = crmsync::test::eventually([&] {
    return o365.node().get(org.token, bob_sync).i64("/to_office365/created")
           == 1;
  });
  flood.join();
  CHECK(pushed);
}

TEST_CASE("sync scheduling: a restarted node runs only the users with "
          "something to do, the others wait for their reconciliation "
          "reminder",
          "[e2e][sync][restart]") {
  // An hour between reconciliations: no reminder falls due in the test.
  sync_options opts;
  opts.reconcile_interval_s = 3600;
  sync_env env(opts);
  env.enable_and_wait();
  auto bob = env.join("bob@contoso.com");
  auto bob_sync = env.put_sync(bob.token, bob.id, true);
  E2E_REQUIRE_STATUS(bob_sync, 200);
  auto bob_active = env.wait_for_status_of(
      bob.token, bob.id,
      [](const api_response& s) {
        return s.str("/state") == "active" && s.u64("/outbox") == 0
               && !s.is_null("/last_sync");
      },
      "Bob's sync active");
  const auto bob_last = bob_active.str("/last_sync");
  env.restart_node();
  // The admin has something to do (a CRM event in the outbox): that run
  // happens and reaches Outlook.
  env.create_event("After the restart", hours_from_now(5), hours_from_now(6));
  env.wait_in_sync();
  CHECK(env.status().u64("/to_office365/created") >= 1);
  // Bob had nothing to do: his delta was not read since before the
  // restart (a start that runs everyone reads every user's delta at once).
  CHECK(env.status_of(bob.token, bob.id).str("/last_sync") == bob_last);
}

TEST_CASE("sync scheduling: the node's Graph governor paces a tenant's "
          "calendar sync at --graph-tenant-rps",
          "[e2e][sync]") {
  // One request per second for the tenant: enabling sync takes at least
  // the calendar's creation, one $batch, the first delta read and the
  // subscription, so four permits, the last no sooner than 3 s after the
  // first. Ungoverned it takes four Graph answers (about 0.1 s here).
  sync_options opts;
  opts.node_args = {"--graph-tenant-rps", "1"};
  sync_env env(opts);
  env.create_event("Paced", hours_from_now(5), hours_from_now(6));
  auto started = std::chrono::steady_clock::now();
  auto active = env.enable_and_wait(std::chrono::seconds(60));
  auto took = std::chrono::steady_clock::now() - started;
  CHECK(active.str("/state") == "active");
  CHECK(active.u64("/progress/total") == 1);
  CHECK(took >= std::chrono::milliseconds(2900));
  env.wait_in_sync();
}

namespace {

/// The directory's counters for calendar actors.
struct calendar_actors {
  int64_t live = -1;
  int64_t activations = 0;
  int64_t passivations = 0;
};

calendar_actors calendars_of(sync_env& env) {
  auto r = env.node().get(admin_token, "/admin/v1/actors");
  calendar_actors out;
  for (size_t i = 0; i < r.size("/kinds"); ++i) {
    auto base = "/kinds/" + std::to_string(i);
    if (r.str(base + "/kind") == "calendar") {
      out.live = r.i64(base + "/live");
      out.activations = r.i64(base + "/activations");
      out.passivations = r.i64(base + "/passivations");
    }
  }
  return out;
}

} // namespace

TEST_CASE("sync scheduling: an idle calendar leaves memory after "
          "--calendar-idle and comes back on the next change",
          "[e2e][sync]") {
  // The directory's own idle timeout stays at 300 s: only the calendar's
  // own check can passivate it within the test.
  sync_options opts;
  opts.node_args = {"--calendar-idle", "1"};
  sync_env env(opts);
  env.enable_and_wait();
  calendar_actors idle;
  REQUIRE(crmsync::test::eventually(
      [&] {
        idle = calendars_of(env);
        return idle.live == 0 && idle.passivations >= 1;
      },
      std::chrono::seconds(20)));

  // A change in Outlook: the notification brings the calendar back.
  auto cal = env.crm_calendar_id();
  env.outlook_create(cal, "After passivation", hours_from_now(30),
                     hours_from_now(31));
  REQUIRE(crmsync::test::eventually([&] {
    for (auto& e : env.crm_events())
      if (e.title == "After passivation")
        return true;
    return false;
  }));
  CHECK(calendars_of(env).activations > idle.activations);
}
