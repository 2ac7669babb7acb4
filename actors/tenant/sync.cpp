// Calendar sync seen from the tenant: a user's sync request, the CRM
// changes queued for Office 365 (sync_outbox), and the changes the sync
// engine brings back from Office 365 (apply_office365).
#include "actors/tenant/handlers.hpp"

#include <algorithm>

#include <caf/send.hpp>

#include "actors/send_within.hpp"
#include "storage/sync_links.hpp"

namespace crmsync::actors::tenant_impl {

namespace {

caf::expected<bool> sync_requested(self_ptr self, user_id u) {
  auto& st = self->state;
  auto i = st.sync_on.find(u);
  if (i != st.sync_on.end())
    return i->second;
  std::string value;
  bool found = false;
  if (auto err = st.env->db->get(column::sync, keys::sync_request_key(st.id, u),
                                 value, found))
    return err;
  sync_request req;
  if (found && !codec::decode(value, req))
    return corrupt("sync request of " + u.str());
  st.sync_on[u] = found && req.enabled;
  return found && req.enabled;
}

} // namespace

/// Queues a CRM change of `e` for Office 365 in the same batch, when its
/// owner syncs and it is eligible (R19: imported events never are; a
/// deletion always goes, the engine knows whether the event was synced).
/// Returns true when something was queued.
caf::expected<bool> queue_sync(self_ptr self, storage::write_batch& b,
                               const event_record& e, bool deleted) {
  auto on = sync_requested(self, e.owner);
  if (!on)
    return on.error();
  if (!*on || (!deleted && e.origin == event_origin::imported))
    return false;
  auto& st = self->state;
  auto now = st.env->now_ms();
  // Increasing per tenant, so one user's changes drain in write order.
  st.last_sync_seq
      = std::max(st.last_sync_seq + 1, static_cast<uint64_t>(now) << 12);
  sync_change c;
  c.event = e.id;
  c.deleted = deleted;
  c.at_ms = now;
  b.put(column::sync_outbox, keys::user_item(st.id, e.owner, st.last_sync_seq),
        codec::encode(c));
  return true;
}

/// Records whether `u` asked for calendar sync, in the caller's batch; the
/// cache follows once the batch is written (sync_request_written).
void put_sync_request(self_ptr self, storage::write_batch& b, user_id u,
                      bool enabled) {
  auto& st = self->state;
  sync_request req;
  req.enabled = enabled;
  req.at_ms = st.env->now_ms();
  b.put(column::sync, keys::sync_request_key(st.id, u), codec::encode(req));
}

/// Turns `u`'s sync off in the caller's batch when it is on (R20: the
/// engine removes the CRM calendar from Office 365, the CRM events stay).
/// Returns whether it was on; call sync_written for it after the write.
caf::expected<bool> put_sync_off(self_ptr self, storage::write_batch& b,
                                 user_id u) {
  auto on = sync_requested(self, u);
  if (!on || !*on)
    return on;
  put_sync_request(self, b, u, false);
  return true;
}

void sync_written(self_ptr self, user_id u) {
  // The user's calendar actor syncs; the directory activates it.
  actors::send_within(self, self->state.directory, atom::route_atom_v,
                      entity_key{entity_kind::calendar, self->state.id, u},
                      caf::make_message(atom::wake_atom_v));
}

caf::result<calendar_status> handle(self_ptr self, set_calendar_sync& cmd) {
  auto& st = self->state;
  auto who = check_caller(self, cmd.who);
  if (!who)
    return who.error();
  auto target = require_user(self, cmd.user);
  if (!target)
    return target.error();
  if (*who != nullptr && (*who)->id != cmd.user && !is_admin(*who))
    return forbidden("only the user or an administrator can change "
                     "this user's calendar sync");
  if (cmd.enabled
      && (st.org.o365_tenant.empty() || (*target)->o365_user.empty()
          || (*target)->o365_tenant != st.org.o365_tenant))
    return office365_error(crm_errc::conflict, "office365_not_linked",
                           "calendar sync needs the organization "
                           "installed from Office 365 and this user "
                           "signed in with Office 365 once");
  storage::write_batch b;
  put_sync_request(self, b, cmd.user, cmd.enabled);
  // Only the node's own service work may name the sync as the actor.
  const bool by_sync = !cmd.reason.empty() && cmd.who.service_admin;
  put_audit(self, b, by_sync ? std::string{"sync"} : actor_name(*who),
            cmd.enabled ? "sync.enabled" : "sync.disabled",
            "calendar sync of " + (*target)->email
                + (by_sync ? ": " + cmd.reason : std::string{}));
  if (auto err = st.env->db->write(b))
    return err;
  st.sync_on[cmd.user] = cmd.enabled;
  calendar_status status;
  status.org = st.id;
  status.user = cmd.user;
  std::string value;
  bool found = false;
  if (auto err = st.env->db->get(
          column::sync,
          keys::sync_state(st.id, cmd.user, entity_kind::calendar), value,
          found))
    return err;
  if (found && !codec::decode(value, status))
    return corrupt("calendar status");
  // What the engine is about to do, until it reports otherwise.
  if (cmd.enabled && status.state == calendar_state::disabled)
    status.state = calendar_state::enabling;
  else if (!cmd.enabled && status.state != calendar_state::disabled)
    status.state = calendar_state::disabling;
  sync_written(self, cmd.user);
  return status;
}

caf::result<event_record> handle(self_ptr self, apply_office365& cmd) {
  auto& st = self->state;
  leave_if_empty(self);
  if (!st.exists)
    return not_found("organization");
  auto owner = require_user(self, cmd.owner);
  if (!owner)
    return owner.error();
  auto now = st.env->now_ms();
  storage::write_batch b;
  auto org = st.org;
  if (cmd.event.valid()) {
    auto before = load_event(self, cmd.event);
    if (!before)
      return before.error();
    if (before->owner != cmd.owner)
      return forbidden("the event belongs to another user");
    if (cmd.remove) {
      if (org.event_count > 0)
        --org.event_count;
      b.del(column::events, keys::event(st.id, before->id));
      b.del(column::event_index,
            keys::event_index(st.id, before->owner, before->start_ms,
                              before->id));
      put_org(self, b, org);
      if (auto err = st.env->db->write(b))
        return err;
      st.org = org;
      return *before;
    }
    if (cmd.expected_version != 0 && before->version != cmd.expected_version)
      return make_crm_error(crm_errc::conflict, "stale_version",
                            "the CRM event changed since the last sync");
    // Only what Office 365 says of an event: participants and the
    // zone the CRM event was written in stay.
    auto after = *before;
    after.title = cmd.content.title;
    after.start_ms = cmd.content.start_ms;
    after.end_ms = cmd.content.end_ms;
    after.all_day = cmd.content.all_day;
    after.location = cmd.content.location;
    after.description = cmd.content.description;
    after.sensitivity = cmd.content.sensitivity;
    after.show_as = cmd.content.show_as;
    after.reminder_on = cmd.content.reminder_on;
    after.reminder_minutes = cmd.content.reminder_minutes;
    after.categories = cmd.content.categories;
    after.origin = event_origin::office365;
    ++after.version;
    after.modified_ms = now;
    put_revision(self, b, *before, after);
    if (auto err = st.env->db->write(b))
      return err;
    return after;
  }
  if (cmd.remove)
    return not_found("event");
  caf::error err;
  auto e = cmd.content;
  e.id = fresh_event_id(self, err);
  if (err)
    return err;
  e.org = st.id;
  e.owner = cmd.owner;
  e.origin = event_origin::office365;
  e.version = 1;
  e.created_ms = now;
  e.modified_ms = now;
  ++org.event_count;
  put_event(self, b, e);
  put_org(self, b, org);
  if (!cmd.graph_id.empty()) {
    // The link comes with the event: a crash right after cannot make
    // the next delta round create it a second time.
    storage::put_sync_link(
        b, st.id, cmd.owner,
        sync_link{e.id, cmd.graph_id, cmd.change_key, e.version});
  }
  if ((err = st.env->db->write(b)))
    return err;
  st.org = org;
  return e;
}

} // namespace crmsync::actors::tenant_impl
