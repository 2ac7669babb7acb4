// Invitations: a user manager invites colleagues by e-mail, lists the
// invitations, and an invitee accepts one with their Office 365 sign-in.
#include "actors/tenant/handlers.hpp"

#include <algorithm>

#include "actors/tenant/records.hpp"
#include "common/crypto.hpp"
#include "common/time_format.hpp"

namespace crmsync::actors::tenant_impl {

caf::result<invite_list> handle(self_ptr self, invite_users& cmd) {
  auto& st = self->state;
  auto who = check_caller(self, cmd.who);
  if (!who)
    return who.error();
  if (!can_manage_users(*who))
    return refused(self, actor_name(*who), "invite.refused",
                   "no Manage Users permission",
                   office365_error(crm_errc::forbidden, "manage_users_required",
                                   "inviting users needs the Manage "
                                   "Users permission"));
  if (st.org.plan != edition::paid)
    return refused(self, actor_name(*who), "invite.refused",
                   "the free edition cannot invite Office 365 users",
                   office365_error(crm_errc::forbidden, "edition_required",
                                   "inviting Office 365 users is "
                                   "available in paid editions only"));
  if (st.org.o365_tenant.empty())
    return office365_error(crm_errc::conflict, "office365_not_installed",
                           "the organization is not linked to Office "
                           "365; install the app first");
  // The invitation goes out from the inviter's mailbox, or from the
  // super administrator's when the inviter has none linked.
  auto sender = mail_sender(self, *who);
  if (sender.empty())
    return office365_error(crm_errc::conflict, "office365_not_linked",
                           "no Office 365 mailbox to send invitations "
                           "from: sign in with Office 365 first");
  std::vector<invite_record> existing;
  if (auto err = scan_records(self, column::invites, existing))
    return err;
  auto now = st.env->now_ms();
  invite_list out;
  storage::write_batch b;
  for (auto& person : cmd.invitees) {
    // Already a CRM user (linked, or by e-mail): nothing to send.
    std::string value;
    bool linked = false, by_email = false;
    if (auto err = st.env->db->get(
            column::lookup,
            keys::o365_user_lookup(st.org.o365_tenant, person.o365_user), value,
            linked))
      return err;
    if (auto err = st.env->db->get(
            column::lookup, keys::email_lookup(person.email), value, by_email))
      return err;
    if (linked || (by_email && !person.email.empty())) {
      out.already_members.push_back(person);
      continue;
    }
    // A new invite supersedes a pending one for the same person.
    for (auto& old : existing)
      if (old.o365_user == person.o365_user
          && old.status == invite_status::pending) {
        old.status = invite_status::superseded;
        old.resolved_ms = now;
        b.put(column::invites, keys::tenant_item(st.id, old.id),
              codec::encode(old));
      }
    auto token = crypto::random_token(invite_token_bytes);
    invite_record inv;
    inv.id = st.env->random_id();
    inv.org = st.id;
    inv.o365_user = person.o365_user;
    inv.email = person.email;
    inv.name = person.name;
    inv.inviter = *who == nullptr ? user_id{} : (*who)->id;
    inv.token_hash = crypto::sha256_hex(token);
    inv.created_ms = now;
    inv.expires_ms = now + cmd.lifetime_ms;
    b.put(column::invites, keys::tenant_item(st.id, inv.id),
          codec::encode(inv));
    b.put(column::lookup, keys::invite_token_lookup(inv.token_hash),
          keys::tenant_item(st.id, inv.id));
    auto link = cmd.public_url + "/invite/" + token;
    put_mail(self, b, sender, person.email,
             "You are invited to " + st.org.name + "'s CRM",
             "<p>Hello " + html_text(person.name) + ",</p><p>"
                 + html_text(*who == nullptr ? std::string{"An admin"}
                                             : (*who)->name)
                 + " invites you to join " + html_text(st.org.name)
                 + " in the CRM.</p><p><a href=\"" + html_text(link)
                 + "\">Accept the invitation</a></p><p>The link works "
                   "once and expires on "
                 + format_rfc3339(inv.expires_ms) + ".</p>");
    put_audit(self, b, actor_name(*who), "invite.sent",
              "invited " + person.email + " (Office 365 user "
                  + person.o365_user + ")");
    existing.push_back(inv);
    out.items.push_back(std::move(inv));
  }
  if (b.empty())
    return out;
  if (auto err = st.env->db->write(b))
    return err;
  mail_written(self);
  return out;
}

caf::result<invite_list> handle(self_ptr self, list_invites& cmd) {
  auto items = managed_list<invite_record>(
      self, cmd.who, column::invites,
      "listing invitations needs the Manage Users permission");
  if (!items)
    return items.error();
  invite_list out;
  out.items = std::move(*items);
  // A pending invitation past its expiry cannot be used: say so.
  auto now = self->state.env->now_ms();
  for (auto& x : out.items)
    if (x.status == invite_status::pending && now >= x.expires_ms)
      x.status = invite_status::expired;
  return out;
}

caf::result<invite_record> handle(self_ptr self, revoke_invite& cmd) {
  auto& st = self->state;
  auto who = check_caller(self, cmd.who);
  if (!who)
    return who.error();
  if (!can_manage_users(*who))
    return refused(self, actor_name(*who), "invite.refused",
                   "tried to revoke invitation " + to_hex16(cmd.invite)
                       + " without the Manage Users permission",
                   office365_error(crm_errc::forbidden, "manage_users_required",
                                   "revoking invitations needs the Manage "
                                   "Users permission"));
  auto inv = load_item<invite_record>(self, column::invites, cmd.invite,
                                      "invitation");
  if (!inv)
    return inv.error();
  if (inv->status == invite_status::revoked)
    return *inv; // revoking twice is harmless
  if (inv->status != invite_status::pending)
    return office365_error(crm_errc::conflict, "invite_resolved",
                           std::string{"this invitation is already "}
                               + to_string(inv->status));
  inv->status = invite_status::revoked;
  inv->resolved_ms = st.env->now_ms();
  storage::write_batch b;
  // The token lookup stays, so that the link says it was revoked.
  b.put(column::invites, keys::tenant_item(st.id, inv->id),
        codec::encode(*inv));
  put_audit(self, b, actor_name(*who), "invite.revoked",
            "revoked the invitation of " + inv->email);
  if (auto err = st.env->db->write(b))
    return err;
  return *inv;
}

caf::result<invite_list> handle(self_ptr self, list_my_invites& cmd) {
  auto& st = self->state;
  leave_if_empty(self);
  invite_list out;
  // Only the organization's own tenant has invitees.
  if (!st.exists || st.org.o365_tenant != cmd.who.tenant)
    return out;
  std::vector<invite_record> all;
  if (auto err = scan_records(self, column::invites, all))
    return err;
  auto now = st.env->now_ms();
  for (auto& x : all)
    if (x.o365_user == cmd.who.user && x.status == invite_status::pending
        && now < x.expires_ms)
      out.items.push_back(std::move(x));
  return out;
}

caf::result<invite_accepted> handle(self_ptr self, accept_invite& cmd) {
  auto& st = self->state;
  leave_if_empty(self);
  auto gone = office365_error(crm_errc::not_found, "invite_not_found",
                              "no invitation has this link");
  if (!st.exists || (cmd.token_hash.empty() && cmd.invite == 0))
    return gone;
  std::vector<invite_record> all;
  if (auto err = scan_records(self, column::invites, all))
    return err;
  auto it = std::find_if(all.begin(), all.end(), [&](const invite_record& x) {
    return cmd.token_hash.empty() ? x.id == cmd.invite
                                  : x.token_hash == cmd.token_hash;
  });
  if (it == all.end())
    return gone;
  auto inv = *it;
  if (st.org.o365_tenant.empty())
    return office365_error(crm_errc::conflict, "office365_not_installed",
                           "this organization was disconnected from Office "
                           "365; ask its administrator to install the app "
                           "again");
  if (cmd.who.tenant != st.org.o365_tenant || cmd.who.user != inv.o365_user)
    return refused(self, actor_name(cmd.who), "invite.refused",
                   "tried to use the invitation of " + inv.email,
                   office365_error(crm_errc::forbidden, "not_invitee",
                                   "this invitation is for another "
                                   "Office 365 user"));
  switch (inv.status) {
    case invite_status::accepted:
    case invite_status::associated:
      return office365_error(crm_errc::gone, "invite_used",
                             "this invitation was already used");
    case invite_status::superseded:
      return office365_error(crm_errc::gone, "invite_superseded",
                             "a newer invitation replaced this one; "
                             "use the link in the latest e-mail");
    case invite_status::revoked:
      return office365_error(crm_errc::gone, "invite_revoked",
                             "this invitation was revoked; ask for a new "
                             "one");
    default:
      break;
  }
  auto now = st.env->now_ms();
  if (now >= inv.expires_ms)
    return refused(self, actor_name(cmd.who), "invite.refused",
                   "the invitation of " + inv.email + " has expired",
                   office365_error(crm_errc::gone, "invite_expired",
                                   "this invitation has expired; ask "
                                   "for a new one"));
  inv.resolved_ms = now;
  storage::write_batch b;
  invite_accepted out;
  if (cmd.associated) {
    inv.status = invite_status::associated;
    inv.member = cmd.associated_user;
    b.put(column::invites, keys::tenant_item(st.id, inv.id),
          codec::encode(inv));
    put_audit(self, b, actor_name(cmd.who), "invite.associated",
              "used an existing CRM account (user " + cmd.associated_user.str()
                  + ") instead of joining");
    if (auto err = st.env->db->write(b))
      return err;
  } else {
    auto nu = cmd.member;
    if (nu.email.empty())
      nu.email = inv.email;
    if (nu.name.empty())
      nu.name = inv.name;
    auto u = make_o365_user(self, nu, inv.o365_user, now);
    inv.status = invite_status::accepted;
    inv.member = u.id;
    b.put(column::invites, keys::tenant_item(st.id, inv.id),
          codec::encode(inv));
    put_audit(self, b, actor_name(cmd.who), "invite.accepted",
              "accepted the terms and joined as " + u.email);
    if (auto err = add_o365_user(self, b, u))
      return err;
    out.member = u;
  }
  out.invite = inv;
  return out;
}

} // namespace crmsync::actors::tenant_impl
