// End-to-end: a user's own API tokens (issue 14, user lifecycle). Listed
// without secrets, made with a name and an expiry (the secret shown once),
// revoked one by one and only by their owner; a made token stops at its
// expiry, and so does a token issued by an Office 365 sign-in once
// --session-ttl has passed. Deactivation revokes made tokens too.
#include <catch2/catch.hpp>

#include <chrono>

#include "common/time_format.hpp"
#include "tests/e2e/office365_fixture.hpp"
#include "tests/support/eventually.hpp"

using namespace crmsync::e2e;
using crmsync::test::eventually;

namespace {

constexpr const char* tokens = "/api/v1/me/tokens";

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

struct acme_token_users : acme_fixture {
  user_info carol = create_user(api, org.admin_token, org.id,
                                "carol@acme.example", "Carol");
  user_info mark = create_user(api, org.admin_token, org.id,
                               "mark@acme.example", "Mark", "standard", true);

  std::string self_path(const std::string& id) {
    return user_path(org.id, id);
  }

  /// Makes a token for `owner`; REQUIREs 201.
  api_response make(const std::string& owner, std::string_view body) {
    auto r = api.post(owner, tokens, body);
    E2E_REQUIRE_STATUS(r, 201);
    return r;
  }
};

} // namespace

TEST_CASE_METHOD(acme_token_users,
                 "tokens: list, make, use and revoke the caller's own",
                 "[e2e][lifecycle][tokens]") {
  auto listed = api.get(carol.token, tokens);
  E2E_REQUIRE_STATUS(listed, 200);
  REQUIRE(listed.size("/items") == 1);
  CHECK(listed.str("/items/0/kind") == "account");
  CHECK(listed.boolean("/items/0/current"));
  CHECK(listed.is_null("/items/0/expires_at"));
  auto made = make(carol.token, R"({"name":"ci","expires_in_days":30})");
  auto secret = made.str("/token");
  auto id = made.str("/id");
  CHECK(made.str("/name") == "ci");
  CHECK(made.str("/kind") == "api");
  CHECK_FALSE(made.is_null("/expires_at"));
  // The new token is Carol's.
  auto me = api.get(secret, self_path("me"));
  E2E_REQUIRE_STATUS(me, 200);
  CHECK(me.str("/email") == "carol@acme.example");
  // Listed without any secret or hash.
  auto both = api.get(secret, tokens);
  E2E_REQUIRE_STATUS(both, 200);
  REQUIRE(both.size("/items") == 2);
  CHECK(both.str("/items/1/id") == id);
  CHECK(both.boolean("/items/1/current"));
  CHECK_FALSE(both.boolean("/items/0/current"));
  CHECK(both.body.find(secret.substr(36)) == std::string::npos);
  CHECK(both.body.find("hash") == std::string::npos);
  // Revoked: that token stops, the account token goes on.
  auto revoked = api.del(carol.token, std::string{tokens} + "/" + id);
  E2E_REQUIRE_STATUS(revoked, 200);
  CHECK(revoked.str("/id") == id);
  auto after = api.get(secret, self_path("me"));
  INFO(after.describe());
  CHECK(after.status == 401);
  CHECK(api.get(carol.token, self_path("me")).status == 200);
  auto audit = api.get(org.admin_token, org_path(org.id) + "/audit");
  CHECK(audit.body.find("token.created") != std::string::npos);
  CHECK(audit.body.find("token.revoked") != std::string::npos);
  // Revoking the account token signs its holder out.
  auto account_id = listed.str("/items/0/id");
  E2E_REQUIRE_STATUS(
      api.del(carol.token, std::string{tokens} + "/" + account_id), 200);
  CHECK(api.get(carol.token, self_path("me")).status == 401);
}

TEST_CASE_METHOD(acme_token_users, "tokens: a made token stops at its expiry",
                 "[e2e][lifecycle][tokens]") {
  auto at = crmsync::format_rfc3339(now_ms() + 2000);
  auto made
      = make(carol.token, R"({"name":"short","expires_at":")" + at + R"("})");
  CHECK(made.str("/expires_at") == at);
  auto secret = made.str("/token");
  CHECK(eventually(
      [&] { return api.get(secret, self_path("me")).status == 401; }));
  // The account token is not touched.
  CHECK(api.get(carol.token, self_path("me")).status == 200);
}

