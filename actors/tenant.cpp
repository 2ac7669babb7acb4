// The tenant actor: one CRM organization, its users and their events.
//
// Single writer of its tenant's keys in the orgs, users, events and
// event_index families. Every command validates, builds one WriteBatch with
// all of its effects (record, index entries, counters) and writes it before
// answering, so an acknowledged change is durable and a crash never leaves
// half of one. Users are cached after first use; events are read on demand.
#include "actors/entities.hpp"

#include <algorithm>
#include <optional>
#include <set>
#include <unordered_map>

#include <caf/actor_system.hpp>
#include <caf/send.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>

#include "common/crypto.hpp"
#include "common/log.hpp"
#include "common/time_format.hpp"
#include "protocol/permissions.hpp"
#include "storage/codec.hpp"
#include "storage/keys.hpp"
#include "storage/sync_links.hpp"

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
  /// Whether each user asked for calendar sync (this actor writes the
  /// requests, so the cache never goes stale).
  std::unordered_map<user_id, bool> sync_on;
  uint64_t last_sync_seq = 0;
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
  if (*u == nullptr || !(*u)->has_token_hash(who.token_hash))
    return unauthorized;
  return *u;
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

// -- calendar sync
// -------------------------------------------------------------

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

void sync_written(self_ptr self, user_id u) {
  if (self->state.env->sync_wanted)
    self->state.env->sync_wanted(self->state.id, u);
}

// -- Office 365
// ----------------------------------------------------------------

constexpr size_t max_signin_tokens = 5;

std::string actor_name(const user_record* u) {
  return u == nullptr ? std::string{"service-admin"}
                      : "user:" + u->id.str() + " (" + u->email + ")";
}

std::string actor_name(const o365_identity& who) {
  return "office365:" + who.email;
}

void put_audit(self_ptr self, storage::write_batch& b, std::string actor,
               std::string action, std::string detail) {
  auto& st = self->state;
  audit_entry a;
  a.org = st.id;
  a.at_ms = st.env->now_ms();
  a.seq = st.env->random_id();
  a.actor = std::move(actor);
  a.action = std::move(action);
  a.detail = std::move(detail);
  b.put(column::audit, keys::audit(a.org, a.at_ms, a.seq), codec::encode(a));
}

void put_mail(self_ptr self, storage::write_batch& b, std::string sender,
              std::string to, std::string subject, std::string html) {
  auto& st = self->state;
  mail_item m;
  m.id = st.env->random_id();
  m.org = st.id;
  m.o365_tenant = st.org.o365_tenant;
  m.sender = std::move(sender);
  m.to = std::move(to);
  m.subject = std::move(subject);
  m.html = std::move(html);
  m.created_ms = st.env->now_ms();
  b.put(column::outbox, keys::tenant_item(st.id, m.id), codec::encode(m));
}

/// Records a refused request in the audit log, then answers the refusal
/// (a failed audit write does not change the answer).
caf::error refused(self_ptr self, std::string actor, std::string action,
                   std::string detail, caf::error answer) {
  storage::write_batch b;
  put_audit(self, b, std::move(actor), std::move(action), std::move(detail));
  if (auto err = self->state.env->db->write(b))
    log::warn("tenant: cannot audit a refusal");
  return answer;
}

/// Wakes the mailer once a write with queued e-mail is durable.
void mail_written(self_ptr self) {
  if (self->state.env->mail_queued)
    self->state.env->mail_queued();
}

storage::claim o365_user_claim(const user_record& u) {
  return {column::lookup, keys::o365_user_lookup(u.o365_tenant, u.o365_user),
          keys::tenant_user_value(u.org, u.id)};
}

caf::error office365_error(crm_errc code, std::string api_code,
                           std::string message) {
  return make_crm_error(code, std::move(api_code), std::move(message));
}

