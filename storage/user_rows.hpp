// Every stored row of one user, gathered for deletion: the user record,
// their events and event index, their sync rows (states, requests, links
// with their Graph lookups, the subscription lookup, outbox and inbox) and
// their global lookups (e-mail, id, Office 365 person) and their durable
// timers on this node (reminder rows). Audit entries,
// invitations and join requests stay: they are the organization's history.
//
// Pure reads plus batch building; the caller (the tenant actor, single
// writer of the user's tenant rows) writes the batch. Thread-safe.
#pragma once

#include <cstdint>

#include <caf/error.hpp>

#include "protocol/records.hpp"
#include "storage/db.hpp"

namespace crmsync::storage {

struct user_rows_deleted {
  uint64_t events = 0;
  uint64_t sync_rows = 0; ///< states, links, queued changes
  uint64_t reminders = 0; ///< reminder rows (a due row with its index row)
};

/// Adds the deletion of every row of `u` to `b`; counts what it found.
caf::error del_user_rows(const db& store, write_batch& b, const user_record& u,
                         user_rows_deleted& out);

} // namespace crmsync::storage
