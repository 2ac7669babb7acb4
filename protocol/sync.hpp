// Calendar sync records and the tenant actor's sync commands (R13-R21).
//
// The tenant actor records what a user asked for (sync_request) and, with
// every CRM write of an eligible event whose owner syncs, a sync_change in
// the user's sync outbox, in the same batch. The sync engine owns the rest:
// links between CRM events and Office 365 events, the calendar status, and
// writes coming back from Office 365 (apply_office365, which queue nothing).
#pragma once

#include <cstdint>
#include <string>

#include <caf/meta/type_name.hpp>

#include "protocol/messages.hpp"
#include "protocol/records.hpp"

namespace crmsync {

/// What the user last asked for: sync on or off.
struct sync_request {
  bool enabled = false;
  int64_t at_ms = 0;
};

/// A CRM event and its copy in the user's Office 365 calendar.
struct sync_link {
  event_id event;
  std::string graph_id;
  std::string change_key; ///< of the version crmsync last wrote or applied
  uint64_t crm_version = 0;
};

/// One pending CRM change for Office 365 (sync outbox entry).
struct sync_change {
  event_id event;
  bool deleted = false;
  int64_t at_ms = 0;
};

/// A synced event changed on both sides since the last sync: which
/// version the tenant's conflict policy kept, and the one it replaced.
struct sync_conflict {
  user_id user;
  event_id event;
  std::string graph_id;
  int64_t at_ms = 0;
  std::string policy; ///< latest, crm or office365
  std::string winner; ///< "crm" or "office365"
  std::string kept;   ///< "title" start - end of the version kept
  std::string lost;   ///< the same of the version replaced
};

/// PUT …/calendar-sync: records the request and answers the status.
struct set_calendar_sync {
  caller who;
  user_id user;
  bool enabled = false;
  /// Set when the sync itself turns a user's sync off (R21: the calendar
  /// was deleted in Office 365): the audit entry names the sync as the
  /// actor, with this reason, not the caller.
  std::string reason;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, set_calendar_sync& x) {
  return f(caf::meta::type_name("crmsync::set_calendar_sync"), x.who, x.user,
           x.enabled, x.reason);
}

/// A change made in Outlook, applied to the CRM by the sync engine:
/// creates (`event` unset) or updates an event of `owner` with origin
/// office365, or deletes one; no sync outbox entry is written for it.
struct apply_office365 {
  user_id owner;
  event_id event;
  bool remove = false;
  /// For an update: the CRM version the engine last synced; a newer CRM
  /// version means a CRM change is on its way out (409, the item waits
  /// for the conflict policy at the next If-Match).
  uint64_t expected_version = 0;
  event_record content; ///< title, times, all_day, location, description
  /// The Office 365 event (id and changeKey): a create writes its link in
  /// the same batch, so a retried create finds the event it made.
  std::string graph_id;
  std::string change_key;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, apply_office365& x) {
  return f(caf::meta::type_name("crmsync::apply_office365"), x.owner, x.event,
           x.remove, x.expected_version, x.content, x.graph_id, x.change_key);
}

} // namespace crmsync
