// The link between a CRM event and its Office 365 copy, stored twice: the
// link record (links: tenant|user|event) and the reverse lookup from the
// Graph event id (lookup: 'g' id -> tenant|user|event). Both always go into
// the same batch, through these functions. Pure; thread-safe.
#pragma once

#include "protocol/sync.hpp"
#include "storage/db.hpp"

namespace crmsync::storage {

void put_sync_link(write_batch& b, tenant_id t, user_id u, const sync_link& l);
void del_sync_link(write_batch& b, tenant_id t, user_id u, const sync_link& l);

} // namespace crmsync::storage
