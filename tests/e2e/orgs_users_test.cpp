// End-to-end: organizations and users (create, read, update, list, rights).
#include <catch2/catch.hpp>

#include <set>

#include "tests/support/api_client.hpp"

using namespace crmsync::e2e;

namespace {

bool is_hex16(const std::string& s) {
  if (s.size() != 16)
    return false;
  for (char c : s)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
      return false;
  return true;
}

std::string user_body(std::string_view email, std::string_view name,
                      std::string_view profile, bool manage_users) {
  return "{\"email\":" + json_str(email) + ",\"name\":" + json_str(name)
         + ",\"profile\":" + json_str(profile)
         + ",\"manage_users\":" + (manage_users ? "true" : "false") + "}";
}

} // namespace

TEST_CASE("organizations: create, read, rename, change edition",
          "[e2e][orgs]") {
  test_node node;
  auto& api = node.api();

  auto created
      = api.post(admin_token, "/api/v1/orgs",
                 R"({"name":"Acme Corp","edition":"free",)"
                 R"("admin":{"email":"  Boss@Acme.EXAMPLE ","name":"The Boss",)"
                 R"("password":"correct horse battery"}})");
  E2E_REQUIRE_STATUS(created, 201);
  const auto org = created.str("/org/id");
  const auto admin_id = created.str("/admin/id");
  const auto admin_tok = created.str("/admin/token");
  CHECK(is_hex16(org));
  CHECK(is_hex16(admin_id));
  CHECK(created.str("/org/name") == "Acme Corp");
  CHECK(created.str("/org/edition") == "free");
  CHECK(created.str("/org/super_admin_id") == admin_id);
  CHECK(created.i64("/org/users") == 1);
  CHECK(created.i64("/org/events") == 0);
  CHECK(created.str("/admin/email") == "boss@acme.example");
  CHECK(created.str("/admin/name") == "The Boss");
  CHECK(created.str("/admin/org_id") == org);
  CHECK(created.str("/admin/profile") == "administrator");
  CHECK(created.boolean("/admin/manage_users"));
  CHECK(created.boolean("/admin/super_admin"));
  CHECK(created.boolean("/admin/has_password"));
  // Token: crm_<org><user><43 chars of secret>.
  CHECK(admin_tok.size() == 4 + 32 + 43);
  CHECK(admin_tok.rfind("crm_" + org + admin_id, 0) == 0);
  // Never any password material in an answer.
  CHECK(created.body.find("correct horse") == std::string::npos);
  CHECK(created.body.find("password_hash") == std::string::npos);
  CHECK(created.body.find("$argon2") == std::string::npos);

  // The token is shown once: reading the org or the admin user never shows it.
  auto got = api.get(admin_tok, org_path(org));
  E2E_REQUIRE_STATUS(got, 200);
  CHECK(got.json() == created.json("/org"));
  auto admin_user = api.get(admin_tok, user_path(org, admin_id));
  REQUIRE(admin_user.status == 200);
  CHECK_FALSE(admin_user.has("/token"));
  CHECK(admin_user.body.find(admin_tok.substr(36)) == std::string::npos);
  CHECK(admin_user.str("/email") == "boss@acme.example");
  CHECK(admin_user.body.find("password_hash") == std::string::npos);

  // The service admin may read it too.
  auto by_service = api.get(admin_token, org_path(org));
  REQUIRE(by_service.status == 200);
  CHECK(by_service.json() == created.json("/org"));

  // Rename by the organization's administrator.
  auto renamed = api.patch(admin_tok, org_path(org), R"({"name":"Acme Inc."})");
  E2E_REQUIRE_STATUS(renamed, 200);
  CHECK(renamed.str("/name") == "Acme Inc.");
  CHECK(renamed.str("/edition") == "free");
  CHECK(renamed.str("/id") == org);
  CHECK(api.get(admin_tok, org_path(org)).str("/name") == "Acme Inc.");

  // Edition is billing: a user (even the super admin) may not change it.
  auto by_user = api.patch(admin_tok, org_path(org), R"({"edition":"paid"})");
  CHECK(by_user.status == 403);
  CHECK(by_user.error_code() == "forbidden");
  // ... nor sneak it in next to a name change.
  auto mixed = api.patch(admin_tok, org_path(org),
                         R"({"name":"Sneaky","edition":"paid"})");
  CHECK(mixed.status == 403);
  auto after_refusals = api.get(admin_tok, org_path(org));
  CHECK(after_refusals.str("/edition") == "free");
  CHECK(after_refusals.str("/name") == "Acme Inc.");

  // The service admin may.
  auto upgraded
      = api.patch(admin_token, org_path(org), R"({"edition":"paid"})");
  E2E_REQUIRE_STATUS(upgraded, 200);
  CHECK(upgraded.str("/edition") == "paid");
  CHECK(upgraded.str("/name") == "Acme Inc.");
  CHECK(api.get(admin_tok, org_path(org)).str("/edition") == "paid");

  // A standard user may neither rename nor change the edition.
  auto std_user = create_user(api, admin_tok, org, "worker@acme.example",
                              "Worker", "standard", false);
  auto rename_std
      = api.patch(std_user.token, org_path(org), R"({"name":"Mine"})");
  CHECK(rename_std.status == 403);
  CHECK(rename_std.error_code() == "forbidden");
  CHECK(api.get(std_user.token, org_path(org)).str("/name") == "Acme Inc.");
  CHECK(api.get(std_user.token, org_path(org)).i64("/users") == 2);

  // Creating an organization needs the service admin token.
  const std::string other_org
      = R"({"name":"Rogue","edition":"free","admin":{"email":"rogue@rogue.example","name":"R"}})";
  auto rogue = api.post(admin_tok, "/api/v1/orgs", other_org);
  CHECK(rogue.status == 403);
  CHECK(rogue.error_code() == "forbidden");
  auto rogue_std = api.post(std_user.token, "/api/v1/orgs", other_org);
  CHECK(rogue_std.status == 403);
  // Nothing was created: the service admin sees a single organization and
  // the e-mail address is still free.
  auto tenants = api.get(admin_token, "/admin/v1/tenants");
  REQUIRE(tenants.status == 200);
  CHECK(tenants.size("/items") == 1);
  auto legit = api.post(admin_token, "/api/v1/orgs", other_org);
  CHECK(legit.status == 201);
  CHECK(legit.boolean("/admin/has_password") == false);

  // An organization whose admin e-mail is taken is refused.
  auto dup = api.post(
      admin_token, "/api/v1/orgs",
      R"({"name":"Dup","edition":"paid","admin":{"email":"BOSS@acme.example","name":"B"}})");
  CHECK(dup.status == 409);
  CHECK(dup.error_code() == "email_taken");
  CHECK(api.get(admin_token, "/admin/v1/tenants").size("/items") == 2);
  CHECK(node.stop() == 0);
}

