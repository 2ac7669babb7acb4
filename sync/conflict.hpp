// Conflicts: a synced event changed on both sides since the last sync.
// Which side the tenant's policy keeps, the conflict record that says so,
// and what the winner's side needs (a PATCH to Office 365 or an apply
// command to the tenant actor).
//
// Pure functions over records; no I/O. The caller sends the request or the
// command and stores the record. Thread-safe.
#pragma once

#include <cstdint>

#include "protocol/ids.hpp"
#include "protocol/records.hpp"
#include "protocol/sync.hpp"
#include "sync/graph_event.hpp"
#include "sync/graph_request.hpp"

namespace crmsync::sync {

enum class side : uint8_t { crm, office365 };

/// "crm" or "office365", as conflict records name the winner.
const char* to_string(side x);

/// The tenant's policy: the CRM's version under `crm`, Office 365's under
/// `office365`, else the later modification (a tie goes to the CRM).
side conflict_winner(conflict_policy policy, int64_t crm_modified_ms,
                     int64_t office365_modified_ms);

struct conflict_resolution {
  side winner = side::crm;
  /// The conflict as recorded (the caller stores it under an audit key).
  sync_conflict record;
  /// CRM wins: the PATCH of the CRM's version, If-Match Office 365's
  /// current changeKey.
  graph_request patch;
  /// Office 365 wins: its version becomes the CRM's; after the tenant
  /// actor applied it, the link holds `theirs.change_key` and the version
  /// the tenant actor answers.
  apply_office365 apply;
};

/// `ours` (the CRM event of `user`, linked by `link`) and `theirs` (as
/// Office 365 holds it now) both changed since the last sync.
conflict_resolution
resolve_conflict(conflict_policy policy, user_id user, const event_record& ours,
                 const sync_link& link, const graph_event& theirs,
                 const calendar_paths& paths, int64_t now_ms);

} // namespace crmsync::sync
