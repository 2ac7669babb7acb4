// End-to-end: calendar sync across node restarts and crashes, and under
// Graph throttling: whatever happens, every event arrives exactly once.
#include <catch2/catch.hpp>

#include <string>

#include "tests/e2e/sync_fixture.hpp"

using namespace crmsync::e2e;

namespace {

/// `n` CRM events for the admin, "Bulk 000".. one hour apart from now on.
void create_many(sync_env& env, int n) {
  for (int i = 0; i < n; ++i) {
    char title[16];
    std::snprintf(title, sizeof(title), "Bulk %03d", i);
    env.create_event(title, hours_from_now(1 + i), hours_from_now(1.5 + i));
  }
}

/// Waits until the initial sync has sent some but not all of `total`.
api_response wait_mid_initial_sync(sync_env& env, uint64_t total) {
  return env.wait_for_status(
      [&](const api_response& s) {
        return s.str("/state") == "initial_sync"
               && s.u64("/progress/done") >= 20
               && s.u64("/progress/done") < total;
      },
      "the middle of the initial sync");
}

} // namespace

/// Outlook's per-mailbox window, small enough that an initial sync of a
/// few hundred events takes seconds (crmsync waits out the 429s).
sync_options slow_mailbox() {
  sync_options o;
  o.reconcile_interval_s = 2;
  o.emulator_args = {"--mailbox-limit", "60", "--mailbox-window", "1"};
  return o;
}

TEST_CASE("a restart in the middle of the initial sync sends every "
          "event once",
          "[sync][R13][restart]") {
  sync_env env{slow_mailbox()};
  create_many(env, 300);
  env.set_sync(true);
  auto mid = wait_mid_initial_sync(env, 300);
  INFO("stopped at " << mid.body);
  env.restart_node();

  auto active = env.wait_for_status(
      [](const api_response& s) {
        return s.str("/state") == "active" && s.u64("/outbox") == 0;
      },
      "active after the restart", std::chrono::seconds(60));
  CHECK(active.u64("/progress/total") == 300);
  CHECK(active.u64("/progress/done") == 300);
  auto cal = env.crm_calendar_id();
  CHECK(env.o365_events(cal).size() == 300);
  env.wait_in_sync();
}

TEST_CASE("SIGTERM interrupts an initial sync instead of waiting for "
          "all of it",
          "[sync][R13][restart]") {
  // engine.hpp: stop() lets runs "finish their current Graph call"; a
  // whole initial sync (up to 5000 events, under Outlook's throttling) must
  // not hold a shutdown up.
  sync_env env{slow_mailbox()};
  create_many(env, 200);
  env.set_sync(true);
  wait_mid_initial_sync(env, 200);
  env.restart_node();
  auto after = env.status();
  INFO("right after the restart: " << after.body);
  CHECK(after.u64("/progress/done") < 200);
  CHECK(after.is_null("/last_error"));
  env.wait_for_state("active", std::chrono::seconds(30));
  env.wait_in_sync();
}

TEST_CASE("a crash in the middle of the initial sync sends every event "
          "once",
          "[sync][R13][restart]") {
  sync_env env{slow_mailbox()};
  create_many(env, 200);
  env.set_sync(true);
  auto mid = wait_mid_initial_sync(env, 200);
  INFO("killed at " << mid.body);
  env.kill9_and_start();

  auto active = env.wait_for_status(
      [](const api_response& s) {
        return s.str("/state") == "active" && s.u64("/outbox") == 0;
      },
      "active after the crash", std::chrono::seconds(60));
  CHECK(active.u64("/progress/done") == 200);
  // transactionId makes a batch sent again create nothing new.
  CHECK(env.o365_events(env.crm_calendar_id()).size() == 200);
  env.wait_in_sync();
}

TEST_CASE("the initial sync completes when Graph is slow",
          "[sync][R13][latency]") {
  sync_env env{sync_options{2, 0, {}, {}}};
  create_many(env, 30);
  env.set_faults(R"({"latency_ms":20})");
  auto active = env.enable_and_wait(std::chrono::seconds(15));
  CHECK(active.u64("/progress/done") == 30);
  env.wait_in_sync();
}

TEST_CASE("enabling is retried after Graph failed for a while",
          "[sync][R13][retry]") {
  sync_env env{sync_options{1, 0, {}, {}}};
  create_many(env, 3);
  // Graph answers 503 to everything: enabling cannot even create the
  // calendar, whatever crmsync retries.
  env.set_faults(R"({"error_rate":1})");
  env.set_sync(true);
  auto failed = env.wait_for_status(
      [](const api_response& s) { return !s.is_null("/last_error"); },
      "the first failure", std::chrono::seconds(30));
  INFO("failed with " << failed.body);
  CHECK(env.counters().errors > 0); // Graph's 503s are what failed it
  CHECK(failed.is_null("/office365_calendar_id"));
  env.set_faults(R"({"error_rate":0})");
  // Graph is back: with reconciliation every second, sync gets there on
  // its own, without the user asking again.
  env.wait_for_status(
      [](const api_response& s) { return s.str("/state") == "active"; },
      "active once Graph is back", std::chrono::seconds(10));
  env.wait_in_sync();
}

