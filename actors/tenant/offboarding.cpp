// Office 365 offboarding: the sync found a user's mailbox gone or disabled
// (the person was deleted or blocked in Office 365). The CRM user is
// deactivated like an administrator would (tokens revoked, sign-in
// refused, calendar sync off, events kept) with the reason in the audit log
// under the actor "sync", and every active administrator is e-mailed. A user
// already deactivated is left as it is, so this happens once.
#include "actors/tenant/handlers.hpp"

#include "actors/tenant/records.hpp"

namespace crmsync::actors::tenant_impl {

caf::result<user_record> handle(self_ptr self, offboard_user& cmd) {
  auto& st = self->state;
  leave_if_empty(self);
  if (!st.exists)
    return not_found("organization");
  auto found = require_user(self, cmd.user);
  if (!found)
    return found.error();
  auto u = **found;
  if (u.deactivated)
    return u;
  storage::write_batch b;
  if (u.super_admin) {
    // The organization keeps an active super administrator: the others
    // are told to have the role handed over.
    put_audit(self, b, "sync", "user.offboard_refused",
              u.email + " is the super administrator and stays active: "
                  + cmd.reason);
    if (auto err = st.env->db->write(b))
      return err;
    return make_crm_error(crm_errc::conflict, "super_admin_protected",
                          "the super administrator is not deactivated");
  }
  auto now = st.env->now_ms();
  u.deactivated = true;
  u.revoke_all_tokens();
  if (auto err = put_page_sessions_off(self, b, u.id))
    return err;
  u.modified_ms = now;
  auto on = put_sync_off(self, b, u.id);
  if (!on)
    return on.error();
  put_user(b, u);
  put_audit(self, b, "sync", "user.deactivated",
            u.email + ": " + cmd.reason
                + (*on ? " (calendar sync turned off)" : ""));
  std::vector<user_record> users;
  if (auto err = scan_records(self, column::users, users))
    return err;
  auto sender = mail_sender(self, nullptr);
  size_t told = 0;
  for (auto& a : users)
    if (!sender.empty() && a.id != u.id && !a.deactivated
        && (a.role == profile::administrator || a.super_admin)) {
      ++told;
      put_mail(self, b, sender, a.email,
               u.name + " was deactivated in " + st.org.name + "'s CRM",
               "<p>" + html_text(u.name) + " (" + html_text(u.email)
                   + ") no longer has an Office 365 mailbox: the person was "
                     "deleted or blocked in Office 365. Their CRM user is "
                     "deactivated; their events are kept.</p><p>Reason: "
                   + html_text(cmd.reason)
                   + "</p><p>An administrator can reactivate the user, or "
                     "delete them with their data.</p>");
    }
  if (told == 0)
    put_audit(self, b, "sync", "mail.skipped",
              "no administrator could be e-mailed about " + u.email);
  if (auto err = st.env->db->write(b))
    return err;
  st.users[u.id] = u;
  if (*on) {
    st.sync_on[u.id] = false;
    sync_written(self, u.id);
  }
  mail_written(self);
  return u;
}

} // namespace crmsync::actors::tenant_impl
