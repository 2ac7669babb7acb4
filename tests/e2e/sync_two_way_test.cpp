// End-to-end: two-way calendar sync once it is active (R15): CRM changes
// reach Office 365, Outlook changes in the CRM calendar reach the CRM, no
// echo, and Graph's notification faults (duplicated, dropped), evicted
// delta tokens and removed subscriptions all end in the same state.
#include <catch2/catch.hpp>

#include <map>
#include <set>

#include "tests/e2e/sync_fixture.hpp"

using namespace crmsync::e2e;

namespace {

/// The CRM events of the admin by title; REQUIREs titles to be unique.
std::map<std::string, crm_event> by_title(sync_env& env) {
  std::map<std::string, crm_event> out;
  for (auto& e : env.crm_events()) {
    INFO("duplicate CRM event '" << e.title << "'");
    REQUIRE(out.emplace(e.title, e).second);
  }
  return out;
}

/// The events in the CRM calendar by subject; REQUIREs unique subjects.
std::map<std::string, o365_event> by_subject(sync_env& env,
                                             const std::string& cal) {
  std::map<std::string, o365_event> out;
  for (auto& e : env.o365_events(cal)) {
    INFO("duplicate Office 365 event '" << e.subject << "'");
    REQUIRE(out.emplace(e.subject, e).second);
  }
  return out;
}

/// Polls until the CRM has an event titled `title` (or none, `present`
/// false).
void wait_for_crm_title(sync_env& env, const std::string& title,
                        bool present = true) {
  bool ok = crmsync::test::eventually([&] {
    for (auto& e : env.crm_events())
      if (e.title == title)
        return present;
    return !present;
  });
  INFO("waiting for CRM event '" << title << "' to be "
                                 << (present ? "there" : "gone"));
  INFO("status " << env.status().body);
  REQUIRE(ok);
}

/// The start and end Outlook was given, by the subject the event ends with.
using given_times = std::map<std::string, std::pair<std::string, std::string>>;

/// Outlook creates, renames and deletes events in the CRM calendar; the
/// CRM follows. Returns the times of the two events that stay.
given_times outlook_round(sync_env& env, const std::string& cal,
                          const std::string& tag) {
  given_times given{
      {tag + " A", {hours_from_now(20), hours_from_now(21.5)}},
      {tag + " B renamed", {hours_from_now(22), hours_from_now(23)}}};
  auto& a_times = given.at(tag + " A");
  auto& b_times = given.at(tag + " B renamed");
  env.outlook_create(cal, tag + " A", a_times.first, a_times.second);
  auto b = env.outlook_create(cal, tag + " B", b_times.first, b_times.second);
  auto c = env.outlook_create(cal, tag + " C", hours_from_now(24),
                              hours_from_now(25));
  wait_for_crm_title(env, tag + " C");
  env.outlook_rename(b, tag + " B renamed");
  env.outlook_delete(c);
  wait_for_crm_title(env, tag + " B renamed");
  wait_for_crm_title(env, tag + " C", false);
  return given;
}

} // namespace

TEST_CASE("CRM creates, updates and deletes reach Office 365", "[sync][R15]") {
  sync_env env;
  auto kept
      = env.create_event("Before sync", hours_from_now(2), hours_from_now(3));
  env.enable_and_wait();
  auto cal = env.crm_calendar_id();

  auto a = env.create_event("New A", hours_from_now(10), hours_from_now(11));
  auto b = env.create_event("New B", hours_from_now(12), hours_from_now(13));
  env.wait_in_sync();
  CHECK(by_subject(env, cal).size() == 3);

  env.patch_event(a, "{\"title\":\"New A renamed\",\"start\":"
                         + json_str(hours_from_now(14))
                         + ",\"end\":" + json_str(hours_from_now(16)) + "}");
  env.delete_event(b);
  env.patch_event(kept, R"({"title":"Before sync renamed"})");
  env.wait_in_sync();
  auto o = by_subject(env, cal);
  CHECK(o.size() == 2);
  CHECK(o.count("New A renamed") == 1);
  CHECK(o.count("Before sync renamed") == 1);
  CHECK(o.count("New B") == 0);

  auto s = env.status();
  CHECK(s.u64("/to_office365/created") == 3);
  CHECK(s.u64("/to_office365/updated") == 2);
  CHECK(s.u64("/to_office365/deleted") == 1);
  CHECK(s.u64("/from_office365/created") == 0);
  CHECK(s.u64("/from_office365/updated") == 0);
}

