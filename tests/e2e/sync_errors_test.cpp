// End-to-end: Graph's errors are classified, never dropped silently (issue
// 13 item 8, sync/errors.hpp). While Office 365 blocks a user (403
// ErrorAccessDenied, 404 MailboxNotEnabledForRESTAPI) every change is kept,
// the user's sync shows "error" with the reason, an administrator hears of
// it once (audit entry, crmsync_sync_alerts_total) and the sync recovers
// when the block ends. An event Office 365 can never accept is skipped,
// shown in the user's sync status until it is fixed, and the others sync.
#include <catch2/catch.hpp>

#include <string>

#include "tests/e2e/sync_fixture.hpp"
#include "tests/support/eventually.hpp"

using namespace crmsync::e2e;
using crmsync::test::eventually;

namespace {

std::string text_or_empty(const api_response& r, std::string_view pointer) {
  return r.is_null(pointer) ? std::string{} : r.str(pointer);
}

/// The organization's audit entries with this action.
size_t audited(sync_env& env, std::string_view action) {
  auto r = env.node().get(env.org().token, org_path(env.org().id) + "/audit");
  E2E_REQUIRE_STATUS(r, 200);
  size_t n = 0;
  for (size_t i = 0; i < r.size("/items"); ++i)
    if (r.str("/items/" + std::to_string(i) + "/action") == action)
      ++n;
  return n;
}

/// crmsync_sync_alerts_total for `reason` (0 when the series is absent).
double alerts(sync_env& env, std::string_view reason) {
  auto r = env.node().get(admin_token, "/metrics");
  E2E_REQUIRE_STATUS(r, 200);
  const std::string series
      = "crmsync_sync_alerts_total{reason=\"" + std::string{reason} + "\"} ";
  auto at = r.body.find("\n" + series);
  if (at == std::string::npos)
    return 0;
  return std::stod(r.body.substr(at + 1 + series.size()));
}

int copies_of(sync_env& env, const std::string& cal, std::string_view subject) {
  int n = 0;
  for (auto& e : env.o365_events(cal))
    n += e.subject == subject ? 1 : 0;
  return n;
}

} // namespace

TEST_CASE("while Office 365 denies access the change is kept, the sync shows "
          "error with the reason and alerts once, and it recovers",
          "[sync][errors][blocked]") {
  // A failed run is retried within a second.
  sync_env env{sync_options{1, 0, {}, {}}};
  env.enable_and_wait();
  auto cal = env.crm_calendar_id();
  env.set_faults(R"({"access_denied_rate":1})");
  auto title = "Made while access is denied";
  env.create_event(title, hours_from_now(30), hours_from_now(31));
  auto blocked = env.wait_for_status(
      [](const api_response& s) {
        return s.str("/state") == "error"
               && text_or_empty(s, "/alert") == "access_denied";
      },
      "the sync in error, blocked by access_denied");
  INFO(blocked.body);
  CHECK(blocked.u64("/outbox") == 1); // the change is kept
  CHECK(text_or_empty(blocked, "/last_error").find("403 ErrorAccessDenied")
        != std::string::npos);
  CHECK(blocked.size("/skipped") == 0); // not an event's fault
  // Retries go on (more 403s strike), and the alert is raised once.
  auto struck = env.counters().access_denied;
  REQUIRE(eventually([&] { return env.counters().access_denied >= struck + 3; },
                     std::chrono::seconds(20)));
  CHECK(audited(env, "sync.blocked") == 1);
  CHECK(alerts(env, "access_denied") == 1);
  // The admin console shows it too (crmsyncctl sync USER reads this).
  auto admin = env.node().get(admin_token, "/admin/v1/users/"
                                               + env.org().admin_id + "/sync");
  E2E_REQUIRE_STATUS(admin, 200);
  CHECK(admin.str("/state") == "error");
  CHECK(text_or_empty(admin, "/alert") == "access_denied");

  // Access is back: the kept change arrives once, the alert ends.
  env.set_faults(R"({"access_denied_rate":0})");
  env.wait_in_sync();
  auto back = env.wait_for_status(
      [](const api_response& s) {
        return s.str("/state") == "active" && s.is_null("/alert")
               && s.is_null("/last_error");
      },
      "the sync active again, without alert");
  CHECK(back.u64("/outbox") == 0);
  CHECK(copies_of(env, cal, title) == 1);
  CHECK(audited(env, "sync.recovered") == 1);
  CHECK(alerts(env, "access_denied") == 1);
}

