// Key layout of every column family.
//
// Integers are fixed-width big-endian so that bytewise order is numeric
// order and a key prefix is a contiguous range; every tenant-scoped key
// starts with the tenant id, so one tenant is one range per family. Signed
// times flip the sign bit so negative instants sort before positive ones.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "protocol/ids.hpp"
#include "protocol/messages.hpp"

namespace crmsync::storage::keys {

void put_be64(std::string& out, uint64_t v);
uint64_t get_be64(std::string_view in, size_t pos);

/// Order-preserving encoding of a signed value.
inline uint64_t order_signed(int64_t v) {
  return static_cast<uint64_t>(v) ^ (uint64_t{1} << 63);
}
inline int64_t unorder_signed(uint64_t v) {
  return static_cast<int64_t>(v ^ (uint64_t{1} << 63));
}

/// The smallest key greater than every key starting with `prefix`
/// ("" when there is none, i.e. the prefix is all 0xff).
std::string prefix_end(std::string_view prefix);

// orgs: tenant
std::string org(tenant_id t);

// users: tenant | user
std::string user(tenant_id t, user_id u);
std::string users_of(tenant_id t);

// events: tenant | event
std::string event(tenant_id t, event_id e);

// event_index: tenant | owner | start | event
std::string event_index(tenant_id t, user_id owner, int64_t start_ms,
                        event_id e);
std::string events_of_owner(tenant_id t, user_id owner);
std::string events_of_owner_from(tenant_id t, user_id owner, int64_t start_ms);

struct event_index_entry {
  tenant_id tenant;
  user_id owner;
  int64_t start_ms = 0;
  event_id event;
};
std::optional<event_index_entry> parse_event_index(std::string_view key);

// lookup: 'e' email -> tenant|user ; 'u' user -> tenant
std::string email_lookup(std::string_view normalized_email);
/// Whether a lookup key is one that must be unique across a cluster (an
/// e-mail address, a user id, an Office 365 tenant or user): the claims of
/// write_claimed and their releases.
bool globally_unique(std::string_view lookup_key);
std::string user_lookup(user_id u);
std::string tenant_user_value(tenant_id t, user_id u);

// sync: tenant | user | kind
std::string sync_state(tenant_id t, user_id u, entity_kind kind);

// invites, joins, outbox: tenant | id ; audit: tenant | time | seq
std::string tenant_item(tenant_id t, uint64_t id);
std::string audit(tenant_id t, int64_t at_ms, uint64_t seq);

// lookup, Office 365: 't' tenant id -> org ; 'o' tid/oid -> tenant|user ;
// 'i' invite token hash -> tenant|invite ; 'j' tenant|oid -> request
std::string o365_tenant_lookup(std::string_view o365_tenant);
std::string o365_user_lookup(std::string_view o365_tenant,
                             std::string_view o365_user);
std::string invite_token_lookup(std::string_view token_hash);
std::string join_lookup(tenant_id t, std::string_view o365_user);

// sessions: 's' state -> sign-in state ; 'p' token hash -> Office 365
// session
std::string signin_state(std::string_view state);
std::string o365_session(std::string_view token_hash);
// sessions (t14-cookie): 'w' cookie hash -> a browser's page session
std::string page_session(std::string_view cookie_hash);

/// A page session's stored value (t15-sessions): be64 expiry (what the
/// purge reads), the mark 0x01, be64 organization and be64 user (0: none,
/// a person who is no CRM user), then the session's body. The
/// organization is where replication finds the row's shard
/// (storage/org_rows.hpp); a value written before has the body right after
/// the expiry and names no organization here.
std::string page_session_value(int64_t expires_ms, tenant_id org, user_id user,
                               std::string_view body);
struct page_session_head {
  int64_t expires_ms = 0;
  tenant_id org; ///< 0 when none (or the older form)
  user_id user;
  std::string_view body;
};
/// The head of a page session's value; nullopt when it is not one.
std::optional<page_session_head> parse_page_session(std::string_view value);

// sync: tenant|user|'q' -> sync_request
std::string sync_request_key(tenant_id t, user_id u);
// sync: tenant|user|'a' -> an administrator's approval of a held run
std::string sync_approval_key(tenant_id t, user_id u);
// links: tenant|user|event ; sync_outbox, inbox: tenant|user|seq
std::string link(tenant_id t, user_id u, event_id e);
std::string user_item(tenant_id t, user_id u, uint64_t seq);
std::string of_user(tenant_id t, user_id u);
// lookup: 'g' graph event id -> tenant|user|event ;
//         'n' subscription id -> tenant|user|client state
std::string graph_event_lookup(std::string_view graph_id);
std::string subscription_lookup(std::string_view subscription_id);

// orgs: tenant|'c' -> the organization is closed (being deleted): its
// tenant actor answers "not found" (t14-data)
std::string org_closed(tenant_id t);

} // namespace crmsync::storage::keys
