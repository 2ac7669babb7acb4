// The directory: activation, routing and passivation of virtual actors.
//
// One per node. Callers send `(route_atom, entity_key, message)`; the
// directory activates the addressed tenant, mailbox or calendar actor if
// needed (its state comes from RocksDB) and delegates the message, so the
// entity answers the caller directly. Every `sweep_interval` it asks
// entities idle for `idle_timeout` to passivate (calendars and mailboxes
// ask it themselves sooner: after the idle time it gives each activation,
// which grows for one that comes back soon after a passivation,
// actors/idle_ladder.hpp); while one is stopping,
// messages for it are buffered and handed to its next activation, so at
// most one instance of an entity exists at any time and nothing is lost.
// Also answers `stats_atom` (directory_stats), `(stats_atom, key)` (one
// live entity with its mailbox length; not_found when it is not live) and
// `(passivate_atom, key)`.
#pragma once

#include <chrono>
#include <functional>
#include <memory>

#include <caf/actor.hpp>
#include <caf/fwd.hpp>

#include "actors/env.hpp"

namespace crmsync::actors {

struct directory_config {
  std::chrono::milliseconds idle_timeout{std::chrono::minutes(5)};
  /// The first idle time of a calendar or mailbox activation
  /// (--calendar-idle); one that comes back within the idle time it had
  /// gets twice that, up to `idle_timeout` (actors/idle_ladder.hpp).
  std::chrono::milliseconds entity_idle{std::chrono::seconds(10)};
  std::chrono::milliseconds sweep_interval{std::chrono::seconds(5)};
  /// How long an entity gets to answer a passivation request.
  std::chrono::milliseconds stop_timeout{std::chrono::seconds(10)};
  /// After entities were passivated, ask for the memory they freed to be
  /// handed back to the system (`release_memory`: crmsyncd's main thread
  /// then purges the allocator's free pages) at the next sweep, at most this
  /// often; zero or no function: never. Called on the directory's thread: must
  /// not block.
  std::chrono::milliseconds trim_interval{std::chrono::seconds(30)};
  std::function<void()> release_memory;
};

caf::actor spawn_directory(caf::actor_system& sys,
                           std::shared_ptr<const actor_env> env,
                           directory_config cfg);

} // namespace crmsync::actors
