// The organization as a whole: disconnecting it from Office 365, and
// closing it before the service admin deletes it (t14-data).
#include "actors/tenant/handlers.hpp"

#include "actors/tenant/records.hpp"
#include "common/crypto.hpp"
#include "storage/teardown_rows.hpp"

namespace crmsync::actors::tenant_impl {

namespace {

/// Whether `u`'s calendar still has something in Office 365 (or is on the
/// way there): its stored state is not "disabled".
caf::expected<bool> calendar_left(self_ptr self, user_id u) {
  auto& st = self->state;
  std::string value;
  bool found = false;
  if (auto err = st.env->db->get(
          column::sync, keys::sync_state(st.id, u, entity_kind::calendar),
          value, found))
    return err;
  calendar_status status;
  if (found && !codec::decode(value, status))
    return corrupt("calendar status of " + u.str());
  return found && status.state != calendar_state::disabled;
}

/// Turns off the sync of every user in `users` in `b` (R20: the calendar
/// actor removes the CRM calendar and the subscription from Office 365,
/// the CRM events stay), with a teardown row that keeps naming the Office
/// 365 tenant and mailbox once the links are gone. Answers the users whose
/// calendar actor must be woken after the write.
caf::expected<std::vector<user_id>>
put_teardowns(self_ptr self, storage::write_batch& b,
              const std::vector<user_record>& users) {
  auto& st = self->state;
  std::vector<user_id> woken;
  for (auto& u : users) {
    auto was_on = put_sync_off(self, b, u.id);
    if (!was_on)
      return was_on.error();
    auto left = calendar_left(self, u.id);
    if (!left)
      return left.error();
    if (!*was_on && !*left)
      continue;
    if (!st.org.o365_tenant.empty() && !u.o365_user.empty())
      storage::teardown_rows::put(b, st.id, u.id, st.org.o365_tenant,
                                  u.o365_user);
    woken.push_back(u.id);
  }
  return woken;
}

/// Drops the tokens Office 365 sign-ins issued to `u`, except the one that
/// is also the account's own token (made with an installer, an invitee or
/// an approved requester): it stays listed, so it keeps its expiry
/// (--session-ttl) and stays revocable, and the account keeps a way in
/// while Office 365 is disconnected.
void drop_signin_tokens(user_record& u) {
  std::vector<std::string> kept;
  std::vector<int64_t> kept_ms;
  for (size_t i = 0; i < u.signin_token_hashes.size(); ++i) {
    auto& h = u.signin_token_hashes[i];
    if (!u.token_hash.empty()
        && crypto::equal_secret(unmarked_token(h), u.token_hash)) {
      kept.push_back(h);
      if (i < u.signin_issued_ms.size())
        kept_ms.push_back(u.signin_issued_ms[i]);
    }
  }
  u.signin_token_hashes = std::move(kept);
  u.signin_issued_ms = std::move(kept_ms);
}

/// After the batch of put_teardowns was written.
void teardowns_written(self_ptr self, const std::vector<user_id>& woken) {
  for (auto u : woken) {
    self->state.sync_on[u] = false;
    sync_written(self, u);
  }
}

/// Why the e-mail still queued at a disconnect is never sent.
constexpr const char* disconnected_mail_error = "Office 365 was disconnected";

/// Marks every e-mail of the organization still waiting in the outbox as
/// failed in `b`: it would go out through the tenant just disconnected.
/// The rows stay for operators, like any e-mail given up. Answers how many.
caf::expected<size_t> put_outbox_failed(self_ptr self,
                                        storage::write_batch& b) {
  auto& st = self->state;
  auto begin = keys::org(st.id);
  size_t n = 0;
  bool bad = false;
  auto err = st.env->db->scan(column::outbox, begin, keys::prefix_end(begin),
                              [&](std::string_view k, std::string_view v) {
                                mail_item m;
                                if (!codec::decode(v, m)) {
                                  bad = true;
                                  return false;
                                }
                                if (m.failed)
                                  return true;
                                m.failed = true;
                                m.last_error = disconnected_mail_error;
                                b.put(column::outbox, std::string{k},
                                      codec::encode(m));
                                ++n;
                                return true;
                              });
  if (err)
    return err;
  if (bad)
    return corrupt("outbox");
  return n;
}

} // namespace

caf::result<org_record> handle(self_ptr self, disconnect_office365& cmd) {
  auto& st = self->state;
  auto who = check_caller(self, cmd.who);
  if (!who)
    return who.error();
  if (!is_admin(*who))
    return forbidden("disconnecting Office 365 needs an administrator");
  if (st.org.o365_tenant.empty())
    return office365_error(crm_errc::conflict, "office365_not_installed",
                           "this organization is not linked to Office 365");
  std::vector<user_record> users;
  if (auto err = scan_records(self, column::users, users))
    return err;
  storage::write_batch b;
  auto woken = put_teardowns(self, b, users);
  if (!woken)
    return woken.error();
  auto now = st.env->now_ms();
  size_t unlinked = 0;
  for (auto& u : users) {
    if (u.o365_user.empty() && u.signin_token_hashes.empty())
      continue;
    if (!u.o365_user.empty()) {
      b.del(column::lookup, keys::o365_user_lookup(u.o365_tenant, u.o365_user));
      ++unlinked;
    }
    // The tokens Office 365 sign-ins issued go; the account's own API
    // token (and password) stay.
    u.o365_tenant.clear();
    u.o365_user.clear();
    drop_signin_tokens(u);
    u.modified_ms = now;
    put_user(b, u);
  }
  auto unsent = put_outbox_failed(self, b);
  if (!unsent)
    return unsent.error();
  auto org = st.org;
  b.del(column::lookup, keys::o365_tenant_lookup(org.o365_tenant));
  put_audit(self, b, actor_name(*who), "office365.disconnected",
            "disconnected from Office 365 tenant " + org.o365_tenant + ": "
                + std::to_string(unlinked) + " users unlinked, the sync of "
                + std::to_string(woken->size())
                + " turned off (their CRM calendars are removed from Office "
                  "365); CRM data kept"
                + (*unsent > 0 ? "; " + std::to_string(*unsent)
                                     + " queued e-mails not sent"
                               : std::string{}));
  org.o365_tenant.clear();
  org.modified_ms = now;
  put_org(self, b, org);
  if (auto err = st.env->db->write(b))
    return err;
  st.org = org;
  for (auto& u : users)
    if (auto i = st.users.find(u.id); i != st.users.end())
      i->second = u;
  teardowns_written(self, *woken);
  return org;
}

caf::result<org_record> handle(self_ptr self, close_org& cmd) {
  auto& st = self->state;
  if (!cmd.who.service_admin) {
    leave_if_empty(self);
    return forbidden("deleting an organization needs the service admin "
                     "token");
  }
  // Closed once: a second deletion is refused, not run alongside.
  if (st.closed)
    return office365_error(crm_errc::conflict, "org_closing",
                           "this organization is already being deleted");
  if (!st.exists) {
    leave_if_empty(self);
    return not_found("organization");
  }
  auto who = check_caller(self, cmd.who);
  if (!who)
    return who.error();
  std::vector<user_record> users;
  if (auto err = scan_records(self, column::users, users))
    return err;
  storage::write_batch b;
  auto woken = put_teardowns(self, b, users);
  if (!woken)
    return woken.error();
  b.put(column::orgs, keys::org_closed(st.id), std::string{});
  if (auto err = st.env->db->write(b))
    return err;
  auto org = st.org;
  st.exists = false;
  st.closed = true;
  st.users.clear();
  teardowns_written(self, *woken);
  return org;
}

} // namespace crmsync::actors::tenant_impl