TEST_CASE_METHOD(acme_token_users, "tokens: only their owner reaches them",
                 "[e2e][lifecycle][tokens][authz]") {
  auto made = make(carol.token, R"({"name":"ci","expires_in_days":1})");
  auto id = made.str("/id");
  auto secret = made.str("/token");
  // A user manager, an administrator, another organization: none finds it.
  for (auto* other : {&mark.token, &org.admin_token}) {
    auto r = api.del(*other, std::string{tokens} + "/" + id);
    INFO(r.describe());
    CHECK(r.status == 404);
  }
  auto globex = create_org(api, "Globex", "boss@globex.example");
  CHECK(api.del(globex.admin_token, std::string{tokens} + "/" + id).status
        == 404);
  // Their own lists do not show it.
  auto marks = api.get(mark.token, tokens);
  E2E_REQUIRE_STATUS(marks, 200);
  CHECK(marks.body.find(id) == std::string::npos);
  // The service admin has no tokens of its own; no token is a 401.
  auto admin = api.get(admin_token, tokens);
  INFO(admin.describe());
  CHECK(admin.status == 400);
  CHECK(api.get("", tokens).status == 401);
  CHECK(api.post("crm_forged", tokens, R"({"name":"x","expires_in_days":1})")
            .status
        == 401);
  CHECK(api.get(secret, self_path("me")).status == 200);
}

TEST_CASE_METHOD(acme_token_users, "tokens: bad requests are refused",
                 "[e2e][lifecycle][tokens]") {
  auto refused = [&](std::string_view body, std::string_view code) {
    auto r = api.post(carol.token, tokens, body);
    INFO(r.describe());
    CHECK(r.status == 400);
    CHECK(r.error_code() == code);
  };
  refused(R"({"expires_in_days":1})", "missing_field");
  refused(R"({"name":"ci"})", "missing_field");
  refused(R"({"name":"ci","expires_in_days":0})", "invalid_field");
  refused(R"({"name":"ci","expires_in_days":400})", "invalid_field");
  refused(R"({"name":"ci","expires_at":"2020-01-01T00:00:00Z"})",
          "invalid_field");
  refused(R"({"name":"ci","expires_at":"2999-01-01T00:00:00Z"})",
          "invalid_field");
  refused(R"({"name":"ci","expires_in_days":1,"expires_at":"x"})",
          "invalid_field");
  refused(R"({"name":"ci","expires_in_days":1,"scope":"all"})",
          "unknown_field");
  refused(R"({"name":"","expires_in_days":1})", "invalid_field");
  auto listed = api.get(carol.token, tokens);
  E2E_REQUIRE_STATUS(listed, 200);
  CHECK(listed.size("/items") == 1);
  auto unknown
      = api.del(carol.token, std::string{tokens} + "/0123456789abcdef");
  CHECK(unknown.status == 404);
}

TEST_CASE_METHOD(acme_token_users,
                 "tokens: deactivation revokes made tokens for good",
                 "[e2e][lifecycle][tokens]") {
  auto made = make(carol.token, R"({"name":"ci","expires_in_days":1})");
  auto secret = made.str("/token");
  E2E_REQUIRE_STATUS(
      api.post(org.admin_token, self_path(carol.id) + "/deactivate", ""), 200);
  CHECK(api.get(secret, self_path("me")).status == 401);
  E2E_REQUIRE_STATUS(
      api.post(org.admin_token, self_path(carol.id) + "/activate", ""), 200);
  CHECK(api.get(secret, self_path("me")).status == 401);
}

TEST_CASE("tokens: a sign-in token is listed with the session lifetime",
          "[e2e][lifecycle][tokens][office365]") {
  office365_env env;
  auto installed = env.install("admin@contoso.com");
  auto listed = env.node().get(installed.token, tokens);
  E2E_REQUIRE_STATUS(listed, 200);
  REQUIRE(listed.size("/items") == 1);
  CHECK(listed.str("/items/0/kind") == "signin");
  auto created = crmsync::parse_rfc3339_ms(listed.str("/items/0/created_at"));
  auto expires = crmsync::parse_rfc3339_ms(listed.str("/items/0/expires_at"));
  REQUIRE(created);
  REQUIRE(expires);
  // The default --session-ttl: 30 days.
  CHECK(*expires - *created == int64_t{30} * 24 * 3600 * 1000);
}

