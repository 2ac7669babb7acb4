// End-to-end: Office 365 offboarding (issue 14). A person deleted in Office
// 365 (graph-emulator's DELETE /_emulator/users/{id}) has their CRM user
// deactivated by the sync, with the reason in the audit log under the actor
// "sync"; the administrators are e-mailed once; the user's events stay and
// an administrator can then delete the user.
#include <catch2/catch.hpp>

#include "tests/e2e/sync_fixture.hpp"

using namespace crmsync::e2e;
using crmsync::test::eventually;

namespace {

/// The audit entries of `org` with this action, as "actor|detail".
std::vector<std::string> audit_of(sync_env& env, std::string_view action) {
  auto r = env.node().get(env.org().token,
                          "/api/v1/orgs/" + env.org().id + "/audit");
  E2E_REQUIRE_STATUS(r, 200);
  std::vector<std::string> out;
  for (size_t i = 0; i < r.size("/items"); ++i) {
    auto at = "/items/" + std::to_string(i);
    if (r.str(at + "/action") == action)
      out.push_back(r.str(at + "/actor") + "|" + r.str(at + "/detail"));
  }
  return out;
}

} // namespace

TEST_CASE("a person deleted in Office 365 is deactivated in the CRM and the "
          "administrators are told once",
          "[sync][lifecycle][offboarding]") {
  sync_env env{sync_options{1, 0, {}, {}}};
  auto bob = env.join("bob@contoso.com");
  auto bob_path = user_path(env.org().id, bob.id);
  expect_status(env.node().post(bob.token,
                                user_events_path(env.org().id, bob.id),
                                event_body("Bob's own", hours_from_now(6),
                                           hours_from_now(7))),
                201);
  E2E_REQUIRE_STATUS(env.put_sync(bob.token, bob.id, true), 200);
  env.wait_for_status_of(
      bob.token, bob.id,
      [](const api_response& s) {
        return s.str("/state") == "active" && s.u64("/outbox") == 0;
      },
      "Bob's sync active");
  // The deactivation notices the administrator sent. (Counting all of
  // the administrator's mail raced with the join's own e-mails, still on
  // their way when the count was taken.)
  auto notices = [&] {
    size_t n = 0;
    for (const auto& m : env.o365().mail_sent_by("admin@contoso.com"))
      if (m.subject.find("was deactivated") != std::string::npos) {
        CHECK(m.to == "admin@contoso.com");
        ++n;
      }
    return n;
  };
  REQUIRE(notices() == 0);

  // Bob leaves the company: Office 365 deletes him and his mailbox.
  auto gone = env.o365().emulator().del("", "/_emulator/users/" + bob.oid);
  E2E_REQUIRE_STATUS(gone, 204);
  // A change of his wakes his sync (reconciliation would too).
  expect_status(env.node().post(env.org().token,
                                user_events_path(env.org().id, bob.id),
                                event_body("After he left", hours_from_now(8),
                                           hours_from_now(9))),
                201);
  REQUIRE(eventually(
      [&] {
        auto u = env.node().get(env.org().token, bob_path);
        return u.status == 200 && !u.boolean("/active");
      },
      std::chrono::seconds(30)));
  // His token stops; the audit log names the sync and the reason.
  CHECK(env.node().get(bob.token, bob_path).status == 401);
  auto entries = audit_of(env, "user.deactivated");
  REQUIRE(entries.size() == 1);
  INFO(entries[0]);
  CHECK(entries[0].rfind("sync|bob@contoso.com", 0) == 0);
  CHECK(entries[0].find("Office 365 mailbox") != std::string::npos);
  // The administrator (the only one) is e-mailed.
  REQUIRE(eventually([&] { return notices() >= 1; }, std::chrono::seconds(30)));
  CHECK(notices() == 1);
  // More failing runs of his sync do not tell anyone again.
  env.wait_for_status_of(
      env.org().token, bob.id,
      [](const api_response& s) { return s.str("/state") != "active"; },
      "Bob's sync no longer active");
  CHECK(audit_of(env, "user.deactivated").size() == 1);
  CHECK(notices() == 1);
  // His events stay; an administrator can delete him now.
  auto events
      = env.node().get(env.org().token, user_events_path(env.org().id, bob.id));
  E2E_REQUIRE_STATUS(events, 200);
  CHECK(events.body.find("Bob's own") != std::string::npos);
  REQUIRE(eventually(
      [&] { return env.node().del(env.org().token, bob_path).status == 200; }));
  CHECK(env.node().get(env.org().token, bob_path).status == 404);
}