TEST_CASE("users: create, read, list with paging, duplicates, rights",
          "[e2e][users]") {
  test_node node;
  auto& api = node.api();
  auto acme = create_org(api, "Acme", "admin@acme.example");
  auto other = create_org(api, "Other", "admin@other.example");

  // With a password.
  auto with_pw = api.post(acme.admin_token, users_path(acme.id),
                          R"({"email":"Alice@Acme.Example","name":"Alice",)"
                          R"("profile":"administrator","manage_users":true,)"
                          R"("password":"s3cret-passw0rd"})");
  E2E_REQUIRE_STATUS(with_pw, 201);
  CHECK(with_pw.str("/email") == "alice@acme.example");
  CHECK(with_pw.str("/name") == "Alice");
  CHECK(with_pw.str("/profile") == "administrator");
  CHECK(with_pw.boolean("/manage_users"));
  CHECK_FALSE(with_pw.boolean("/super_admin"));
  CHECK(with_pw.boolean("/has_password"));
  CHECK(with_pw.str("/org_id") == acme.id);
  CHECK(with_pw.body.find("s3cret") == std::string::npos);
  CHECK(with_pw.body.find("password_hash") == std::string::npos);
  CHECK(with_pw.body.find("$argon2") == std::string::npos);
  const auto alice_id = with_pw.str("/id");
  const auto alice_tok = with_pw.str("/token");
  CHECK(alice_tok.rfind("crm_" + acme.id + alice_id, 0) == 0);
  CHECK(alice_tok.size() == 79);

  // Without a password.
  auto bob = create_user(api, acme.admin_token, acme.id, "bob@acme.example",
                         "Bob", "standard", false);
  CHECK_FALSE(bob.created.boolean("/has_password"));
  CHECK(bob.created.str("/profile") == "standard");
  CHECK_FALSE(bob.created.boolean("/manage_users"));

  // GET returns the same user, without the token.
  auto got = api.get(bob.token, user_path(acme.id, alice_id));
  E2E_REQUIRE_STATUS(got, 200);
  CHECK_FALSE(got.has("/token"));
  CHECK(got.body.find("s3cret") == std::string::npos);
  CHECK(got.body.find("password_hash") == std::string::npos);
  for (auto field : {"/id", "/org_id", "/email", "/name", "/profile",
                     "/created_at", "/modified_at"})
    CHECK(got.str(field) == with_pw.str(field));
  CHECK(got.boolean("/has_password"));
  // The new tokens work.
  CHECK(api.get(alice_tok, org_path(acme.id)).status == 200);
  CHECK(api.get(bob.token, org_path(acme.id)).status == 200);
  // An unknown user of this organization.
  auto missing = api.get(bob.token, user_path(acme.id, "00000000000000aa"));
  CHECK(missing.status == 404);
  CHECK(missing.error_code() == "not_found");

  // Duplicate e-mail, any case, same organization: 409 email_taken.
  auto email_taken = [&](const std::string& token, const std::string& org,
                         std::string_view email, std::string_view name) {
    INFO("adding " << email << " to " << org);
    auto r = api.post(token, users_path(org),
                      user_body(email, name, "standard", false));
    CHECK(r.status == 409);
    CHECK(r.error_code() == "email_taken");
    return r;
  };
  CHECK(
      email_taken(alice_tok, acme.id, "BOB@acme.EXAMPLE", "Bob 2").error_field()
      == "email");
  // ... and in another organization (addresses are unique service-wide).
  CHECK(
      email_taken(other.admin_token, other.id, "Bob@Acme.Example", "Other Bob")
          .error_field()
      == "email");
  // ... also against an organization's admin.
  email_taken(acme.admin_token, acme.id, "ADMIN@other.example", "X");
  // Counts did not move.
  CHECK(api.get(acme.admin_token, org_path(acme.id)).i64("/users") == 3);
  CHECK(api.get(other.admin_token, org_path(other.id)).i64("/users") == 1);

  // Without Manage Users nobody is added, whatever the profile.
  auto denied
      = api.post(bob.token, users_path(acme.id),
                 user_body("carol@acme.example", "Carol", "standard", false));
  CHECK(denied.status == 403);
  CHECK(denied.error_code() == "forbidden");
  auto admin_no_manage
      = create_user(api, acme.admin_token, acme.id, "dave@acme.example", "Dave",
                    "administrator", false);
  auto denied2
      = api.post(admin_no_manage.token, users_path(acme.id),
                 user_body("carol@acme.example", "Carol", "standard", false));
  CHECK(denied2.status == 403);
  CHECK(denied2.error_code() == "forbidden");
  // The refused address is still free, and a standard user with Manage
  // Users may add people.
  auto manager = create_user(api, acme.admin_token, acme.id,
                             "erin@acme.example", "Erin", "standard", true);
  auto carol
      = api.post(manager.token, users_path(acme.id),
                 user_body("carol@acme.example", "Carol", "standard", false));
  CHECK(carol.status == 201);

  // Paging: 7 users so far; add more to reach 23, walk with limit 4.
  std::set<std::string> expected{acme.admin_id, alice_id,
                                 bob.id,        admin_no_manage.id,
                                 manager.id,    carol.str("/id")};
  for (int i = 0; i < 17; ++i) {
    auto u = create_user(api, acme.admin_token, acme.id,
                         "user" + std::to_string(i) + "@acme.example",
                         "User " + std::to_string(i));
    expected.insert(u.id);
  }
  REQUIRE(expected.size() == 23);
  int pages = 0;
  auto items = walk_pages(api, bob.token, users_path(acme.id), 4, 100, &pages);
  CHECK(items.size() == 23);
  CHECK(pages >= 6);
  CHECK(pages <= 7);
  std::set<std::string> seen;
  for (auto& item : items) {
    simdjson::dom::parser p;
    simdjson::dom::element e = p.parse(item);
    std::string_view id = e["id"].get_string().value();
    std::string_view org_id = e["org_id"].get_string().value();
    CHECK(org_id == acme.id);
    CHECK(item.find("\"token\"") == std::string::npos);
    CHECK(item.find("password_hash") == std::string::npos);
    CHECK(seen.insert(std::string{id}).second); // each exactly once
  }
  CHECK(seen == expected);
  // Another organization's listing has only its admin.
  auto other_list = walk_pages(api, other.admin_token, users_path(other.id), 4);
  CHECK(other_list.size() == 1);

  // The default page (limit 100) holds them all, with no next page.
  auto all = api.get(acme.admin_token, users_path(acme.id));
  REQUIRE(all.status == 200);
  CHECK(all.size("/items") == 23);
  CHECK(all.is_null("/next_cursor"));
  // limit=1000 is the maximum and is accepted.
  CHECK(api.get(acme.admin_token, users_path(acme.id) + "?limit=1000").status
        == 200);
  CHECK(api.get(acme.admin_token, org_path(acme.id)).i64("/users") == 23);
  CHECK(node.stop() == 0);
}

