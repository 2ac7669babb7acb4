// End-to-end: enabling calendar sync and its initial sync (R13, R14,
// R16-R19), disabling it (R20) and the CRM calendar deleted in Outlook
// (R21), against a real graph-emulator.
#include <catch2/catch.hpp>

#include <algorithm>
#include <set>

#include "tests/e2e/sync_fixture.hpp"

using namespace crmsync::e2e;

namespace {

std::set<std::string> subjects(const std::vector<o365_event>& events) {
  std::set<std::string> out;
  for (auto& e : events)
    out.insert(e.subject);
  return out;
}

std::set<std::string> titles(const std::vector<crm_event>& events) {
  std::set<std::string> out;
  for (auto& e : events)
    out.insert(e.title);
  return out;
}

/// The subjects in the admin's CRM calendar in the order Office 365 got
/// them: the emulator lists a calendar's events in the order they were
/// created, and their createdDateTime never goes back.
std::vector<std::string> arrival_order(sync_env& env) {
  auto events = env.o365_events(env.crm_calendar_id());
  std::vector<std::string> out;
  for (size_t i = 0; i < events.size(); ++i) {
    if (i > 0)
      CHECK(events[i - 1].created <= events[i].created);
    out.push_back(events[i].subject);
  }
  return out;
}

/// `m` turns their own sync on with their own token and waits until it is
/// active with its subscription.
api_response enable_own_sync(sync_env& env, const member& m) {
  auto on = env.put_sync(m.token, m.id, true);
  E2E_REQUIRE_STATUS(on, 200);
  CHECK(on.str("/state") == "enabling");
  return env.wait_for_status_of(
      m.token, m.id,
      [](const api_response& s) {
        return s.str("/state") == "active" && s.u64("/outbox") == 0
               && !s.is_null("/subscription_id");
      },
      "the member's sync active with a subscription");
}

/// The audit log's sync.disabled entries of the organization: who (the
/// actor up to its first space, e.g. "user:ID" or "sync") and what it says.
std::vector<std::pair<std::string, std::string>> sync_disabled(sync_env& env) {
  auto audit = env.node().get(env.org().token,
                              "/api/v1/orgs/" + env.org().id + "/audit");
  E2E_REQUIRE_STATUS(audit, 200);
  std::vector<std::pair<std::string, std::string>> out;
  for (size_t i = 0; i < audit.size("/items"); ++i) {
    auto base = "/items/" + std::to_string(i);
    if (audit.str(base + "/action") != "sync.disabled")
      continue;
    auto actor = audit.str(base + "/actor");
    out.emplace_back(actor.substr(0, actor.find(' ')),
                     audit.str(base + "/detail"));
  }
  return out;
}

std::vector<std::string> sync_disabled_actors(sync_env& env) {
  std::vector<std::string> out;
  for (auto& [actor, detail] : sync_disabled(env))
    out.push_back(actor);
  return out;
}

std::string sync_disabled_details(sync_env& env) {
  std::string out;
  for (auto& [actor, detail] : sync_disabled(env))
    out += detail + "\n";
  return out;
}

} // namespace

