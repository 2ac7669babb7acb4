// The node's HTTP surface: CRM REST API v1, admin API, health endpoints.
//
// Turns requests into protocol commands sent through the directory actor
// (each from a short-lived request actor, so no I/O thread ever waits on
// an actor) and replies into JSON. Authentication happens here for the
// service admin token; user tokens are checked by their tenant actor.
// Thread-safe once constructed; must outlive the actor system's requests.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <caf/actor.hpp>
#include <caf/expected.hpp>
#include <caf/fwd.hpp>

#include "api/throttles.hpp"
#include "common/fair_pool.hpp"
#include "http/router.hpp"
#include "http/server.hpp"
#include "protocol/errors.hpp"
#include "protocol/ids.hpp"
#include "storage/db.hpp"

namespace crmsync::graph {
class client;
} // namespace crmsync::graph

namespace crmsync::sync {
class service;
} // namespace crmsync::sync

namespace crmsync::http {

/// What the Office 365 routes (/o365, invites, join requests) need.
struct office365_options {
  /// Graph and the identity platform; nullptr: the routes answer 503.
  graph::client* graph = nullptr;
  /// Calendar sync: takes webhook notifications; nullptr answers 503.
  sync::service* sync = nullptr;
  /// How people's browsers and Microsoft reach this node.
  std::string public_url;
  std::chrono::milliseconds invite_lifetime{std::chrono::hours(24 * 7)};
  std::chrono::milliseconds signin_lifetime{std::chrono::minutes(10)};
  std::chrono::milliseconds session_lifetime{std::chrono::hours(24)};
};

struct node_info {
  std::string node_id;
  std::string version;
  std::string listen;
  std::string data_dir;
  int64_t started_ms = 0;
};

/// How the API reaches data on other nodes of a cluster (cluster/). Left
/// empty on a single node: everything is local.
struct cluster_hooks {
  /// The directory that serves a tenant: this node's, or the owner node's
  /// endpoint; an error (503) when the owner is unreachable.
  std::function<caf::expected<caf::actor>(tenant_id)> directory_for;
  /// Reads (take: reads and deletes) a key of a node-local table that is
  /// not keyed by tenant (global lookups, sign-in states, sessions) on the
  /// other nodes, after this node had no such key.
  enum class read_outcome { found, missing, unavailable };
  std::function<read_outcome(storage::column, const std::string& key,
                             std::string& value, bool take)>
      read;
  /// The same for several keys without a thread waiting: `done` gets one
  /// answer per key, in their order, from an actor of the cluster (or at
  /// once when there is no other node to ask). t13-async.
  struct read_answer {
    read_outcome outcome = read_outcome::missing;
    std::string value;
  };
  using read_done = std::function<void(std::vector<read_answer>)>;
  std::function<void(storage::column, std::vector<std::string> keys, bool take,
                     read_done done)>
      read_async;
  /// Whether a row found here, (column, key, value), is only a copy: an
  /// organization's replicated row whose shard another node owns. Such a
  /// row is the owner's to answer for and to delete, here and when other
  /// nodes ask: a copy may lag behind a write (a sign-out, t15-sessions; a
  /// revoked invitation's token, a changed address's lookup). Empty: every
  /// row is this node's.
  std::function<bool(storage::column, std::string_view key,
                     std::string_view value)>
      copy_only;
  /// A tenant's shard and owner node (GET /admin/v1/tenants/{id}).
  std::function<std::pair<uint32_t, std::string>(tenant_id)> placement;
  /// POST /admin/v1/shards/{shard}/move on the shard's owner: answers the
  /// move's JSON or why it did not happen, from another thread, when the
  /// move is over.
  std::function<void(uint32_t shard, std::string to,
                     std::function<void(caf::expected<std::string>)> done)>
      move_shard;
  /// POST, GET and DELETE /admin/v1/cluster/members/{id}/drain (t15-ops):
  /// marks a member drained in etcd (its shards then move off it at the
  /// rebalance rate), reads the drain's progress, or ends the drain;
  /// answers the progress JSON or why not, from another thread. Empty
  /// without etcd.
  enum class drain_action { start, status, cancel };
  std::function<void(std::string member, drain_action action,
                     std::function<void(caf::expected<std::string>)> done)>
      drain;
  /// /readyz: false until the node has tried to reach every peer once
  /// (and learnt the shard moves of those it reached).
  std::function<bool()> view_ready;
  /// Bodies of GET /admin/v1/cluster and GET /admin/v1/shards.
  std::function<std::string()> describe;
  std::function<std::string()> shards;
};

struct api_config {
  std::string admin_token;
  /// Also accepted for GET /metrics (and nothing else); empty: none.
  std::string metrics_token;
  std::chrono::milliseconds request_timeout{std::chrono::seconds(10)};
  size_t max_import_events = 5000;
  size_t max_mass_update_ids = 1000;
  /// Sign-in starts, password failures and the hashing pool's shares.
  throttle_config throttles;
  /// How long the e-mailed link to set a first password works.
  int64_t password_setup_lifetime_ms = int64_t{7} * 24 * 3600 * 1000;
  /// How often the admin page's chart history samples its counters
  /// (--chart-history-interval; the last hour is kept). t16-admin.
  std::chrono::milliseconds chart_history_interval{std::chrono::seconds(10)};
};

class api {
public:
  api(caf::actor_system& sys, caf::actor directory, storage::db& db,
      fair_pool& hashing, api_config cfg, node_info info);

