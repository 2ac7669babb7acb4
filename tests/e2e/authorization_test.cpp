// End-to-end: who may do what to users and events (profiles, permissions).
//
// A caller grants only what it holds: only administrators create
// administrators, only a super administrator creates another one, and a
// permission the caller lacks cannot be given. Events are read by their
// owner, administrators and holders of View All Events. Every refusal is a
// 403 in the API's error shape and changes nothing.
#include <catch2/catch.hpp>

#include "tests/support/api_client.hpp"

using namespace crmsync::e2e;

namespace {

// A POST …/users body; `extra` adds fields (",\"super_admin\":true").
std::string new_user(std::string_view email, std::string_view profile,
                     bool manage_users, std::string_view extra = {}) {
  return "{\"email\":" + json_str(email) + ",\"name\":\"Someone\""
         + ",\"profile\":" + json_str(profile) + ",\"manage_users\":"
         + (manage_users ? "true" : "false") + std::string{extra} + "}";
}

// Acme's super administrator plus an administrator and a standard user
// with Manage Users, both added by the super administrator.
struct acme_staff : acme_fixture {
  user_info admin
      = create_user(api, org.admin_token, org.id, "alice@acme.example", "Alice",
                    "administrator", true);
  user_info manager
      = create_user(api, org.admin_token, org.id, "mark@acme.example", "Mark",
                    "standard", true);

  // A refused creation: 403 with `code` naming `field`, and no trace of the
  // user: no account, the address still free, the count unchanged.
  void require_refused(const api_response& r, std::string_view email,
                       std::string_view code, std::string_view field) {
    INFO(r.describe());
    CHECK(r.status == 403);
    CHECK(r.error_code() == code);
    CHECK(r.error_field() == field);
    CHECK_FALSE(r.str("/error/message").empty());
    CHECK_FALSE(r.has("/token"));
    CHECK(api.get(admin_token, "/admin/v1/users/" + std::string{email}).status
          == 404);
    CHECK(api.get(org.admin_token, org_path(org.id)).i64("/users")
          == users_before);
    for (auto& item : walk_pages(api, org.admin_token, users_path(org.id), 100))
      CHECK(item.find(std::string{email}) == std::string::npos);
  }

  int64_t users_before = 3;
};

} // namespace

TEST_CASE_METHOD(acme_staff,
                 "authorization: Manage Users without administrator rights "
                 "cannot create an administrator",
                 "[e2e][authz][users]") {
  // The escalation: a standard user with Manage Users adds an administrator.
  auto escalated
      = api.post(manager.token, users_path(org.id),
                 new_user("mallory@acme.example", "administrator", true));
  require_refused(escalated, "mallory@acme.example", "administrator_required",
                  "profile");
  // ... nor a super administrator.
  auto super = api.post(manager.token, users_path(org.id),
                        new_user("mallory@acme.example", "administrator", true,
                                 ",\"super_admin\":true"));
  require_refused(super, "mallory@acme.example", "super_admin_required",
                  "super_admin");
  // The refusal is in the audit log, naming who tried.
  auto audit = api.get(org.admin_token, org_path(org.id) + "/audit");
  E2E_REQUIRE_STATUS(audit, 200);
  CHECK(audit.body.find("user.refused") != std::string::npos);
  CHECK(audit.body.find("mark@acme.example") != std::string::npos);

  // Adding standard users (with Manage Users, which Mark holds) still works.
  auto carol = api.post(manager.token, users_path(org.id),
                        new_user("carol@acme.example", "standard", true));
  E2E_REQUIRE_STATUS(carol, 201);
  CHECK(carol.str("/profile") == "standard");
  CHECK(carol.boolean("/manage_users"));
  CHECK_FALSE(carol.boolean("/super_admin"));
  CHECK_FALSE(carol.boolean("/view_all_events"));
  // The refused address was never claimed: an administrator may use it.
  auto mallory = api.post(admin.token, users_path(org.id),
                          new_user("mallory@acme.example", "standard", false));
  E2E_REQUIRE_STATUS(mallory, 201);
  CHECK(api.get(org.admin_token, org_path(org.id)).i64("/users") == 5);
  CHECK(node.stop() == 0);
}

TEST_CASE_METHOD(acme_staff,
                 "authorization: administrators create administrators, only "
                 "the super administrator creates a super administrator",
                 "[e2e][authz][users]") {
  // An administrator (not super) may add an administrator.
  auto dan = api.post(admin.token, users_path(org.id),
                      new_user("dan@acme.example", "administrator", true));
  E2E_REQUIRE_STATUS(dan, 201);
  CHECK(dan.str("/profile") == "administrator");
  CHECK_FALSE(dan.boolean("/super_admin"));
  users_before = 4;

  // ... but not a super administrator.
  auto by_admin = api.post(admin.token, users_path(org.id),
                           new_user("sid@acme.example", "administrator", true,
                                    ",\"super_admin\":true"));
  require_refused(by_admin, "sid@acme.example", "super_admin_required",
                  "super_admin");

  // A super administrator is always an administrator.
  auto standard_super = api.post(
      org.admin_token, users_path(org.id),
      new_user("sid@acme.example", "standard", true, ",\"super_admin\":true"));
  CHECK(standard_super.status == 400);
  CHECK(standard_super.error_field() == "super_admin");

  // The super administrator may add another one.
  auto sid = api.post(org.admin_token, users_path(org.id),
                      new_user("sid@acme.example", "administrator", true,
                               ",\"super_admin\":true"));
  E2E_REQUIRE_STATUS(sid, 201);
  CHECK(sid.str("/profile") == "administrator");
  CHECK(sid.boolean("/super_admin"));
  auto stored = api.get(admin_token, "/admin/v1/users/sid@acme.example");
  E2E_REQUIRE_STATUS(stored, 200);
  CHECK(stored.boolean("/user/super_admin"));
  // ... and so may the service admin.
  auto by_service = api.post(admin_token, users_path(org.id),
                             new_user("sue@acme.example", "administrator",
                                      false, ",\"super_admin\":true"));
  E2E_REQUIRE_STATUS(by_service, 201);
  CHECK(by_service.boolean("/super_admin"));
  // The organization's own super administrator is unchanged.
  CHECK(api.get(org.admin_token, org_path(org.id)).str("/super_admin_id")
        == org.admin_id);
  CHECK(node.stop() == 0);
}

