// crmsyncd's configuration, parsed with CLI11. A value given as a flag wins
// over the --config file, which wins over CRMSYNC_* environment variables,
// which win over the built-in defaults. Read once at start-up.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "cluster/shards.hpp"

namespace crmsync {

struct node_config {
  std::string config_file;
  std::string listen = "127.0.0.1:8080";
  std::string data_dir = "data";
  /// A backup (crmsyncctl backup) to put in place before the database
  /// opens; "" = none.
  std::string restore_from;
  std::string public_url;
  std::string graph_base_url = "https://graph.microsoft.com/v1.0";
  std::string login_base_url = "https://login.microsoftonline.com";
  std::string graph_ca_file;
  std::string client_id;
  std::string client_secret;
  std::string admin_token;
  std::string node_id = "n1";
  std::string cluster_listen;
  std::string peers;
  std::string cluster_ca_file;
  std::string cluster_cert;
  std::string cluster_key;
  /// etcd mode (ADR 0007): membership and the shard map from etcd.
  std::string etcd_endpoints;
  int64_t etcd_lease_ttl_s = 5;
  /// TLS and authentication to etcd (t15-ops): etcd's CA for https
  /// endpoints, a client certificate, etcd's user and its password file.
  std::string etcd_ca_file;
  std::string etcd_cert_file;
  std::string etcd_key_file;
  std::string etcd_user;
  std::string etcd_password_file;
  /// A uniqueness claim in etcd without its row on the owner is released
  /// after this many seconds (t15-ops).
  int64_t claim_grace_s = 600;
  /// Shards a node moves away on its own (a member joined, a drain) per
  /// minute at most (t15-ops).
  uint64_t rebalance_rate = 10;
  uint64_t initial_members = 1;
  /// Replicated shards (ADR 0008; etcd mode). t15-repl.
  uint64_t replication_factor = 2;
  std::string replication_ack = "1";
  int64_t replication_timeout_ms = 5000;
  uint64_t shard_count = 256;
  std::string log_level = "info";
  /// "text" (default) or "json" (common/log.hpp).
  std::string log_format = "text";
  int64_t idle_timeout_s = 300;
  /// A calendar with nothing pending passivates this long after its last
  /// run (reminders wake every synced user once per interval).
  int64_t calendar_idle_s = 10;
  /// After passivations, freed memory goes back to the system at most
  /// this often (a purge of jemalloc's arenas, or malloc_trim under glibc;
  /// 0: never).
  int64_t memory_trim_s = 30;
  int64_t sweep_interval_ms = 0; ///< 0 = idle_timeout / 4, capped at 5 s
  int64_t request_timeout_ms = 10000;
  int64_t shutdown_grace_ms = 10000;
  uint64_t max_body_bytes = 1u << 20;
  uint64_t max_notifications_per_post = 1000;
  uint64_t http_threads = 2;
  uint64_t actor_threads = 2;
  /// Connect, write and read timeout of one Graph or identity platform
  /// exchange (graph::config::io_timeout).
  int64_t graph_timeout_ms = 30000;
  uint64_t graph_connections = 256;
  uint64_t graph_io_threads = 2;
  int64_t invite_lifetime_s = 7 * 24 * 3600;
  uint64_t max_initial_events = 5000;
  int64_t reconcile_interval_s = 300;
  /// Most reminders (reconciliations) delivered per second; size it above
  /// synced users / reconcile interval.
  uint64_t reminders_per_second = 1000;
  /// The Graph governor's caps for calendar syncs (actors/governor.hpp).
  /// 13,000/s: Graph's current global limit, 130,000 requests per 10 s per
  /// app (GRAPH-FACTS.md line 14; the older 2,000/s figure would cap a node
  /// below 1,000 changes/s both ways).
  uint64_t graph_app_rps = 13000;
  uint64_t graph_tenant_rps = 350;
  double mass_delete_share = 0.5;
  uint64_t mass_delete_minimum = 10;
  bool sync_writes = false;
  std::string metrics_listen;     ///< "" = no separate metrics listener
  std::string metrics_token_file; ///< "" = only the admin token scrapes
  /// Seconds between samples of the admin page's chart history. t16-admin.
  int64_t chart_history_interval_s = 10;
  int64_t header_timeout_ms = 10000;
  uint64_t max_connections_per_source = 256; ///< 0 = no cap
  uint64_t max_header_connections = 1024;    ///< 0 = no cap
  // Bounded unauthenticated work (issue 11, items 4 and 6).
  int64_t signin_lifetime_s = 600;
  int64_t session_lifetime_s = 24 * 3600;
  /// How long an API token issued by an Office 365 sign-in works.
  int64_t session_ttl_s = int64_t{30} * 24 * 3600;
  /// How long the e-mailed link to set a first password works.
  int64_t password_setup_lifetime_s = int64_t{7} * 24 * 3600;
  int64_t purge_interval_ms = 300000;
  int64_t invite_retention_s = 30 * 24 * 3600;
  int64_t failed_mail_retention_s = 30 * 24 * 3600;
  double signin_burst = 20;
  double signin_per_minute = 20;
  uint64_t password_failures_account = 5;
  uint64_t password_failures_source = 20;
  int64_t password_backoff_ms = 1000;
  int64_t password_backoff_max_s = 900;
  std::vector<std::string> trusted_proxies;
  uint64_t hash_threads = 2;
  uint64_t hash_queue = 64;
  uint64_t hash_queue_per_caller = 4;

  // Derived from `listen`, `cluster_listen`, `peers` and `metrics_listen`.
  std::string listen_host;
  uint16_t listen_port = 0;
  std::string cluster_host;
  uint16_t cluster_port = 0;
  std::string metrics_host;
  uint16_t metrics_port = 0;
  std::vector<cluster::member> peer_list;
  std::vector<std::string> etcd_endpoint_list;
};

/// Parses argv; on --help prints usage and sets `exit_code` to 0, on error
/// prints the reason and sets it to 2; otherwise leaves it at -1.
node_config parse_node_config(int argc, char** argv, int& exit_code);

/// Splits "HOST:PORT" ("[v6]:PORT" too); false if malformed.
bool split_host_port(const std::string& s, std::string& host, uint16_t& port);

} // namespace crmsync