TEST_CASE("users: concurrent sign-ups with one address, one winner",
          "[e2e][users][concurrency]") {
  test_node node;
  constexpr int n = 8;
  std::vector<org_info> orgs;
  for (int i = 0; i < n; ++i)
    orgs.push_back(create_org(node.api(), "Org " + std::to_string(i),
                              "admin" + std::to_string(i) + "@race.example"));
  // Same address, different case, different organizations.
  std::vector<race_request> sign_ups;
  for (int i = 0; i < n; ++i)
    sign_ups.push_back(
        {"POST", users_path(orgs[i].id), orgs[i].admin_token,
         user_body(i % 2 ? "Racer@Race.example" : "racer@race.EXAMPLE",
                   "Racer " + std::to_string(i), "standard", false)});
  auto [results, errors] = send_at_once(node.port(), sign_ups);
  int created = 0, taken = 0;
  std::string winner_id, winner_org;
  for (int i = 0; i < n; ++i) {
    INFO("racer " << i << ": " << results[i].describe() << " " << errors[i]);
    if (results[i].status == 201) {
      ++created;
      winner_id = results[i].str("/id");
      winner_org = orgs[i].id;
    } else {
      CHECK(results[i].status == 409);
      CHECK(results[i].error_code() == "email_taken");
      ++taken;
    }
  }
  CHECK(created == 1);
  CHECK(taken == n - 1);
  // The address belongs to the winner, and only the winner's org grew.
  auto who = node.api().get(admin_token, "/admin/v1/users/racer@race.example");
  REQUIRE(who.status == 200);
  CHECK(who.str("/user/id") == winner_id);
  CHECK(who.str("/org/id") == winner_org);
  for (int i = 0; i < n; ++i)
    CHECK(
        node.api().get(orgs[i].admin_token, org_path(orgs[i].id)).i64("/users")
        == (orgs[i].id == winner_org ? 2 : 1));
  CHECK(node.stop() == 0);
}

