// Commands, replies and routing values exchanged between actors.
//
// Every type here is a plain value with inspect(), registered once in
// protocol/type_ids.hpp, so that it can later cross nodes. Commands are
// nouns; each carries the `caller` whose rights the receiver checks.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <caf/meta/type_name.hpp>

#include "common/log.hpp"
#include "protocol/ids.hpp"
#include "protocol/records.hpp"

namespace crmsync {

// -- routing ------------------------------------------------------------------

enum class entity_kind : uint8_t { tenant = 0, mailbox = 1, calendar = 2 };

constexpr size_t entity_kind_count = 3;

const char* to_string(entity_kind k);

/// Addresses one virtual actor: its kind, its tenant and (for mailbox and
/// calendar) its user.
struct entity_key {
  entity_kind kind = entity_kind::tenant;
  tenant_id tenant;
  user_id user;

  friend bool operator==(const entity_key& a, const entity_key& b) {
    return a.kind == b.kind && a.tenant == b.tenant && a.user == b.user;
  }
  friend bool operator<(const entity_key& a, const entity_key& b) {
    if (a.kind != b.kind)
      return a.kind < b.kind;
    if (a.tenant != b.tenant)
      return a.tenant < b.tenant;
    return a.user < b.user;
  }
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, entity_key& x) {
  return f(caf::meta::type_name("crmsync::entity_key"), x.kind, x.tenant,
           x.user);
}

// -- who is asking ------------------------------------------------------------

/// The authenticated principal behind a command. The HTTP layer checks the
/// service admin token itself; a user's token is checked by the tenant actor
/// against the stored hash.
struct caller {
  bool service_admin = false;
  user_id user;
  std::string token_hash;
  /// The HTTP request the command comes from (its X-Request-Id), for the
  /// receiver's log lines and audit entries. A caller is made on the
  /// thread that serves the request, whose log context holds the id
  /// (api's dispatch), so every caller carries it without being told.
  std::string request_id = log::current().request_id;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, caller& x) {
  return f(caf::meta::type_name("crmsync::caller"), x.service_admin, x.user,
           x.token_hash, x.request_id);
}

// -- organizations and users -------------------------------------------------

struct new_user {
  user_id id; ///< chosen by the sender (random), checked for collisions
  std::string email;
  std::string name;
  profile role = profile::standard;
  bool manage_users = false;
  bool view_all_events = false;
  bool super_admin = false; ///< another super administrator (needs one)
  std::string password_hash;
  std::string token_hash;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, new_user& x) {
  return f(caf::meta::type_name("crmsync::new_user"), x.id, x.email, x.name,
           x.role, x.manage_users, x.view_all_events, x.super_admin,
           x.password_hash, x.token_hash);
}

struct create_org {
  caller who;
  std::string name;
  edition plan = edition::free;
  new_user admin;
  /// Set when an Office 365 install creates the organization (R2): the
  /// installing admin's tenant and object id, linked to org and admin.
  std::string o365_tenant;
  std::string o365_user;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, create_org& x) {
  return f(caf::meta::type_name("crmsync::create_org"), x.who, x.name, x.plan,
           x.admin, x.o365_tenant, x.o365_user);
}

struct org_created {
  org_record org;
  user_record admin;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, org_created& x) {
  return f(caf::meta::type_name("crmsync::org_created"), x.org, x.admin);
}

struct get_org {
  caller who;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, get_org& x) {
  return f(caf::meta::type_name("crmsync::get_org"), x.who);
}

struct update_org {
  caller who;
  bool set_name = false;
  std::string name;
  bool set_plan = false;
  edition plan = edition::free;
  bool set_conflicts = false;
  conflict_policy conflicts = conflict_policy::latest;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, update_org& x) {
  return f(caf::meta::type_name("crmsync::update_org"), x.who, x.set_name,
           x.name, x.set_plan, x.plan, x.set_conflicts, x.conflicts);
}

struct create_user {
  caller who;
  new_user user;
  /// A user without a password (and no Office 365 link) is e-mailed a
  /// link {public_url}/password-setup/{token} to set one: the token's
  /// hash and expiry (set by the API; empty for a user with a password).
  std::string setup_token_hash;
  int64_t setup_expires_ms = 0;
  std::string public_url;
  std::string setup_token; ///< for the e-mail only; never stored
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, create_user& x) {
  return f(caf::meta::type_name("crmsync::create_user"), x.who, x.user,
           x.setup_token_hash, x.setup_expires_ms, x.public_url, x.setup_token);
}

struct get_user {
  caller who;
  user_id id;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, get_user& x) {
  return f(caf::meta::type_name("crmsync::get_user"), x.who, x.id);
}

/// The changes of a user: each `set_x` says whether `x` changes. Rights are
/// granted only by who holds them (check_grant); `active` deactivates or
/// reactivates the user.
struct user_patch {
  bool set_name = false;
  std::string name;
  bool set_role = false;
  profile role = profile::standard;
  bool set_manage_users = false;
  bool manage_users = false;
  bool set_view_all_events = false;
  bool view_all_events = false;
  bool set_super_admin = false;
  bool super_admin = false;
  bool set_active = false;
  bool active = true;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, user_patch& x) {
  return f(caf::meta::type_name("crmsync::user_patch"), x.set_name, x.name,
           x.set_role, x.role, x.set_manage_users, x.manage_users,
           x.set_view_all_events, x.view_all_events, x.set_super_admin,
           x.super_admin, x.set_active, x.active);
}

struct update_user {
  caller who;
  user_id id;
  user_patch patch;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, update_user& x) {
  return f(caf::meta::type_name("crmsync::update_user"), x.who, x.id, x.patch);
}

/// Checks the caller's credentials; answers with the caller's own record.
struct authenticate {
  caller who;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, authenticate& x) {
  return f(caf::meta::type_name("crmsync::authenticate"), x.who);
}

struct list_users {
  caller who;
  uint32_t limit = 100;
  user_id after; ///< exclusive; 0 = from the start
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, list_users& x) {
  return f(caf::meta::type_name("crmsync::list_users"), x.who, x.limit,
           x.after);
}

struct user_page {
  std::vector<user_record> items;
  user_id next; ///< 0 = no more
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, user_page& x) {
  return f(caf::meta::type_name("crmsync::user_page"), x.items, x.next);
}

// -- events -------------------------------------------------------------------

struct create_event {
  caller who;
  event_record draft; ///< owner and content; ids and times are assigned
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, create_event& x) {
  return f(caf::meta::type_name("crmsync::create_event"), x.who, x.draft);
}

struct get_event {
  caller who;
  event_id id;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, get_event& x) {
  return f(caf::meta::type_name("crmsync::get_event"), x.who, x.id);
}

struct update_event {
  caller who;
  event_id id;
  event_patch patch;
  uint64_t expected_version = 0; ///< 0 = no version check
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, update_event& x) {
  return f(caf::meta::type_name("crmsync::update_event"), x.who, x.id, x.patch,
           x.expected_version);
}

struct delete_event {
  caller who;
  event_id id;
  uint64_t expected_version = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, delete_event& x) {
  return f(caf::meta::type_name("crmsync::delete_event"), x.who, x.id,
           x.expected_version);
}

struct event_deleted {
  event_id id;
  uint64_t version = 0; ///< the version that was deleted
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, event_deleted& x) {
  return f(caf::meta::type_name("crmsync::event_deleted"), x.id, x.version);
}

/// The owner's events with from <= start < to, by start then id.
struct list_events {
  caller who;
  user_id owner;
  int64_t from_ms = 0;
  int64_t to_ms = 0;
  uint32_t limit = 100;
  std::string cursor; ///< opaque, from a previous page; "" = first page
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, list_events& x) {
  return f(caf::meta::type_name("crmsync::list_events"), x.who, x.owner,
           x.from_ms, x.to_ms, x.limit, x.cursor);
}

struct event_page {
  std::vector<event_record> items;
  std::string next_cursor; ///< "" = no more
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, event_page& x) {
  return f(caf::meta::type_name("crmsync::event_page"), x.items, x.next_cursor);
}

struct import_events {
  caller who;
  user_id owner;
  std::vector<event_record> drafts;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, import_events& x) {
  return f(caf::meta::type_name("crmsync::import_events"), x.who, x.owner,
           x.drafts);
}

struct events_imported {
  std::vector<event_id> ids;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, events_imported& x) {
  return f(caf::meta::type_name("crmsync::events_imported"), x.ids);
}

struct mass_update {
  caller who;
  std::vector<event_id> ids;
  event_patch patch;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, mass_update& x) {
  return f(caf::meta::type_name("crmsync::mass_update"), x.who, x.ids, x.patch);
}

struct events_updated {
  std::vector<event_record> items;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, events_updated& x) {
  return f(caf::meta::type_name("crmsync::events_updated"), x.items);
}

// -- mailbox and calendar
// ------------------------------------------------------

/// Asks a mailbox or calendar actor for its state summary.
struct status_request {
  caller who;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, status_request& x) {
  return f(caf::meta::type_name("crmsync::status_request"), x.who);
}

struct mailbox_status {
  tenant_id org;
  user_id user;
  bool office365_linked = false;
  std::string office365_user_id;
  std::string office365_tenant_id;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, mailbox_status& x) {
  return f(caf::meta::type_name("crmsync::mailbox_status"), x.org, x.user,
           x.office365_linked, x.office365_user_id, x.office365_tenant_id);
}

/// A CRM event Office 365 refuses for good (400, 413, 422 on the event
/// itself): not synced until the CRM event changes; shown per user.
struct skipped_event {
  event_id event;
  uint64_t version = 0; ///< the CRM version that was refused
  int64_t at_ms = 0;
  int64_t status = 0; ///< Graph's HTTP status
  std::string code;   ///< Graph's error code
  std::string message;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, skipped_event& x) {
  return f(caf::meta::type_name("crmsync::skipped_event"), x.event, x.version,
           x.at_ms, x.status, x.code, x.message);
}

/// The last Graph call of a user's sync that failed, with the ids
/// Microsoft asks for when it is reported (graph/client.hpp's error).
struct graph_failure {
  int64_t at_ms = 0; ///< 0: no call has failed
  int64_t status = 0;
  std::string code;
  std::string client_request_id;
  std::string request_id;
  std::string date; ///< Graph's Date answer header
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, graph_failure& x) {
  return f(caf::meta::type_name("crmsync::graph_failure"), x.at_ms, x.status,
           x.code, x.client_request_id, x.request_id, x.date);
}

/// Where a user's calendar sync stands. Stored and shown by name
/// (to_string), so the names never change.
enum class calendar_state : uint8_t {
  disabled,     ///< off (or never on)
  enabling,     ///< asked for: the product's calendar is being made
  initial_sync, ///< the calendar exists: CRM events go out (R16-R18)
  active,       ///< both ways, on notifications and reconciliation
  held,         ///< the mass-delete guard waits for an administrator
  disabling,    ///< turned off: the calendar and subscription go
  error,        ///< a failure before it was ever on (see last_error)
};

/// "disabled", "enabling", "initial_sync", "active", "held", "disabling",
/// "error".
const char* to_string(calendar_state x);
/// False for a name not listed above.
bool from_string(std::string_view s, calendar_state& x);

struct calendar_status {
  tenant_id org;
  user_id user;
  calendar_state state = calendar_state::disabled;
  uint64_t done = 0;
  uint64_t total = 0;
  std::string office365_calendar_id;
  std::string last_error;
  // What the sync engine keeps (written by it only).
  std::string delta_link;      ///< newest calendarView/delta link, or ""
  std::string subscription_id; ///< Graph subscription on the calendar
  int64_t subscription_expires_ms = 0;
  std::string client_state; ///< the subscription's shared secret
  int64_t last_sync_ms = 0; ///< end of the last successful delta run
  uint64_t out_created = 0; ///< CRM -> Office 365
  uint64_t out_updated = 0;
  uint64_t out_deleted = 0;
  uint64_t in_created = 0; ///< Office 365 -> CRM
  uint64_t in_updated = 0;
  uint64_t in_deleted = 0;
  int64_t deletes_window_ms = 0;  ///< mass-delete guard: window start
  uint64_t deletes_in_window = 0; ///< deletions applied in that window
  uint64_t outbox = 0;            ///< pending CRM changes (when read)
  uint64_t inbox = 0;             ///< pending notifications (when read)
  /// Events Office 365 refuses for good, oldest first (bounded).
  std::vector<skipped_event> skipped;
  /// While Graph blocks the user (state "error"): the state the sync goes
  /// back to once a run gets through, and the open alert's reason.
  std::string resume_state;
  std::string alert;
  /// The last failed Graph call and its ids (kept after recovery).
  graph_failure last_failure;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, calendar_status& x) {
  return f(caf::meta::type_name("crmsync::calendar_status"), x.org, x.user,
           x.state, x.done, x.total, x.office365_calendar_id, x.last_error,
           x.delta_link, x.subscription_id, x.subscription_expires_ms,
           x.client_state, x.last_sync_ms, x.out_created, x.out_updated,
           x.out_deleted, x.in_created, x.in_updated, x.in_deleted,
           x.deletes_window_ms, x.deletes_in_window, x.outbox, x.inbox,
           x.skipped, x.resume_state, x.alert, x.last_failure);
}

// -- administration
// -------------------------------------------------------------

/// Asks a tenant actor for its organization without a caller (admin API).
struct tenant_summary_request {};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, tenant_summary_request&) {
  return f(caf::meta::type_name("crmsync::tenant_summary_request"));
}

