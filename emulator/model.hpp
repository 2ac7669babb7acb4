// graph-emulator's in-memory directory: tenants, users, apps, tokens,
// calendars, events and sent mail.
//
// Plain data; the service (service.hpp) owns one instance and guards it with
// a mutex. Times are UTC milliseconds since the epoch.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

namespace crmsync::emulator {

struct user {
  std::string id; ///< a GUID, as Entra ID object ids are
  std::string tenant_id;
  std::string user_principal_name;
  std::string display_name;
  std::string mail; ///< "" renders as null
  bool is_admin = false;
  bool has_mailbox = true;
};

struct tenant {
  std::string id; ///< a GUID
  std::string domain;
  std::vector<std::string> user_ids; ///< in creation order (listing order)
};

struct app {
  std::string client_id;
  std::string client_secret;
  std::set<std::string> consented_tenants;
};

struct access_token {
  std::string client_id;
  std::string tenant_id;
  int64_t expires_ms = 0;
};

/// A single-use authorization code of the sign-in (code) flow.
struct auth_code {
  std::string client_id;
  std::string redirect_uri;
  std::string user_id;
  std::string nonce;
  int64_t expires_ms = 0;
};

/// A recurrence of any of Graph's patterns: daily, weekly,
/// absoluteMonthly, relativeMonthly, absoluteYearly, relativeYearly; each
/// with an endDate, noEnd or numbered range.
struct recurrence_rule {
  bool active = false;
  std::string type; ///< the pattern's type, as Graph spells it
  int64_t interval = 1;
  unsigned days_mask = 0;  ///< bit 0 = Sunday … bit 6 = Saturday
  unsigned first_day = 0;  ///< first day of the week (0 = Sunday)
  int day_of_month = 0;    ///< 1-31 (absolute patterns)
  int month = 0;           ///< 1-12 (yearly patterns)
  int index = 0;           ///< relative: 0 first … 3 fourth, 4 last
  std::string range_type;  ///< endDate, noEnd or numbered
  int64_t start_day = 0;   ///< range start, days since the epoch
  int64_t end_day = -1;    ///< last day for "endDate" ranges, else -1
  int64_t occurrences = 0; ///< for "numbered" ranges, else 0
  std::string time_zone;   ///< range.recurrenceTimeZone ("" = none given)
  std::string json;        ///< the patternedRecurrence as Graph shows it
};

struct event {
  std::string id;
  std::string calendar_id;
  std::string subject;
  std::string body_content_type = "text";
  std::string body_content;
  int64_t start_ms = 0;
  int64_t end_ms = 0;
  std::string start_time_zone = "UTC";
  std::string end_time_zone = "UTC";
  bool is_all_day = false;
  std::string location;
  std::string attendees_json = "[]";  ///< kept as sent (an array)
  std::string sensitivity = "normal"; ///< normal, personal, private, …
  std::string show_as = "busy";       ///< free, tentative, busy, oof, …
  bool is_reminder_on = true;
  int64_t reminder_minutes = 15;
  std::vector<std::string> categories;
  std::string change_key;
  std::string ical_uid;
  std::string transaction_id;
  int64_t created_ms = 0;
  int64_t modified_ms = 0;
  std::map<std::string, std::string> extended_properties; ///< id -> value
  recurrence_rule recurrence; ///< active on series masters
  /// Set on occurrences expanded from a series (never stored).
  std::string series_master_id;
  int64_t original_start_ms = 0;
  bool exception = false; ///< an occurrence edited on its own
};

struct calendar {
  std::string id;
  std::string name;
  std::string change_key;
  bool is_default = false;
  std::vector<std::string> event_ids; ///< creation order
  /// Event ids by the transactionId they were created with (a retried
  /// POST returns the first event); an entry whose event is gone is
  /// stale and ignored.
  std::unordered_map<std::string, std::string> by_transaction;
  /// Change log for delta queries: (sequence number, event id) per write.
  uint64_t seq = 0;
  std::vector<std::pair<uint64_t, std::string>> log;
  size_t compact_at = 0; ///< log size that triggers the next compaction
  /// Deleted series masters, so a delta round can name their occurrences.
  std::map<std::string, event> deleted_series;
  /// Earlier versions of series whose recurrence changed (oldest first),
  /// kept like deleted_series: a delta round reports the occurrences the
  /// change removed (a shortened series) as removed.
  std::map<std::string, std::vector<event>> changed_series;
  /// Occurrences edited on their own (exceptions) and cancelled, by
  /// occurrence id ("{master}_{yyyymmdd}").
  std::map<std::string, event> exceptions;
  std::set<std::string> cancelled;
};

/// What a delta token stands for: a calendar window seen up to `seq`.
/// Each use issues the next generation of its chain; an older generation
/// is no longer valid (Graph answers 410 SyncStateNotFound).
struct delta_token {
  std::string user_id;
  std::string calendar_id;
  int64_t start_ms = 0;
  int64_t end_ms = 0;
  uint64_t seq = 0;
  std::string chain;
  uint64_t generation = 0;
};

/// The rest of a delta round being paged through with $skiptoken.
struct delta_page {
  std::vector<std::string> items; ///< rendered JSON objects
  delta_token next;               ///< what the round's deltaLink will stand for
  std::string link_token;         ///< issued with the last page ("" = not yet)
};

struct subscription {
  std::string id;
  std::string client_id;
  std::string tenant_id;
  std::string user_id;
  std::string calendar_id;  ///< "" = the user's default calendar
  std::string resource;     ///< as the client wrote it
  std::string change_types; ///< "created,updated,deleted"
  std::string notification_url;
  std::string lifecycle_url;
  std::string client_state;
  bool has_client_state = false;
  int64_t expires_ms = 0;
};

struct sent_mail {
  std::string message_json; ///< the "message" object as posted
  bool save_to_sent_items = true;
  int64_t sent_ms = 0;
};

/// Everything Outlook keeps for one user.
struct mailbox {
  std::vector<calendar> calendars; ///< [0] is the default calendar
  std::map<std::string, event> events;
  std::vector<sent_mail> outbox;
};

struct directory {
  std::map<std::string, tenant> tenants; ///< by id
  std::map<std::string, user> users;     ///< by id
  /// Lookups that sign-ins and seeding make per request, so that they do
  /// not scan every tenant or user: lower-case domain → tenant id and
  /// lower-case userPrincipalName → user id. Tenants and users are only
  /// ever added (or all reset): these are filled where they are added.
  std::map<std::string, std::string> tenant_by_domain;
  std::map<std::string, std::string> user_by_upn;
  std::map<std::string, app> apps; ///< by client id
  std::map<std::string, access_token> tokens;
  std::map<std::string, auth_code> codes;
  /// authorization_code requests at the token endpoint, redeemed or not
  /// (tests check that refused callbacks never reach it).
  uint64_t code_redemptions = 0;
  /// App-only tokens issued (client_credentials), by tenant id: tests see
  /// when a client fetched a new one instead of using what it cached.
  std::map<std::string, uint64_t> app_tokens_issued;
  std::map<std::string, subscription> subscriptions;
  /// Indexes of `subscriptions`, kept in step with it by the service's
  /// add/erase/renew helpers (never written elsewhere): ids by user id, so
  /// that a write or a calendar's deletion finds its user's subscriptions
  /// without walking all of them, and (expiration, id) in expiry order, so
  /// that dropping the expired ones costs what expired, not every
  /// subscription of the directory.
  std::map<std::string, std::set<std::string>> subscriptions_by_user;
  std::set<std::pair<int64_t, std::string>> subscriptions_by_expiry;
  std::map<std::string, delta_token> delta_tokens;
  std::map<std::string, delta_page> delta_pages;
  std::map<std::string, uint64_t> delta_chains; ///< chain -> newest generation
  std::map<std::string, std::string> chain_tokens; ///< chain -> newest token
  std::map<std::string, std::string> chain_rounds; ///< chain -> newest round
  /// Delta chains by (user id, calendar id): a calendar's change-log
  /// compaction reads only its own chains' live token and round, not every
  /// token of the directory. A chain is added when its first round starts
  /// and dropped once it has neither a live token nor a live round.
  std::map<std::pair<std::string, std::string>, std::set<std::string>>
      calendar_chains;
  std::map<std::string, mailbox> mailboxes; ///< by user id
  /// Request times per (client id, user id), for Outlook's mailbox limit.
  std::map<std::pair<std::string, std::string>, std::deque<int64_t>> usage;
};

} // namespace crmsync::emulator
