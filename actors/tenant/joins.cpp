// Join requests: an Office 365 colleague asks to join the organization,
// a user manager approves and the person becomes a user.
#include "actors/tenant/handlers.hpp"

#include <optional>

#include "actors/tenant/records.hpp"

namespace crmsync::actors::tenant_impl {

namespace {

/// The latest join request of an Office 365 person, if any.
caf::expected<std::optional<join_request_record>>
join_request_of(self_ptr self, const o365_identity& who) {
  auto& st = self->state;
  std::string value;
  bool found = false;
  if (auto err = st.env->db->get(
          column::lookup, keys::join_lookup(st.id, who.user), value, found))
    return err;
  if (!found || value.size() != 8)
    return std::optional<join_request_record>{};
  auto jr = load_item<join_request_record>(
      self, column::joins, keys::get_be64(value, 0), "join request");
  if (!jr)
    return jr.error();
  return std::optional<join_request_record>{std::move(*jr)};
}

/// The user of this organization whose address is `email`, if any.
std::optional<user_record> user_with_email(self_ptr self,
                                           const std::string& email) {
  auto& st = self->state;
  std::string value;
  bool found = false;
  if (email.empty()
      || st.env->db->get(column::lookup, keys::email_lookup(email), value,
                         found)
      || !found || value.size() != 16
      || keys::get_be64(value, 0) != st.id.value)
    return std::nullopt;
  auto u = find_user(self, user_id{keys::get_be64(value, 8)});
  if (!u || *u == nullptr)
    return std::nullopt;
  return **u;
}

/// Tells the requester how their request ended, in the caller's batch
/// (nothing when no mailbox can send it).
void put_join_answer(self_ptr self, storage::write_batch& b,
                     const user_record* who, const join_request_record& jr) {
  auto& st = self->state;
  auto sender = mail_sender(self, who);
  if (sender.empty())
    return;
  if (jr.status == join_status::approved)
    put_mail(self, b, sender, jr.email, "You are in " + st.org.name + "'s CRM",
             "<p>Hello " + html_text(jr.name)
                 + ",</p><p>Your request to "
                   "join "
                 + html_text(st.org.name)
                 + " in the CRM was "
                   "approved: you are in. Open the CRM and sign in with "
                   "your Office 365 account.</p>");
  else
    put_mail(self, b, sender, jr.email,
             "Your request to join " + st.org.name + "'s CRM",
             "<p>Hello " + html_text(jr.name)
                 + ",</p><p>Your request to "
                   "join "
                 + html_text(st.org.name)
                 + " in the CRM was not "
                   "approved. Ask a colleague who manages the CRM's users if "
                   "you think it should be.</p>");
}

/// A join request a user manager acts on (`verb`: "approve", "reject"):
/// the caller (in `who`) must hold Manage Users; refusals are audited.
caf::expected<join_request_record>
managed_request(self_ptr self, const caller& by, uint64_t request,
                const char* verb, const user_record*& who) {
  auto w = check_caller(self, by);
  if (!w)
    return w.error();
  who = *w;
  if (!can_manage_users(who))
    return refused(self, actor_name(who), "join.refused",
                   std::string{"tried to "} + verb + " join request "
                       + to_hex16(request)
                       + " without the Manage Users permission",
                   office365_error(crm_errc::forbidden, "manage_users_required",
                                   std::string{"only a user with the Manage "
                                               "Users permission can "}
                                       + verb));
  return load_item<join_request_record>(self, column::joins, request,
                                        "join request");
}

} // namespace

caf::result<join_request_record> handle(self_ptr self, reject_join& cmd) {
  auto& st = self->state;
  const user_record* who = nullptr;
  log::scope traced{caller_context(self, cmd.who)};
  auto jr = managed_request(self, cmd.who, cmd.request, "reject", who);
  if (!jr)
    return jr.error();
  if (jr->status == join_status::rejected)
    return *jr; // rejecting twice is harmless (and mails once)
  if (jr->status == join_status::approved)
    return office365_error(crm_errc::conflict, "join_approved",
                           "this join request was already approved; "
                           "deactivate the user instead");
  jr->status = join_status::rejected;
  jr->resolved_ms = st.env->now_ms();
  storage::write_batch b;
  b.put(column::joins, keys::tenant_item(st.id, jr->id), codec::encode(*jr));
  put_join_answer(self, b, who, *jr);
  put_audit(self, b, actor_name(who), "join.rejected",
            "rejected the join request of " + jr->email);
  if (auto err = st.env->db->write(b))
    return err;
  mail_written(self);
  return *jr;
}

caf::result<join_request_record> handle(self_ptr self, request_join& cmd) {
  auto& st = self->state;
  leave_if_empty(self);
  if (!st.exists || st.org.o365_tenant != cmd.who.tenant)
    return not_found("organization");
  auto prior = join_request_of(self, cmd.who);
  if (!prior)
    return prior.error();
  if (*prior && (*prior)->status == join_status::pending)
    return **prior; // asking again answers the open request
  auto now = st.env->now_ms();
  join_request_record jr;
  jr.id = st.env->random_id();
  jr.org = st.id;
  jr.o365_user = cmd.who.user;
  jr.email = cmd.who.email;
  jr.name = cmd.who.name;
  jr.created_ms = now;
  storage::write_batch b;
  b.put(column::joins, keys::tenant_item(st.id, jr.id), codec::encode(jr));
  std::string id_value;
  keys::put_be64(id_value, jr.id);
  b.put(column::lookup, keys::join_lookup(st.id, cmd.who.user), id_value);
  // R11: every user with Manage Users gets the request by e-mail,
  // sent from the super administrator's mailbox when it is linked.
  std::vector<user_record> users;
  if (auto err = scan_records(self, column::users, users))
    return err;
  std::string sender = cmd.who.user;
  for (auto& u : users)
    if (u.id == st.org.super_admin && !u.o365_user.empty())
      sender = u.o365_user;
  // A page a browser opens (GET), with "Approve & Add" on it.
  auto link = join_request_page(cmd.public_url, st.id, jr.id);
  // The seed puts approving under the paid editions: a free organization
  // records the request, and its managers learn what approving needs.
  auto approve_line
      = st.org.plan == edition::paid
            ? std::string{"<p>Open the request and choose <b>Approve &amp; "
                          "Add</b>: <a href=\""}
                  + html_text(link) + "\">" + html_text(link) + "</a></p>"
            : std::string{"<p>Approving join requests needs a paid edition "
                          "of the CRM: your organization uses the free "
                          "edition. Once it is upgraded, open the request "
                          "and choose <b>Approve &amp; Add</b>: <a href=\""}
                  + html_text(link) + "\">" + html_text(link) + "</a></p>";
  size_t approvers = 0;
  for (auto& u : users) {
    if (!(u.manage_users || u.super_admin))
      continue;
    ++approvers;
    put_mail(self, b, sender, u.email,
             cmd.who.name + " asks to join " + st.org.name + "'s CRM",
             "<p>" + html_text(cmd.who.name) + " (" + html_text(cmd.who.email)
                 + ") uses Office 365 in your organization and asks "
                   "to join the CRM.</p>"
                 + approve_line);
  }
  put_audit(self, b, actor_name(cmd.who), "join.requested",
            cmd.who.email + " asked to join; e-mailed "
                + std::to_string(approvers) + " approver(s)");
  if (auto err = st.env->db->write(b))
    return err;
  mail_written(self);
  return jr;
}

caf::result<join_request_record> handle(self_ptr self, get_join_request& cmd) {
  auto& st = self->state;
  leave_if_empty(self);
  if (!st.exists || st.org.o365_tenant != cmd.who.tenant)
    return not_found("join request");
  auto jr = join_request_of(self, cmd.who);
  if (!jr)
    return jr.error();
  if (!*jr)
    return not_found("join request");
  return **jr;
}

caf::result<join_request_list> handle(self_ptr self, list_join_requests& cmd) {
  auto items = managed_list<join_request_record>(
      self, cmd.who, column::joins,
      "join requests are for users with the Manage Users permission");
  if (!items)
    return items.error();
  join_request_list out;
  out.items = std::move(*items);
  return out;
}

caf::result<join_approved> handle(self_ptr self, approve_join& cmd) {
  auto& st = self->state;
  const user_record* who = nullptr;
  log::scope traced{caller_context(self, cmd.who)};
  auto jr = managed_request(self, cmd.who, cmd.request, "approve", who);
  if (!jr)
    return jr.error();
  join_approved out;
  if (jr->status == join_status::rejected)
    return office365_error(crm_errc::conflict, "join_rejected",
                           "this join request was rejected; the person can "
                           "ask again");
  if (jr->status == join_status::approved) {
    // Approving twice is harmless: the same user comes back.
    auto member = require_user(self, jr->member);
    if (!member)
      return member.error();
    out.request = *jr;
    out.member = **member;
    return out;
  }
  // Disconnected from Office 365 since the request: nobody to link to.
  if (st.org.o365_tenant.empty())
    return office365_error(crm_errc::conflict, "office365_not_installed",
                           "this organization is no longer linked to Office "
                           "365; install the app again before approving");
  if (st.org.plan != edition::paid)
    return refused(self, actor_name(who), "join.refused",
                   "tried to approve join request " + to_hex16(cmd.request)
                       + " of " + jr->email + " in the free edition",
                   office365_error(crm_errc::forbidden, "edition_required",
                                   "approving join requests is available "
                                   "in paid editions only"));
  auto now = st.env->now_ms();
  jr->status = join_status::approved;
  jr->approved_by = who == nullptr ? user_id{} : who->id;
  jr->resolved_ms = now;
  storage::write_batch b;
  // A CRM user with the requester's address already (made with "New User"
  // while the request waited) becomes that person: linked, not doubled.
  if (auto existing = user_with_email(self, jr->email)) {
    auto u = *existing;
    if (!u.o365_user.empty()
        && (u.o365_user != jr->o365_user
            || u.o365_tenant != st.org.o365_tenant))
      return office365_error(crm_errc::conflict, "office365_link_conflict",
                             "the CRM user with this address is linked to "
                             "another Office 365 user");
    u.o365_tenant = st.org.o365_tenant;
    u.o365_user = jr->o365_user;
    u.modified_ms = now;
    jr->member = u.id;
    b.put(column::joins, keys::tenant_item(st.id, jr->id), codec::encode(*jr));
    put_user(b, u);
    auto claim = o365_user_claim(u);
    b.put(claim.cf, claim.key, claim.value);
    put_audit(self, b, actor_name(who), "join.approved",
              "approved " + jr->email
                  + " and linked them to the existing CRM user with that "
                    "address");
    put_join_answer(self, b, who, *jr);
    if (auto err = st.env->db->write_claimed(b, {claim}))
      return office365_error(crm_errc::conflict, "already_member",
                             "this Office 365 user is already a CRM user");
    mail_written(self);
    st.users[u.id] = u;
    out.request = *jr;
    out.member = u;
    return out;
  }
  // The new user is the person who asked, as Office 365 named them.
  auto nu = cmd.member;
  nu.email = jr->email;
  nu.name = jr->name;
  auto u = make_o365_user(self, nu, jr->o365_user, now);
  jr->member = u.id;
  b.put(column::joins, keys::tenant_item(st.id, jr->id), codec::encode(*jr));
  put_audit(self, b, actor_name(who), "join.approved",
            "approved " + jr->email + " and added them as a user");
  put_join_answer(self, b, who, *jr);
  if (auto err = add_o365_user(self, b, u))
    return err;
  mail_written(self);
  out.request = *jr;
  out.member = u;
  return out;
}

} // namespace crmsync::actors::tenant_impl