TEST_CASE_METHOD(acme_staff,
                 "authorization: nobody grants a permission they lack",
                 "[e2e][authz][users]") {
  // Mark manages users but may not view everyone's events: he cannot give
  // that permission.
  auto viewer = api.post(manager.token, users_path(org.id),
                         new_user("vic@acme.example", "standard", false,
                                  ",\"view_all_events\":true"));
  require_refused(viewer, "vic@acme.example", "permission_not_held",
                  "view_all_events");
  // One who holds it may; an administrator holds it by profile.
  auto auditor = api.post(org.admin_token, users_path(org.id),
                          new_user("aud@acme.example", "standard", true,
                                   ",\"view_all_events\":true"));
  E2E_REQUIRE_STATUS(auditor, 201);
  CHECK(auditor.boolean("/view_all_events"));
  auto vic = api.post(auditor.str("/token"), users_path(org.id),
                      new_user("vic@acme.example", "standard", false,
                               ",\"view_all_events\":true"));
  E2E_REQUIRE_STATUS(vic, 201);
  CHECK(vic.boolean("/view_all_events"));
  auto by_admin = api.post(admin.token, users_path(org.id),
                           new_user("val@acme.example", "standard", false,
                                    ",\"view_all_events\":true"));
  E2E_REQUIRE_STATUS(by_admin, 201);
  // Reading a user shows the permission.
  CHECK(api.get(manager.token, user_path(org.id, vic.str("/id")))
            .boolean("/view_all_events"));
  CHECK_FALSE(api.get(manager.token, user_path(org.id, manager.id))
                  .boolean("/view_all_events"));
  CHECK(node.stop() == 0);
}

TEST_CASE_METHOD(acme_staff,
                 "authorization: events are read by their owner, "
                 "administrators and holders of View All Events",
                 "[e2e][authz][events]") {
  auto sam
      = create_user(api, org.admin_token, org.id, "sam@acme.example", "Sam");
  auto sue
      = create_user(api, org.admin_token, org.id, "sue@acme.example", "Sue");
  auto ev = create_event(
      api, org.id, sam,
      event_body("Private", "2026-11-26T14:00:00Z", "2026-11-26T15:00:00Z"));
  const auto path = event_path(org.id, ev.str("/id"));
  const auto sams = user_events_path(org.id, sam.id);
  create_event(
      api, org.id, sue,
      event_body("Sue's", "2026-11-27T14:00:00Z", "2026-11-27T15:00:00Z"));

  // A colleague: neither the event nor the listing.
  for (auto* colleague : {&sue, &manager}) {
    INFO("as " << colleague->email);
    auto got = api.get(colleague->token, path);
    CHECK(got.status == 403);
    CHECK(got.error_code() == "forbidden");
    CHECK(got.body.find("Private") == std::string::npos);
    auto listed = api.get(colleague->token, sams);
    CHECK(listed.status == 403);
    CHECK(listed.error_code() == "forbidden");
    CHECK(listed.body.find("Private") == std::string::npos);
    // Also with a window and a page size.
    CHECK(api.get(colleague->token,
                  sams
                      + "?from=2026-01-01T00:00:00Z&to=2027-01-01T00:00:00Z"
                        "&limit=1")
              .status
          == 403);
  }
  // Their own events stay theirs to read.
  auto sues = walk_pages(api, sue.token, user_events_path(org.id, sue.id), 10);
  REQUIRE(sues.size() == 1);
  CHECK(sues[0].find("Sue's") != std::string::npos);

  // The owner, administrators (super or not) and the service admin read it.
  for (auto* token : {&sam.token, &admin.token, &org.admin_token}) {
    auto got = api.get(*token, path);
    E2E_REQUIRE_STATUS(got, 200);
    CHECK(got.json() == ev.json());
    CHECK(walk_pages(api, *token, sams, 10).size() == 1);
  }
  CHECK(api.get(admin_token, path).json() == ev.json());
  CHECK(walk_pages(api, admin_token, sams, 10).size() == 1);

  // A standard user with View All Events reads colleagues' events ...
  auto viewer = create_user(api, org.admin_token, org.id, "vic@acme.example",
                            "Vic", "standard", false);
  CHECK(api.get(viewer.token, path).status == 403);
  auto auditor = api.post(org.admin_token, users_path(org.id),
                          new_user("aud@acme.example", "standard", false,
                                   ",\"view_all_events\":true"));
  E2E_REQUIRE_STATUS(auditor, 201);
  const auto aud = auditor.str("/token");
  auto seen = api.get(aud, path);
  E2E_REQUIRE_STATUS(seen, 200);
  CHECK(seen.json() == ev.json());
  auto listing = walk_pages(api, aud, sams, 10);
  REQUIRE(listing.size() == 1);
  CHECK(listing[0].find("Private") != std::string::npos);
  // ... but viewing is not editing.
  auto edit = api.patch(aud, path, R"({"title":"Seen"})");
  CHECK(edit.status == 403);
  CHECK(api.del(aud, path).status == 403);
  // The refusals changed nothing.
  CHECK(api.get(sam.token, path).json() == ev.json());
  CHECK(node.stop() == 0);
}
