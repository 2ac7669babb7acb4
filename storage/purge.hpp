// Removes rows nobody can use any more: expired sign-in states and Office
// 365 sessions, invitations used, superseded or expired longer ago than a
// retention window (with their token lookups), and e-mail the mailer gave
// up on, older than a retention window.
//
// One pass scans those column families and deletes in batches. It can be
// taken in steps of a bounded number of rows (purge_step), so that an
// actor shares its scheduler thread between them. Safe to run while the
// node serves: every row it deletes is one no request can bring back to
// use (see docs/adr/0001).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include <caf/error.hpp>

#include "storage/db.hpp"

namespace crmsync::storage {

struct purge_policy {
  /// Invitations are kept this long after they were used or superseded
  /// (resolved) or, unused, after they expired: the admins' list shows
  /// them meanwhile.
  int64_t invite_retention_ms = int64_t{30} * 24 * 3600 * 1000;
  /// Failed e-mail is kept this long after it was queued.
  int64_t failed_mail_retention_ms = int64_t{30} * 24 * 3600 * 1000;
  /// Rows deleted per write batch.
  size_t batch_rows = 1000;
};

/// What one pass deleted, by kind.
struct purge_counts {
  uint64_t signin_states = 0;
  uint64_t sessions = 0;
  uint64_t invites = 0;
  uint64_t outbox = 0;
};

/// Where a pass taken in steps stands: the family it is in and the first
/// key it has not looked at yet.
struct purge_cursor {
  int stage = 0; ///< 0 sessions, 1 invites, 2 outbox, 3 done
  std::string next;
  bool done() const {
    return stage >= 3;
  }
};

/// One step of a pass at time `now_ms`: looks at up to `max_rows` rows
/// from `at` on, deletes what is expired among them and moves `at` past
/// them (done() once every family was read). A pass in steps lets the
/// caller share its thread between them. `out` counts what was deleted,
/// even when an error stops the step early.
caf::error purge_step(db& store, const purge_policy& policy, int64_t now_ms,
                      purge_counts& out, purge_cursor& at, size_t max_rows);

/// One whole pass at time `now_ms` (purge_step until done); `out` counts
/// what was deleted even when an error stops the pass early.
caf::error purge_expired(db& store, const purge_policy& policy, int64_t now_ms,
                         purge_counts& out);

} // namespace crmsync::storage
