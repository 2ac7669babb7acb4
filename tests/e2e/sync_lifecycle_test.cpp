// End-to-end: deactivating a user (issue 14) against real processes: the
// user's calendar sync turns off as a disable does (R20: the CRM calendar
// leaves Office 365, the CRM events stay), their tokens stop at once and an
// Office 365 sign-in is refused until an administrator reactivates them.
#include <catch2/catch.hpp>

#include "tests/e2e/sync_fixture.hpp"

using namespace crmsync::e2e;

TEST_CASE("deactivating a user turns their sync off and refuses their "
          "sign-in until reactivated",
          "[sync][R20][lifecycle]") {
  sync_env env{sync_options{1, 0, {}, {}}};
  auto bob = env.join("bob@contoso.com");
  auto bob_path = user_path(env.org().id, bob.id);
  expect_status(env.node().post(bob.token,
                                user_events_path(env.org().id, bob.id),
                                event_body("Bob's own", hours_from_now(6),
                                           hours_from_now(7))),
                201);
  auto on = env.put_sync(bob.token, bob.id, true);
  E2E_REQUIRE_STATUS(on, 200);
  env.wait_for_status_of(
      bob.token, bob.id,
      [](const api_response& s) {
        return s.str("/state") == "active" && s.u64("/outbox") == 0;
      },
      "Bob's sync active");
  REQUIRE_FALSE(env.crm_calendar_id(bob.oid).empty());

  auto off = env.node().post(env.org().token, bob_path + "/deactivate", "");
  E2E_REQUIRE_STATUS(off, 200);
  CHECK_FALSE(off.boolean("/active"));
  // Bob's token stops at once.
  CHECK(env.node().get(bob.token, bob_path).status == 401);
  // R20: his CRM calendar leaves Office 365; his CRM event stays.
  env.wait_for_status_of(
      env.org().token, bob.id,
      [](const api_response& s) { return s.str("/state") == "disabled"; },
      "Bob's sync turned off by the deactivation");
  CHECK(env.crm_calendar_id(bob.oid).empty());
  auto events
      = env.node().get(env.org().token, user_events_path(env.org().id, bob.id));
  E2E_REQUIRE_STATUS(events, 200);
  CHECK(events.body.find("Bob's own") != std::string::npos);
  // Signing in with Office 365 is refused, and says why.
  auto refused = env.o365().sign_in("/o365/signin", "bob@contoso.com");
  INFO(refused.answer.describe());
  CHECK(refused.answer.status == 403);
  CHECK(refused.answer.error_code() == "user_deactivated");
  CHECK(refused.token.empty());

  // Reactivated, Bob signs in again and his new token works; his sync
  // stays off until he turns it on.
  auto back = env.node().post(env.org().token, bob_path + "/activate", "");
  E2E_REQUIRE_STATUS(back, 200);
  auto again = env.o365().sign_in("/o365/signin", "bob@contoso.com");
  INFO(again.answer.describe());
  REQUIRE_FALSE(again.token.empty());
  CHECK(env.node().get(again.token, bob_path).status == 200);
  CHECK(env.node().get(bob.token, bob_path).status == 401);
  CHECK(env.status_of(env.org().token, bob.id).str("/state") == "disabled");
}
