#include "protocol/permissions.hpp"

#include <catch2/catch.hpp>

#include "protocol/errors.hpp"

using namespace crmsync;

namespace {

user_record person(uint64_t id, profile role, bool manage_users = false,
                   bool view_all_events = false, bool super_admin = false) {
  user_record u;
  u.id = user_id{id};
  u.role = role;
  u.manage_users = manage_users;
  u.view_all_events = view_all_events;
  u.super_admin = super_admin;
  return u;
}

user_rights rights(profile role, bool manage_users = false,
                   bool view_all_events = false, bool super_admin = false) {
  return {role, manage_users, view_all_events, super_admin};
}

const auto standard = profile::standard;
const auto administrator = profile::administrator;

// The API form of a refusal: "" when allowed, else "status code field".
std::string refusal(const caf::error& err) {
  if (!err)
    return "";
  auto e = to_api_error(err);
  return std::to_string(e.status) + " " + e.code + " " + e.field;
}

} // namespace

TEST_CASE("creating users: a caller grants only what it holds",
          "[protocol][permissions]") {
  auto super = person(1, administrator, true, false, true);
  auto admin = person(2, administrator, true);
  auto manager = person(3, standard, true);
  auto viewer_manager = person(4, standard, true, true);

  // Standard users: anyone who may add users.
  for (auto* who : {&super, &admin, &manager, &viewer_manager})
    CHECK(refusal(check_grant(who, nullptr, rights(standard))).empty());
  CHECK(
      refusal(check_grant(&manager, nullptr, rights(standard, true))).empty());

  // Administrators: only administrators make them.
  CHECK(refusal(check_grant(&manager, nullptr, rights(administrator)))
        == "403 administrator_required profile");
  CHECK(refusal(check_grant(&viewer_manager, nullptr,
                            rights(administrator, true, true)))
        == "403 administrator_required profile");
  CHECK(refusal(check_grant(&admin, nullptr, rights(administrator, true)))
            .empty());
  CHECK(refusal(check_grant(&super, nullptr, rights(administrator))).empty());

  // Another super administrator: only a super administrator.
  CHECK(refusal(check_grant(&admin, nullptr,
                            rights(administrator, true, false, true)))
        == "403 super_admin_required super_admin");
  CHECK(refusal(check_grant(&manager, nullptr,
                            rights(administrator, false, false, true)))
        == "403 super_admin_required super_admin");
  CHECK(refusal(check_grant(&super, nullptr,
                            rights(administrator, true, false, true)))
            .empty());

  // View All Events: only those who hold it (administrators do).
  CHECK(refusal(check_grant(&manager, nullptr, rights(standard, false, true)))
        == "403 permission_not_held view_all_events");
  CHECK(refusal(check_grant(&viewer_manager, nullptr,
                            rights(standard, false, true)))
            .empty());
  CHECK(refusal(check_grant(&admin, nullptr, rights(standard, false, true)))
            .empty());

  // Manage Users: an administrator without it cannot pass it on.
  auto plain_admin = person(5, administrator);
  CHECK(refusal(check_grant(&plain_admin, nullptr, rights(standard, true)))
        == "403 permission_not_held manage_users");

  // The service admin may give anything.
  CHECK(refusal(check_grant(nullptr, nullptr,
                            rights(administrator, true, true, true)))
            .empty());
}

TEST_CASE("editing users: promotion, demotion and handing over",
          "[protocol][permissions]") {
  auto super = person(1, administrator, true, false, true);
  auto admin = person(2, administrator, true);
  auto manager = person(3, standard, true);

  auto was_standard = rights(standard);
  auto was_admin = rights(administrator, true);
  auto was_super = rights(administrator, true, false, true);

  // Promoting to administrator.
  CHECK(refusal(check_grant(&manager, &was_standard, rights(administrator)))
        == "403 administrator_required profile");
  CHECK(refusal(check_grant(&admin, &was_standard, rights(administrator)))
            .empty());
  // Demoting or trimming an administrator needs an administrator too.
  CHECK(refusal(check_grant(&manager, &was_admin, rights(standard, true)))
        == "403 administrator_required profile");
  CHECK(refusal(check_grant(&manager, &was_admin, rights(administrator)))
        == "403 administrator_required profile");
  CHECK(refusal(check_grant(&admin, &was_admin, rights(standard))).empty());
  // Leaving an administrator's rights as they are grants nothing.
  CHECK(refusal(check_grant(&manager, &was_admin, was_admin)).empty());

  // Promoting to super administrator, or handing the role over.
  CHECK(refusal(check_grant(&admin, &was_admin, was_super))
        == "403 super_admin_required super_admin");
  CHECK(refusal(check_grant(&super, &was_admin, was_super)).empty());
  // Taking the role from a super administrator (the other half of a
  // hand-over) is the super administrator's own decision.
  CHECK(refusal(check_grant(&admin, &was_super, was_admin))
        == "403 super_admin_required super_admin");
  CHECK(refusal(check_grant(&super, &was_super, was_admin)).empty());

  // A permission already held is kept without holding it oneself.
  auto viewer = rights(standard, false, true);
  CHECK(refusal(check_grant(&manager, &viewer, viewer)).empty());
  CHECK(refusal(check_grant(&manager, &was_standard, viewer))
        == "403 permission_not_held view_all_events");
}

TEST_CASE("events: who reads and who writes whose", "[protocol][permissions]") {
  auto admin = person(1, administrator);
  auto sam = person(2, standard);
  auto sue = person(3, standard, true); // Manage Users is not View All
  auto auditor = person(4, standard, false, true);
  const user_id sams{2};

  CHECK(may_read_events_of(nullptr, sams));
  CHECK(may_read_events_of(&admin, sams));
  CHECK(may_read_events_of(&sam, sams));
  CHECK_FALSE(may_read_events_of(&sue, sams));
  CHECK(may_read_events_of(&auditor, sams));

  // Viewing is not editing.
  CHECK(may_write_events_of(&admin, sams));
  CHECK(may_write_events_of(&sam, sams));
  CHECK_FALSE(may_write_events_of(&sue, sams));
  CHECK_FALSE(may_write_events_of(&auditor, sams));
}
