// graph-emulator's service over real sockets: the /_emulator control API,
// the identity platform's token endpoint, Graph authentication, users,
// calendars, events, sendMail and routing.
//
// The harness (harness.hpp) runs the service behind an http::server on
// 127.0.0.1 port 0 inside this process, resets it for every test and talks
// to it with http::client. The service's clock is injected, so token expiry
// needs no sleeping and timestamps in answers can be asserted exactly. Wire
// formats follow shared/ref/GRAPH-FACTS.md (§1 users, §2 calendars, §3
// events, §11 errors).
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "common/time_format.hpp"
#include "tests/emulator/harness.hpp"
#include "tests/support/thread_guard.hpp"

using namespace crmsync::emulator_test;
using crmsync::format_rfc3339;
using crmsync::parse_rfc3339_ms;

// == control API
// ==============================================================================

TEST_CASE_METHOD(emulator, "control: tenants are seeded with given or new ids",
                 "[emulator][control]") {
  auto a = seed_tenant(
      R"({"id":"11111111-2222-4333-8444-555555555555","domain":"Contoso.Example",)"
      R"("users":[{"id":"u-1","userPrincipalName":"pat@contoso.example",)"
      R"("displayName":"Pat","isAdmin":true},)"
      R"({"userPrincipalName":"lee@contoso.example","hasMailbox":false}]})");
  CHECK(a.str("/id") == "11111111-2222-4333-8444-555555555555");
  CHECK(a.str("/domain") == "contoso.example");
  REQUIRE(a.size("/users") == 2);
  CHECK(a.str("/users/0/id") == "u-1");
  CHECK(a.str("/users/0/userPrincipalName") == "pat@contoso.example");
  CHECK(a.boolean("/users/0/isAdmin"));
  CHECK(a.boolean("/users/0/hasMailbox"));
  CHECK(is_guid(a.str("/users/1/id")));
  CHECK_FALSE(a.boolean("/users/1/isAdmin"));
  CHECK_FALSE(a.boolean("/users/1/hasMailbox"));
  CHECK(a.header("request-id").size() == 36);

  // Without an id the tenant gets a fresh GUID; no users is fine.
  auto b = seed_tenant(R"({"domain":"fabrikam.example"})");
  auto c = seed_tenant(R"({"domain":"northwind.example","users":[]})");
  CHECK(is_guid(b.str("/id")));
  CHECK(is_guid(c.str("/id")));
  CHECK(b.str("/id") != c.str("/id"));
  CHECK(b.size("/users") == 0);

  auto s = state();
  REQUIRE(s.size("/tenants") == 3);
  std::set<std::string> domains;
  for (size_t i = 0; i < 3; ++i)
    domains.insert(s.str("/tenants/" + std::to_string(i) + "/domain"));
  CHECK(domains
        == std::set<std::string>{"contoso.example", "fabrikam.example",
                                 "northwind.example"});
}

TEST_CASE_METHOD(emulator, "control: a taken domain or tenant id answers 409",
                 "[emulator][control]") {
  auto first = seed_tenant(R"({"domain":"contoso.example"})");
  // The domain is compared case-insensitively.
  check_error(send("POST", "/_emulator/tenants",
                   R"({"domain":"CONTOSO.example","users":[)"
                   R"({"userPrincipalName":"x@contoso.example"}]})"),
              409, "Conflict");
  check_error(
      send("POST", "/_emulator/tenants",
           R"({"id":")" + first.str("/id") + R"(","domain":"other.example"})"),
      409, "Conflict");
  auto s = state();
  REQUIRE(s.size("/tenants") == 1);
  CHECK(s.i64("/tenants/0/users") == 0);
}

TEST_CASE_METHOD(emulator,
                 "control: a tenant without domain or a user without UPN is "
                 "refused with 400",
                 "[emulator][control]") {
  SECTION("no domain") {
    check_error(send("POST", "/_emulator/tenants", R"({"users":[]})"), 400,
                "BadRequest");
  }
  SECTION("empty domain") {
    check_error(send("POST", "/_emulator/tenants", R"({"domain":""})"), 400,
                "BadRequest");
  }
  SECTION("a user without userPrincipalName") {
    check_error(send("POST", "/_emulator/tenants",
                     R"({"domain":"contoso.example","users":[)"
                     R"({"userPrincipalName":"ok@contoso.example"},)"
                     R"({"displayName":"No UPN"}]})"),
                400, "BadRequest");
  }
  SECTION("a userPrincipalName without @") {
    check_error(send("POST", "/_emulator/tenants",
                     R"({"domain":"contoso.example","users":[)"
                     R"({"userPrincipalName":"nobody"}]})"),
                400, "BadRequest");
  }
  SECTION("malformed JSON") {
    check_error(send("POST", "/_emulator/tenants", R"({"domain":)"), 400,
                "BadRequest");
  }
  // Nothing of a refused seed is kept.
  CHECK(state().size("/tenants") == 0);
}

TEST_CASE_METHOD(emulator,
                 "control: user ids and userPrincipalNames are unique",
                 "[emulator][control]") {
  seed_tenant(R"({"domain":"contoso.example","users":[)"
              R"({"id":"u-1","userPrincipalName":"pat@contoso.example"}]})");
  // A user id already in use (another tenant) is a conflict.
  check_error(
      send("POST", "/_emulator/tenants",
           R"({"domain":"fabrikam.example","users":[)"
           R"({"id":"u-1","userPrincipalName":"pat@fabrikam.example"}]})"),
      409, "Conflict");
  // Within one seed too: the same id twice, or a userPrincipalName that
  // Entra ID would refuse as a duplicate (case-insensitively).
  SECTION("the same id twice in one request") {
    check_error(
        send("POST", "/_emulator/tenants",
             R"({"domain":"northwind.example","users":[)"
             R"({"id":"u-2","userPrincipalName":"a@northwind.example"},)"
             R"({"id":"u-2","userPrincipalName":"b@northwind.example"}]})"),
        409, "Conflict");
  }
  SECTION("the same userPrincipalName twice") {
    check_error(send("POST", "/_emulator/tenants",
                     R"({"domain":"northwind.example","users":[)"
                     R"({"userPrincipalName":"sam@northwind.example"},)"
                     R"({"userPrincipalName":"SAM@northwind.example"}]})"),
                409, "Conflict");
  }
  SECTION("a userPrincipalName another tenant's user has") {
    check_error(send("POST", "/_emulator/tenants",
                     R"({"domain":"northwind.example","users":[)"
                     R"({"userPrincipalName":"Pat@Contoso.example"}]})"),
                409, "Conflict");
  }
  // A refused seed leaves the directory as it was.
  CHECK(state().size("/tenants") == 1);
}

TEST_CASE_METHOD(emulator, "control: apps are registered with consent",
                 "[emulator][control]") {
  auto t = seed_tenant(R"({"domain":"contoso.example"})");
  auto f = seed_tenant(R"({"domain":"fabrikam.example"})");
  // Tenants are named by domain or by id.
  auto r = send("POST", "/_emulator/apps",
                R"({"client_id":"crm","client_secret":"s3cret","tenants":)"
                R"(["contoso.example",")"
                    + f.str("/id") + R"("]})");
  E2E_REQUIRE_STATUS(r, 201);
  CHECK(r.str("/client_id") == "crm");
  seed_app("outlook-person", "pw", "[]");

  auto s = state();
  REQUIRE(s.size("/apps") == 2);
  CHECK(s.str("/apps/0/client_id") == "crm");
  std::set<std::string> consented;
  for (size_t i = 0; i < s.size("/apps/0/tenants"); ++i)
    consented.insert(s.str("/apps/0/tenants/" + std::to_string(i)));
  CHECK(consented == std::set<std::string>{t.str("/id"), f.str("/id")});
  CHECK(s.str("/apps/1/client_id") == "outlook-person");
  CHECK(s.size("/apps/1/tenants") == 0);

  SECTION("an unknown tenant") {
    check_error(send("POST", "/_emulator/apps",
                     R"({"client_id":"x","client_secret":"y",)"
                     R"("tenants":["nowhere.example"]})"),
                400, "BadRequest");
  }
  SECTION("no client_id") {
    check_error(send("POST", "/_emulator/apps",
                     R"({"client_secret":"y","tenants":[]})"),
                400, "BadRequest");
  }
  SECTION("no client_secret") {
    check_error(send("POST", "/_emulator/apps",
                     R"({"client_id":"x","client_secret":"","tenants":[]})"),
                400, "BadRequest");
  }
  SECTION("malformed JSON") {
    check_error(send("POST", "/_emulator/apps", "client_id=x"), 400,
                "BadRequest");
  }
  CHECK(state().size("/apps") == 2);
}

TEST_CASE_METHOD(emulator, "control: the apps answer is JSON for any client id",
                 "[emulator][control]") {
  // BUG: the 201 body is concatenated without escaping.
  auto r = send("POST", "/_emulator/apps",
                R"({"client_id":"odd \"quoted\" id","client_secret":"s",)"
                R"("tenants":[]})");
  E2E_REQUIRE_STATUS(r, 201);
  REQUIRE(r.is_json());
  CHECK(r.str("/client_id") == "odd \"quoted\" id");
}

