// What every actor of a node shares: storage, the clock and id source.
//
// Built once by the node (or a test) and handed to actors as a
// shared_ptr<const actor_env>; the pointed-to db outlives the actor system.
#pragma once

#include <cstdint>
#include <functional>

#include "protocol/ids.hpp"
#include "storage/db.hpp"

namespace crmsync::actors {

struct actor_env {
  storage::db* db = nullptr;
  /// Wall-clock milliseconds for created/modified times.
  std::function<int64_t()> now_ms;
  /// Fresh random 64-bit ids (never 0).
  std::function<uint64_t()> random_id;
  /// Called after a write that queued e-mail in the outbox (wakes the
  /// node's mailer); may be empty. Must be thread-safe and non-blocking.
  std::function<void()> mail_queued;
  /// Called after a write that concerns a user's calendar sync (request
  /// changed, CRM change queued); wakes the sync engine. May be empty.
  std::function<void(tenant_id, user_id)> sync_wanted;
};

} // namespace crmsync::actors