TEST_CASE("enabling creates the CRM calendar and sends the user's "
          "events",
          "[sync][R13][R14]") {
  sync_env env;
  for (int i = 0; i < 25; ++i)
    env.create_event("Meeting " + std::to_string(i), hours_from_now(24 + i),
                     hours_from_now(25 + i));
  env.create_event("Last week", hours_from_now(-24 * 7),
                   hours_from_now(-24 * 7 + 1));
  auto before = env.calendar_names();
  CHECK(std::count(before.begin(), before.end(), "CRM") == 0);
  CHECK(env.status().str("/state") == "disabled");

  auto active = env.enable_and_wait();
  CHECK(active.u64("/progress/total") == 26);
  CHECK(active.u64("/progress/done") == 26);
  CHECK(active.is_null("/last_error"));
  CHECK(active.u64("/to_office365/created") == 26);
  CHECK(active.u64("/from_office365/created") == 0);

  // R14: one calendar named after the product, holding the events; the
  // user's other calendars get nothing.
  auto cal = env.crm_calendar_id();
  REQUIRE_FALSE(cal.empty());
  CHECK(active.str("/office365_calendar_id") == cal);
  CHECK(env.o365_events(env.default_calendar_id()).empty());
  CHECK(env.o365_events(cal).size() == 26);
  env.wait_in_sync();

  // Enabling again changes nothing: no second calendar, no new events.
  CHECK(env.set_sync(true).str("/state") == "active");
  env.wait_for_state("active");
  env.crm_calendar_id(); // REQUIREs a single "CRM" calendar
  CHECK(env.o365_events(cal).size() == 26);
}

TEST_CASE("a user who never signed in with Office 365 cannot enable "
          "sync",
          "[sync][R13]") {
  sync_env env;
  auto plain = create_user(env.node(), env.org().token, env.org().id,
                           "dora@acme.example", "Dora");
  auto r = env.node().put(plain.token,
                          user_path(env.org().id, plain.id) + "/calendar-sync",
                          R"({"enabled":true})");
  E2E_REQUIRE_STATUS(r, 409);
  CHECK(r.error_code() == "office365_not_linked");
}

TEST_CASE("a user turns on their own sync with their own token, a "
          "standard user cannot change someone else's",
          "[sync][R13][R4]") {
  sync_env env{sync_options{1, 0, {}, {}}};
  auto bob = env.join("bob@contoso.com");
  expect_status(env.node().post(bob.token,
                                user_events_path(env.org().id, bob.id),
                                event_body("Bob's own", hours_from_now(6),
                                           hours_from_now(7))),
                201);
  env.create_event("The admin's", hours_from_now(8), hours_from_now(9));

  // Bob, a standard user, turns on his own sync: his calendar, his events.
  auto active = enable_own_sync(env, bob);
  CHECK(active.u64("/to_office365/created") == 1);
  auto bob_cal = env.crm_calendar_id(bob.oid);
  REQUIRE_FALSE(bob_cal.empty());
  CHECK(subjects(env.o365_events(bob_cal, bob.oid))
        == std::set<std::string>{"Bob's own"});
  CHECK(env.status().str("/state") == "disabled");
  CHECK(env.crm_calendar_id().empty());

  // He may not turn on the admin's sync...
  auto on = env.put_sync(bob.token, env.org().admin_id, true);
  E2E_REQUIRE_STATUS(on, 403);
  CHECK(on.error_code() == "forbidden");
  // ... nor turn it off once the admin has turned it on.
  env.enable_and_wait();
  auto cal = env.crm_calendar_id();
  REQUIRE_FALSE(cal.empty());
  auto off = env.put_sync(bob.token, env.org().admin_id, false);
  E2E_REQUIRE_STATUS(off, 403);
  CHECK(off.error_code() == "forbidden");
  // Two reconciliation rounds later the admin's sync is still on.
  env.wait_for_runs(env.org().token, env.org().admin_id, 2);
  CHECK(env.status().str("/state") == "active");
  CHECK(env.crm_calendar_id() == cal);

  // An administrator may change Bob's.
  auto bob_off = env.put_sync(env.org().token, bob.id, false);
  E2E_REQUIRE_STATUS(bob_off, 200);
  env.wait_for_status_of(
      bob.token, bob.id,
      [](const api_response& s) { return s.str("/state") == "disabled"; },
      "Bob's sync turned off by the admin");
  CHECK(env.crm_calendar_id(bob.oid).empty());
}