TEST_CASE_METHOD(contoso, "control: state counts what the emulator holds",
                 "[emulator][control]") {
  auto s = state();
  REQUIRE(s.size("/tenants") == 1);
  CHECK(s.str("/tenants/0/id") == contoso_id);
  CHECK(s.str("/tenants/0/domain") == "contoso.example");
  CHECK(s.i64("/tenants/0/users") == 3);
  REQUIRE(s.size("/apps") == 1);
  CHECK(s.str("/apps/0/client_id") == crm_client);
  REQUIRE(s.size("/apps/0/tenants") == 1);
  CHECK(s.str("/apps/0/tenants/0") == contoso_id);
  CHECK(s.i64("/tokens") == 1);
  CHECK(s.i64("/events") == 0);
  CHECK(s.i64("/mail") == 0);

  // Open the admin's mailbox, then count what is added to it.
  E2E_REQUIRE_STATUS(get(calendars_path(admin_id), tok), 200);
  auto before = state();
  auto cal = create_calendar("CRM");
  create_event(calendar_events_path(admin_id, cal), event_body("one"));
  create_event(events_path(admin_id), event_body("two"));
  E2E_REQUIRE_STATUS(post(user_path(admin_id) + "/sendMail", tok,
                          R"({"message":{"subject":"hi","toRecipients":[)"
                          R"({"emailAddress":{"address":"x@example.com"}}]}})"),
                     202);
  token("contoso.example", crm_client, crm_secret);

  auto after = state();
  CHECK(after.i64("/calendars") == before.i64("/calendars") + 1);
  CHECK(after.i64("/events") == 2);
  CHECK(after.i64("/mail") == 1);
  CHECK(after.i64("/tokens") == 2);
}

TEST_CASE_METHOD(contoso, "control: reset forgets everything",
                 "[emulator][control]") {
  create_event(events_path(admin_id), event_body("gone soon"));
  auto r = send("POST", "/_emulator/reset");
  E2E_REQUIRE_STATUS(r, 204);
  CHECK(r.body.empty());

  auto s = state();
  CHECK(s.size("/tenants") == 0);
  CHECK(s.size("/apps") == 0);
  CHECK(s.i64("/calendars") == 0);
  CHECK(s.i64("/events") == 0);
  CHECK(s.i64("/mail") == 0);
  CHECK(s.i64("/tokens") == 0);

  // The old token is gone with the rest; the domain is free again.
  check_error(get("/v1.0/users", tok), 401, "InvalidAuthenticationToken");
  check_oauth_error(request_token("contoso.example",
                                  client_credentials(crm_client, crm_secret)),
                    400, "invalid_request", 90002);
  seed_tenant(R"({"domain":"contoso.example"})");
}

TEST_CASE_METHOD(contoso, "control: sent mail is readable per user",
                 "[emulator][control][mail]") {
  SECTION("no user parameter") {
    check_error(send("GET", "/_emulator/mail"), 400, "BadRequest");
  }
  SECTION("an unknown user") {
    check_error(send("GET", "/_emulator/mail?user=nobody%40contoso.example"),
                404, "Request_ResourceNotFound");
  }
  SECTION("a user who sent nothing") {
    auto r = send("GET", "/_emulator/mail?user=" + alex_id);
    E2E_REQUIRE_STATUS(r, 200);
    CHECK(r.size("/value") == 0);
  }
}

// == token endpoint
// ===========================================================================

TEST_CASE_METHOD(contoso, "token: client credentials issue a bearer token",
                 "[emulator][token]") {
  for (std::string tenant :
       {std::string{contoso_id}, std::string{"contoso.example"},
        std::string{"Contoso.EXAMPLE"}}) {
    INFO("tenant " << tenant);
    auto r = request_token(tenant, client_credentials(crm_client, crm_secret));
    E2E_REQUIRE_STATUS(r, 200);
    CHECK(r.str("/token_type") == "Bearer");
    CHECK(r.i64("/expires_in") == 3600);
    CHECK(r.i64("/ext_expires_in") == 3600);
    auto t = r.str("/access_token");
    CHECK(t.size() > 20);
    CHECK(t != tok);
    auto users = get("/v1.0/users", t);
    E2E_REQUIRE_STATUS(users, 200);
    CHECK(users.size("/value") == 3);
  }
}

TEST_CASE_METHOD(contoso, "token: a wrong secret is 401 invalid_client",
                 "[emulator][token]") {
  check_oauth_error(
      request_token("contoso.example",
                    client_credentials(crm_client, "not-the-secret")),
      401, "invalid_client", 7000215);
  check_oauth_error(request_token("contoso.example",
                                  form({{"client_id", crm_client},
                                        {"grant_type", "client_credentials"}})),
                    401, "invalid_client", 7000215);
  // Refusals issue no token.
  CHECK(state().i64("/tokens") == 1);
}

TEST_CASE_METHOD(contoso, "token: refusals of the identity platform",
                 "[emulator][token]") {
  seed_tenant(R"({"domain":"fabrikam.example"})");
  SECTION("unknown app") {
    check_oauth_error(
        request_token("contoso.example",
                      client_credentials("no-such-app", crm_secret)),
        400, "unauthorized_client", 700016);
  }
  SECTION("a tenant that did not consent") {
    check_oauth_error(request_token("fabrikam.example",
                                    client_credentials(crm_client, crm_secret)),
                      400, "unauthorized_client", 700016);
  }
  SECTION("an app registered with no consent at all") {
    seed_app("outlook-person", "pw", "[]");
    check_oauth_error(request_token("contoso.example",
                                    client_credentials("outlook-person", "pw")),
                      400, "unauthorized_client", 700016);
  }
  SECTION("unknown tenant") {
    check_oauth_error(request_token("nowhere.example",
                                    client_credentials(crm_client, crm_secret)),
                      400, "invalid_request", 90002);
    check_oauth_error(request_token("99999999-9999-4999-8999-999999999999",
                                    client_credentials(crm_client, crm_secret)),
                      400, "invalid_request", 90002);
  }
  SECTION("unsupported grant type") {
    check_oauth_error(request_token("contoso.example",
                                    form({{"client_id", crm_client},
                                          {"client_secret", crm_secret},
                                          {"grant_type", "password"},
                                          {"username", "alex@contoso.example"},
                                          {"password", "x"}})),
                      400, "unsupported_grant_type", 70003);
  }
  CHECK(state().i64("/tokens") == 1);
}

TEST_CASE("token: expiry follows the configured lifetime and the clock",
          "[emulator][token][auth]") {
  emulator_options short_tokens;
  short_tokens.token_lifetime = std::chrono::seconds{60};
  emulator emu{short_tokens};
  emu.seed_tenant(R"({"domain":"contoso.example","users":[)"
                  R"({"userPrincipalName":"pat@contoso.example"}]})");
  emu.seed_app("crm", "s", R"(["contoso.example"])");
  auto r = emu.request_token("contoso.example", client_credentials("crm", "s"));
  E2E_REQUIRE_STATUS(r, 200);
  CHECK(r.i64("/expires_in") == 60);
  auto t = r.str("/access_token");

  emu.advance(60s - 1ms);
  E2E_REQUIRE_STATUS(emu.get("/v1.0/users", t), 200);
  emu.advance(1ms);
  emu.check_error(emu.get("/v1.0/users", t), 401, "InvalidAuthenticationToken");
  emu.check_error(emu.get("/v1.0/users/pat@contoso.example", t), 401,
                  "InvalidAuthenticationToken");
  // A fresh token works again.
  auto fresh = emu.token("contoso.example", "crm", "s");
  E2E_REQUIRE_STATUS(emu.get("/v1.0/users", fresh), 200);
}

// == Graph authentication
// ======================================================================

TEST_CASE_METHOD(contoso,
                 "auth: missing, garbage and expired tokens are 401 in Graph's "
                 "error shape",
                 "[emulator][auth]") {
  auto cal = create_calendar("CRM");
  auto ev = create_event(events_path(admin_id), event_body("x")).str("/id");
  const std::vector<std::pair<std::string, std::string>> routes{
      {"GET", "/v1.0/users"},
      {"GET", user_path(admin_id)},
      {"GET", calendars_path(admin_id)},
      {"POST", calendars_path(admin_id)},
      {"GET", calendar_path(admin_id, cal)},
      {"DELETE", calendar_path(admin_id, cal)},
      {"GET", calendar_events_path(admin_id, cal)},
      {"POST", calendar_events_path(admin_id, cal)},
      {"GET", events_path(admin_id)},
      {"POST", events_path(admin_id)},
      {"GET", event_path(admin_id, ev)},
      {"PATCH", event_path(admin_id, ev)},
      {"DELETE", event_path(admin_id, ev)},
      {"POST", user_path(admin_id) + "/sendMail"}};
  // Valid bodies, so that nothing but the token can be wrong.
  auto body_for = [&](const std::string& method, const std::string& path) {
    if (method != "POST" && method != "PATCH")
      return std::string{};
    if (path == calendars_path(admin_id))
      return std::string{R"({"name":"Other"})"};
    if (path.find("sendMail") != std::string::npos)
      return std::string{R"({"message":{"toRecipients":[)"
                         R"({"emailAddress":{"address":"a@b.example"}}]}})"};
    return event_body("y");
  };

  SECTION("missing") {
    for (auto& [m, p] : routes) {
      INFO(m << " " << p);
      check_error(graph(m, p, "", body_for(m, p)), 401,
                  "InvalidAuthenticationToken");
    }
  }
  SECTION("garbage") {
    for (auto& [m, p] : routes) {
      INFO(m << " " << p);
      check_error(graph(m, p, "not-a-token", body_for(m, p)), 401,
                  "InvalidAuthenticationToken");
    }
  }
  SECTION("another scheme") {
    check_error(
        send("GET", "/v1.0/users", {}, {{"Authorization", "Basic " + tok}}),
        401, "InvalidAuthenticationToken");
    check_error(send("GET", "/v1.0/users", {}, {{"Authorization", "Bearer"}}),
                401, "InvalidAuthenticationToken");
  }
  SECTION("expired") {
    advance(1h - 1ms);
    E2E_REQUIRE_STATUS(get("/v1.0/users", tok), 200);
    advance(1ms);
    for (auto& [m, p] : routes) {
      INFO(m << " " << p);
      check_error(graph(m, p, tok, body_for(m, p)), 401,
                  "InvalidAuthenticationToken");
    }
  }
  // Nothing was changed by the refused requests.
  auto s = state();
  CHECK(s.i64("/events") == 1);
  CHECK(s.i64("/mail") == 0);
  E2E_REQUIRE_STATUS(
      send("GET", "/_emulator/mail?user=" + std::string{admin_id}), 200);
}