TEST_CASE("organizations: a taken admin e-mail is reported at admin.email",
          "[e2e][orgs]") {
  test_node node;
  auto& api = node.api();
  create_org(api, "Acme", "boss@acme.example");
  auto before = api.get(admin_token, "/admin/v1/tenants");
  auto dup = api.post(
      admin_token, "/api/v1/orgs",
      R"({"name":"Dup","edition":"paid","admin":{"email":"BOSS@acme.example","name":"B"}})");
  CHECK(dup.status == 409);
  CHECK(dup.error_code() == "email_taken");
  // The field names where the address is in this request's body, as the
  // route's validation errors do ("admin.email"); there is no top-level
  // "email" in an organization request.
  CHECK(dup.error_field() == "admin.email");
  CHECK(api.get(admin_token, "/admin/v1/tenants").json() == before.json());
  CHECK(node.stop() == 0);
}

TEST_CASE("users: `me` names the caller's own user in user paths",
          "[e2e][orgs][me]") {
  test_node node;
  auto& api = node.api();
  auto created
      = api.post(admin_token, "/api/v1/orgs",
                 R"({"name":"Me Corp","edition":"free",)"
                 R"("admin":{"email":"boss@me.example","name":"The Boss",)"
                 R"("password":"correct horse battery"}})");
  E2E_REQUIRE_STATUS(created, 201);
  const auto org = created.str("/org/id");
  const auto boss = created.str("/admin/id");
  const auto boss_tok = created.str("/admin/token");
  auto other = api.post(boss_tok, org_path(org) + "/users",
                        user_body("ann@me.example", "Ann", "standard", false));
  E2E_REQUIRE_STATUS(other, 201);
  const auto ann = other.str("/id");
  const auto ann_tok = other.str("/token");

  // Each caller's `me` is their own user, not anyone else's.
  auto me = api.get(ann_tok, user_path(org, "me"));
  E2E_REQUIRE_STATUS(me, 200);
  CHECK(me.str("/id") == ann);
  CHECK(me.str("/email") == "ann@me.example");
  auto boss_me = api.get(boss_tok, user_path(org, "me"));
  E2E_REQUIRE_STATUS(boss_me, 200);
  CHECK(boss_me.str("/id") == boss);

  // Events created under `me` belong to the caller and list under their id.
  auto ev = api.post(ann_tok, user_events_path(org, "me"),
                     R"({"title":"Mine","start":"2026-01-05T10:00:00Z",)"
                     R"("end":"2026-01-05T11:00:00Z"})");
  E2E_REQUIRE_STATUS(ev, 201);
  CHECK(ev.str("/owner") == ann);
  auto listed = api.get(ann_tok, user_events_path(org, "me"));
  E2E_REQUIRE_STATUS(listed, 200);
  CHECK(listed.body.find(ev.str("/id")) != std::string::npos);
  auto by_id = api.get(ann_tok, user_events_path(org, ann));
  CHECK(by_id.json() == listed.json());

  auto sync = api.get(ann_tok, user_path(org, "me") + "/calendar-sync");
  CHECK(sync.status == 200);

  // The service-admin token has no user: `me` is refused, clearly.
  auto svc = api.get(admin_token, user_path(org, "me"));
  CHECK(svc.status == 400);
  CHECK(svc.error_code() == "invalid_field");
  CHECK(svc.body.find("service-admin") != std::string::npos);
  auto svc_events = api.get(admin_token, user_events_path(org, "me"));
  CHECK(svc_events.status == 400);

  // `me` does not reach into another organization.
  auto elsewhere = api.post(admin_token, "/api/v1/orgs",
                            R"({"name":"Else","edition":"free",)"
                            R"("admin":{"email":"x@else.example","name":"X",)"
                            R"("password":"correct horse battery"}})");
  E2E_REQUIRE_STATUS(elsewhere, 201);
  auto cross = api.get(ann_tok, user_path(elsewhere.str("/org/id"), "me"));
  CHECK(cross.status >= 400);
  CHECK(cross.body.find("ann@me.example") == std::string::npos);
  // Other words stay ids: an unknown one is a 404.
  CHECK(api.get(ann_tok, user_path(org, "mine")).status == 404);
}
