// The tenant actor: one CRM organization, its users and their events.
//
// Single writer of its tenant's keys in the orgs, users, events and
// event_index families. Every command validates, builds one WriteBatch with
// all of its effects (record, index entries, counters) and writes it before
// answering, so an acknowledged change is durable and a crash never leaves
// half of one. Users are cached after first use; events are read on demand.
#include "actors/entities.hpp"

#include <unordered_map>

#include <caf/actor_system.hpp>
#include <caf/send.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>

#include "common/crypto.hpp"
#include "common/log.hpp"
#include "storage/codec.hpp"
#include "storage/keys.hpp"

namespace crmsync::actors {

struct tenant_state {
  static inline const char* name = "tenant";
  tenant_id id;
  std::shared_ptr<const actor_env> env;
  caf::actor directory;
  bool exists = false;
  bool asked_to_go = false;
  org_record org;
  std::unordered_map<user_id, user_record> users;
};

namespace {

namespace keys = storage::keys;
namespace codec = storage::codec;
using storage::column;
using self_ptr = tenant_actor::stateful_pointer<tenant_state>;

constexpr int64_t ms_per_day = 86'400'000;

caf::error not_found(std::string what) {
  return make_crm_error(crm_errc::not_found, "not_found", what + " not found");
}

caf::error forbidden(std::string message) {
  return make_crm_error(crm_errc::forbidden, "forbidden", std::move(message));
}

caf::error invalid(std::string field, std::string message) {
  return make_crm_error(crm_errc::invalid_input, "invalid_field",
                        std::move(message), std::move(field));
}

caf::error corrupt(const std::string& what) {
  log::error("tenant: corrupt record: " + what);
  return make_crm_error(crm_errc::storage_failure, "storage_failure",
                        "a stored record could not be read");
}

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
                                               std::string field = {}) {
  auto u = find_user(self, id);
  if (u && *u == nullptr)
    return make_crm_error(
        crm_errc::not_found, "not_found",
        field.empty() ? "user not found" : field + " not found", field);
  return u;
}

/// 409 when the client's expected version (0: none) is not the stored one.
caf::error check_version(uint64_t expected, uint64_t actual) {
  if (expected == 0 || expected == actual)
    return caf::none;
  return make_crm_error(crm_errc::conflict, "stale_version",
                        "the event is at version " + std::to_string(actual)
                            + ", not " + std::to_string(expected),
                        "version");
}

/// The authenticated principal: nullptr for the service admin, else the
/// user whose token was presented.
/// A tenant without an organization only answers "no such thing"; it asks
/// the directory to passivate it (once) so that probing random ids cannot
/// pile up live actors. The directory's buffering still applies.
void leave_if_empty(self_ptr self) {
  auto& st = self->state;
  if (st.exists || st.asked_to_go || !st.directory)
    return;
  st.asked_to_go = true;
  // Anonymous: the directory's answer is of no use here.
  caf::anon_send(st.directory, atom::passivate_atom_v,
                 entity_key{entity_kind::tenant, st.id, user_id{}});
}

caf::expected<const user_record*> check_caller(self_ptr self,
                                               const caller& who) {
  leave_if_empty(self);
  if (who.service_admin) {
    if (!self->state.exists)
      return not_found("organization");
    return static_cast<const user_record*>(nullptr);
  }
  auto unauthorized = make_crm_error(crm_errc::unauthorized, "unauthorized",
                                     "the API token is not valid");
  if (!self->state.exists)
    return unauthorized;
  auto u = find_user(self, who.user);
  if (!u)
    return u.error();
  if (*u == nullptr || !crypto::equal_secret((*u)->token_hash, who.token_hash))
    return unauthorized;
  return *u;
}

bool is_admin(const user_record* u) {
  return u == nullptr || u->super_admin || u->role == profile::administrator;
}

bool can_manage_users(const user_record* u) {
  return u == nullptr || u->super_admin || u->manage_users;
}

/// Owners manage their own events; administrators anyone's.
bool may_write_events_of(const user_record* who, user_id owner) {
  return is_admin(who) || who->id == owner;
}

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

void put_org(self_ptr self, storage::write_batch& b, const org_record& o) {
  b.put(column::orgs, keys::org(o.id), codec::encode(o));
}

user_record make_user(self_ptr self, const new_user& nu, int64_t now) {
  user_record u;
  u.id = nu.id;
  u.org = self->state.id;
  u.email = nu.email;
  u.name = nu.name;
  u.role = nu.role;
  u.manage_users = nu.manage_users;
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
    return make_crm_error(crm_errc::conflict, "id_collision",
                          "generated id already in use; retry");
  }
  return err;
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

/// Writes a revised event: record, index move if its start changed.
void put_revision(self_ptr self, storage::write_batch& b,
                  const event_record& before, const event_record& after) {
  if (before.start_ms != after.start_ms)
    b.del(column::event_index, keys::event_index(before.org, before.owner,
                                                 before.start_ms, before.id));
  put_event(self, b, after);
}

void load(self_ptr self) {
  auto& st = self->state;
  std::string value;
  bool found = false;
  if (auto err
      = st.env->db->get(column::orgs, keys::org(st.id), value, found)) {
    // Without its record the tenant cannot serve; stop and let the
    // directory reactivate it on the next message.
    log::error("tenant " + st.id.str()
               + ": cannot load: " + self->system().render(err));
    self->quit(err);
    return;
  }
  if (found) {
    if (!codec::decode(value, st.org)) {
      log::error("tenant " + st.id.str() + ": corrupt organization record");
      self->quit(make_crm_error(crm_errc::storage_failure, "storage_failure",
                                "corrupt organization record"));
      return;
    }
    st.exists = true;
  }
}

} // namespace

