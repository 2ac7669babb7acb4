// The drain of a cluster member (t15-ops): POST, GET and DELETE
// /admin/v1/cluster/members/{id}/drain, for the service admin only. The
// mark lives in etcd; the drained node moves its shards off at its
// --rebalance-rate (cluster/rebalance.hpp), and any node reports the
// progress from the shard map it holds.
#include "api/api.hpp"
#include "api/api_impl.hpp"

namespace crmsync::http {

void api::impl::install_cluster_admin_routes() {
  auto self = this; // routes live as long as the impl that owns them
  auto route = [self](cluster_hooks::drain_action action) {
    return
        [self, action](request& req, const path_params& pp, responder_ptr r) {
          if (!self->admin_auth(req, r))
            return;
          if (!self->cluster.drain)
            return fail(r, 409, "not_clustered",
                        "drains need a cluster whose membership is in etcd "
                        "(--etcd-endpoints)");
          self->cluster.drain(
              pp[0], action, [r, action](caf::expected<std::string> progress) {
                if (!progress)
                  return fail(r, progress.error());
                r->reply(json_response(
                    action == cluster_hooks::drain_action::start ? 202 : 200,
                    std::move(*progress)));
              });
        };
  };
  routes.add("POST", "/admin/v1/cluster/members/{id}/drain",
             route(cluster_hooks::drain_action::start));
  routes.add("GET", "/admin/v1/cluster/members/{id}/drain",
             route(cluster_hooks::drain_action::status));
  routes.add("DELETE", "/admin/v1/cluster/members/{id}/drain",
             route(cluster_hooks::drain_action::cancel));
}

} // namespace crmsync::http