TEST_CASE_METHOD(contoso, "auth: errors echo client-request-id",
                 "[emulator][auth]") {
  auto r
      = send("GET", "/v1.0/users", {},
             {{"client-request-id", "5d3b7a64-0000-4000-8000-00000000c11e"}});
  check_error(r, 401, "InvalidAuthenticationToken");
  CHECK(r.str("/error/innerError/client-request-id")
        == "5d3b7a64-0000-4000-8000-00000000c11e");
  auto plain = send("GET", "/v1.0/users");
  CHECK(plain.str("/error/innerError/client-request-id")
        == plain.str("/error/innerError/request-id"));
  // Every answer gets its own request id.
  CHECK(plain.str("/error/innerError/request-id")
        != r.str("/error/innerError/request-id"));
}

TEST_CASE_METHOD(contoso, "auth: a token only reaches its own tenant",
                 "[emulator][auth]") {
  auto f = seed_tenant(R"({"domain":"fabrikam.example","users":[)"
                       R"({"userPrincipalName":"kim@fabrikam.example",)"
                       R"("displayName":"Kim"}]})");
  auto kim = f.str("/users/0/id");
  seed_app("fab-app", "fab-secret", R"(["fabrikam.example"])");
  auto fab_tok = token("fabrikam.example", "fab-app", "fab-secret");

  // Another tenant's user: the token is not valid there (401), for every
  // route that names the user, by id or by userPrincipalName.
  for (std::string key : {kim, std::string{"kim@fabrikam.example"}}) {
    INFO("key " << key);
    check_error(get(user_path(key), tok), 401, "InvalidAuthenticationToken");
    check_error(get(calendars_path(key), tok), 401,
                "InvalidAuthenticationToken");
    check_error(post(events_path(key), tok, event_body("intrusion")), 401,
                "InvalidAuthenticationToken");
    check_error(post(user_path(key) + "/sendMail", tok,
                     R"({"message":{"toRecipients":[)"
                     R"({"emailAddress":{"address":"a@b.example"}}]}})"),
                401, "InvalidAuthenticationToken");
    check_error(post("/v1.0/subscriptions", tok,
                     R"({"changeType":"created","notificationUrl":)"
                     R"("https://hooks.example/n","resource":"/users/)"
                         + key + R"(/events","expirationDateTime":")"
                         + crmsync::format_rfc3339_ms(now() + 3600000)
                         + R"("})"),
                401, "InvalidAuthenticationToken");
  }
  // And the other way round.
  check_error(get(user_path(admin_id), fab_tok), 401,
              "InvalidAuthenticationToken");
  check_error(get(events_path("alex@contoso.example"), fab_tok), 401,
              "InvalidAuthenticationToken");
  // Nobody of that name anywhere: 404, as before.
  check_error(get(user_path("ghost@fabrikam.example"), fab_tok), 404,
              "Request_ResourceNotFound");
  // Nothing was written into the other tenant.
  auto kims = get(events_path(kim), fab_tok);
  E2E_REQUIRE_STATUS(kims, 200);
  CHECK(kims.size("/value") == 0);

  auto mine = get("/v1.0/users", tok);
  E2E_REQUIRE_STATUS(mine, 200);
  CHECK(as_set(ids_of({mine}))
        == std::set<std::string>{admin_id, alex_id, room_id});
  auto theirs = get("/v1.0/users", fab_tok);
  E2E_REQUIRE_STATUS(theirs, 200);
  CHECK(ids_of({theirs}) == std::vector<std::string>{kim});
  CHECK(state().i64("/events") == 0);
}

TEST_CASE_METHOD(contoso, "auth: authentication comes before validation",
                 "[emulator][auth]") {
  // BUG: some routes check the query or body before the token, so a
  // client with an expired token is told its request is malformed.
  SECTION("users $top") {
    check_error(send("GET", "/v1.0/users?$top=0"), 401,
                "InvalidAuthenticationToken");
  }
  SECTION("users $select") {
    check_error(send("GET", "/v1.0/users?$select=nope"), 401,
                "InvalidAuthenticationToken");
  }
  SECTION("calendar body") {
    check_error(send("POST", calendars_path(admin_id), "{not json"), 401,
                "InvalidAuthenticationToken");
  }
  SECTION("sendMail body") {
    check_error(send("POST", user_path(admin_id) + "/sendMail", "{}"), 401,
                "InvalidAuthenticationToken");
  }
  SECTION("events $top") {
    check_error(send("GET", events_path(admin_id) + "?$top=0"), 401,
                "InvalidAuthenticationToken");
  }
}

// == users
// =================================================================================

TEST_CASE_METHOD(contoso, "users: default properties", "[emulator][users]") {
  auto r = get("/v1.0/users", tok);
  E2E_REQUIRE_STATUS(r, 200);
  CHECK(r.str("/@odata.context") == origin() + "/v1.0/$metadata#users");
  CHECK_FALSE(r.has("/@odata.nextLink"));
  CHECK(is_guid(r.header("request-id")));
  REQUIRE(r.size("/value") == 3);
  // Creation order.
  CHECK(ids_of({r}) == std::vector<std::string>{admin_id, alex_id, room_id});

  const std::set<std::string> defaults{
      "businessPhones",    "displayName", "givenName",        "id",
      "jobTitle",          "mail",        "mobilePhone",      "officeLocation",
      "preferredLanguage", "surname",     "userPrincipalName"};
  for (size_t i = 0; i < 3; ++i) {
    auto p = "/value/" + std::to_string(i);
    CHECK(as_set(r.keys(p)) == defaults);
    CHECK_FALSE(r.has(p + "/accountEnabled"));
    CHECK(r.size(p + "/businessPhones") == 0);
    CHECK(r.is_null(p + "/surname"));
  }
  CHECK(r.str("/value/0/displayName") == "Ada Admin");
  CHECK(r.str("/value/0/userPrincipalName") == "Admin@contoso.example");
  CHECK(r.str("/value/0/mail") == "admin@contoso.example");
  // No mail address renders as null, not as "" or a missing member.
  CHECK(r.is_null("/value/1/mail"));
  CHECK(r.str("/value/1/displayName") == "Alex Wilber");
  CHECK(r.str("/value/2/userPrincipalName") == "room@contoso.example");
}

TEST_CASE_METHOD(contoso, "users: a user without displayName shows the UPN",
                 "[emulator][users]") {
  auto t = seed_tenant(R"({"domain":"tiny.example","users":[)"
                       R"({"userPrincipalName":"solo@tiny.example"}]})");
  seed_app("tiny-app", "pw", R"(["tiny.example"])");
  auto r = get(user_path("solo@tiny.example"),
               token("tiny.example", "tiny-app", "pw"));
  E2E_REQUIRE_STATUS(r, 200);
  CHECK(r.str("/id") == t.str("/users/0/id"));
  CHECK(r.str("/displayName") == "solo@tiny.example");
  CHECK(r.is_null("/mail"));
}

TEST_CASE_METHOD(contoso, "users: $select", "[emulator][users]") {
  auto r = get("/v1.0/users?$select=id,accountEnabled,mail", tok);
  E2E_REQUIRE_STATUS(r, 200);
  REQUIRE(r.size("/value") == 3);
  for (size_t i = 0; i < 3; ++i) {
    auto p = "/value/" + std::to_string(i);
    CHECK(as_set(r.keys(p))
          == std::set<std::string>{"id", "accountEnabled", "mail"});
    CHECK(r.boolean(p + "/accountEnabled"));
  }
  CHECK(r.str("/value/0/mail") == "admin@contoso.example");
  CHECK(r.is_null("/value/1/mail"));

  auto one = get("/v1.0/users?$select=userPrincipalName", tok);
  E2E_REQUIRE_STATUS(one, 200);
  CHECK(one.keys("/value/0") == std::vector<std::string>{"userPrincipalName"});

  // Encoded the way an HTTP library would send it.
  auto encoded = get("/v1.0/users?%24select=id%2CdisplayName", tok);
  E2E_REQUIRE_STATUS(encoded, 200);
  CHECK(as_set(encoded.keys("/value/0"))
        == std::set<std::string>{"id", "displayName"});

  check_error(get("/v1.0/users?$select=id,favouriteColour", tok), 400,
              "Request_BadRequest");
  check_error(get("/v1.0/users?$select=id,,mail", tok), 400,
              "Request_BadRequest");
}

TEST_CASE_METHOD(contoso, "users: $top is 1 to 999", "[emulator][users]") {
  for (std::string bad : {"0", "1000", "x", "-1", "", "5x", "99999999999999"}) {
    INFO("$top=" << bad);
    check_error(get("/v1.0/users?$top=" + bad, tok), 400,
                "Request_UnsupportedQuery");
  }
  auto one = get("/v1.0/users?$top=1", tok);
  E2E_REQUIRE_STATUS(one, 200);
  CHECK(one.size("/value") == 1);
  CHECK(one.has("/@odata.nextLink"));
  auto most = get("/v1.0/users?$top=999", tok);
  E2E_REQUIRE_STATUS(most, 200);
  CHECK(most.size("/value") == 3);
  CHECK_FALSE(most.has("/@odata.nextLink"));
}