TEST_CASE("only the user's own events are sent", "[sync][R16]") {
  sync_env env;
  auto other = create_user(env.node(), env.org().token, env.org().id,
                           "erin@contoso.com", "Erin");
  // Erin's events, created by Erin and by the admin for her.
  create_event(
      env.node(), env.org().id, other,
      event_body("Erin's own", hours_from_now(30), hours_from_now(31)));
  create_event(env.node(), env.org().token, env.org().id, other.id,
               event_body("For Erin", hours_from_now(40), hours_from_now(41)));
  env.create_event("Mine 1", hours_from_now(30), hours_from_now(31));
  env.create_event("Mine 2", hours_from_now(-30), hours_from_now(-29));

  auto active = env.enable_and_wait();
  CHECK(active.u64("/progress/total") == 2);
  CHECK(active.u64("/progress/done") == 2);
  auto cal = env.crm_calendar_id();
  CHECK(subjects(env.o365_events(cal))
        == std::set<std::string>{"Mine 1", "Mine 2"});
  env.wait_in_sync();

  // Later changes to Erin's events stay out too.
  auto theirs = create_event(
      env.node(), env.org().id, other,
      event_body("Erin's later", hours_from_now(50), hours_from_now(51)));
  env.create_event("Mine 3", hours_from_now(50), hours_from_now(51));
  env.wait_in_sync();
  CHECK(subjects(env.o365_events(cal)).count("Erin's later") == 0);
  CHECK(env.crm_events(other.id).size() == 3);
}

TEST_CASE("the initial sync sends at most --max-initial-events: the "
          "earliest future events, by start",
          "[sync][R17][R18]") {
  sync_env env{sync_options{1, 5, {}, {}}};
  // Eight future and four past events, created in no order of time.
  for (int h : {90, 3, 400, -2, 27, 150, -30, 12, 5, -7, 60, -200})
    env.create_event("at " + std::to_string(h) + "h", hours_from_now(h),
                     hours_from_now(h + 1));
  auto active = env.enable_and_wait();
  CHECK(active.u64("/progress/total") == 5);
  CHECK(active.u64("/progress/done") == 5);
  CHECK(active.u64("/to_office365/created") == 5);
  CHECK(arrival_order(env)
        == std::vector<std::string>{"at 3h", "at 5h", "at 12h", "at 27h",
                                    "at 60h"});
  // The others never follow: two reconciliation rounds later it is still
  // those five.
  env.wait_for_runs(env.org().token, env.org().admin_id, 2);
  CHECK(env.o365_events(env.crm_calendar_id()).size() == 5);
}

TEST_CASE("the initial sync sends future events by start, then past "
          "ones by most recent end",
          "[sync][R18]") {
  sync_env env{sync_options{300, 5, {}, {}}};
  // Created out of order on purpose; the hours say where each one is.
  env.create_event("future +200h", hours_from_now(200), hours_from_now(201));
  env.create_event("past -100h", hours_from_now(-101), hours_from_now(-100));
  env.create_event("future +5h", hours_from_now(5), hours_from_now(6));
  env.create_event("past -3h", hours_from_now(-5), hours_from_now(-3));
  env.create_event("future +50h", hours_from_now(50), hours_from_now(51));
  // Started long ago, ended most recently of the past ones.
  env.create_event("past long -1h", hours_from_now(-300), hours_from_now(-1));
  env.create_event("past -50h", hours_from_now(-51), hours_from_now(-50));
  env.create_event("future +500h", hours_from_now(500), hours_from_now(501));

  auto active = env.enable_and_wait();
  CHECK(active.u64("/progress/total") == 5);
  // Four future events, then the past one that ended most recently.
  CHECK(arrival_order(env)
        == std::vector<std::string>{"future +5h", "future +50h", "future +200h",
                                    "future +500h", "past long -1h"});
}

