#include "storage/sync_links.hpp"

#include "storage/codec.hpp"
#include "storage/keys.hpp"

namespace crmsync::storage {

void put_sync_link(write_batch& b, tenant_id t, user_id u, const sync_link& l) {
  // The link's own key is the reverse lookup's value.
  auto key = keys::link(t, u, l.event);
  b.put(column::lookup, keys::graph_event_lookup(l.graph_id), key);
  b.put(column::links, std::move(key), codec::encode(l));
}

void del_sync_link(write_batch& b, tenant_id t, user_id u, const sync_link& l) {
  b.del(column::links, keys::link(t, u, l.event));
  b.del(column::lookup, keys::graph_event_lookup(l.graph_id));
}

} // namespace crmsync::storage
