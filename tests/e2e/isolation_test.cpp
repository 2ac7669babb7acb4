// End-to-end: organizations cannot see each other; tokens are verified.
#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>

#include "tests/support/api_client.hpp"

using namespace crmsync::e2e;

TEST_CASE("isolation: another organization looks like a missing one",
          "[e2e][isolation]") {
  test_node node;
  auto& api = node.api();
  auto a = create_org(api, "Alpha", "admin@alpha.example");
  auto a1 = create_user(api, a.admin_token, a.id, "one@alpha.example", "One");
  auto b = create_org(api, "Beta", "admin@beta.example");
  auto b1 = create_user(api, b.admin_token, b.id, "one@beta.example", "One B");
  auto eb = create_event(api, b.id, b1,
                         event_body("Beta secret", "2026-04-01T10:00:00Z",
                                    "2026-04-01T11:00:00Z"));
  const auto eb_id = eb.str("/id");
  auto ea = create_event(
      api, a.id, a1,
      event_body("Alpha", "2026-04-01T10:00:00Z", "2026-04-01T11:00:00Z"));
  auto b_org_before = api.get(b.admin_token, org_path(b.id));
  auto b_users_before = api.get(b.admin_token, users_path(b.id));
  REQUIRE(b_org_before.status == 200);
  REQUIRE(b_users_before.status == 200);

  const std::string nonexistent = "0123456789abcdef";
  auto missing_org = api.get(a.admin_token, org_path(nonexistent));
  REQUIRE(missing_org.status == 404);
  CHECK(missing_org.error_code() == "not_found");
  // Not even a well-formed id.
  auto garbage_org = api.get(a.admin_token, org_path("not-an-org"));
  CHECK(garbage_org.status == 404);
  CHECK(garbage_org.body == missing_org.body);

  const std::string user_json
      = R"({"email":"spy@alpha.example","name":"Spy","profile":"standard"})";
  const std::string ev_json
      = event_body("Spy", "2026-04-02T10:00:00Z", "2026-04-02T11:00:00Z");
  struct probe {
    const char* method;
    std::string path_b;       // on org B
    std::string path_missing; // same route, nonexistent org
    std::string body;
  };
  auto on = [&](const std::string& org, const std::string& rest) {
    return org_path(org) + rest;
  };
  std::vector<probe> probes{
      {"GET", on(b.id, ""), on(nonexistent, ""), ""},
      {"PATCH", on(b.id, ""), on(nonexistent, ""), R"({"name":"Pwned"})"},
      {"GET", on(b.id, "/users"), on(nonexistent, "/users"), ""},
      {"POST", on(b.id, "/users"), on(nonexistent, "/users"), user_json},
      {"GET", on(b.id, "/users/" + b1.id), on(nonexistent, "/users/" + b1.id),
       ""},
      {"GET", on(b.id, "/users/" + b1.id + "/events"),
       on(nonexistent, "/users/" + b1.id + "/events"), ""},
      {"POST", on(b.id, "/users/" + b1.id + "/events"),
       on(nonexistent, "/users/" + b1.id + "/events"), ev_json},
      {"GET", on(b.id, "/events/" + eb_id), on(nonexistent, "/events/" + eb_id),
       ""},
      {"PATCH", on(b.id, "/events/" + eb_id),
       on(nonexistent, "/events/" + eb_id), R"({"title":"Pwned"})"},
      {"DELETE", on(b.id, "/events/" + eb_id),
       on(nonexistent, "/events/" + eb_id), ""},
      {"POST", on(b.id, "/events/import"), on(nonexistent, "/events/import"),
       "{\"owner\":" + json_str(b1.id) + ",\"events\":[" + ev_json + "]}"},
      {"POST", on(b.id, "/events/mass-update"),
       on(nonexistent, "/events/mass-update"),
       "{\"ids\":[" + json_str(eb_id) + "],\"set\":{\"title\":\"Pwned\"}}"},
  };
  for (const auto* token : {&a.admin_token, &a1.token}) {
    for (auto& p : probes) {
      INFO(p.method << " " << p.path_b);
      auto r = api.request(p.method, p.path_b, *token, p.body);
      auto m = api.request(p.method, p.path_missing, *token, p.body);
      CHECK(r.status == 404);
      CHECK(r.error_code() == "not_found");
      // Indistinguishable from an organization that does not exist.
      CHECK(r.body == m.body);
      CHECK(r.body == missing_org.body);
    }
  }

  // Org B is untouched.
  CHECK(api.get(b.admin_token, org_path(b.id)).json() == b_org_before.json());
  CHECK(api.get(b.admin_token, users_path(b.id)).json()
        == b_users_before.json());
  auto eb_after = api.get(b1.token, event_path(b.id, eb_id));
  REQUIRE(eb_after.status == 200);
  CHECK(eb_after.json() == eb.json());
  // The spy user was not created anywhere: the address is still free.
  CHECK(api.post(a.admin_token, users_path(a.id), user_json).status == 201);

  // An event id of org B through org A's path: not found (ids are per org).
  auto cross_event = api.get(a.admin_token, event_path(a.id, eb_id));
  CHECK(cross_event.status == 404);
  CHECK(api.patch(a.admin_token, event_path(a.id, eb_id), R"({"title":"x"})")
            .status
        == 404);
  CHECK(api.del(a.admin_token, event_path(a.id, eb_id)).status == 404);
  // A user of org B through org A's path: not found either.
  CHECK(api.get(a.admin_token, user_path(a.id, b1.id)).status == 404);
  CHECK(api.get(a.admin_token, user_events_path(a.id, b1.id)).status == 404);
  auto import_foreign_owner = api.post(
      a.admin_token, org_path(a.id) + "/events/import",
      "{\"owner\":" + json_str(b1.id) + ",\"events\":[" + ev_json + "]}");
  CHECK(import_foreign_owner.status == 404);
  auto mass_foreign = api.post(
      a.admin_token, org_path(a.id) + "/events/mass-update",
      "{\"ids\":[" + json_str(eb_id) + "],\"set\":{\"title\":\"x\"}}");
  CHECK(mass_foreign.status == 404);
  CHECK(mass_foreign.error_field() == "ids[0]");
  CHECK(api.get(b1.token, event_path(b.id, eb_id)).json() == eb.json());

  // -- tokens
  // ------------------------------------------------------------------
  auto expect_401 = [&](const std::string& token, const std::string& path) {
    INFO("token '" << token << "' on " << path);
    auto r = api.get(token, path);
    CHECK(r.status == 401);
    CHECK(r.error_code() == "unauthorized");
    CHECK(r.header("WWW-Authenticate") == "Bearer");
  };
  // Garbage.
  expect_401("garbage", org_path(b.id));
  expect_401("crm_", org_path(b.id));
  expect_401(std::string(79, 'x'), org_path(b.id));
  // Forged: the right shape and ids, a made-up secret.
  const std::string fake_secret(43, 'A');
  expect_401("crm_" + b.id + b1.id + fake_secret, org_path(b.id));
  expect_401("crm_" + b.id + b1.id + fake_secret, event_path(b.id, eb_id));
  expect_401("crm_" + b.id + b.admin_id + fake_secret, users_path(b.id));
  // A real token with one character of the secret changed.
  auto tampered = b1.token;
  tampered.back() = tampered.back() == 'A' ? 'B' : 'A';
  expect_401(tampered, org_path(b.id));
  // Org A's user ids with an invalid secret, aimed at org B: 401 (not 404).
  expect_401("crm_" + a.id + a1.id + fake_secret, org_path(b.id));
  expect_401("crm_" + a.id + a1.id + fake_secret, event_path(b.id, eb_id));
  expect_401("crm_" + a.id + a1.id + fake_secret, org_path(a.id));
  // A's real user token with B's org id in it: the token names its org.
  expect_401("crm_" + b.id + a1.token.substr(20), org_path(b.id));
  // An organization that does not exist.
  expect_401("crm_" + nonexistent + a1.id + fake_secret, org_path(nonexistent));
  // A user id that does not exist in B.
  expect_401("crm_" + b.id + "00000000000000aa" + fake_secret, org_path(b.id));
  // Malformed Authorization headers.
  auto basic = api.request("GET", org_path(a.id), "", "", "",
                           {{"Authorization", "Basic dXNlcjpwYXNz"}});
  CHECK(basic.status == 401);
  CHECK(basic.error_code() == "invalid_token");
  auto none = api.get("", org_path(a.id));
  CHECK(none.status == 401);
  CHECK(none.error_code() == "missing_token");

  // Writes with forged tokens change nothing.
  CHECK(api.patch("crm_" + b.id + b1.id + fake_secret, event_path(b.id, eb_id),
                  R"({"title":"Forged"})")
            .status
        == 401);
  CHECK(
      api.del("crm_" + b.id + b.admin_id + fake_secret, event_path(b.id, eb_id))
          .status
      == 401);
  CHECK(api.get(b1.token, event_path(b.id, eb_id)).json() == eb.json());
  CHECK(api.get(a1.token, event_path(a.id, ea.str("/id"))).json() == ea.json());
  CHECK(node.stop() == 0);
}