TEST_CASE_METHOD(emulator, "users: paging through @odata.nextLink",
                 "[emulator][users][paging]") {
  std::string users;
  std::vector<std::string> upns;
  for (int i = 0; i < 250; ++i) {
    auto upn = "user" + std::to_string(i) + "@big.example";
    upns.push_back(upn);
    users += (i ? "," : "") + std::string{R"({"userPrincipalName":")"} + upn
             + R"("})";
  }
  auto seeded
      = seed_tenant(R"({"domain":"big.example","users":[)" + users + "]}");
  std::vector<std::string> expected;
  for (size_t i = 0; i < 250; ++i)
    expected.push_back(seeded.str("/users/" + std::to_string(i) + "/id"));
  seed_app("crm", "s", R"(["big.example"])");
  auto t = token("big.example", "crm", "s");

  SECTION("default page size 100") {
    auto pages = walk("/v1.0/users", t);
    REQUIRE(pages.size() == 3);
    CHECK(pages[0].size("/value") == 100);
    CHECK(pages[1].size("/value") == 100);
    CHECK(pages[2].size("/value") == 50);
    CHECK(ids_of(pages) == expected);
  }
  SECTION("$top=7 with $select carried along") {
    auto pages = walk("/v1.0/users?$top=7&$select=id,accountEnabled", t);
    REQUIRE(pages.size() == 36);
    for (size_t i = 0; i + 1 < pages.size(); ++i)
      CHECK(pages[i].size("/value") == 7);
    CHECK(pages.back().size("/value") == 5);
    auto ids = ids_of(pages);
    CHECK(ids == expected);
    CHECK(as_set(ids).size() == 250);
    for (auto& p : pages)
      for (size_t i = 0; i < p.size("/value"); ++i) {
        auto item = "/value/" + std::to_string(i);
        CHECK(as_set(p.keys(item))
              == std::set<std::string>{"id", "accountEnabled"});
      }
  }
  SECTION("$top=999 is one page") {
    auto pages = walk("/v1.0/users?$top=999", t);
    REQUIRE(pages.size() == 1);
    CHECK(ids_of(pages) == expected);
  }
  SECTION("links use the scheme and host the client used") {
    auto r = graph(
        "GET", "/v1.0/users?$top=100", t, {},
        {{"Host", "graph.example.test:8443"}, {"X-Forwarded-Proto", "https"}});
    E2E_REQUIRE_STATUS(r, 200);
    CHECK(r.str("/@odata.context")
          == "https://graph.example.test:8443/v1.0/$metadata#users");
    CHECK(starts_with(r.str("/@odata.nextLink"),
                      "https://graph.example.test:8443/v1.0/users?"));
  }
}

TEST_CASE_METHOD(contoso, "users: get by id or userPrincipalName",
                 "[emulator][users]") {
  auto by_id = get(user_path(admin_id), tok);
  E2E_REQUIRE_STATUS(by_id, 200);
  CHECK(by_id.str("/id") == admin_id);
  CHECK(by_id.str("/userPrincipalName") == "Admin@contoso.example");
  CHECK(by_id.str("/mail") == "admin@contoso.example");
  CHECK_FALSE(by_id.has("/accountEnabled"));

  for (std::string upn : {"Admin@contoso.example", "admin@contoso.example",
                          "ADMIN@CONTOSO.EXAMPLE"}) {
    INFO("upn " << upn);
    auto r = get(user_path(upn), tok);
    E2E_REQUIRE_STATUS(r, 200);
    CHECK(r.str("/id") == admin_id);
  }
  // '@' unencoded in the path, as many clients send it.
  auto raw = get("/v1.0/users/alex@contoso.example", tok);
  E2E_REQUIRE_STATUS(raw, 200);
  CHECK(raw.str("/id") == alex_id);
  CHECK(raw.is_null("/mail"));
  // No mailbox is still a user.
  auto room = get(user_path(room_id), tok);
  E2E_REQUIRE_STATUS(room, 200);
  CHECK(room.str("/userPrincipalName") == "room@contoso.example");

  auto missing = get(user_path("ghost@contoso.example"), tok);
  check_error(missing, 404, "Request_ResourceNotFound");
  CHECK(missing.str("/error/message").find("ghost@contoso.example")
        != std::string::npos);
  check_error(get(user_path("00000000-0000-4000-8000-000000000000"), tok), 404,
              "Request_ResourceNotFound");
}

// == calendars
// ============================================================================

TEST_CASE_METHOD(contoso, "calendars: create, list, get",
                 "[emulator][calendars]") {
  auto r = post(calendars_path(admin_id), tok, R"({"name":"CRM"})");
  E2E_REQUIRE_STATUS(r, 201);
  auto id = r.str("/id");
  CHECK_FALSE(id.empty());
  CHECK(r.str("/name") == "CRM");
  CHECK(r.str("/color") == "auto");
  CHECK_FALSE(r.boolean("/isDefaultCalendar"));
  CHECK(r.boolean("/isRemovable"));
  CHECK(r.boolean("/canEdit"));
  CHECK(r.boolean("/canShare"));
  CHECK(r.boolean("/canViewPrivateItems"));
  CHECK_FALSE(r.str("/changeKey").empty());
  CHECK(r.str("/owner/name") == "Ada Admin");
  CHECK(r.str("/owner/address") == "admin@contoso.example");

  // The list has the default calendar and the new one.
  auto list = get(calendars_path("admin@contoso.example"), tok);
  E2E_REQUIRE_STATUS(list, 200);
  REQUIRE(list.size("/value") == 2);
  CHECK(list.str("/value/0/name") == "Calendar");
  CHECK(list.boolean("/value/0/isDefaultCalendar"));
  CHECK_FALSE(list.boolean("/value/0/isRemovable"));
  CHECK(list.str("/value/1/id") == id);
  CHECK(list.str("/value/1/name") == "CRM");
  CHECK(list.str("/value/0/id") != id);

  auto got = get(calendar_path(admin_id, id), tok);
  E2E_REQUIRE_STATUS(got, 200);
  CHECK(got.json() == r.json());
  auto def = get(calendar_path(admin_id, list.str("/value/0/id")), tok);
  E2E_REQUIRE_STATUS(def, 200);
  CHECK(def.boolean("/isDefaultCalendar"));

  // Owners without mail show their UPN.
  auto alex = post(calendars_path(alex_id), tok, R"({"name":"CRM"})");
  E2E_REQUIRE_STATUS(alex, 201);
  CHECK(alex.str("/owner/address") == "alex@contoso.example");
  // Ids are per mailbox.
  check_error(get(calendar_path(alex_id, id), tok), 404, "ErrorItemNotFound");
  check_error(get(calendar_path(admin_id, "AAMkAnotacalendar"), tok), 404,
              "ErrorItemNotFound");
}

TEST_CASE_METHOD(contoso, "calendars: names are unique per mailbox",
                 "[emulator][calendars]") {
  create_calendar("CRM");
  check_error(post(calendars_path(admin_id), tok, R"({"name":"CRM"})"), 409,
              "ErrorFolderExists");
  check_error(post(calendars_path(admin_id), tok, R"({"name":"crm"})"), 409,
              "ErrorFolderExists");
  // The default calendar's name is taken too.
  check_error(post(calendars_path(admin_id), tok, R"({"name":"Calendar"})"),
              409, "ErrorFolderExists");
  E2E_REQUIRE_STATUS(post(calendars_path(alex_id), tok, R"({"name":"CRM"})"),
                     201);
  CHECK(get(calendars_path(admin_id), tok).size("/value") == 2);

  check_error(post(calendars_path(admin_id), tok, R"({"name":""})"), 400,
              "ErrorInvalidRequest");
  check_error(post(calendars_path(admin_id), tok, R"({"color":"auto"})"), 400,
              "ErrorInvalidRequest");
  check_error(post(calendars_path(admin_id), tok, R"({"name":)"), 400,
              "BadRequest");
}

TEST_CASE_METHOD(contoso, "calendars: delete takes the events along",
                 "[emulator][calendars]") {
  auto cal = create_calendar("CRM");
  auto keep = create_calendar("Keep");
  auto ev
      = create_event(calendar_events_path(admin_id, cal), event_body("doomed"))
            .str("/id");
  auto kept
      = create_event(calendar_events_path(admin_id, keep), event_body("kept"))
            .str("/id");
  CHECK(state().i64("/events") == 2);

  auto r = del(calendar_path(admin_id, cal), tok);
  E2E_REQUIRE_STATUS(r, 204);
  CHECK(r.body.empty());

  check_error(get(calendar_path(admin_id, cal), tok), 404, "ErrorItemNotFound");
  check_error(get(event_path(admin_id, ev), tok), 404, "ErrorItemNotFound");
  check_error(get(calendar_events_path(admin_id, cal), tok), 404,
              "ErrorItemNotFound");
  check_error(post(calendar_events_path(admin_id, cal), tok, event_body("x")),
              404, "ErrorItemNotFound");
  check_error(del(calendar_path(admin_id, cal), tok), 404, "ErrorItemNotFound");

  auto list = get(calendars_path(admin_id), tok);
  REQUIRE(list.size("/value") == 2);
  CHECK(list.str("/value/1/id") == keep);
  E2E_REQUIRE_STATUS(get(event_path(admin_id, kept), tok), 200);
  CHECK(state().i64("/events") == 1);
}

TEST_CASE_METHOD(contoso, "calendars: the default calendar stays",
                 "[emulator][calendars]") {
  auto def = default_calendar_id(admin_id);
  auto ev = create_event(events_path(admin_id), event_body("x")).str("/id");
  check_error(del(calendar_path(admin_id, def), tok), 400,
              "ErrorCannotDeleteObject");
  auto list = get(calendars_path(admin_id), tok);
  REQUIRE(list.size("/value") == 1);
  CHECK(list.str("/value/0/id") == def);
  E2E_REQUIRE_STATUS(get(event_path(admin_id, ev), tok), 200);
}