TEST_CASE("Outlook creates, updates and deletes in the CRM calendar "
          "reach the CRM",
          "[sync][R15]") {
  sync_env env;
  auto mine
      = env.create_event("From CRM", hours_from_now(2), hours_from_now(3));
  env.enable_and_wait();
  auto cal = env.crm_calendar_id();
  auto other_cal = env.default_calendar_id();

  // The person's other calendar is theirs alone (R14).
  env.outlook_create(other_cal, "Private dentist", hours_from_now(4),
                     hours_from_now(5));
  auto given = outlook_round(env, cal, "Outlook");
  wait_for_crm_title(env, "Outlook A");

  // The CRM has the times the person gave in Outlook, and Outlook (read
  // through Graph) still shows them.
  {
    auto crm = by_title(env);
    auto o = by_subject(env, cal);
    for (auto& [subject, times] : given) {
      INFO(subject << " was given " << times.first << ".." << times.second);
      REQUIRE(crm.count(subject) == 1);
      REQUIRE(o.count(subject) == 1);
      CHECK(o.at(subject).start == times.first);
      CHECK(o.at(subject).end == times.second);
      CHECK(crm.at(subject).start == times.first);
      CHECK(crm.at(subject).end == times.second);
    }
  }
  env.wait_in_sync();

  auto crm = by_title(env);
  CHECK(crm.count("Private dentist") == 0);
  CHECK(crm.count("Outlook A") == 1);
  CHECK(crm.count("Outlook B renamed") == 1);
  CHECK(crm.count("Outlook C") == 0);
  CHECK(crm.size() == 3);
  CHECK(crm.at("Outlook A").origin == "office365");
  CHECK(crm.at("Outlook B renamed").origin == "office365");

  // Outlook edits the event the CRM sent, too.
  auto o = by_subject(env, cal);
  env.outlook_rename(o.at("From CRM").id, "From CRM, moved in Outlook");
  wait_for_crm_title(env, "From CRM, moved in Outlook");
  auto edited = env.get_event(mine);
  CHECK(edited.origin == "office365");
  CHECK(edited.version == 2);

  // The private event never arrives, even after a reconciliation.
  env.wait_in_sync();
  CHECK(by_title(env).count("Private dentist") == 0);
  auto s = env.status();
  CHECK(s.u64("/from_office365/created") == 3);
  CHECK(s.u64("/from_office365/updated") == 2);
  CHECK(s.u64("/from_office365/deleted") == 1);
}

TEST_CASE("changes do not echo back", "[sync][R15]") {
  sync_env env{sync_options{1, 0, {}, {}}};
  auto id = env.create_event("Echo", hours_from_now(2), hours_from_now(3));
  env.enable_and_wait();
  auto cal = env.crm_calendar_id();
  auto first = by_subject(env, cal).at("Echo");

  env.patch_event(id, R"({"title":"Echo 2"})");
  env.wait_in_sync();
  auto changed = by_subject(env, cal).at("Echo 2");
  CHECK(changed.id == first.id);
  CHECK(changed.change_key != first.change_key);
  auto last_sync = env.status().str("/last_sync");

  // Two reconciliation rounds later nothing has moved on either side.
  for (int round = 0; round < 2; ++round) {
    auto s = env.wait_for_status(
        [&](const api_response& r) {
          return !r.is_null("/last_sync") && r.str("/last_sync") != last_sync;
        },
        "another reconciliation", std::chrono::seconds(10));
    last_sync = s.str("/last_sync");
  }
  auto after = by_subject(env, cal);
  REQUIRE(after.size() == 1);
  CHECK(after.at("Echo 2").change_key == changed.change_key);
  auto e = env.get_event(id);
  CHECK(e.version == 2);
  CHECK(e.origin == "individual");
  auto s = env.status();
  CHECK(s.u64("/to_office365/updated") == 1);
  CHECK(s.u64("/from_office365/updated") == 0);
  CHECK(s.u64("/from_office365/created") == 0);

  // The same for a change made in Outlook: the CRM gets it once and does
  // not write it back.
  env.outlook_rename(changed.id, "Echo 3");
  wait_for_crm_title(env, "Echo 3");
  auto from_outlook = env.get_event(id);
  CHECK(from_outlook.version == 3);
  auto key = by_subject(env, cal).at("Echo 3").change_key;
  last_sync = env.status().str("/last_sync");
  for (int round = 0; round < 2; ++round) {
    auto r = env.wait_for_status(
        [&](const api_response& x) { return x.str("/last_sync") != last_sync; },
        "another reconciliation", std::chrono::seconds(10));
    last_sync = r.str("/last_sync");
  }
  CHECK(by_subject(env, cal).at("Echo 3").change_key == key);
  CHECK(env.get_event(id).version == 3);
  CHECK(env.status().u64("/to_office365/updated") == 1);
}

TEST_CASE("duplicated notifications change nothing", "[sync][R15]") {
  sync_env env;
  env.create_event("CRM 1", hours_from_now(2), hours_from_now(3));
  env.enable_and_wait();
  auto cal = env.crm_calendar_id();
  auto before = env.counters();
  env.set_faults(R"({"duplicate_notifications":1})");

  outlook_round(env, cal, "Dup");
  env.create_event("CRM 2", hours_from_now(6), hours_from_now(7));

  // The fault struck: each of Outlook's five changes was notified twice,
  // and both copies of every duplicated one reached the node.
  emulator_counters now;
  bool delivered = crmsync::test::eventually([&] {
    now = env.counters();
    auto duplicated
        = now.duplicated_notifications - before.duplicated_notifications;
    return duplicated >= 5
           && now.delivered_notifications - before.delivered_notifications
                  >= 2 * duplicated;
  });
  INFO("duplicated " << now.duplicated_notifications
                            - before.duplicated_notifications
                     << ", delivered "
                     << now.delivered_notifications
                            - before.delivered_notifications);
  REQUIRE(delivered);

  env.wait_in_sync();
  auto crm = by_title(env); // REQUIREs no duplicates
  CHECK(crm.size() == 4);
  auto s = env.status();
  CHECK(s.u64("/from_office365/created") == 3);
  CHECK(s.u64("/from_office365/deleted") == 1);
}

