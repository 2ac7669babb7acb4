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

constexpr const char* browser_accept
    = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";

api_response browser_get(api_client& api, const std::string& target) {
  return api.request("GET", target, "", {}, "", {{"Accept", browser_accept}});
}

api_response form_post(api_client& api, const std::string& target,
                       const std::string& form) {
  return api.request("POST", target, "", form,
                     "application/x-www-form-urlencoded",
                     {{"Accept", browser_accept}});
}

bool is_page(const api_response& r) {
  return r.header("Content-Type").rfind("text/html", 0) == 0;
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
  // Dana is signed in: a sign-in token of hers, which ends like one.
  auto token = set.str("/token");
  auto mine = env.node().get(token, "/api/v1/me/tokens");
  E2E_REQUIRE_STATUS(mine, 200);
  REQUIRE(mine.size("/items") >= 1);
  bool signin = false;
  for (size_t i = 0; i < mine.size("/items"); ++i) {
    auto item = "/items/" + std::to_string(i);
    if (mine.boolean(item + "/current"))
      signin = mine.str(item + "/kind") == "signin"
               && !mine.is_null(item + "/expires_at");
  }
  CHECK(signin);
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
  // A browser: a 410 page that says so, with no form; its form refused.
  auto page = browser_get(api, setup_target(url));
  CHECK(page.status == 410);
  CHECK(is_page(page));
  CHECK(page.body.find("has expired") != std::string::npos);
  CHECK(page.body.find("<form") == std::string::npos);
  CHECK(form_post(api, setup_target(url),
                  "password=dana-password-1&confirm=dana-password-1")
            .status
        == 410);
  auto after = api.get(org.admin_token, user_path(org.id, dana.id));
  CHECK_FALSE(after.boolean("/has_password"));
}

TEST_CASE("a browser sets a first password on the link's page",
          "[e2e][lifecycle][password][pages]") {
  test_node node;
  auto& api = node.api();
  auto org = create_org(api, "Acme", "admin@acme.example");
  auto dana
      = create_user(api, org.admin_token, org.id, "dana@acme.example", "Dana");
  auto target = setup_target(dana.created.str("/password_setup_url"));

  // The page: a form for Dana, under the pages' strict policy.
  auto form = browser_get(api, target);
  E2E_REQUIRE_STATUS(form, 200);
  CHECK(is_page(form));
  CHECK(form.body.find("dana@acme.example") != std::string::npos);
  CHECK(form.body.find("name=\"confirm\"") != std::string::npos);
  CHECK(form.header("Content-Security-Policy").find("default-src 'none'")
        != std::string::npos);
  // Programs still get JSON from the same address.
  CHECK(api.get("", target).has("/how"));

  // Weak, mismatched, missing: 400 pages with the form again; nothing set.
  for (auto body : {"password=short&confirm=short",
                    "password=dana-password-1&confirm=dana-password-2",
                    "password=dana-password-1"}) {
    auto refused = form_post(api, target, body);
    INFO(body << " -> " << refused.describe());
    CHECK(refused.status == 400);
    CHECK(is_page(refused));
    CHECK(refused.body.find("Set my password") != std::string::npos);
  }
  CHECK(form_post(api, target, "password=short&confirm=short")
            .body.find("at least 8 characters")
        != std::string::npos);
  CHECK(
      form_post(api, target, "password=dana-password-1&confirm=dana-password-2")
          .body.find("password_mismatch")
      != std::string::npos);
  CHECK_FALSE(api.get(org.admin_token, user_path(org.id, dana.id))
                  .boolean("/has_password"));

  // Forged and broken links: 404 pages, no form.
  for (auto bad : {target.substr(0, target.size() - 4) + "AAAA",
                   std::string{"/password-setup/not-a-token"}}) {
    auto page = browser_get(api, bad);
    INFO(bad << " -> " << page.describe());
    CHECK(page.status == 404);
    CHECK(is_page(page));
    CHECK(page.body.find("<form") == std::string::npos);
    CHECK(
        form_post(api, bad, "password=dana-password-1&confirm=dana-password-1")
            .status
        == 404);
  }

  // Set: a page that signs Dana in with a token of hers.
  auto done = form_post(api, target,
                        "password=dana-password-1&confirm=dana-password-1");
  E2E_REQUIRE_STATUS(done, 200);
  CHECK(is_page(done));
  CHECK(done.body.find("Your password is set") != std::string::npos);
  auto at = done.body.find("<code>crm_");
  REQUIRE(at != std::string::npos);
  auto token = done.body.substr(at + 6, done.body.find('<', at + 6) - at - 6);
  auto me = api.get(token, user_path(org.id, "me"));
  E2E_REQUIRE_STATUS(me, 200);
  CHECK(me.str("/email") == "dana@acme.example");
  CHECK(me.boolean("/has_password"));
  // Used: the link's page says so, and a second form post changes nothing.
  auto used = browser_get(api, target);
  CHECK(used.status == 404);
  CHECK(used.body.find("<form") == std::string::npos);
  CHECK(form_post(api, target, "password=other-password&confirm=other-password")
            .status
        == 404);
}