/// Escapes text for an HTML e-mail body.
std::string html_text(std::string_view s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '&':
        out += "&amp;";
        break;
      case '"':
        out += "&quot;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

/// Every record of one tenant-scoped family, decoded.
template <class Record>
caf::error scan_records(self_ptr self, column cf, std::vector<Record>& out) {
  auto& st = self->state;
  auto begin = keys::org(st.id);
  caf::error decode_err;
  auto err = st.env->db->scan(cf, begin, keys::prefix_end(begin),
                              [&](std::string_view, std::string_view v) {
                                Record r;
                                if (!codec::decode(v, r)) {
                                  decode_err = corrupt(column_name(cf));
                                  return false;
                                }
                                out.push_back(std::move(r));
                                return true;
                              });
  return err ? err : decode_err;
}

/// A tenant-scoped family listed for a user who manages users, oldest
/// first.
template <class Record>
caf::expected<std::vector<Record>>
managed_list(self_ptr self, const caller& who, column cf, const char* refusal) {
  auto w = check_caller(self, who);
  if (!w)
    return w.error();
  if (!can_manage_users(*w))
    return office365_error(crm_errc::forbidden, "manage_users_required",
                           refusal);
  std::vector<Record> items;
  if (auto err = scan_records(self, cf, items))
    return err;
  std::sort(items.begin(), items.end(), [](const Record& a, const Record& b) {
    return a.created_ms < b.created_ms;
  });
  return items;
}

template <class Record>
caf::expected<Record> load_item(self_ptr self, column cf, uint64_t id,
                                const char* what) {
  auto& st = self->state;
  std::string value;
  bool found = false;
  if (auto err
      = st.env->db->get(cf, keys::tenant_item(st.id, id), value, found))
    return err;
  if (!found)
    return not_found(what);
  Record r;
  if (!codec::decode(value, r))
    return corrupt(what);
  return r;
}

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

/// A new user of this organization who came through Office 365 (invite
/// accepted or join approved), linked to that person.
user_record make_o365_user(self_ptr self, const new_user& nu,
                           const std::string& o365_user, int64_t now) {
  auto u = make_user(self, nu, now);
  u.o365_tenant = self->state.org.o365_tenant;
  u.o365_user = o365_user;
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
        if (!cmd.who.service_admin) {
          leave_if_empty(self);
          return forbidden("creating organizations needs the service admin "
                           "token");
        }
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
        auto claims = user_claims(admin);
        if (!cmd.o365_tenant.empty()) {
          // Installed from Office 365 (R2, R3): the organization and its
          // super administrator are linked to the installing admin.
          org.o365_tenant = cmd.o365_tenant;
          admin.o365_tenant = cmd.o365_tenant;
          admin.o365_user = cmd.o365_user;
          admin.signin_token_hashes.push_back(admin.token_hash);
          claims.push_back({column::lookup,
                            keys::o365_tenant_lookup(org.o365_tenant),
                            keys::org(org.id)});
          claims.push_back(o365_user_claim(admin));
          put_audit(self, b, "office365:" + admin.email, "install",
                    "installed from Office 365 tenant " + org.o365_tenant
                        + "; created the organization with " + admin.email
                        + " as super administrator");
        }
        put_org(self, b, org);
        put_user(b, admin);
        for (auto& c : claims)
          b.put(c.cf, c.key, c.value);
        if (auto err = st.env->db->write_claimed(b, claims)) {
          // Nothing was written: the id stays free and this actor goes,
          // so failed creations cannot pile up live actors.
          leave_if_empty(self);
          return claim_error(err, admin, "admin.email");
        }
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
        if ((cmd.set_name || cmd.set_conflicts) && !is_admin(*who))
          return forbidden("renaming the organization or changing its "
                           "conflict policy needs an administrator");
        auto org = self->state.org;
        if (cmd.set_name)
          org.name = cmd.name;
        if (cmd.set_plan)
          org.plan = cmd.plan;
        if (cmd.set_conflicts)
          org.conflicts = cmd.conflicts;
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
        if (auto err = check_grant(*who, nullptr, rights_of(u))) {
          // The detail is read before `err` moves into the answer.
          auto detail = "tried to add " + u.email + " as " + to_string(u.role)
                        + (u.super_admin ? " (super administrator)" : "") + ": "
                        + to_api_error(err).message;
          return refused(self, actor_name(*who), "user.refused",
                         std::move(detail), std::move(err));
        }
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
        auto queued = queue_sync(self, b, e, false);
        if (!queued)
          return queued.error();
        if ((err = st.env->db->write(b)))
          return err;
        st.org = org;
        if (*queued)
          sync_written(self, e.owner);
        return e;
      },
      [=](get_event& cmd) -> caf::result<event_record> {
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
        auto queued = queue_sync(self, b, after, false);
        if (!queued)
          return queued.error();
        if (auto err = self->state.env->db->write(b))
          return err;
        if (*queued)
          sync_written(self, after.owner);
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
        auto queued = queue_sync(self, b, *e, true);
        if (!queued)
          return queued.error();
        if (auto err = st.env->db->write(b))
          return err;
        st.org = org;
        if (*queued)
          sync_written(self, e->owner);
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
        if (!may_read_events_of(*who, cmd.owner))
          return forbidden("only the owner, an administrator or a user with "
                           "the View All Events permission can list this "
                           "user's events");
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
      },
      [=](link_office365& cmd) -> caf::result<user_record> {
        auto& st = self->state;
        leave_if_empty(self);
        if (!st.exists)
          return not_found("organization");
        auto found = require_user(self, cmd.user);
        if (!found)
          return found.error();
        auto u = **found;
        if (!u.o365_user.empty()
            && (u.o365_user != cmd.who.user || u.o365_tenant != cmd.who.tenant))
          return office365_error(crm_errc::conflict, "office365_link_conflict",
                                 "this CRM account is already linked to "
                                 "another Office 365 user");
        auto org = st.org;
        std::vector<storage::claim> claims;
        storage::write_batch b;
        // An account found by the admin's e-mail rather than by a link the
        // person made themself (P2).
        bool by_email = cmd.action == "install_by_email";
        bool installing = cmd.action == "install" || by_email;
        if (installing) {
          // A sign-in never moves an organization to another tenant.
          if (!org.o365_tenant.empty() && org.o365_tenant != cmd.who.tenant)
            return refused(
                self, actor_name(cmd.who), "install.refused",
                "an administrator of Office 365 tenant " + cmd.who.tenant
                    + " tried to install into the account of " + u.email
                    + (by_email ? " (found by e-mail)" : "")
                    + "; this organization stays linked to Office 365 "
                      "tenant "
                    + org.o365_tenant,
                office365_error(crm_errc::conflict, "office365_link_conflict",
                                "this organization is linked to another "
                                "Office 365 tenant"));
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
        u.signin_token_hashes.push_back(cmd.token_hash);
        if (u.signin_token_hashes.size() > max_signin_tokens)
          u.signin_token_hashes.erase(u.signin_token_hashes.begin());
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
        else if (newly_linked)
          put_audit(self, b, actor_name(cmd.who), "account.associated",
                    "linked Office 365 user " + cmd.who.email
                        + " to the CRM account " + u.email);
        if (auto err = st.env->db->write_claimed(b, claims))
          return office365_error(crm_errc::conflict, "office365_link_conflict",
                                 "this Office 365 user or tenant is already "
                                 "linked to another CRM account");
        st.org = org;
        st.users[u.id] = u;
        return u;
      },
      [=](invite_users& cmd) -> caf::result<invite_list> {
        auto& st = self->state;
        auto who = check_caller(self, cmd.who);
        if (!who)
          return who.error();
        if (!can_manage_users(*who))
          return refused(self, actor_name(*who), "invite.refused",
                         "no Manage Users permission",
                         office365_error(crm_errc::forbidden,
                                         "manage_users_required",
                                         "inviting users needs the Manage "
                                         "Users permission"));
        if (st.org.plan != edition::paid)
          return refused(self, actor_name(*who), "invite.refused",
                         "the free edition cannot invite Office 365 users",
                         office365_error(crm_errc::forbidden,
                                         "edition_required",
                                         "inviting Office 365 users is "
                                         "available in paid editions only"));
        if (st.org.o365_tenant.empty())
          return office365_error(crm_errc::conflict, "office365_not_installed",
                                 "the organization is not linked to Office "
                                 "365; install the app first");
        // The invitation goes out from the inviter's mailbox, or from the
        // super administrator's when the inviter has none linked.
        std::string sender;
        if (*who != nullptr && !(*who)->o365_user.empty())
          sender = (*who)->o365_user;
        else if (auto admin = find_user(self, st.org.super_admin);
                 admin && *admin != nullptr)
          sender = (*admin)->o365_user;
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
                  keys::o365_user_lookup(st.org.o365_tenant, person.o365_user),
                  value, linked))
            return err;
          if (auto err = st.env->db->get(column::lookup,
                                         keys::email_lookup(person.email),
                                         value, by_email))
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
      },
      [=](list_invites& cmd) -> caf::result<invite_list> {
        auto items = managed_list<invite_record>(
            self, cmd.who, column::invites,
            "listing invitations needs the Manage Users permission");
        if (!items)
          return items.error();
        invite_list out;
        out.items = std::move(*items);
        return out;
      },
      [=](accept_invite& cmd) -> caf::result<invite_accepted> {
        auto& st = self->state;
        leave_if_empty(self);
        auto gone = office365_error(crm_errc::not_found, "invite_not_found",
                                    "no invitation has this link");
        if (!st.exists)
          return gone;
        std::vector<invite_record> all;
        if (auto err = scan_records(self, column::invites, all))
          return err;
        auto it
            = std::find_if(all.begin(), all.end(), [&](const invite_record& x) {
                return x.token_hash == cmd.token_hash;
              });
        if (it == all.end())
          return gone;
        auto inv = *it;
        if (cmd.who.tenant != st.org.o365_tenant
            || cmd.who.user != inv.o365_user)
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
                    "used an existing CRM account (user "
                        + cmd.associated_user.str() + ") instead of joining");
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
      },
      [=](request_join& cmd) -> caf::result<join_request_record> {
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
        b.put(column::joins, keys::tenant_item(st.id, jr.id),
              codec::encode(jr));
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
        auto link = cmd.public_url + "/api/v1/orgs/" + st.id.str()
                    + "/join-requests/" + to_hex16(jr.id) + "/approve";
        size_t approvers = 0;
        for (auto& u : users) {
          if (!(u.manage_users || u.super_admin))
            continue;
          ++approvers;
          put_mail(self, b, sender, u.email,
                   cmd.who.name + " asks to join " + st.org.name + "'s CRM",
                   "<p>" + html_text(cmd.who.name) + " ("
                       + html_text(cmd.who.email)
                       + ") uses Office 365 in your organization and asks "
                         "to join the CRM.</p><p>Open Users in the CRM and "
                         "choose <b>Approve &amp; Add</b>: "
                       + html_text(link) + "</p>");
        }
        put_audit(self, b, actor_name(cmd.who), "join.requested",
                  cmd.who.email + " asked to join; e-mailed "
                      + std::to_string(approvers) + " approver(s)");
        if (auto err = st.env->db->write(b))
          return err;
        mail_written(self);
        return jr;
      },
      [=](get_join_request& cmd) -> caf::result<join_request_record> {
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
      },
      [=](list_join_requests& cmd) -> caf::result<join_request_list> {
        auto items = managed_list<join_request_record>(
            self, cmd.who, column::joins,
            "join requests are for users with the Manage Users permission");
        if (!items)
          return items.error();
        join_request_list out;
        out.items = std::move(*items);
        return out;
      },
      [=](approve_join& cmd) -> caf::result<join_approved> {
        auto& st = self->state;
        auto who = check_caller(self, cmd.who);
        if (!who)
          return who.error();
        if (!can_manage_users(*who))
          return refused(
              self, actor_name(*who), "join.refused",
              "tried to approve join request " + to_hex16(cmd.request)
                  + " without the Manage Users permission",
              office365_error(crm_errc::forbidden, "manage_users_required",
                              "only a user with the Manage Users "
                              "permission can approve"));
        auto jr = load_item<join_request_record>(self, column::joins,
                                                 cmd.request, "join request");
        if (!jr)
          return jr.error();
        join_approved out;
        if (jr->status == join_status::approved) {
          // Approving twice is harmless: the same user comes back.
          auto member = require_user(self, jr->member);
          if (!member)
            return member.error();
          out.request = *jr;
          out.member = **member;
          return out;
        }
        auto now = st.env->now_ms();
        // The new user is the person who asked, as Office 365 named them.
        auto nu = cmd.member;
        nu.email = jr->email;
        nu.name = jr->name;
        auto u = make_o365_user(self, nu, jr->o365_user, now);
        jr->status = join_status::approved;
        jr->approved_by = *who == nullptr ? user_id{} : (*who)->id;
        jr->member = u.id;
        jr->resolved_ms = now;
        storage::write_batch b;
        b.put(column::joins, keys::tenant_item(st.id, jr->id),
              codec::encode(*jr));
        put_audit(self, b, actor_name(*who), "join.approved",
                  "approved " + jr->email + " and added them as a user");
        if (auto err = add_o365_user(self, b, u))
          return err;
        out.request = *jr;
        out.member = u;
        return out;
      },
      [=](list_audit& cmd) -> caf::result<audit_list> {
        auto& st = self->state;
        auto who = check_caller(self, cmd.who);
        if (!who)
          return who.error();
        if (!is_admin(*who) && !can_manage_users(*who))
          return forbidden("the audit log is for administrators");
        audit_list out;
        if (auto err = scan_records(self, column::audit, out.items))
          return err;
        // Newest first, at most `limit`.
        std::reverse(out.items.begin(), out.items.end());
        if (out.items.size() > cmd.limit)
          out.items.resize(cmd.limit);
        (void)st;
        return out;
      },
      [=](set_calendar_sync& cmd) -> caf::result<calendar_status> {
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
        sync_request req;
        req.enabled = cmd.enabled;
        req.at_ms = st.env->now_ms();
        storage::write_batch b;
        b.put(column::sync, keys::sync_request_key(st.id, cmd.user),
              codec::encode(req));
        put_audit(self, b, actor_name(*who),
                  cmd.enabled ? "sync.enabled" : "sync.disabled",
                  "calendar sync of " + (*target)->email);
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
      },
      [=](apply_office365& cmd) -> caf::result<event_record> {
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
          if (cmd.expected_version != 0
              && before->version != cmd.expected_version)
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
      },
      [=](audit_note& note) -> caf::result<bool> {
        leave_if_empty(self);
        if (!self->state.exists)
          return not_found("organization");
        storage::write_batch b;
        put_audit(self, b, std::move(note.actor), std::move(note.action),
                  std::move(note.detail));
        if (auto err = self->state.env->db->write(b))
          return err;
        return true;
      },
      [=](tenant_summary_request&) -> caf::result<org_record> {
        leave_if_empty(self);
        if (!self->state.exists)
          return not_found("organization");
        return self->state.org;
      },
      [=](stats_atom) -> uint64_t {
        // Asked from inside the actor: the queue behind this message.
        return self->mailbox().size();
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
