// One node of a crmsync cluster (D3).
//
// Membership comes from configuration (every node is given the same list
// of members, id and cluster address, with --peers) or from etcd (ADR
// 0007): each node registers itself under a key with a lease it keeps
// alive, reads the others' keys, and reads the shard map from etcd, where
// it is versioned by etcd's revision. Nodes talk through CAF's middleman:
// each publishes one endpoint actor on its cluster address and connects to
// every peer's endpoint, reconnecting while a peer is away (heartbeats on,
// so a half-open peer is noticed).
//
// Any node takes any HTTP request. A request that names a tenant (its
// organization in the path, or in the query string of Graph's notification
// URLs) runs on the node that owns the tenant's shard: the receiving node
// forwards it whole and relays the answer. Requests that do not name a
// tenant run where they land; what they ask actors goes to the owner's
// directory, and their reads of the global tables (e-mail, Office 365
// tenant and identity, invitation tokens, sign-in states, sessions) ask
// every node that may hold the key. An owner that cannot be reached means
// 503 with Retry-After, never a guess.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <caf/actor.hpp>
#include <caf/actor_system.hpp>
#include <caf/expected.hpp>

#include "api/api.hpp"
#include "cluster/etcd.hpp"
#include "cluster/replication.hpp"
#include "cluster/shards.hpp"
#include "cluster/tls.hpp"
#include "http/server.hpp"
#include "protocol/ids.hpp"
#include "storage/db.hpp"

namespace crmsync::cluster {

struct config {
  std::string node_id;
  /// This node's cluster address (CAF middleman).
  std::string listen_host;
  uint16_t listen_port = 0;
  /// The other members (static membership).
  std::vector<member> peers;
  /// etcd's client URLs: membership and the shard map come from there.
  std::vector<std::string> etcd_endpoints;
  /// How long a registration outlives its node's last keep-alive.
  std::chrono::seconds lease_ttl{5};
  /// How many members must have registered before the first shard map is
  /// written (once, by whichever node sees them first).
  uint32_t initial_members = 1;
  /// TLS and authentication to etcd (t15-ops).
  etcd::security etcd_security;
  /// A uniqueness claim without its row on its owner is released after
  /// this long (cluster/claim_sweep.hpp; t15-ops).
  std::chrono::seconds claim_grace{600};
  /// Shards this node moves on its own per minute at most: to a member
  /// that joined, off itself while drained (cluster/rebalance.hpp).
  uint32_t rebalance_rate = 10;
  /// How often membership and the shard map are read from etcd again.
  std::chrono::milliseconds etcd_poll{std::chrono::milliseconds(300)};
  uint32_t shard_count = 256;
  /// How long a forwarded request or a remote read may take.
  std::chrono::milliseconds request_timeout{std::chrono::seconds(10)};
  std::chrono::milliseconds reconnect_interval{std::chrono::milliseconds(300)};
  /// Most notifications one webhook POST may carry (413 above).
  size_t max_notifications_per_post = 1000;
  /// Replicated shards (etcd mode only; ADR 0008). t15-repl.
  replication_config replication;
};

/// Loads the middleman and CAF's OpenSSL module on a CAF config (before the
/// actor system is built), with mutual TLS under the cluster CA (`tls`,
/// checked with check_tls_files first), and sets the middleman's heartbeat
/// and connection timeout.
void prepare_actor_system(caf::actor_system_config& cfg, const tls_files& tls);

class node {
public:
  node(caf::actor_system& sys, config cfg, storage::db& db,
       caf::actor directory);
  ~node();
  node(const node&) = delete;
  node& operator=(const node&) = delete;

  /// Publishes the endpoint and starts connecting to the peers. `local`
  /// serves requests this node owns (the API).
  bool start(http::handler local, std::string& err);
  /// Stops reconnecting and joins the connector thread (before the actor
  /// system goes).
  void stop();

  /// What shard moves need of the calendar sync: whether a tenant's users
  /// have a run in progress, and taking on a tenant that arrived.
  void set_sync(std::function<bool(tenant_id)> busy,
                std::function<void(tenant_id)> adopt);
  /// Whether this node serves a tenant now (empty on a single node).
  std::function<bool(tenant_id)> serves() const;
  /// Where continuations of cluster answers run: an HTTP I/O thread of the
  /// node's server (set before start). t13-async.
  void set_io(std::function<void(std::function<void()>)> post);
  /// How clients reach this node over HTTP (shown to the other members).
  void set_http_url(std::string url);
  /// This node's part of a global read (the API's read_local).
  void
  set_local_reader(std::function<http::cluster_hooks::read_outcome(
                       storage::column, const std::string&, std::string&, bool)>
                       read);

  const std::string& id() const {
    return cfg_.node_id;
  }
  uint16_t cluster_port() const {
    return bound_port_;
  }

  /// The HTTP entry point of the node.
  void handle(http::request&& req, http::responder_ptr r);

  /// The hooks the API uses for actor requests, global reads and the
  /// cluster's admin views.
  http::cluster_hooks hooks();

  struct impl;

private:
  config cfg_;
  uint16_t bound_port_ = 0;
  std::shared_ptr<impl> impl_;
};

} // namespace crmsync::cluster
