// Sign-in through graph::client: the authorize and admin-consent URLs, and
// redeem_code's id_token checks (RS256 signature against the tenant's
// JWKS, issuer, audience, expiry, nonce) against the emulator's identity
// platform; tampered tokens through the verifier (graph/jwt_verify.hpp).
#include <catch2/catch.hpp>

#include <simdjson.h>

#include <map>
#include <string>

#include "common/crypto.hpp"
#include "graph/client.hpp"
#include "graph/jwt_verify.hpp"
#include "http/url.hpp"
#include "tests/graph/fixture.hpp"

using namespace crmsync;
using graph_test::emulator;
using namespace std::chrono_literals;

namespace {

const std::string redirect = "https://crm.example/auth/callback?from=o365";

/// A raw id_token for this user, straight from the token endpoint.
std::string raw_id_token(emulator& e, graph::client& c,
                         std::string_view login_hint) {
  auto code = graph_test::sign_in(e, c, login_hint, redirect, "nonce-1");
  auto form = "grant_type=authorization_code&client_id="
              + http::percent_encode(emulator::client_id) + "&client_secret="
              + http::percent_encode(emulator::client_secret)
              + "&code=" + http::percent_encode(code)
              + "&redirect_uri=" + http::percent_encode(redirect);
  auto r = e.send("POST", "/organizations/oauth2/v2.0/token", form);
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  std::string_view token;
  INFO(r.body);
  REQUIRE(r.status == 200);
  REQUIRE_FALSE(parser.parse(r.body).get(root));
  REQUIRE_FALSE(root["id_token"].get_string().get(token));
  return std::string{token};
}

} // namespace

TEST_CASE("authorize_url and admin_consent_url are percent-encoded") {
  graph::config cfg;
  cfg.client_id = "app id/1";
  graph::client c{cfg};
  CHECK(c.authorize_url("https://crm.example/cb?x=1&y=2", "s t", "n+1")
        == "https://login.microsoftonline.com/organizations/oauth2/v2.0/"
           "authorize?client_id=app%20id%2F1&response_type=code&redirect_uri="
           "https%3A%2F%2Fcrm.example%2Fcb%3Fx%3D1%26y%3D2&response_mode=query"
           "&scope=openid%20profile%20email&state=s%20t&nonce=n%2B1");
  CHECK(c.admin_consent_url("contoso.example", "https://crm.example/consent",
                            "st&1")
        == "https://login.microsoftonline.com/contoso.example/adminconsent?"
           "client_id=app%20id%2F1&state=st%261&redirect_uri=https%3A%2F%2F"
           "crm.example%2Fconsent");
}

TEST_CASE("the admin-consent URL works at the emulator for an administrator") {
  emulator e;
  graph::client c{e.config()};
  auto link = c.admin_consent_url(emulator::contoso, redirect, "consent-1")
              + "&login_hint=admin%40contoso.example";
  REQUIRE(link.rfind(e.origin(), 0) == 0);
  auto r = e.send("GET", link.substr(e.origin().size()));
  REQUIRE(r.status == 302);
  auto location = r.header("Location");
  CHECK(location.find("admin_consent=True") != std::string::npos);
  CHECK(location.find("state=consent-1") != std::string::npos);
}

TEST_CASE("redeem_code verifies an administrator's id_token") {
  emulator e;
  graph::client c{e.config()};
  auto code = graph_test::sign_in(e, c, "admin@contoso.example", redirect,
                                  "nonce-admin");
  graph::identity who;
  graph::error err;
  INFO(err.describe());
  REQUIRE(c.redeem_code(code, redirect, "nonce-admin", who, err));
  CHECK(who.tenant_id == emulator::contoso_id);
  CHECK(who.object_id == emulator::admin_id);
  CHECK(who.preferred_username == "admin@contoso.example");
  CHECK(who.email == "admin@contoso.example");
  CHECK(who.name == "Ada Admin");
  CHECK(who.is_global_admin);
}

TEST_CASE("redeem_code verifies a member's id_token: not a global admin") {
  emulator e;
  graph::client c{e.config()};
  auto code = graph_test::sign_in(e, c, "alex@contoso.example", redirect,
                                  "nonce-alex");
  graph::identity who;
  graph::error err;
  INFO(err.describe());
  REQUIRE(c.redeem_code(code, redirect, "nonce-alex", who, err));
  CHECK(who.object_id == e.alex_id);
  CHECK(who.preferred_username == "alex@contoso.example");
  CHECK_FALSE(who.is_global_admin);
  // The keys are cached per tenant: a second sign-in fetches none.
  auto before = c.stats().requests;
  code = graph_test::sign_in(e, c, "bob@contoso.example", redirect, "n2");
  REQUIRE(c.redeem_code(code, redirect, "n2", who, err));
  CHECK(who.object_id == e.bob_id);
  CHECK(c.stats().requests == before + 1);
}

TEST_CASE("an id_token with another nonce is refused") {
  emulator e;
  graph::client c{e.config()};
  auto code = graph_test::sign_in(e, c, "alex@contoso.example", redirect,
                                  "nonce-sent");
  graph::identity who;
  graph::error err;
  REQUIRE_FALSE(c.redeem_code(code, redirect, "nonce-expected", who, err));
  CHECK(err.code == "invalid_id_token");
  CHECK(err.message.find("nonce") != std::string::npos);
  CHECK(who.object_id.empty());
}

