// Office 365 sign-in: linking a CRM account (and, on install, the
// organization) to an Office 365 user, and adding a user who came through
// Office 365 (invite accepted, join approved).
#include "actors/tenant/handlers.hpp"

namespace crmsync::actors::tenant_impl {

storage::claim o365_user_claim(const user_record& u) {
  return {column::lookup, keys::o365_user_lookup(u.o365_tenant, u.o365_user),
          keys::tenant_user_value(u.org, u.id)};
}

/// A new user of this organization who came through Office 365 (invite
/// accepted or join approved), linked to that person.
user_record make_o365_user(self_ptr self, const new_user& nu,
                           const std::string& o365_user, int64_t now) {
  auto u = make_user(self, nu, now);
  u.o365_tenant = self->state.org.o365_tenant;
  u.o365_user = o365_user;
  // The token minted with the user (the invitee's answer; an approved
  // requester's is never shown) came from an Office 365 sign-in: it
  // expires like one (--session-ttl), as the installing admin's does.
  if (!u.token_hash.empty())
    u.add_signin_token(u.token_hash, false, now, max_signin_tokens);
  return u;
}

/// Writes a new Office 365 user with the organization's counter, the
/// other records in `b`, and every uniqueness claim.
caf::error add_o365_user(self_ptr self, storage::write_batch& b,
                         const user_record& u) {
  auto& st = self->state;
  auto org = st.org;
  ++org.user_count;
  org.modified_ms = u.created_ms;
  put_user(b, u);
  put_org(self, b, org);
  auto claims = user_claims(u);
  claims.push_back(o365_user_claim(u));
  b.put(claims.back().cf, claims.back().key, claims.back().value);
  if (auto err = st.env->db->write_claimed(b, claims)) {
    if (err.category() == caf::atom("crm")
        && static_cast<crm_errc>(err.code()) == crm_errc::conflict
        && err.context().match_elements<std::string, std::string, std::string>()
        && err.context().get_as<std::string>(1) == claims.back().key)
      return office365_error(crm_errc::conflict, "already_member",
                             "this Office 365 user is already a CRM user");
    return claim_error(err, u, "email");
  }
  st.org = org;
  st.users[u.id] = u;
  return caf::none;
}

caf::result<user_record> handle(self_ptr self, link_office365& cmd) {
  auto& st = self->state;
  leave_if_empty(self);
  if (!st.exists)
    return not_found("organization");
  auto found = require_user(self, cmd.user);
  if (!found)
    return found.error();
  auto u = **found;
  if (u.deactivated)
    return refused(self, actor_name(cmd.who), "signin.refused",
                   "a sign-in of " + cmd.who.email + " as the deactivated user "
                       + u.email,
                   office365_error(crm_errc::forbidden, "user_deactivated",
                                   "this CRM user is deactivated; an "
                                   "administrator can reactivate it"));
  if (!u.o365_user.empty()
      && (u.o365_user != cmd.who.user || u.o365_tenant != cmd.who.tenant))
    return office365_error(crm_errc::conflict, "office365_link_conflict",
                           "this CRM account is already linked to "
                           "another Office 365 user");
  auto org = st.org;
  // A sign-in links a user found by address only inside an organization
  // linked to the person's own tenant, and only to the address that is
  // their sign-in name (P2); anything else is not this person's account.
  bool signin_by_email = cmd.action == "signin_by_email";
  if (signin_by_email
      && (org.o365_tenant.empty() || org.o365_tenant != cmd.who.tenant
          || u.email != cmd.who.email || !u.o365_user.empty()))
    return refused(
        self, actor_name(cmd.who), "signin.refused",
        "a sign-in of " + cmd.who.email + " (Office 365 tenant "
            + cmd.who.tenant + ") did not match the CRM user " + u.email,
        office365_error(crm_errc::conflict, "office365_link_conflict",
                        "this CRM account cannot be linked to "
                        "this Office 365 user"));
  std::vector<storage::claim> claims;
  storage::write_batch b;
  // An account found by the admin's e-mail rather than by a link the
  // person made themself (P2).
  bool by_email = cmd.action == "install_by_email";
  bool installing = cmd.action == "install" || by_email;
  if (installing) {
    // A sign-in never moves an organization to another tenant.
    if (!org.o365_tenant.empty() && org.o365_tenant != cmd.who.tenant)
      return refused(self, actor_name(cmd.who), "install.refused",
                     "an administrator of Office 365 tenant " + cmd.who.tenant
                         + " tried to install into the account of " + u.email
                         + (by_email ? " (found by e-mail)" : "")
                         + "; this organization stays linked to Office 365 "
                           "tenant "
                         + org.o365_tenant,
                     office365_error(crm_errc::conflict,
                                     "office365_link_conflict",
                                     "this organization is linked to another "
                                     "Office 365 tenant"));
    // Linking the organization is an administrator's decision: a standard
    // user's account (found by e-mail or associated with a password) does
    // not bring the organization to a tenant.
    if (org.o365_tenant.empty() && !is_admin(&u))
      return refused(
          self, actor_name(cmd.who), "install.refused",
          "an administrator of Office 365 tenant " + cmd.who.tenant
              + " tried to install into the account of " + u.email
              + ", who is not an administrator of this organization",
          office365_error(crm_errc::forbidden, "admin_required",
                          "only an administrator of the CRM organization "
                          "can link it to Office 365; associate an "
                          "administrator's account"));
    if (org.o365_tenant.empty()) {
      org.o365_tenant = cmd.who.tenant;
      org.modified_ms = st.env->now_ms();
      claims.push_back({column::lookup,
                        keys::o365_tenant_lookup(org.o365_tenant),
                        keys::org(org.id)});
      put_org(self, b, org);
    }
  }
  bool newly_linked = u.o365_user.empty();
  u.o365_tenant = cmd.who.tenant;
  u.o365_user = cmd.who.user;
  u.add_signin_token(cmd.token_hash, cmd.page, st.env->now_ms(),
                     max_signin_tokens);
  u.modified_ms = st.env->now_ms();
  claims.push_back(o365_user_claim(u));
  put_user(b, u);
  for (auto& c : claims)
    b.put(c.cf, c.key, c.value);
  if (installing)
    put_audit(self, b, actor_name(cmd.who), "install",
              "installed from Office 365 tenant " + cmd.who.tenant
                  + " into the existing account of " + u.email
                  + (by_email ? ", found by the administrator's "
                                "sign-in name (the organization was "
                                "not linked to any Office 365 tenant)"
                              : ""));
  else if (signin_by_email)
    put_audit(self, b, actor_name(cmd.who), "signin.linked",
              "linked Office 365 user " + cmd.who.email + " (tenant "
                  + cmd.who.tenant
                  + ") to the CRM user with the same address: it is their "
                    "sign-in name in the tenant this organization is "
                    "linked to");
  else if (newly_linked)
    put_audit(self, b, actor_name(cmd.who), "account.associated",
              "linked Office 365 user " + cmd.who.email + " to the CRM account "
                  + u.email);
  if (auto err = st.env->db->write_claimed(b, claims))
    return office365_error(crm_errc::conflict, "office365_link_conflict",
                           "this Office 365 user or tenant is already "
                           "linked to another CRM account");
  st.org = org;
  st.users[u.id] = u;
  return u;
}

namespace {

/// The head of `value` when `key` and `value` are a page session of user
/// `u` of this organization (keys::page_session_value's head); nullopt
/// otherwise.
std::optional<keys::page_session_head> page_session_of(self_ptr self,
                                                       std::string_view key,
                                                       std::string_view value,
                                                       user_id u) {
  auto h = keys::parse_page_session(value);
  if (key.empty() || key[0] != 'w' || !h || h->org != self->state.id
      || h->user != u)
    return std::nullopt;
  return h;
}

/// Deletes, in `b`, the page session under `key` when it is user `u`'s of
/// this organization (any other row under the key is not this actor's).
caf::error put_page_session_off(self_ptr self, storage::write_batch& b,
                                const std::string& key, user_id u) {
  std::string v;
  bool found = false;
  if (auto err = self->state.env->db->get(column::sessions, key, v, found))
    return err;
  if (found && page_session_of(self, key, v, u))
    b.del(column::sessions, key);
  return caf::none;
}

} // namespace

caf::error put_page_sessions_off(self_ptr self, storage::write_batch& b,
                                 user_id u) {
  // Sessions are keyed by their cookie's hash alone: the family is read
  // whole. It is small (live sign-ins), and this runs at a deactivation.
  std::string begin{"w"};
  return self->state.env->db->scan(column::sessions, begin,
                                   keys::prefix_end(begin),
                                   [&](std::string_view k, std::string_view v) {
                                     if (page_session_of(self, k, v, u))
                                       b.del(column::sessions, std::string{k});
                                     return true;
                                   });
}

caf::result<bool> handle(self_ptr self, revoke_page_token& cmd) {
  auto& st = self->state;
  leave_if_empty(self);
  if (!st.exists)
    return false;
  auto found = require_user(self, cmd.user);
  if (!found)
    return false;
  auto u = **found;
  storage::write_batch b;
  if (!cmd.session_key.empty())
    if (auto err = put_page_session_off(self, b, cmd.session_key, u.id))
      return err;
  bool held = u.remove_signin_token(cmd.token_hash);
  if (held) {
    u.modified_ms = st.env->now_ms();
    put_user(b, u);
  }
  if (b.size() == 0)
    return false;
  if (auto err = st.env->db->write(b))
    return make_crm_error(crm_errc::storage_failure, "storage_failure",
                          "could not end the session's token");
  st.users[u.id] = u;
  return held;
}

caf::result<bool> handle(self_ptr self, open_page_session& cmd) {
  auto& st = self->state;
  leave_if_empty(self);
  if (!st.exists)
    return not_found("organization");
  auto found = require_user(self, cmd.user);
  if (!found)
    return found.error();
  auto& u = **found;
  // The session's head is what replication and the purge go by: it must
  // name this organization and this user, and a user that can sign in.
  auto head = cmd.key.size() == 1 + 64
                  ? page_session_of(self, cmd.key, cmd.value, u.id)
                  : std::nullopt;
  if (!head || head->expires_ms <= st.env->now_ms())
    return make_crm_error(crm_errc::invalid_input, "invalid_session",
                          "not a page session of this user");
  if (u.deactivated)
    return forbidden("this user is deactivated");
  storage::write_batch b;
  b.put(column::sessions, cmd.key, cmd.value);
  if (auto err = st.env->db->write(b))
    return make_crm_error(crm_errc::storage_failure, "storage_failure",
                          "could not store the session");
  return true;
}

} // namespace crmsync::actors::tenant_impl