TEST_CASE("the initial sync fills the limit with past events when "
          "there are few future ones",
          "[sync][R18]") {
  sync_env env{sync_options{300, 5, {}, {}}};
  env.create_event("future +5h", hours_from_now(5), hours_from_now(6));
  env.create_event("past -2h", hours_from_now(-3), hours_from_now(-2));
  env.create_event("past -10h", hours_from_now(-11), hours_from_now(-10));
  env.create_event("past -20h", hours_from_now(-21), hours_from_now(-20));
  env.create_event("past -30h", hours_from_now(-31), hours_from_now(-30));
  env.create_event("past -40h", hours_from_now(-41), hours_from_now(-40));
  env.create_event("past -400h", hours_from_now(-401), hours_from_now(-400));
  env.create_event("past -1h", hours_from_now(-25), hours_from_now(-1));
  env.enable_and_wait();
  // The past ones by end, however long ago they started.
  CHECK(arrival_order(env)
        == std::vector<std::string>{"future +5h", "past -1h", "past -2h",
                                    "past -10h", "past -20h"});
}

TEST_CASE("imported events are not synced until edited or mass "
          "updated",
          "[sync][R19]") {
  sync_env env;
  auto imported = env.import_events(
      {event_body("Imported A", hours_from_now(10), hours_from_now(11)),
       event_body("Imported B", hours_from_now(20), hours_from_now(21)),
       event_body("Imported C", hours_from_now(30), hours_from_now(31)),
       event_body("Imported D", hours_from_now(40), hours_from_now(41))});
  REQUIRE(imported.size() == 4);
  env.create_event("Individual", hours_from_now(5), hours_from_now(6));

  auto active = env.enable_and_wait();
  CHECK(active.u64("/progress/total") == 1);
  auto cal = env.crm_calendar_id();
  CHECK(subjects(env.o365_events(cal)) == std::set<std::string>{"Individual"});
  env.wait_in_sync(); // imported ones are not expected

  // Importing while sync is on sends nothing either.
  env.import_events(
      {event_body("Imported E", hours_from_now(50), hours_from_now(51))});
  env.create_event("Marker 1", hours_from_now(7), hours_from_now(8));
  env.wait_in_sync();
  CHECK(subjects(env.o365_events(cal)).count("Imported E") == 0);

  // An individual edit makes an imported event synced.
  auto edited
      = env.patch_event(imported[0], R"({"title":"Imported A edited"})");
  CHECK(edited.str("/origin") != "imported");
  // A mass update makes the ones it touches synced.
  auto mass = env.node().post(
      env.org().token, "/api/v1/orgs/" + env.org().id + "/events/mass-update",
      "{\"ids\":[" + json_str(imported[1]) + "," + json_str(imported[2])
          + "],\"set\":{\"location\":\"Room 1\"}}");
  E2E_REQUIRE_STATUS(mass, 200);
  env.wait_in_sync();
  CHECK(subjects(env.o365_events(cal))
        == std::set<std::string>{"Individual", "Marker 1", "Imported A edited",
                                 "Imported B", "Imported C"});
  CHECK(env.get_event(imported[1]).origin == "mass_update");
  CHECK(env.get_event(imported[3]).origin == "imported");
}

