// Deleting a user: only a deactivated one (so their tokens and sync are
// already gone), never the super administrator or the organization's last
// administrator. The user's rows go in one batch with the audit entry.
#include "actors/tenant/handlers.hpp"

#include <caf/send.hpp>

#include "actors/tenant/records.hpp"
#include "storage/user_rows.hpp"

namespace crmsync::actors::tenant_impl {

namespace {

/// Whether the calendar engine has finished with `u`: a sync still on or
/// still turning off would write rows after they are deleted.
caf::expected<bool> sync_settled(self_ptr self, user_id u) {
  auto& st = self->state;
  std::string value;
  bool found = false;
  if (auto err = st.env->db->get(column::sync, keys::sync_request_key(st.id, u),
                                 value, found))
    return err;
  sync_request req;
  if (found && (!codec::decode(value, req)))
    return corrupt("sync request of " + u.str());
  if (found && req.enabled)
    return false;
  if (auto err = st.env->db->get(
          column::sync, keys::sync_state(st.id, u, entity_kind::calendar),
          value, found))
    return err;
  calendar_status cs;
  if (found && !codec::decode(value, cs))
    return corrupt("calendar status of " + u.str());
  return !found || cs.state == calendar_state::disabled
         || cs.state == calendar_state::error;
}

/// The active administrators of the organization other than `except`.
caf::expected<size_t> other_admins(self_ptr self, user_id except) {
  std::vector<user_record> users;
  if (auto err = scan_records(self, column::users, users))
    return err;
  size_t n = 0;
  for (auto& u : users)
    if (u.id != except && !u.deactivated
        && (u.role == profile::administrator || u.super_admin))
      ++n;
  return n;
}

} // namespace

caf::result<user_deleted> handle(self_ptr self, delete_user& cmd) {
  auto& st = self->state;
  auto who = check_caller(self, cmd.who);
  if (!who)
    return who.error();
  auto found = require_user(self, cmd.id);
  if (!found)
    return found.error();
  auto u = **found;
  auto actor = actor_name(*who);
  if (!can_manage_users(*who))
    return refused(self, actor, "user.refused", "tried to delete " + u.email,
                   forbidden("deleting users needs the Manage Users "
                             "permission"));
  bool target_admin = u.role == profile::administrator || u.super_admin;
  if (target_admin && !is_admin(*who))
    return refused(self, actor, "user.refused",
                   "tried to delete the administrator " + u.email,
                   make_crm_error(crm_errc::forbidden, "administrator_required",
                                  "only an administrator can delete an "
                                  "administrator",
                                  "profile"));
  if (u.super_admin || u.id == st.org.super_admin)
    return make_crm_error(crm_errc::conflict, "super_admin_protected",
                          "the super administrator cannot be deleted; hand "
                          "the role over first");
  if (!u.deactivated)
    return make_crm_error(crm_errc::conflict, "user_active",
                          "deactivate the user before "
                          "deleting them");
  if (target_admin) {
    auto others = other_admins(self, u.id);
    if (!others)
      return others.error();
    if (*others == 0)
      return make_crm_error(crm_errc::conflict, "last_administrator",
                            "the organization's last administrator cannot "
                            "be deleted");
  }
  auto settled = sync_settled(self, u.id);
  if (!settled)
    return settled.error();
  if (!*settled)
    return make_crm_error(crm_errc::conflict, "sync_turning_off",
                          "the user's calendar sync is still being turned "
                          "off in Office 365; retry shortly");
  storage::write_batch b;
  storage::user_rows_deleted gone;
  if (auto err = storage::del_user_rows(*st.env->db, b, u, gone))
    return err;
  auto org = st.org;
  org.user_count = org.user_count > 0 ? org.user_count - 1 : 0;
  org.event_count
      = org.event_count > gone.events ? org.event_count - gone.events : 0;
  org.modified_ms = st.env->now_ms();
  put_org(self, b, org);
  put_audit(self, b, actor, "user.deleted",
            u.email + " (" + u.id.str() + ") and their "
                + std::to_string(gone.events) + " event(s), "
                + std::to_string(gone.sync_rows) + " sync row(s)");
  if (auto err = st.env->db->write(b))
    return err;
  st.org = org;
  st.users.erase(u.id);
  st.sync_on.erase(u.id);
  // Their mailbox and calendar actors may still hold the old state.
  for (auto kind : {entity_kind::mailbox, entity_kind::calendar})
    caf::anon_send(st.directory, atom::passivate_atom_v,
                   entity_key{kind, st.id, u.id});
  user_deleted out;
  out.user = u;
  out.events = gone.events;
  return out;
}

} // namespace crmsync::actors::tenant_impl