TEST_CASE("a mailbox without Exchange Online blocks the sync, it is no "
          "deleted calendar",
          "[sync][errors][blocked]") {
  sync_env env{sync_options{1, 0, {}, {}}};
  env.enable_and_wait();
  auto cal = env.crm_calendar_id();
  // The user's licence is removed for a while: 404
  // MailboxNotEnabledForRESTAPI on every call.
  env.set_faults(R"({"mailbox_disabled_rate":1})");
  auto title = "Made without a licence";
  env.create_event(title, hours_from_now(40), hours_from_now(41));
  auto blocked = env.wait_for_status(
      [](const api_response& s) {
        return s.str("/state") == "error"
               && text_or_empty(s, "/alert") == "mailbox_not_enabled";
      },
      "the sync blocked by mailbox_not_enabled");
  INFO(blocked.body);
  CHECK(env.counters().mailbox_disabled > 0);
  CHECK(blocked.u64("/outbox") == 1);
  CHECK(blocked.str("/office365_calendar_id") != ""); // sync still on
  CHECK(alerts(env, "mailbox_not_enabled") == 1);

  env.set_faults(R"({"mailbox_disabled_rate":0})");
  env.wait_in_sync();
  CHECK(env.crm_calendar_id() == cal); // the same calendar, not a new one
  CHECK(copies_of(env, cal, title) == 1);
}

TEST_CASE("an event Office 365 can never accept is skipped and shown until "
          "it is fixed, the others sync",
          "[sync][errors][skipped]") {
  sync_env env{sync_options{1, 0, {}, {}}};
  env.enable_and_wait();
  auto cal = env.crm_calendar_id();
  env.set_faults(R"({"refuse_text":"UNSYNCABLE"})");
  env.create_event("Fine before", hours_from_now(10), hours_from_now(11));
  auto bad = env.create_event("UNSYNCABLE review", hours_from_now(12),
                              hours_from_now(13));
  env.create_event("Fine after", hours_from_now(14), hours_from_now(15));
  auto skipped = env.wait_for_status(
      [](const api_response& s) {
        return s.u64("/outbox") == 0 && s.size("/skipped") == 1;
      },
      "the refused event skipped, the outbox drained");
  INFO(skipped.body);
  CHECK(env.counters().refused_events > 0);
  CHECK(skipped.str("/state") == "active");
  CHECK(skipped.is_null("/alert"));
  CHECK(skipped.str("/skipped/0/event") == bad);
  CHECK(skipped.i64("/skipped/0/status") == 400);
  CHECK(skipped.str("/skipped/0/code") == "ErrorInvalidProperty");
  CHECK(skipped.str("/skipped/0/message") != "");
  CHECK(skipped.str("/skipped/0/at") != "");
  CHECK(copies_of(env, cal, "Fine before") == 1);
  CHECK(copies_of(env, cal, "Fine after") == 1);
  CHECK(copies_of(env, cal, "UNSYNCABLE review") == 0);
  CHECK(audited(env, "sync.blocked") == 0);

  // The CRM event is fixed: it syncs and leaves the list.
  env.patch_event(bad, R"({"title":"Reviewed"})");
  auto fixed = env.wait_for_status(
      [](const api_response& s) {
        return s.u64("/outbox") == 0 && s.size("/skipped") == 0;
      },
      "the fixed event off the skipped list");
  CHECK(fixed.str("/state") == "active");
  CHECK(copies_of(env, cal, "Reviewed") == 1);
  env.wait_in_sync();
}

TEST_CASE("the initial sync skips a refused event and counts a blocked one "
          "only once it is sent",
          "[sync][errors][initial]") {
  sync_env env{sync_options{1, 0, {}, {}}};
  for (int i = 0; i < 5; ++i)
    env.create_event("Before " + std::to_string(i), hours_from_now(2 + i),
                     hours_from_now(2.5 + i));
  env.create_event("HOLD UNSYNCABLE import", hours_from_now(20),
                   hours_from_now(21));
  env.create_event("HOLD denied for now", hours_from_now(22),
                   hours_from_now(23));
  // Two items of the $batch are denied as if the mailbox were blocked
  // (403 ErrorAccessDenied on those items only), the others go through.
  env.set_faults(R"({"refuse_text":"HOLD","refuse_status":403,)"
                 R"("refuse_code":"ErrorAccessDenied"})");
  env.set_sync(true);
  auto blocked = env.wait_for_status(
      [](const api_response& s) {
        return s.str("/state") == "error"
               && text_or_empty(s, "/alert") == "access_denied";
      },
      "the initial sync blocked by the denied event");
  INFO(blocked.body);
  // The denied events are not done, nor skipped.
  CHECK(blocked.u64("/progress/done") <= 5);
  CHECK(blocked.u64("/progress/total") == 7);
  CHECK(blocked.size("/skipped") == 0);
  // The denial is over; one of the two is refused for good.
  env.set_faults(R"({"refuse_text":"UNSYNCABLE","refuse_status":400,)"
                 R"("refuse_code":"ErrorInvalidProperty"})");
  auto active = env.wait_for_state("active");
  INFO(active.body);
  CHECK(active.u64("/progress/done") == 7);
  CHECK(active.u64("/progress/total") == 7);
  REQUIRE(active.size("/skipped") == 1);
  CHECK(active.str("/skipped/0/code") == "ErrorInvalidProperty");
  auto cal = env.crm_calendar_id();
  CHECK(copies_of(env, cal, "HOLD denied for now") == 1);
  CHECK(copies_of(env, cal, "HOLD UNSYNCABLE import") == 0);
  CHECK(copies_of(env, cal, "Before 4") == 1);
}
