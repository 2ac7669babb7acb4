// The sync inbox: what Graph's change notifications left for a user.
//
// The webhook ingress (sync/service.hpp) writes one row per user and kind
// (notifications are hints: a flood of them while a user's sync is stuck
// must not grow the inbox) before it acknowledges; the user's calendar
// actor reads the rows at the start of a delta round and deletes them with
// the round's result, so a notification stored before a crash is still
// there after it.
#pragma once

#include <string>
#include <vector>

#include "protocol/ids.hpp"
#include "storage/db.hpp"

namespace crmsync::sync {

enum class inbox_kind : char {
  change = 'c',      ///< created, updated or deleted
  missed = 'm',      ///< lifecycle: notifications were missed
  removed = 'x',     ///< lifecycle: subscriptionRemoved
  reauthorize = 'r', ///< lifecycle: reauthorizationRequired
};

/// The kind of a lifecycle notification's `lifecycleEvent`.
inbox_kind lifecycle_kind(const std::string& event);

struct inbox_row {
  std::string key;
  inbox_kind kind = inbox_kind::change;
};

/// Puts the user's row of this kind into `b`.
void put_inbox(storage::write_batch& b, tenant_id org, user_id user,
               inbox_kind kind);

/// The user's rows now (a failed read: none).
std::vector<inbox_row> take_inbox(const storage::db& db, tenant_id org,
                                  user_id user);

/// Whether the user has rows in the sync outbox or the inbox: work for
/// their calendar actor.
bool has_pending_rows(const storage::db& db, tenant_id org, user_id user);

} // namespace crmsync::sync
