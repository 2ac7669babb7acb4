// Removes rows nobody can use any more: expired sign-in states and Office
// 365 sessions, invitations used, superseded or expired longer ago than a
// retention window (with their token lookups), and e-mail the mailer gave
// up on, older than a retention window.
//
// One pass scans those column families and deletes in batches; it blocks
// (storage I/O), so it runs on a thread of its own, never an actor's or an
// I/O thread. Safe to run while the node serves: every row it deletes is
// one no request can bring back to use (see docs/adr/0001).
#pragma once

#include <cstddef>
#include <cstdint>

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

/// One pass at time `now_ms`; `out` counts what was deleted even when an
/// error stops the pass early.
caf::error purge_expired(db& store, const purge_policy& policy, int64_t now_ms,
                         purge_counts& out);

} // namespace crmsync::storage