struct kind_stats {
  entity_kind kind = entity_kind::tenant;
  uint64_t live = 0;
  uint64_t activations = 0;
  uint64_t passivations = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, kind_stats& x) {
  return f(caf::meta::type_name("crmsync::kind_stats"), x.kind, x.live,
           x.activations, x.passivations);
}

struct live_actor {
  entity_key key;
  int64_t idle_ms = 0;
  uint64_t messages = 0;
  bool stopping = false;
  int64_t active_ms = 0;       ///< since its activation
  int64_t passivate_in_ms = 0; ///< until the idle sweep may passivate it
  /// Messages waiting in its mailbox; -1 when not asked (listings) or
  /// when it did not answer in time (busy).
  int64_t mailbox = -1;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, live_actor& x) {
  return f(caf::meta::type_name("crmsync::live_actor"), x.key, x.idle_ms,
           x.messages, x.stopping, x.active_ms, x.passivate_in_ms, x.mailbox);
}

struct directory_stats {
  int64_t idle_timeout_ms = 0;
  std::vector<kind_stats> kinds;
  std::vector<live_actor> live;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, directory_stats& x) {
  return f(caf::meta::type_name("crmsync::directory_stats"), x.idle_timeout_ms,
           x.kinds, x.live);
}

} // namespace crmsync