TEST_CASE("dropped notifications are caught by reconciliation", "[sync][R15]") {
  sync_env env{sync_options{2, 0, {}, {}}};
  env.create_event("CRM 1", hours_from_now(2), hours_from_now(3));
  env.enable_and_wait();
  auto cal = env.crm_calendar_id();
  auto x = env.outlook_create(cal, "Dropped X", hours_from_now(10),
                              hours_from_now(11));
  auto y = env.outlook_create(cal, "Dropped Y", hours_from_now(12),
                              hours_from_now(13));
  env.wait_in_sync();
  // A reconciliation round first, so that no notification of the set-up
  // is still on its way (one would bring the changes below in itself).
  env.wait_for_runs(env.org().token, env.org().admin_id, 1);

  // From now on Graph loses every notification.
  auto before = env.counters();
  env.set_faults(R"({"drop_notifications":1})");
  env.outlook_create(cal, "Dropped Z", hours_from_now(14), hours_from_now(15));
  env.outlook_rename(x, "Dropped X renamed");
  env.outlook_delete(y);
  // The three notifications were lost (the emulator counts them).
  CHECK(env.counters().dropped_notifications - before.dropped_notifications
        >= 3);
  // Nothing else happens on either side: only the user's reconciliation
  // reminder (every 2 s here) can bring these changes in.
  env.wait_in_sync();
  auto crm = by_title(env);
  CHECK(crm.size() == 3);
  CHECK(crm.count("Dropped X renamed") == 1);
  CHECK(crm.count("Dropped Y") == 0);
  CHECK(crm.count("Dropped Z") == 1);
}

TEST_CASE("an evicted delta token still converges without duplicates",
          "[sync][R15]") {
  sync_env env;
  for (int i = 0; i < 12; ++i)
    env.create_event("Initial " + std::to_string(i), hours_from_now(2 + i),
                     hours_from_now(3 + i));
  env.enable_and_wait();
  auto cal = env.crm_calendar_id();
  env.outlook_create(cal, "Before eviction", hours_from_now(30),
                     hours_from_now(31));
  wait_for_crm_title(env, "Before eviction");

  auto evicted
      = env.o365().emulator().post("", "/_emulator/evict-delta-tokens", "{}");
  E2E_REQUIRE_STATUS(evicted, 200);
  outlook_round(env, cal, "After eviction");
  env.wait_in_sync();
  auto crm = by_title(env); // REQUIREs no duplicates
  CHECK(crm.size() == 12 + 1 + 2);
  CHECK(by_subject(env, cal).size() == crm.size());
  CHECK(env.status().u64("/from_office365/created") == 4);
}

TEST_CASE("a removed subscription is replaced and changes still flow",
          "[sync][R15]") {
  sync_env env;
  env.create_event("CRM 1", hours_from_now(2), hours_from_now(3));
  auto active = env.enable_and_wait();
  auto cal = env.crm_calendar_id();
  auto old_sub = active.str("/subscription_id");

  auto r = env.o365().emulator().post(
      "", "/_emulator/subscriptions/" + old_sub + "/lifecycle",
      R"({"lifecycleEvent":"subscriptionRemoved"})");
  E2E_REQUIRE_STATUS(r, 202);
  auto renewed = env.wait_for_status(
      [&](const api_response& s) {
        return !s.is_null("/subscription_id")
               && s.str("/subscription_id") != old_sub;
      },
      "a new subscription");
  CHECK(renewed.str("/state") == "active");

  // Reconciliation is every 300 s here: only the new subscription's
  // notifications can bring these in time.
  outlook_round(env, cal, "New sub");
  env.create_event("CRM 2", hours_from_now(6), hours_from_now(7));
  env.wait_in_sync();
  CHECK(by_title(env).size() == 4);
}

TEST_CASE("a missed lifecycle notification makes it read the "
          "changes",
          "[sync][R15]") {
  sync_env env;
  auto active = env.enable_and_wait();
  auto cal = env.crm_calendar_id();
  // Graph could not deliver: the change is there, its notification is not.
  env.set_faults(R"({"drop_notifications":1})");
  env.outlook_create(cal, "Unnoticed", hours_from_now(5), hours_from_now(6));
  env.set_faults(R"({"drop_notifications":0})");
  auto r = env.o365().emulator().post("",
                                      "/_emulator/subscriptions/"
                                          + active.str("/subscription_id")
                                          + "/lifecycle",
                                      R"({"lifecycleEvent":"missed"})");
  E2E_REQUIRE_STATUS(r, 202);
  wait_for_crm_title(env, "Unnoticed");
  env.wait_in_sync();
}
