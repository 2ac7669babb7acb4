// The CRM's records: organizations, users, calendar events.
//
// Plain value types shared by actors (as message payloads), storage (which
// owns their on-disk codec) and the HTTP layer (which owns their JSON).
// Times are UTC milliseconds since the epoch.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <caf/meta/type_name.hpp>

#include "protocol/ids.hpp"

namespace crmsync {

enum class edition : uint8_t { free = 0, paid = 1 };
enum class profile : uint8_t { standard = 0, administrator = 1 };

/// Who wins when a synced event changed on both sides since the last sync.
enum class conflict_policy : uint8_t {
  latest = 0,    ///< the later modification (the default)
  crm = 1,       ///< the CRM's version
  office365 = 2, ///< Office 365's version
};

/// Where an event's current content came from (R19 eligibility).
enum class event_origin : uint8_t {
  individual = 0,  ///< created or edited one at a time in the CRM
  imported = 1,    ///< bulk import: never synced until edited
  mass_update = 2, ///< changed by a mass update: synced
  office365 = 3,   ///< created or changed in Outlook
};

const char* to_string(edition x);
const char* to_string(conflict_policy x);
bool from_string(std::string_view s, conflict_policy& x);
const char* to_string(profile x);
const char* to_string(event_origin x);
bool from_string(std::string_view s, edition& x);
bool from_string(std::string_view s, profile& x);

struct org_record {
  tenant_id id;
  std::string name;
  edition plan = edition::free;
  user_id super_admin;
  uint64_t user_count = 0;
  uint64_t event_count = 0;
  int64_t created_ms = 0;
  int64_t modified_ms = 0;
  std::string o365_tenant; ///< the linked Office 365 tenant id, or ""
  conflict_policy conflicts = conflict_policy::latest;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, org_record& x) {
  return f(caf::meta::type_name("crmsync::org_record"), x.id, x.name, x.plan,
           x.super_admin, x.user_count, x.event_count, x.created_ms,
           x.modified_ms, x.o365_tenant, x.conflicts);
}

/// An API token a user made for a program (GET/POST/DELETE
/// /api/v1/me/tokens); only the hash of its secret is stored. Its id is
/// the hash's first 16 hex digits (token_id).
struct api_token {
  std::string name;
  std::string hash; ///< SHA-256 hex of the token
  int64_t created_ms = 0;
  int64_t expires_ms = 0; ///< 0 = never
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, api_token& x) {
  return f(caf::meta::type_name("crmsync::api_token"), x.name, x.hash,
           x.created_ms, x.expires_ms);
}

/// The public id of a token: the first 16 hex digits of its hash (the
/// hash of a 256-bit secret; it tells nothing about the secret).
std::string token_id(std::string_view hash);

struct user_record {
  user_id id;
  tenant_id org;
  std::string email; ///< lower-cased; unique across the service
  std::string name;
  profile role = profile::standard;
  bool manage_users = false;
  bool super_admin = false;
  /// May read every member's events (administrators always may).
  bool view_all_events = false;
  std::string password_hash; ///< Argon2id string, or empty: no password
  std::string token_hash;    ///< SHA-256 hex of the API token's secret
  int64_t created_ms = 0;
  int64_t modified_ms = 0;
  /// The linked Office 365 person (tid, oid), or "" when none.
  std::string o365_tenant;
  std::string o365_user;
  /// Tokens issued by Office 365 sign-ins, newest last (a few are kept so
  /// that signing in on one device does not sign out another). Those of
  /// browser page sessions carry `page_token_mark` before the hash: they
  /// are bounded apart, so page visits never push out a program's token.
  std::vector<std::string> signin_token_hashes;
  /// A deactivated user holds no tokens, cannot sign in and does not
  /// sync; their records stay until the user is deleted.
  bool deactivated = false;
  /// Tokens the user made, oldest first.
  std::vector<api_token> api_tokens;
  /// When each of signin_token_hashes was issued (same order); a hash
  /// without one (stored before sign-in tokens expired) counts as issued
  /// at modified_ms.
  std::vector<int64_t> signin_issued_ms;
  /// A pending invitation to set a password (a user made without one):
  /// the hash of its single-use token and when it expires; "" when none.
  std::string setup_token_hash;
  int64_t setup_expires_ms = 0;

