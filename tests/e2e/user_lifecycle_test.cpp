// End-to-end: a user's life after creation (issue 14). PATCH changes the
// name, profile and permissions under the grant rules (a caller grants only
// what it holds, administrators promote, the super administrator hands the
// role over); deactivation revokes every token at once and reactivation
// lets the user back. Every refusal leaves the stored user as it was.
#include <catch2/catch.hpp>

#include "tests/support/api_client.hpp"

using namespace crmsync::e2e;

namespace {

// Acme's super administrator, an administrator, a standard user with
// Manage Users and a plain standard user.
struct acme_people : acme_fixture {
  user_info admin
      = create_user(api, org.admin_token, org.id, "alice@acme.example", "Alice",
                    "administrator", true);
  user_info manager
      = create_user(api, org.admin_token, org.id, "mark@acme.example", "Mark",
                    "standard", true);
  user_info carol = create_user(api, org.admin_token, org.id,
                                "carol@acme.example", "Carol");

  std::string user_path(const std::string& id) {
    return users_path(org.id) + "/" + id;
  }

  // The user as the super administrator reads it.
  std::string stored(const std::string& id) {
    auto r = api.get(org.admin_token, user_path(id));
    INFO(r.describe());
    REQUIRE(r.status == 200);
    return r.body;
  }

  // A refusal with `status` and `code` that changed nothing of `id`.
  void require_refused(const api_response& r, int status, std::string_view code,
                       const std::string& id, const std::string& before) {
    INFO(r.describe());
    CHECK(r.status == status);
    CHECK(r.error_code() == code);
    CHECK_FALSE(r.str("/error/message").empty());
    CHECK(stored(id) == before);
  }
};

} // namespace

TEST_CASE_METHOD(acme_people,
                 "lifecycle: PATCH renames and grants what the caller holds",
                 "[e2e][lifecycle]") {
  // The manager gives Carol Manage Users (which they hold), so she can
  // approve join requests.
  auto r = api.patch(manager.token, user_path(carol.id),
                     R"({"manage_users":true,"name":"Carol C."})");
  E2E_REQUIRE_STATUS(r, 200);
  CHECK(r.boolean("/manage_users"));
  CHECK(r.str("/name") == "Carol C.");
  CHECK(r.str("/profile") == "standard");
  CHECK(r.boolean("/active"));
  // A user renames themself without Manage Users... (Carol has it now; a
  // fresh standard user shows the rule.)
  auto dave
      = create_user(api, org.admin_token, org.id, "dave@acme.example", "Dave");
  auto renamed = api.patch(dave.token, user_path(dave.id), R"({"name":"D"})");
  E2E_REQUIRE_STATUS(renamed, 200);
  CHECK(renamed.str("/name") == "D");
  // An administrator promotes.
  auto promoted = api.patch(admin.token, user_path(dave.id),
                            R"({"profile":"administrator"})");
  E2E_REQUIRE_STATUS(promoted, 200);
  CHECK(promoted.str("/profile") == "administrator");
  auto audit = api.get(org.admin_token, org_path(org.id) + "/audit");
  E2E_REQUIRE_STATUS(audit, 200);
  CHECK(audit.body.find("user.updated") != std::string::npos);
}

