// JSON for the public API: request-body decoders and response encoders.
//
// Decoders validate everything a client sends and report the first problem
// as a crm_errc::invalid_input error naming the field; they never throw.
// simdjson stays inside json.cpp. Thread-safe (one parser per thread).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <caf/error.hpp>

#include "protocol/errors.hpp"
#include "protocol/messages.hpp"
#include "protocol/records.hpp"

namespace crmsync::json {

// -- writing
// --------------------------------------------------------------------

/// Appends s as a JSON string literal (quoted, escaped, UTF-8 passed through;
/// invalid UTF-8 bytes are replaced by U+FFFD so output is always valid).
void append_string(std::string& out, std::string_view s);

/// Streaming writer that places commas itself.
class writer {
public:
  writer& begin_object();
  writer& end_object();
  writer& begin_array();
  writer& end_array();
  writer& key(std::string_view k);
  writer& value(std::string_view s);
  writer& value(const char* s) {
    return value(std::string_view{s});
  }
  writer& value(const std::string& s) {
    return value(std::string_view{s});
  }
  writer& value(int64_t x);
  writer& value(uint64_t x);
  writer& value(int x) {
    return value(static_cast<int64_t>(x));
  }
  writer& value(bool x);
  writer& null();
  /// The string, or null when it is empty (an optional field not set).
  writer& value_or_null(std::string_view s);
  /// The id, or null when it is unset.
  template <class Tag>
  writer& id_or_null(strong_id<Tag> id) {
    return id.valid() ? value(id.str()) : null();
  }
  /// The time in RFC 3339, or null for 0 (it has not happened).
  writer& time_or_null(int64_t ms);
  /// Inserts already-encoded JSON as one value.
  writer& raw(std::string_view encoded);

  const std::string& str() const {
    return out_;
  }
  std::string take() {
    return std::move(out_);
  }

private:
  void comma();
  std::string out_;
  std::vector<bool> first_; // per open container: no element yet
  bool after_key_ = false;
};

// -- encoding records
// -------------------------------------------------------------

void write_org(writer& w, const org_record& x);
void write_user(writer& w, const user_record& x);
void write_event(writer& w, const event_record& x);
void write_calendar_status(writer& w, const calendar_status& x);
void write_error(writer& w, const api_error& e);
std::string encode_error(const api_error& e);

/// Renders an event time: a date for all-day events, RFC 3339 otherwise.
std::string event_time(int64_t ms, bool all_day);

// -- decoding requests
// ------------------------------------------------------------

/// Plain-text password travels separately from the records: only its hash
/// may enter a message.
struct org_body {
  std::string name;
  edition plan = edition::free;
  std::string admin_email;
  std::string admin_name;
  std::string admin_password; ///< "" = none
};
caf::error decode_org_create(std::string_view body, org_body& out);

caf::error decode_org_patch(std::string_view body, update_org& out);

struct user_body {
  std::string email;
  std::string name;
  profile role = profile::standard;
  bool manage_users = false;
  bool view_all_events = false;
  bool super_admin = false;
  std::string password; ///< "" = none
};
caf::error decode_user_create(std::string_view body, user_body& out);

/// Fills `out` from a PATCH of a user (name, profile, permissions); an
/// unknown field or an empty patch is a 400.
caf::error decode_user_patch(std::string_view body, user_patch& out);

/// Fills the content fields of `out` (title, times, …).
caf::error decode_event_create(std::string_view body, event_record& out);

caf::error decode_event_patch(std::string_view body, event_patch& out,
                              uint64_t& expected_version);

caf::error decode_import(std::string_view body, user_id& owner,
                         std::vector<event_record>& out, size_t max_events);

caf::error decode_mass_update(std::string_view body, std::vector<event_id>& ids,
                              event_patch& out, size_t max_ids);

/// {"office365_user_ids":[...]} (1 to max_ids distinct ids).
caf::error decode_invites_create(std::string_view body,
                                 std::vector<std::string>& ids, size_t max_ids);

/// E-mail and password proving a CRM account ("associate my account").
struct credentials {
  std::string email;
  std::string password;
};
caf::error decode_credentials(std::string_view body, credentials& out);

/// {"accept_terms":true,"associate"?:{"email","password"}}.
struct accept_body {
  bool accept_terms = false;
  bool associate = false;
  credentials account;
};
caf::error decode_invite_accept(std::string_view body, accept_body& out);

/// The fields of a Graph user object crmsync reads.
struct graph_user {
  std::string id;
  std::string display_name;
  std::string user_principal_name;
  std::string mail; ///< "" when Graph says null (no mailbox)
};
/// Decodes one Graph user object (as Graph sends it, unknown fields
/// ignored); false when it is not one.
bool decode_graph_user(std::string_view json, graph_user& out);

/// Reads an error answer of this API ({"error":{"code","message",…}});
/// false when `body` is not one.
bool decode_error(std::string_view body, api_error& out);

/// {"enabled":true|false} of PUT …/calendar-sync.
caf::error decode_calendar_sync(std::string_view body, bool& enabled);

/// {"to":"NODE"} of POST /admin/v1/shards/{shard}/move.
caf::error decode_shard_move(std::string_view body, std::string& to);

/// {"password"} of POST /password-setup/{token}: 8 to 1024 characters.
caf::error decode_new_password(std::string_view body, std::string& password);

/// {"name","expires_at"|"expires_in_days"} of POST /api/v1/me/tokens: the
/// expiry is in the future and within a year of `now_ms`.
struct token_body {
  std::string name;
  int64_t expires_ms = 0;
};
caf::error decode_token_create(std::string_view body, int64_t now_ms,
                               token_body& out);

/// Validates and normalises an e-mail address (trimmed, lower-cased).
bool normalize_email(std::string_view in, std::string& out);

// t16-m365
/// {"tenant"?} of POST /admin/v1/doctor: an Office 365 tenant id (GUID) or
/// domain, 1-253 letters, digits, '.' and '-' ("" when absent).
caf::error decode_doctor(std::string_view body, std::string& tenant);

} // namespace crmsync::json
