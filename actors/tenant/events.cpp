// CRM events: create, read, update, delete, list (cursor pages), import
// and mass update. Each change of a syncing user's event also queues it for
// Office 365 in the same batch (sync.cpp).
#include "actors/tenant/handlers.hpp"

#include <set>

namespace crmsync::actors::tenant_impl {

namespace {

constexpr int64_t ms_per_day = 86'400'000;

caf::error check_times(const event_record& e, const std::string& prefix) {
  if (e.all_day) {
    if (e.start_ms % ms_per_day != 0)
      return invalid(prefix + "start",
                     "'start' of an all-day event must be a date");
    if (e.end_ms % ms_per_day != 0)
      return invalid(prefix + "end",
                     "'end' of an all-day event must be a date");
    if (e.end_ms <= e.start_ms)
      return invalid(prefix + "end", "'end' of an all-day event is exclusive "
                                     "and must be after 'start'");
  } else if (e.end_ms < e.start_ms) {
    return invalid(prefix + "end", "'end' must not be before 'start'");
  }
  return caf::none;
}

std::string encode_cursor(int64_t start_ms, event_id id) {
  return to_hex16(keys::order_signed(start_ms)) + id.str();
}

bool decode_cursor(const std::string& c, uint64_t& start, uint64_t& id) {
  if (c.size() != 32)
    return false;
  auto a = parse_hex16(std::string_view{c}.substr(0, 16));
  auto b = parse_hex16(std::string_view{c}.substr(16));
  if (!a || !b)
    return false;
  start = *a;
  id = *b;
  return true;
}

/// Applies a patch to an event and stamps it as a new version.
caf::error revise(self_ptr self, event_record& e, const event_patch& p,
                  event_origin origin, const std::string& prefix) {
  apply_patch(p, e);
  if (auto err = check_times(e, prefix))
    return err;
  e.origin = origin;
  ++e.version;
  e.modified_ms = self->state.env->now_ms();
  return caf::none;
}

} // namespace

caf::expected<event_record> load_event(self_ptr self, event_id id) {
  auto& st = self->state;
  std::string value;
  bool found = false;
  if (auto err
      = st.env->db->get(column::events, keys::event(st.id, id), value, found))
    return err;
  if (!found)
    return not_found("event");
  event_record e;
  if (!codec::decode(value, e))
    return corrupt("event " + id.str());
  return e;
}

event_id fresh_event_id(self_ptr self, caf::error& err) {
  // Random 64-bit ids: a collision is astronomically unlikely, but checked.
  for (int attempt = 0; attempt < 8; ++attempt) {
    event_id id{self->state.env->random_id()};
    std::string value;
    bool found = false;
    if ((err = self->state.env->db->get(
             column::events, keys::event(self->state.id, id), value, found)))
      return {};
    if (!found && id.valid())
      return id;
  }
  err = make_crm_error(crm_errc::internal, "internal",
                       "could not allocate an event id");
  return {};
}

void put_event(self_ptr self, storage::write_batch& b, const event_record& e) {
  b.put(column::events, keys::event(e.org, e.id), codec::encode(e));
  b.put(column::event_index,
        keys::event_index(e.org, e.owner, e.start_ms, e.id), "");
}

/// Writes a revised event: record, index move if its start changed.
void put_revision(self_ptr self, storage::write_batch& b,
                  const event_record& before, const event_record& after) {
  if (before.start_ms != after.start_ms)
    b.del(column::event_index, keys::event_index(before.org, before.owner,
                                                 before.start_ms, before.id));
  put_event(self, b, after);
}

caf::result<event_record> handle(self_ptr self, create_event& cmd) {
  auto& st = self->state;
  auto who = check_caller(self, cmd.who);
  if (!who)
    return who.error();
  auto owner = require_user(self, cmd.draft.owner);
  if (!owner)
    return owner.error();
  if (!may_write_events_of(*who, cmd.draft.owner))
    return forbidden("only the owner or an administrator can create "
                     "events for this user");
  caf::error err;
  auto e = std::move(cmd.draft);
  if ((err = check_times(e, "")))
    return err;
  e.id = fresh_event_id(self, err);
  if (err)
    return err;
  auto now = st.env->now_ms();
  e.org = st.id;
  e.origin = event_origin::individual;
  e.version = 1;
  e.created_ms = now;
  e.modified_ms = now;
  auto org = st.org;
  ++org.event_count;
  storage::write_batch b;
  put_event(self, b, e);
  put_org(self, b, org);
  auto queued = queue_sync(self, b, e, false);
  if (!queued)
    return queued.error();
  if ((err = st.env->db->write(b)))
    return err;
  st.org = org;
  if (*queued)
    sync_written(self, e.owner);
  return e;
}

caf::result<event_record> handle(self_ptr self, get_event& cmd) {
  auto who = check_caller(self, cmd.who);
  if (!who)
    return who.error();
  auto e = load_event(self, cmd.id);
  if (!e)
    return e.error();
  if (!may_read_events_of(*who, e->owner))
    return forbidden("only the owner, an administrator or a user with "
                     "the View All Events permission can read this "
                     "event");
  if (!may_see_private_details(*who, *e))
    redact_private_event(*e);
  return std::move(*e);
}

caf::result<event_record> handle(self_ptr self, update_event& cmd) {
  auto who = check_caller(self, cmd.who);
  if (!who)
    return who.error();
  auto before = load_event(self, cmd.id);
  if (!before)
    return before.error();
  if (!may_write_events_of(*who, before->owner))
    return forbidden("only the owner or an administrator can change "
                     "this event");
  if (auto err = check_version(cmd.expected_version, before->version))
    return err;
  auto after = *before;
  if (auto err = revise(self, after, cmd.patch, event_origin::individual, ""))
    return err;
  storage::write_batch b;
  put_revision(self, b, *before, after);
  auto queued = queue_sync(self, b, after, false);
  if (!queued)
    return queued.error();
  if (auto err = self->state.env->db->write(b))
    return err;
  if (*queued)
    sync_written(self, after.owner);
  return after;
}

caf::result<event_deleted> handle(self_ptr self, delete_event& cmd) {
  auto& st = self->state;
  auto who = check_caller(self, cmd.who);
  if (!who)
    return who.error();
  auto e = load_event(self, cmd.id);
  if (!e)
    return e.error();
  if (!may_write_events_of(*who, e->owner))
    return forbidden("only the owner or an administrator can delete "
                     "this event");
  if (auto err = check_version(cmd.expected_version, e->version))
    return err;
  auto org = st.org;
  if (org.event_count > 0)
    --org.event_count;
  storage::write_batch b;
  b.del(column::events, keys::event(st.id, e->id));
  b.del(column::event_index,
        keys::event_index(st.id, e->owner, e->start_ms, e->id));
  put_org(self, b, org);
  auto queued = queue_sync(self, b, *e, true);
  if (!queued)
    return queued.error();
  if (auto err = st.env->db->write(b))
    return err;
  st.org = org;
  if (*queued)
    sync_written(self, e->owner);
  return event_deleted{e->id, e->version};
}

caf::result<event_page> handle(self_ptr self, list_events& cmd) {
  auto& st = self->state;
  auto who = check_caller(self, cmd.who);
  if (!who)
    return who.error();
  auto owner = require_user(self, cmd.owner);
  if (!owner)
    return owner.error();
  if (!may_read_events_of(*who, cmd.owner))
    return forbidden("only the owner, an administrator or a user with "
                     "the View All Events permission can list this "
                     "user's events");
  std::string begin = keys::events_of_owner_from(st.id, cmd.owner, cmd.from_ms);
  if (!cmd.cursor.empty()) {
    uint64_t start = 0, id = 0;
    if (!decode_cursor(cmd.cursor, start, id))
      return invalid("cursor", "'cursor' is not a cursor from this "
                               "listing");
    auto after = keys::events_of_owner(st.id, cmd.owner);
    keys::put_be64(after, start);
    keys::put_be64(after, id);
    after += '\0';
    if (after > begin)
      begin = std::move(after);
  }
  auto end = keys::events_of_owner_from(st.id, cmd.owner, cmd.to_ms);
  event_page page;
  caf::error item_err;
  std::string last_key;
  auto scan_err = st.env->db->scan(column::event_index, begin, end,
                                   [&](std::string_view k, std::string_view) {
                                     auto entry = keys::parse_event_index(k);
                                     if (!entry) {
                                       item_err = corrupt("event index key");
                                       return false;
                                     }
                                     if (page.items.size() == cmd.limit) {
                                       auto& last = page.items.back();
                                       page.next_cursor = encode_cursor(
                                           last.start_ms, last.id);
                                       return false;
                                     }
                                     auto e = load_event(self, entry->event);
                                     if (!e) {
                                       item_err = e.error();
                                       return false;
                                     }
                                     if (!may_see_private_details(*who, *e))
                                       redact_private_event(*e);
                                     page.items.push_back(std::move(*e));
                                     return true;
                                   });
  if (scan_err)
    return scan_err;
  if (item_err)
    return item_err;
  return page;
}

caf::result<events_imported> handle(self_ptr self, import_events& cmd) {
  auto& st = self->state;
  auto who = check_caller(self, cmd.who);
  if (!who)
    return who.error();
  auto owner = require_user(self, cmd.owner, "owner");
  if (!owner)
    return owner.error();
  if (!may_write_events_of(*who, cmd.owner))
    return forbidden("only the owner or an administrator can import "
                     "events for this user");
  auto now = st.env->now_ms();
  auto org = st.org;
  storage::write_batch b;
  events_imported out;
  for (size_t i = 0; i < cmd.drafts.size(); ++i) {
    auto& e = cmd.drafts[i];
    if (auto err = check_times(e, "events[" + std::to_string(i) + "]."))
      return err;
    caf::error err;
    e.id = fresh_event_id(self, err);
    if (err)
      return err;
    e.org = st.id;
    e.owner = cmd.owner;
    e.origin = event_origin::imported;
    e.version = 1;
    e.created_ms = now;
    e.modified_ms = now;
    put_event(self, b, e);
    out.ids.push_back(e.id);
  }
  org.event_count += cmd.drafts.size();
  put_org(self, b, org);
  if (auto err = st.env->db->write(b))
    return err;
  st.org = org;
  return out;
}

caf::result<events_updated> handle(self_ptr self, mass_update& cmd) {
  auto who = check_caller(self, cmd.who);
  if (!who)
    return who.error();
  storage::write_batch b;
  events_updated out;
  std::unordered_map<event_id, size_t> seen;
  for (size_t i = 0; i < cmd.ids.size(); ++i) {
    std::string field = "ids[" + std::to_string(i) + "]";
    if (seen.count(cmd.ids[i]) != 0)
      return invalid(field, "event " + cmd.ids[i].str() + " is listed twice");
    seen.emplace(cmd.ids[i], i);
    auto before = load_event(self, cmd.ids[i]);
    if (!before) {
      if (before.error().category() == caf::atom("crm")
          && static_cast<crm_errc>(before.error().code())
                 == crm_errc::not_found)
        return make_crm_error(crm_errc::not_found, "not_found",
                              "event " + cmd.ids[i].str() + " not found",
                              field);
      return before.error();
    }
    if (!may_write_events_of(*who, before->owner))
      return forbidden("event " + cmd.ids[i].str()
                       + " belongs to another user");
    auto after = *before;
    if (auto err
        = revise(self, after, cmd.patch, event_origin::mass_update, "set."))
      return err;
    put_revision(self, b, *before, after);
    auto queued = queue_sync(self, b, after, false);
    if (!queued)
      return queued.error();
    out.items.push_back(std::move(after));
  }
  if (auto err = self->state.env->db->write(b))
    return err;
  std::set<user_id> owners;
  for (auto& e : out.items)
    owners.insert(e.owner);
  for (auto u : owners)
    sync_written(self, u);
  return out;
}

} // namespace crmsync::actors::tenant_impl
