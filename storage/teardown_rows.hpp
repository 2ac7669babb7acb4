// A user's pending Office 365 teardown: the Office 365 tenant and mailbox
// in which their sync's calendar and subscription live, kept after the
// organization's link to Office 365 is gone (disconnect, deletion) so that
// the calendar actor can still remove them. Written with the sync request
// that turns the sync off; removed by the calendar actor's final write of
// the disabled state.
//
// Row: sync: tenant|user|'t' -> version(1) | tenant length (8, BE) |
// tenant | mailbox. Pure functions; thread-safe.
#pragma once

#include <string>
#include <string_view>

#include <caf/error.hpp>

#include "protocol/ids.hpp"
#include "storage/db.hpp"

namespace crmsync::storage::teardown_rows {

std::string key(tenant_id t, user_id u);

void put(write_batch& b, tenant_id t, user_id u, const std::string& o365_tenant,
         const std::string& o365_user);

void del(write_batch& b, tenant_id t, user_id u);

/// The pending teardown of `u`, if one is stored (a malformed row reads as
/// none).
caf::error find(const db& d, tenant_id t, user_id u, bool& found,
                std::string& o365_tenant, std::string& o365_user);

/// Reads a stored row's value (found with db::multi_get): false when it
/// is malformed (read as none, as find() does).
bool parse(std::string_view value, std::string& o365_tenant,
           std::string& o365_user);

/// Whether `key` (of the sync family) is a teardown row.
bool is_teardown_key(std::string_view key);

} // namespace crmsync::storage::teardown_rows