  /// The server's request handler.
  void handle(request&& req, responder_ptr r);

  /// The handler of the --metrics-listen listener: GET /metrics without a
  /// token, every other path 404.
  void handle_metrics(request&& req, responder_ptr r);

  /// Every route this node serves: the main listener's table, then the
  /// --metrics-listen one's routes not in it (t16-openapi: the OpenAPI
  /// document describes exactly these; tests/api/openapi_test.cpp).
  std::vector<router::entry> route_table() const;

  /// Where /admin/v1/status reads the listener's counters.
  void set_server_stats(std::function<server_stats()> f);

  /// Enables the Office 365 routes (call before serving).
  void set_office365(office365_options o);

  /// /readyz answers 503 once this is false (shutdown in progress).
  void set_ready(bool ready);
  /// Ends the organization deletions running on threads of their own (each
  /// answers 503 and leaves its organization closed) and waits for them;
  /// before the store and the actor system go. Also run by the destructor.
  void stop_background();
  /// Ends the API's own actors; after the HTTP server stopped, before the
  /// actor system waits for its actors to finish.
  void stop_actors();
  ~api();
  /// Makes actor requests and global reads cluster-wide (before serving).
  void set_cluster(cluster_hooks hooks);
  /// This node's part of a global read (the cluster's endpoint serves
  /// other nodes' reads with it): take reads and deletes atomically.
  cluster_hooks::read_outcome read_local(storage::column c,
                                         const std::string& key,
                                         std::string& value, bool take);

  struct impl;

private:
  std::shared_ptr<impl> impl_;
};

/// The answer for an error, as every route gives it: the JSON error body,
/// Retry-After on 503, WWW-Authenticate on 401.
response error_response(const api_error& e);

/// 413 for a Graph webhook POST that carries more than `max` notifications
/// (the same answer on a single node and in a cluster).
response too_many_notifications(size_t max);

/// Builds the user API token for (org, user): "crm_" + ids + secret.
std::string make_user_token(uint64_t org, uint64_t user);

/// Splits a user token into its org and user ids; false if malformed.
bool parse_user_token(std::string_view token, uint64_t& org, uint64_t& user);

/// A password-setup token (a user made without a password is e-mailed a
/// link with one): like a user token, with the prefix "pws_", so that it is
/// never taken for an API token. t14-life3.
std::string make_setup_token(uint64_t org, uint64_t user);
bool parse_setup_token(std::string_view token, uint64_t& org, uint64_t& user);

} // namespace crmsync::http