TEST_CASE_METHOD(acme_people, "lifecycle: PATCH refusals change nothing",
                 "[e2e][lifecycle][authz]") {
  auto carol_before = stored(carol.id);
  auto manager_before = stored(manager.id);
  SECTION("a user without Manage Users changes nobody else") {
    auto dave = create_user(api, org.admin_token, org.id, "dave@acme.example",
                            "Dave");
    require_refused(
        api.patch(dave.token, user_path(carol.id), R"({"name":"Hacked"})"), 403,
        "forbidden", carol.id, carol_before);
  }
  SECTION("self-escalation: a standard user cannot grant themself rights") {
    require_refused(
        api.patch(carol.token, user_path(carol.id), R"({"manage_users":true})"),
        403, "forbidden", carol.id, carol_before);
    require_refused(api.patch(manager.token, user_path(manager.id),
                              R"({"profile":"administrator"})"),
                    403, "administrator_required", manager.id, manager_before);
    require_refused(api.patch(manager.token, user_path(manager.id),
                              R"({"view_all_events":true})"),
                    403, "permission_not_held", manager.id, manager_before);
  }
  SECTION("a non-administrator does not promote") {
    require_refused(api.patch(manager.token, user_path(carol.id),
                              R"({"profile":"administrator"})"),
                    403, "administrator_required", carol.id, carol_before);
  }
  SECTION("only the super administrator hands the role over") {
    require_refused(
        api.patch(admin.token, user_path(carol.id), R"({"super_admin":true})"),
        403, "super_admin_required", carol.id, carol_before);
    auto admin_before = stored(admin.id);
    require_refused(
        api.patch(admin.token, user_path(admin.id), R"({"super_admin":true})"),
        403, "super_admin_required", admin.id, admin_before);
  }
  SECTION("another organization's user is not found") {
    // Acme does not exist for Globex's administrator.
    auto other = create_org(api, "Globex", "boss@globex.example");
    require_refused(api.patch(other.admin_token, user_path(carol.id),
                              R"({"name":"Hacked"})"),
                    404, "not_found", carol.id, carol_before);
    auto own
        = api.patch(other.admin_token, users_path(other.id) + "/" + carol.id,
                    R"({"name":"Hacked"})");
    INFO(own.describe());
    CHECK(own.status == 404);
    CHECK(stored(carol.id) == carol_before);
  }
  SECTION("bad input is a 400") {
    require_refused(api.patch(org.admin_token, user_path(carol.id), "{}"), 400,
                    "empty_patch", carol.id, carol_before);
    require_refused(api.patch(org.admin_token, user_path(carol.id),
                              R"({"profile":"king"})"),
                    400, "invalid_field", carol.id, carol_before);
    require_refused(api.patch(org.admin_token, user_path(carol.id),
                              R"({"email":"x@acme.example"})"),
                    400, "unknown_field", carol.id, carol_before);
  }
}

TEST_CASE_METHOD(acme_people,
                 "lifecycle: the super administrator hands the role over",
                 "[e2e][lifecycle]") {
  auto r = api.patch(org.admin_token, user_path(carol.id),
                     R"({"super_admin":true})");
  E2E_REQUIRE_STATUS(r, 200);
  CHECK(r.boolean("/super_admin"));
  CHECK(r.str("/profile") == "administrator");
  // The giver is an administrator now, no longer the super administrator.
  auto giver = api.get(org.admin_token, user_path(org.admin_id));
  E2E_REQUIRE_STATUS(giver, 200);
  CHECK_FALSE(giver.boolean("/super_admin"));
  CHECK(giver.str("/profile") == "administrator");
  // Dropping the role instead of handing it over is refused.
  auto carol_now = stored(carol.id);
  require_refused(
      api.patch(carol.token, user_path(carol.id), R"({"super_admin":false})"),
      409, "super_admin_handover", carol.id, carol_now);
}

TEST_CASE_METHOD(acme_people,
                 "lifecycle: deactivation revokes tokens and reactivation "
                 "lets the user back",
                 "[e2e][lifecycle]") {
  REQUIRE(api.get(carol.token, user_path(carol.id)).status == 200);
  auto r = api.post(manager.token, user_path(carol.id) + "/deactivate", "");
  E2E_REQUIRE_STATUS(r, 200);
  CHECK_FALSE(r.boolean("/active"));
  // The old token stops working at once.
  auto old = api.get(carol.token, user_path(carol.id));
  INFO(old.describe());
  CHECK(old.status == 401);
  // The record stays, inactive, and the audit log says who did it.
  auto listed = api.get(org.admin_token, user_path(carol.id));
  E2E_REQUIRE_STATUS(listed, 200);
  CHECK_FALSE(listed.boolean("/active"));
  auto audit = api.get(org.admin_token, org_path(org.id) + "/audit");
  CHECK(audit.body.find("user.deactivated") != std::string::npos);
  // Reactivated: active again; the revoked token stays revoked.
  auto back = api.post(manager.token, user_path(carol.id) + "/activate", "");
  E2E_REQUIRE_STATUS(back, 200);
  CHECK(back.boolean("/active"));
  CHECK(api.get(carol.token, user_path(carol.id)).status == 401);
  CHECK(audit.body.find("user.deactivated") != std::string::npos);
}

