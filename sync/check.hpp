// The convergence checker: compares one user's CRM calendar with the
// product's calendar in their Office 365 mailbox and lists every
// difference (crmsyncctl check ORG; the end-to-end tests end with it).
//
// Asynchronous: the users of an organization are read from Graph at the
// same time (a bounded number at once), page after page, with no thread
// waiting; the result reaches a callback. Thread-safe.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
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
  /// event), content (both exist, subject or times differ, or
  /// sensitivity, showAs, the reminder or categories), not_synced
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

/// How far a check has come (read while it runs; see check_org).
struct check_progress {
  std::atomic<uint64_t> users_total{0};
  std::atomic<uint64_t> users_done{0};
  std::atomic<uint64_t> differences{0};
};

/// Checks every user of `org` whose sync is active, for events that
/// overlap [from_ms, to_ms) (the sync's window), at most `parallel` users
/// at a time. `done` gets one entry per user, in user order, on a Graph
/// I/O thread (or on the calling thread when there is nothing to read).
/// `progress`, when given, must live until `done` has run.
void check_org(storage::db& db, graph::client& graph, tenant_id org,
               int64_t from_ms, int64_t to_ms,
               std::function<void(std::vector<user_check>)> done,
               size_t parallel = 16, check_progress* progress = nullptr);

} // namespace crmsync::sync