tenant_actor::behavior_type
tenant(tenant_actor::stateful_pointer<tenant_state> self, tenant_id id,
       std::shared_ptr<const actor_env> env, caf::actor directory) {
  self->state.id = id;
  self->state.env = std::move(env);
  self->state.directory = std::move(directory);
  load(self);
  using namespace crmsync::atom;
  return {
      [=](create_org& cmd) -> caf::result<org_created> {
        auto& st = self->state;
        if (!cmd.who.service_admin)
          return forbidden("creating organizations needs the service admin "
                           "token");
        if (st.exists)
          return make_crm_error(crm_errc::conflict, "id_collision",
                                "generated id already in use; retry");
        auto now = st.env->now_ms();
        org_record org;
        org.id = st.id;
        org.name = cmd.name;
        org.plan = cmd.plan;
        org.super_admin = cmd.admin.id;
        org.user_count = 1;
        org.created_ms = now;
        org.modified_ms = now;
        auto admin = make_user(self, cmd.admin, now);
        admin.role = profile::administrator;
        admin.manage_users = true;
        admin.super_admin = true;
        storage::write_batch b;
        put_org(self, b, org);
        put_user(b, admin);
        if (auto err = st.env->db->write_claimed(b, user_claims(admin)))
          return claim_error(err, admin, "admin.email");
        st.org = org;
        st.exists = true;
        st.users[admin.id] = admin;
        return org_created{org, admin};
      },
      [=](get_org& cmd) -> caf::result<org_record> {
        auto who = check_caller(self, cmd.who);
        if (!who)
          return who.error();
        return self->state.org;
      },
      [=](update_org& cmd) -> caf::result<org_record> {
        auto who = check_caller(self, cmd.who);
        if (!who)
          return who.error();
        if (cmd.set_plan && *who != nullptr)
          return forbidden(
              "changing the edition needs the service admin token");
        if (cmd.set_name && !is_admin(*who))
          return forbidden("renaming the organization needs an administrator");
        auto org = self->state.org;
        if (cmd.set_name)
          org.name = cmd.name;
        if (cmd.set_plan)
          org.plan = cmd.plan;
        org.modified_ms = self->state.env->now_ms();
        storage::write_batch b;
        put_org(self, b, org);
        if (auto err = self->state.env->db->write(b))
          return err;
        self->state.org = org;
        return org;
      },
      [=](create_user& cmd) -> caf::result<user_record> {
        auto& st = self->state;
        auto who = check_caller(self, cmd.who);
        if (!who)
          return who.error();
        if (!can_manage_users(*who))
          return forbidden("adding users needs the Manage Users permission");
        auto now = st.env->now_ms();
        auto u = make_user(self, cmd.user, now);
        auto org = st.org;
        ++org.user_count;
        org.modified_ms = now;
        storage::write_batch b;
        put_user(b, u);
        put_org(self, b, org);
        if (auto err = st.env->db->write_claimed(b, user_claims(u)))
          return claim_error(err, u, "email");
        st.org = org;
        st.users[u.id] = u;
        return u;
      },
      [=](get_user& cmd) -> caf::result<user_record> {
        auto who = check_caller(self, cmd.who);
        if (!who)
          return who.error();
        auto u = require_user(self, cmd.id);
        if (!u)
          return u.error();
        return **u;
      },
      [=](authenticate& cmd) -> caf::result<user_record> {
        auto who = check_caller(self, cmd.who);
        if (!who)
          return who.error();
        if (*who == nullptr)
          return make_crm_error(crm_errc::invalid_input, "invalid_input",
                                "the service admin has no user record");
        return **who;
      },
      [=](list_users& cmd) -> caf::result<user_page> {
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
        auto scan_err
            = st.env->db->scan(column::users, begin, end,
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
      },
      [=](create_event& cmd) -> caf::result<event_record> {
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
        if ((err = st.env->db->write(b)))
          return err;
        st.org = org;
        return e;
      },
      [=](get_event& cmd) -> caf::result<event_record> {
        auto who = check_caller(self, cmd.who);
        if (!who)
          return who.error();
        auto e = load_event(self, cmd.id);
        if (!e)
          return e.error();
        return std::move(*e);
      },
      [=](update_event& cmd) -> caf::result<event_record> {
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
        if (auto err
            = revise(self, after, cmd.patch, event_origin::individual, ""))
          return err;
        storage::write_batch b;
        put_revision(self, b, *before, after);
        if (auto err = self->state.env->db->write(b))
          return err;
        return after;
      },
      [=](delete_event& cmd) -> caf::result<event_deleted> {
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
        if (auto err = st.env->db->write(b))
          return err;
        st.org = org;
        return event_deleted{e->id, e->version};
      },
      [=](list_events& cmd) -> caf::result<event_page> {
        auto& st = self->state;
        auto who = check_caller(self, cmd.who);
        if (!who)
          return who.error();
        auto owner = require_user(self, cmd.owner);
        if (!owner)
          return owner.error();
        std::string begin
            = keys::events_of_owner_from(st.id, cmd.owner, cmd.from_ms);
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
        auto scan_err
            = st.env->db->scan(column::event_index, begin, end,
                               [&](std::string_view k, std::string_view) {
                                 auto entry = keys::parse_event_index(k);
                                 if (!entry) {
                                   item_err = corrupt("event index key");
                                   return false;
                                 }
                                 if (page.items.size() == cmd.limit) {
                                   auto& last = page.items.back();
                                   page.next_cursor
                                       = encode_cursor(last.start_ms, last.id);
                                   return false;
                                 }
                                 auto e = load_event(self, entry->event);
                                 if (!e) {
                                   item_err = e.error();
                                   return false;
                                 }
                                 page.items.push_back(std::move(*e));
                                 return true;
                               });
        if (scan_err)
          return scan_err;
        if (item_err)
          return item_err;
        return page;
      },
      [=](import_events& cmd) -> caf::result<events_imported> {
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
      },
      [=](mass_update& cmd) -> caf::result<events_updated> {
        auto who = check_caller(self, cmd.who);
        if (!who)
          return who.error();
        storage::write_batch b;
        events_updated out;
        std::unordered_map<event_id, size_t> seen;
        for (size_t i = 0; i < cmd.ids.size(); ++i) {
          std::string field = "ids[" + std::to_string(i) + "]";
          if (seen.count(cmd.ids[i]) != 0)
            return invalid(field,
                           "event " + cmd.ids[i].str() + " is listed twice");
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
          if (auto err = revise(self, after, cmd.patch,
                                event_origin::mass_update, "set."))
            return err;
          put_revision(self, b, *before, after);
          out.items.push_back(std::move(after));
        }
        if (auto err = self->state.env->db->write(b))
          return err;
        return out;
      },
      [=](tenant_summary_request&) -> caf::result<org_record> {
        leave_if_empty(self);
        if (!self->state.exists)
          return not_found("organization");
        return self->state.org;
      },
      [=](passivate_atom) -> bool {
        self->quit();
        return true;
      },
  };
}

tenant_actor spawn_tenant(caf::actor_system& sys, tenant_id id,
                          std::shared_ptr<const actor_env> env,
                          caf::actor directory) {
  return sys.spawn(tenant, id, std::move(env), std::move(directory));
}

} // namespace crmsync::actors
