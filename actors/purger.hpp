// The purger: runs storage's purge pass (storage/purge.hpp) every
// `interval` and counts what it deleted in crmsync_purged_rows_total.
//
// A detached actor: a pass blocks on storage, so it has a thread of its
// own and never holds up the actor scheduler or an I/O thread; its timer
// is the runtime's delayed_send. One per node, over that node's database.
// Stop it with an exit message before the actor system goes down.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>

#include <caf/actor.hpp>
#include <caf/fwd.hpp>

#include "storage/db.hpp"
#include "storage/purge.hpp"

namespace crmsync::actors {

struct purger_config {
  std::chrono::milliseconds interval{std::chrono::minutes(5)};
  storage::purge_policy policy;
  std::function<int64_t()> now_ms;
};

/// `db` must outlive the actor.
caf::actor spawn_purger(caf::actor_system& sys, storage::db& db,
                        purger_config cfg);

} // namespace crmsync::actors