TEST_CASE_METHOD(
    acme_fixture,
    "auth: the Bearer scheme name is case-insensitive (RFC 7235 2.1)",
    "[e2e][isolation][auth]") {
  for (const char* scheme : {"Bearer", "bearer", "BEARER", "bEaReR"}) {
    INFO("scheme " << scheme);
    auto r = api.request(
        "GET", org_path(org.id), "", "", "",
        {{"Authorization", std::string{scheme} + " " + org.admin_token}});
    CHECK(r.status == 200);
    auto admin = api.request(
        "GET", "/admin/v1/status", "", "", "",
        {{"Authorization", std::string{scheme} + " " + admin_token}});
    CHECK(admin.status == 200);
  }
  CHECK(node.stop() == 0);
}

TEST_CASE_METHOD(acme_fixture,
                 "auth: a forged token is refused before any password hashing",
                 "[e2e][isolation][auth]") {
  using clock = std::chrono::steady_clock;
  auto ms_since = [](clock::time_point t) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(clock::now()
                                                                 - t)
        .count();
  };
  // What one user creation with a password (one Argon2 hash) costs here.
  auto t0 = clock::now();
  for (int i = 0; i < 2; ++i)
    create_user(api, org.admin_token, org.id,
                "legit" + std::to_string(i) + "@acme.example", "Legit",
                "standard", false, "a long enough password");
  const auto per_hash_ms = std::max<int64_t>(1, ms_since(t0) / 2);

  // The same request with a forged token (right shape, real ids, made-up
  // secret), 20 times. Each must be a cheap 401: an unauthenticated caller
  // must not be able to make the node run the password KDF.
  const std::string forged
      = "crm_" + org.id + org.admin_id + std::string(43, 'A');
  t0 = clock::now();
  for (int i = 0; i < 20; ++i) {
    auto r = api.post(
        forged, users_path(org.id),
        "{\"email\":\"forged" + std::to_string(i)
            + "@acme.example\",\"name\":\"F\",\"profile\":\"standard\","
              "\"password\":\"a long enough password\"}");
    CHECK(r.status == 401);
  }
  const auto forged_ms = ms_since(t0);
  INFO("one hashed creation: " << per_hash_ms << " ms; 20 forged requests: "
                               << forged_ms << " ms");
  CHECK(forged_ms < 5 * per_hash_ms);
  CHECK(api.get(org.admin_token, org_path(org.id)).i64("/users") == 3);
  CHECK(node.stop() == 0);
}

