// The convergence checker: compares one user's CRM calendar with the
// product's calendar in their Office 365 mailbox and lists every
// difference (crmsyncctl check ORG; the end-to-end tests end with it).
//
// Blocking (reads Graph); call from a worker thread. Thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "protocol/ids.hpp"
#include "storage/db.hpp"

namespace crmsync::graph {
class client;
} // namespace crmsync::graph

namespace crmsync::sync {

struct difference {
  /// office365_missing (a linked or eligible CRM event has no copy),
  /// crm_missing (an Office 365 event in the CRM calendar has no CRM
  /// event), content (both exist, subject or times differ), not_synced
  /// (an eligible CRM event is not linked), link_broken.
  std::string kind;
  std::string crm_event;       ///< 16 hex digits, or ""
  std::string office365_event; ///< Graph id, or ""
  std::string detail;
};

struct user_check {
  user_id user;
  std::string state;
  uint64_t crm_events = 0;       ///< eligible CRM events of the user
  uint64_t office365_events = 0; ///< events in the product's calendar
  uint64_t pending = 0;          ///< outbox + inbox entries not yet applied
  std::string error;             ///< why the check could not run, or ""
  std::vector<difference> differences;
};

/// Checks every user of `org` whose sync is active, for events that
/// overlap [from_ms, to_ms) (the sync's window).
std::vector<user_check> check_org(storage::db& db, graph::client& graph,
                                  tenant_id org, int64_t from_ms,
                                  int64_t to_ms);

} // namespace crmsync::sync