  /// Whether `hash` is one of this user's API token hashes.
  bool has_token_hash(std::string_view hash) const;
  /// Whether `hash` is a token of this user that works at `now_ms`: a
  /// sign-in token for `signin_ttl_ms` after it was issued, a made token
  /// until its expiry, the token made with the user (when no sign-in
  /// issued it) for good.
  bool token_valid(std::string_view hash, int64_t now_ms,
                   int64_t signin_ttl_ms) const;
  /// Adds a token issued by a sign-in at `now_ms` (of a browser page
  /// session when `page`), dropping the oldest of the same kind beyond
  /// `keep`: page visits never push out a program's token.
  void add_signin_token(std::string hash, bool page, int64_t now_ms,
                        size_t keep);
  /// Forgets the sign-in token `hash` (a page session's that ended);
  /// whether it was held.
  bool remove_signin_token(std::string_view hash);
  /// When sign-in token `i` was issued.
  int64_t signin_issued(size_t i) const;
  /// Drops every token (deactivation).
  void revoke_all_tokens();
};

/// Marks a page session's hash in `user_record::signin_token_hashes`.
inline constexpr std::string_view page_token_mark = "page:";

/// A stored sign-in hash without its page mark.
std::string_view unmarked_token(std::string_view stored);

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, user_record& x) {
  return f(caf::meta::type_name("crmsync::user_record"), x.id, x.org, x.email,
           x.name, x.role, x.manage_users, x.super_admin, x.password_hash,
           x.token_hash, x.created_ms, x.modified_ms, x.o365_tenant,
           x.o365_user, x.signin_token_hashes, x.view_all_events, x.deactivated,
           x.api_tokens, x.signin_issued_ms, x.setup_token_hash,
           x.setup_expires_ms);
}

struct participant {
  std::string email;
  std::string name;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, participant& x) {
  return f(caf::meta::type_name("crmsync::participant"), x.email, x.name);
}

struct event_record {
  event_id id;
  tenant_id org;
  user_id owner;
  std::string title;
  int64_t start_ms = 0;
  int64_t end_ms = 0;
  bool all_day = false;
  std::string time_zone; ///< the zone the event was written in; "" = UTC
  std::string location;
  std::string description;
  std::vector<participant> participants;
  event_origin origin = event_origin::individual;
  uint64_t version = 0;
  int64_t created_ms = 0;
  int64_t modified_ms = 0;
  /// Graph's sensitivity: normal, personal, private or confidential. A
  /// private or confidential event's details are for its owner and the
  /// administrators only (is_private_event, redact_private_event).
  std::string sensitivity = "normal";
  /// Graph's showAs: free, tentative, busy, oof, workingElsewhere, unknown.
  std::string show_as = "busy";
  bool reminder_on = true;
  int64_t reminder_minutes = 15; ///< before the start
  std::vector<std::string> categories;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, event_record& x) {
  return f(caf::meta::type_name("crmsync::event_record"), x.id, x.org, x.owner,
           x.title, x.start_ms, x.end_ms, x.all_day, x.time_zone, x.location,
           x.description, x.participants, x.origin, x.version, x.created_ms,
           x.modified_ms, x.sensitivity, x.show_as, x.reminder_on,
           x.reminder_minutes, x.categories);
}

/// Changed fields of an event; `fields` says which members are set.
struct event_patch {
  enum field : uint32_t {
    f_title = 1u << 0,
    f_start = 1u << 1,
    f_end = 1u << 2,
    f_all_day = 1u << 3,
    f_location = 1u << 4,
    f_description = 1u << 5,
    f_participants = 1u << 6,
    f_time_zone = 1u << 7,
    f_sensitivity = 1u << 8,
    f_show_as = 1u << 9,
    f_reminder_on = 1u << 10,
    f_reminder_minutes = 1u << 11,
    f_categories = 1u << 12,
  };
  uint32_t fields = 0;
  std::string title;
  int64_t start_ms = 0;
  int64_t end_ms = 0;
  bool all_day = false;
  std::string time_zone;
  std::string location;
  std::string description;
  std::vector<participant> participants;
  std::string sensitivity;
  std::string show_as;
  bool reminder_on = true;
  int64_t reminder_minutes = 0;
  std::vector<std::string> categories;

  bool has(field x) const {
    return (fields & x) != 0;
  }
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, event_patch& x) {
  return f(caf::meta::type_name("crmsync::event_patch"), x.fields, x.title,
           x.start_ms, x.end_ms, x.all_day, x.time_zone, x.location,
           x.description, x.participants, x.sensitivity, x.show_as,
           x.reminder_on, x.reminder_minutes, x.categories);
}

/// Applies a patch to an event's content fields (not version or times).
void apply_patch(const event_patch& p, event_record& e);

/// Graph's sensitivity values (normal, personal, private, confidential).
bool valid_sensitivity(std::string_view s);
/// Graph's showAs values (free, tentative, busy, oof, workingElsewhere,
/// unknown).
bool valid_show_as(std::string_view s);
/// Longest reminder accepted: four weeks, in minutes.
inline constexpr int64_t max_reminder_minutes = 4 * 7 * 24 * 60;

/// A private or confidential event: its details are for its owner and
/// the organization's administrators.
bool is_private_event(const event_record& e);
/// What others see of a private event: busy time. Subject, body,
/// location, participants and categories are cleared; times, all-day,
/// time zone, showAs and sensitivity stay.
void redact_private_event(event_record& e);

} // namespace crmsync