TEST_CASE("an initial sync that failed half way is resumed",
          "[sync][R13][retry]") {
  sync_env env{slow_mailbox()};
  create_many(env, 150);
  env.set_sync(true);
  wait_mid_initial_sync(env, 150);
  auto before = env.counters();
  env.set_faults(R"({"error_rate":1})");
  auto failed = env.wait_for_status(
      [](const api_response& s) { return !s.is_null("/last_error"); },
      "the initial sync to fail", std::chrono::seconds(30));
  INFO("failed with " << failed.body);
  // The failure struck in the middle: Graph answered 503, and the
  // initial sync stopped with part of the events sent.
  CHECK(env.counters().errors > before.errors);
  CHECK(failed.str("/state") == "initial_sync");
  CHECK(failed.u64("/progress/total") == 150);
  CHECK(failed.u64("/progress/done") >= 20);
  CHECK(failed.u64("/progress/done") < 150);
  env.set_faults(R"({"error_rate":0})");
  env.wait_for_status(
      [](const api_response& s) { return s.str("/state") == "active"; },
      "active once Graph is back", std::chrono::seconds(15));
  CHECK(env.o365_events(env.crm_calendar_id()).size() == 150);
  env.wait_in_sync();
}

TEST_CASE("CRM changes queued at a crash all arrive exactly once",
          "[sync][R15][restart]") {
  sync_env env{sync_options{2, 0, {}, {}}};
  std::vector<std::string> ids;
  for (int i = 0; i < 6; ++i)
    ids.push_back(env.create_event("Old " + std::to_string(i),
                                   hours_from_now(2 + i),
                                   hours_from_now(3 + i)));
  env.enable_and_wait();
  env.wait_in_sync();

  // Graph slows down, so that changes pile up in the outbox.
  env.set_faults(R"({"latency_ms":150})");
  for (int i = 0; i < 15; ++i)
    env.create_event("Queued " + std::to_string(i), hours_from_now(20 + i),
                     hours_from_now(21 + i));
  for (int i = 0; i < 3; ++i)
    env.patch_event(ids[i],
                    "{\"title\":\"Old " + std::to_string(i) + " renamed\"}");
  env.delete_event(ids[3]);
  env.delete_event(ids[4]);
  auto queued = env.status();
  INFO("killed at " << queued.body);
  CHECK(queued.u64("/outbox") > 0);
  env.kill9_and_start();
  env.set_faults(R"({"latency_ms":0})");

  env.wait_in_sync();
  auto crm = env.crm_events();
  CHECK(crm.size() == 6 - 2 + 15);
  CHECK(env.o365_events(env.crm_calendar_id()).size() == crm.size());
  CHECK(env.status().str("/state") == "active");
}

TEST_CASE("a storm of 429s during sync still converges",
          "[sync][R15][throttle]") {
  sync_env env{sync_options{2, 0, {}, {}}};
  create_many(env, 40);
  env.set_faults(R"({"throttle_rate":0.3})");
  env.enable_and_wait(std::chrono::seconds(60));
  auto cal = env.crm_calendar_id();
  CHECK(env.o365_events(cal).size() == 40);

  // Both sides keep changing while Graph throttles.
  auto events = env.crm_events();
  for (int i = 0; i < 5; ++i)
    env.patch_event(events[i].id,
                    "{\"title\":\"Throttled " + std::to_string(i) + "\"}");
  env.delete_event(events[5].id);
  env.create_event("Throttled new", hours_from_now(100), hours_from_now(101));
  env.outlook_create(cal, "Outlook while throttled", hours_from_now(200),
                     hours_from_now(201));
  env.wait_in_sync(not_imported, std::chrono::seconds(60));
  env.set_faults(R"({"throttle_rate":0})");
  env.wait_in_sync();
  CHECK(env.crm_events().size() == 40 - 1 + 1 + 1);
}

TEST_CASE("a change made while Office 365 denies access waits for it and "
          "arrives once",
          "[sync][R15][retry]") {
  sync_env env{sync_options{1, 0, {}, {}}};
  env.enable_and_wait();
  auto cal = env.crm_calendar_id();
  // An administrator blocks the app's access to mailboxes for a while:
  // every Graph call answers 403 ErrorAccessDenied.
  env.set_faults(R"({"access_denied_rate":1})");
  env.create_event("Made while denied", hours_from_now(30), hours_from_now(31));
  auto denied = env.wait_for_status(
      [](const api_response& s) {
        return !s.is_null("/last_error") && s.u64("/outbox") >= 1;
      },
      "the change kept while Graph denies access");
  INFO(denied.body);
  CHECK(env.counters().access_denied > 0); // the 403s really struck
  CHECK(denied.str("/last_error").find("403") != std::string::npos);
  // Access is back: the kept change is sent, once.
  env.set_faults(R"({"access_denied_rate":0})");
  env.wait_in_sync();
  int copies = 0;
  for (auto& e : env.o365_events(cal))
    copies += e.subject == "Made while denied" ? 1 : 0;
  CHECK(copies == 1);
}
