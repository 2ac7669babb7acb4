// Durable reminders: timers that survive passivation and restarts.
//
// One node-level actor over the `reminders` column family
// (storage/reminder_rows.hpp). A reminder is (target entity, kind, due
// time, optional period); a target has at most one of each kind, so
// setting one replaces the previous and cancelling removes it. The actor
// keeps nothing per reminder in memory: it arms one delayed message to
// itself for the earliest stored due time and, when woken, sends
// `reminder_due` to its handler (the directory, which activates the
// target) for every row due by now, earliest first; a periodic reminder
// moves to its next due time (due + period, at the same phase), a one-shot
// one is deleted, in one batch written before anything is sent.
//
// Never a burst. Periodic due times are spread over their interval by
// spread_due(), so N targets over an interval I wake ~N/I per second; and
// deliveries are capped at `max_per_second` in any sliding second. Rows
// found overdue (after downtime, or a cap that cannot keep up) are still
// delivered, at the cap and earliest first, because an overdue reminder is
// owed work (a subscription renewal skipped to the next period would let
// the subscription expire). A periodic one then resumes at its phase after
// now, so downtime costs one delivery per reminder, not one per missed
// period. Size the cap above targets / interval; the backlog after a
// restart then drains at the cap, never faster.
//
// Until it is started (reminders_config::deliver_at_once, or `run_atom`)
// it stores and cancels reminders but delivers none.
//
// The actor writes RocksDB directly (WAL on, no fsync: the same non-blocking
// writes the tenant actor makes). Time is env->now_ms (wall-clock ms).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>

#include <caf/actor.hpp>
#include <caf/fwd.hpp>

#include "actors/env.hpp"
#include "protocol/interfaces.hpp"

namespace crmsync::actors {

struct reminders_config {
  /// Deliveries in any sliding second at most.
  uint32_t max_per_second = 500;
  /// Deliver from the start. A node sets it false and sends `run_atom` once
  /// every actor a reminder can wake is wired (the sync service): a
  /// reminder overdue at start-up would otherwise activate a calendar
  /// before there is a syncing calendar to spawn, and the status-only one
  /// the directory spawns instead would take every later message for that
  /// user, until it is passivated, without syncing.
  bool deliver_at_once = true;
};

/// Spawns the reminders actor; it sends `reminder_due` to `handler`.
reminders_actor spawn_reminders(caf::actor_system& sys,
                                std::shared_ptr<const actor_env> env,
                                caf::actor handler, reminders_config cfg);

/// The phase of `target` in an interval: a stable hash of the target (the
/// same on every node and after every restart), in [0, interval).
int64_t reminder_phase(const entity_key& target,
                       std::chrono::milliseconds interval);

/// The first time at or after `now_ms` that lies at `target`'s phase of
/// `interval` (due % interval == phase): where a periodic reminder of that
/// interval should first fall, so that N targets are spread evenly.
int64_t spread_due(const entity_key& target, std::chrono::milliseconds interval,
                   int64_t now_ms);

} // namespace crmsync::actors
