// The purger: runs storage's purge pass (storage/purge.hpp) every
// `interval` and counts what it deleted in crmsync_purged_rows_total.
//
// An actor on the scheduler, with no thread of its own: a pass is taken in
// steps of `rows_per_step` rows (storage::purge_step), each a message to
// itself, so other actors get the thread between two steps; its timer is
// the runtime's delayed_send. One per node, over that node's database.
// Stop it with an exit message before the actor system goes down.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>

#include <caf/actor.hpp>
#include <caf/fwd.hpp>

#include "storage/db.hpp"
#include "storage/purge.hpp"

namespace crmsync::actors {

struct purger_config {
  std::chrono::milliseconds interval{std::chrono::minutes(5)};
  /// Rows one step reads at most (a few milliseconds of the thread).
  size_t rows_per_step = 2000;
  storage::purge_policy policy;
  std::function<int64_t()> now_ms;
};

/// `db` must outlive the actor.
caf::actor spawn_purger(caf::actor_system& sys, storage::db& db,
                        purger_config cfg);

} // namespace crmsync::actors
