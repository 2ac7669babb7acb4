// A user's life after creation: a new name, profile or permissions
// (granted only by who holds them), and deactivation and reactivation.
#include "actors/tenant/handlers.hpp"

namespace crmsync::actors::tenant_impl {

namespace {

bool admin_rights(const user_rights& r) {
  return r.role == profile::administrator || r.super_admin;
}

caf::error lifecycle_refusal(std::string code, std::string message) {
  return make_crm_error(crm_errc::conflict, std::move(code),
                        std::move(message));
}

std::string describe(const user_record& u) {
  return std::string{to_string(u.role)} + (u.super_admin ? ", super" : "")
         + (u.manage_users ? ", manage users" : "")
         + (u.view_all_events ? ", view all events" : "");
}

} // namespace

caf::result<user_record> handle(self_ptr self, update_user& cmd) {
  auto& st = self->state;
  auto who = check_caller(self, cmd.who);
  if (!who)
    return who.error();
  auto found = require_user(self, cmd.id);
  if (!found)
    return found.error();
  const auto& p = cmd.patch;
  auto before = **found;
  auto after = before;
  bool self_edit = *who != nullptr && (*who)->id == before.id;
  bool rights_change = p.set_role || p.set_manage_users || p.set_view_all_events
                       || p.set_super_admin;
  // Users rename themselves; everything else is managing users.
  if ((rights_change || p.set_active || (p.set_name && !self_edit))
      && !can_manage_users(*who))
    return refused(self, actor_name(*who), "user.refused",
                   "tried to change " + before.email,
                   forbidden("changing another user needs the Manage Users "
                             "permission"));
  if (p.set_name)
    after.name = p.name;
  if (p.set_role)
    after.role = p.role;
  if (p.set_manage_users)
    after.manage_users = p.manage_users;
  if (p.set_view_all_events)
    after.view_all_events = p.view_all_events;
  // The role is handed over: its holder gives it to another user, who
  // becomes an administrator; nobody drops it without a successor.
  user_record giver;
  bool handover = p.set_super_admin && p.super_admin && !before.super_admin;
  if (p.set_super_admin && !p.super_admin && before.super_admin)
    return lifecycle_refusal("super_admin_handover",
                             "the super administrator role is handed over "
                             "by giving it to another user, not dropped");
  if (handover && (*who == nullptr || !(*who)->super_admin))
    return refused(self, actor_name(*who), "user.refused",
                   "tried to make " + before.email + " the super administrator",
                   make_crm_error(crm_errc::forbidden, "super_admin_required",
                                  "only the super administrator can hand "
                                  "the role over",
                                  "super_admin"));
  if (before.super_admin && p.set_role && p.role != profile::administrator)
    return lifecycle_refusal("super_admin_protected",
                             "the super administrator stays an "
                             "administrator; hand the role over first");
  if (handover) {
    after.super_admin = true;
    after.role = profile::administrator;
  }
  auto wanted = rights_of(after);
  auto had = rights_of(before);
  if (auto err = check_grant(*who, &had, wanted)) {
    auto detail = "tried to give " + before.email + " " + describe(after) + ": "
                  + to_api_error(err).message;
    return refused(self, actor_name(*who), "user.refused", std::move(detail),
                   std::move(err));
  }
  if (handover && before.deactivated)
    return lifecycle_refusal("user_deactivated",
                             "a deactivated user cannot become the super "
                             "administrator");
  if (p.set_active && p.active == before.deactivated) {
    after.deactivated = !p.active;
    if (self_edit)
      return lifecycle_refusal("cannot_deactivate_self",
                               "you cannot deactivate or reactivate "
                               "yourself");
    // Only administrators stop or restart an administrator.
    if (admin_rights(had) && !is_admin(*who))
      return refused(self, actor_name(*who), "user.refused",
                     "tried to deactivate the administrator " + before.email,
                     make_crm_error(crm_errc::forbidden,
                                    "administrator_required",
                                    "only an administrator can deactivate "
                                    "or reactivate an administrator",
                                    "profile"));
    // The super administrator is always an active administrator, so
    // the organization never loses its last one.
    if (after.deactivated && before.super_admin)
      return lifecycle_refusal("super_admin_protected",
                               "the super administrator cannot be "
                               "deactivated; hand the role over first");
  }
  auto now = st.env->now_ms();
  after.modified_ms = now;
  storage::write_batch b;
  bool sync_was_on = false;
  if (after.deactivated && !before.deactivated) {
    // Every token stops working with this write.
    after.revoke_all_tokens();
    if (auto err = put_page_sessions_off(self, b, after.id))
      return err;
    auto on = put_sync_off(self, b, after.id);
    if (!on)
      return on.error();
    sync_was_on = *on;
  }
  if (handover) {
    giver = **who;
    giver.super_admin = false;
    giver.modified_ms = now;
    put_user(b, giver);
  }
  put_user(b, after);
  auto actor = actor_name(*who);
  if (after.deactivated != before.deactivated)
    put_audit(self, b, actor,
              after.deactivated ? "user.deactivated" : "user.activated",
              before.email
                  + (sync_was_on ? " (calendar sync turned off)" : ""));
  if (rights_change || p.set_name)
    put_audit(self, b, actor,
              handover ? "super_admin.handed_over" : "user.updated",
              before.email + ": " + describe(before) + " -> " + describe(after)
                  + (before.name != after.name ? ", renamed" : ""));
  if (auto err = st.env->db->write(b))
    return err;
  if (handover)
    st.users[giver.id] = giver;
  st.users[after.id] = after;
  if (sync_was_on) {
    st.sync_on[after.id] = false;
    sync_written(self, after.id);
  }
  return after;
}

} // namespace crmsync::actors::tenant_impl