TEST_CASE_METHOD(contoso, "calendars: a user without a mailbox",
                 "[emulator][calendars][events][mail]") {
  for (std::string key : {room_id, std::string{"room@contoso.example"}}) {
    INFO("key " << key);
    check_error(get(calendars_path(key), tok), 404,
                "MailboxNotEnabledForRESTAPI");
    check_error(post(calendars_path(key), tok, R"({"name":"CRM"})"), 404,
                "MailboxNotEnabledForRESTAPI");
    check_error(get(events_path(key), tok), 404, "MailboxNotEnabledForRESTAPI");
    check_error(post(events_path(key), tok, event_body("x")), 404,
                "MailboxNotEnabledForRESTAPI");
    check_error(get(event_path(key, "AAMkAwhatever"), tok), 404,
                "MailboxNotEnabledForRESTAPI");
    check_error(post(user_path(key) + "/sendMail", tok,
                     R"({"message":{"toRecipients":[)"
                     R"({"emailAddress":{"address":"a@b.example"}}]}})"),
                404, "MailboxNotEnabledForRESTAPI");
  }
  check_error(get(calendars_path("ghost@contoso.example"), tok), 404,
              "Request_ResourceNotFound");
  auto s = state();
  CHECK(s.i64("/events") == 0);
  CHECK(s.i64("/mail") == 0);
}

// == events
// ===============================================================================

TEST_CASE_METHOD(contoso, "events: create in a calendar",
                 "[emulator][events]") {
  auto cal = create_calendar("CRM");
  auto r = post(
      calendar_events_path(admin_id, cal), tok,
      event_body("Kick-off", "2026-12-01T10:00:00", "2026-12-01T11:30:00",
                 R"(,"body":{"contentType":"HTML","content":"<p>Agenda</p>"},)"
                 R"("location":{"displayName":"Room 1"},)"
                 R"("attendees":[{"emailAddress":{"address":"pat@example.com",)"
                 R"("name":"Pat"},"type":"required"}],)"
                 R"("categories":["ignored"],"showAs":"free")"));
  E2E_REQUIRE_STATUS(r, 201);
  CHECK(is_guid(r.header("request-id")));
  auto id = r.str("/id");
  CHECK(starts_with(id, "AAMkA"));
  auto ck = r.str("/changeKey");
  CHECK_FALSE(ck.empty());
  CHECK(r.str("/@odata.etag") == "W/\"" + ck + "\"");
  CHECK(r.str("/subject") == "Kick-off");
  CHECK(r.str("/body/contentType") == "html");
  CHECK(r.str("/body/content") == "<p>Agenda</p>");
  CHECK(r.str("/start/dateTime") == "2026-12-01T10:00:00.0000000");
  CHECK(r.str("/start/timeZone") == "UTC");
  CHECK(r.str("/end/dateTime") == "2026-12-01T11:30:00.0000000");
  CHECK(r.str("/end/timeZone") == "UTC");
  CHECK(r.str("/originalStartTimeZone") == "UTC");
  CHECK(r.str("/originalEndTimeZone") == "UTC");
  CHECK(parse_rfc3339_ms(r.str("/createdDateTime")) == now());
  CHECK(parse_rfc3339_ms(r.str("/lastModifiedDateTime")) == now());
  CHECK_FALSE(r.boolean("/isAllDay"));
  CHECK(r.boolean("/isOrganizer"));
  CHECK(r.str("/type") == "singleInstance");
  CHECK(r.is_null("/seriesMasterId"));
  CHECK_FALSE(r.str("/iCalUId").empty());
  CHECK(r.str("/location/displayName") == "Room 1");
  CHECK(r.json("/attendees")
        == R"([{"emailAddress":{"address":"pat@example.com","name":"Pat"},)"
           R"("type":"required"}])");
  CHECK(r.str("/organizer/emailAddress/name") == "Ada Admin");
  CHECK(r.str("/organizer/emailAddress/address") == "admin@contoso.example");
  // Only returned when the client set it; extended properties only when
  // expanded.
  CHECK_FALSE(r.has("/transactionId"));
  CHECK_FALSE(r.has("/singleValueExtendedProperties"));

  auto list = get(calendar_events_path(admin_id, cal), tok);
  E2E_REQUIRE_STATUS(list, 200);
  REQUIRE(list.size("/value") == 1);
  CHECK(list.json("/value/0") == r.json());
  // Not in the default calendar.
  auto def = get(events_path(admin_id), tok);
  E2E_REQUIRE_STATUS(def, 200);
  CHECK(def.size("/value") == 0);
}

TEST_CASE_METHOD(contoso, "events: create in the default calendar",
                 "[emulator][events]") {
  auto def = default_calendar_id("alex@contoso.example");
  E2E_REQUIRE_STATUS(post(calendars_path(alex_id), tok, R"({"name":"CRM"})"),
                     201);
  auto r = post(
      events_path("alex@contoso.example"), tok,
      event_body("Standup", "2026-12-02T09:00:00Z", "2026-12-02T09:15:00z"));
  E2E_REQUIRE_STATUS(r, 201);
  CHECK(r.str("/@odata.etag") == "W/\"" + r.str("/changeKey") + "\"");
  CHECK(r.str("/start/dateTime") == "2026-12-02T09:00:00.0000000");
  CHECK(r.str("/end/dateTime") == "2026-12-02T09:15:00.0000000");
  CHECK(r.str("/organizer/emailAddress/address") == "alex@contoso.example");

  auto in_def = get(calendar_events_path(alex_id, def), tok);
  E2E_REQUIRE_STATUS(in_def, 200);
  CHECK(ids_of({in_def}) == std::vector<std::string>{r.str("/id")});
  auto listed = get(events_path(alex_id), tok);
  E2E_REQUIRE_STATUS(listed, 200);
  CHECK(ids_of({listed}) == std::vector<std::string>{r.str("/id")});
  E2E_REQUIRE_STATUS(
      get(calendar_events_path(alex_id, def) + "/" + r.str("/id"), tok), 200);
}

