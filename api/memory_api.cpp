// GET /admin/v1/memory (issue 13, t13-mem): where the node's memory is,
// for the service admin: resident size, the allocator (in use, free
// but kept, arenas), RocksDB's parts (memtables, block cache, table
// readers), live actors by kind and the entries of the in-memory maps
// that grow with users (the sync states, the Graph client's mailbox
// budgets). Read-only; nothing is scanned.
#include "api/api.hpp"
#include "api/api_impl.hpp"

#include "common/memory.hpp"
#include "graph/client.hpp"
#include "sync/service.hpp"

namespace crmsync::http {

void api::impl::install_memory_routes() {
  auto self = this; // routes live as long as the impl that owns them
  routes.add("GET", "/admin/v1/memory",
             [self](request& req, const path_params&, responder_ptr r) {
               if (self->admin_auth(req, r))
                 self->admin_memory(r);
             });
}

void api::impl::admin_memory(responder_ptr r) {
  auto self = shared_from_this();
  with_directory_stats(r, [r, self](directory_stats& ds) {
    auto m = memory::allocator_usage();
    auto st = self->db.stats();
    json::writer w;
    w.begin_object();
    w.key("rss_bytes").value(memory::resident_bytes());
    w.key("malloc").begin_object();
    w.key("allocator").value(m.allocator);
    w.key("heap_bytes").value(m.heap_bytes);
    w.key("in_use_bytes").value(m.in_use_bytes);
    w.key("free_bytes").value(m.free_bytes);
    w.key("mmap_bytes").value(m.mmap_bytes);
    w.key("arenas").value(m.arenas);
    w.end_object();
    // Freed memory handed back after passivations (--memory-trim-interval).
    auto rel = memory::releases();
    w.key("trim").begin_object();
    w.key("count").value(rel.count);
    w.key("last_released_bytes").value(rel.last_released_bytes);
    w.key("last_took_us").value(rel.last_took_us);
    w.end_object();
    w.key("rocksdb").begin_object();
    w.key("memtable_bytes").value(st.memtable_bytes);
    w.key("block_cache_bytes").value(st.block_cache_bytes);
    w.key("block_cache_pinned_bytes").value(st.block_cache_pinned_bytes);
    w.key("block_cache_capacity_bytes").value(st.block_cache_capacity_bytes);
    w.key("table_readers_bytes").value(st.table_readers_bytes);
    w.end_object();
    w.key("actors").begin_object();
    for (auto& k : ds.kinds)
      w.key(to_string(k.kind)).value(k.live);
    w.end_object();
    w.key("entries").begin_object();
    if (self->o365.sync != nullptr) {
      auto s = self->o365.sync->stats();
      w.key("sync_users").value(s.users_known);
      w.key("sync_runs").value(s.runs_published);
    }
    if (self->o365.graph != nullptr)
      w.key("graph_mailbox_budgets")
          .value(self->o365.graph->stats().mailbox_budgets);
    w.end_object();
    w.end_object();
    r->reply(json_response(200, w.take()));
  });
}

} // namespace crmsync::http
