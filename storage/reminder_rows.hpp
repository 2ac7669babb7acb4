// Row layout of the `reminders` column family: durable timers.
//
// Two kinds of rows, told apart by their first byte:
//   due rows    0x01 | due ms (8, big-endian, sign flipped) | target | kind
//               -> version(1) | period ms (8, BE)
//   index rows  0x02 | target | kind -> version(1) | due ms (8, BE)
// where target = entity kind(1) | tenant(8, BE) | user(8, BE). Due rows sort
// by due time, so the earliest reminder is the first row and "everything
// due by now" is one range from the start; the index finds a target's
// reminder of a kind, so that setting one replaces it and cancelling finds
// it, in the same batch. Rows are node-local (not keyed by tenant): a shard
// move leaves them behind. Pure functions; thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <caf/error.hpp>

#include "protocol/timers.hpp"
#include "storage/db.hpp"

namespace crmsync::storage::reminder_rows {

/// The due row of `r` (its period is the row's value).
std::string due_key(const reminder& r);

/// The first possible due row at or after `from_ms`.
std::string due_begin(int64_t from_ms);

/// The end of the due rows (exclusive).
std::string due_end();

/// The index row of `target`'s reminder of `kind`.
std::string index_key(const entity_key& target, reminder_kind kind);

std::string encode_due_value(int64_t period_ms);
std::string encode_index_value(int64_t due_ms);

/// The reminder a due row holds; nullopt for a malformed row.
std::optional<reminder> decode_due(std::string_view key,
                                   std::string_view value);

/// The due time an index row holds; nullopt for a malformed row.
std::optional<int64_t> decode_index(std::string_view value);

/// Stores `r`, replacing the target's reminder of that kind whose due time
/// was `replaced_due` (from its index row).
void put(write_batch& b, const reminder& r,
         std::optional<int64_t> replaced_due);

/// Removes the reminder of `kind` for `target` due at `due_ms`.
void remove(write_batch& b, const entity_key& target, reminder_kind kind,
            int64_t due_ms);

/// The due time of `target`'s reminder of `kind`, if one is stored.
caf::error find(const db& d, const entity_key& target, reminder_kind kind,
                std::optional<int64_t>& due_ms);

} // namespace crmsync::storage::reminder_rows