TEST_CASE("disabling deletes the CRM calendar and keeps CRM events",
          "[sync][R20]") {
  sync_env env{sync_options{1, 0, {}, {}}};
  // Bob's sync runs every reconciliation round: his runs show that the
  // rounds happen while the admin's sync is off.
  auto bob = env.join("bob@contoso.com");
  enable_own_sync(env, bob);
  for (int i = 0; i < 6; ++i)
    env.create_event("Keep " + std::to_string(i), hours_from_now(3 + i),
                     hours_from_now(4 + i));
  env.enable_and_wait();
  auto cal = env.crm_calendar_id();
  REQUIRE_FALSE(cal.empty());
  auto outlook = env.outlook_create(cal, "From Outlook", hours_from_now(70),
                                    hours_from_now(71));
  (void)outlook;
  env.wait_in_sync();
  auto before = env.crm_events();
  REQUIRE(before.size() == 7);

  auto r = env.set_sync(false);
  CHECK((r.str("/state") == "disabling" || r.str("/state") == "disabled"));
  auto off = env.wait_for_state("disabled");
  CHECK(off.is_null("/office365_calendar_id"));
  CHECK(off.is_null("/subscription_id"));
  // The audit log names who turned it off: the user, not the sync.
  CHECK(sync_disabled_actors(env)
        == std::vector<std::string>{"user:" + env.org().admin_id});
  CHECK(off.is_null("/last_error"));
  CHECK(env.crm_calendar_id().empty());

  // CRM events are intact: same ids, titles, times and versions.
  auto after = env.crm_events();
  REQUIRE(after.size() == before.size());
  for (size_t i = 0; i < after.size(); ++i) {
    CHECK(after[i].id == before[i].id);
    CHECK(after[i].title == before[i].title);
    CHECK(after[i].start == before[i].start);
    CHECK(after[i].version == before[i].version);
  }
  // Changes made while sync is off go nowhere, however many rounds pass:
  // nothing queued, nothing sent, no calendar.
  env.create_event("While off", hours_from_now(90), hours_from_now(91));
  env.wait_for_runs(bob.token, bob.id, 2);
  auto still = env.status();
  CHECK(still.str("/state") == "disabled");
  CHECK(still.u64("/outbox") == 0);
  CHECK(still.u64("/to_office365/created") == off.u64("/to_office365/created"));
  CHECK(env.crm_calendar_id().empty());
}

TEST_CASE("deleting the CRM calendar in Outlook disables sync", "[sync][R21]") {
  sync_env env{sync_options{1, 0, {}, {}}};
  // Bob's runs show the reconciliation rounds (as for R20).
  auto bob = env.join("bob@contoso.com");
  enable_own_sync(env, bob);
  for (int i = 0; i < 4; ++i)
    env.create_event("Stay " + std::to_string(i), hours_from_now(3 + i),
                     hours_from_now(4 + i));
  env.enable_and_wait();
  auto cal = env.crm_calendar_id();
  REQUIRE_FALSE(cal.empty());
  auto before = env.crm_events();

  auto gone = env.o365().emulator().del("", "/_emulator/users/" + env.oid()
                                                + "/calendars/" + cal);
  E2E_REQUIRE_STATUS(gone, 204);
  auto off = env.wait_for_state("disabled");
  REQUIRE_FALSE(off.is_null("/last_error"));
  CHECK_THAT(off.str("/last_error"), Catch::Contains("deleted"));
  CHECK(off.is_null("/office365_calendar_id"));
  CHECK(off.is_null("/subscription_id"));
  // The audit log says the sync turned it off, and why: not the service
  // administrator, whose authority the sync uses.
  CHECK(sync_disabled_actors(env) == std::vector<std::string>{"sync"});
  CHECK_THAT(sync_disabled_details(env),
             Catch::Contains("calendar was deleted in Office 365"));

  // CRM events stay, untouched.
  auto after = env.crm_events();
  REQUIRE(after.size() == before.size());
  CHECK(titles(after) == titles(before));
  for (size_t i = 0; i < after.size(); ++i)
    CHECK(after[i].version == before[i].version);
  // And nothing comes back in Outlook, however many rounds pass.
  env.create_event("After deletion", hours_from_now(9), hours_from_now(10));
  env.wait_for_runs(bob.token, bob.id, 2);
  auto still = env.status();
  CHECK(still.str("/state") == "disabled");
  CHECK(still.u64("/outbox") == 0);
  CHECK(still.u64("/to_office365/created") == off.u64("/to_office365/created"));
  CHECK(env.crm_calendar_id().empty());

  // The user can turn it on again: a new calendar with every event.
  env.enable_and_wait();
  auto again = env.crm_calendar_id();
  CHECK(again != cal);
  env.wait_in_sync();
  CHECK(env.o365_events(again).size() == 5);
}