TEST_CASE_METHOD(contoso, "events: other UTC zone names and fractions",
                 "[emulator][events]") {
  auto r = post(events_path(admin_id), tok,
                R"({"subject":"z","start":{"dateTime":"2026-12-01T10:00:00.5",)"
                R"("timeZone":"Etc/UTC"},"end":{"dateTime":)"
                R"("2026-12-01T11:00:00.0000000","timeZone":)"
                R"("tzone://Microsoft/Utc"}})");
  E2E_REQUIRE_STATUS(r, 201);
  CHECK(r.str("/start/dateTime") == "2026-12-01T10:00:00.5000000");
  CHECK(r.str("/start/timeZone") == "UTC");
  CHECK(r.str("/end/dateTime") == "2026-12-01T11:00:00.0000000");
  CHECK(r.str("/originalStartTimeZone") == "Etc/UTC");
  CHECK(r.str("/originalEndTimeZone") == "tzone://Microsoft/Utc");

  // What Graph returned can be sent back as is.
  auto back = patch(event_path(admin_id, r.str("/id")), tok,
                    R"({"start":)" + r.json("/start") + R"(,"end":)"
                        + r.json("/end") + "}");
  E2E_REQUIRE_STATUS(back, 200);
  CHECK(back.json("/start") == r.json("/start"));

  // All-day events run midnight to midnight.
  auto all_day = post(events_path(admin_id), tok,
                      event_body("Holiday", "2026-12-24T00:00:00",
                                 "2026-12-25T00:00:00", R"(,"isAllDay":true)"));
  E2E_REQUIRE_STATUS(all_day, 201);
  CHECK(all_day.boolean("/isAllDay"));
  check_error(post(events_path(admin_id), tok,
                   event_body("Holiday", "2026-12-24T09:00:00",
                              "2026-12-25T00:00:00", R"(,"isAllDay":true)")),
              400, "ErrorInvalidRequest");
}

TEST_CASE_METHOD(contoso, "events: a repeated transactionId creates once",
                 "[emulator][events]") {
  auto cal = create_calendar("CRM");
  const std::string tid
      = R"(,"transactionId":"7E163156-7762-4BEB-A1C6-729EA81755A7")";
  auto first = create_event(
      calendar_events_path(admin_id, cal),
      event_body("Lunch", "2026-12-03T12:00:00", "2026-12-03T13:00:00", tid));
  CHECK(first.str("/transactionId") == "7E163156-7762-4BEB-A1C6-729EA81755A7");
  advance(5s);
  auto retry = create_event(
      calendar_events_path(admin_id, cal),
      event_body("Lunch", "2026-12-03T12:00:00", "2026-12-03T13:00:00", tid));
  CHECK(retry.str("/id") == first.str("/id"));
  CHECK(retry.str("/changeKey") == first.str("/changeKey"));
  CHECK(retry.str("/createdDateTime") == first.str("/createdDateTime"));

  auto list = get(calendar_events_path(admin_id, cal), tok);
  E2E_REQUIRE_STATUS(list, 200);
  CHECK(ids_of({list}) == std::vector<std::string>{first.str("/id")});
  CHECK(state().i64("/events") == 1);

  // Another transaction is another event; none at all never deduplicates.
  auto other = create_event(
      calendar_events_path(admin_id, cal),
      event_body("Lunch", "2026-12-03T12:00:00", "2026-12-03T13:00:00",
                 R"(,"transactionId":"8E163156-7762-4BEB-A1C6-729EA81755A7")"));
  CHECK(other.str("/id") != first.str("/id"));
  auto a = create_event(calendar_events_path(admin_id, cal), event_body("n"));
  auto b = create_event(calendar_events_path(admin_id, cal), event_body("n"));
  CHECK(a.str("/id") != b.str("/id"));
  CHECK(get(calendar_events_path(admin_id, cal), tok).size("/value") == 4);

  // transactionId cannot be changed afterwards.
  check_error(patch(event_path(admin_id, first.str("/id")), tok,
                    R"({"transactionId":"something-else"})"),
              400, "BadRequest");
}

TEST_CASE_METHOD(contoso,
                 "events: a transactionId whose event was deleted creates "
                 "anew, and one calendar's ids do not answer in another",
                 "[emulator][events]") {
  auto cal = create_calendar("CRM");
  auto other_cal = create_calendar("Other");
  const std::string tid
      = R"(,"transactionId":"9E163156-7762-4BEB-A1C6-729EA81755A7")";
  auto first = create_event(
      calendar_events_path(admin_id, cal),
      event_body("Lunch", "2026-12-03T12:00:00", "2026-12-03T13:00:00", tid));
  // The same transaction in another calendar is another event.
  auto elsewhere = create_event(
      calendar_events_path(admin_id, other_cal),
      event_body("Lunch", "2026-12-03T12:00:00", "2026-12-03T13:00:00", tid));
  CHECK(elsewhere.str("/id") != first.str("/id"));
  E2E_REQUIRE_STATUS(del(event_path(admin_id, first.str("/id")), tok), 204);
  auto again = create_event(
      calendar_events_path(admin_id, cal),
      event_body("Lunch", "2026-12-03T12:00:00", "2026-12-03T13:00:00", tid));
  CHECK(again.str("/id") != first.str("/id"));
  CHECK(get(event_path(admin_id, again.str("/id")), tok).status == 200);
  // And the new one is what a further retry returns.
  auto retry = create_event(
      calendar_events_path(admin_id, cal),
      event_body("Lunch", "2026-12-03T12:00:00", "2026-12-03T13:00:00", tid));
  CHECK(retry.str("/id") == again.str("/id"));
  CHECK(get(calendar_events_path(admin_id, cal), tok).size("/value") == 1);
}

TEST_CASE_METHOD(contoso, "events: concurrent retries share one transactionId",
                 "[emulator][events]") {
  const auto body
      = event_body("Race", "2026-12-04T08:00:00", "2026-12-04T09:00:00",
                   R"(,"transactionId":"race-0001")");
  const auto target = events_path(admin_id);
  constexpr size_t n = 8;
  std::vector<int> statuses(n, 0);
  std::vector<std::string> ids(n);
  crmsync::test::thread_guard threads;
  for (size_t i = 0; i < n; ++i)
    threads.spawn([&, i] {
      http::client c{"127.0.0.1", port()};
      http::client_response out;
      std::string err;
      if (!c.request("POST", target, body, {{"Authorization", "Bearer " + tok}},
                     out, err))
        return;
      statuses[i] = out.status;
      simdjson::dom::parser p;
      std::string_view id;
      if (!p.parse(out.body)["id"].get_string().get(id))
        ids[i] = std::string{id};
    });
  threads.join();
  for (size_t i = 0; i < n; ++i) {
    CHECK(statuses[i] == 201);
    CHECK(ids[i] == ids[0]);
  }
  CHECK(get(events_path(admin_id), tok).size("/value") == 1);
}

TEST_CASE_METHOD(contoso, "events: get", "[emulator][events]") {
  auto cal = create_calendar("CRM");
  auto created = create_event(calendar_events_path(admin_id, cal),
                              event_body("Read me"));
  auto id = created.str("/id");

  auto direct = get(event_path(admin_id, id), tok);
  E2E_REQUIRE_STATUS(direct, 200);
  CHECK(direct.json() == created.json());
  auto by_upn = get(event_path("ADMIN@contoso.example", id), tok);
  E2E_REQUIRE_STATUS(by_upn, 200);
  CHECK(by_upn.str("/id") == id);
  auto in_cal = get(calendar_events_path(admin_id, cal) + "/" + id, tok);
  E2E_REQUIRE_STATUS(in_cal, 200);
  CHECK(in_cal.json() == created.json());

  // Under another calendar, another mailbox, or not at all.
  auto def = default_calendar_id(admin_id);
  check_error(get(calendar_events_path(admin_id, def) + "/" + id, tok), 404,
              "ErrorItemNotFound");
  check_error(get(event_path(alex_id, id), tok), 404, "ErrorItemNotFound");
  check_error(get(event_path(admin_id, "AAMkAnosuchevent"), tok), 404,
              "ErrorItemNotFound");
  // Ids are case-sensitive.
  auto upper = id;
  std::transform(upper.begin(), upper.end(), upper.begin(),
                 [](unsigned char c) { return std::toupper(c); });
  if (upper != id)
    check_error(get(event_path(admin_id, upper), tok), 404,
                "ErrorItemNotFound");
}

TEST_CASE_METHOD(contoso, "events: PATCH makes a new version",
                 "[emulator][events]") {
  auto created = create_event(events_path(admin_id),
                              event_body("Draft", "2026-12-01T10:00:00",
                                         "2026-12-01T11:00:00",
                                         R"(,"location":{"displayName":"A"})"));
  auto id = created.str("/id");
  auto created_at = now();
  advance(5min + 250ms);

  auto r
      = patch(event_path(admin_id, id), tok,
              R"({"subject":"Final","end":{"dateTime":"2026-12-01T12:00:00",)"
              R"("timeZone":"UTC"}})");
  E2E_REQUIRE_STATUS(r, 200);
  CHECK(r.str("/id") == id);
  CHECK(r.str("/subject") == "Final");
  CHECK(r.str("/start/dateTime") == "2026-12-01T10:00:00.0000000");
  CHECK(r.str("/end/dateTime") == "2026-12-01T12:00:00.0000000");
  CHECK(r.str("/location/displayName") == "A");
  CHECK(r.str("/changeKey") != created.str("/changeKey"));
  CHECK(r.str("/@odata.etag") == "W/\"" + r.str("/changeKey") + "\"");
  CHECK(r.str("/@odata.etag") != created.str("/@odata.etag"));
  CHECK(parse_rfc3339_ms(r.str("/lastModifiedDateTime")) == now());
  CHECK(parse_rfc3339_ms(r.str("/createdDateTime")) == created_at);
  CHECK(r.str("/iCalUId") == created.str("/iCalUId"));

  auto got = get(event_path(admin_id, id), tok);
  E2E_REQUIRE_STATUS(got, 200);
  CHECK(got.json() == r.json());

  // Each PATCH is a new version, even with the clock standing still.
  auto again = patch(event_path(admin_id, id), tok, R"({"subject":"Final 2"})");
  E2E_REQUIRE_STATUS(again, 200);
  CHECK(again.str("/changeKey") != r.str("/changeKey"));
  CHECK(parse_rfc3339_ms(again.str("/lastModifiedDateTime"))
        > parse_rfc3339_ms(r.str("/lastModifiedDateTime")));

  check_error(patch(event_path(admin_id, "AAMkAnosuchevent"), tok,
                    R"({"subject":"x"})"),
              404, "ErrorItemNotFound");
}

TEST_CASE_METHOD(contoso, "events: If-Match guards PATCH and DELETE",
                 "[emulator][events]") {
  auto cal = create_calendar("CRM");
  auto created
      = create_event(calendar_events_path(admin_id, cal), event_body("v1"));
  auto id = created.str("/id");
  auto stale = created.str("/@odata.etag");
  auto v2 = patch(event_path(admin_id, id), tok, R"({"subject":"v2"})", stale);
  E2E_REQUIRE_STATUS(v2, 200);
  auto current = v2.str("/@odata.etag");

  // A stale change key changes nothing.
  for (std::string path : {event_path(admin_id, id),
                           calendar_events_path(admin_id, cal) + "/" + id}) {
    INFO("path " << path);
    check_error(patch(path, tok, R"({"subject":"lost update"})", stale), 412,
                "ErrorIrresolvableConflict");
    check_error(del(path, tok, stale), 412, "ErrorIrresolvableConflict");
    check_error(del(path, tok, "W/\"made-up\""), 412,
                "ErrorIrresolvableConflict");
  }
  auto unchanged = get(event_path(admin_id, id), tok);
  E2E_REQUIRE_STATUS(unchanged, 200);
  CHECK(unchanged.json() == v2.json());
  CHECK(state().i64("/events") == 1);

  // The current one (or "*") goes through.
  auto v3
      = patch(event_path(admin_id, id), tok, R"({"subject":"v3"})", current);
  E2E_REQUIRE_STATUS(v3, 200);
  CHECK(v3.str("/subject") == "v3");
  auto v4 = patch(event_path(admin_id, id), tok, R"({"subject":"v4"})", "*");
  E2E_REQUIRE_STATUS(v4, 200);
  check_error(del(event_path(admin_id, id), tok, v3.str("/@odata.etag")), 412,
              "ErrorIrresolvableConflict");
  auto gone = del(calendar_events_path(admin_id, cal) + "/" + id, tok,
                  v4.str("/@odata.etag"));
  E2E_REQUIRE_STATUS(gone, 204);
  CHECK(gone.body.empty());
  check_error(get(event_path(admin_id, id), tok), 404, "ErrorItemNotFound");
  check_error(del(event_path(admin_id, id), tok), 404, "ErrorItemNotFound");
  CHECK(get(calendar_events_path(admin_id, cal), tok).size("/value") == 0);
  CHECK(state().i64("/events") == 0);

  // Without If-Match, DELETE just deletes.
  auto other = create_event(events_path(admin_id), event_body("x"));
  E2E_REQUIRE_STATUS(del(event_path(admin_id, other.str("/id")), tok), 204);
  CHECK(state().i64("/events") == 0);
}

TEST_CASE_METHOD(contoso, "events: singleValueExtendedProperties",
                 "[emulator][events]") {
  auto cal = create_calendar("CRM");
  auto tagged = create_event(
      calendar_events_path(admin_id, cal),
      event_body("Tagged", "2026-12-01T10:00:00", "2026-12-01T11:00:00",
                 R"(,"singleValueExtendedProperties":[{"id":")" + crm_prop
                     + R"(","value":"crm-123"},{"id":")" + other_prop
                     + R"(","value":"crmsync"}])"));
  CHECK_FALSE(tagged.has("/singleValueExtendedProperties"));
  auto id = tagged.str("/id");
  auto plain
      = create_event(calendar_events_path(admin_id, cal), event_body("Plain"));
  auto second = create_event(
      calendar_events_path(admin_id, cal),
      event_body("Second", "2026-12-01T10:00:00", "2026-12-01T11:00:00",
                 R"(,"singleValueExtendedProperties":[{"id":")" + crm_prop
                     + R"(","value":"crm-456"}])"));

  auto expanded
      = get(event_path(admin_id, id) + "?" + expand_query(crm_prop), tok);
  E2E_REQUIRE_STATUS(expanded, 200);
  REQUIRE(expanded.size("/singleValueExtendedProperties") == 1);
  CHECK(expanded.str("/singleValueExtendedProperties/0/id") == crm_prop);
  CHECK(expanded.str("/singleValueExtendedProperties/0/value") == "crm-123");
  // Not asked for, not shown.
  auto bare = get(event_path(admin_id, id), tok);
  E2E_REQUIRE_STATUS(bare, 200);
  CHECK_FALSE(bare.has("/singleValueExtendedProperties"));
  auto none = get(event_path(admin_id, plain.str("/id")) + "?"
                      + expand_query(crm_prop),
                  tok);
  E2E_REQUIRE_STATUS(none, 200);
  // Nothing matched: an empty collection or none at all.
  CHECK((!none.has("/singleValueExtendedProperties")
         || none.size("/singleValueExtendedProperties") == 0));

  // Found by tag.
  auto found = get(calendar_events_path(admin_id, cal) + "?"
                       + filter_query(crm_prop, "crm-123"),
                   tok);
  E2E_REQUIRE_STATUS(found, 200);
  CHECK(ids_of({found}) == std::vector<std::string>{id});
  auto both = get(calendar_events_path(admin_id, cal) + "?"
                      + filter_query(crm_prop, "crm-456") + "&"
                      + expand_query(crm_prop),
                  tok);
  E2E_REQUIRE_STATUS(both, 200);
  CHECK(ids_of({both}) == std::vector<std::string>{second.str("/id")});
  CHECK(both.str("/value/0/singleValueExtendedProperties/0/value")
        == "crm-456");
  auto missing = get(calendar_events_path(admin_id, cal) + "?"
                         + filter_query(crm_prop, "crm-999"),
                     tok);
  E2E_REQUIRE_STATUS(missing, 200);
  CHECK(missing.size("/value") == 0);
  auto by_other = get(calendar_events_path(admin_id, cal) + "?"
                          + filter_query(other_prop, "crmsync"),
                      tok);
  CHECK(ids_of({by_other}) == std::vector<std::string>{id});

  // A PATCH can tag an event afterwards; other properties stay.
  auto tag = patch(event_path(admin_id, plain.str("/id")), tok,
                   R"({"singleValueExtendedProperties":[{"id":")" + crm_prop
                       + R"(","value":"crm-789"}]})");
  E2E_REQUIRE_STATUS(tag, 200);
  auto later = get(calendar_events_path(admin_id, cal) + "?"
                       + filter_query(crm_prop, "crm-789"),
                   tok);
  CHECK(ids_of({later}) == std::vector<std::string>{plain.str("/id")});
  auto retag = patch(event_path(admin_id, id), tok,
                     R"({"singleValueExtendedProperties":[{"id":")" + crm_prop
                         + R"(","value":"crm-124"}]})");
  E2E_REQUIRE_STATUS(retag, 200);
  auto after
      = get(event_path(admin_id, id) + "?" + expand_query(other_prop), tok);
  CHECK(after.str("/singleValueExtendedProperties/0/value") == "crmsync");

  check_error(
      post(events_path(admin_id), tok,
           event_body("bad", "2026-12-01T10:00:00", "2026-12-01T11:00:00",
                      R"(,"singleValueExtendedProperties":[{"id":"x"}])")),
      400, "BadRequest");
}