TEST_CASE_METHOD(acme_fixture,
                 "auth: a forged user token is 401 on every route, not 403",
                 "[e2e][isolation][auth]") {
  auto ev = create_event(
      api, org,
      event_body("e", "2026-06-01T09:00:00Z", "2026-06-01T10:00:00Z"));
  // Well-formed, the real ids of the org's super admin, a made-up secret.
  const std::string forged
      = "crm_" + org.id + org.admin_id + std::string(43, 'F');
  struct call {
    const char* method;
    std::string target;
    std::string body;
  };
  const std::vector<call> calls{
      {"GET", org_path(org.id), ""},
      {"PATCH", org_path(org.id), R"({"name":"X"})"},
      {"GET", users_path(org.id), ""},
      {"POST", users_path(org.id),
       R"({"email":"z@acme.example","name":"Z","profile":"standard"})"},
      {"GET", event_path(org.id, ev.str("/id")), ""},
      {"DELETE", event_path(org.id, ev.str("/id")), ""},
      // Routes that involve no organization: the token is just as invalid.
      {"POST", "/api/v1/orgs",
       R"({"name":"X","edition":"free","admin":{"email":"x@x.example","name":"X"}})"},
      {"GET", "/admin/v1/status", ""},
      {"GET", "/admin/v1/tenants", ""},
      {"GET", "/admin/v1/users/" + org.admin_id, ""},
  };
  for (auto& c : calls) {
    INFO(c.method << " " << c.target);
    auto r = api.request(c.method, c.target, forged, c.body);
    CHECK(r.status == 401);
    CHECK(r.error_code() == "unauthorized");
  }
  // A real user token (even the super admin's) is a 403 there, as it should be.
  CHECK(api.get(org.admin_token, "/admin/v1/status").status == 403);
  CHECK(api.get(org.admin_token, event_path(org.id, ev.str("/id"))).json()
        == ev.json());
  CHECK(node.stop() == 0);
}
