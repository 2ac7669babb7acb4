// End-to-end: "New User" for someone without Office 365 (issue 14). A user
// made without a password is e-mailed a link to set one (and the creator
// is answered the same link); the link sets it once, until it expires, and
// the password then proves the account.
#include <catch2/catch.hpp>

#include <chrono>
#include <thread>

#include "tests/e2e/office365_fixture.hpp"

using namespace crmsync::e2e;

namespace {

/// "/password-setup/TOKEN" of a full link.
std::string setup_target(const std::string& url) {
  return split_url(url).target;
}

} // namespace

TEST_CASE("a user made without a password is e-mailed a link to set one",
          "[e2e][lifecycle][password]") {
  office365_env env;
  auto org = env.install_paid();
  auto dana
      = create_user(env.node(), org.token, org.id, "dana@crm.example", "Dana");
  CHECK_FALSE(dana.created.boolean("/has_password"));
  auto url = dana.created.str("/password_setup_url");
  REQUIRE(url.rfind(env.public_url() + "/password-setup/pws_", 0) == 0);
  // The e-mail goes out from the creator's mailbox with the same link.
  auto mail = env.wait_for_mail("admin@contoso.com", 1);
  REQUIRE(mail.size() == 1);
  CHECK(mail[0].to == "dana@crm.example");
  CHECK(mail[0].html.find(url) != std::string::npos);
  auto target = setup_target(url);

  // Bad passwords and links change nothing.
  auto weak = env.node().post("", target, R"({"password":"short"})");
  E2E_REQUIRE_STATUS(weak, 400);
  auto forged
      = env.node().post("", target.substr(0, target.size() - 4) + "AAAA",
                        R"({"password":"dana-password-1"})");
  E2E_REQUIRE_STATUS(forged, 404);
  CHECK(forged.error_code() == "setup_not_found");
  // An API token is not a password link, even the user's own.
  auto api_token = env.node().post("", "/password-setup/" + dana.token,
                                   R"({"password":"dana-password-1"})");
  E2E_REQUIRE_STATUS(api_token, 404);
  auto still = env.node().get(org.token, user_path(org.id, dana.id));
  CHECK_FALSE(still.boolean("/has_password"));

  auto set = env.node().post("", target, R"({"password":"dana-password-1"})");
  E2E_REQUIRE_STATUS(set, 200);
  CHECK(set.boolean("/has_password"));
  CHECK_FALSE(set.has("/token"));
  // Single use.
  auto again = env.node().post("", target, R"({"password":"other-password"})");
  E2E_REQUIRE_STATUS(again, 404);
  CHECK(again.error_code() == "setup_not_found");
  // The password proves the account: Bob's Office 365 sign-in associates
  // with it (the first password, not the refused second one).
  auto session = env.session_of("bob@contoso.com");
  auto wrong = env.node().post(
      session, "/o365/associate",
      R"({"email":"dana@crm.example","password":"other-password"})");
  CHECK(wrong.status == 401);
  auto linked = env.node().post(
      session, "/o365/associate",
      R"({"email":"dana@crm.example","password":"dana-password-1"})");
  E2E_REQUIRE_STATUS(linked, 200);
  CHECK(linked.str("/user/id") == dana.id);
  auto audit = env.audit_actions(org.id, org.token);
  CHECK(count_of(audit, "user.password_invited") == 1);
  CHECK(count_of(audit, "user.password_set") == 1);
}

TEST_CASE("a password link stops at its expiry", "[e2e][lifecycle][password]") {
  test_node node{{"--password-setup-lifetime", "1"}};
  auto& api = node.api();
  auto org = create_org(api, "Acme", "admin@acme.example");
  auto dana
      = create_user(api, org.admin_token, org.id, "dana@acme.example", "Dana");
  auto url = dana.created.str("/password_setup_url");
  REQUIRE_FALSE(url.empty());
  // With a password, no link.
  auto with = create_user(api, org.admin_token, org.id, "ed@acme.example", "Ed",
                          "standard", false, "ed-password-1");
  CHECK_FALSE(with.created.has("/password_setup_url"));
  // The link works for one second: wait until it has certainly passed.
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  auto late
      = api.post("", setup_target(url), R"({"password":"dana-password-1"})");
  E2E_REQUIRE_STATUS(late, 410);
  CHECK(late.error_code() == "setup_expired");
  auto after = api.get(org.admin_token, user_path(org.id, dana.id));
  CHECK_FALSE(after.boolean("/has_password"));
}