TEST_CASE_METHOD(acme_people, "lifecycle: deactivation refusals",
                 "[e2e][lifecycle][authz]") {
  auto carol_before = stored(carol.id);
  SECTION("no Manage Users") {
    auto dave = create_user(api, org.admin_token, org.id, "dave@acme.example",
                            "Dave");
    require_refused(
        api.post(dave.token, user_path(carol.id) + "/deactivate", ""), 403,
        "forbidden", carol.id, carol_before);
    CHECK(api.get(carol.token, user_path(carol.id)).status == 200);
  }
  SECTION("a manager does not deactivate an administrator") {
    auto before = stored(admin.id);
    require_refused(
        api.post(manager.token, user_path(admin.id) + "/deactivate", ""), 403,
        "administrator_required", admin.id, before);
    CHECK(api.get(admin.token, user_path(admin.id)).status == 200);
  }
  SECTION("the super administrator cannot be deactivated") {
    auto before = stored(org.admin_id);
    require_refused(
        api.post(admin.token, user_path(org.admin_id) + "/deactivate", ""), 409,
        "super_admin_protected", org.admin_id, before);
  }
  SECTION("nobody deactivates themself") {
    auto before = stored(admin.id);
    require_refused(
        api.post(admin.token, user_path(admin.id) + "/deactivate", ""), 409,
        "cannot_deactivate_self", admin.id, before);
  }
  SECTION("another organization's administrator is refused") {
    auto other = create_org(api, "Globex", "boss@globex.example");
    require_refused(
        api.post(other.admin_token, user_path(carol.id) + "/deactivate", ""),
        404, "not_found", carol.id, carol_before);
    CHECK(api.get(carol.token, user_path(carol.id)).status == 200);
  }
  SECTION("a deactivated user's old token cannot act") {
    auto r
        = api.post(org.admin_token, user_path(manager.id) + "/deactivate", "");
    E2E_REQUIRE_STATUS(r, 200);
    require_refused(
        api.post(manager.token, user_path(carol.id) + "/deactivate", ""), 401,
        "unauthorized", carol.id, carol_before);
    require_refused(
        api.patch(manager.token, user_path(manager.id), R"({"name":"Back"})"),
        401, "unauthorized", carol.id, carol_before);
  }
}

TEST_CASE_METHOD(acme_people,
                 "lifecycle: the organization keeps its super administrator",
                 "[e2e][lifecycle]") {
  // The super administrator is always an active administrator (so an
  // organization never loses its last one): not demoted, not deactivated,
  // and the role moves only by a handover.
  auto before = stored(org.admin_id);
  require_refused(api.patch(org.admin_token, user_path(org.admin_id),
                            R"({"profile":"standard"})"),
                  409, "super_admin_protected", org.admin_id, before);
  require_refused(api.patch(admin_token, user_path(org.admin_id),
                            R"({"super_admin":false})"),
                  409, "super_admin_handover", org.admin_id, before);
  // The service admin cannot hand it over either: only its holder can.
  require_refused(
      api.patch(admin_token, user_path(admin.id), R"({"super_admin":true})"),
      403, "super_admin_required", org.admin_id, before);
  CHECK(stored(org.admin_id) == before);
}