TEST_CASE_METHOD(contoso, "events: list paging", "[emulator][events][paging]") {
  auto cal = create_calendar("CRM");
  std::vector<std::string> expected;
  for (int i = 0; i < 12; ++i)
    expected.push_back(create_event(calendar_events_path(admin_id, cal),
                                    event_body("e" + std::to_string(i)))
                           .str("/id"));

  SECTION("default page of 10") {
    auto pages = walk(calendar_events_path(admin_id, cal), tok);
    REQUIRE(pages.size() == 2);
    CHECK(pages[0].size("/value") == 10);
    CHECK(pages[1].size("/value") == 2);
    CHECK(ids_of(pages) == expected);
  }
  SECTION("$top=5") {
    auto pages = walk(calendar_events_path(admin_id, cal) + "?$top=5", tok);
    REQUIRE(pages.size() == 3);
    CHECK(pages[0].size("/value") == 5);
    CHECK(pages[1].size("/value") == 5);
    CHECK(pages[2].size("/value") == 2);
    auto ids = ids_of(pages);
    CHECK(ids == expected);
    CHECK(as_set(ids).size() == 12);
  }
  SECTION("$top equal to the count needs no second page") {
    auto pages = walk(calendar_events_path(admin_id, cal) + "?$top=12", tok);
    REQUIRE(pages.size() == 1);
    CHECK(ids_of(pages) == expected);
  }
  SECTION("filter and expand are carried to every page") {
    std::vector<std::string> tagged;
    for (int i = 0; i < 5; ++i)
      tagged.push_back(
          create_event(calendar_events_path(admin_id, cal),
                       event_body("t" + std::to_string(i),
                                  "2026-12-01T10:00:00", "2026-12-01T11:00:00",
                                  R"(,"singleValueExtendedProperties":[{"id":")"
                                      + crm_prop + R"(","value":"batch-7"}])"))
              .str("/id"));
    auto pages = walk(calendar_events_path(admin_id, cal) + "?$top=2&"
                          + filter_query(crm_prop, "batch-7") + "&"
                          + expand_query(crm_prop),
                      tok);
    REQUIRE(pages.size() == 3);
    CHECK(ids_of(pages) == tagged);
    for (auto& p : pages)
      for (size_t i = 0; i < p.size("/value"); ++i)
        CHECK(p.str("/value/" + std::to_string(i)
                    + "/singleValueExtendedProperties/0/value")
              == "batch-7");
  }
  SECTION("links use the host the client used") {
    auto r = graph("GET", calendar_events_path(admin_id, cal) + "?$top=3", tok,
                   {}, {{"Host", "graph.example.test"}});
    E2E_REQUIRE_STATUS(r, 200);
    CHECK(starts_with(r.str("/@odata.nextLink"),
                      "http://graph.example.test"
                          + calendar_events_path(admin_id, cal) + "?"));
  }
  SECTION("bad $top") {
    for (std::string bad : {"0", "1001", "x", ""}) {
      INFO("$top=" << bad);
      check_error(
          get(calendar_events_path(admin_id, cal) + "?$top=" + bad, tok), 400,
          "ErrorInvalidUrlQuery");
    }
  }
}