TEST_CASE("tokens: a sign-in token expires after --session-ttl",
          "[e2e][lifecycle][tokens][office365]") {
  office365_env::options o;
  o.node_args = {"--session-ttl", "2"};
  office365_env env{o};
  auto installed = env.install("admin@contoso.com");
  auto me = user_path(installed.answer.str("/organization/id"), "me");
  CHECK(eventually(
      [&] { return env.node().get(installed.token, me).status == 401; }));
  // Signing in again gives a new token, listed with the short lifetime.
  auto again = env.sign_in("/o365/signin", "admin@contoso.com");
  E2E_REQUIRE_STATUS(again.answer, 200);
  REQUIRE_FALSE(again.token.empty());
  auto listed = env.node().get(again.token, tokens);
  if (listed.status == 200) {
    auto n = listed.size("/items");
    REQUIRE(n >= 1);
    auto last = "/items/" + std::to_string(n - 1);
    auto created = crmsync::parse_rfc3339_ms(listed.str(last + "/created_at"));
    auto expires = crmsync::parse_rfc3339_ms(listed.str(last + "/expires_at"));
    REQUIRE(created);
    REQUIRE(expires);
    CHECK(*expires - *created == 2000);
  }
  CHECK(eventually(
      [&] { return env.node().get(again.token, me).status == 401; }));
}

TEST_CASE("tokens: the token of an accepted invitation or an approved join "
          "request expires after --session-ttl",
          "[e2e][lifecycle][tokens][office365]") {
  office365_env::options o;
  o.node_args = {"--session-ttl", "4"};
  office365_env env{o};
  auto org = env.install_paid();
  // The installer's sign-in token ends soon too: a made token carries on.
  auto made = env.node().post(org.token, tokens,
                              R"({"name":"setup","expires_in_days":1})");
  E2E_REQUIRE_STATUS(made, 201);
  auto admin = made.str("/token");

  // Bob accepts an invitation: his answer's token is a sign-in token.
  auto sent = env.invite(admin, org.id, {env.o365_id("bob@contoso.com")});
  E2E_REQUIRE_STATUS(sent, 201);
  auto mail = env.wait_for_mail("admin@contoso.com", 1);
  REQUIRE(mail.size() == 1);
  auto invite = invite_token_in(mail[0], env.public_url());
  auto bob = env.session_of("bob@contoso.com");
  auto accepted = env.node().post(bob, "/api/v1/invites/" + invite + "/accept",
                                  R"({"accept_terms":true})");
  E2E_REQUIRE_STATUS(accepted, 201);
  auto bob_token = accepted.str("/user/token");
  auto me = user_path(org.id, "me");
  CHECK(env.node().get(bob_token, me).status == 200);
  auto bob_tokens = env.node().get(bob_token, tokens);
  E2E_REQUIRE_STATUS(bob_tokens, 200);
  REQUIRE(bob_tokens.size("/items") == 1);
  CHECK(bob_tokens.str("/items/0/kind") == "signin");
  CHECK_FALSE(bob_tokens.is_null("/items/0/expires_at"));

  // Carol's join request is approved: the token made with her user (never
  // shown to anyone) is listed as a sign-in token that ends, not as an
  // account token that never does.
  auto carol = env.session_of("carol@contoso.com");
  auto asked = env.node().post(carol, "/api/v1/join-requests", "{}");
  E2E_REQUIRE_STATUS(asked, 201);
  auto approved = env.node().post(admin,
                                  "/api/v1/orgs/" + org.id + "/join-requests/"
                                      + asked.str("/id") + "/approve",
                                  "{}");
  E2E_REQUIRE_STATUS(approved, 200);
  auto carol_in = env.sign_in("/o365/signin", "carol@contoso.com");
  E2E_REQUIRE_STATUS(carol_in.answer, 200);
  auto carol_tokens = env.node().get(carol_in.token, tokens);
  E2E_REQUIRE_STATUS(carol_tokens, 200);
  REQUIRE(carol_tokens.size("/items") == 2);
  for (size_t i = 0; i < 2; ++i) {
    auto item = "/items/" + std::to_string(i);
    INFO(carol_tokens.describe());
    CHECK(carol_tokens.str(item + "/kind") == "signin");
    CHECK_FALSE(carol_tokens.is_null(item + "/expires_at"));
  }

  // Bob's token stops once --session-ttl has passed.
  CHECK(eventually([&] { return env.node().get(bob_token, me).status == 401; },
                   std::chrono::seconds(20)));
  CHECK(env.node().get(admin, org_path(org.id)).status == 200);
}