TEST_CASE("an expired id_token is refused") {
  emulator e;
  auto cfg = e.config();
  // The client's clock runs 2 h ahead: the token (1 h) is long expired.
  auto emulator_clock = e.clock();
  cfg.now_ms = [emulator_clock] {
    return emulator_clock() + 2 * 3600 * 1000;
  };
  graph::client c{cfg};
  auto code
      = graph_test::sign_in(e, c, "alex@contoso.example", redirect, "n-exp");
  graph::identity who;
  graph::error err;
  REQUIRE_FALSE(c.redeem_code(code, redirect, "n-exp", who, err));
  CHECK(err.code == "invalid_id_token");
  CHECK(err.message.find("expired") != std::string::npos);
}

TEST_CASE("an id_token for another application is refused") {
  emulator e;
  e.send("POST", "/_emulator/apps",
         R"({"client_id":"other-app","client_secret":"x","tenants":[]})");
  auto cfg = e.config();
  graph::client c{cfg};
  // Sign in as "other-app", then claim the token as crm-app's.
  cfg.client_id = "other-app";
  cfg.client_secret = "x";
  graph::client other{cfg};
  auto code
      = graph_test::sign_in(e, other, "alex@contoso.example", redirect, "n");
  auto form = "grant_type=authorization_code&client_id=other-app"
              "&client_secret=x&code="
              + http::percent_encode(code)
              + "&redirect_uri=" + http::percent_encode(redirect);
  auto r = e.send("POST", "/organizations/oauth2/v2.0/token", form);
  REQUIRE(r.status == 200);
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  std::string_view token;
  REQUIRE_FALSE(parser.parse(r.body).get(root));
  REQUIRE_FALSE(root["id_token"].get_string().get(token));
  graph::jwt::decoded d;
  std::string why;
  REQUIRE(graph::jwt::decode(token, d, why));
  graph::jwt::expectations want;
  want.issuer = e.origin() + "/" + emulator::contoso_id + "/v2.0";
  want.audience = emulator::client_id;
  want.nonce = "n";
  want.now_s = e.now() / 1000;
  graph::identity who;
  CHECK_FALSE(graph::jwt::check_claims(d, want, who, why));
  CHECK(why.find("aud") != std::string::npos);
  want.audience = "other-app";
  CHECK(graph::jwt::check_claims(d, want, who, why));
  want.issuer = "https://login.microsoftonline.com/"
                + std::string{emulator::contoso_id} + "/v2.0";
  CHECK_FALSE(graph::jwt::check_claims(d, want, who, why));
  CHECK(why.find("issuer") != std::string::npos);
}

TEST_CASE("a redeemed code cannot be redeemed again") {
  emulator e;
  graph::client c{e.config()};
  auto code = graph_test::sign_in(e, c, "alex@contoso.example", redirect, "n");
  graph::identity who;
  graph::error err;
  REQUIRE(c.redeem_code(code, redirect, "n", who, err));
  REQUIRE_FALSE(c.redeem_code(code, redirect, "n", who, err));
  CHECK(err.status == 400);
  CHECK(err.code == "invalid_grant");
  CHECK(err.attempts == 1);
}

TEST_CASE("a tampered id_token fails signature verification") {
  emulator e;
  graph::client c{e.config()};
  auto token = raw_id_token(e, c, "alex@contoso.example");
  auto keys = e.send("GET", std::string{"/"} + emulator::contoso_id
                                + "/discovery/v2.0/keys");
  REQUIRE(keys.status == 200);
  std::map<std::string, graph::jwt::rsa_jwk> jwks;
  std::string why;
  REQUIRE(graph::jwt::parse_jwks(keys.body, jwks, why));
  REQUIRE(jwks.size() == 1);
  auto& key = jwks.begin()->second;

  graph::jwt::decoded d;
  REQUIRE(graph::jwt::decode(token, d, why));
  CHECK(d.alg == "RS256");
  CHECK(d.kid == jwks.begin()->first);
  INFO(why);
  CHECK(graph::jwt::verify_rs256(d, key, why)); // the genuine token

  SECTION("a changed signature") {
    auto bad = token;
    auto& last = bad[bad.size() - 2];
    last = last == 'A' ? 'B' : 'A';
    graph::jwt::decoded t;
    REQUIRE(graph::jwt::decode(bad, t, why));
    CHECK_FALSE(graph::jwt::verify_rs256(t, key, why));
    CHECK(why.find("signature") != std::string::npos);
  }
  SECTION("changed claims under the original signature") {
    auto first = token.find('.');
    auto second = token.find('.', first + 1);
    std::string claims;
    REQUIRE(graph::jwt::base64url_decode(
        token.substr(first + 1, second - first - 1), claims));
    auto at = claims.find("\"wids\"");
    claims = claims.substr(0, claims.size() - 1)
             + R"(,"wids":["62e90394-69f5-4237-9190-012177145e10"]})";
    CHECK(at == std::string::npos); // alex was no administrator
    auto bad = token.substr(0, first + 1) + crypto::base64url(claims)
               + token.substr(second);
    graph::jwt::decoded t;
    REQUIRE(graph::jwt::decode(bad, t, why));
    CHECK_FALSE(graph::jwt::verify_rs256(t, key, why));
  }
  SECTION("alg none is refused before any key is consulted") {
    auto first = token.find('.');
    auto bad = crypto::base64url(R"({"alg":"none","kid":"k"})")
               + token.substr(first);
    graph::jwt::decoded t;
    CHECK_FALSE(graph::jwt::decode(bad, t, why));
    CHECK(why.find("RS256") != std::string::npos);
  }
}
