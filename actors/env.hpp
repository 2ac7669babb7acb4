// What every actor of a node shares: storage, the clock and id source.
//
// Built once by the node (or a test) and handed to actors as a
// shared_ptr<const actor_env>; the pointed-to db outlives the actor system.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <caf/actor.hpp>
#include <caf/fwd.hpp>

#include "protocol/ids.hpp"
#include "storage/db.hpp"

namespace crmsync {
struct entity_key;
} // namespace crmsync

namespace crmsync::actors {

/// A mailbox's Graph budget, as Outlook enforces it per mailbox and app
/// (see actors/mailbox.cpp).
struct mailbox_limits {
  /// Requests in flight at once.
  size_t concurrency = 4;
  /// Requests per `window`.
  size_t per_window = 10000;
  std::chrono::milliseconds window{std::chrono::minutes(10)};
  /// Idle this long (nothing queued or in flight), a mailbox asks the
  /// directory to passivate it (unless the directory gave its activation
  /// another idle time: actors/idle_ladder.hpp).
  std::chrono::milliseconds idle_after{std::chrono::seconds(10)};
  /// It agrees only while its window holds at most this many requests: a
  /// busy mailbox keeps its count; a quiet one forgets a few.
  size_t forget_at_most = 100;
  /// A slot not given back this long after it was granted (its release
  /// was lost) is taken back, so a mailbox can never stall for good.
  /// Longer than a Graph call with all its retries.
  std::chrono::milliseconds lease{std::chrono::minutes(15)};
};

struct actor_env {
  storage::db* db = nullptr;
  /// Wall-clock milliseconds for created/modified times.
  std::function<int64_t()> now_ms;
  /// How long a token issued by a sign-in works (--session-ttl).
  int64_t session_ttl_ms = int64_t{30} * 24 * 3600 * 1000;
  /// Fresh random 64-bit ids (never 0).
  std::function<uint64_t()> random_id;
  /// Called after a write that queued e-mail in the outbox, with the
  /// outbox keys it wrote (the node's mailer reads those rows); may be
  /// empty. Must be thread-safe and non-blocking.
  std::function<void(std::vector<std::string>)> mail_queued;
  /// Spawns the calendar actor that syncs one user (sync/calendar_sync.hpp),
  /// for the directory, with the idle time of this activation
  /// (actors/idle_ladder.hpp); empty without Office 365: calendars then
  /// only answer their status (actors/calendar.cpp).
  std::function<caf::actor(caf::actor_system&, const entity_key&,
                           std::chrono::milliseconds idle_after)>
      spawn_calendar;
  mailbox_limits mailbox;
};

} // namespace crmsync::actors
