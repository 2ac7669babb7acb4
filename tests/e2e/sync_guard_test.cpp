// End-to-end: the mass-delete guard. A sync run that would delete more than
// the configured share of a user's synced events (here: more than half, and
// at least 3) stops in state "held", deletes nothing, and goes ahead only
// when an administrator approves (crmsyncctl approve-deletes USER).
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "tests/e2e/sync_fixture.hpp"

using namespace crmsync::e2e;

namespace {

sync_options guarded() {
  sync_options o{300, 0, {}, {}};
  o.node_args = {"--mass-delete-share", "0.5", "--mass-delete-minimum", "3"};
  return o;
}

void approve(sync_env& env) {
  auto r = env.node().post(
      admin_token,
      "/admin/v1/users/" + env.org().admin_id + "/sync/approve-deletes", "");
  E2E_REQUIRE_STATUS(r, 202);
}

std::vector<std::string> six_synced_events(sync_env& env) {
  std::vector<std::string> ids;
  for (int i = 0; i < 6; ++i)
    ids.push_back(env.create_event("Guarded " + std::to_string(i),
                                   hours_from_now(10 + i),
                                   hours_from_now(11 + i)));
  env.enable_and_wait();
  return ids;
}

} // namespace

TEST_CASE("deleting most events in Outlook waits for an administrator",
          "[sync][guard]") {
  sync_env env{guarded()};
  six_synced_events(env);
  auto cal = env.crm_calendar_id();
  auto events = env.o365_events(cal);
  REQUIRE(events.size() == 6);
  for (size_t i = 0; i < 4; ++i)
    env.outlook_delete(events[i].id);

  // Notifications may wake a run per deletion: the first ones can pass
  // (below the minimum), the guard adds them up and holds the rest.
  auto held = env.wait_for_state("held");
  CHECK(held.str("/last_error").find("mass-delete guard") != std::string::npos);
  auto kept = env.crm_events().size();
  CHECK(kept > 2); // not all four went
  CHECK(held.u64("/from_office365/deleted") == 6 - kept);

  approve(env);
  env.wait_for_state("active");
  bool down_to_two
      = crmsync::test::eventually([&] { return env.crm_events().size() == 2; });
  INFO("status " << env.status().body);
  REQUIRE(down_to_two);
  // The counters are written with the run's last rows: read them once
  // nothing is pending.
  env.wait_in_sync();
  CHECK(env.status().u64("/from_office365/deleted") == 4);
}

TEST_CASE("deleting most events in the CRM waits for an administrator",
          "[sync][guard]") {
  sync_env env{guarded()};
  auto ids = six_synced_events(env);
  auto cal = env.crm_calendar_id();
  for (size_t i = 0; i < 4; ++i)
    env.delete_event(ids[i]);

  // Each deletion wakes its own run; the guard adds them up over its
  // window, so the run that would pass half of the synced events holds.
  auto held = env.wait_for_state("held");
  CHECK(held.str("/last_error").find("in Office 365") != std::string::npos);
  auto left = env.o365_events(cal).size();
  CHECK(left > 2); // not all four went
  CHECK(held.u64("/outbox") == left - 2);

  approve(env);
  bool down_to_two = crmsync::test::eventually(
      [&] { return env.o365_events(cal).size() == 2; });
  INFO("status " << env.status().body);
  REQUIRE(down_to_two);
  env.wait_for_state("active");
  // Office 365 shows the last deletion before the run stored its row's
  // removal and the counter (seen once: 3 == 4, outbox 1): read them once
  // nothing is pending.
  env.wait_in_sync();
  CHECK(env.status().u64("/to_office365/deleted") == 4);
}

TEST_CASE("a few deletions pass the guard without an administrator",
          "[sync][guard]") {
  sync_env env{guarded()};
  auto ids = six_synced_events(env);
  auto cal = env.crm_calendar_id();
  env.delete_event(ids[0]);
  env.delete_event(ids[1]);
  REQUIRE(crmsync::test::eventually(
      [&] { return env.o365_events(cal).size() == 4; }));
  CHECK(env.status().str("/state") == "active");
}
