// Users of the organization: reading and caching them, creating them with
// their global e-mail and id claims, authenticating and listing them.
#include "actors/tenant/handlers.hpp"

#include "common/crypto.hpp"
#include "common/time_format.hpp"

namespace crmsync::actors::tenant_impl {

/// Reads a user of this tenant, from the cache or the database.
caf::expected<const user_record*> find_user(self_ptr self, user_id id) {
  auto& st = self->state;
  auto i = st.users.find(id);
  if (i != st.users.end())
    return &i->second;
  std::string value;
  bool found = false;
  if (auto err
      = st.env->db->get(column::users, keys::user(st.id, id), value, found))
    return err;
  if (!found)
    return static_cast<const user_record*>(nullptr);
  user_record u;
  if (!codec::decode(value, u))
    return corrupt("user " + id.str());
  return &st.users.emplace(id, std::move(u)).first->second;
}

/// Like find_user, but a missing user is a 404 (naming `field` if given).
caf::expected<const user_record*> require_user(self_ptr self, user_id id,
                                               std::string field) {
  auto u = find_user(self, id);
  if (u && *u == nullptr)
    return make_crm_error(
        crm_errc::not_found, "not_found",
        field.empty() ? "user not found" : field + " not found", field);
  return u;
}

user_record make_user(self_ptr self, const new_user& nu, int64_t now) {
  user_record u;
  u.id = nu.id;
  u.org = self->state.id;
  u.email = nu.email;
  u.name = nu.name;
  u.role = nu.role;
  u.manage_users = nu.manage_users;
  u.view_all_events = nu.view_all_events;
  u.super_admin = nu.super_admin;
  u.password_hash = nu.password_hash;
  u.token_hash = nu.token_hash;
  u.created_ms = now;
  u.modified_ms = now;
  return u;
}

std::vector<storage::claim> user_claims(const user_record& u) {
  return {
      {column::lookup, keys::email_lookup(u.email),
       keys::tenant_user_value(u.org, u.id)},
      {column::lookup, keys::user_lookup(u.id), keys::org(u.org)},
  };
}

void put_user(storage::write_batch& b, const user_record& u) {
  b.put(column::users, keys::user(u.org, u.id), codec::encode(u));
  for (auto& c : user_claims(u))
    b.put(c.cf, c.key, c.value);
}

/// Maps a failed claim to the API's answer; `email_field` is how the
/// request named the address ("email", or "admin.email" for a new org).
caf::error claim_error(const caf::error& err, const user_record& u,
                       const char* email_field) {
  if (err.category() == caf::atom("crm")
      && static_cast<crm_errc>(err.code()) == crm_errc::conflict) {
    const auto& ctx = err.context();
    if (ctx.match_elements<std::string, std::string, std::string>()
        && ctx.get_as<std::string>(1) == keys::email_lookup(u.email))
      return make_crm_error(crm_errc::conflict, "email_taken",
                            "a user with this e-mail address already exists",
                            email_field);
    // Not an id clash: a new id would fail the same way, forever.
    if (!u.o365_user.empty()
        && ctx.match_elements<std::string, std::string, std::string>()
        && (ctx.get_as<std::string>(1)
                == keys::o365_user_lookup(u.o365_tenant, u.o365_user)
            || ctx.get_as<std::string>(1)
                   == keys::o365_tenant_lookup(u.o365_tenant)))
      return make_crm_error(crm_errc::conflict, "office365_link_conflict",
                            "this Office 365 user or tenant is already "
                            "linked to a CRM account");
    return make_crm_error(crm_errc::conflict, "id_collision",
                          "generated id already in use; retry");
  }
  return err;
}

/// A user made without a password (someone without Office 365): the
/// invitation to set one goes with the new user, by e-mail when a mailbox
/// can send it (the API also answers with the link). True when e-mailed.
bool invite_to_set_password(self_ptr self, storage::write_batch& b,
                            const user_record* who, const create_user& cmd,
                            user_record& u) {
  auto& st = self->state;
  if (cmd.setup_token_hash.empty() || !u.password_hash.empty())
    return false;
  u.setup_token_hash = cmd.setup_token_hash;
  u.setup_expires_ms = cmd.setup_expires_ms;
  auto sender = mail_sender(self, who);
  auto link = cmd.public_url + "/password-setup/" + cmd.setup_token;
  put_audit(self, b, actor_name(who), "user.password_invited",
            u.email + " is invited to set a password"
                + (sender.empty() ? " (no Office 365 mailbox to e-mail "
                                    "from: the link went to the creator)"
                                  : " by e-mail"));
  if (sender.empty())
    return false;
  put_mail(self, b, sender, u.email,
           "Your account in " + st.org.name + "'s CRM",
           "<p>Hello " + html_text(u.name) + ",</p><p>"
               + html_text(who == nullptr ? std::string{"An administrator"}
                                          : who->name)
               + " made you an account in " + html_text(st.org.name)
               + "'s CRM. Choose your password here: <a href=\""
               + html_text(link) + "\">" + html_text(link)
               + "</a></p><p>The link works once and expires on "
               + format_rfc3339(u.setup_expires_ms) + ".</p>");
  return true;
}

caf::result<user_record> handle(self_ptr self, set_password& cmd) {
  auto& st = self->state;
  leave_if_empty(self);
  auto invalid_link = make_crm_error(crm_errc::not_found, "setup_not_found",
                                     "this password link is not valid or "
                                     "was already used");
  if (!st.exists)
    return invalid_link;
  auto found = find_user(self, cmd.user);
  if (!found)
    return found.error();
  if (*found == nullptr || (*found)->setup_token_hash.empty()
      || !crypto::equal_secret((*found)->setup_token_hash, cmd.token_hash))
    return invalid_link;
  auto u = **found;
  auto now = st.env->now_ms();
  if (now >= u.setup_expires_ms)
    return make_crm_error(crm_errc::gone, "setup_expired",
                          "this password link has expired; ask an "
                          "administrator for a new account invitation");
  if (u.deactivated)
    return make_crm_error(crm_errc::forbidden, "user_deactivated",
                          "this user is deactivated");
  if (cmd.check_only)
    return u;
  if (cmd.password_hash.empty())
    return invalid("password", "a password is required");
  u.password_hash = cmd.password_hash;
  u.setup_token_hash.clear(); // single use
  u.setup_expires_ms = 0;
  u.modified_ms = now;
  // The person who set it is signed in (their sign-in token ends like
  // any: --session-ttl).
  if (!cmd.signin_token_hash.empty())
    u.add_signin_token(cmd.signin_token_hash, false, now, max_signin_tokens);
  storage::write_batch b;
  put_user(b, u);
  put_audit(self, b, actor_name(&u), "user.password_set",
            u.email + " set their password from the e-mailed link");
  if (auto err = st.env->db->write(b))
    return err;
  st.users[u.id] = u;
  return u;
}

caf::result<user_record> handle(self_ptr self, create_user& cmd) {
  auto& st = self->state;
  auto who = check_caller(self, cmd.who);
  if (!who)
    return who.error();
  if (!can_manage_users(*who))
    return forbidden("adding users needs the Manage Users permission");
  auto now = st.env->now_ms();
  auto u = make_user(self, cmd.user, now);
  if (auto err = check_grant(*who, nullptr, rights_of(u))) {
    // The detail is read before `err` moves into the answer.
    auto detail = "tried to add " + u.email + " as " + to_string(u.role)
                  + (u.super_admin ? " (super administrator)" : "") + ": "
                  + to_api_error(err).message;
    return refused(self, actor_name(*who), "user.refused", std::move(detail),
                   std::move(err));
  }
  auto org = st.org;
  ++org.user_count;
  org.modified_ms = now;
  storage::write_batch b;
  bool mailed = invite_to_set_password(self, b, *who, cmd, u);
  put_user(b, u);
  put_org(self, b, org);
  if (auto err = st.env->db->write_claimed(b, user_claims(u)))
    return claim_error(err, u, "email");
  st.org = org;
  st.users[u.id] = u;
  if (mailed)
    mail_written(self);
  return u;
}

caf::result<user_record> handle(self_ptr self, get_user& cmd) {
  auto who = check_caller(self, cmd.who);
  if (!who)
    return who.error();
  auto u = require_user(self, cmd.id);
  if (!u)
    return u.error();
  return **u;
}

caf::result<user_record> handle(self_ptr self, authenticate& cmd) {
  auto who = check_caller(self, cmd.who);
  if (!who)
    return who.error();
  if (*who == nullptr)
    return make_crm_error(crm_errc::invalid_input, "invalid_input",
                          "the service admin has no user record");
  return **who;
}

caf::result<user_page> handle(self_ptr self, list_users& cmd) {
  auto& st = self->state;
  auto who = check_caller(self, cmd.who);
  if (!who)
    return who.error();
  user_page page;
  auto begin = cmd.after.valid()
                   ? keys::user(st.id, user_id{cmd.after.value}) + '\0'
                   : keys::users_of(st.id);
  auto end = keys::prefix_end(keys::users_of(st.id));
  caf::error decode_err;
  auto scan_err = st.env->db->scan(column::users, begin, end,
                                   [&](std::string_view, std::string_view v) {
                                     user_record u;
                                     if (!codec::decode(v, u)) {
                                       decode_err = corrupt("user in listing");
                                       return false;
                                     }
                                     if (page.items.size() == cmd.limit) {
                                       page.next = page.items.back().id;
                                       return false;
                                     }
                                     page.items.push_back(std::move(u));
                                     return true;
                                   });
  if (scan_err)
    return scan_err;
  if (decode_err)
    return decode_err;
  return page;
}

} // namespace crmsync::actors::tenant_impl
