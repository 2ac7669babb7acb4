#include "protocol/permissions.hpp"

#include <string>

#include "protocol/errors.hpp"

namespace crmsync {

namespace {

caf::error not_held(std::string code, std::string message, std::string field) {
  return make_crm_error(crm_errc::forbidden, std::move(code),
                        std::move(message), std::move(field));
}

bool had(const user_rights* before, bool user_rights::*permission) {
  return before != nullptr && before->*permission;
}

} // namespace

user_rights rights_of(const user_record& u) {
  return {u.role, u.manage_users, u.view_all_events, u.super_admin};
}

bool is_admin(const user_record* who) {
  return who == nullptr || who->super_admin
         || who->role == profile::administrator;
}

bool can_manage_users(const user_record* who) {
  return who == nullptr || who->super_admin || who->manage_users;
}

bool can_view_all_events(const user_record* who) {
  return is_admin(who) || who->view_all_events;
}

bool may_read_events_of(const user_record* who, user_id owner) {
  return can_view_all_events(who) || who->id == owner;
}

bool may_see_private_details(const user_record* who, const event_record& e) {
  return !is_private_event(e) || is_admin(who) || who->id == e.owner;
}

bool may_write_events_of(const user_record* who, user_id owner) {
  return is_admin(who) || who->id == owner;
}

caf::error check_grant(const user_record* who, const user_rights* before,
                       const user_rights& wanted) {
  if (who == nullptr)
    return caf::none;
  // The super administrator role changes hands only through a holder.
  if (wanted.super_admin != had(before, &user_rights::super_admin)
      && !who->super_admin)
    return not_held("super_admin_required",
                    "only the super administrator can make a super "
                    "administrator or hand the role over",
                    "super_admin");
  bool was_admin
      = before != nullptr
        && (before->role == profile::administrator || before->super_admin);
  bool becomes_admin = wanted.role == profile::administrator;
  if ((becomes_admin || was_admin) && !is_admin(who)) {
    // Changing nothing on an administrator is not a grant.
    bool unchanged = before != nullptr && before->role == wanted.role
                     && before->manage_users == wanted.manage_users
                     && before->view_all_events == wanted.view_all_events;
    if (!unchanged)
      return not_held("administrator_required",
                      "only an administrator can make or change an "
                      "administrator",
                      "profile");
  }
  if (wanted.manage_users && !had(before, &user_rights::manage_users)
      && !can_manage_users(who))
    return not_held("permission_not_held",
                    "you cannot grant the Manage Users permission, which "
                    "you do not hold",
                    "manage_users");
  if (wanted.view_all_events && !had(before, &user_rights::view_all_events)
      && !can_view_all_events(who))
    return not_held("permission_not_held",
                    "you cannot grant the View All Events permission, which "
                    "you do not hold",
                    "view_all_events");
  return caf::none;
}

} // namespace crmsync
