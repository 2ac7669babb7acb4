// Spawning the virtual actors the directory activates.
//
// Each entity loads its state from RocksDB when it starts and is the single
// writer of its keys; each answers passivate_atom by agreeing and quitting
// (state is persisted before every reply, so there is nothing to flush).
#pragma once

#include <chrono>
#include <memory>

#include <caf/actor.hpp>
#include <caf/fwd.hpp>

#include "actors/env.hpp"
#include "protocol/interfaces.hpp"

namespace crmsync::actors {

/// `directory` is told when a tenant finds it has no organization, so that
/// probes for ids that do not exist do not keep actors alive.
tenant_actor spawn_tenant(caf::actor_system& sys, tenant_id id,
                          std::shared_ptr<const actor_env> env,
                          caf::actor directory);

/// `directory` is asked to passivate the mailbox once it has been idle
/// for `idle_after` (zero: env->mailbox.idle_after).
mailbox_actor spawn_mailbox(caf::actor_system& sys, tenant_id org, user_id user,
                            std::shared_ptr<const actor_env> env,
                            caf::actor directory,
                            std::chrono::milliseconds idle_after = {});

calendar_actor spawn_calendar(caf::actor_system& sys, tenant_id org,
                              user_id user,
                              std::shared_ptr<const actor_env> env);

/// A user's stored calendar sync status with the depth of their sync
/// outbox and inbox (what a calendar actor answers to status_request);
/// false when the read failed or the record is damaged.
bool read_calendar_status(const storage::db& db, tenant_id org, user_id user,
                          calendar_status& out);

/// Spawns the entity a key addresses, as a dynamically typed handle.
/// Mailboxes and syncing calendars ask to be passivated once idle for
/// `idle_after` (the directory's idle_ladder).
caf::actor spawn_entity(caf::actor_system& sys, const entity_key& key,
                        std::shared_ptr<const actor_env> env,
                        caf::actor directory,
                        std::chrono::milliseconds idle_after);

} // namespace crmsync::actors