TEST_CASE_METHOD(emulator, "events: next links survive reserved characters",
                 "[emulator][events][paging]") {
  // '#' is allowed in a userPrincipalName (Entra ID permits ' . - _ ! # ^ ~).
  seed_tenant(R"({"domain":"hash.example","users":[)"
              R"({"userPrincipalName":"ops#1@hash.example"}]})");
  seed_app("crm", "s", R"(["hash.example"])");
  auto t = token("hash.example", "crm", "s");
  const auto path = events_path("ops#1@hash.example");
  REQUIRE(path == "/v1.0/users/ops%231%40hash.example/events");
  std::vector<std::string> expected;
  for (int i = 0; i < 3; ++i) {
    auto r = post(path, t, event_body("e" + std::to_string(i)));
    E2E_REQUIRE_STATUS(r, 201);
    expected.push_back(r.str("/id"));
  }
  auto first = get(path + "?$top=2", t);
  E2E_REQUIRE_STATUS(first, 200);
  auto link = first.str("/@odata.nextLink");
  INFO("nextLink " << link);
  // BUG: the link is built from the decoded path, so '#' starts a fragment
  // that an HTTP client drops.
  CHECK(link.find('#') == std::string::npos);
  auto sent = link.substr(0, link.find('#')).substr(origin().size());
  auto second = get(sent, t);
  E2E_REQUIRE_STATUS(second, 200);
  CHECK(ids_of({first, second}) == expected);
}

TEST_CASE_METHOD(contoso, "events: invalid bodies are refused",
                 "[emulator][events]") {
  auto cal = create_calendar("CRM");
  auto target = calendar_events_path(admin_id, cal);
  SECTION("missing start") {
    check_error(
        post(target, tok,
             R"({"subject":"x","end":{"dateTime":"2026-12-01T11:00:00",)"
             R"("timeZone":"UTC"}})"),
        400, "ErrorInvalidRequest");
  }
  SECTION("missing end") {
    check_error(post(target, tok,
                     R"({"subject":"x","start":{"dateTime":)"
                     R"("2026-12-01T11:00:00","timeZone":"UTC"}})"),
                400, "ErrorInvalidRequest");
  }
  SECTION("end before start") {
    check_error(
        post(target, tok,
             event_body("x", "2026-12-01T11:00:00", "2026-12-01T10:59:59")),
        400, "ErrorInvalidRequest");
  }
  SECTION("an unknown zone") {
    check_error(
        post(target, tok,
             R"({"subject":"x","start":{"dateTime":"2026-12-01T10:00:00",)"
             R"("timeZone":"Mars Standard Time"},"end":{"dateTime":)"
             R"("2026-12-01T11:00:00","timeZone":"UTC"}})"),
        400, "TimeZoneNotSupportedException");
    check_error(
        post(target, tok,
             R"({"subject":"x","start":{"dateTime":"2026-12-01T10:00:00",)"
             R"("timeZone":"UTC"},"end":{"dateTime":)"
             R"("2026-12-01T11:00:00","timeZone":"Europe/Atlantis"}})"),
        400, "TimeZoneNotSupportedException");
  }
  SECTION("malformed JSON") {
    check_error(post(target, tok, R"({"subject":"x",)"), 400, "BadRequest");
    check_error(post(target, tok, "[]"), 400, "BadRequest");
    check_error(post(target, tok, ""), 400, "BadRequest");
  }
  SECTION("an unreadable dateTime") {
    check_error(post(target, tok, event_body("x", "tomorrow")), 400,
                "BadRequest");
  }
  SECTION("mistyped fields") {
    check_error(post(target, tok,
                     event_body("x", "2026-12-01T10:00:00",
                                "2026-12-01T11:00:00", R"(,"isAllDay":"yes")")),
                400, "BadRequest");
    check_error(post(target, tok, R"({"subject":1,"start":"now"})"), 400,
                "BadRequest");
  }
  CHECK(state().i64("/events") == 0);
  CHECK(get(target, tok).size("/value") == 0);
}

TEST_CASE_METHOD(contoso, "events: an invalid PATCH changes nothing",
                 "[emulator][events]") {
  auto created = create_event(events_path(admin_id), event_body("Keep"));
  auto path = event_path(admin_id, created.str("/id"));
  advance(1min);
  SECTION("end before start") {
    check_error(patch(path, tok,
                      R"({"end":{"dateTime":"2026-12-01T09:00:00",)"
                      R"("timeZone":"UTC"}})"),
                400, "ErrorInvalidRequest");
  }
  SECTION("an unknown zone") {
    check_error(patch(path, tok,
                      R"({"subject":"moved","start":{"dateTime":)"
                      R"("2026-12-01T10:00:00","timeZone":)"
                      R"("Mars Standard Time"}})"),
                400, "TimeZoneNotSupportedException");
  }
  SECTION("malformed JSON") {
    check_error(patch(path, tok, R"({"subject":)"), 400, "BadRequest");
  }
  auto got = get(path, tok);
  E2E_REQUIRE_STATUS(got, 200);
  CHECK(got.json() == created.json());
}

// == sendMail
// =============================================================================

TEST_CASE_METHOD(contoso, "mail: sendMail stores the message",
                 "[emulator][mail]") {
  const std::string message
      = R"({"subject":"Invitation","body":{"contentType":"Text",)"
        R"("content":"Welcome"},"toRecipients":[{"emailAddress":)"
        R"({"address":"pat@example.com","name":"Pat"}}]})";
  auto r = post(user_path("admin@contoso.example") + "/sendMail", tok,
                R"({"message":)" + message + "}");
  E2E_REQUIRE_STATUS(r, 202);
  CHECK(r.body.empty());
  CHECK(is_guid(r.header("request-id")));
  auto sent_at = now();
  advance(2s);
  E2E_REQUIRE_STATUS(post(user_path(admin_id) + "/sendMail", tok,
                          R"({"message":{"subject":"Quiet","toRecipients":[)"
                          R"({"emailAddress":{"address":"lee@example.com"}}]},)"
                          R"("saveToSentItems":false})"),
                     202);

  for (std::string key :
       {std::string{admin_id}, std::string{"admin%40CONTOSO.example"}}) {
    INFO("user " << key);
    auto mail = send("GET", "/_emulator/mail?user=" + key);
    E2E_REQUIRE_STATUS(mail, 200);
    REQUIRE(mail.size("/value") == 2);
    CHECK(mail.str("/value/0/from") == "Admin@contoso.example");
    CHECK(mail.str("/value/0/sentDateTime") == format_rfc3339(sent_at));
    CHECK(mail.boolean("/value/0/saveToSentItems"));
    CHECK(mail.json("/value/0/message") == message);
    CHECK(mail.str("/value/1/message/subject") == "Quiet");
    CHECK(mail.str("/value/1/sentDateTime")
          == format_rfc3339(sent_at + 2 * second_ms));
    CHECK_FALSE(mail.boolean("/value/1/saveToSentItems"));
  }
  // Alex sent nothing.
  auto alex = send("GET", "/_emulator/mail?user=" + alex_id);
  E2E_REQUIRE_STATUS(alex, 200);
  CHECK(alex.size("/value") == 0);
  CHECK(state().i64("/mail") == 2);
}

TEST_CASE_METHOD(contoso, "mail: sendMail needs recipients and JSON",
                 "[emulator][mail]") {
  auto target = user_path(admin_id) + "/sendMail";
  check_error(
      post(target, tok, R"({"message":{"subject":"x","toRecipients":[]}})"),
      400, "ErrorInvalidRecipients");
  check_error(post(target, tok, R"({"message":{"subject":"x"}})"), 400,
              "ErrorInvalidRecipients");
  check_error(post(target, tok, R"({"saveToSentItems":true})"), 400,
              "ErrorInvalidRecipients");
  check_error(post(target, tok, R"({"message":)"), 400, "BadRequest");
  check_error(post(user_path("ghost@contoso.example") + "/sendMail", tok,
                   R"({"message":{"toRecipients":[)"
                   R"({"emailAddress":{"address":"a@b.example"}}]}})"),
              404, "Request_ResourceNotFound");
  CHECK(state().i64("/mail") == 0);
  auto mail = send("GET", "/_emulator/mail?user=" + std::string{admin_id});
  CHECK(mail.size("/value") == 0);
}

TEST_CASE_METHOD(contoso, "mail: cc or bcc recipients are enough",
                 "[emulator][mail]") {
  // BUG: only toRecipients counts; Exchange sends a message that has its
  // recipients in ccRecipients or bccRecipients alone.
  auto target = user_path(admin_id) + "/sendMail";
  E2E_REQUIRE_STATUS(post(target, tok,
                          R"({"message":{"subject":"Digest","bccRecipients":[)"
                          R"({"emailAddress":{"address":"a@b.example"}}]}})"),
                     202);
  E2E_REQUIRE_STATUS(post(target, tok,
                          R"({"message":{"subject":"Digest","ccRecipients":[)"
                          R"({"emailAddress":{"address":"a@b.example"}}]}})"),
                     202);
  CHECK(state().i64("/mail") == 2);
}

// == routing
// ==============================================================================

TEST_CASE_METHOD(contoso, "routing: a wrong method is 405 with Allow",
                 "[emulator][routing]") {
  struct wrong {
    std::string method;
    std::string target;
    std::string allow;
  };
  const std::vector<wrong> cases{
      {"PUT", "/v1.0/users", "GET"},
      {"POST", user_path(admin_id), "GET"},
      {"GET", user_path(admin_id) + "/sendMail", "POST"},
      {"DELETE", calendars_path(admin_id), "GET, POST"},
      {"PATCH", calendar_path(admin_id, "x"), "GET, DELETE"},
      {"PUT", event_path(admin_id, "x"), "GET, PATCH, DELETE"},
      {"POST", calendar_events_path(admin_id, "c") + "/x",
       "GET, PATCH, DELETE"},
      {"GET", "/contoso.example/oauth2/v2.0/token", "POST"},
      {"DELETE", "/_emulator/state", "GET"},
      {"GET", "/_emulator/reset", "POST"},
      {"GET", "/_emulator/tenants", "POST"}};
  for (auto& c : cases) {
    INFO(c.method << " " << c.target);
    auto r = graph(c.method, c.target, tok);
    check_error(r, 405, "Request_BadRequest");
    CHECK(r.header("Allow") == c.allow);
  }
}

TEST_CASE_METHOD(contoso, "routing: an unknown route is 400 in Graph's shape",
                 "[emulator][routing]") {
  for (std::string target :
       {std::string{"/v1.0/groups"},
        "/v1.0/users/" + std::string{admin_id} + "/nonsense",
        std::string{"/nope"}, std::string{"/"},
        "/v1.0/users/" + std::string{admin_id} + "/events/x/y/z"}) {
    INFO("GET " << target);
    auto r = get(target, tok);
    check_error(r, 400, "BadRequest");
  }
  auto r = get("/v1.0/groups", tok);
  CHECK(r.str("/error/message").find("/v1.0/groups") != std::string::npos);
}

TEST_CASE_METHOD(contoso, "users: one user honours $select",
                 "[emulator][users]") {
  auto r = get(user_path(admin_id) + "?$select=id,accountEnabled", tok);
  E2E_REQUIRE_STATUS(r, 200);
  CHECK(r.keys("") == std::vector<std::string>{"accountEnabled", "id"});
  CHECK(r.boolean("/accountEnabled"));
  auto plain = get(user_path(admin_id), tok);
  E2E_REQUIRE_STATUS(plain, 200);
  CHECK_FALSE(plain.has("/accountEnabled"));
  CHECK(plain.has("/displayName"));
  check_error(get(user_path(admin_id) + "?$select=shoeSize", tok), 400,
              "Request_BadRequest");
}
