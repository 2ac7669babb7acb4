// End-to-end: an event changed on both sides since the last sync is a
// conflict. The organization's policy decides (default: the later change
// wins); the losing version is kept in the conflict log that crmsyncctl
// lists (GET /admin/v1/orgs/{org}/conflicts).
#include <catch2/catch.hpp>

#include <string>
#include <thread>

#include "tests/e2e/sync_fixture.hpp"
#include "tests/support/eventually.hpp"

using namespace crmsync::e2e;

namespace {

/// The one Office 365 event of the CRM calendar.
o365_event only_event(sync_env& env, const std::string& cal) {
  auto all = env.o365_events(cal);
  REQUIRE(all.size() == 1);
  return all.front();
}

api_response conflicts(sync_env& env) {
  auto r = env.node().get(admin_token,
                          "/admin/v1/orgs/" + env.org().id + "/conflicts");
  E2E_REQUIRE_STATUS(r, 200);
  return r;
}

/// Changes the calendar's one event on both sides (sync_env::edit_both_sides).
void edit_both_sides(sync_env& env, const std::string& cal,
                     const std::string& crm_id, const std::string& outlook,
                     const std::string& crm) {
  env.edit_both_sides(only_event(env, cal).id, crm_id, outlook, crm);
}

} // namespace

TEST_CASE("a conflict goes to the later change and is logged",
          "[sync][conflicts]") {
  sync_env env{sync_options{300, 0, {}, {}}};
  auto id = env.create_event("Base", hours_from_now(5), hours_from_now(6));
  env.enable_and_wait();
  auto cal = env.crm_calendar_id();
  CHECK(conflicts(env).size("/items") == 0);

  edit_both_sides(env, cal, id, "Outlook edit", "CRM edit");
  REQUIRE(crmsync::test::eventually(
      [&] { return only_event(env, cal).subject == "CRM edit"; }));
  // Outlook shows the winner before the run has stored its conflict record
  // (with the outbox entry it settles): the log is read once that is done.
  env.wait_in_sync();
  CHECK(env.get_event(id).title == "CRM edit");
  auto log = conflicts(env);
  REQUIRE(log.size("/items") == 1);
  CHECK(log.str("/items/0/winner") == "crm");
  CHECK(log.str("/items/0/policy") == "latest");
  CHECK(log.str("/items/0/event") == id);
  CHECK(log.str("/items/0/kept").find("CRM edit") != std::string::npos);
  CHECK(log.str("/items/0/lost").find("Outlook edit") != std::string::npos);

  // With the policy "office365", Outlook's version wins although the
  // CRM's change came later; the CRM takes it.
  auto policy
      = env.node().patch(env.org().token, "/api/v1/orgs/" + env.org().id,
                         R"({"conflict_policy":"office365"})");
  E2E_REQUIRE_STATUS(policy, 200);
  CHECK(policy.str("/conflict_policy") == "office365");
  edit_both_sides(env, cal, id, "Outlook again", "CRM again");
  REQUIRE(crmsync::test::eventually(
      [&] { return env.get_event(id).title == "Outlook again"; }));
  env.wait_in_sync();
  CHECK(only_event(env, cal).subject == "Outlook again");
  CHECK(env.get_event(id).origin == "office365");
  log = conflicts(env);
  REQUIRE(log.size("/items") == 2);
  CHECK(log.str("/items/0/winner") == "office365"); // newest first
  CHECK(log.str("/items/0/policy") == "office365");
  CHECK(log.str("/items/0/lost").find("CRM again") != std::string::npos);

  env.set_faults(R"({"drop_notifications":0})");
  env.wait_in_sync();
}

TEST_CASE("the conflict policy is validated and needs an administrator",
          "[sync][conflicts]") {
  sync_env env{sync_options{300, 0, {}, {}}};
  auto path = "/api/v1/orgs/" + env.org().id;
  auto bad = env.node().patch(env.org().token, path,
                              R"({"conflict_policy":"coin_flip"})");
  E2E_REQUIRE_STATUS(bad, 400);
  CHECK(bad.error_field() == "conflict_policy");
  auto org = env.node().get(env.org().token, path);
  E2E_REQUIRE_STATUS(org, 200);
  CHECK(org.str("/conflict_policy") == "latest");

  // Neither a standard user nor one who may manage users (but is no
  // administrator) may change it; the policy stays.
  auto standard = create_user(env.node(), env.org().token, env.org().id,
                              "dora@contoso.com", "Dora");
  auto manager = create_user(env.node(), env.org().token, env.org().id,
                             "mia@contoso.com", "Mia", "standard", true);
  for (auto* who : {&standard, &manager}) {
    INFO("as " << who->email);
    auto refused = env.node().patch(who->token, path,
                                    R"({"conflict_policy":"office365"})");
    E2E_REQUIRE_STATUS(refused, 403);
    CHECK(refused.error_code() == "forbidden");
  }
  org = env.node().get(env.org().token, path);
  E2E_REQUIRE_STATUS(org, 200);
  CHECK(org.str("/conflict_policy") == "latest");

  // An administrator may.
  auto changed
      = env.node().patch(env.org().token, path, R"({"conflict_policy":"crm"})");
  E2E_REQUIRE_STATUS(changed, 200);
  CHECK(changed.str("/conflict_policy") == "crm");
}
